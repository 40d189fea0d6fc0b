"""Run-time state of calls, offers and agents, owned and mutated only by the router."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from fsrouter.core.lifecycle import AgentState, AgentTrigger, CallState
from fsrouter.core.rules import AgentConfig


@dataclass(slots=True, kw_only=True)
class Offer:
    """One agent leg ringing (or answered) for one call."""

    leg_uuid: str
    call_uuid: str
    agent_id: str
    node: str
    offered_at: float
    answered: bool = False
    #: when the leg's answer was heard (CHANNEL_ANSWER, the job's +OK, or a heal)
    answered_at: float | None = None
    #: the originate job's result is in (+OK, or -ERR after the answer): ``uuid_bridge`` no longer races it
    job_done: bool = False
    #: the originate got no reply (``Failure.UNKNOWN``): FreeSWITCH may never have rung the agent
    fate_unknown: bool = False


@dataclass(slots=True, kw_only=True)
class Call:
    """One caller's stay in fsrouter (``core/routing/book.py``)."""

    uuid: str
    node: str
    queue: str
    entered_at: float
    caller_number: str = ""
    caller_name: str = ""
    destination: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=dict)
    rule: str = ""
    #: which stay of the channel this is (1 for its first) and the one it follows (``CallRecord``)
    stay: int = 1
    previous_stay: int | None = None
    #: when the call entered its current queue (escalation steps count from here; order counts from entered_at)
    queue_entered_at: float = 0.0
    #: the dedicated agent asked for (``fsrouter_agent`` or a route's ``agent``), for the ``fixed`` strategy
    preferred_agent: str = ""
    #: the order in which fsrouter learnt of its callers: the last tie-break between equal entry times
    arrival: int = 0
    state: CallState = CallState.WAITING
    answered: bool = False
    offers: dict[str, Offer] = field(default_factory=dict)
    offers_made: int = 0
    agent_id: str | None = None
    agent_leg: str | None = None
    bridge_sent: bool = False
    #: when the last ``Bridge`` was sent, and how many were sent to the current agent leg
    bridge_sent_at: float = 0.0
    bridge_attempts: int = 0
    connected_at: float | None = None
    #: hold time so far while connected, and when the current hold began (None when not on hold)
    hold_seconds: float = 0.0
    held_since: float | None = None
    #: when the router last saw a hold start or end (its own clock, like every time it keeps)
    hold_changed_at: float | None = None

    def end_hold(self, now: float) -> None:
        """The current hold, if any, ends at ``now`` and counts in ``hold_seconds``."""
        if self.held_since is not None:
            self.hold_seconds += max(0.0, now - self.held_since)
            self.held_since = None


#: the longest window occupancy can be asked about; older state history is dropped
MAX_OCCUPANCY_WINDOW = 86_400.0
_BUSY_STATES = (AgentState.ON_CALL, AgentState.WRAP_UP)


@dataclass(slots=True, kw_only=True)
class Agent:
    """An agent's live state. ``idle_since`` feeds longest-idle; ``ready_at`` enforces retry delays.

    ``history`` (state changes, oldest first) feeds occupancy; ``ringing`` holds the legs ringing this agent
    now (several only when ``max_offers`` > 1); ``position`` is the agent's place in the rules file
    (the ``sequential`` hunt order).
    """

    config: AgentConfig
    state: AgentState
    since: float
    #: whether the agent may be rung on some node the router knows (``registered_on`` one of them): kept by
    #: ``presence.Presence.note_registration``
    registered: bool = True
    #: node -> whether the phone is registered there, as last heard (sofia::register / unregister / expire, or an
    #: originate that failed USER_NOT_REGISTERED there); a node not heard of is unknown
    registrations: dict[str, bool] = field(default_factory=dict)
    idle_since: float = 0.0
    ready_at: float = 0.0
    wrapup_until: float = 0.0
    #: the answered call (uuid, queue) the agent is wrapping up, whose record gets the wrap-up time
    wrapup_call: tuple[str, str] | None = None
    no_answer_count: int = 0
    calls_answered: int = 0
    offers_received: int = 0
    call_uuid: str | None = None
    #: an operator's logout or break asked while the agent rang or talked, applied once it is free
    pending_action: AgentTrigger | None = None
    position: int = 0
    ringing: set[str] = field(default_factory=set)
    history: deque[tuple[float, AgentState]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if not self.history:
            self.history.append((self.since, self.state))

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def reachable(self) -> bool:
        """Whether a call can reach the agent's phone as far as the NOC knows: its endpoint needs no registration,
        or the phone is known registered on some node (``docs/kpi.md``: unreachable agents are not staffed). An
        agent no node has told about yet is not reachable, although routing still tries it (``registered_on``)."""
        return not self.config.needs_registration or any(self.registrations.values())

    def registered_on(self, node: str) -> bool:
        """Whether the agent may be rung on ``node`` as far as its phone's registration goes: its endpoint does not
        depend on registration, or the phone is registered there, or nothing was heard of it there and it is
        registered on no other node (a phone registered before fsrouter connected is known only once it
        refreshes its registration or an originate fails)."""
        if not self.config.needs_registration:
            return True
        known = self.registrations.get(node)
        if known is not None:
            return known
        return not any(self.registrations.values())

    def enter(self, state: AgentState, now: float) -> None:
        """Take ``state`` at ``now`` (the caller checked the transition) and remember it for occupancy."""
        self.state = state
        self.since = now
        self.history.append((now, state))
        horizon = now - MAX_OCCUPANCY_WINDOW
        while len(self.history) > 1 and self.history[1][0] <= horizon:
            self.history.popleft()

    def occupancy(self, now: float, window: float) -> float:
        """Talk + wrap-up time over logged-in time during the last ``window`` seconds (0 if never logged in)."""
        start = now - min(window, MAX_OCCUPANCY_WINDOW)
        busy = logged_in = 0.0
        changes = list(self.history)
        ends = [at for at, _ in changes[1:]] + [now]
        for (begin, state), end in zip(changes, ends, strict=True):
            span = min(end, now) - max(begin, start)
            if span <= 0 or state is AgentState.LOGGED_OUT:
                continue
            logged_in += span
            if state in _BUSY_STATES:
                busy += span
        return busy / logged_in if logged_in > 0 else 0.0

    def calls_taken(self, now: float, window: float) -> int:
        """Calls the agent answered (entered ``on_call``) during the last ``window`` seconds."""
        start = now - min(window, MAX_OCCUPANCY_WINDOW)
        return sum(1 for at, state in self.history if state is AgentState.ON_CALL and start < at <= now)
