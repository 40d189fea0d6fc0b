"""Commands returned by the router: what must be done in FreeSWITCH or in the store, never done here.

The daemon executes them in order: ESL commands through ``adapters/esl.py`` on the command's ``node``, records
through ``adapters/store.py``. A command that fails is fed back to the router as ``CommandFailed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from fsrouter.core.lifecycle import ActionResult

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """Answer a parked caller (``uuid_answer``): a parked, unanswered caller cannot be bridged."""

    node: str
    uuid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayMusic:
    """Play music on hold / a looping announcement to a waiting caller (``uuid_broadcast ... aleg``)."""

    node: str
    uuid: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Originate:
    """Ring an agent: ``bgapi originate {origination_uuid=<leg_uuid>,...}<endpoint> &park()``.

    ``variables`` are extra channel variables for the agent leg; the adapter always adds the tags
    ``fsrouter_leg=agent`` and ``fsrouter_call=<call_uuid>`` and ``originate_timeout=<timeout>``.
    """

    node: str
    leg_uuid: str
    call_uuid: str
    endpoint: str
    timeout: float
    caller_number: str = ""
    caller_name: str = ""
    variables: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bridge:
    """Connect the caller to the agent leg (``uuid_break <caller> all`` then ``uuid_bridge``)."""

    node: str
    caller_uuid: str
    agent_uuid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Kill:
    """Hang up a leg (``uuid_kill <uuid> <cause>``)."""

    node: str
    uuid: str
    cause: str = "NORMAL_CLEARING"


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """Send a caller elsewhere: an extension (overflow, voicemail) or an inline announcement + hang-up."""

    node: str
    uuid: str
    destination: str
    dialplan: str = "XML"
    context: str = "default"


class CallOutcome(StrEnum):
    """How a call's stay in fsrouter ended (``CallRecord.outcome``; ``docs/kpi.md`` counts them)."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"
    OVERFLOWED = "overflowed"
    CLOSED = "closed"
    TIMED_OUT = "timed_out"
    REJECTED = "rejected"
    FAILED = "failed"
    #: the caller's channel left park for something fsrouter did not start (a transfer, another application, the
    #: dialplan's own exit) while it waited: CHANNEL_UNPARK (captured as ``leave_park``)
    LEFT = "left"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """The one record every stay of a caller's channel in fsrouter ends with, keyed by (``uuid``, ``stay``).

    ``stay`` counts the stays of the channel, 1 for its first; a channel that parks again with fsrouter's marks
    after a stay (an agent's blind transfer into another queue, captured as ``repark_after_transfer``) starts
    stay 2, whose ``previous_stay`` names the stay it follows (``None`` for a first stay)."""

    uuid: str
    node: str
    queue: str
    outcome: CallOutcome
    entered_at: float
    ended_at: float
    agent: str | None = None
    answered_at: float | None = None
    caller_number: str = ""
    destination: str = ""
    hangup_cause: str = ""
    offers: int = 0
    wrapup_seconds: float = 0.0
    #: time the caller spent on hold while connected to the agent (not counted in talk)
    hold_seconds: float = 0.0
    #: the queue's ``service_level_seconds`` (T) and ``short_abandon_seconds`` when the call ended, so that every
    #: view of its KPIs (``/metrics``, ``fsrouter report`` without the rules file, ``status``) applies the same
    #: ones; None: not known (a record written before fsrouter kept them), the queue's configuration or default
    service_level_seconds: float | None = None
    short_abandon_seconds: float | None = None
    stay: int = 1
    previous_stay: int | None = None

    @property
    def wait_seconds(self) -> float:
        """Time in queue: until the agent was connected, or until the call ended unanswered."""
        end = self.answered_at if self.answered_at is not None else self.ended_at
        return max(0.0, end - self.entered_at)

    @property
    def talk_seconds(self) -> float:
        """Connected time minus hold: AHT = talk + hold + wrap-up counts each second once."""
        if self.answered_at is None:
            return 0.0
        return max(0.0, self.ended_at - self.answered_at - self.hold_seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordCall:
    """Write the call's final record (exactly once per call)."""

    record: CallRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStateRecord:
    """An agent changed state (kept as history; also how agent states survive a restart)."""

    agent: str
    state: str
    at: float
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordAgentState:
    record: AgentStateRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class WrapUpRecord:
    """An agent's wrap-up after an answered call, which completes that call's record (it ends after the call)."""

    call_uuid: str
    agent: str
    queue: str
    ended_at: float
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordWrapUp:
    record: WrapUpRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferRecord:
    """One offer of a call to an agent and how it ended (answered, or the failure cause)."""

    call_uuid: str
    leg_uuid: str
    agent: str
    queue: str
    offered_at: float
    ended_at: float
    result: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordOffer:
    record: OfferRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitingCall:
    """A call in fsrouter (waiting, or connected to its agent), as kept for the next process to take back: a
    restart puts a caller still parked back at its place (its entry time), and gives every other one its record."""

    uuid: str
    node: str
    queue: str
    entered_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SaveWaiting:
    """Keep ``call`` until its ``RecordCall``, which drops it (``CallsRestored`` hands it back after a restart)."""

    call: WaitingCall


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordTrace:
    """Keep one routing decision's trace (``core/explain.py``) for ``fsrouter explain CALL_UUID``."""

    call_uuid: str
    trace: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionOutcome:
    """What the core did with one operator's action (``AgentControl``), for the daemon to log and to answer the
    control request with: ``result`` and its ``reason`` (``lifecycle.OPERATOR_ACTIONS``), and the agent's
    ``state`` once the action was handled (empty for an unknown agent)."""

    agent: str
    action: str
    source: str
    result: ActionResult
    reason: str = ""
    state: str = ""

    def describe(self) -> str:
        """``break pending until the call ends``, ``break applied: already on break``, ``ready refused: …``."""
        if not self.reason:
            return f"{self.action} {self.result}"
        joint = " " if self.result == ActionResult.PENDING else ": "
        return f"{self.action} {self.result}{joint}{self.reason}"


EslCommand = Answer | PlayMusic | Originate | Bridge | Kill | Transfer
StoreCommand = RecordCall | RecordAgentState | RecordWrapUp | RecordOffer | RecordTrace | SaveWaiting
Command = EslCommand | StoreCommand | ActionOutcome

OUTCOMES = tuple(outcome.value for outcome in CallOutcome)
