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

Rule 1: every change of state goes through ``advance()`` with a named trigger; a pair missing from the table
raises ``InvalidTransition`` and the state is left unchanged.
Rule 2: the tables are the documentation: ``python -m fsrouter.core.lifecycle`` prints them as Mermaid.
"""

from __future__ import annotations

from enum import Enum
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


_LIVE_CALL = (CallState.WAITING, CallState.OFFERING, CallState.CONNECTING)

CALL_TRANSITIONS: dict[tuple[CallState, str], CallState] = {
    (CallState.WAITING, "offer"): CallState.OFFERING,
    (CallState.OFFERING, "offer"): CallState.OFFERING,
    (CallState.OFFERING, "all_offers_failed"): CallState.WAITING,
    (CallState.OFFERING, "agent_answered"): CallState.CONNECTING,
    (CallState.CONNECTING, "bridge_failed"): CallState.WAITING,
    (CallState.CONNECTING, "bridged"): CallState.TALKING,
    (CallState.TALKING, "hangup"): CallState.ENDED,
    **{(state, "caller_hangup"): CallState.ENDED for state in _LIVE_CALL},
    **{(state, "leave_queue"): CallState.ENDED for state in _LIVE_CALL},
    **{(state, "lost"): CallState.ENDED for state in (*_LIVE_CALL, CallState.TALKING)},
}

_WORKING = (AgentState.AVAILABLE, AgentState.WRAP_UP, AgentState.BREAK)

AGENT_TRANSITIONS: dict[tuple[AgentState, str], AgentState] = {
    (AgentState.LOGGED_OUT, "login"): AgentState.AVAILABLE,
    (AgentState.AVAILABLE, "offer"): AgentState.RESERVED,
    (AgentState.RESERVED, "offer_failed"): AgentState.AVAILABLE,
    (AgentState.RESERVED, "offer_cancelled"): AgentState.AVAILABLE,
    (AgentState.RESERVED, "too_many_no_answers"): AgentState.BREAK,
    (AgentState.RESERVED, "answered"): AgentState.ON_CALL,
    (AgentState.ON_CALL, "call_ended"): AgentState.WRAP_UP,
    (AgentState.ON_CALL, "call_not_connected"): AgentState.AVAILABLE,
    (AgentState.WRAP_UP, "wrapup_done"): AgentState.AVAILABLE,
    (AgentState.AVAILABLE, "break"): AgentState.BREAK,
    (AgentState.WRAP_UP, "break"): AgentState.BREAK,
    (AgentState.BREAK, "ready"): AgentState.AVAILABLE,
    (AgentState.WRAP_UP, "ready"): AgentState.AVAILABLE,
    **{(state, "logout"): AgentState.LOGGED_OUT for state in _WORKING},
}

S = TypeVar("S", CallState, AgentState)


def advance(table: dict[tuple[S, str], S], state: S, trigger: str) -> S:
    """The state ``trigger`` leads to from ``state``; raises InvalidTransition if the table has no such edge."""
    try:
        return table[(state, trigger)]
    except KeyError:
        raise InvalidTransition(f"{trigger!r} is not allowed in state {state.value!r}") from None


def mermaid(table: dict[tuple[S, str], S]) -> str:
    """The table as a Mermaid state diagram (for docs)."""
    lines = ["stateDiagram-v2"]
    lines += [f"    {src.value} --> {dst.value}: {trigger}" for (src, trigger), dst in table.items()]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - documentation helper
    import sys

    sys.stdout.write(mermaid(CALL_TRANSITIONS) + "\n\n" + mermaid(AGENT_TRANSITIONS) + "\n")
