"""The routing configuration as the core sees it: validated, immutable, versioned.

``config/rules_loader.py`` builds a ``Rules`` from ``routing-rules.yaml`` (with file:line errors); the core
never reads files. A reload swaps one ``Rules`` for another atomically.

``Rules.classify(call, now)`` is the one question the router asks: where does this new caller go? Routes are
tried in order (first match wins); when none matches, the queue the dialplan asked for (``fsrouter_queue``)
or the default queue is used. A queue with a ``calendar`` that is closed at ``now`` turns a queue decision
into a closed-hours decision, so "Christmas closes support" needs no route at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from fsrouter.core.calendars import Calendar
from fsrouter.core.conditions import ALWAYS_TRUE, CallInfo, Condition, Facts, VipList
from fsrouter.core.geo import DEFAULT_REGION_TABLES, RegionTables, describe

__all__ = [
    "DEFAULT_MOH",
    "AgentConfig",
    "CallInfo",
    "EscalationStep",
    "QueueConfig",
    "Route",
    "RouteDecision",
    "Rules",
]

DEFAULT_MOH = "local_stream://moh"


def _frozen_empty() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationStep:
    """After ``after`` seconds of waiting, do exactly one thing: accept lower skill levels, call another tier,
    or overflow to ``overflow`` (a queue or an extension)."""

    after: float
    #: accept agents whose level in each required skill is at least this (``widen: {min_level: 2}``)
    min_level: int = 0
    #: also offer the call to agents of this tier and below (``add_tier: 2``)
    add_tier: int = 0
    overflow: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfig:
    """One queue. Times are in seconds; documented defaults are what an operator gets by writing nothing."""

    name: str
    strategy: str = "longest-idle"
    moh: str = DEFAULT_MOH
    #: how long one agent rings before we try the next (originate_timeout)
    ring_timeout: float = 20.0
    #: agent wrap-up after a call of this queue, unless the agent sets its own
    wrapup: float = 10.0
    #: a caller waiting this long ends ``timed_out`` (0 = no limit)
    max_wait: float = 0.0
    #: where a timed-out caller is sent (an extension); empty = hang up
    timeout_destination: str = ""
    #: service-level threshold T (answered within T seconds)
    service_level_seconds: float = 20.0
    service_level_target: float = 0.8
    #: abandons shorter than this are left out of the queue's KPIs (0 = every abandon counts, the default)
    short_abandon_seconds: float = 0.0
    #: required skills with weights, for skills-based strategies
    skills: Mapping[str, int] = field(default_factory=_frozen_empty)
    #: callers allowed to wait at once (0 = no limit); one more is overflowed if ``overflow`` is set,
    #: else rejected
    max_waiting_calls: int = 0
    #: what a new caller gets when no agent of the queue is logged in: ``wait``, ``reject`` or ``overflow``
    when_no_agents: str = "wait"
    #: where ``overflow`` treatments send the caller: a queue name or an extension
    overflow: str = ""
    #: steps applied as a caller's wait grows, in increasing ``after`` order
    escalation: tuple[EscalationStep, ...] = ()
    #: queue order: each priority point counts as this many seconds of extra waiting ...
    vip_boost: float = 60.0
    #: ... but never more than this many seconds in total, so low-priority callers still move
    max_boost: float = 600.0
    #: seconds of history behind occupancy (least-occupied ranking, agents' ``occupancy_cap``)
    occupancy_window: float = 3600.0
    #: opening hours (a calendar name); a call that lands here while it is closed gets ``closed_message``
    calendar: str = ""
    closed_message: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """One agent as declared in the rules file; run-time state lives in the router."""

    id: str
    endpoint: str
    queues: tuple[str, ...] = ()
    skills: Mapping[str, int] = field(default_factory=_frozen_empty)
    #: ``available`` (default: a fresh install routes at once) or ``logged-out``
    status: str = "available"
    #: overrides the queue's wrap-up when set
    wrapup: float | None = None
    #: consecutive no-answers before the agent is put on break automatically (0 = never)
    max_no_answer: int = 3
    #: seconds an agent is skipped after each kind of failed offer
    busy_delay: float = 30.0
    no_answer_delay: float = 15.0
    reject_delay: float = 30.0
    #: queue -> tier (1 = first called); queues listed without a tier are tier 1
    tiers: Mapping[str, int] = field(default_factory=_frozen_empty)
    #: how many calls may ring this agent at the same time (ring-all can offer several)
    max_offers: int = 1
    #: skip the agent while its occupancy is above this fraction (0 = no cap)
    occupancy_cap: float = 0.0
    #: relative odds of being picked by ``weighted-random`` (2.0 = twice as often as 1.0)
    weight: float = 1.0
    #: a calendar name: the agent is only offered calls while it is open (empty = always)
    shift: str = ""
    line: int = 0

    def tier(self, queue: str) -> int:
        """The agent's tier in ``queue`` (1 when not given)."""
        return self.tiers.get(queue, 1)

    @property
    def sip_user(self) -> str:
        """The SIP user behind ``user/1000`` or ``user/1000@domain`` (matched against sofia::register)."""
        tail = self.endpoint.split("/", 1)[-1]
        return tail.split("@", 1)[0]


