"""Reconciliation: keeping the router's picture in step with what FreeSWITCH really has.

The picture can drift: a hang-up, answer or bridge whose event was lost, an agent leg left ringing or parked by a
previous fsrouter process. After a (re)connect, ``NodeUp`` lists what the node has: whatever the router tracks
and the node no longer has ended while we were away, whatever it answered meanwhile moves on. While connected,
the daemon audits each node periodically (``ChannelsAudited``), and the same comparisons heal, by doing what the
lost event would have done: a caller (``call_gone``), an offer's agent leg (``offer_leg_gone``) or a
conversation's agent leg (``agent_leg_gone``) that the node no longer has ends; a caller or offered agent leg the
node answered (``answer_lost``) is answered, and bridged once both are; a connecting call whose legs the node
bridged (``bridge_lost``) is talking. The agent legs tagged as ours that the router does not know are killed
(``orphan_leg``). Each heal is counted in ``heals`` and told to ``on_heal``.

An audit only judges what existed before its listing was taken (a caller parked just after it is not missing),
and only what two audits in a row found is healed: an event may still be on its way when the listing is taken,
a leg just originated may not be listed yet, a leg just killed may still be. A listing taken before the node's
last ``NodeUp`` is ignored: that reconciliation is newer. One sighting is enough only where waiting for the
second would settle a call wrongly for good (``Book.sighted``): the ring watchdog does not time out a leg the last
audit found answered, it answers it (``offers.py``); a hang-up does not end as abandoned a call whose legs the
last audit found bridged, the caller talked (``callers.py``). An answer or bridge reported by the audit stays
true while its channels live, so no time rule applies to it.

Restart recovery: the calls the previous process left (``CallsRestored``) that no caller's park takes back each
get their one record (``core/recovery.py``): at the first look at their node if it no longer has them, else at
their hang-up. One whose caller the node lists bridged to an agent leg (``NodeUp.bridged``) is in conversation:
it is re-attached, tracked again as talking with its agent (the agent of its answered offer, else the leg's
``fsrouter_agent``), who is on call with it, until the hang-up of either leg writes its record and starts the
wrap-up.

There is no "stuck agent" heal because no agent can be stuck on its own: an agent is RESERVED only while its
``ringing`` legs are offers the router tracks, and ON_CALL only while the call in ``call_uuid`` is tracked with
it as its agent; every path that ends an offer or a call frees its agent. A stuck agent is a stuck offer or
call, which the heals above end.
"""

from __future__ import annotations

import math

from fsrouter.core.causes import LOST_WHILE_DISCONNECTED, MISSED_HANGUP
from fsrouter.core.commands import Answer, CallOutcome, Command, Kill, RecordCall, WaitingCall
from fsrouter.core.events import CallsRestored, ChannelHungUp, ChannelsAudited, NodeDown, NodeUp
from fsrouter.core.kpi import keep_thresholds
from fsrouter.core.lifecycle import CallState
from fsrouter.core.model import Call
from fsrouter.core.recovery import ENDED_WHILE_AWAY, record_of_unwatched_call
from fsrouter.core.routing.book import Book, Heal
from fsrouter.core.routing.callers import Callers
from fsrouter.core.routing.offers import Offers
from fsrouter.core.routing.presence import Presence
from fsrouter.core.snapshot import HealKind

#: heals of an answer or a bridge FreeSWITCH made without the router hearing of it
_PROGRESS_KINDS = (HealKind.ANSWER_LOST, HealKind.BRIDGE_LOST)


