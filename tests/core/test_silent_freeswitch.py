"""What the router makes of commands FreeSWITCH left unanswered or answered "no such channel" (fake clock, exact
commands out).

- An originate whose fate is unknown (``CommandFailed`` with ``Failure.UNKNOWN``: not written, no reply, or the
  connection lost before its job result) is never charged to the agent; the NodeUp after the reconnect settles
  its leg either way, and the ring watchdog ends it ``unknown_fate`` if nothing is ever heard of it.
- A reply that a channel is gone (``ChannelGone``) ends it as its lost hang-up event would have: a caller's call
  ends with hang-up cause ``CHANNEL_GONE``, its agent legs killed; an agent leg's offer ends without penalty.
"""

from __future__ import annotations

import itertools

import pytest

from fsrouter.core.causes import CHANNEL_GONE
from fsrouter.core.commands import (
    AgentStateRecord,
    Bridge,
    CallOutcome,
    Command,
    Kill,
    OfferRecord,
    Originate,
    RecordAgentState,
    RecordCall,
    RecordOffer,
)
from fsrouter.core.events import (
    ChannelAnswered,
    ChannelBridged,
    ChannelGone,
    ChannelHungUp,
    CommandFailed,
    Failure,
    NodeDown,
    NodeUp,
    OriginateSucceeded,
    Tick,
)
from fsrouter.core.lifecycle import AgentState, CallState
from fsrouter.core.routing import Router
from fsrouter.core.rules import QueueConfig, Rules
from tests.core.acd_scenarios import NODE, agent, park

RING_TIMEOUT = 20.0
#: the ring watchdog's deadline of an offer made at 1.0 (ring timeout + OFFER_GRACE_SECONDS, and a bit)
OVERDUE = 1.0 + RING_TIMEOUT + 10.0 + 1.0


def router_of(*agent_ids: str) -> Router:
    """Agents who go on break at their first no-answer, so that a charge shows; node up at 0, legs leg-1, ..."""
    support = QueueConfig(name="support", strategy="longest-idle", moh="", ring_timeout=RING_TIMEOUT)
    agents = tuple(agent(name, max_no_answer=1, reject_delay=30.0) for name in agent_ids)
    legs = itertools.count(1)
    router = Router(
        Rules(queues={"support": support}, agents=agents, default_queue="support"),
        now=0.0,
        new_id=lambda: f"leg-{next(legs)}",
    )
    router.handle(NodeUp(node=NODE, core_uuid="core-1"), 0.0)
    return router


def no_reply(router: Router, command: str, uuid: str, now: float) -> list[Command]:
    event = CommandFailed(node=NODE, command=command, uuid=uuid, reason="no reply", failure=Failure.UNKNOWN)
    return router.handle(event, now)


def originate(leg: str, agent_id: str = "a", call: str = "c1") -> Originate:
    return Originate(
        node=NODE,
        leg_uuid=leg,
        call_uuid=call,
        endpoint=f"user/{agent_id}",
        timeout=RING_TIMEOUT,
        variables={"fsrouter_queue": "support", "fsrouter_agent": agent_id},
    )


def offer_end(leg: str, offered_at: float, ended_at: float, result: str, agent_id: str = "a") -> RecordOffer:
    return RecordOffer(
        record=OfferRecord(
            call_uuid="c1", leg_uuid=leg, agent=agent_id, queue="support", offered_at=offered_at, ended_at=ended_at,
            result=result,
        )
    )  # fmt: skip


def agent_state(state: str, at: float, reason: str, agent_id: str = "a") -> RecordAgentState:
    return RecordAgentState(record=AgentStateRecord(agent=agent_id, state=state, at=at, reason=reason))


# --- an originate whose fate is unknown ----------------------------------------------------------------------


def test_an_originate_without_a_reply_is_not_charged_when_the_ring_watchdog_gives_up_on_it() -> None:
    router = router_of("a")
    assert originate("leg-1") in park(router, "c1", 1.0)
    assert no_reply(router, "originate", "leg-1", 2.0) == []  # the NodeUp after the reconnect settles it

    assert router.handle(Tick(), OVERDUE) == [
        Kill(node=NODE, uuid="leg-1", cause="ORIGINATOR_CANCEL"),
        offer_end("leg-1", 1.0, OVERDUE, "unknown_fate"),
        agent_state("available", OVERDUE, "unknown_fate"),
        agent_state("reserved", OVERDUE, "offered c1"),  # no retry delay, no break: rung again at once
        originate("leg-2"),
    ]
    assert router.agents["a"].no_answer_count == 0


def test_an_offer_on_a_node_that_stays_disconnected_is_not_charged_either() -> None:
    """The connection was lost before the originate's job result: whether the agent was rung is unknown."""
    router = router_of("a")
    park(router, "c1", 1.0)
    router.handle(NodeDown(node=NODE), 2.0)

    ended = router.handle(Tick(), OVERDUE)

    assert offer_end("leg-1", 1.0, OVERDUE, "unknown_fate") in ended
    assert agent_state("available", OVERDUE, "unknown_fate") in ended


