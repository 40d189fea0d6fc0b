"""An operator's actions in every agent state (``lifecycle.OPERATOR_ACTIONS``): what the core does, and the one
``ActionOutcome`` the control socket answers with."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fsrouter.core.commands import ActionOutcome, Command, Kill, Originate, RecordAgentState
from fsrouter.core.events import AgentControl, ChannelAnswered, ChannelHungUp, OriginateFailed, OriginateSucceeded
from fsrouter.core.lifecycle import (
    OPERATOR_ACTIONS,
    OPERATOR_TRIGGERS,
    ActionResult,
    AgentState,
    AgentTrigger,
    action_table,
)
from fsrouter.core.routing import Router
from tests.core.test_router import NODE, agent_state, connected_call, make_router, parked

AGENT = "agent-1000"


def act(router: Router, action: str, now: float, *, source: str = "cli", cancel_ring: bool = False) -> list[Command]:
    return router.handle(AgentControl(agent_id=AGENT, action=action, source=source, cancel_ring=cancel_ring), now)


def outcome_of(commands: list[Command]) -> ActionOutcome:
    """The action's outcome: exactly one, the last command of the action itself."""
    [outcome] = [c for c in commands if isinstance(c, ActionOutcome)]
    return outcome


def logged_out(router: Router) -> None:
    act(router, "logout", 0.0)


def available(router: Router) -> None:
    pass


def ringing(router: Router) -> None:
    router.handle(parked(answered=True), now=0.0)  # rings agent-1000 as leg-1


def talking(router: Router) -> None:
    connected_call(router, at=0.0)


def wrapping_up(router: Router) -> None:
    connected_call(router, at=0.0)
    router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), now=5.0)


def on_break(router: Router) -> None:
    act(router, "break", 0.0)


SETUPS: dict[AgentState, Callable[[Router], None]] = {
    AgentState.LOGGED_OUT: logged_out,
    AgentState.AVAILABLE: available,
    AgentState.RESERVED: ringing,
    AgentState.ON_CALL: talking,
    AgentState.WRAP_UP: wrapping_up,
    AgentState.BREAK: on_break,
}

#: (state, action) -> the control reply's line, the state right after, and the state once the ring or call ended
EXPECTED: dict[tuple[str, str], tuple[str, str, str]] = {
    ("logged_out", "login"): ("login applied", "available", "available"),
    ("logged_out", "logout"): ("logout applied: already logged out", "logged_out", "logged_out"),
    ("logged_out", "break"): ("break refused: logged out: log in first", "logged_out", "logged_out"),
    ("logged_out", "ready"): ("ready refused: logged out: log in first", "logged_out", "logged_out"),
    ("available", "login"): ("login applied: already logged in", "available", "available"),
    ("available", "logout"): ("logout applied", "logged_out", "logged_out"),
    ("available", "break"): ("break applied", "break", "break"),
    ("available", "ready"): (
        "ready applied: already available; retry delay and no-answer count cleared",
        "available",
        "available",
    ),
    ("reserved", "login"): ("login applied: already logged in", "reserved", "available"),
    ("reserved", "logout"): ("logout pending until the ring or the call it leads to ends", "reserved", "logged_out"),
    ("reserved", "break"): ("break pending until the ring or the call it leads to ends", "reserved", "break"),
    ("reserved", "ready"): ("ready applied: already working", "reserved", "available"),
    ("on_call", "login"): ("login applied: already logged in", "on_call", "wrap_up"),
    ("on_call", "logout"): ("logout pending until the call ends", "on_call", "logged_out"),
    ("on_call", "break"): ("break pending until the call ends", "on_call", "break"),
    ("on_call", "ready"): ("ready applied: already working", "on_call", "wrap_up"),
    ("wrap_up", "login"): ("login applied: already logged in", "wrap_up", "wrap_up"),
    ("wrap_up", "logout"): ("logout applied", "logged_out", "logged_out"),
    ("wrap_up", "break"): ("break applied", "break", "break"),
    ("wrap_up", "ready"): ("ready applied", "available", "available"),
    ("break", "login"): ("login applied: already logged in", "break", "break"),
    ("break", "logout"): ("logout applied", "logged_out", "logged_out"),
    ("break", "break"): ("break applied: already on break", "break", "break"),
    ("break", "ready"): ("ready applied", "available", "available"),
}


def end_ring_or_call(router: Router, now: float) -> None:
    """The ring ends unanswered, or the caller hangs up the conversation."""
    router.handle(OriginateFailed(node=NODE, leg_uuid="leg-1", cause="NO_ANSWER"), now)
    router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), now)


