"""The routing core: ``Router.handle(event, now) -> list[Command]``.

Theory of operation
-------------------
The router is a pure state machine in the style of h11: the daemon feeds it events (translated from ESL frames,
plus ticks and operator actions) with the current time, and executes the commands it returns, in order. It never
reads a clock, a socket or a file, so every behaviour can be replayed in a test with a fake clock, and faster
than real time in a what-if simulation.

One call flows like this (``design.md``, "How a call flows"):

1. ``CallParked`` of a marked caller: classify it with the rules (queue, priority, skills, or a closed/transfer/
   reject action), answer it if the dialplan did not (a parked, unanswered caller cannot be bridged), start music
   on hold, and queue it.
2. After every event the router *dispatches*: waiting calls, best score first (``ordering.py``: wait plus a
   bounded priority boost), are offered to the best eligible agent of their queue with ``Originate`` on the
   caller's node. Only the queue's own members are looked at (``_members``): ``strategies/eligibility.py``
   filters them (state, retry delay, tier, skills, ...), widened by the escalation steps the wait reached,
   and the queue's strategy ranks the rest. Each decision leaves a trace for ``explain`` (``explain.py``).
   Entry limits (``max_waiting_calls``, ``when_no_agents``) and overflow steps may send the caller to
   another queue (keeping its entry time) or an extension instead.
3. ``ChannelAnswered`` of the agent leg moves the call to CONNECTING; the ``Bridge`` waits for the originate
   job's result as well (``OriginateSucceeded``, see "The originate/bridge race" below) and for the caller's own
   answer. ``ChannelBridged`` confirms the conversation (TALKING). An offer that fails (busy, no answer,
   rejected, unregistered, the agent hung up before the bridge) puts the agent in the matching retry delay and
   the call back in the queue.
4. Either side hanging up ends the call with exactly one ``RecordCall``: answered, abandoned, timed_out, ...
   The agent goes to wrap-up, then back to AVAILABLE on a ``Tick``.

Every call that enters ends with exactly one record; every agent that rings ends the ring (answered, failed,
cancelled, or timed out by the watchdog in ``_on_tick``), so no agent stays RESERVED forever.

The originate/bridge race
-------------------------
The agent leg's CHANNEL_ANSWER arrives before the ``bgapi originate … &park()`` job has returned. FreeSWITCH
1.10's ``originate_function`` (mod_commands.c) writes ``+OK <uuid>`` only once the originate succeeded and the
leg was set to run ``&park()``; ``switch_ivr_uuid_bridge`` marks both legs for transfer, and when it lands while
``switch_ivr_originate`` is still waiting, the originate counts the peer as gone: the job reports
``-ERR ORIGINATOR_CANCEL`` although the legs do bridge (captured as ``bridge_race_err``), and a bridge landing just
between the success and ``&park()`` taking over was seen acknowledged and never done. So a bridge is sent only
once both the leg's answer and the job's result are in: after ``+OK`` it behaves like ``bridge_race_ok``. A job
that fails after the leg answered means only that ``&park()`` never ran: the leg's own events (its hang-up, its
bridge) are the truth, and the job's failure neither fails the offer nor frees the agent. A job result that never
comes (its event lost) is waited for ``bridge_timeout`` seconds after the answer, then the leg is bridged anyway.

A bridge acknowledged but not confirmed by CHANNEL_BRIDGE within ``bridge_timeout`` is sent once more to the same
agent leg (``BRIDGE_ATTEMPTS``); when that one is not confirmed either, the connection is ended cleanly: the agent
leg is killed, the agent is available again with no penalty (the offer's result is ``bridge_timeout``), and the
caller waits again with its entry time and priority, its music restarted. Never a silent abandon.

Reconciliation
--------------
The router's picture can drift from FreeSWITCH's: a hang-up, answer or bridge whose event was lost, an agent leg
left ringing or parked by a previous fsrouter process. After a (re)connect, ``NodeUp`` lists what the node has:
whatever the router tracks and the node no longer has ended while we were away, whatever it answered meanwhile
moves on. While connected, the daemon audits each node periodically (``ChannelsAudited``), and the same
comparisons heal, by doing what the lost event would have done: a caller (``call_gone``), an offer's agent leg
(``offer_leg_gone``) or a conversation's agent leg (``agent_leg_gone``) that the node no longer has ends; a
caller or offered agent leg the node answered (``answer_lost``) is answered, and bridged once both are; a
connecting call whose legs the node bridged (``bridge_lost``) is talking. The agent legs tagged as ours that the
router does not know are killed (``orphan_leg``). Each heal is counted in ``heals`` and told to ``on_heal``.

An audit only judges what existed before its listing was taken (a caller parked just after it is not missing),
and only what two audits in a row found is healed: an event may still be on its way when the listing is taken,
a leg just originated may not be listed yet, a leg just killed may still be. A listing taken before the node's
last ``NodeUp`` is ignored: that reconciliation is newer. One sighting is enough only where waiting for the
second would settle a call wrongly for good: the ring watchdog does not time out a leg the last audit found
answered, it answers it; a hang-up does not end as abandoned a call whose legs the last audit found bridged, the
caller talked. An answer or bridge reported by the audit stays true while its channels live, so no time rule
applies to it.

There is no "stuck agent" heal because no agent can be stuck on its own: an agent is RESERVED only while its
``ringing`` legs are offers the router tracks, and ON_CALL only while the call in ``call_uuid`` is tracked with
it as its agent; every path that ends an offer or a call frees its agent. A stuck agent is a stuck offer or
call, which the heals above end.
"""

from __future__ import annotations

import itertools
import math
import random as randomlib
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from fsrouter.core.commands import (
    AgentStateRecord,
    Answer,
    Bridge,
    CallRecord,
    Command,
    Kill,
    OfferRecord,
    Originate,
    PlayMusic,
    RecordAgentState,
    RecordCall,
    RecordOffer,
    RecordTrace,
    RecordWrapUp,
    Transfer,
    WrapUpRecord,
)
from fsrouter.core.events import (
    AgentControl,
    AgentRegistration,
    CallParked,
    ChannelAnswered,
    ChannelBridged,
    ChannelHungUp,
    ChannelsAudited,
    CommandFailed,
    Event,
    HoldChanged,
    NodeDown,
    NodeUp,
    OriginateFailed,
    OriginateSucceeded,
    ReleaseAgentLegs,
    StopTakingCalls,
    Tick,
)
from fsrouter.core.explain import Trace, TraceLog, offer_trace, treatment_trace
from fsrouter.core.lifecycle import AGENT_TRANSITIONS, CALL_TRANSITIONS, AgentState, CallState, advance
from fsrouter.core.model import Agent, Call, Offer
from fsrouter.core.ordering import order_key
from fsrouter.core.rules import AgentConfig, CallInfo, QueueConfig, Rules
from fsrouter.core.snapshot import HEAL_KINDS, AgentView, CallView, QueueView, Snapshot
from fsrouter.core.strategies import Strategy, make_strategy
from fsrouter.core.strategies.eligibility import demand_for, exclusion

