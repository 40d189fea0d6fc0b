"""Records and views: the one record each call, offer and agent state change ends with, the routing traces, and
the immutable snapshot that metrics, ``fsrouter status`` and the CLI read."""

from __future__ import annotations

from dataclasses import replace

from fsrouter.core.causes import offer_result
from fsrouter.core.commands import (
    AgentStateRecord,
    CallOutcome,
    CallRecord,
    Command,
    OfferRecord,
    RecordAgentState,
    RecordCall,
    RecordOffer,
    RecordTrace,
)
from fsrouter.core.explain import Trace, treatment_trace
from fsrouter.core.kpi import keep_thresholds
from fsrouter.core.lifecycle import AgentState, CallState
from fsrouter.core.model import Agent, Call, Offer
from fsrouter.core.routing.book import Book
from fsrouter.core.rules import CallInfo, RouteAction, RouteDecision, Rules
from fsrouter.core.snapshot import AGENT_VIEW_STATES, UNREGISTERED, AgentView, CallView, QueueView, Snapshot

#: states in which a call still waits for an agent (an offer may be ringing, or the bridge be on its way)
QUEUED = (CallState.WAITING, CallState.OFFERING, CallState.CONNECTING)
#: states in which a caller of a queue a reload removed is classified again (not yet taken by an agent)
REHOMED = (CallState.WAITING, CallState.OFFERING)


def reload_destination(call: Call, rules: Rules, now: float) -> RouteDecision:
    """Where a caller waiting in a queue that ``rules`` no longer have goes: classified again as if it parked at
    ``now`` (a queue decision naming no queue of ``rules`` is a reject, as for a new caller)."""
    info = CallInfo(caller_number=call.caller_number, destination=call.destination, variables=call.variables)
    decision = rules.classify(info, now)
    if decision.action is RouteAction.QUEUE and decision.queue not in rules.queues:
        return replace(decision, action=RouteAction.REJECT)
    return decision


def _destination_label(decision: RouteDecision) -> str:
    """``queue support``, ``closed``, ``transfer 5000`` or ``reject``: a reload's destination for a caller."""
    if decision.action is RouteAction.QUEUE:
        return f"queue {decision.queue}"
    if decision.action is RouteAction.TRANSFER and decision.destination:
        return f"transfer {decision.destination}"
    return str(decision.action) if decision.action is RouteAction.CLOSED else str(RouteAction.REJECT)