def test_the_table_covers_every_state_and_action() -> None:
    pairs = {(state.value, trigger.value) for state in AgentState for trigger in OPERATOR_TRIGGERS}
    assert {(state.value, trigger.value) for state, trigger in OPERATOR_ACTIONS} == pairs == set(EXPECTED)
    assert action_table().count("\n") == 1 + len(AgentState)  # header, rule, a row per state


@pytest.mark.parametrize(("state", "action"), sorted(EXPECTED))
def test_an_operator_action_in_every_agent_state(state: str, action: str) -> None:
    reply, state_after, state_after_call = EXPECTED[(state, action)]
    router = make_router("1000", wrapup=30.0)
    SETUPS[AgentState(state)](router)
    assert agent_state(router, AGENT) == state

    out = act(router, action, now=10.0)

    outcome = outcome_of(out)
    assert out[-1] is outcome
    assert (outcome.agent, outcome.describe(), outcome.state) == (AGENT, reply, state_after)
    assert agent_state(router, AGENT) == state_after
    assert outcome.result is OPERATOR_ACTIONS[(AgentState(state), AgentTrigger(action))].result
    assert [c for c in out if isinstance(c, RecordAgentState)], "every action leaves a state record"
    assert not [c for c in out if isinstance(c, Kill)], "no ring nor call is cut"
    end_ring_or_call(router, now=20.0)
    assert agent_state(router, AGENT) == state_after_call


def test_break_while_ringing_keeps_the_ring_and_applies_once_the_answered_call_ends() -> None:
    router = make_router("1000", wrapup=30.0)
    ringing(router)

    assert outcome_of(act(router, "break", now=1.0)).result is ActionResult.PENDING
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=2.0)
    router.handle(OriginateSucceeded(node=NODE, leg_uuid="leg-1"), now=2.0)
    assert agent_state(router, AGENT) == "on_call"  # the ring went on and was answered
    router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), now=60.0)

    assert agent_state(router, AGENT) == "break"
    router.handle(parked("caller-2", answered=True), now=61.0)
    assert router.calls["caller-2"].state.value == "waiting"


def test_break_now_while_ringing_cancels_the_ring_and_the_caller_waits_again() -> None:
    router = make_router("1000")
    ringing(router)

    out = act(router, "break", now=1.0, cancel_ring=True)

    assert [c for c in out if isinstance(c, Kill)] == [Kill(node=NODE, uuid="leg-1", cause="ORIGINATOR_CANCEL")]
    assert outcome_of(out).describe() == "break applied"
    assert agent_state(router, AGENT) == "break"
    assert router.calls["caller-1"].state.value == "waiting"


def test_ready_during_a_retry_delay_clears_it_and_offers_the_waiting_caller_in_the_same_step() -> None:
    router = make_router("1000")
    agent = router.agents[AGENT]
    router.handle(parked(answered=True), now=0.0)
    router.handle(OriginateFailed(node=NODE, leg_uuid="leg-1", cause="NO_ANSWER"), now=20.0)
    assert (agent.ready_at, agent.no_answer_count) == (35.0, 1)

    out = act(router, "ready", now=21.0)

    assert [c.leg_uuid for c in out if isinstance(c, Originate)] == ["leg-2"]
    assert (agent.no_answer_count, outcome_of(out).result) == (0, ActionResult.APPLIED)


def test_ready_cancels_a_pending_break() -> None:
    router = make_router("1000", wrapup=0.0)
    talking(router)
    act(router, "break", now=1.0)

    assert (
        outcome_of(act(router, "ready", now=2.0)).describe()
        == "ready applied: already working; pending break cancelled"
    )
    router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), now=3.0)
    assert agent_state(router, AGENT) == "available"


def test_a_feature_code_gets_its_outcome_recorded_with_the_reason() -> None:
    router = make_router("1000")
    talking(router)

    out = act(router, "break", now=1.0, source="phone")

    [record] = [c.record for c in out if isinstance(c, RecordAgentState)]
    assert (record.state, record.reason) == ("on_call", "break from phone: break pending until the call ends")
    assert outcome_of(out).source == "phone"


def test_an_unknown_agent_is_refused() -> None:
    router = make_router("1000")
    out = router.handle(AgentControl(agent_id="agent-9", action="break"), now=1.0)
    assert out == [
        ActionOutcome(
            agent="agent-9", action="break", source="cli", result=ActionResult.REFUSED, reason="unknown agent"
        )
    ]
