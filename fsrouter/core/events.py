"""Events fed into the router: frozen facts about what happened, with no I/O attached.

The ESL translation layer (``adapters/esl_translate.py``) turns FreeSWITCH frames into these; the daemon adds
its own (ticks, node connection state, operator commands). Every event names the FreeSWITCH ``node`` it came
from where that matters, because a channel UUID is only meaningful on its own node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from fsrouter.core.commands import AgentStateRecord, OfferRecord, WaitingCall

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class CallParked:
    """A caller the dialplan marked for fsrouter was parked (CHANNEL_PARK with ``fsrouter_queue``/``fsrouter``).

    ``variables`` holds the channel variables without the ``variable_`` prefix. ``answered`` tells whether the
    caller was already answered or pre-answered by the dialplan (Answer-State answered or early).
    ``entered_at`` is set when a caller is re-learnt after a reconnect or restart, so it keeps its place.
    """

    node: str
    uuid: str
    caller_number: str = ""
    caller_name: str = ""
    destination: str = ""
    answered: bool = False
    variables: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    entered_at: float | None = None

    def __post_init__(self) -> None:
        if not self.uuid:
            raise ValueError("CallParked needs a channel uuid")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallLeftPark:
    """CHANNEL_UNPARK of a caller marked for fsrouter that is not hanging up: its ``park`` application returned.

    Captured as ``leave_park`` (``uuid_transfer <caller> 5005 XML default``): CHANNEL_UNPARK comes first, its
    ``Caller-Destination-Number`` (``destination``) already the new extension, then the park's
    CHANNEL_EXECUTE_COMPLETE and the new extension's applications. fsrouter's own ``uuid_bridge`` unparks the
    caller too (``repark_after_transfer``, at the bridge); music by ``uuid_broadcast`` does not."""

    node: str
    uuid: str
    destination: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelAnswered:
    """CHANNEL_ANSWER for a leg (a caller we answered, or an agent leg we originated)."""

    node: str
    uuid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelBridged:
    """CHANNEL_BRIDGE: FreeSWITCH confirms the two legs are connected."""

    node: str
    uuid: str
    other_uuid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldChanged:
    """CHANNEL_HOLD / CHANNEL_UNHOLD of either leg of a connected call: the hold time is kept apart from talk."""

    node: str
    uuid: str
    held: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelHungUp:
    """CHANNEL_HANGUP (or HANGUP_COMPLETE) of any leg; duplicates are harmless.

    ``hung_up_at`` (epoch seconds) is when FreeSWITCH says the channel hung up (``Caller-Channel-Hangup-Time``,
    else ``Event-Date-Timestamp``), or, for a channel found gone after a disconnect, when the link dropped: a
    call's record ends then rather than when fsrouter learnt it. None: at the time the router handles it.
    """

    node: str
    uuid: str
    cause: str = "NORMAL_CLEARING"
    hung_up_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginateFailed:
    """The BACKGROUND_JOB of our ``bgapi originate`` ended in ``-ERR <CAUSE>`` (busy, no answer, ...)."""

    node: str
    leg_uuid: str
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginateSucceeded:
    """The BACKGROUND_JOB of our ``bgapi originate`` ended in ``+OK <leg_uuid>``: the agent answered and the leg
    now runs ``&park()``. Only from then on can ``uuid_bridge`` take the leg without racing the originate
    (``core/routing/offers.py`` docstring: a bridge that lands before makes the job fail although the legs bridge)."""

    node: str
    leg_uuid: str


class FailedCommand(StrEnum):
    """The commands whose failure the router must hear of (``CommandFailed.command``)."""

    ANSWER = "answer"
    ORIGINATE = "originate"
    BRIDGE = "bridge"


class Failure(StrEnum):
    """What a failed command's reply tells about it (``CommandFailed.failure``)."""

    #: FreeSWITCH answered ``-ERR``: the command did not run
    REFUSED = "refused"
    #: no reply: not connected, the connection was lost with the command pending, or no reply within the command
    #: timeout (then the adapter drops the connection). FreeSWITCH may or may not have run it; the node's NodeUp
    #: after the reconnect tells what it has
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandFailed:
    """A command the router asked for was refused or could not be sent (fed back by the daemon).

    ``uuid`` is the channel the command was about (the caller for answer and bridge, the agent leg for
    originate); ``command`` is its kind, which may be given by name (``"bridge"``), and ``failure`` whether
    FreeSWITCH refused it or its fate is unknown.
    """

    node: str
    command: FailedCommand
    uuid: str
    reason: str
    failure: Failure = Failure.REFUSED

    def __post_init__(self) -> None:
        object.__setattr__(self, "command", FailedCommand(self.command))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelGone:
    """FreeSWITCH answered a command about channel ``uuid`` that it has no such channel (``-ERR No such
    channel!`` to ``uuid_break``, ``-ERR Invalid uuid`` to ``uuid_bridge``, ``-ERR invalid uuid`` to
    ``uuid_broadcast``, ``-ERROR`` to ``uuid_answer``; mod_commands.c, ``switch_core_session_locate`` failing):
    the channel hung up and its hang-up event was lost. Fed back by the daemon, for a caller or an agent leg."""

    node: str
    uuid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRegistration:
    """A SIP user's phone registered on ``node`` (sofia::register, for a new registration and for each refresh)
    or is no longer registered there (sofia::unregister for an Expires 0 REGISTER, sofia::expire ~60 s after a
    registration lapsed); captured as ``registration``. ``user`` is ``1000`` or ``1000@domain``."""

    node: str
    user: str
    registered: bool


