"""A caller's life around the queue: entering (classified by the rules, answered, music on hold), entry limits,
overflow and escalation, hold, hang-up, maximum wait, and leaving with its one record.

A caller the rules do not queue (closed hours, transfer, reject) never waits and still gets its one record. A
queue at ``max_waiting_calls`` overflows or rejects a new caller; a queue with nobody logged in applies
``when_no_agents``. An overflow to a queue keeps the caller's entry time, hence its place in the order.

A call is a channel's *stay* in fsrouter, not the channel. A channel that parks again with fsrouter's marks after
its stay ended, or while it talks (an agent's blind transfer to an extension that sets ``fsrouter_queue=sales``
and parks it: captured as ``repark_after_transfer``, same uuid, a new CHANNEL_PARK, the agent leg hung up before
or after it) starts a new stay in the queue it now asks for: the stay it follows ends (``answered`` if it was
talking), the new one is numbered after it and names it in its record, and the transfer is counted in
``transfers``. Only a park re-learnt after a reconnect (``entered_at`` set) on the extension of the stay that
ended is the same stay again, and ignored.

A waiting caller whose channel leaves park for anything fsrouter did not start (``leave_park``: a transfer,
another application, the dialplan's exit) has left: its offers are cancelled and the stay ends ``left``, so it is
never bridged or broken afterwards. fsrouter's own bridge unparks the caller too; music does not unpark it.
"""

from __future__ import annotations

from fsrouter.core.commands import Answer, CallOutcome, Command, Kill, PlayMusic, SaveWaiting, Transfer, WaitingCall
from fsrouter.core.events import CallLeftPark, CallParked, ChannelHungUp, CommandFailed, HoldChanged
from fsrouter.core.lifecycle import CALL_TRANSITIONS, AgentState, CallState, CallTrigger, advance
from fsrouter.core.model import Call
from fsrouter.core.routing.book import Book, EndedStay, Heal
from fsrouter.core.routing.offers import Offers
from fsrouter.core.routing.presence import Presence
from fsrouter.core.routing.records import QUEUED, Records, reload_destination
from fsrouter.core.rules import CallInfo, QueueConfig, RouteAction
from fsrouter.core.snapshot import HealKind

#: hang-up cause recorded for a conversation whose caller parked again into fsrouter (module docstring)
TRANSFERRED = "TRANSFERRED"


