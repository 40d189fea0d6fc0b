"""Call and agent lifecycles as transition tables.

Theory of operation
-------------------
A *call* is one caller leg that the dialplan parked for fsrouter. It waits in a queue (WAITING), is offered to
one or more agents whose phones ring (OFFERING), is being connected once an agent answered (CONNECTING: the
caller must also be answered before ``uuid_bridge``), talks (TALKING) and ends (ENDED) with exactly one outcome.
An offer that fails puts the call back to WAITING; nothing else can move a call backwards.

An *agent* is a person behind an endpoint. AVAILABLE agents can be offered a call (RESERVED while their phone
rings); on answer they are ON_CALL, then in WRAP_UP for the configured time, then AVAILABLE again. BREAK and
LOGGED_OUT take an agent out of routing. SIP registration is not a state: it is a flag that makes an
AVAILABLE agent ineligible, so an agent whose phone re-registers goes back to work without anyone's help.

An operator's action (login, logout, break, ready: the CLI, the control socket or a phone feature code) is
allowed in every agent state: ``OPERATOR_ACTIONS`` says, for each (state, action), whether it is applied now,
kept pending and applied when the ring or the call ends, or refused with a reason. Repeating an action is
applied (``already on break``), never an error.

Rule 1: every change of state goes through ``advance()`` with a named trigger; a pair missing from the table
raises ``InvalidTransition`` and the state is left unchanged.
Rule 2: the tables are the documentation: ``python -m fsrouter.core.lifecycle`` prints them (Mermaid for the
lifecycles, Markdown for the operator's actions).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import TypeVar

from fsrouter.errors import InvalidTransition


class CallState(Enum):
    WAITING = "waiting"
    OFFERING = "offering"
    CONNECTING = "connecting"
    TALKING = "talking"
    ENDED = "ended"


class AgentState(Enum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RESERVED = "reserved"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    BREAK = "break"


class CallTrigger(StrEnum):
    """What moves a call."""

    OFFER = "offer"
    ALL_OFFERS_FAILED = "all_offers_failed"
    AGENT_ANSWERED = "agent_answered"
    BRIDGE_FAILED = "bridge_failed"
    BRIDGED = "bridged"
    HANGUP = "hangup"
    CALLER_HANGUP = "caller_hangup"
    LEAVE_QUEUE = "leave_queue"
    LOST = "lost"


class AgentTrigger(StrEnum):
    """What moves an agent; the operator's actions (``AgentAction``) share their names."""

    LOGIN = "login"
    LOGOUT = "logout"
    BREAK = "break"
    READY = "ready"
    OFFER = "offer"
    OFFER_FAILED = "offer_failed"
    OFFER_CANCELLED = "offer_cancelled"
    TOO_MANY_NO_ANSWERS = "too_many_no_answers"
    ANSWERED = "answered"
    CALL_ENDED = "call_ended"
    CALL_NOT_CONNECTED = "call_not_connected"
    WRAPUP_DONE = "wrapup_done"
    #: a restarted fsrouter finds the agent talking on a call the previous process connected
    REATTACHED = "reattached"


_LIVE_CALL = (CallState.WAITING, CallState.OFFERING, CallState.CONNECTING)

CALL_TRANSITIONS: dict[tuple[CallState, CallTrigger], CallState] = {
    (CallState.WAITING, CallTrigger.OFFER): CallState.OFFERING,
    (CallState.OFFERING, CallTrigger.OFFER): CallState.OFFERING,
    (CallState.OFFERING, CallTrigger.ALL_OFFERS_FAILED): CallState.WAITING,
    (CallState.OFFERING, CallTrigger.AGENT_ANSWERED): CallState.CONNECTING,
    (CallState.CONNECTING, CallTrigger.BRIDGE_FAILED): CallState.WAITING,
    (CallState.CONNECTING, CallTrigger.BRIDGED): CallState.TALKING,
    (CallState.TALKING, CallTrigger.HANGUP): CallState.ENDED,
    **{(state, CallTrigger.CALLER_HANGUP): CallState.ENDED for state in _LIVE_CALL},
    **{(state, CallTrigger.LEAVE_QUEUE): CallState.ENDED for state in _LIVE_CALL},
    **{(state, CallTrigger.LOST): CallState.ENDED for state in (*_LIVE_CALL, CallState.TALKING)},
}