class AgentAction(StrEnum):
    """What an operator (CLI, control socket) or a phone feature code asks of an agent's presence."""

    LOGIN = "login"
    LOGOUT = "logout"
    BREAK = "break"
    READY = "ready"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentControl:
    """An operator or phone feature code asks to change an agent's presence; the router answers with one
    ``ActionOutcome`` (``lifecycle.OPERATOR_ACTIONS``).

    ``action`` may be given as its name (``"break"``); an unknown one raises ValueError.
    """

    agent_id: str
    action: AgentAction
    source: str = "cli"
    #: a break or logout asked while the agent's phone rings cancels the ring and applies at once
    cancel_ring: bool = False

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "action", AgentAction(self.action))
        except ValueError:
            raise ValueError(f"unknown agent action {self.action!r}") from None


AGENT_ACTIONS = tuple(action.value for action in AgentAction)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeUp:
    """A FreeSWITCH node is connected, authenticated and subscribed, and this is what is live on it.

    ``core_uuid`` changes when FreeSWITCH restarted (then none of the old channels exist). ``live_uuids``
    are the channels FreeSWITCH still has (from ``show channels as json`` checked with ``uuid_exists``):
    anything the router tracked on that node and not listed here ended while we were away.
    """

    node: str
    core_uuid: str
    live_uuids: frozenset[str] = frozenset()
    #: live channels that are answered (callstate ACTIVE or HELD): a caller or an agent leg answered while we were
    #: away
    answered_uuids: frozenset[str] = frozenset()
    #: the pairs of live channels bridged together (``show calls``), each as a set of its two uuids
    bridged: frozenset[frozenset[str]] = frozenset()
    #: bridged agent legs fsrouter originated -> the agent each rings (its ``fsrouter_agent`` variable), so that
    #: a restarted fsrouter knows who talks on a call the previous process connected
    agents_of_legs: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    #: the SIP users (``1000``, no domain) registered on the node (``sofia status profile <profile> reg`` of each
    #: profile): agents of ``user/`` endpoints are reachable once listed. None: the node was not asked
    registered_users: frozenset[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeDown:
    """The connection to a node dropped; its calls may still be alive and are kept until NodeUp says."""

    node: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelsAudited:
    """What a connected node has, listed at ``taken_at`` by the periodic audit (``show channels``, ``show calls``).

    The router compares it with what it tracks on that node, to heal what it missed while connected: a
    hang-up, an answer or a bridge whose event was lost, an agent leg it does not know (one a previous fsrouter
    process left).
    """

    node: str
    taken_at: float
    live_uuids: frozenset[str] = frozenset()
    #: live channels tagged as fsrouter agent legs (``fsrouter_leg=agent``) that ring or are answered and
    #: parked: not in a conversation (a bridged leg is someone talking, whoever rang it)
    agent_legs: frozenset[str] = frozenset()
    #: live channels that are answered (callstate ACTIVE or HELD; an early-media leg still rings)
    answered_uuids: frozenset[str] = frozenset()
    #: the pairs of channels bridged together, each as a set of its two uuids
    bridged: frozenset[frozenset[str]] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """Time passed: fire timers (wrap-up end, retry delays, max wait, offer timeouts)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallsRestored:
    """What the previous fsrouter process left, handed to the router once at start before any node's events:
    the calls it had (``SaveWaiting``) and never recorded, with their ``offers`` as recorded, and the last recorded
    state of each agent. A caller still parked takes its place back; any other call gets its one record when a
    node shows it gone or it hangs up (``core/recovery.py``); agents come back in the presence they had."""

    calls: tuple[WaitingCall, ...] = ()
    offers: tuple[OfferRecord, ...] = ()
    agent_states: tuple[AgentStateRecord, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StopTakingCalls:
    """The daemon is draining: new callers are no longer accepted (they are left to the dialplan)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseAgentLegs:
    """The daemon is about to stop: ring no more agents, and hang up every agent leg that is not in a
    conversation (ringing, or answered and not yet bridged), so that nothing fsrouter originated is left in
    FreeSWITCH. Waiting callers stay where they are, for the next start to take back with their entry time."""


Event = (
    CallParked
    | CallLeftPark
    | ChannelAnswered
    | ChannelBridged
    | HoldChanged
    | ChannelHungUp
    | OriginateFailed
    | OriginateSucceeded
    | CommandFailed
    | ChannelGone
    | AgentRegistration
    | AgentControl
    | NodeUp
    | NodeDown
    | ChannelsAudited
    | Tick
    | StopTakingCalls
    | ReleaseAgentLegs
    | CallsRestored
)
