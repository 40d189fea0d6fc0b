"""Offers: ringing an agent for a call, its answer, the bridge, the conversation's start, and every way an offer
ends (cancelled by us, failed by cause, given up), with the agent's penalty by cause (``core/causes.py``).

The originate/bridge race
-------------------------
The agent leg's CHANNEL_ANSWER arrives before the ``bgapi originate … &park()`` job has returned. FreeSWITCH
1.10's ``originate_function`` (mod_commands.c) writes ``+OK <uuid>`` only once the originate succeeded and the
leg was set to run ``&park()``; ``switch_ivr_uuid_bridge`` (switch_ivr_bridge.c) marks both legs for transfer,
and when that lands while ``switch_ivr_originate`` is still waiting, the originate counts the peer as gone: the
job reports ``-ERR ORIGINATOR_CANCEL`` although the legs do bridge (captured as ``bridge_race_err``), and a
bridge landing just between the success and ``&park()`` taking over was seen acknowledged and never done. So a
bridge is sent only once both the leg's answer and the job's result are in: after ``+OK`` it behaves like the
captured ``bridge_race_ok``. A job that fails after the leg answered means only that ``&park()`` never ran: the
leg's own events (its hang-up, its bridge) are the truth, and the job's failure neither fails the offer nor
frees the agent. A job result that never comes (its event lost) is waited for ``bridge_timeout`` seconds after
the answer, then the leg is bridged anyway.

A bridge acknowledged but not confirmed by CHANNEL_BRIDGE within ``bridge_timeout`` is sent once more to the same
agent leg (``BRIDGE_ATTEMPTS``; a bridge whose event alone was lost is confirmed by the second one's); when that
one is not confirmed either, the connection is ended cleanly: the agent leg is killed, the agent is available
again with no penalty (offer result ``bridge_timeout``), and the caller waits again with its entry time and
priority, its music restarted. Never a silent abandon.

No agent stays RESERVED forever: every offer ends answered, failed, cancelled, or timed out by the ring watchdog
(ring timeout + ``OFFER_GRACE_SECONDS``), which answers instead a leg the last audit found answered.
"""

from __future__ import annotations

from fsrouter.core.causes import BRIDGE_TIMEOUT, SEND_FAILED, UNKNOWN_FATE, OfferEnd, offer_end
from fsrouter.core.commands import Bridge, Command, Kill, Originate, PlayMusic
from fsrouter.core.events import ChannelBridged, CommandFailed, FailedCommand, OriginateFailed, OriginateSucceeded
from fsrouter.core.lifecycle import CALL_TRANSITIONS, AgentState, AgentTrigger, CallState, CallTrigger, advance
from fsrouter.core.model import Agent, Call, Offer
from fsrouter.core.routing.book import Book, Heal
from fsrouter.core.routing.presence import Presence
from fsrouter.core.routing.records import Records
from fsrouter.core.snapshot import HealKind
from fsrouter.core.strategies import Strategy

#: how long past the ring timeout an offer may stay unresolved before the router kills the leg itself
OFFER_GRACE_SECONDS = 10.0
#: retry delay after an originate or a bridge that could not be sent or was refused
SEND_FAILURE_DELAY = 2.0
#: seconds a sent bridge may go unconfirmed by CHANNEL_BRIDGE (under load on a real FreeSWITCH, answer -> bridge
#: reached 1.4-1.8 s at p99), and that an answered agent leg's originate job result is waited for
DEFAULT_BRIDGE_TIMEOUT = 3.0
#: bridges sent to one answered agent leg before the connection is given up (the first, then one retry)
BRIDGE_ATTEMPTS = 2