_WORKING = (AgentState.AVAILABLE, AgentState.WRAP_UP, AgentState.BREAK)

AGENT_TRANSITIONS: dict[tuple[AgentState, AgentTrigger], AgentState] = {
    (AgentState.LOGGED_OUT, AgentTrigger.LOGIN): AgentState.AVAILABLE,
    (AgentState.AVAILABLE, AgentTrigger.OFFER): AgentState.RESERVED,
    (AgentState.RESERVED, AgentTrigger.OFFER_FAILED): AgentState.AVAILABLE,
    (AgentState.RESERVED, AgentTrigger.OFFER_CANCELLED): AgentState.AVAILABLE,
    (AgentState.RESERVED, AgentTrigger.TOO_MANY_NO_ANSWERS): AgentState.BREAK,
    (AgentState.RESERVED, AgentTrigger.ANSWERED): AgentState.ON_CALL,
    (AgentState.ON_CALL, AgentTrigger.CALL_ENDED): AgentState.WRAP_UP,
    (AgentState.ON_CALL, AgentTrigger.CALL_NOT_CONNECTED): AgentState.AVAILABLE,
    (AgentState.WRAP_UP, AgentTrigger.WRAPUP_DONE): AgentState.AVAILABLE,
    (AgentState.AVAILABLE, AgentTrigger.BREAK): AgentState.BREAK,
    (AgentState.WRAP_UP, AgentTrigger.BREAK): AgentState.BREAK,
    (AgentState.BREAK, AgentTrigger.READY): AgentState.AVAILABLE,
    (AgentState.WRAP_UP, AgentTrigger.READY): AgentState.AVAILABLE,
    **{(state, AgentTrigger.LOGOUT): AgentState.LOGGED_OUT for state in _WORKING},
    **{(state, AgentTrigger.REATTACHED): AgentState.ON_CALL for state in (*_WORKING, AgentState.LOGGED_OUT)},
}


class ActionResult(StrEnum):
    """What the core did with an operator's action."""

    APPLIED = "applied"
    #: kept, and applied when the agent's ring or call ends
    PENDING = "pending"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class ActionRule:
    """What an operator's action does in one agent state, and the reason the reply gives (empty: none to give).

    A pending action is applied when the agent becomes free (available or in wrap-up) after its ring or its
    call; a later action replaces it, and ``ready`` or ``login`` cancels it."""

    result: ActionResult
    reason: str = ""


#: the operator's actions, by their agent trigger (``events.AgentAction`` shares the names)
OPERATOR_TRIGGERS = (AgentTrigger.LOGIN, AgentTrigger.LOGOUT, AgentTrigger.BREAK, AgentTrigger.READY)
#: actions that a ``cancel_ring`` request applies at once to a ringing agent (its ring is cancelled first)
RING_CANCELLING = (AgentTrigger.LOGOUT, AgentTrigger.BREAK)

_APPLIED = ActionRule(ActionResult.APPLIED)
_AFTER_RING = ActionRule(ActionResult.PENDING, "until the ring or the call it leads to ends")
_AFTER_CALL = ActionRule(ActionResult.PENDING, "until the call ends")
_LOG_IN_FIRST = ActionRule(ActionResult.REFUSED, "logged out: log in first")
_ALREADY_LOGGED_IN = ActionRule(ActionResult.APPLIED, "already logged in")
_BUSY = {AgentState.RESERVED: _AFTER_RING, AgentState.ON_CALL: _AFTER_CALL}

