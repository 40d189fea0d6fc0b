"""The one record of a call a previous fsrouter process left in flight, from the offers the store kept, and the
router taking back what it can (``CallsRestored``)."""

from __future__ import annotations

import pytest

from fsrouter.core.commands import (
    AgentStateRecord,
    CallRecord,
    OfferRecord,
    Originate,
    RecordAgentState,
    RecordCall,
    SaveWaiting,
    WaitingCall,
)
from fsrouter.core.events import CallParked, CallsRestored, ChannelHungUp, NodeUp
from fsrouter.core.lifecycle import AgentState
from fsrouter.core.recovery import ENDED_WHILE_AWAY, record_of_unwatched_call
from fsrouter.core.routing import Router
from fsrouter.core.rules import AgentConfig, QueueConfig, Rules


def offer(leg: str, result: str, ended_at: float) -> OfferRecord:
    return OfferRecord(
        call_uuid="c1", leg_uuid=leg, agent=f"agent-{leg}", queue="support", offered_at=1.0, ended_at=ended_at,
        result=result,
    )  # fmt: skip


def test_a_call_with_an_answered_offer_was_answered_by_that_agent_when_the_offer_ended() -> None:
    offers = [offer("1", "no_answer", 21.0), offer("2", "answered", 30.0)]

    record = record_of_unwatched_call(
        uuid="c1", node="fs1", queue="support", entered_at=0.0, offers=offers, ended_at=95.0, cause="NORMAL_CLEARING"
    )

    assert record == CallRecord(
        uuid="c1",
        node="fs1",
        queue="support",
        outcome="answered",
        entered_at=0.0,
        ended_at=95.0,
        agent="agent-2",
        answered_at=30.0,
        hangup_cause="NORMAL_CLEARING",
        offers=2,
    )
    assert (record.wait_seconds, record.talk_seconds) == (30.0, 65.0)


def test_a_call_no_agent_answered_that_ended_while_fsrouter_was_away_was_abandoned() -> None:
    record = record_of_unwatched_call(
        uuid="c1", node="fs1", queue="support", entered_at=0.0, offers=[], ended_at=50.0, cause=ENDED_WHILE_AWAY
    )

    assert (record.outcome, record.agent, record.answered_at, record.hangup_cause) == (
        "abandoned",
        None,
        None,
        "ENDED_WHILE_FSROUTER_WAS_AWAY",
    )


def test_the_router_takes_back_a_parked_caller_and_records_the_calls_it_cannot_take_back() -> None:
    """``CallsRestored`` at start: what the previous process left (``SaveWaiting``), with its offers."""
    router = Router(Rules(queues={"support": QueueConfig(name="support")}, default_queue="support"), now=100.0)
    left = [WaitingCall(uuid=uuid, node="fs1", queue="support", entered_at=at) for uuid, at in
            (("waiting", 10.0), ("gone", 20.0), ("talking", 30.0))]  # fmt: skip
    talked = OfferRecord(
        call_uuid="talking", leg_uuid="leg", agent="a", queue="support", offered_at=31.0, ended_at=35.0,
        result="answered",
    )  # fmt: skip
    assert router.handle(CallsRestored(calls=tuple(left), offers=(talked,)), 100.0) == []

    reparked = router.handle(CallParked(node="fs1", uuid="waiting", variables={"fsrouter_queue": "support"}), 101.0)
    assert SaveWaiting(call=left[0]) in reparked  # its place: the entry time it had before the restart
    assert router.calls["waiting"].entered_at == 10.0

    up = router.handle(NodeUp(node="fs1", core_uuid="core", live_uuids=frozenset({"waiting", "talking"})), 102.0)
    assert [(c.record.uuid, c.record.outcome, c.record.hangup_cause) for c in up if isinstance(c, RecordCall)] == [
        ("gone", "abandoned", ENDED_WHILE_AWAY)
    ]

    hung_up = router.handle(ChannelHungUp(node="fs1", uuid="talking", cause="NORMAL_CLEARING"), 160.0)
    [record] = [c.record for c in hung_up if isinstance(c, RecordCall)]
    assert (record.outcome, record.agent, record.answered_at, record.ended_at) == ("answered", "a", 35.0, 160.0)
    assert router.handle(ChannelHungUp(node="fs1", uuid="talking", cause="NORMAL_CLEARING"), 160.1) == []


# --- a call in conversation when the previous process died is re-attached to its agent ---------------------------