class Callers:
    """Takes callers in, keeps them in their queue, and ends their stay."""

    def __init__(self, book: Book, records: Records, presence: Presence, offers: Offers) -> None:
        self._book = book
        self._records = records
        self._presence = presence
        self._offers = offers

    # ------------------------------------------------------------------ entering

    def on_parked(self, event: CallParked, now: float) -> list[Command]:
        """A marked caller parked: a new stay, unless it is a stay fsrouter already has (module docstring)."""
        book = self._book
        restored = book.restored.pop(event.uuid, None)  # it waited before a restart: it takes its place back
        current = book.calls.get(event.uuid)
        ended = book.last_stay(event.uuid)
        commands: list[Command] = []
        if current is not None:
            if current.state is not CallState.TALKING:
                return []  # the same stay, re-learnt
            ended = EndedStay(current.stay, current.queue, current.destination)
            commands += self.leave(current, CallOutcome.ANSWERED, now, TRANSFERRED, hung_up=True)
        elif ended is not None and event.entered_at is not None and event.destination == ended.destination:
            return []  # re-learnt after a reconnect, its stay already recorded
        if book.draining:
            if book.options.on_not_taken is not None:
                book.options.on_not_taken(event.uuid)
            return commands
        decision = book.rules.classify(
            CallInfo(caller_number=event.caller_number, destination=event.destination, variables=event.variables),
            now,
        )
        if decision.unknown_queue and book.options.on_unknown_queue is not None:
            book.options.on_unknown_queue(decision.unknown_queue)
        entered_at = event.entered_at if event.entered_at is not None else now
        if restored is not None:
            entered_at = restored.entered_at
        call = Call(
            uuid=event.uuid,
            node=event.node,
            queue=decision.queue,
            entered_at=entered_at,
            caller_number=event.caller_number,
            caller_name=event.caller_name,
            destination=event.destination,
            variables=event.variables,
            priority=decision.priority,
            skills=decision.skills,
            rule=decision.rule,
            queue_entered_at=entered_at,
            preferred_agent=event.variables.get("fsrouter_agent", "") or decision.agent,
            arrival=book.next_arrival(),
            answered=event.answered,
        )
        if ended is not None:
            call.stay, call.previous_stay = ended.stay + 1, ended.stay
            book.transfers[ended.queue, call.queue] += 1
        if not event.answered:
            commands.append(Answer(node=event.node, uuid=event.uuid))
        if decision.action is not RouteAction.QUEUE or decision.queue not in book.rules.queues:
            return commands + self._divert(call, decision.action, decision.destination, decision.announcement, now)
        admitted, treatment = self._admit(call, now)
        commands += treatment
        if not admitted:
            return commands
        book.calls[call.uuid] = call
        kept = WaitingCall(uuid=call.uuid, node=call.node, queue=call.queue, entered_at=call.entered_at)
        commands.append(SaveWaiting(call=kept))
        moh = book.queue(call.queue).moh
        if moh:
            commands.append(PlayMusic(node=call.node, uuid=call.uuid, source=moh))
        return commands

    def _divert(
        self, call: Call, action: RouteAction, destination: str, announcement: str, now: float
    ) -> list[Command]:
        """Closed-hours, transfer and reject decisions: the call never waits, and still gets its one record."""
        treatment, outcome = _treatment(call, action, destination, announcement)
        return [treatment, self._records.call(call, outcome, now, cause="")]

    def rehome(self, call: Call, now: float) -> list[Command]:
        """A reload removed the queue ``call`` waits in: the new rules classify it again (``reload_destination``,
        what ``reload --dry-run`` announced). It waits in the queue they give with its entry time and priority,
        or leaves as their closed, transfer or reject action says, with its one record. Its ringing offers are
        cancelled first (no penalty)."""
        decision = reload_destination(call, self._book.rules, now)
        commands = self._offers.cancel_all(call, now, "ORIGINATOR_CANCEL")
        origin, reason = call.queue, "queue removed by a reload"
        if decision.action is not RouteAction.QUEUE:
            treatment, outcome = _treatment(call, decision.action, decision.destination, decision.announcement)
            commands += self._records.treatment(str(outcome), call, origin, decision.destination, reason, now)
            return [*commands, treatment, *self.leave(call, outcome, now, reason)]
        call.queue, call.queue_entered_at, call.skills, call.rule = decision.queue, now, decision.skills, decision.rule
        commands += self._records.treatment("reload", call, origin, call.queue, reason, now)
        moh = self._book.queue(call.queue).moh
        if moh and moh != self._book.queue(origin).moh:
            commands.append(PlayMusic(node=call.node, uuid=call.uuid, source=moh))
        return commands

    def _admit(self, call: Call, now: float) -> tuple[bool, list[Command]]:
        """Apply the entry limits of a new caller's queue: whether it may wait (in ``call.queue``, which an
        overflow may have changed), and the commands of what was done. An overflow to a queue is checked
        against that queue's limits in turn (the loader refuses overflow cycles; a cycle met anyway ends in a
        reject)."""
        commands: list[Command] = []
        tried: set[str] = set()
        while True:
            queue = self._book.rules.queues[call.queue]
            tried.add(queue.name)
            reason = self._entry_refusal(queue)
            if not reason:
                return True, commands
            full = reason == "queue full"
            overflow = queue.overflow if (full or queue.when_no_agents == "overflow") else ""
            if not overflow or overflow in tried:
                commands += self._records.treatment("rejected", call, queue.name, "", reason, now)
                return False, commands + self._divert(call, RouteAction.REJECT, "", "", now)
            commands += self._overflow(call, overflow, reason, now)
            if call.queue != overflow:
                return False, commands

    def _entry_refusal(self, queue: QueueConfig) -> str:
        """Why ``queue`` takes no new caller now (empty: it does)."""
        book = self._book
        if queue.max_waiting_calls:
            waiting = sum(1 for c in book.calls.values() if c.queue == queue.name and c.state in QUEUED)
            if waiting >= queue.max_waiting_calls:
                return "queue full"
        members = book.members.get(queue.name, ())
        if queue.when_no_agents != "wait" and all(a.state is AgentState.LOGGED_OUT for a in members):
            return "no agent logged in"
        return ""

    # ------------------------------------------------------------------ moving on

    def escalate(self, call: Call, now: float) -> list[Command]:
        """Overflow ``call`` if its wait in the current queue reached an overflow step (checked on every Tick and
        before each offer). Other steps (widen, add_tier) act through the call's ``Demand``."""
        if call.state not in (CallState.WAITING, CallState.OFFERING):
            return []
        queue = self._book.queue(call.queue)
        waited = now - call.queue_entered_at
        step = next((s for s in queue.escalation if s.overflow and s.after <= waited), None)
        if step is None:
            return []
        commands = self._offers.cancel_all(call, now, "ORIGINATOR_CANCEL")
        return commands + self._overflow(call, step.overflow, f"escalation after {step.after:g} s", now)

    def _overflow(self, call: Call, target: str, reason: str, now: float) -> list[Command]:
        """Send ``call`` to ``target``: another queue (it keeps its entry time, so its place in the order) or an
        extension (it leaves fsrouter with outcome ``overflowed``). Counted in ``overflows``."""
        book = self._book
        origin = call.queue
        book.overflows[origin, target] += 1
        commands = self._records.treatment("overflow", call, origin, target, reason, now)
        if target in book.rules.queues:
            call.queue = target
            call.queue_entered_at = now
            moh = book.queue(target).moh
            if call.uuid in book.calls and moh and moh != book.queue(origin).moh:
                commands.append(PlayMusic(node=call.node, uuid=call.uuid, source=moh))
            return commands
        if call.uuid not in book.calls:  # a new caller that never waited
            return commands + self._divert(call, RouteAction.TRANSFER, target, "", now)
        commands.append(Transfer(node=call.node, uuid=call.uuid, destination=target))
        return commands + self.leave(call, CallOutcome.OVERFLOWED, now, reason)

    def check_max_wait(self, call: Call, now: float) -> list[Command]:
        """A caller past its queue's ``max_wait`` (the configuration in force, or the last one of a queue a
        reload removed) leaves: to ``timeout_destination`` if set, else hung up; outcome ``timed_out``."""
        config = self._book.queue(call.queue)
        if config.max_wait <= 0 or call.state not in (CallState.WAITING, CallState.OFFERING):
            return []
        if now - call.entered_at < config.max_wait:
            return []
        commands = self._offers.cancel_all(call, now, "ORIGINATOR_CANCEL")
        if config.timeout_destination:
            commands.append(Transfer(node=call.node, uuid=call.uuid, destination=config.timeout_destination))
        else:
            commands.append(Kill(node=call.node, uuid=call.uuid, cause="NORMAL_CLEARING"))
        return commands + self.leave(call, CallOutcome.TIMED_OUT, now, "max wait reached")

    # ------------------------------------------------------------------ channel events

    def on_answered(self, uuid: str, now: float) -> list[Command]:
        """CHANNEL_ANSWER of a caller (bridged once its agent is ready) or of an agent leg."""
        call = self._book.calls.get(uuid)
        if call is None:
            return self._offers.on_leg_answered(uuid, now)
        call.answered = True
        return self._offers.bridge_if_ready(call, now)

    def on_hold_changed(self, event: HoldChanged, now: float) -> list[Command]:
        """Either leg may be the one FreeSWITCH reports held (the agent's phone, or ``uuid_hold`` on the caller)."""
        call = self._book.calls.get(event.uuid) or self._book.call_of_agent_leg(event.uuid)
        if call is None or call.state is not CallState.TALKING:
            return []
        if event.held and call.held_since is None:
            call.held_since = call.hold_changed_at = now
        elif not event.held and call.held_since is not None:
            call.end_hold(now)
            call.hold_changed_at = now
        return []

    def on_hangup(self, event: ChannelHungUp, now: float) -> list[Command]:
        """A caller, an agent leg ringing or answered, or the agent leg of a conversation hung up."""
        book = self._book
        commands = self._bridged_if_sighted(event.uuid, now)
        call = book.calls.get(event.uuid)
        if call is not None:
            outcome = CallOutcome.ANSWERED if call.state is CallState.TALKING else CallOutcome.ABANDONED
            if outcome is CallOutcome.ABANDONED:
                commands += self._offers.cancel_all(call, now, "ORIGINATOR_CANCEL")
            return commands + self.leave(call, outcome, now, event.cause, hung_up=True, ended_at=event.hung_up_at)
        offer = book.legs.get(event.uuid)
        if offer is not None:
            return commands + self._offers.failed(offer, now, event.cause)
        talking = book.call_of_agent_leg(event.uuid)
        if talking is not None and talking.state is CallState.TALKING:
            return commands + self.leave(
                talking, CallOutcome.ANSWERED, now, event.cause, hung_up=True, ended_at=event.hung_up_at
            )
        return commands

    def _bridged_if_sighted(self, channel: str, now: float) -> list[Command]:
        """Before the hang-up of ``channel`` ends a call still connecting: if the last audit found its caller and
        agent leg bridged, they talked and its CHANNEL_BRIDGE was lost (``reconcile.py``)."""
        book = self._book
        offer = book.legs.get(channel)
        call = book.calls.get(channel if offer is None else offer.call_uuid)
        if call is None or call.state is not CallState.CONNECTING or call.agent_leg is None:
            return []
        heal = Heal(HealKind.BRIDGE_LOST, call.node, call.agent_leg, call.uuid)
        seen_at = book.sighted(heal)
        if seen_at is None:
            return []
        book.count_heal(heal)
        return self._offers.mark_talking(call, seen_at)

    def on_left_park(self, event: CallLeftPark, now: float) -> list[Command]:
        """The caller's channel left park (module docstring): a waiting caller leaves as ``left``, its offers
        cancelled. The unpark of fsrouter's own bridge (sent, not yet confirmed) and of a talking caller are not a
        departure."""
        call = self._book.calls.get(event.uuid)
        if call is None or call.state is CallState.TALKING or call.bridge_sent:
            return []
        reason = f"left park for {event.destination}" if event.destination != call.destination else "left park"
        commands = self._records.treatment("left", call, call.queue, event.destination, reason, now)
        commands += self._offers.cancel_all(call, now, "ORIGINATOR_CANCEL")
        return commands + self.leave(call, CallOutcome.LEFT, now, reason)

    def on_answer_failed(self, event: CommandFailed, now: float) -> list[Command]:
        """FreeSWITCH refused to answer the caller: it cannot be bridged, so it leaves as ``failed``."""
        call = self._book.calls.get(event.uuid)
        if call is None:
            return []
        commands: list[Command] = [Kill(node=call.node, uuid=call.uuid, cause="NORMAL_TEMPORARY_FAILURE")]
        commands += self._offers.cancel_all(call, now, "ORIGINATOR_CANCEL")
        return commands + self.leave(call, CallOutcome.FAILED, now, f"answer failed: {event.reason}")

    # ------------------------------------------------------------------ leaving

    def leave(
        self,
        call: Call,
        outcome: CallOutcome,
        now: float,
        cause: str,
        *,
        hung_up: bool = False,
        ended_at: float | None = None,
    ) -> list[Command]:
        """End the call's stay with its one record: ``hung_up`` (after a conversation or not), or on our decision
        (timed out, overflowed to an extension, failed, lost). Its agent, if any, is freed (to wrap-up when they
        talked). ``ended_at``: when the caller left, if before ``now`` (``Records.call``)."""
        talking = call.state is CallState.TALKING
        if hung_up:
            trigger = CallTrigger.HANGUP if talking else CallTrigger.CALLER_HANGUP
        else:
            trigger = CallTrigger.LOST if talking else CallTrigger.LEAVE_QUEUE
        call.state = advance(CALL_TRANSITIONS, call.state, trigger)
        del self._book.calls[call.uuid]
        commands: list[Command] = [self._records.call(call, outcome, now, cause, ended_at=ended_at)]
        agent = self._book.agents.get(call.agent_id or "")
        if agent is not None and agent.call_uuid == call.uuid:
            commands += self._presence.call_over(agent, call, now, connected=call.connected_at is not None)
        return commands


def _treatment(call: Call, action: RouteAction, destination: str, announcement: str) -> tuple[Command, CallOutcome]:
    """What a closed-hours, transfer or reject decision does to the caller's channel, and the outcome it records."""
    if action is RouteAction.CLOSED:
        target = f"playback:{announcement},hangup:NORMAL_CLEARING" if announcement else "hangup:NORMAL_CLEARING"
        return Transfer(node=call.node, uuid=call.uuid, destination=target, dialplan="inline"), CallOutcome.CLOSED
    if action is RouteAction.TRANSFER and destination:
        return Transfer(node=call.node, uuid=call.uuid, destination=destination), CallOutcome.OVERFLOWED
    return Kill(node=call.node, uuid=call.uuid, cause="CALL_REJECTED"), CallOutcome.REJECTED
