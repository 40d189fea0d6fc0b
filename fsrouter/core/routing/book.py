"""The book: everything the router knows, in one place, read and changed only by the router's parts.

Calls by caller uuid, agents by id, offers by agent leg uuid, and the queue configurations in force. The rules
in force live here and only here: ``queue(name)`` is a queue's configuration for every purpose (routing, wrap-up,
maximum wait, escalation), the last one of a queue a reload removed included, for the calls an agent had already
taken in it (its waiting callers are classified again by the new rules: ``Callers.rehome``).

A call in the book is one stay of a caller's channel in fsrouter, from its park to its record, keyed by the channel
uuid only while it lasts. A channel may have several stays one after the other (an agent's blind transfer into
another queue parks the same channel again: ``callers.py``), numbered from 1. The last ended stay of each channel is
remembered (``last_stay``), bounded, so that a channel re-learnt after a reconnect does not enter twice, and a new
stay knows which one it follows.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from fsrouter.core.commands import OfferRecord, WaitingCall
from fsrouter.core.explain import TraceLog
from fsrouter.core.lifecycle import AgentState
from fsrouter.core.model import Agent, Call, Offer
from fsrouter.core.rules import AgentConfig, QueueConfig, Rules
from fsrouter.core.snapshot import HealKind
from fsrouter.core.strategies import Strategy, make_strategy

#: how many channels' last ended stays are remembered (to refuse a re-learnt stay, and to number the next one)
RECENTLY_ENDED_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class EndedStay:
    """The last ended stay of a channel: its number, its queue, and the extension it had parked on."""

    stay: int
    queue: str
    destination: str


@dataclass(frozen=True, slots=True)
class Heal:
    """A difference with FreeSWITCH that reconciliation found: its ``kind``, the ``channel`` (a caller or an
    agent leg) on ``node``, and the ``call`` it belongs to when the router knows it."""

    kind: HealKind
    node: str
    channel: str
    call: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """How the router was set up (``Router.__init__`` documents each)."""

    new_id: Callable[[], str]
    random: Callable[[], float] | None
    emit_traces: bool
    on_heal: Callable[[Heal], None] | None
    bridge_timeout: float
    on_unknown_queue: Callable[[str], None] | None = None
    on_not_taken: Callable[[str], None] | None = None


class Book:
    """The router's state. Parts change it; nothing outside ``fsrouter/core/routing`` does."""

    def __init__(self, rules: Rules, options: Options) -> None:
        self.options = options
        self.rules = rules
        self.calls: dict[str, Call] = {}
        self.agents: dict[str, Agent] = {}
        #: offers by agent leg uuid (each also in its call's ``offers``)
        self.legs: dict[str, Offer] = {}
        self.strategies: dict[str, Strategy] = {}
        #: every queue configuration seen, the last one of a queue a reload removed included (for its calls in talk)
        self.queues: dict[str, QueueConfig] = {}
        #: queue -> its declared agents: a decision never scans other queues
        self.members: dict[str, list[Agent]] = {}
        #: queue -> ids of members that can take one more offer by state (AVAILABLE, or RESERVED below
        #: max_offers); kept up to date on every agent state change, so idle queues are skipped at once
        self.routable: dict[str, set[str]] = {}
        #: queue -> the ``routable`` members whose phone may be rung on some node (``Agent.registered``): only
        #: these can be offered a call, so a queue with none is not decided (its calls still escalate)
        self.offerable: dict[str, set[str]] = {}
        self.by_sip_user: dict[str, str] = {}
        self.traces = TraceLog()
        #: calls moved out of a queue by overflow, by (queue, target); configured paths start at 0
        self.overflows: Counter[tuple[str, str]] = Counter()
        #: stays that followed an earlier stay of the same channel (a transfer back into fsrouter), by (queue of
        #: the earlier stay, queue of the new one)
        self.transfers: Counter[tuple[str, str]] = Counter()
        #: heals of the periodic reconciliation, by kind (every kind, zeros included)
        self.heals: Counter[str] = Counter(dict.fromkeys(HealKind, 0))
        self.nodes_connected: dict[str, bool] = {}
        self.node_cores: dict[str, str] = {}
        #: when each node's last NodeUp was handled: audits listed before it are stale
        self.node_up_at: dict[str, float] = {}
        #: what the last audit of each node found out of step, with when the first audit in a row found it
        self.drift: dict[str, dict[Heal, float]] = {}
        self.draining = False
        #: calls the previous process left (``CallsRestored``) not taken back or recorded yet, and their offers
        self.restored: dict[str, WaitingCall] = {}
        self.restored_offers: dict[str, list[OfferRecord]] = {}
        #: set by ReleaseAgentLegs: no agent is rung any more (the daemon is stopping)
        self.offering_stopped = False
        self._recently_ended: dict[str, EndedStay] = {}
        self._arrivals = itertools.count(1)

    # ------------------------------------------------------------------ queues

    def queue(self, name: str) -> QueueConfig:
        """The configuration of queue ``name`` in force: the rules', or the last one of a removed queue."""
        return self.queues[name]

    def take_queues(self, rules: Rules) -> None:
        """Adopt the queues of ``rules`` (a removed queue keeps its last configuration for the calls still in it)."""
        self.rules = rules
        for name, queue in rules.queues.items():
            current = self.strategies.get(name)
            if current is None or current.name != queue.strategy:
                self.strategies[name] = make_strategy(queue.strategy)
        self.queues.update(rules.queues)
        for name, queue in rules.queues.items():
            for target in {queue.overflow, *(step.overflow for step in queue.escalation)} - {""}:
                self.overflows.setdefault((name, target), 0)

    def queue_names(self) -> list[str]:
        """The queues of the rules in force, then removed ones that still hold calls."""
        names = list(self.rules.queues)
        return names + sorted({call.queue for call in self.calls.values()} - set(names))

    # ------------------------------------------------------------------ agents

    def index_members(self, declared: dict[str, AgentConfig]) -> None:
        """Rebuild the per-queue indexes; agents removed from the rules (still on a call) get no new offers."""
        self.members = {}
        self.routable = {}
        self.offerable = {}
        for agent_id in sorted(declared):
            agent = self.agents[agent_id]
            for queue in agent.config.queues:
                self.members.setdefault(queue, []).append(agent)
                self.routable.setdefault(queue, set())
                self.offerable.setdefault(queue, set())
            self.update_routable(agent)
        self.by_sip_user = {agent.config.sip_user: agent_id for agent_id, agent in self.agents.items()}

    def update_routable(self, agent: Agent) -> None:
        """Keep ``routable`` and ``offerable`` in step with ``agent`` (called on every change of its state or of
        ``Agent.registered``)."""
        can_take_more = agent.state is AgentState.AVAILABLE or (
            agent.state is AgentState.RESERVED and len(agent.ringing) < agent.config.max_offers
        )
        for queue in agent.config.queues:
            routable = self.routable.get(queue)
            if routable is None:
                continue
            _keep(routable, agent.id, can_take_more)
            _keep(self.offerable[queue], agent.id, can_take_more and agent.registered)

    # ------------------------------------------------------------------ calls

    def call_of_agent_leg(self, leg_uuid: str) -> Call | None:
        return next((call for call in self.calls.values() if call.agent_leg == leg_uuid), None)

    def next_arrival(self) -> int:
        return next(self._arrivals)

    def last_stay(self, uuid: str) -> EndedStay | None:
        """The last stay of channel ``uuid`` that ended recently (its record is written), if any."""
        return self._recently_ended.get(uuid)

    def ended(self, call: Call) -> None:
        """Remember that ``call``'s stay has its record (bounded, oldest channel forgotten first)."""
        self._recently_ended.pop(call.uuid, None)
        self._recently_ended[call.uuid] = EndedStay(call.stay, call.queue, call.destination)
        if len(self._recently_ended) > RECENTLY_ENDED_LIMIT:
            del self._recently_ended[next(iter(self._recently_ended))]

    # ------------------------------------------------------------------ reconciliation's memory

    def sighted(self, heal: Heal) -> float | None:
        """When the audits in a row that found ``heal`` out of step began (the last audit found it), or None."""
        return self.drift.get(heal.node, {}).get(heal)

    def count_heal(self, heal: Heal) -> None:
        """Count a heal done and tell ``on_heal``."""
        self.heals[heal.kind] += 1
        if self.options.on_heal is not None:
            self.options.on_heal(heal)


def _keep(ids: set[str], agent_id: str, member: bool) -> None:
    """Put ``agent_id`` in ``ids`` or take it out, as ``member`` says."""
    if member:
        ids.add(agent_id)
    else:
        ids.discard(agent_id)