#: how long past the ring timeout an offer may stay unresolved before the router kills the leg itself
OFFER_GRACE_SECONDS = 10.0
#: how many ended call uuids are remembered to refuse a second entry of the same channel
RECENTLY_ENDED_LIMIT = 10_000
#: reason of the ``logged_out`` record of an agent a reload removed: not a presence the operator chose
REMOVED_FROM_RULES = "removed from rules"
#: retry delay after an originate that could not even be sent (node down, command refused)
SEND_FAILURE_DELAY = 2.0
#: seconds a sent bridge may go unconfirmed by CHANNEL_BRIDGE (under load on a real FreeSWITCH, answer -> bridge
#: reached 1.4-1.8 s at p99), and that an answered agent leg's originate job result is waited for
DEFAULT_BRIDGE_TIMEOUT = 3.0
#: bridges sent to one answered agent leg before the connection is given up (the first, then one retry)
BRIDGE_ATTEMPTS = 2
#: the result of an offer whose agent answered but whose bridge FreeSWITCH never confirmed (no fault of the agent)
BRIDGE_TIMEOUT_RESULT = "BRIDGE_TIMEOUT"

_BUSY_CAUSES = frozenset({"USER_BUSY", "NORMAL_CIRCUIT_CONGESTION"})
_REJECT_CAUSES = frozenset({"CALL_REJECTED"})
_UNREGISTERED_CAUSES = frozenset({"USER_NOT_REGISTERED", "SUBSCRIBER_ABSENT"})
#: the hang-up cause recorded for a channel an audit found gone without its hang-up event having arrived
MISSED_HANGUP = "MISSED_HANGUP"
#: offers that ended through no fault of the agent (we cancelled, or lost track of the leg)
_NO_FAULT_CAUSES = frozenset({"ORIGINATOR_CANCEL", "LOSE_RACE", "LOST_WHILE_DISCONNECTED", MISSED_HANGUP})


@dataclass(frozen=True, slots=True)
class Heal:
    """A difference with FreeSWITCH that reconciliation found: ``kind`` (``HEAL_KINDS``), the ``channel`` (a
    caller or an agent leg) on ``node``, and the ``call`` it belongs to when the router knows it."""

    kind: str
    node: str
    channel: str
    call: str | None = None


def _new_uuid() -> str:
    return str(uuidlib.uuid4())


def _seeded_draws(seed: str) -> Callable[[], float]:
    """Uniform draws from a source seeded by ``seed``, created on the first draw (most decisions need none)."""
    source: list[randomlib.Random] = []

    def draw() -> float:
        if not source:
            source.append(randomlib.Random(seed))
        return source[0].random()

    return draw