class Reconciler:
    """Compares what a node lists with the book, and heals the differences (module docstring)."""

    def __init__(self, book: Book, callers: Callers, offers: Offers, presence: Presence) -> None:
        self._book = book
        self._callers = callers
        self._offers = offers
        self._presence = presence
        #: when each node's link last dropped
        self._down_at: dict[str, float] = {}

    def on_node_down(self, event: NodeDown, now: float) -> list[Command]:
        """The link dropped at ``now``: a caller the reconnect finds gone is taken to have left then."""
        self._book.nodes_connected[event.node] = False
        self._down_at[event.node] = now
        return []

    def on_node_up(self, event: NodeUp, now: float) -> list[Command]:
        """Reconcile with what the node really has: anything we track that it no longer has ended while we were
        away (as its hang-up would have ended it); what it answered meanwhile moves on."""
        book = self._book
        book.nodes_connected[event.node] = True
        book.node_up_at[event.node] = now
        book.drift.pop(event.node, None)
        previous = book.node_cores.get(event.node)
        book.node_cores[event.node] = event.core_uuid
        if previous is not None and previous != event.core_uuid:
            return self._node_restarted(event.node, now)
        live = event.live_uuids
        commands: list[Command] = []
        down_at = self._down_at.get(event.node)
        for gone in self._gone(event.node, live, seen_before=math.inf):
            # it left while we were away, no later than the disconnect as far as we know: an estimated end
            commands += self._end_unheard(gone, now, LOST_WHILE_DISCONNECTED, hung_up_at=down_at)
        calls = [c for c in book.calls.values() if c.node == event.node]  # all live now
        for call in calls:
            if call.state is CallState.CONNECTING and call.bridge_sent and call.agent_leg in live:
                # the bridge went out before the drop: FreeSWITCH has both legs, so they are talking
                commands += self._offers.mark_talking(call, now)
        for call in calls:
            if not call.answered and call.uuid not in event.answered_uuids:
                commands.append(Answer(node=call.node, uuid=call.uuid))  # the first answer may have been lost
        for unheard in self._answers_unheard(event.node, event.answered_uuids):
            commands += self._callers.on_answered(unheard.channel, now)
        commands += self._reattach(event, now)
        away = [call for call in book.restored.values() if call.node == event.node and call.uuid not in live]
        return commands + [self._unwatched_call_over(call, now, ENDED_WHILE_AWAY) for call in away]

    def on_calls_restored(self, event: CallsRestored) -> list[Command]:
        """Remember the calls the previous process left, until a park takes one back or it ends (docstring)."""
        book = self._book
        book.restored = {call.uuid: call for call in event.calls}
        book.restored_offers = {uuid: [] for uuid in book.restored}
        for offer in event.offers:
            book.restored_offers.setdefault(offer.call_uuid, []).append(offer)
        return []

    def on_unwatched_hangup(self, event: ChannelHungUp, now: float) -> list[Command]:
        """A call the previous process left, and no park took back (it was talking), hung up: its record."""
        call = self._book.restored.get(event.uuid)
        return [] if call is None else [self._unwatched_call_over(call, now, event.cause)]

    def _reattach(self, event: NodeUp, now: float) -> list[Command]:
        """The calls the previous process left whose caller ``event`` lists bridged to an agent leg of an agent
        the router knows of: talking again, their agent on call with them (module docstring). Talk counts from
        the answered offer's end (when the previous process saw the bridge), else from ``now``."""
        book = self._book
        partners: dict[str, str] = {}
        for pair in event.bridged:
            first, second = sorted(pair)
            partners[first], partners[second] = second, first
        commands: list[Command] = []
        for kept in [c for c in book.restored.values() if c.node == event.node and c.uuid in partners]:
            leg = partners[kept.uuid]
            offers = book.restored_offers.get(kept.uuid, [])
            answered = next((o for o in offers if o.result == "answered" and o.leg_uuid == leg), None)
            agent_id = answered.agent if answered is not None else event.agents_of_legs.get(leg)
            if agent_id is None:
                continue  # not bridged to an agent leg of ours: its record waits for its hang-up
            del book.restored[kept.uuid]
            book.restored_offers.pop(kept.uuid, None)
            call = book.calls[kept.uuid] = Call(
                uuid=kept.uuid,
                node=kept.node,
                queue=kept.queue,
                entered_at=kept.entered_at,
                queue_entered_at=kept.entered_at,
                state=CallState.TALKING,
                answered=True,
                offers_made=len(offers),
                agent_id=agent_id,
                agent_leg=leg,
                bridge_sent=True,
                connected_at=answered.ended_at if answered is not None else now,
            )
            commands += self._presence.reattach(call, now)
        return commands

    def _unwatched_call_over(self, call: WaitingCall, now: float, cause: str) -> RecordCall:
        del self._book.restored[call.uuid]
        record = record_of_unwatched_call(
            uuid=call.uuid,
            node=call.node,
            queue=call.queue,
            entered_at=call.entered_at,
            offers=self._book.restored_offers.pop(call.uuid, []),
            ended_at=now,
            cause=cause,
        )
        return RecordCall(record=keep_thresholds(record, self._book.queues.get(call.queue)))

    def _node_restarted(self, node: str, now: float) -> list[Command]:
        """FreeSWITCH restarted (a new core uuid): none of the node's channels exist any more, and the calls end
        as failed, not abandoned (the callers did not choose to leave)."""
        book = self._book
        commands: list[Command] = []
        for offer in [o for o in book.legs.values() if o.node == node]:
            commands += self._offers.failed(offer, now, LOST_WHILE_DISCONNECTED)
        for call in [c for c in book.calls.values() if c.node == node]:
            outcome = CallOutcome.ANSWERED if call.connected_at is not None else CallOutcome.FAILED
            commands += self._callers.leave(call, outcome, now, "FREESWITCH_RESTARTED")
        return commands

    def on_audit(self, event: ChannelsAudited, now: float) -> list[Command]:
        """Heal what this audit and the previous one of the node both found out of step (module docstring)."""
        book = self._book
        up_at = book.node_up_at.get(event.node)
        if not book.nodes_connected.get(event.node) or up_at is None or event.taken_at < up_at:
            return []  # listed before the last (re)connect: the NodeUp reconciliation is newer
        known_legs = book.legs.keys() | {call.agent_leg for call in book.calls.values() if call.agent_leg}
        found = self._gone(event.node, event.live_uuids, seen_before=event.taken_at)
        found += self._answers_unheard(event.node, event.answered_uuids)
        found += self._bridges_unheard(event.node, event.bridged)
        found += [Heal(HealKind.ORPHAN_LEG, event.node, leg) for leg in sorted(event.agent_legs - known_legs)]
        found_before = book.drift.get(event.node, {})
        book.drift[event.node] = drift = {heal: found_before.get(heal, event.taken_at) for heal in found}
        commands: list[Command] = []
        for heal in found:
            if heal in found_before:
                commands += self._heal(heal, now, seen_at=drift[heal])
        return commands

    def _heal(self, heal: Heal, now: float, *, seen_at: float) -> list[Command]:
        """Heal and count; nothing when an earlier heal or a late event settled it meanwhile. A lost bridge is
        dated ``seen_at``, when a listing first showed it: it happened no later."""
        book = self._book
        healed: list[Command] | None
        if heal.kind is HealKind.ORPHAN_LEG:
            healed = [Kill(node=heal.node, uuid=heal.channel, cause="NORMAL_CLEARING")]
        elif heal.kind not in _PROGRESS_KINDS:
            healed = self._end_unheard(heal, now, MISSED_HANGUP) or None  # nothing ended: settled meanwhile
        elif not self._unheard(heal):
            healed = None
        elif heal.kind is HealKind.BRIDGE_LOST:
            healed = self._offers.mark_talking(book.calls[heal.call or ""], seen_at)
        elif (offer := book.legs.get(heal.channel)) is not None:
            healed = self._offers.heal_answer(offer, now, seen_at)
        else:
            healed = self._callers.on_answered(heal.channel, now)
        if healed is None:
            return []
        book.count_heal(heal)
        return healed

    def _gone(self, node: str, live: frozenset[str], *, seen_before: float) -> list[Heal]:
        """What the router tracks on ``node`` that existed before ``seen_before`` (by its own timestamps) and is
        not among the node's ``live`` channels: offers' agent legs, callers, conversations' agent legs."""
        book = self._book
        gone = [
            Heal(HealKind.OFFER_LEG_GONE, node, offer.leg_uuid, offer.call_uuid)
            for offer in book.legs.values()
            if offer.node == node and offer.offered_at < seen_before and offer.leg_uuid not in live
        ]
        for call in book.calls.values():
            if call.node != node:
                continue
            if call.entered_at < seen_before and call.uuid not in live:
                gone.append(Heal(HealKind.CALL_GONE, node, call.uuid, call.uuid))
            elif (
                call.state is CallState.TALKING
                and call.agent_leg is not None
                and call.agent_leg not in live
                and call.connected_at is not None
                and call.connected_at < seen_before
            ):
                gone.append(Heal(HealKind.AGENT_LEG_GONE, node, call.agent_leg, call.uuid))
        return gone

    def _end_unheard(self, gone: Heal, now: float, cause: str, hung_up_at: float | None = None) -> list[Command]:
        """End a channel found gone exactly as its hang-up event, had it arrived, would have ended it."""
        hangup = ChannelHungUp(node=gone.node, uuid=gone.channel, cause=cause, hung_up_at=hung_up_at)
        return self._callers.on_hangup(hangup, now)

    def _answers_unheard(self, node: str, answered: frozenset[str]) -> list[Heal]:
        """The callers, then the offered agent legs, on ``node`` that it lists ``answered`` and the router does
        not know to be."""
        book = self._book
        kind = HealKind.ANSWER_LOST
        callers = [Heal(kind, node, c.uuid, c.uuid) for c in book.calls.values() if c.node == node]
        legs = [Heal(kind, node, o.leg_uuid, o.call_uuid) for o in book.legs.values() if o.node == node]
        return [heal for heal in callers + legs if heal.channel in answered and self._unheard(heal)]

    def _bridges_unheard(self, node: str, bridged: frozenset[frozenset[str]]) -> list[Heal]:
        """The calls on ``node`` still connecting whose caller and agent leg it lists ``bridged`` together."""
        candidates = [
            Heal(HealKind.BRIDGE_LOST, node, c.agent_leg, c.uuid)
            for c in self._book.calls.values()
            if c.node == node and c.agent_leg is not None
        ]
        return [heal for heal in candidates if frozenset((heal.call, heal.channel)) in bridged and self._unheard(heal)]

    def _unheard(self, heal: Heal) -> bool:
        """Whether the router still misses the answer or bridge ``heal`` is about (a heal or a late event may have
        brought it since it was found)."""
        call = self._book.calls.get(heal.call or "")
        if call is None:
            return False
        if heal.kind is HealKind.BRIDGE_LOST:
            return call.state is CallState.CONNECTING and call.agent_leg == heal.channel
        if heal.channel == call.uuid:
            return not call.answered
        offer = call.offers.get(heal.channel)
        return offer is not None and not offer.answered
