"""Stays, leaving park and registration per node: events in with a fake clock, exact commands out.

The event orders are those of the caller-side captures (tests/fixtures/esl-caller/plain): ``repark_after_transfer``
(the agent leg hangs up, then the caller parks again in ``sales``), ``leave_park`` (CHANNEL_UNPARK with the new
destination), ``registration`` (sofia::register / unregister / expire per node).
"""

from __future__ import annotations

import itertools

import pytest

from fsrouter.core.commands import Bridge, CallOutcome, Kill, Originate, RecordCall, StoreCommand
from fsrouter.core.events import (
    AgentRegistration,
    CallLeftPark,
    CallParked,
    ChannelAnswered,
    ChannelBridged,
    ChannelHungUp,
    NodeUp,
    OriginateFailed,
    OriginateSucceeded,
    Tick,
)
from fsrouter.core.routing import Router
from fsrouter.core.rules import AgentConfig, QueueConfig, Rules

NODE = "fs1"
OTHER_NODE = "fs2"


def make_router(endpoint: str = "user/{user}") -> Router:
    """Agent 1000 in support, 2000 in sales; ``endpoint`` is formatted with the user."""
    queues = {name: QueueConfig(name=name, wrapup=0.0, moh="") for name in ("support", "sales")}
    agents = tuple(
        AgentConfig(id=f"agent-{user}", endpoint=endpoint.format(user=user), queues=(queue,))
        for user, queue in (("1000", "support"), ("2000", "sales"))
    )
    counter = itertools.count(1)
    rules = Rules(queues=queues, agents=agents, default_queue="support")
    return Router(rules, now=0.0, new_id=lambda: f"leg-{next(counter)}")


def parked(queue: str, destination: str, *, node: str = NODE, uuid: str = "caller-1") -> CallParked:
    return CallParked(node=node, uuid=uuid, destination=destination, answered=True, variables={"fsrouter_queue": queue})


def esl(commands: list) -> list:
    return [command for command in commands if not isinstance(command, StoreCommand)]


def records(commands: list) -> list:
    return [command.record for command in commands if isinstance(command, RecordCall)]


def talking(router: Router, leg: str, now: float) -> list:
    """The agent leg ``leg`` answers, its job reports, the bridge is confirmed: all commands."""
    commands = router.handle(ChannelAnswered(node=NODE, uuid=leg), now)
    commands += router.handle(OriginateSucceeded(node=NODE, leg_uuid=leg), now)
    return commands + router.handle(ChannelBridged(node=NODE, uuid="caller-1", other_uuid=leg), now)


@pytest.mark.parametrize("agent_leg_first", [True, False], ids=["leg-hangup-first", "park-first"])
def test_a_caller_transferred_into_another_queue_starts_a_second_stay_linked_to_the_first(
    agent_leg_first: bool,
) -> None:
    router = make_router()
    assert esl(router.handle(parked("support", "5003"), 0.0)) == [
        Originate(
            node=NODE,
            leg_uuid="leg-1",
            call_uuid="caller-1",
            endpoint="user/1000",
            timeout=20.0,
            variables={"fsrouter_queue": "support", "fsrouter_agent": "agent-1000"},
        )
    ]
    assert esl(talking(router, "leg-1", 1.0)) == [Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1")]
    leg_hangup = ChannelHungUp(node=NODE, uuid="leg-1", cause="NORMAL_CLEARING")
    repark = parked("sales", "5004")
    first, second = (leg_hangup, repark) if agent_leg_first else (repark, leg_hangup)
    out = router.handle(first, 10.0) + router.handle(second, 10.0)

    (support,) = records(out)
    assert (support.queue, support.outcome, support.stay, support.agent) == ("support", "answered", 1, "agent-1000")
    assert support.hangup_cause == ("NORMAL_CLEARING" if agent_leg_first else "TRANSFERRED")
    assert [c for c in esl(out) if isinstance(c, Originate)][0].endpoint == "user/2000"
    assert router.transfers == {("support", "sales"): 1}
    assert router.snapshot(10.0).transfers == {("support", "sales"): 1}
    assert esl(talking(router, "leg-2", 11.0)) == [Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-2")]
    (sales,) = records(router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), 20.0))
    assert (sales.queue, sales.outcome, sales.stay, sales.previous_stay) == ("sales", "answered", 2, 1)
    assert (sales.entered_at, sales.agent) == (10.0, "agent-2000")


def test_a_park_relearnt_after_a_reconnect_is_not_a_second_stay() -> None:
    router = make_router()
    router.handle(parked("support", "5003"), 0.0)
    router.handle(ChannelHungUp(node=NODE, uuid="leg-1", cause="USER_BUSY"), 1.0)
    relearnt = CallParked(
        node=NODE,
        uuid="caller-1",
        destination="5003",
        answered=True,
        variables={"fsrouter_queue": "support"},
        entered_at=0.0,
    )
    assert router.handle(relearnt, 2.0) == []  # still waiting: the same stay
    assert router.calls["caller-1"].state.value == "waiting"
    left = router.handle(CallLeftPark(node=NODE, uuid="caller-1", destination="5005"), 3.0)
    assert [r.outcome for r in records(left)] == [CallOutcome.LEFT]
    assert router.handle(relearnt, 4.0) == []  # its stay is recorded: a reconnect does not bring it back


