"""The routing configuration as the core sees it: validated, immutable, versioned.

``config/rules_loader.py`` builds a ``Rules`` from ``routing-rules.yaml`` (with file:line errors); the core
never reads files. A reload swaps one ``Rules`` for another atomically.

``Rules.classify(call, now)`` is the one question the router asks: where does this new caller go? Routes are
tried in order (first match wins); when none matches, the queue the dialplan asked for (``fsrouter_queue``)
or the default queue is used. A queue with a ``calendar`` that is closed at ``now`` turns a queue decision
into a closed-hours decision, so "Christmas closes support" needs no route at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from fsrouter.core.calendars import Calendar
from fsrouter.core.conditions import ALWAYS_TRUE, CallInfo, Condition, Facts, VipList
from fsrouter.core.esl_safety import Slot
from fsrouter.core.geo import DEFAULT_REGION_TABLES, RegionTables, describe
from fsrouter.core.rule_keys import rule_key

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
    """One queue of ``queues:``. Times are in seconds; each key's default is what an operator gets by writing
    nothing (declared once here with ``rule_key``, see ``core/rule_keys.py``)."""

    name: str
    strategy: str = rule_key(
        "longest-idle",
        "How the agent is picked (the strategy registry's names); an unknown name is an error.",
        refers_to="strategy",
    )
    moh: str = rule_key(DEFAULT_MOH, "Music on hold played to waiting callers.", esl_slot=Slot.ARGUMENT)
    ring_timeout: float = rule_key(
        20.0, "Seconds one agent rings before the next one is tried (originate_timeout).", minimum=0
    )
    wrapup: float = rule_key(
        10.0, "Seconds of after-call work before the agent gets another call, unless the agent sets its own.", minimum=0
    )
    max_wait: float = rule_key(0.0, "Seconds a caller may wait before ending timed_out (0 = no limit).", minimum=0)
    timeout_destination: str = rule_key(
        "", "Extension a timed-out caller is sent to; empty = hang up.", esl_slot=Slot.ARGUMENT
    )
    service_level_seconds: float = rule_key(
        20.0, "Service-level threshold T: share of calls answered within T seconds.", minimum=0
    )
    service_level_target: float = rule_key(0.8, "Service-level target, a fraction from 0 to 1.", minimum=0, maximum=1)
    short_abandon_seconds: float = rule_key(
        0.0, "Abandons shorter than this stay out of the queue's KPIs (0 = every abandon counts).", minimum=0
    )
    skills: Mapping[str, int] = rule_key(
        help="Required skill -> weight (1 to 100), for skills-based strategies.",
        default_factory=_frozen_empty,
        minimum=1,
        maximum=100,
    )
    max_waiting_calls: int = rule_key(
        0,
        "Callers allowed to wait at once (0 = no limit); one more is overflowed if `overflow` is set, else rejected.",
        minimum=0,
    )
    when_no_agents: str = rule_key(
        "wait",
        "What a new caller gets when no agent of the queue is logged in.",
        choices=("wait", "reject", "overflow"),
    )
    overflow: str = rule_key(
        "", "Where overflow treatments send the caller: a queue name or an extension.", refers_to="queue-or-extension"
    )
    escalation: tuple[EscalationStep, ...] = rule_key(
        (),
        "Steps applied as a caller's wait grows, each {after: seconds} plus one of widen: {min_level: N}, "
        "add_tier: N or overflow: queue-or-extension.",
        shape="escalation",
    )
    owner_timeout: float = rule_key(
        0.0,
        "fixed strategy: seconds a caller waits for its dedicated agent while that agent is busy (talking, in "
        "wrap-up or ringing for another call) before the others may take it (0 = at once). An owner logged out "
        "or on break is not waited for.",
        minimum=0,
    )
    vip_boost: float = rule_key(
        60.0, "Queue order: each priority point counts as this many seconds of extra waiting.", minimum=0
    )
    max_boost: float = rule_key(
        600.0, "... but never more than this many seconds in total, so low-priority callers still move.", minimum=0
    )
    occupancy_window: float = rule_key(
        3600.0, "Seconds of history behind occupancy and call counts (least-occupied, fewest-calls, caps).", minimum=0
    )
    calendar: str = rule_key(
        "",
        "Opening hours (a calendar name); a call routed here while it is closed gets closed_message.",
        refers_to="calendar",
    )
    closed_message: str = rule_key(
        "", "Announcement played to a caller of the closed queue.", esl_slot=Slot.INLINE_ARGUMENT
    )
    line: int = 0


#: dial strings whose target is found through the phone's SIP registration
_REGISTRATION_DIALSTRINGS = re.compile(r"^(?:\{[^}]*\})?(?:user/|sofia/[^/]+/[^/@]*%|.*sofia_contact)")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """One agent of ``agents:`` as declared in the rules file; run-time state lives in the router."""

    id: str = rule_key(help="The agent's unique id (required).")
    endpoint: str = rule_key(
        help="FreeSWITCH dial string, unique (required); its SIP user is followed for registration.",
        pattern=r"[^/]*/.*",
        pattern_meaning="a dial string like user/1000",
        esl_slot=Slot.DIAL_STRING,
    )
    queues: tuple[str, ...] = rule_key(
        (),
        "Queue names (tier 1) or {queue: tier} (tier 1 to 9; tier 2 is rung once escalation adds it).",
        shape="agent-queues",
    )
    skills: Mapping[str, int] = rule_key(
        help="Skill -> level, 1 (basic) to 5 (expert).", default_factory=_frozen_empty, minimum=1, maximum=5
    )
    status: str = rule_key(
        "available",
        "Initial state: available (a fresh install routes at once) or logged-out until the agent logs in.",
        choices=("available", "logged-out"),
    )
    wrapup: float | None = rule_key(None, "Seconds of wrap-up; overrides the queue's when set.", minimum=0)
    max_no_answer: int = rule_key(3, "Consecutive unanswered offers before an automatic break (0 = never).", minimum=0)
    busy_delay: float = rule_key(30.0, "Seconds the agent is skipped after a busy offer.", minimum=0)
    no_answer_delay: float = rule_key(15.0, "Seconds the agent is skipped after an unanswered offer.", minimum=0)
    reject_delay: float = rule_key(30.0, "Seconds the agent is skipped after a rejected offer.", minimum=0)
    #: queue -> tier (1 = first called); queues listed without a tier are tier 1 (read from ``queues:``)
    tiers: Mapping[str, int] = field(default_factory=_frozen_empty)
    max_offers: int = rule_key(
        1, "Calls that may ring this agent at the same time (ring-all can offer several).", minimum=1, maximum=100
    )
    occupancy_cap: float = rule_key(
        0.0, "Skip the agent while its occupancy is above this fraction (0 = no cap).", minimum=0, maximum=1
    )
    weight: float = rule_key(1.0, "Relative odds of being picked by weighted-random (2.0 = twice as often).", minimum=0)
    shift: str = rule_key(
        "", "A calendar: the agent is only offered calls while it is open (empty = always).", refers_to="calendar"
    )
    line: int = 0

    def tier(self, queue: str) -> int:
        """The agent's tier in ``queue`` (1 when not given)."""
        return self.tiers.get(queue, 1)

    @property
    def sip_user(self) -> str:
        """The SIP user behind ``user/1000`` or ``user/1000@domain`` (matched against sofia::register)."""
        tail = self.endpoint.split("/", 1)[-1]
        return tail.split("@", 1)[0]

    @property
    def needs_registration(self) -> bool:
        """Whether the endpoint rings a phone only where it is registered (``user/``, sofia ``user%domain``,
        ``sofia_contact``); a gateway, ``loopback/...`` or a SIP URI rings regardless."""
        return _REGISTRATION_DIALSTRINGS.match(self.endpoint) is not None