class Offers:
    """Rings agents and follows each agent leg until the conversation starts or the offer ends."""

    def __init__(self, book: Book, records: Records, presence: Presence) -> None:
        self._book = book
        self._records = records
        self._presence = presence

    # ------------------------------------------------------------------ ring

    def ring(self, call: Call, agent: Agent, strategy: Strategy, now: float) -> list[Command]:
        """Offer ``call`` to ``agent``: ``Originate`` a new leg on the caller's node."""
        book = self._book
        leg_uuid = book.options.new_id()
        offer = Offer(leg_uuid=leg_uuid, call_uuid=call.uuid, agent_id=agent.id, node=call.node, offered_at=now)
        call.state = advance(CALL_TRANSITIONS, call.state, CallTrigger.OFFER)
        call.offers[leg_uuid] = offer
        call.offers_made += 1
        book.legs[leg_uuid] = offer
        agent.offers_received += 1
        agent.call_uuid = call.uuid
        agent.ringing.add(leg_uuid)
        strategy.offered(agent, now)
        originate = Originate(
            node=call.node,
            leg_uuid=leg_uuid,
            call_uuid=call.uuid,
            endpoint=agent.config.endpoint,
            timeout=book.queue(call.queue).ring_timeout,
            caller_number=call.caller_number,
            caller_name=call.caller_name,
            variables={"fsrouter_queue": call.queue, "fsrouter_agent": agent.id},
        )
        if agent.state is AgentState.RESERVED:  # already ringing for another call (max_offers > 1)
            book.update_routable(agent)
            return [originate]
        return self._presence.change(agent, AgentTrigger.OFFER, now, f"offered {call.uuid}") + [originate]

    # ------------------------------------------------------------------ answer, job result, bridge

    def on_leg_answered(self, leg_uuid: str, now: float) -> list[Command]:
        """CHANNEL_ANSWER of an agent leg (not a caller)."""
        offer = self._book.legs.get(leg_uuid)
        if offer is None or offer.answered:
            return []
        return self.agent_answered(offer, now)

    def agent_answered(self, offer: Offer, now: float) -> list[Command]:
        """The agent took the call: the other legs ringing for it, and the agent's other offers, are cancelled;
        the bridge follows once everything is in (module docstring)."""
        offer.answered = True
        offer.answered_at = now
        call = self._book.calls[offer.call_uuid]
        agent = self._book.agents.get(offer.agent_id)
        commands = self.cancel_all(call, now, "LOSE_RACE", keep=offer)
        if agent is not None:  # its other calls ringing (max_offers > 1) go back to their queues
            for leg in sorted(agent.ringing - {offer.leg_uuid}):
                commands += self.cancel(self._book.legs[leg], now, "ORIGINATOR_CANCEL")
        call.state = advance(CALL_TRANSITIONS, call.state, CallTrigger.AGENT_ANSWERED)
        call.agent_id = offer.agent_id
        call.agent_leg = offer.leg_uuid
        if agent is not None:
            agent.no_answer_count = 0
            commands += self._presence.change(agent, AgentTrigger.ANSWERED, now, "answered offer")
            agent.call_uuid = call.uuid
        return commands + self.bridge_if_ready(call, now)

    def heal_answer(self, offer: Offer, now: float, seen_at: float) -> list[Command]:
        """An audit listed the leg answered since ``seen_at`` without its answer being heard: answer it now; its
        job result, if that long ago, is in and was lost with the answer."""
        if now - seen_at > self._book.options.bridge_timeout:
            offer.job_done = True
        return self.agent_answered(offer, now)

    def on_originate_failed(self, event: OriginateFailed, now: float) -> list[Command]:
        """Before the leg answered: the offer failed. After: only ``&park()`` never ran (module docstring)."""
        offer = self._book.legs.get(event.leg_uuid)
        if offer is None:
            return []
        if not offer.answered:
            return self.failed(offer, now, event.cause)
        return self._job_done(offer, now)

    def on_originate_succeeded(self, event: OriginateSucceeded, now: float) -> list[Command]:
        """``+OK``: the agent answered (even if its CHANNEL_ANSWER is late or lost) and the leg runs ``&park()``."""
        offer = self._book.legs.get(event.leg_uuid)
        if offer is None:
            return []
        if not offer.answered:
            offer.job_done = True
            return self.agent_answered(offer, now)
        return self._job_done(offer, now)

    def _job_done(self, offer: Offer, now: float) -> list[Command]:
        offer.job_done = True
        return self.bridge_if_ready(self._book.calls[offer.call_uuid], now)

    def bridge_if_ready(self, call: Call, now: float) -> list[Command]:
        """Bridge once the caller is answered (never an unanswered caller), and the agent leg answered with its
        originate job's result in (module docstring)."""
        if call.state is not CallState.CONNECTING or not call.answered or call.agent_leg is None or call.bridge_sent:
            return []
        offer = call.offers.get(call.agent_leg)
        if offer is not None and not offer.job_done:
            return []
        return _send_bridge(call, now)

    def on_bridged(self, event: ChannelBridged, now: float) -> list[Command]:
        calls = self._book.calls
        call = calls.get(event.uuid) or calls.get(event.other_uuid)
        if call is None or call.state is not CallState.CONNECTING:
            return []
        return self.mark_talking(call, now)

    def mark_talking(self, call: Call, now: float) -> list[Command]:
        """The conversation started at ``now``: the offer ends answered."""
        call.state = advance(CALL_TRANSITIONS, call.state, CallTrigger.BRIDGED)
        call.connected_at = now
        offer = call.offers.get(call.agent_leg or "")
        if offer is None:
            return []
        self.forget(offer)
        agent = self._book.agents.get(offer.agent_id)
        if agent is not None:
            agent.calls_answered += 1
        return [self._records.offer(offer, call, now, "answered")]

    # ------------------------------------------------------------------ ends

    def cancel(self, offer: Offer, now: float, cause: str) -> list[Command]:
        """We end an offer ourselves (caller left, another agent won): the leg is killed, no penalty."""
        self.forget(offer)
        commands: list[Command] = [Kill(node=offer.node, uuid=offer.leg_uuid, cause=cause)]
        agent = self._book.agents.get(offer.agent_id)
        if agent is not None and agent.state is AgentState.RESERVED and not self._still_ringing(agent):
            commands += self._presence.change(agent, AgentTrigger.OFFER_CANCELLED, now, cause.lower())
        call = self._book.calls.get(offer.call_uuid)
        if call is not None:
            commands.append(self._records.offer(offer, call, now, cause))
            if not call.offers and call.state is CallState.OFFERING:
                call.state = advance(CALL_TRANSITIONS, call.state, CallTrigger.ALL_OFFERS_FAILED)
        return commands

    def cancel_all(self, call: Call, now: float, cause: str, keep: Offer | None = None) -> list[Command]:
        """Cancel every offer of ``call`` but ``keep``."""
        commands: list[Command] = []
        for offer in [o for o in call.offers.values() if o is not keep]:
            commands += self.cancel(offer, now, cause)
        return commands

    def forget(self, offer: Offer) -> None:
        self._book.legs.pop(offer.leg_uuid, None)
        call = self._book.calls.get(offer.call_uuid)
        if call is not None:
            call.offers.pop(offer.leg_uuid, None)
        agent = self._book.agents.get(offer.agent_id)
        if agent is not None:
            agent.ringing.discard(offer.leg_uuid)

    def _still_ringing(self, agent: Agent) -> bool:
        """After one of ``agent``'s offers ended: whether another one still rings (it then stays RESERVED)."""
        if agent.ringing:
            self._book.update_routable(agent)
            return True
        agent.call_uuid = None
        return False

    def failed(self, offer: Offer, now: float, cause: str) -> list[Command]:
        """The agent leg ended before the bridge: penalise by cause, put the call back in the queue."""
        self.forget(offer)
        call = self._book.calls[offer.call_uuid]
        agent = self._book.agents.get(offer.agent_id)
        commands: list[Command] = [self._records.offer(offer, call, now, cause)]
        if offer.answered:
            delay = agent.config.reject_delay if agent and offer_end(cause) is not OfferEnd.WITHDRAWN else 0.0
            return commands + self.connect_failed(call, now, delay, "agent leg ended before the bridge")
        if agent is not None and agent.state is AgentState.RESERVED and not self._still_ringing(agent):
            commands += self._penalise(agent, offer.node, cause, now)
        if not call.offers and call.state is CallState.OFFERING:
            call.state = advance(CALL_TRANSITIONS, call.state, CallTrigger.ALL_OFFERS_FAILED)
        return commands

    def connect_failed(self, call: Call, now: float, retry_delay: float, reason: str) -> list[Command]:
        """The agent answered but the legs were never bridged: the call waits again (its music back on if a
        bridge had stopped it), the agent is freed and skipped for ``retry_delay`` seconds."""
        agent = self._book.agents.get(call.agent_id or "")
        call.state = advance(CALL_TRANSITIONS, call.state, CallTrigger.BRIDGE_FAILED)
        moh = self._book.queue(call.queue).moh
        commands: list[Command] = []
        if call.bridge_sent and moh:
            commands.append(PlayMusic(node=call.node, uuid=call.uuid, source=moh))
        call.bridge_sent = False
        call.bridge_attempts = 0
        call.agent_id = None
        call.agent_leg = None
        if agent is None or agent.call_uuid != call.uuid:
            return commands
        agent.ready_at = now + retry_delay
        return commands + self._presence.call_over(agent, call, now, connected=False, reason=reason)

    def _penalise(self, agent: Agent, node: str, cause: str, now: float) -> list[Command]:
        """The retry delay (or break, or unregistered on ``node``) of ``agent``, whose offer there ended by
        ``cause``."""
        config = agent.config
        end = offer_end(cause)
        if end is OfferEnd.WITHDRAWN:
            return self._presence.change(agent, AgentTrigger.OFFER_CANCELLED, now, cause.lower())
        if end is OfferEnd.UNREGISTERED:
            self._presence.note_registration(agent, node, registered=False)
            return self._presence.change(agent, AgentTrigger.OFFER_FAILED, now, "not registered")
        if end is OfferEnd.BUSY:
            agent.ready_at = now + config.busy_delay
        elif end is OfferEnd.REJECTED:
            agent.ready_at = now + config.reject_delay
        elif end is OfferEnd.NOT_SENT:
            agent.ready_at = now + SEND_FAILURE_DELAY
        else:
            agent.ready_at = now + config.no_answer_delay
            agent.no_answer_count += 1
            if config.max_no_answer and agent.no_answer_count >= config.max_no_answer:
                agent.no_answer_count = 0
                reason = f"{config.max_no_answer} no-answers"
                return self._presence.change(agent, AgentTrigger.TOO_MANY_NO_ANSWERS, now, reason)
        return self._presence.change(agent, AgentTrigger.OFFER_FAILED, now, cause.lower())

    def on_command_failed(self, event: CommandFailed, now: float) -> list[Command]:
        """An originate or a bridge that could not be sent or that FreeSWITCH refused."""
        if event.command is FailedCommand.ORIGINATE:
            offer = self._book.legs.get(event.uuid)
            return [] if offer is None else self.failed(offer, now, SEND_FAILED)
        call = self._book.calls.get(event.uuid)
        if call is None or call.state is not CallState.CONNECTING or call.agent_leg is None:
            return []
        return self._drop_connection(call, now, SEND_FAILED, SEND_FAILURE_DELAY, "bridge refused")

    def on_fate_unknown(self, event: CommandFailed) -> list[Command]:
        """A command got no reply: FreeSWITCH may or may not have run it, and the NodeUp after the reconnect
        settles it (``reconcile.py``: a leg or bridge it lists goes on, one it does not ended while we were away).
        Only an originate is marked meanwhile: if nothing is ever heard of its leg, the ring watchdog ends it
        without charging the agent."""
        offer = self._book.legs.get(event.uuid) if event.command is FailedCommand.ORIGINATE else None
        if offer is not None:
            offer.fate_unknown = True
        return []

    def _drop_connection(self, call: Call, now: float, result: str, retry_delay: float, reason: str) -> list[Command]:
        """Hang up the answered agent leg of a call still connecting and put the caller back in the queue."""
        assert call.agent_leg is not None
        commands: list[Command] = [Kill(node=call.node, uuid=call.agent_leg, cause="NORMAL_CLEARING")]
        answered = call.offers.get(call.agent_leg)
        if answered is not None:  # over now: the killed leg's hang-up must find nothing left to end
            self.forget(answered)
            commands.append(self._records.offer(answered, call, now, result))
        return commands + self.connect_failed(call, now, retry_delay, reason)

    # ------------------------------------------------------------------ watchdogs (on every Tick)

    def rings_overdue(self, now: float) -> list[Command]:
        """The ring watchdog: a leg unresolved past its ring timeout + grace is killed as a no-answer, unless the
        last audit found it answered (then it is answered: the agent took the call), or FreeSWITCH may never have
        received its originate (no reply to it, or its node is not connected): then it ends ``UNKNOWN_FATE``, not
        charged to the agent."""
        book = self._book
        commands: list[Command] = []
        for offer in list(book.legs.values()):
            if offer.leg_uuid not in book.legs:  # cancelled by a leg of its call or agent answered above
                continue
            ring_timeout = book.queue(book.calls[offer.call_uuid].queue).ring_timeout
            if offer.answered or now - offer.offered_at <= ring_timeout + OFFER_GRACE_SECONDS:
                continue
            heal = Heal(HealKind.ANSWER_LOST, offer.node, offer.leg_uuid, offer.call_uuid)
            seen_at = book.sighted(heal)
            if seen_at is not None:
                book.count_heal(heal)
                commands += self.heal_answer(offer, now, seen_at)
                continue
            unknown = offer.fate_unknown or not book.nodes_connected.get(offer.node, True)
            commands.append(Kill(node=offer.node, uuid=offer.leg_uuid, cause="ORIGINATOR_CANCEL"))
            commands += self.failed(offer, now, UNKNOWN_FATE if unknown else "NO_ANSWER")
        return commands

    def check_connecting(self, call: Call, now: float) -> list[Command]:
        """The bounds of a call still connecting (module docstring): an answered leg whose job result is missing
        is bridged anyway; an unconfirmed bridge is sent again, then given up."""
        if call.state is not CallState.CONNECTING or call.agent_leg is None:
            return []
        timeout = self._book.options.bridge_timeout
        offer = call.offers.get(call.agent_leg)
        if not call.bridge_sent:
            if offer is None or offer.job_done or now - (offer.answered_at or now) <= timeout:
                return []
            return self._job_done(offer, now)
        if now - call.bridge_sent_at <= timeout:
            return []
        heal = Heal(HealKind.BRIDGE_LOST, call.node, call.agent_leg, call.uuid)
        seen_at = self._book.sighted(heal)
        if seen_at is not None:  # the last audit found them bridged: they talk
            self._book.count_heal(heal)
            return self.mark_talking(call, seen_at)
        if call.bridge_attempts < BRIDGE_ATTEMPTS:
            return _send_bridge(call, now)
        return self._drop_connection(call, now, BRIDGE_TIMEOUT, 0.0, "bridge never confirmed")

    def release_all(self, now: float) -> list[Command]:
        """Hang up every agent leg not in a conversation: ringing ones (cancelled, no penalty) and answered ones
        whose bridge was not sent yet (the caller waits again). A call whose bridge was sent is left to it: its
        legs are about to talk, or the next start's audit finds them."""
        commands: list[Command] = []
        for offer in list(self._book.legs.values()):
            call = self._book.calls[offer.call_uuid]
            if not offer.answered:
                commands += self.cancel(offer, now, "ORIGINATOR_CANCEL")
            elif not call.bridge_sent:
                commands += self._drop_connection(call, now, "ORIGINATOR_CANCEL", 0.0, "released at shutdown")
        return commands


def _send_bridge(call: Call, now: float) -> list[Command]:
    assert call.agent_leg is not None
    call.bridge_sent = True
    call.bridge_sent_at = now
    call.bridge_attempts += 1
    return [Bridge(node=call.node, caller_uuid=call.uuid, agent_uuid=call.agent_leg)]