def test_a_waiting_caller_that_leaves_park_ends_left_and_is_never_bridged() -> None:
    router = make_router()
    router.handle(parked("support", "5003"), 0.0)
    out = router.handle(CallLeftPark(node=NODE, uuid="caller-1", destination="5005"), 5.0)
    assert esl(out) == [Kill(node=NODE, uuid="leg-1", cause="ORIGINATOR_CANCEL")]
    (record,) = records(out)
    assert (record.outcome, record.hangup_cause, record.ended_at) == ("left", "left park for 5005", 5.0)
    assert router.calls == {} and router.agents["agent-1000"].state.value == "available"
    # the killed leg's late answer and job result find nothing to bridge
    assert esl(router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), 5.1)) == []
    assert esl(router.handle(OriginateSucceeded(node=NODE, leg_uuid="leg-1"), 5.2)) == []
    assert esl(router.handle(Tick(), 60.0)) == []


def test_a_caller_leaving_park_while_its_agent_answered_frees_the_agent_and_kills_the_leg() -> None:
    router = make_router()
    router.handle(parked("support", "5003"), 0.0)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), 1.0)  # the job result is not in: no bridge yet
    out = router.handle(CallLeftPark(node=NODE, uuid="caller-1", destination="5003"), 1.5)
    assert esl(out) == [Kill(node=NODE, uuid="leg-1", cause="ORIGINATOR_CANCEL")]
    assert [(r.outcome, r.hangup_cause) for r in records(out)] == [("left", "left park")]
    assert router.agents["agent-1000"].state.value == "available"


def test_the_unpark_of_fsrouters_own_bridge_and_of_a_hang_up_is_not_a_departure() -> None:
    router = make_router()
    router.handle(parked("support", "5003"), 0.0)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), 1.0)
    assert esl(router.handle(OriginateSucceeded(node=NODE, leg_uuid="leg-1"), 1.0)) == [
        Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1")
    ]
    assert router.handle(CallLeftPark(node=NODE, uuid="caller-1", destination="5003"), 1.1) == []
    router.handle(ChannelBridged(node=NODE, uuid="caller-1", other_uuid="leg-1"), 1.2)
    assert router.handle(CallLeftPark(node=NODE, uuid="caller-1", destination="5003"), 1.3) == []
    assert router.calls["caller-1"].state.value == "talking"


def test_a_phone_registered_on_one_node_is_rung_only_for_that_nodes_callers() -> None:
    router = make_router()
    router.handle(AgentRegistration(node=NODE, user="1000", registered=True), 0.0)
    assert esl(router.handle(parked("support", "5003", node=OTHER_NODE, uuid="b-1"), 1.0)) == []
    assert [type(c) for c in esl(router.handle(parked("support", "5003", uuid="a-1"), 2.0))] == [Originate]
    view = next(agent for agent in router.snapshot(2.0).agents if agent.id == "agent-1000")
    assert (view.registered, view.registrations) == (True, {NODE: True})


def test_an_unregistered_failure_on_one_node_leaves_the_other_node_alone() -> None:
    router = make_router()
    router.handle(NodeUp(node=NODE, core_uuid="core-a"), 0.0)
    router.handle(NodeUp(node=OTHER_NODE, core_uuid="core-b"), 0.0)
    router.handle(parked("support", "5003", node=OTHER_NODE, uuid="b-1"), 1.0)
    router.handle(OriginateFailed(node=OTHER_NODE, leg_uuid="leg-1", cause="USER_NOT_REGISTERED"), 1.1)
    agent = router.agents["agent-1000"]
    assert (agent.registrations, agent.registered) == ({OTHER_NODE: False}, True)
    out = router.handle(parked("support", "5003", uuid="a-1"), 2.0)
    assert [(c.node, c.call_uuid) for c in esl(out) if isinstance(c, Originate)] == [(NODE, "a-1")]


def test_an_unregistered_or_expired_phone_is_skipped_on_its_node_until_it_registers_again() -> None:
    router = make_router()
    router.handle(AgentRegistration(node=NODE, user="1000@127.0.0.1", registered=False), 0.0)
    assert esl(router.handle(parked("support", "5003"), 1.0)) == []
    assert router.snapshot(1.0).queues[0].unregistered == 1
    out = router.handle(AgentRegistration(node=NODE, user="1000", registered=True), 2.0)
    assert [type(c) for c in esl(out)] == [Originate]


def test_an_endpoint_that_does_not_depend_on_registration_is_rung_on_every_node() -> None:
    router = make_router(endpoint="sofia/gateway/pbx/{user}")
    router.handle(AgentRegistration(node=NODE, user="1000", registered=True), 0.0)
    assert [type(c) for c in esl(router.handle(parked("support", "5003", node=OTHER_NODE), 1.0))] == [Originate]
