"""The one record of a call a previous fsrouter process left in flight, from the offers the store kept, and the
router taking back what it can (``CallsRestored``)."""

from __future__ import annotations

from fsrouter.core.commands import CallRecord, OfferRecord, RecordCall, SaveWaiting, WaitingCall
from fsrouter.core.events import CallParked, CallsRestored, ChannelHungUp, NodeUp
from fsrouter.core.recovery import ENDED_WHILE_AWAY, record_of_unwatched_call
from fsrouter.core.routing import Router
from fsrouter.core.rules import QueueConfig, Rules


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
