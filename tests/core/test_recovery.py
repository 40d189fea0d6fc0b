"""The one record of a call a previous fsrouter process left in flight, from the offers the store kept."""

from __future__ import annotations

from fsrouter.core.commands import CallRecord, OfferRecord
from fsrouter.core.recovery import ENDED_WHILE_AWAY, record_of_unwatched_call


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