class Records:
    """Builds the records and views of what is in the ``book``."""

    def __init__(self, book: Book) -> None:
        self._book = book

    # ------------------------------------------------------------------ records

    def call(
        self, call: Call, outcome: CallOutcome, now: float, cause: str, *, ended_at: float | None = None
    ) -> RecordCall:
        """The stay's one record; the stay is remembered so that a re-learnt channel cannot enter twice.

        It ends at ``now``, or at ``ended_at`` when the caller left earlier than fsrouter learnt it (FreeSWITCH's
        hang-up time, or the disconnect during which it was lost), never before the call entered, was connected or
        last changed hold as the router saw them (its own clock: a hang-up delivered a little late under load must
        not end a call before a hold the router already counted). It keeps its queue's thresholds
        (``kpi.keep_thresholds``)."""
        self._book.ended(call)
        end = now
        if ended_at is not None:  # never before what the router saw of the call on its own clock
            seen = [call.entered_at, call.connected_at, call.hold_changed_at]
            end = min(now, max(ended_at, *(at for at in seen if at is not None)))
        call.end_hold(end)
        record = CallRecord(
            uuid=call.uuid,
            node=call.node,
            queue=call.queue,
            outcome=outcome,
            entered_at=call.entered_at,
            ended_at=end,
            agent=call.agent_id if call.connected_at is not None else None,
            answered_at=call.connected_at,
            caller_number=call.caller_number,
            destination=call.destination,
            hangup_cause=cause,
            offers=call.offers_made,
            hold_seconds=call.hold_seconds,
            stay=call.stay,
            previous_stay=call.previous_stay,
        )
        return RecordCall(record=keep_thresholds(record, self._book.queues.get(call.queue)))

    @staticmethod
    def agent(agent_id: str, state: AgentState, now: float, reason: str) -> RecordAgentState:
        return RecordAgentState(record=AgentStateRecord(agent=agent_id, state=state.value, at=now, reason=reason))

    @staticmethod
    def offer(offer: Offer, call: Call, now: float, cause: str) -> RecordOffer:
        """The offer's record: ``answered``, or the cause it ended with (``core/causes.py``)."""
        return RecordOffer(
            record=OfferRecord(
                call_uuid=call.uuid,
                leg_uuid=offer.leg_uuid,
                agent=offer.agent_id,
                queue=call.queue,
                offered_at=offer.offered_at,
                ended_at=now,
                result=offer_result(cause),
            )
        )

    def trace(self, call: Call, trace: Trace) -> list[Command]:
        """Keep ``trace`` for ``explain``, and have the store keep it too when traces are emitted."""
        self._book.traces.add(call.uuid, trace)
        return [RecordTrace(call_uuid=call.uuid, trace=trace)] if self._book.options.emit_traces else []

    def treatment(self, kind: str, call: Call, origin: str, target: str, reason: str, now: float) -> list[Command]:
        """Trace a call leaving queue ``origin`` (``explain.treatment_trace``)."""
        version = self._book.rules.version
        return self.trace(call, treatment_trace(kind, call, origin, target, reason, rules_version=version, now=now))

    # ------------------------------------------------------------------ views

    def snapshot(self, now: float) -> Snapshot:
        book = self._book
        return Snapshot(
            taken_at=now,
            queues=tuple(self._queue_view(name) for name in book.queue_names()),
            agents=tuple(self._agent_view(agent, now) for agent in book.agents.values()),
            calls=tuple(_call_view(call, now) for call in book.calls.values()),
            nodes=dict(book.nodes_connected),
            rules_version=book.rules.version,
            rules_loaded_at=book.rules.loaded_at,
            draining=book.draining,
            heals=dict(book.heals),
            overflows=dict(book.overflows),
            transfers=dict(book.transfers),
        )

    def reload_diff(self, new: Rules, now: float) -> dict[str, object]:
        """What swapping in ``new`` at ``now`` would change, and what it does to the calls in flight (for the
        reload's log line and ``fsrouter reload --dry-run``): each caller of a removed queue with its
        ``destination`` (``reload_destination``; ``stays with its agent`` once an agent took it)."""
        old = self._book.rules
        old_agents = {agent.id: agent for agent in old.agents}
        new_agents = {agent.id: agent for agent in new.agents}
        removed_queues = sorted(set(old.queues) - set(new.queues))
        kept = set(old.queues) & set(new.queues)
        return {
            "queues_added": sorted(set(new.queues) - set(old.queues)),
            "queues_removed": removed_queues,
            "queues_changed": sorted(q for q in kept if old.queues[q] != new.queues[q]),
            "agents_added": sorted(set(new_agents) - set(old_agents)),
            "agents_removed": sorted(set(old_agents) - set(new_agents)),
            "agents_changed": sorted(a for a in set(old_agents) & set(new_agents) if old_agents[a] != new_agents[a]),
            "calls_in_removed_queues": [
                {
                    "call": call.uuid,
                    "queue": call.queue,
                    "destination": _destination_label(reload_destination(call, new, now))
                    if call.state in REHOMED
                    else "stays with its agent",
                }
                for call in sorted(self._book.calls.values(), key=lambda c: c.arrival)
                if call.queue in removed_queues
            ],
            "calls_policy": "calls keep their place and entry time; a caller waiting in a removed queue is "
            "classified again by the new rules (entry time and priority kept) and goes to its destination",
        }

    def _queue_view(self, name: str) -> QueueView:
        book = self._book
        calls = [call for call in book.calls.values() if call.queue == name]
        counts = dict.fromkeys(AGENT_VIEW_STATES, 0)
        members = [agent for agent in book.agents.values() if name in agent.config.queues]
        for agent in members:
            counts[_view_state(agent)] += 1
        config = book.rules.queues.get(name)
        return QueueView(
            name=name,
            strategy=config.strategy if config else "",
            waiting=sum(1 for c in calls if c.state in QUEUED),
            offering=sum(1 for c in calls if c.state is CallState.OFFERING),
            talking=sum(1 for c in calls if c.state is CallState.TALKING),
            oldest_entered_at=min((c.entered_at for c in calls if c.state in QUEUED), default=None),
            agents=counts,
            service_level_seconds=config.service_level_seconds if config else 0.0,
            service_level_target=config.service_level_target if config else 0.0,
            unregistered=sum(1 for agent in members if not agent.reachable),
        )

    def _agent_view(self, agent: Agent, now: float) -> AgentView:
        queues = self._book.queues
        return AgentView(
            id=agent.id,
            endpoint=agent.config.endpoint,
            state=agent.state.value,
            since=agent.since,
            registered=agent.registered,
            reachable=agent.reachable,
            queues=agent.config.queues,
            call_uuid=agent.call_uuid,
            calls_answered=agent.calls_answered,
            no_answer_count=agent.no_answer_count,
            occupancy={
                queue: agent.occupancy(now, queues[queue].occupancy_window)
                for queue in agent.config.queues
                if queue in queues
            },
            registrations=dict(sorted(agent.registrations.items())),
        )


def _view_state(agent: Agent) -> str:
    """The state agents-by-state counts ``agent`` in (``snapshot.UNREGISTERED``)."""
    if agent.state is AgentState.AVAILABLE and not agent.reachable:
        return UNREGISTERED
    return agent.state.value


def _call_view(call: Call, now: float) -> CallView:
    return CallView(
        uuid=call.uuid,
        node=call.node,
        queue=call.queue,
        state=call.state.value,
        entered_at=call.entered_at,
        waited=(call.connected_at if call.connected_at is not None else now) - call.entered_at,
        on_hold=call.held_since is not None,
        priority=call.priority,
        caller_number=call.caller_number,
        agent=call.agent_id,
    )