def test_a_leg_nothing_was_heard_of_on_a_connected_node_is_still_a_no_answer() -> None:
    router = router_of("a")
    park(router, "c1", 1.0)

    assert router.handle(Tick(), OVERDUE) == [
        Kill(node=NODE, uuid="leg-1", cause="ORIGINATOR_CANCEL"),
        offer_end("leg-1", 1.0, OVERDUE, "no_answer"),
        agent_state("break", OVERDUE, "1 no-answers"),
    ]


def test_the_node_up_after_the_reconnect_settles_an_originate_of_unknown_fate_either_way() -> None:
    router = router_of("a", "b")
    park(router, "c1", 1.0)  # rings a on leg-1
    park(router, "c2", 1.5)  # rings b on leg-2
    no_reply(router, "originate", "leg-1", 2.0)
    no_reply(router, "originate", "leg-2", 2.0)
    router.handle(NodeDown(node=NODE), 2.0)

    # FreeSWITCH never got leg-1's originate; it got leg-2's, whose agent answered meanwhile
    up = NodeUp(
        node=NODE, core_uuid="core-1", live_uuids=frozenset({"c1", "c2", "leg-2"}), answered_uuids=frozenset({"leg-2"})
    )
    commands = router.handle(up, 3.0)

    assert offer_end("leg-1", 1.0, 3.0, "lost_while_disconnected") in commands
    assert router.agents["a"].no_answer_count == 0 and router.agents["a"].ready_at <= 3.0
    assert router.calls["c2"].state is CallState.CONNECTING and router.calls["c2"].agent_leg == "leg-2"
    assert router.handle(OriginateSucceeded(node=NODE, leg_uuid="leg-2"), 3.1) == [
        Bridge(node=NODE, caller_uuid="c2", agent_uuid="leg-2")
    ]


@pytest.mark.parametrize("command", ["answer", "bridge"])
def test_an_answer_or_bridge_without_a_reply_leaves_the_call_to_the_node_up(command: str) -> None:
    router = router_of("a")
    park(router, "c1", 1.0)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), 2.0)
    router.handle(OriginateSucceeded(node=NODE, leg_uuid="leg-1"), 2.0)

    assert no_reply(router, command, "c1", 3.0) == []
    assert router.calls["c1"].state is CallState.CONNECTING


# --- a reply that a channel is gone ----------------------------------------------------------------------------


def connecting(router: Router) -> None:
    """c1 parked at 1, a answers leg-1 at 2: the bridge is sent."""
    park(router, "c1", 1.0)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), 2.0)
    assert router.handle(OriginateSucceeded(node=NODE, leg_uuid="leg-1"), 2.0) == [
        Bridge(node=NODE, caller_uuid="c1", agent_uuid="leg-1")
    ]


def test_a_caller_freeswitch_says_is_gone_ends_as_its_lost_hang_up_would_have_and_no_agent_is_rung_again() -> None:
    router = router_of("a", "b")
    connecting(router)

    commands = router.handle(ChannelGone(node=NODE, uuid="c1"), 2.1)

    [record] = [command.record for command in commands if isinstance(command, RecordCall)]
    assert (record.outcome, record.hangup_cause, record.ended_at) == (CallOutcome.ABANDONED, CHANNEL_GONE, 2.1)
    assert commands == [
        Kill(node=NODE, uuid="leg-1", cause="ORIGINATOR_CANCEL"),
        offer_end("leg-1", 1.0, 2.1, "originator_cancel"),
        RecordCall(record=record),
        agent_state("available", 2.1, "caller left before bridge"),
    ]
    assert router.calls == {}
    assert router.handle(ChannelHungUp(node=NODE, uuid="c1"), 2.2) == []  # a late hang-up changes nothing
    assert router.handle(ChannelGone(node=NODE, uuid="c1"), 2.3) == []


def test_a_caller_gone_while_talking_is_recorded_answered_and_its_agent_wraps_up() -> None:
    router = router_of("a")
    connecting(router)
    router.handle(ChannelBridged(node=NODE, uuid="c1", other_uuid="leg-1"), 2.5)

    commands = router.handle(ChannelGone(node=NODE, uuid="c1"), 9.0)

    [record] = [command.record for command in commands if isinstance(command, RecordCall)]
    assert (record.outcome, record.agent, record.hangup_cause) == (CallOutcome.ANSWERED, "a", CHANNEL_GONE)
    assert router.agents["a"].state is AgentState.WRAP_UP


def test_an_agent_leg_freeswitch_says_is_gone_ends_its_offer_without_penalty_and_the_caller_waits_again() -> None:
    router = router_of("a")
    connecting(router)

    commands = router.handle(ChannelGone(node=NODE, uuid="leg-1"), 2.1)

    assert commands == [
        offer_end("leg-1", 1.0, 2.1, "channel_gone"),
        agent_state("available", 2.1, "agent leg ended before the bridge"),
        agent_state("reserved", 2.1, "offered c1"),  # no reject delay: offered again at once
        originate("leg-2"),
    ]
    assert router.agents["a"].no_answer_count == 0