class Router:
    """Routes parked callers to agents; see the module docstring for the flow."""

    def __init__(
        self,
        rules: Rules,
        *,
        now: float,
        new_id: Callable[[], str] = _new_uuid,
        random: Callable[[], float] | None = None,
        emit_traces: bool = False,
        on_heal: Callable[[Heal], None] | None = None,
        bridge_timeout: float = DEFAULT_BRIDGE_TIMEOUT,
    ) -> None:
        """``random`` feeds weighted-random; by default each decision draws from a source seeded with the
        call uuid and its offer count, so a replay of the same events makes the same choices.
        ``emit_traces`` adds a ``RecordTrace`` command per routing decision (the daemon stores them for
        ``fsrouter explain``); the last calls' traces are kept in memory either way (``explain``).
        ``on_heal`` is told every heal of the periodic reconciliation (the daemon logs them).
        ``bridge_timeout`` (seconds) bounds an unconfirmed bridge and a missing originate job result (module
        docstring, "The originate/bridge race")."""
        self._new_id = new_id
        self._bridge_timeout = bridge_timeout
        self._random = random
        self._emit_traces = emit_traces
        self._on_heal = on_heal
        #: calls moved out of a queue by overflow, by (queue, target queue or extension); every configured path
        #: starts at 0 so that a first overflow shows in rate()
        self.overflows: Counter[tuple[str, str]] = Counter()
        #: heals of the periodic reconciliation, by kind (every kind of ``HEAL_KINDS``, zeros included)
        self.heals: Counter[str] = Counter(dict.fromkeys(HEAL_KINDS, 0))
        self.rules = rules
        self.calls: dict[str, Call] = {}
        self.agents: dict[str, Agent] = {}
        self._legs: dict[str, Offer] = {}
        self._strategies: dict[str, Strategy] = {}
        #: every queue config seen, the last one of a queue a reload removed included (its callers stay)
        self._queues: dict[str, QueueConfig] = {}
        #: queue -> its declared agents by id, rebuilt on rules load: a decision never scans other queues
        self._members: dict[str, list[Agent]] = {}
        #: queue -> ids of members that can take one more offer by state (AVAILABLE, or RESERVED below
        #: max_offers); kept up to date on every agent state change, so idle queues are skipped at once
        self._routable: dict[str, set[str]] = {}
        self.traces = TraceLog()
        self._by_sip_user: dict[str, str] = {}
        self._node_cores: dict[str, str] = {}
        self._nodes_connected: dict[str, bool] = {}
        #: when each node's last NodeUp was handled: audits listed before it are stale
        self._node_up_at: dict[str, float] = {}
        #: what the last audit of each node found out of step, healed if the next audit finds it again, with when
        #: the first of the audits in a row that found it was listed
        self._drift: dict[str, dict[Heal, float]] = {}
        self.draining = False
        #: set by ReleaseAgentLegs: no agent is rung any more (the daemon is stopping)
        self.offering_stopped = False
        #: uuids of calls that already have their record (insertion-ordered, bounded)
        self._recently_ended: dict[str, None] = {}
        self._arrivals = itertools.count(1)
        self._apply_rules(rules, now)
        self._handlers: dict[type, Callable[[object, float], list[Command]]] = {
            CallParked: self._on_parked,  # type: ignore[dict-item]
            ChannelAnswered: self._on_answered,  # type: ignore[dict-item]
            ChannelBridged: self._on_bridged,  # type: ignore[dict-item]
            HoldChanged: self._on_hold_changed,  # type: ignore[dict-item]
            ChannelHungUp: self._on_hangup,  # type: ignore[dict-item]
            OriginateFailed: self._on_originate_failed,  # type: ignore[dict-item]
            OriginateSucceeded: self._on_originate_succeeded,  # type: ignore[dict-item]
            CommandFailed: self._on_command_failed,  # type: ignore[dict-item]
            AgentRegistration: self._on_registration,  # type: ignore[dict-item]
            AgentControl: self._on_agent_control,  # type: ignore[dict-item]
            NodeUp: self._on_node_up,  # type: ignore[dict-item]
            NodeDown: self._on_node_down,  # type: ignore[dict-item]
            ChannelsAudited: self._on_channels_audited,  # type: ignore[dict-item]
            Tick: self._on_tick,  # type: ignore[dict-item]
            StopTakingCalls: self._on_stop_taking_calls,  # type: ignore[dict-item]
            ReleaseAgentLegs: self._on_release_agent_legs,  # type: ignore[dict-item]
        }

    # ------------------------------------------------------------------ public API

    def handle(self, event: Event, now: float) -> list[Command]:
        """Apply one event at time ``now`` and return the commands to execute, in order."""
        commands = self._handlers[type(event)](event, now)
        commands += self._dispatch(now)
        return commands

    def load_rules(self, rules: Rules, now: float) -> list[Command]:
        """Swap in new, already validated rules (hot reload).

        Waiting calls keep their place and entry time. A call whose queue was removed stays where it is and is
        still served by the agents it already had a chance with, because its queue keeps existing for routing
        until it empties (documented policy: *stay until served*). Agents that were removed are logged out
        once they are idle; their current call is not touched.
        """
        self.rules = rules
        commands = self._apply_rules(rules, now)
        return commands + self._dispatch(now)

    def snapshot(self, now: float) -> Snapshot:
        """An immutable picture of queues, agents and calls for metrics and ``fsrouter status``."""
        return Snapshot(
            taken_at=now,
            queues=tuple(self._queue_view(name) for name in self._queue_names()),
            agents=tuple(self._agent_view(agent) for agent in self.agents.values()),
            calls=tuple(self._call_view(call, now) for call in self.calls.values()),
            nodes=dict(self._nodes_connected),
            rules_version=self.rules.version,
            rules_loaded_at=self.rules.loaded_at,
            draining=self.draining,
            heals=dict(self.heals),
            overflows=dict(self.overflows),
        )

    def explain(self, call_uuid: str, now: float | None = None) -> list[Trace]:
        """The routing traces of a recent call, oldest first (``core/explain.py`` describes them).

        With ``now``, a call still waiting also gets a fresh trace of what would be decided at that moment
        (why no agent takes it), which is not kept.
        """
        traces = self.traces.get(call_uuid)
        call = self.calls.get(call_uuid)
        if now is not None and call is not None and call.state is CallState.WAITING:
            traces.append(self._decide(call, now)[1])
        return traces

    # ------------------------------------------------------------------ rules

    def _apply_rules(self, rules: Rules, now: float) -> list[Command]:
        commands: list[Command] = []
        for name, queue in rules.queues.items():
            current = self._strategies.get(name)
            if current is None or current.name != queue.strategy:
                self._strategies[name] = make_strategy(queue.strategy)
        self._queues.update(rules.queues)
        for name, queue in rules.queues.items():
            for target in {queue.overflow, *(step.overflow for step in queue.escalation)} - {""}:
                self.overflows.setdefault((name, target), 0)
        declared = {config.id: config for config in rules.agents}
        for position, (agent_id, config) in enumerate(declared.items()):
            agent = self.agents.get(agent_id)
            if agent is None:
                state = AgentState.LOGGED_OUT if config.status == "logged-out" else AgentState.AVAILABLE
                agent = self.agents[agent_id] = Agent(config=config, state=state, since=now, idle_since=now)
                commands.append(self._agent_record(agent_id, state, now, "declared"))
            else:
                agent.config = config
            agent.position = position
        for agent_id, agent in list(self.agents.items()):
            if agent_id not in declared and agent.call_uuid is None:
                del self.agents[agent_id]
                commands.append(self._agent_record(agent_id, AgentState.LOGGED_OUT, now, REMOVED_FROM_RULES))
        self._by_sip_user = {agent.config.sip_user: agent_id for agent_id, agent in self.agents.items()}
        self._index_members(declared)
        return commands

    def _index_members(self, declared: dict[str, AgentConfig]) -> None:
        """Rebuild the per-queue indexes; agents removed from the rules (still on a call) get no new offers."""
        self._members = {}
        self._routable = {}
        for agent_id in sorted(declared):
            agent = self.agents[agent_id]
            for queue in agent.config.queues:
                self._members.setdefault(queue, []).append(agent)
                self._routable.setdefault(queue, set())
            self._update_routable(agent)

    def _update_routable(self, agent: Agent) -> None:
        """Keep ``_routable`` in step with ``agent``'s state (called on every state change)."""
        can_take_more = agent.state is AgentState.AVAILABLE or (
            agent.state is AgentState.RESERVED and len(agent.ringing) < agent.config.max_offers
        )
        for queue in agent.config.queues:
            routable = self._routable.get(queue)
            if routable is None:
                continue
            if can_take_more:
                routable.add(agent.id)
            else:
                routable.discard(agent.id)

    def _queue_names(self) -> list[str]:
        names = list(self.rules.queues)
        names += sorted({call.queue for call in self.calls.values()} - set(names))
        return names

    # ------------------------------------------------------------------ callers

    def _on_parked(self, event: CallParked, now: float) -> list[Command]:
        if event.uuid in self.calls or event.uuid in self._recently_ended or self.draining:
            return []
        decision = self.rules.classify(
            CallInfo(caller_number=event.caller_number, destination=event.destination, variables=event.variables),
            now,
        )
        entered_at = event.entered_at if event.entered_at is not None else now
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
            arrival=next(self._arrivals),
            answered=event.answered,
        )
        commands: list[Command] = [] if event.answered else [Answer(node=event.node, uuid=event.uuid)]
        if decision.action != "queue" or decision.queue not in self.rules.queues:
            return commands + self._divert(call, decision.action, decision.destination, decision.announcement, now)
        admitted, treatment = self._admit(call, now)
        commands += treatment
        if not admitted:
            return commands
        self.calls[call.uuid] = call
        moh = self.rules.queues[call.queue].moh
        if moh:
            commands.append(PlayMusic(node=call.node, uuid=call.uuid, source=moh))
        return commands

    def _divert(self, call: Call, action: str, destination: str, announcement: str, now: float) -> list[Command]:
        """Closed-hours, transfer and reject decisions: the call never waits, and still gets its one record."""
        if action == "closed":
            target = f"playback:{announcement},hangup:NORMAL_CLEARING" if announcement else "hangup:NORMAL_CLEARING"
            treatment: Command = Transfer(node=call.node, uuid=call.uuid, destination=target, dialplan="inline")
            outcome = "closed"
        elif action == "transfer" and destination:
            treatment = Transfer(node=call.node, uuid=call.uuid, destination=destination)
            outcome = "overflowed"
        else:
            treatment = Kill(node=call.node, uuid=call.uuid, cause="CALL_REJECTED")
            outcome = "rejected"
        return [treatment, self._call_record(call, outcome, now, cause="")]

    def _admit(self, call: Call, now: float) -> tuple[bool, list[Command]]:
        """Apply the entry limits of a new caller's queue: whether it may wait (in ``call.queue``, which an
        overflow may have changed), and the commands of what was done.

        A queue at ``max_waiting_calls`` overflows the caller (``overflow`` set) or rejects it; a queue with
        no agent logged in applies ``when_no_agents`` (wait, reject, overflow). An overflow to a queue is
        checked against that queue's limits in turn (the loader refuses overflow cycles; a cycle met
        anyway ends in a reject).
        """
        commands: list[Command] = []
        tried: set[str] = set()
        while True:
            queue = self.rules.queues[call.queue]
            tried.add(queue.name)
            reason = self._entry_refusal(queue)
            if not reason:
                return True, commands
            full = reason == "queue full"
            overflow = queue.overflow if (full or queue.when_no_agents == "overflow") else ""
            if not overflow or overflow in tried:
                commands += self._trace(call, self._treatment_trace("rejected", call, queue.name, "", reason, now))
                return False, commands + self._divert(call, "reject", "", "", now)
            commands += self._overflow(call, overflow, reason, now)
            if call.queue != overflow:
                return False, commands

    def _entry_refusal(self, queue: QueueConfig) -> str:
        """Why ``queue`` takes no new caller now (empty: it does)."""
        if queue.max_waiting_calls:
            waiting = sum(1 for c in self.calls.values() if c.queue == queue.name and c.state in _QUEUED)
            if waiting >= queue.max_waiting_calls:
                return "queue full"
        members = self._members.get(queue.name, ())
        if queue.when_no_agents != "wait" and all(a.state is AgentState.LOGGED_OUT for a in members):
            return "no agent logged in"
        return ""

    def _escalate(self, call: Call, now: float) -> list[Command]:
        """Overflow ``call`` if its wait in the current queue reached an overflow step (checked on every Tick
        and before each offer). Other steps (widen, add_tier) act through the call's ``Demand``."""
        queue = self._queues.get(call.queue)
        if queue is None or call.state not in (CallState.WAITING, CallState.OFFERING):
            return []
        waited = now - call.queue_entered_at
        step = next((s for s in queue.escalation if s.overflow and s.after <= waited), None)
        if step is None:
            return []
        commands: list[Command] = []
        for offer in list(call.offers.values()):
            commands += self._cancel_offer(offer, now, "ORIGINATOR_CANCEL")
        return commands + self._overflow(call, step.overflow, f"escalation after {step.after:g} s", now)

    def _overflow(self, call: Call, target: str, reason: str, now: float) -> list[Command]:
        """Send ``call`` to ``target``: another queue (it keeps its entry time, so its place in the order) or
        an extension (it leaves fsrouter with outcome ``overflowed``). Counted in ``overflows``."""
        origin = call.queue
        self.overflows[origin, target] += 1
        commands = self._trace(call, self._treatment_trace("overflow", call, origin, target, reason, now))
        if target in self.rules.queues:
            call.queue = target
            call.queue_entered_at = now
            moh = self.rules.queues[target].moh
            if call.uuid in self.calls and moh and moh != self._queues[origin].moh:
                commands.append(PlayMusic(node=call.node, uuid=call.uuid, source=moh))
            return commands
        if call.uuid not in self.calls:  # a new caller that never waited
            return commands + self._divert(call, "transfer", target, "", now)
        commands.append(Transfer(node=call.node, uuid=call.uuid, destination=target))
        return commands + self._leave(call, "overflowed", now, reason)

    def _treatment_trace(self, kind: str, call: Call, origin: str, target: str, reason: str, now: float) -> Trace:
        return treatment_trace(kind, call, origin, target, reason, rules_version=self.rules.version, now=now)

    def _on_answered(self, event: ChannelAnswered, now: float) -> list[Command]:
        call = self.calls.get(event.uuid)
        if call is not None:
            call.answered = True
            return self._bridge_if_ready(call, now)
        offer = self._legs.get(event.uuid)
        if offer is None or offer.answered:
            return []
        return self._agent_answered(offer, now)

    def _agent_answered(self, offer: Offer, now: float) -> list[Command]:
        offer.answered = True
        offer.answered_at = now
        call = self.calls[offer.call_uuid]
        agent = self.agents.get(offer.agent_id)
        commands: list[Command] = []
        for other in [o for o in call.offers.values() if o is not offer]:
            commands += self._cancel_offer(other, now, "LOSE_RACE")
        if agent is not None:  # its other calls ringing (max_offers > 1) go back to their queues
            for leg in sorted(agent.ringing - {offer.leg_uuid}):
                commands += self._cancel_offer(self._legs[leg], now, "ORIGINATOR_CANCEL")
        call.state = advance(CALL_TRANSITIONS, call.state, "agent_answered")
        call.agent_id = offer.agent_id
        call.agent_leg = offer.leg_uuid
        if agent is not None:
            agent.no_answer_count = 0
            commands += self._set_agent(agent, "answered", now, "answered offer")
            agent.call_uuid = call.uuid
        return commands + self._bridge_if_ready(call, now)

    def _bridge_if_ready(self, call: Call, now: float) -> list[Command]:
        """Bridge once the caller is answered (never an unanswered caller), and the agent leg answered with its
        originate job's result in (module docstring, "The originate/bridge race")."""
        if call.state is not CallState.CONNECTING or not call.answered or call.agent_leg is None or call.bridge_sent:
            return []
        offer = call.offers.get(call.agent_leg)
        if offer is not None and not offer.job_done:
            return []
        return self._send_bridge(call, now)

    @staticmethod
    def _send_bridge(call: Call, now: float) -> list[Command]:
        assert call.agent_leg is not None
        call.bridge_sent = True
        call.bridge_sent_at = now
        call.bridge_attempts += 1
        return [Bridge(node=call.node, caller_uuid=call.uuid, agent_uuid=call.agent_leg)]

    def _on_bridged(self, event: ChannelBridged, now: float) -> list[Command]:
        call = self.calls.get(event.uuid) or self.calls.get(event.other_uuid)
        if call is None or call.state is not CallState.CONNECTING:
            return []
        return self._mark_talking(call, now)

    def _mark_talking(self, call: Call, now: float) -> list[Command]:
        call.state = advance(CALL_TRANSITIONS, call.state, "bridged")
        call.connected_at = now
        offer = call.offers.get(call.agent_leg or "")
        if offer is None:
            return []
        self._forget_offer(offer)
        if offer.agent_id in self.agents:
            self.agents[offer.agent_id].calls_answered += 1
        return [self._offer_record(offer, call, now, "answered")]

    def _on_hold_changed(self, event: HoldChanged, now: float) -> list[Command]:
        """Either leg may be the one FreeSWITCH reports held (the agent's phone, or ``uuid_hold`` on the caller)."""
        call = self.calls.get(event.uuid) or self._call_of_agent_leg(event.uuid)
        if call is None or call.state is not CallState.TALKING:
            return []
        if event.held and call.held_since is None:
            call.held_since = now
        elif not event.held:
            self._end_hold(call, now)
        return []

    def _call_of_agent_leg(self, leg_uuid: str) -> Call | None:
        return next((call for call in self.calls.values() if call.agent_leg == leg_uuid), None)

    @staticmethod
    def _end_hold(call: Call, now: float) -> None:
        if call.held_since is not None:
            call.hold_seconds += max(0.0, now - call.held_since)
            call.held_since = None

    def _on_hangup(self, event: ChannelHungUp, now: float) -> list[Command]:
        commands = self._bridge_if_sighted(event.uuid, now)
        call = self.calls.get(event.uuid)
        if call is not None:
            return commands + self._caller_gone(call, now, event.cause)
        offer = self._legs.get(event.uuid)
        if offer is not None:
            return commands + self._offer_failed(offer, now, event.cause)
        talking = self._call_of_agent_leg(event.uuid)
        if talking is not None and talking.state is CallState.TALKING:
            return commands + self._end_call(talking, "answered", now, event.cause)
        return commands

    def _bridge_if_sighted(self, channel: str, now: float) -> list[Command]:
        """Before the hang-up of ``channel`` ends a call still connecting: if the last audit found its caller and
        agent leg bridged, they talked and its CHANNEL_BRIDGE was lost."""
        offer = self._legs.get(channel)
        call = self.calls.get(channel if offer is None else offer.call_uuid)
        if call is None or call.state is not CallState.CONNECTING or call.agent_leg is None:
            return []
        return self._heal_if_sighted(Heal("bridge_lost", call.node, call.agent_leg, call.uuid), now)

    def _caller_gone(self, call: Call, now: float, cause: str) -> list[Command]:
        if call.state is CallState.TALKING:
            return self._end_call(call, "answered", now, cause)
        commands: list[Command] = []
        for offer in list(call.offers.values()):
            commands += self._cancel_offer(offer, now, "ORIGINATOR_CANCEL")
        return commands + self._end_call(call, "abandoned", now, cause)

    def _end_call(self, call: Call, outcome: str, now: float, cause: str) -> list[Command]:
        trigger = "hangup" if call.state is CallState.TALKING else "caller_hangup"
        call.state = advance(CALL_TRANSITIONS, call.state, trigger)
        del self.calls[call.uuid]
        commands: list[Command] = [self._call_record(call, outcome, now, cause)]
        agent = self.agents.get(call.agent_id or "")
        if agent is not None and agent.call_uuid == call.uuid:
            agent.call_uuid = None
            commands += self._agent_call_over(agent, call, now, connected=outcome == "answered")
        return commands

    def _agent_call_over(
        self, agent: Agent, call: Call, now: float, *, connected: bool, reason: str = "caller left before bridge"
    ) -> list[Command]:
        """Free ``agent`` from ``call``: to wrap-up after a conversation, else available at once (``reason``)."""
        if not connected:
            agent.idle_since = now
            return self._set_agent(agent, "call_not_connected", now, reason)
        wrapup = agent.config.wrapup
        if wrapup is None:
            wrapup = self._queues[call.queue].wrapup
        agent.wrapup_until = now + wrapup
        agent.idle_since = now + wrapup
        agent.wrapup_call = (call.uuid, call.queue)
        commands = self._set_agent(agent, "call_ended", now, "call ended")
        if wrapup <= 0 and agent.state is AgentState.WRAP_UP:
            commands += self._set_agent(agent, "wrapup_done", now, "no wrap-up")
        return commands

    # ------------------------------------------------------------------ offers

    def _dispatch(self, now: float) -> list[Command]:
        """Offer waiting calls, best queue score first (``core/ordering.py``), to the best eligible agent.

        Only queues where some member can take an offer are looked at (``_routable``), so the cost follows
        the queues that can move, not the number of agents elsewhere. A call whose overflow step is due
        overflows instead of being offered. Agents still free once every waiting call had its turn join the
        ringing of simultaneous (ring-all) offers in progress: a waiting caller always comes first.
        """
        if self.offering_stopped:
            return []
        routable = [c for c in self.calls.values() if self._routable.get(c.queue) and self._may_ring_more(c)]
        if not routable:
            return []
        queues = self._queues
        routable.sort(key=lambda call: order_key(call, queues[call.queue], now))
        commands: list[Command] = []
        for call in routable:
            if call.state is not CallState.WAITING:
                continue
            escalated = self._escalate(call, now)
            if escalated:
                commands += escalated
            elif self._routable.get(call.queue):
                commands += self._offer(call, now)
        for call in routable:
            ringing_all = call.state is CallState.OFFERING and self._strategies[call.queue].simultaneous
            if ringing_all and call.uuid in self.calls and self._routable.get(call.queue):
                commands += self._offer(call, now)
        return commands

    def _may_ring_more(self, call: Call) -> bool:
        """A waiting call, or a ring-all offer in progress (it can take more agents)."""
        return call.state is CallState.WAITING or (
            call.state is CallState.OFFERING and self._strategies[call.queue].simultaneous
        )

    def _offer(self, call: Call, now: float) -> list[Command]:
        chosen, trace = self._decide(call, now)
        if not chosen:
            return []
        commands = self._trace(call, trace)
        strategy = self._strategies[call.queue]
        for agent in chosen:
            commands += self._ring(call, agent, strategy, now)
        return commands

    def _decide(self, call: Call, now: float) -> tuple[list[Agent], Trace]:
        """Pick the agent(s) to ring for ``call`` among its queue's members, with the trace saying why."""
        queue = self._queues[call.queue]
        strategy = self._strategies[call.queue]
        members = self._members.get(call.queue, [])
        draws = self._random or _seeded_draws(f"{call.uuid}/{call.offers_made}")
        demand = demand_for(call, queue, members, now, draws)
        candidates: list[Agent] = []
        excluded: list[tuple[Agent, str]] = []
        for agent in members:
            reason = exclusion(agent, call, demand, self.rules, now)
            if reason is None:
                candidates.append(agent)
            else:
                excluded.append((agent, reason))
        ranked = strategy.rank(candidates, call, demand, now)
        chosen = [agent for agent, _ in (ranked if strategy.simultaneous else ranked[:1])]
        trace = offer_trace(call, demand, strategy, ranked, excluded, chosen, rules_version=self.rules.version, now=now)
        return chosen, trace

    def _trace(self, call: Call, trace: Trace) -> list[Command]:
        """Keep ``trace`` for ``explain``, and have the store keep it too when traces are emitted."""
        self.traces.add(call.uuid, trace)
        return [RecordTrace(call_uuid=call.uuid, trace=trace)] if self._emit_traces else []

    def _ring(self, call: Call, agent: Agent, strategy: Strategy, now: float) -> list[Command]:
        leg_uuid = self._new_id()
        offer = Offer(leg_uuid=leg_uuid, call_uuid=call.uuid, agent_id=agent.id, node=call.node, offered_at=now)
        call.state = advance(CALL_TRANSITIONS, call.state, "offer")
        call.offers[leg_uuid] = offer
        call.offers_made += 1
        self._legs[leg_uuid] = offer
        agent.offers_received += 1
        agent.call_uuid = call.uuid
        agent.ringing.add(leg_uuid)
        strategy.offered(agent, now)
        ring_timeout = self._queues[call.queue].ring_timeout
        originate = Originate(
            node=call.node,
            leg_uuid=leg_uuid,
            call_uuid=call.uuid,
            endpoint=agent.config.endpoint,
            timeout=ring_timeout,
            caller_number=call.caller_number,
            caller_name=call.caller_name,
            variables={"fsrouter_queue": call.queue, "fsrouter_agent": agent.id},
        )
        if agent.state is AgentState.RESERVED:  # already ringing for another call (max_offers > 1)
            self._update_routable(agent)
            return [originate]
        return self._set_agent(agent, "offer", now, f"offered {call.uuid}") + [originate]

    def _cancel_offer(self, offer: Offer, now: float, cause: str) -> list[Command]:
        """We end an offer ourselves (caller left, another agent won): no penalty for the agent."""
        self._forget_offer(offer)
        commands: list[Command] = [Kill(node=offer.node, uuid=offer.leg_uuid, cause=cause)]
        agent = self.agents.get(offer.agent_id)
        if agent is not None and agent.state is AgentState.RESERVED and not self._still_ringing(agent):
            commands += self._set_agent(agent, "offer_cancelled", now, cause.lower())
        call = self.calls.get(offer.call_uuid)
        if call is not None:
            commands.append(self._offer_record(offer, call, now, cause))
            if not call.offers and call.state is CallState.OFFERING:
                call.state = advance(CALL_TRANSITIONS, call.state, "all_offers_failed")
        return commands

    def _still_ringing(self, agent: Agent) -> bool:
        """After one of ``agent``'s offers ended: whether another one still rings (it then stays RESERVED)."""
        if agent.ringing:
            self._update_routable(agent)
            return True
        agent.call_uuid = None
        return False

    def _forget_offer(self, offer: Offer) -> None:
        self._legs.pop(offer.leg_uuid, None)
        call = self.calls.get(offer.call_uuid)
        if call is not None:
            call.offers.pop(offer.leg_uuid, None)
        agent = self.agents.get(offer.agent_id)
        if agent is not None:
            agent.ringing.discard(offer.leg_uuid)

    def _on_originate_failed(self, event: OriginateFailed, now: float) -> list[Command]:
        """Before the leg answered: the offer failed. After: only ``&park()`` never ran (module docstring)."""
        offer = self._legs.get(event.leg_uuid)
        if offer is None:
            return []
        if not offer.answered:
            return self._offer_failed(offer, now, event.cause)
        return self._job_done(offer, now)

    def _on_originate_succeeded(self, event: OriginateSucceeded, now: float) -> list[Command]:
        """``+OK``: the agent answered (even if its CHANNEL_ANSWER is late or lost) and the leg runs ``&park()``."""
        offer = self._legs.get(event.leg_uuid)
        if offer is None:
            return []
        if not offer.answered:
            offer.job_done = True
            return self._agent_answered(offer, now)
        return self._job_done(offer, now)

    def _job_done(self, offer: Offer, now: float) -> list[Command]:
        offer.job_done = True
        return self._bridge_if_ready(self.calls[offer.call_uuid], now)

    def _offer_failed(self, offer: Offer, now: float, cause: str) -> list[Command]:
        """The agent leg ended before the bridge: penalise by cause, put the call back in the queue."""
        self._forget_offer(offer)
        call = self.calls[offer.call_uuid]
        agent = self.agents.get(offer.agent_id)
        commands: list[Command] = [self._offer_record(offer, call, now, cause)]
        if offer.answered:
            delay = agent.config.reject_delay if agent else 0.0
            return commands + self._connect_failed(call, now, delay, "agent leg ended before the bridge")
        if agent is not None and agent.state is AgentState.RESERVED and not self._still_ringing(agent):
            commands += self._penalise(agent, cause, now)
        if not call.offers and call.state is CallState.OFFERING:
            call.state = advance(CALL_TRANSITIONS, call.state, "all_offers_failed")
        return commands

    def _connect_failed(self, call: Call, now: float, retry_delay: float, reason: str) -> list[Command]:
        """The agent answered but the legs were never bridged: the call waits again (its music back on if a
        bridge had stopped it), the agent is freed and skipped for ``retry_delay`` seconds."""
        agent = self.agents.get(call.agent_id or "")
        call.state = advance(CALL_TRANSITIONS, call.state, "bridge_failed")
        moh = self._queues[call.queue].moh
        commands: list[Command] = (
            [PlayMusic(node=call.node, uuid=call.uuid, source=moh)] if call.bridge_sent and moh else []
        )
        call.bridge_sent = False
        call.bridge_attempts = 0
        call.agent_id = None
        call.agent_leg = None
        if agent is None or agent.call_uuid != call.uuid:
            return commands
        agent.call_uuid = None
        agent.ready_at = now + retry_delay
        return commands + self._agent_call_over(agent, call, now, connected=False, reason=reason)

    def _check_connecting(self, call: Call, now: float) -> list[Command]:
        """The bounds of a call still connecting (module docstring, "The originate/bridge race"): an answered leg
        whose job result is missing is bridged anyway; an unconfirmed bridge is sent again, then given up."""
        if call.state is not CallState.CONNECTING or call.agent_leg is None:
            return []
        offer = call.offers.get(call.agent_leg)
        if not call.bridge_sent:
            waited = now - (offer.answered_at or now) if offer is not None else 0.0
            if offer is None or offer.job_done or waited <= self._bridge_timeout:
                return []
            return self._job_done(offer, now)
        if now - call.bridge_sent_at <= self._bridge_timeout:
            return []
        commands = self._heal_if_sighted(Heal("bridge_lost", call.node, call.agent_leg, call.uuid), now)
        if call.state is not CallState.CONNECTING:  # the last audit found them bridged: they talk
            return commands
        if call.bridge_attempts < BRIDGE_ATTEMPTS:
            return commands + self._send_bridge(call, now)
        commands.append(Kill(node=call.node, uuid=call.agent_leg, cause="NORMAL_CLEARING"))
        if offer is not None:  # over now: the killed leg's hang-up must find nothing left to end
            self._forget_offer(offer)
            commands.append(self._offer_record(offer, call, now, BRIDGE_TIMEOUT_RESULT))
        return commands + self._connect_failed(call, now, 0.0, "bridge never confirmed")

    def _penalise(self, agent: Agent, cause: str, now: float) -> list[Command]:
        config = agent.config
        if cause in _NO_FAULT_CAUSES:
            return self._set_agent(agent, "offer_cancelled", now, cause.lower())
        if cause in _UNREGISTERED_CAUSES:
            agent.registered = False
            return self._set_agent(agent, "offer_failed", now, "not registered")
        if cause in _BUSY_CAUSES:
            agent.ready_at = now + config.busy_delay
        elif cause in _REJECT_CAUSES:
            agent.ready_at = now + config.reject_delay
        elif cause == "SEND_FAILED":
            agent.ready_at = now + SEND_FAILURE_DELAY
        else:
            agent.ready_at = now + config.no_answer_delay
            agent.no_answer_count += 1
            if config.max_no_answer and agent.no_answer_count >= config.max_no_answer:
                agent.no_answer_count = 0
                return self._set_agent(agent, "too_many_no_answers", now, f"{config.max_no_answer} no-answers")
        return self._set_agent(agent, "offer_failed", now, cause.lower())

    def _on_command_failed(self, event: CommandFailed, now: float) -> list[Command]:
        if event.command == "originate":
            offer = self._legs.get(event.uuid)
            return [] if offer is None else self._offer_failed(offer, now, "SEND_FAILED")
        if event.command == "bridge":
            call = self.calls.get(event.uuid)
            if call is None or call.state is not CallState.CONNECTING or call.agent_leg is None:
                return []
            kill: list[Command] = [Kill(node=call.node, uuid=call.agent_leg, cause="NORMAL_CLEARING")]
            answered = call.offers.get(call.agent_leg)
            if answered is not None:  # over now: the killed leg's hang-up must find nothing left to end
                self._forget_offer(answered)
                kill.append(self._offer_record(answered, call, now, "SEND_FAILED"))
            return kill + self._connect_failed(call, now, SEND_FAILURE_DELAY, "bridge refused")
        if event.command == "answer":
            call = self.calls.get(event.uuid)
            if call is None:
                return []
            commands: list[Command] = [Kill(node=call.node, uuid=call.uuid, cause="NORMAL_TEMPORARY_FAILURE")]
            for offer in list(call.offers.values()):
                commands += self._cancel_offer(offer, now, "ORIGINATOR_CANCEL")
            return commands + self._leave(call, "failed", now, f"answer failed: {event.reason}")
        return []

    def _leave(self, call: Call, outcome: str, now: float, cause: str) -> list[Command]:
        """The call leaves the queue on our decision (timed out, failed, lost): its one record."""
        call.state = advance(CALL_TRANSITIONS, call.state, "leave_queue" if call.state in _QUEUED else "lost")
        del self.calls[call.uuid]
        commands: list[Command] = [self._call_record(call, outcome, now, cause)]
        agent = self.agents.get(call.agent_id or "")
        if agent is not None and agent.call_uuid == call.uuid:
            agent.call_uuid = None
            commands += self._agent_call_over(agent, call, now, connected=call.connected_at is not None)
        return commands

    # ------------------------------------------------------------------ agents

    def _set_agent(self, agent: Agent, trigger: str, now: float, reason: str) -> list[Command]:
        state = advance(AGENT_TRANSITIONS, agent.state, trigger)
        commands: list[Command] = []
        if agent.state is AgentState.WRAP_UP and state is not AgentState.WRAP_UP:
            commands += self._wrapup_over(agent, now)
        agent.enter(state, now)
        self._update_routable(agent)
        commands.append(self._agent_record(agent.id, agent.state, now, reason))
        if agent.logout_pending and agent.state in (AgentState.AVAILABLE, AgentState.WRAP_UP):
            agent.logout_pending = False
            commands += self._set_agent(agent, "logout", now, "logout after call")
        return commands

    @staticmethod
    def _wrapup_over(agent: Agent, now: float) -> list[Command]:
        """The wrap-up time of the call the agent leaves wrap-up for (however it ends: over, ready, break...)."""
        if agent.wrapup_call is None:
            return []
        (call_uuid, queue), agent.wrapup_call = agent.wrapup_call, None
        seconds = now - agent.since
        if seconds <= 0:
            return []
        return [
            RecordWrapUp(
                record=WrapUpRecord(call_uuid=call_uuid, agent=agent.id, queue=queue, ended_at=now, seconds=seconds)
            )
        ]

    def _on_registration(self, event: AgentRegistration, now: float) -> list[Command]:
        agent_id = self._by_sip_user.get(event.user.split("@", 1)[0])
        if agent_id is None:
            return []
        self.agents[agent_id].registered = event.registered
        return []

    def _on_agent_control(self, event: AgentControl, now: float) -> list[Command]:
        agent = self.agents.get(event.agent_id)
        if agent is None:
            return []
        if event.action == "logout" and agent.state in (AgentState.RESERVED, AgentState.ON_CALL):
            agent.logout_pending = True
            return []
        trigger = event.action
        if (agent.state, trigger) not in AGENT_TRANSITIONS:
            return []
        if trigger in ("login", "ready"):
            agent.idle_since = now
            agent.ready_at = now
            agent.no_answer_count = 0
        return self._set_agent(agent, trigger, now, f"{event.action} from {event.source}")

    # ------------------------------------------------------------------ time and nodes

    def _on_tick(self, event: Tick, now: float) -> list[Command]:
        commands: list[Command] = []
        for agent in self.agents.values():
            if agent.state is AgentState.WRAP_UP and agent.wrapup_until <= now:
                commands += self._set_agent(agent, "wrapup_done", now, "wrap-up over")
        for offer in list(self._legs.values()):
            if offer.leg_uuid not in self._legs:  # cancelled by a leg of its call or agent healed answered above
                continue
            ring_timeout = self._queues[self.calls[offer.call_uuid].queue].ring_timeout
            if not offer.answered and now - offer.offered_at > ring_timeout + OFFER_GRACE_SECONDS:
                commands += self._heal_if_sighted(Heal("answer_lost", offer.node, offer.leg_uuid, offer.call_uuid), now)
                if offer.answered:  # the last audit found the agent had answered: no timeout
                    continue
                commands.append(Kill(node=offer.node, uuid=offer.leg_uuid, cause="ORIGINATOR_CANCEL"))
                commands += self._offer_failed(offer, now, "NO_ANSWER")
        for call in list(self.calls.values()):
            commands += self._check_connecting(call, now)
            commands += self._check_max_wait(call, now)
            if call.uuid in self.calls:
                commands += self._escalate(call, now)
        return commands

    def _check_max_wait(self, call: Call, now: float) -> list[Command]:
        config = self.rules.queues.get(call.queue)
        if config is None or config.max_wait <= 0 or call.state not in (CallState.WAITING, CallState.OFFERING):
            return []
        if now - call.entered_at < config.max_wait:
            return []
        commands: list[Command] = []
        for offer in list(call.offers.values()):
            commands += self._cancel_offer(offer, now, "ORIGINATOR_CANCEL")
        if config.timeout_destination:
            commands.append(Transfer(node=call.node, uuid=call.uuid, destination=config.timeout_destination))
        else:
            commands.append(Kill(node=call.node, uuid=call.uuid, cause="NORMAL_CLEARING"))
        return commands + self._leave(call, "timed_out", now, "max wait reached")

    def _on_node_down(self, event: NodeDown, now: float) -> list[Command]:
        self._nodes_connected[event.node] = False
        return []

    def _on_node_up(self, event: NodeUp, now: float) -> list[Command]:
        """Reconcile with what the node really has: anything we track that it no longer has ended while we were
        away (as its hang-up would have ended it); what it answered meanwhile moves on."""
        self._nodes_connected[event.node] = True
        self._node_up_at[event.node] = now
        self._drift.pop(event.node, None)
        previous = self._node_cores.get(event.node)
        self._node_cores[event.node] = event.core_uuid
        if previous is not None and previous != event.core_uuid:
            return self._node_restarted(event.node, now)
        live = event.live_uuids
        commands: list[Command] = []
        for gone in self._gone(event.node, live, seen_before=math.inf):
            commands += self._end_unheard(gone, now, "LOST_WHILE_DISCONNECTED")
        calls = [c for c in self.calls.values() if c.node == event.node]  # all live now
        for call in calls:
            if call.state is CallState.CONNECTING and call.bridge_sent and call.agent_leg in live:
                # the bridge went out before the drop: FreeSWITCH has both legs, so they are talking
                commands += self._mark_talking(call, now)
        for call in calls:
            if not call.answered and call.uuid not in event.answered_uuids:
                commands.append(Answer(node=call.node, uuid=call.uuid))  # the first answer may have been lost
        for unheard in self._answers_unheard(event.node, event.answered_uuids):
            commands += self._on_answered(ChannelAnswered(node=event.node, uuid=unheard.channel), now)
        return commands

    def _node_restarted(self, node: str, now: float) -> list[Command]:
        """FreeSWITCH restarted (a new core uuid): none of the node's channels exist any more, and the calls end
        as failed, not abandoned (the callers did not choose to leave)."""
        commands: list[Command] = []
        for offer in [o for o in self._legs.values() if o.node == node]:
            commands += self._offer_failed(offer, now, "LOST_WHILE_DISCONNECTED")
        for call in [c for c in self.calls.values() if c.node == node]:
            outcome = "answered" if call.connected_at is not None else "failed"
            commands += self._leave(call, outcome, now, "FREESWITCH_RESTARTED")
        return commands

    def _on_channels_audited(self, event: ChannelsAudited, now: float) -> list[Command]:
        """Periodic reconciliation (module docstring): heal what this audit and the previous one of the node
        both found out of step, count it, and tell ``on_heal``."""
        up_at = self._node_up_at.get(event.node)
        if not self._nodes_connected.get(event.node) or up_at is None or event.taken_at < up_at:
            return []  # listed before the last (re)connect: the NodeUp reconciliation is newer
        known_legs = self._legs.keys() | {call.agent_leg for call in self.calls.values() if call.agent_leg}
        found = self._gone(event.node, event.live_uuids, seen_before=event.taken_at)
        found += self._answers_unheard(event.node, event.answered_uuids)
        found += self._bridges_unheard(event.node, event.bridged)
        found += [Heal("orphan_leg", event.node, leg) for leg in sorted(event.agent_legs - known_legs)]
        found_before = self._drift.get(event.node, {})
        self._drift[event.node] = drift = {heal: found_before.get(heal, event.taken_at) for heal in found}
        commands: list[Command] = []
        for heal in found:
            if heal in found_before:
                commands += self._heal(heal, now, seen_at=drift[heal])
        return commands

    def _heal_if_sighted(self, heal: Heal, now: float) -> list[Command]:
        """Heal now what the last audit of the node found once, because what is about to happen would otherwise
        settle the call for good as if the lost event had never happened (module docstring)."""
        seen_at = self._drift.get(heal.node, {}).get(heal)
        return [] if seen_at is None else self._heal(heal, now, seen_at=seen_at)

    def _heal(self, heal: Heal, now: float, *, seen_at: float) -> list[Command]:
        """Heal, count and tell ``on_heal``; nothing when an earlier heal or a late event settled it meanwhile.

        A lost bridge is dated ``seen_at``, when a listing first showed it: it happened no later."""
        if heal.kind == "orphan_leg":
            healed: list[Command] | None = [Kill(node=heal.node, uuid=heal.channel, cause="NORMAL_CLEARING")]
        elif heal.kind not in _PROGRESS_KINDS:
            healed = self._end_unheard(heal, now, MISSED_HANGUP) or None
        elif not self._unheard(heal):
            healed = None
        elif heal.kind == "answer_lost":
            offer = self._legs.get(heal.channel)
            if offer is not None and now - seen_at > self._bridge_timeout:
                offer.job_done = True  # answered that long ago: its job result is in, and was lost with the answer
            healed = self._on_answered(ChannelAnswered(node=heal.node, uuid=heal.channel), now)
        else:
            healed = self._mark_talking(self.calls[heal.call or ""], seen_at)
        if healed is None:
            return []
        self.heals[heal.kind] += 1
        if self._on_heal is not None:
            self._on_heal(heal)
        return healed

    def _gone(self, node: str, live: frozenset[str], *, seen_before: float) -> list[Heal]:
        """What the router tracks on ``node`` that existed before ``seen_before`` (by its own timestamps) and is
        not among the node's ``live`` channels: offers' agent legs, callers, conversations' agent legs."""
        gone = [
            Heal("offer_leg_gone", node, offer.leg_uuid, offer.call_uuid)
            for offer in self._legs.values()
            if offer.node == node and offer.offered_at < seen_before and offer.leg_uuid not in live
        ]
        for call in self.calls.values():
            if call.node != node:
                continue
            if call.entered_at < seen_before and call.uuid not in live:
                gone.append(Heal("call_gone", node, call.uuid, call.uuid))
            elif (
                call.state is CallState.TALKING
                and call.agent_leg is not None
                and call.agent_leg not in live
                and call.connected_at is not None
                and call.connected_at < seen_before
            ):
                gone.append(Heal("agent_leg_gone", node, call.agent_leg, call.uuid))
        return gone

    def _end_unheard(self, gone: Heal, now: float, cause: str) -> list[Command]:
        """End a channel found gone exactly as its hang-up event, had it arrived, would have ended it."""
        return self._on_hangup(ChannelHungUp(node=gone.node, uuid=gone.channel, cause=cause), now)

    def _answers_unheard(self, node: str, answered: frozenset[str]) -> list[Heal]:
        """The callers, then the offered agent legs, on ``node`` that it lists ``answered`` and the router does
        not know to be."""
        callers = [Heal("answer_lost", node, c.uuid, c.uuid) for c in self.calls.values() if c.node == node]
        legs = [Heal("answer_lost", node, o.leg_uuid, o.call_uuid) for o in self._legs.values() if o.node == node]
        return [heal for heal in callers + legs if heal.channel in answered and self._unheard(heal)]

    def _bridges_unheard(self, node: str, bridged: frozenset[frozenset[str]]) -> list[Heal]:
        """The calls on ``node`` still connecting whose caller and agent leg it lists ``bridged`` together."""
        candidates = [
            Heal("bridge_lost", node, c.agent_leg, c.uuid)
            for c in self.calls.values()
            if c.node == node and c.agent_leg is not None
        ]
        return [heal for heal in candidates if frozenset((heal.call, heal.channel)) in bridged and self._unheard(heal)]

    def _unheard(self, heal: Heal) -> bool:
        """Whether the router still misses the answer or bridge ``heal`` is about (a heal or a late event may have
        brought it since it was found)."""
        call = self.calls.get(heal.call or "")
        if call is None:
            return False
        if heal.kind == "bridge_lost":
            return call.state is CallState.CONNECTING and call.agent_leg == heal.channel
        if heal.channel == call.uuid:
            return not call.answered
        offer = call.offers.get(heal.channel)
        return offer is not None and not offer.answered

    def _on_stop_taking_calls(self, event: StopTakingCalls, now: float) -> list[Command]:
        self.draining = True
        return []

    def _on_release_agent_legs(self, event: ReleaseAgentLegs, now: float) -> list[Command]:
        """Ring no more agents and hang up every agent leg not in a conversation: ringing ones (cancelled, no
        penalty) and answered ones whose bridge was not sent yet (the caller waits again). A call whose bridge
        was sent is left to it: its legs are about to talk, or the next start's audit finds them."""
        self.offering_stopped = True
        commands: list[Command] = []
        for offer in list(self._legs.values()):
            call = self.calls[offer.call_uuid]
            if not offer.answered:
                commands += self._cancel_offer(offer, now, "ORIGINATOR_CANCEL")
            elif not call.bridge_sent:
                self._forget_offer(offer)
                commands.append(Kill(node=offer.node, uuid=offer.leg_uuid, cause="NORMAL_CLEARING"))
                commands.append(self._offer_record(offer, call, now, "ORIGINATOR_CANCEL"))
                commands += self._connect_failed(call, now, 0.0, "released at shutdown")
        return commands

    # ------------------------------------------------------------------ records and views

    def _call_record(self, call: Call, outcome: str, now: float, cause: str) -> RecordCall:
        """The call's one record; its uuid is remembered so that a re-learnt channel cannot enter twice."""
        self._recently_ended[call.uuid] = None
        self._end_hold(call, now)
        if len(self._recently_ended) > RECENTLY_ENDED_LIMIT:
            del self._recently_ended[next(iter(self._recently_ended))]
        return RecordCall(
            record=CallRecord(
                uuid=call.uuid,
                node=call.node,
                queue=call.queue,
                outcome=outcome,
                entered_at=call.entered_at,
                ended_at=now,
                agent=call.agent_id if call.connected_at is not None else None,
                answered_at=call.connected_at,
                caller_number=call.caller_number,
                destination=call.destination,
                hangup_cause=cause,
                offers=call.offers_made,
                hold_seconds=call.hold_seconds,
            )
        )

    def _agent_record(self, agent_id: str, state: AgentState, now: float, reason: str) -> RecordAgentState:
        return RecordAgentState(record=AgentStateRecord(agent=agent_id, state=state.value, at=now, reason=reason))

    def _offer_record(self, offer: Offer, call: Call, now: float, result: str) -> RecordOffer:
        return RecordOffer(
            record=OfferRecord(
                call_uuid=call.uuid,
                leg_uuid=offer.leg_uuid,
                agent=offer.agent_id,
                queue=call.queue,
                offered_at=offer.offered_at,
                ended_at=now,
                result=result.lower() if result != "answered" else result,
            )
        )

    def _queue_view(self, name: str) -> QueueView:
        calls = [call for call in self.calls.values() if call.queue == name]
        counts = dict.fromkeys((state.value for state in AgentState), 0)
        members = [agent for agent in self.agents.values() if name in agent.config.queues]
        for agent in members:
            counts[agent.state.value] += 1
        config = self.rules.queues.get(name)
        return QueueView(
            name=name,
            strategy=config.strategy if config else "",
            waiting=sum(1 for c in calls if c.state in _QUEUED),
            offering=sum(1 for c in calls if c.state is CallState.OFFERING),
            talking=sum(1 for c in calls if c.state is CallState.TALKING),
            oldest_entered_at=min((c.entered_at for c in calls if c.state in _QUEUED), default=None),
            agents=counts,
            service_level_seconds=config.service_level_seconds if config else 0.0,
            service_level_target=config.service_level_target if config else 0.0,
            unregistered=sum(1 for agent in members if not agent.registered),
        )

    @staticmethod
    def _agent_view(agent: Agent) -> AgentView:
        return AgentView(
            id=agent.id,
            endpoint=agent.config.endpoint,
            state=agent.state.value,
            since=agent.since,
            registered=agent.registered,
            queues=agent.config.queues,
            call_uuid=agent.call_uuid,
            calls_answered=agent.calls_answered,
            no_answer_count=agent.no_answer_count,
        )

    @staticmethod
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


#: states in which a call still waits for an agent (an offer may be ringing)
_QUEUED = (CallState.WAITING, CallState.OFFERING, CallState.CONNECTING)
#: heals of an answer or a bridge FreeSWITCH made without the router hearing of it
_PROGRESS_KINDS = ("answer_lost", "bridge_lost")