OPERATOR_ACTIONS: dict[tuple[AgentState, AgentTrigger], ActionRule] = {
    (AgentState.LOGGED_OUT, AgentTrigger.LOGIN): _APPLIED,
    (AgentState.LOGGED_OUT, AgentTrigger.LOGOUT): ActionRule(ActionResult.APPLIED, "already logged out"),
    (AgentState.LOGGED_OUT, AgentTrigger.BREAK): _LOG_IN_FIRST,
    (AgentState.LOGGED_OUT, AgentTrigger.READY): _LOG_IN_FIRST,
    (AgentState.AVAILABLE, AgentTrigger.LOGIN): _ALREADY_LOGGED_IN,
    (AgentState.AVAILABLE, AgentTrigger.LOGOUT): _APPLIED,
    (AgentState.AVAILABLE, AgentTrigger.BREAK): _APPLIED,
    (AgentState.AVAILABLE, AgentTrigger.READY): ActionRule(
        ActionResult.APPLIED, "already available; retry delay and no-answer count cleared"
    ),
    **{(busy, AgentTrigger.LOGIN): _ALREADY_LOGGED_IN for busy in _BUSY},
    **{(busy, AgentTrigger.LOGOUT): rule for busy, rule in _BUSY.items()},
    **{(busy, AgentTrigger.BREAK): rule for busy, rule in _BUSY.items()},
    **{(busy, AgentTrigger.READY): ActionRule(ActionResult.APPLIED, "already working") for busy in _BUSY},
    (AgentState.WRAP_UP, AgentTrigger.LOGIN): _ALREADY_LOGGED_IN,
    (AgentState.WRAP_UP, AgentTrigger.LOGOUT): _APPLIED,
    (AgentState.WRAP_UP, AgentTrigger.BREAK): _APPLIED,
    (AgentState.WRAP_UP, AgentTrigger.READY): _APPLIED,
    (AgentState.BREAK, AgentTrigger.LOGIN): _ALREADY_LOGGED_IN,
    (AgentState.BREAK, AgentTrigger.LOGOUT): _APPLIED,
    (AgentState.BREAK, AgentTrigger.BREAK): ActionRule(ActionResult.APPLIED, "already on break"),
    (AgentState.BREAK, AgentTrigger.READY): _APPLIED,
}

S = TypeVar("S", CallState, AgentState)
T = TypeVar("T", CallTrigger, AgentTrigger)


def advance(table: dict[tuple[S, T], S], state: S, trigger: T) -> S:
    """The state ``trigger`` leads to from ``state``; raises InvalidTransition if the table has no such edge."""
    try:
        return table[(state, trigger)]
    except KeyError:
        raise InvalidTransition(f"{trigger!r} is not allowed in state {state.value!r}") from None


def mermaid(table: dict[tuple[S, T], S]) -> str:
    """The table as a Mermaid state diagram (for docs)."""
    lines = ["stateDiagram-v2"]
    lines += [f"    {src.value} --> {dst.value}: {trigger.value}" for (src, trigger), dst in table.items()]
    return "\n".join(lines)


def action_table() -> str:
    """``OPERATOR_ACTIONS`` as a Markdown table: one row per agent state, one column per action."""
    lines = [
        "| state | " + " | ".join(trigger.value for trigger in OPERATOR_TRIGGERS) + " |",
        "|---" * (len(OPERATOR_TRIGGERS) + 1) + "|",
    ]
    for state in AgentState:
        cells = []
        for trigger in OPERATOR_TRIGGERS:
            rule = OPERATOR_ACTIONS[(state, trigger)]
            cells.append(f"{rule.result}: {rule.reason}" if rule.reason else str(rule.result))
        lines.append(f"| {state.value} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - documentation helper
    import sys

    diagrams = [mermaid(CALL_TRANSITIONS), mermaid(AGENT_TRANSITIONS), action_table()]
    sys.stdout.write("\n\n".join(diagrams) + "\n")