def restarted_router(*agent_ids: str, offer_kept: bool = True) -> Router:
    """A new process with agents ``agent_ids``, handed one call ``talking`` (entered at 30) the previous process had
    connected to agent ``a`` on ``leg-9``, that offer answered (the bridge seen) at 35 and kept unless not
    ``offer_kept``."""
    support = QueueConfig(name="support", moh="")
    rules = Rules(
        queues={"support": support},
        agents=tuple(AgentConfig(id=name, endpoint=f"user/{name}", queues=("support",)) for name in agent_ids),
        default_queue="support",
    )
    router = Router(rules, now=100.0, new_id=lambda: "leg-new")
    talked = OfferRecord(
        call_uuid="talking", leg_uuid="leg-9", agent="a", queue="support", offered_at=31.0, ended_at=35.0,
        result="answered",
    )  # fmt: skip
    kept = WaitingCall(uuid="talking", node="fs1", queue="support", entered_at=30.0)
    router.handle(CallsRestored(calls=(kept,), offers=(talked,) if offer_kept else ()), 100.0)
    return router


def bridged_up(agents_of_legs: dict[str, str] | None = None) -> NodeUp:
    return NodeUp(
        node="fs1",
        core_uuid="core",
        live_uuids=frozenset({"talking", "leg-9"}),
        answered_uuids=frozenset({"talking", "leg-9"}),
        bridged=frozenset({frozenset({"talking", "leg-9"})}),
        agents_of_legs=agents_of_legs or {},
    )


def test_a_call_still_talking_at_restart_puts_its_agent_on_call_and_is_listed_talking() -> None:
    router = restarted_router("a")

    on_call = AgentStateRecord(agent="a", state="on_call", at=101.0, reason="talking on talking at restart")
    assert router.handle(bridged_up(), 101.0) == [RecordAgentState(record=on_call)]

    agent = router.agents["a"]
    assert (agent.state, agent.call_uuid) == (AgentState.ON_CALL, "talking")
    [view] = router.snapshot(101.0).calls
    assert (view.uuid, view.state, view.agent, view.waited) == ("talking", "talking", "a", 5.0)
    # a new caller is not offered to the agent who talks
    assert not [c for c in router.handle(parked("new"), 102.0) if isinstance(c, Originate)]


@pytest.mark.parametrize("hanging_up", ["talking", "leg-9"])
def test_a_re_attached_call_is_recorded_once_at_the_hang_up_of_either_leg_and_its_agent_wraps_up(
    hanging_up: str,
) -> None:
    router = restarted_router("a")
    router.handle(bridged_up(), 101.0)

    ended = router.handle(ChannelHungUp(node="fs1", uuid=hanging_up, cause="NORMAL_CLEARING"), 160.0)

    [record] = [c.record for c in ended if isinstance(c, RecordCall)]
    assert record == CallRecord(
        uuid="talking", node="fs1", queue="support", outcome="answered", entered_at=30.0, ended_at=160.0,
        agent="a", answered_at=35.0, hangup_cause="NORMAL_CLEARING", offers=1, service_level_seconds=20.0,
        short_abandon_seconds=0.0,
    )  # fmt: skip
    assert router.agents["a"].state is AgentState.WRAP_UP
    other = "leg-9" if hanging_up == "talking" else "talking"
    assert router.handle(ChannelHungUp(node="fs1", uuid=other, cause="NORMAL_CLEARING"), 160.1) == []


def test_without_its_answered_offer_the_agent_is_read_from_the_agent_leg_and_talk_counts_from_the_node_up() -> None:
    """The previous process died between the bridge and its record: the leg's ``fsrouter_agent`` says who talks."""
    router = restarted_router("a", "b", offer_kept=False)

    router.handle(bridged_up(agents_of_legs={"leg-9": "b"}), 101.0)

    assert (router.agents["b"].state, router.calls["talking"].agent_id) == (AgentState.ON_CALL, "b")
    ended = router.handle(ChannelHungUp(node="fs1", uuid="talking", cause="NORMAL_CLEARING"), 160.0)
    [record] = [c.record for c in ended if isinstance(c, RecordCall)]
    assert (record.agent, record.answered_at, record.offers) == ("b", 101.0, 0)


def test_a_caller_bridged_to_a_channel_that_is_no_agent_leg_of_ours_is_only_recorded_at_its_hang_up() -> None:
    router = restarted_router("a", offer_kept=False)

    assert router.handle(bridged_up(), 101.0) == []

    assert router.calls == {} and router.agents["a"].state is AgentState.AVAILABLE
    ended = router.handle(ChannelHungUp(node="fs1", uuid="talking", cause="NORMAL_CLEARING"), 160.0)
    assert [(c.record.outcome, c.record.agent) for c in ended if isinstance(c, RecordCall)] == [("abandoned", None)]


def parked(uuid: str) -> CallParked:
    return CallParked(node="fs1", uuid=uuid, answered=True, variables={"fsrouter_queue": "support"})