class RouteAction(StrEnum):
    """What a route does with a new caller: the action key of a ``routes:`` entry. A decision
    (``RouteDecision.action``) is never ``overflow``: an overflow route becomes ``queue`` or ``transfer``."""

    QUEUE = "queue"
    CLOSED = "closed"
    TRANSFER = "transfer"
    REJECT = "reject"
    OVERFLOW = "overflow"


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One entry of ``routes:``: when ``condition`` matches, do ``action`` with ``target``.

    ``target`` is the queue (``queue``), the announcement (``closed``), the extension (``transfer``) or the
    queue-or-extension (``overflow``); empty for ``reject``. The YAML keys ``name``, ``when`` and the action
    keys have shapes of their own (read by the loader); ``priority``, ``skills`` and ``agent`` are declared.
    """

    label: str
    condition: Condition = ALWAYS_TRUE
    action: RouteAction = RouteAction.QUEUE
    target: str = ""
    priority: int = rule_key(
        0,
        "Priority of the calls this route queues (the highest of route, dialplan and VIP list wins).",
        minimum=0,
        maximum=1000,
    )
    skills: Mapping[str, int] = rule_key(
        help="Skill -> minimum level (1 to 5) the calls this route queues require.",
        default_factory=_frozen_empty,
        minimum=1,
        maximum=5,
    )
    agent: str = rule_key("", "The dedicated agent of the calls this route queues (fixed strategy).", refers_to="agent")
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteDecision:
    """Where a new caller goes and why.

    ``action`` is ``queue``, ``closed`` (play ``announcement`` then hang up), ``transfer`` (to
    ``destination``) or ``reject``. ``rule`` says which rule decided, for logs and ``fsrouter explain``.
    ``unknown_queue`` is the ``fsrouter_queue`` the dialplan asked for when no such queue exists, so the
    router can log and count it. An ``overflow:`` route to an extension is a ``transfer`` (outcome
    ``overflowed``), to a queue a ``queue``.
    """

    action: RouteAction
    queue: str = ""
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=_frozen_empty)
    destination: str = ""
    announcement: str = ""
    rule: str = ""
    unknown_queue: str = ""
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
            decision = RouteDecision(action=RouteAction.QUEUE, queue=requested, rule=f"fsrouter_queue '{requested}'")
        else:
            decision = self._default_decision()
        if unknown:
            decision = replace(
                decision,
                rule=f"{decision.rule}; unknown queue '{unknown}' → {'routes' if route else 'default'}",
                unknown_queue=unknown,
            )
        if decision.action is not RouteAction.QUEUE:
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
        if route.action is RouteAction.QUEUE or (route.action is RouteAction.OVERFLOW and route.target in self.queues):
            return RouteDecision(
                action=RouteAction.QUEUE,
                queue=route.target,
                priority=route.priority,
                skills=route.skills,
                rule=route.label,
                agent=route.agent,
            )
        if route.action is RouteAction.CLOSED:
            return RouteDecision(action=RouteAction.CLOSED, announcement=route.target, rule=route.label)
        if route.action in (RouteAction.TRANSFER, RouteAction.OVERFLOW):
            return RouteDecision(
                action=RouteAction.TRANSFER,
                destination=route.target,
                rule=route.label,
            )
        return RouteDecision(action=RouteAction.REJECT, rule=route.label)

    def _default_decision(self) -> RouteDecision:
        queue = self.queue_for(self.default_queue)
        if queue is None:
            return RouteDecision(action=RouteAction.REJECT, rule="no queue configured")
        return RouteDecision(action=RouteAction.QUEUE, queue=queue, rule="default queue")

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
            action=RouteAction.CLOSED,
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