ACTIONS = ("queue", "closed", "transfer", "reject", "overflow")


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One entry of ``routes:``: when ``condition`` matches, do ``action`` with ``target``.

    ``target`` is the queue (``queue``), the announcement (``closed``), the extension (``transfer``) or the
    queue-or-extension (``overflow``); empty for ``reject``.
    """

    label: str
    condition: Condition = ALWAYS_TRUE
    action: str = "queue"
    target: str = ""
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=_frozen_empty)
    #: the dedicated agent for calls this route queues (``fixed`` strategy); empty = none
    agent: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteDecision:
    """Where a new caller goes and why.

    ``action`` is ``queue``, ``closed`` (play ``announcement`` then hang up), ``transfer`` (to
    ``destination``) or ``reject``. ``rule`` says which rule decided, for logs and ``fsrouter explain``.
    ``unknown_queue`` is the ``fsrouter_queue`` the dialplan asked for when no such queue exists, so the
    router can log and count it; ``overflowed`` marks an ``overflow:`` route (outcome ``overflowed``).
    """

    action: str
    queue: str = ""
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=_frozen_empty)
    destination: str = ""
    announcement: str = ""
    rule: str = ""
    unknown_queue: str = ""
    overflowed: bool = False
    #: the route's dedicated agent (``fixed`` strategy)
    agent: str = ""


def _no_calendars() -> Mapping[str, Calendar]:
    return MappingProxyType({})


def _no_vip_lists() -> Mapping[str, VipList]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    """A whole validated rules file."""

    queues: Mapping[str, QueueConfig]
    agents: tuple[AgentConfig, ...] = ()
    #: the queue used for ``fsrouter=true`` calls no rule places, and for unknown ``fsrouter_queue`` names
    default_queue: str = ""
    routes: tuple[Route, ...] = ()
    calendars: Mapping[str, Calendar] = field(default_factory=_no_calendars)
    vip_lists: Mapping[str, VipList] = field(default_factory=_no_vip_lists)
    region_tables: RegionTables = field(default_factory=lambda: DEFAULT_REGION_TABLES)
    #: the time zone of ``time:`` and ``days:`` route conditions (calendars carry their own)
    timezone: str = "UTC"
    #: how numbers without a country code are read (ISO country code)
    default_region: str = "FR"
    #: the first 12 hex digits of the rules file's SHA-256 (see ``config.rules_loader.content_version``)
    version: str = "1"
    source: str = ""
    loaded_at: float = 0.0

    def queue_for(self, requested: str) -> str | None:
        """The queue a call asking for ``requested`` goes to, or None when nothing fits."""
        if requested in self.queues:
            return requested
        if self.default_queue in self.queues:
            return self.default_queue
        return next(iter(self.queues), None)

    def on_shift(self, agent: AgentConfig, now: float) -> bool:
        """Whether ``agent``'s shift calendar (if any) is open at ``now``."""
        return not agent.shift or self.calendars[agent.shift].is_open(now)

    def classify(self, call: CallInfo, now: float) -> RouteDecision:
        """Decide where a new caller goes: the first matching route, else the requested or default queue.

        >>> rules.classify(CallInfo(caller_number="0145678901", destination="3000"), now=1_767_607_200.0)
        RouteDecision(action='queue', queue='support', ...)
        """
        facts = Facts(
            call=call, number=describe(call.caller_number, self.default_region, self.region_tables), now=now
        )
        requested = call.variables.get("fsrouter_queue", "")
        unknown = requested if requested and requested not in self.queues else ""
        route = next((route for route in self.routes if route.condition.matches(facts)), None)
        if route is not None:
            decision = self._apply(route)
        elif requested and not unknown:
            decision = RouteDecision(action="queue", queue=requested, rule=f"fsrouter_queue '{requested}'")
        else:
            decision = self._default_decision()
        if unknown:
            decision = replace(
                decision,
                rule=f"{decision.rule}; unknown queue '{unknown}' → {'routes' if route else 'default'}",
                unknown_queue=unknown,
            )
        if decision.action != "queue":
            return decision
        return self._check_open(
            replace(
                decision,
                priority=self._priority(decision.priority, facts),
                skills=_merge_skills(decision.skills, call.variables.get("fsrouter_skills", "")),
            ),
            now,
        )

    def _apply(self, route: Route) -> RouteDecision:
        if route.action == "queue" or (route.action == "overflow" and route.target in self.queues):
            return RouteDecision(
                action="queue",
                queue=route.target,
                priority=route.priority,
                skills=route.skills,
                rule=route.label,
                overflowed=route.action == "overflow",
                agent=route.agent,
            )
        if route.action == "closed":
            return RouteDecision(action="closed", announcement=route.target, rule=route.label)
        if route.action in ("transfer", "overflow"):
            return RouteDecision(
                action="transfer",
                destination=route.target,
                rule=route.label,
                overflowed=route.action == "overflow",
            )
        return RouteDecision(action="reject", rule=route.label)

    def _default_decision(self) -> RouteDecision:
        queue = self.queue_for(self.default_queue)
        if queue is None:
            return RouteDecision(action="reject", rule="no queue configured")
        return RouteDecision(action="queue", queue=queue, rule="default queue")

    def _priority(self, route_priority: int, facts: Facts) -> int:
        """The highest of the route's, the dialplan's (``fsrouter_priority``) and any matching VIP list's."""
        candidates = [route_priority]
        requested = facts.call.variables.get("fsrouter_priority", "").strip()
        if requested.lstrip("-").isdigit():
            candidates.append(int(requested))
        candidates.extend(vip.priority for vip in self.vip_lists.values() if vip.contains(facts))
        return max(candidates)

    def _check_open(self, decision: RouteDecision, now: float) -> RouteDecision:
        queue = self.queues[decision.queue]
        if not queue.calendar or self.calendars[queue.calendar].is_open(now):
            return decision
        return RouteDecision(
            action="closed",
            queue=queue.name,
            announcement=queue.closed_message,
            rule=f"{decision.rule}; queue '{queue.name}' closed (calendar '{queue.calendar}')",
            unknown_queue=decision.unknown_queue,
        )


def _merge_skills(route_skills: Mapping[str, int], variable: str) -> Mapping[str, int]:
    """Route skills plus the dialplan's ``fsrouter_skills`` (``french:3,billing``; a bare name means level 1).

    Malformed entries are skipped: the caller is still routed, on the skills that could be read.
    """
    merged = dict(route_skills)
    for entry in variable.split(","):
        name, _, level = entry.strip().partition(":")
        if name and (not level or level.isdigit()):
            merged[name] = int(level or 1)
    return MappingProxyType(merged)
