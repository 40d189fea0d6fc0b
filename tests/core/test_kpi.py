"""KPI windows fed scripted call, offer and agent-state records with an explicit clock."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from fsrouter.core.commands import CallRecord, OfferRecord, WrapUpRecord
from fsrouter.core.erlang import average_speed_of_answer, required_agents
from fsrouter.core.kpi import (
    KpiTracker,
    agent_occupancy,
    is_agent_no_answer,
    staffed_agents,
)
from fsrouter.core.rules import QueueConfig

QUEUES = {
    "support": QueueConfig(name="support", service_level_seconds=20.0, service_level_target=0.8),
    "sales": QueueConfig(name="sales", service_level_seconds=30.0, service_level_target=0.9),
}


def tracker(**options: object) -> KpiTracker:
    kpi = KpiTracker(start=0.0, **options)  # type: ignore[arg-type]
    kpi.configure(QUEUES)
    return kpi


def call(
    outcome: str,
    *,
    entered_at: float,
    wait: float,
    talk: float = 0.0,
    hold: float = 0.0,
    queue: str = "support",
    agent: str | None = None,
) -> CallRecord:
    answered_at = entered_at + wait if outcome == "answered" else None
    return CallRecord(
        uuid=f"call-{entered_at}-{wait}",
        node="fs1",
        queue=queue,
        outcome=outcome,
        entered_at=entered_at,
        answered_at=answered_at,
        ended_at=entered_at + wait + talk + hold,
        agent=agent if outcome == "answered" else None,
        hold_seconds=hold,
    )


def offer(result: str, *, at: float, queue: str = "support") -> OfferRecord:
    return OfferRecord(
        call_uuid="c", leg_uuid=f"leg-{at}", agent="1001", queue=queue, offered_at=at - 5, ended_at=at, result=result
    )


def test_162_of_180_calls_answered_within_20_seconds_is_a_service_level_of_exactly_90_percent() -> None:
    """domain.md K-07 / T-11: (162 / 180) x 100 = 90 %, abandons included in the denominator."""
    kpi = tracker()
    for i in range(162):
        kpi.record_call(call("answered", entered_at=i, wait=20.0, talk=60.0))
    for i in range(10):
        kpi.record_call(call("answered", entered_at=i, wait=20.5, talk=60.0))
    for i in range(8):
        kpi.record_call(call("abandoned", entered_at=i, wait=45.0))

    stats = kpi.window("support", "15m", now=400.0)

    assert (stats.offered, stats.answered, stats.answered_within_threshold, stats.abandoned) == (180, 172, 162, 8)
    assert stats.service_level == 0.9
    assert stats.abandon_rate == 8 / 180


def test_asa_aht_and_overflow_rate_over_a_small_scripted_hour() -> None:
    kpi = tracker()
    kpi.record_call(call("answered", entered_at=0, wait=10, talk=100, agent="1001"))
    kpi.record_call(call("answered", entered_at=50, wait=30, talk=140, hold=60, agent="1002"))
    kpi.record_call(call("overflowed", entered_at=60, wait=90))
    kpi.record_call(call("timed_out", entered_at=70, wait=120))

    stats = kpi.window("support", "15m", now=600.0)

    assert stats.offered == 4
    assert stats.asa == 20.0  # (10 + 30) / 2
    assert stats.aht == 150.0  # (100 + 140 talk + 60 hold) / 2, no wrap-up recorded yet
    assert stats.overflow_rate == 0.25
    assert stats.service_level == 0.25  # only the 10 s answer is within 20 s
    assert stats.arrival_rate == 4 / 600  # the tracker has only run for 600 s of the 900 s window


def test_wrap_up_time_counts_in_the_aht_of_its_calls_queue() -> None:
    kpi = tracker()
    kpi.record_call(call("answered", entered_at=0, wait=5, talk=95, agent="1001"))  # ends at 100
    kpi.record_wrapup(WrapUpRecord(call_uuid="call-0-5", agent="1001", queue="support", ended_at=130.0, seconds=30.0))

    assert kpi.window("support", "15m", now=200.0).aht == 125.0  # 95 talk + 30 wrap-up


def test_closed_hours_calls_are_never_offered() -> None:
    kpi = tracker()
    kpi.record_call(call("closed", entered_at=0, wait=0))
    kpi.record_call(call("answered", entered_at=0, wait=3, talk=10))

    stats = kpi.window("support", "1h", now=100.0)

    assert (stats.offered, stats.service_level) == (1, 1.0)


def test_short_abandons_count_unless_the_queue_sets_an_exclusion_threshold() -> None:
    kpi = KpiTracker(start=0.0)
    kpi.configure({**QUEUES, "sales": replace(QUEUES["sales"], short_abandon_seconds=5.0)})
    for queue in ("support", "sales"):
        kpi.record_call(call("answered", entered_at=0, wait=5, talk=10, queue=queue))
        kpi.record_call(call("abandoned", entered_at=0, wait=3, queue=queue))
        kpi.record_call(call("abandoned", entered_at=0, wait=40, queue=queue))

    by_default = kpi.window("support", "15m", now=100.0)
    with_exclusion = kpi.window("sales", "15m", now=100.0)

    assert (by_default.offered, by_default.abandoned, by_default.short_abandoned) == (3, 2, 0)
    assert by_default.service_level == pytest.approx(1 / 3)
    assert (with_exclusion.offered, with_exclusion.abandoned, with_exclusion.short_abandoned) == (2, 1, 1)
    assert with_exclusion.service_level == 0.5


def test_each_queue_uses_its_own_threshold() -> None:
    kpi = tracker()
    kpi.record_call(call("answered", entered_at=0, wait=25, talk=10, queue="support"))
    kpi.record_call(call("answered", entered_at=0, wait=25, talk=10, queue="sales"))

    assert kpi.window("support", "15m", now=100.0).service_level == 0.0
    assert kpi.window("sales", "15m", now=100.0).service_level == 1.0
    assert kpi.target("sales") == 0.9


def test_calls_leave_the_short_window_but_stay_in_the_long_one() -> None:
    kpi = tracker()
    kpi.record_call(call("abandoned", entered_at=0, wait=10))  # ends at t = 10, bucket [10, 20)

    assert kpi.window("support", "15m", now=909.0).offered == 1  # still within 900 s
    assert kpi.window("support", "15m", now=920.0).offered == 0  # bucket ended 900 s ago
    assert kpi.window("support", "1h", now=920.0).offered == 1
    assert kpi.window("support", "1h", now=3620.0).offered == 0


def test_an_empty_window_has_no_ratios_rather_than_made_up_ones() -> None:
    stats = tracker().window("support", "15m", now=100.0)

    assert stats.offered == 0
    assert (stats.service_level, stats.asa, stats.aht, stats.abandon_rate, stats.overflow_rate) == (None,) * 5
    assert stats.agent_no_answer_rate is None
    assert stats.arrival_rate == 0.0


def test_memory_is_bounded_by_the_longest_window_not_by_the_call_count() -> None:
    kpi = tracker(resolution=10.0)
    for second in range(0, 20_000, 2):
        kpi.record_call(call("answered", entered_at=second, wait=1, talk=1))

    assert len(kpi._buckets["support"]) <= 3600 / 10 + 2
    assert kpi.window("support", "1h", now=20_002.0).offered == pytest.approx(1800, abs=10)


def test_agent_no_answer_rate_counts_only_offers_the_agent_was_presented() -> None:
    kpi = tracker()
    for i in range(19):
        kpi.record_offer(offer("answered", at=float(i)))
    kpi.record_offer(offer("no_answer", at=30.0))
    kpi.record_offer(offer("originator_cancel", at=31.0))  # we withdrew it: not the agent's fault
    kpi.record_offer(offer("user_not_registered", at=32.0))  # the phone never rang

    stats = kpi.window("support", "15m", now=100.0)

    assert (stats.presented_offers, stats.agent_no_answers) == (20, 1)
    assert stats.agent_no_answer_rate == 0.05


@pytest.mark.parametrize(
    ("result", "counts"),
    [
        ("answered", False),
        ("no_answer", True),
        ("user_busy", True),
        ("call_rejected", True),
        ("originator_cancel", False),
        ("lose_race", False),
        ("user_not_registered", False),
        ("missed_hangup", False),  # healed by reconciliation: nobody knows what the phone did
        ("bridge_timeout", False),  # the agent answered; FreeSWITCH never bridged
        ("send_failed", False),
        ("no_user_response", True),
    ],
)
def test_which_offer_results_count_against_the_agent(result: str, counts: bool) -> None:
    assert is_agent_no_answer(result) is counts


def test_occupancy_is_busy_over_staffed_agents() -> None:
    agents = {"logged_out": 4, "available": 1, "reserved": 1, "on_call": 1, "wrap_up": 1, "break": 2}

    assert staffed_agents(agents) == 4
    assert agent_occupancy(agents) == 0.75
    assert agent_occupancy({"logged_out": 3, "break": 1}) is None


def test_staffing_follows_the_callcentrehelper_example_from_live_records() -> None:
    """100 calls in 30 minutes with a 180 s AHT is 10 Erlangs: 14 agents for 80 % within 20 s."""
    kpi = tracker(windows={"30m": 1800.0}, resolution=10.0)
    for i in range(100):
        kpi.record_call(call("answered", entered_at=i * 15.0, wait=1, talk=180))

    staffing = kpi.staffing("support", now=1800.0, staffed=12)

    assert staffing is not None
    assert staffing.traffic == pytest.approx(10.0)
    assert staffing.required_agents == 14 == required_agents(10.0, aht=180, threshold=20, target=0.8)
    assert staffing.predicted_wait == pytest.approx(average_speed_of_answer(12, 10.0, aht=180))
    assert staffing.predicted_service_level == pytest.approx(0.6402, abs=1e-4)


def test_staffing_with_no_traffic_needs_nobody_and_with_no_answer_yet_is_unknown() -> None:
    kpi = tracker()
    idle = kpi.staffing("support", now=100.0, staffed=3)
    assert idle is not None
    assert (idle.required_agents, idle.predicted_wait) == (0, 0.0)

    kpi.record_call(call("abandoned", entered_at=0, wait=30))
    assert kpi.staffing("support", now=100.0, staffed=3) is None


def test_overloaded_staffing_predicts_an_infinite_wait() -> None:
    kpi = tracker(windows={"15m": 900.0})
    for i in range(90):
        kpi.record_call(call("answered", entered_at=i * 10.0, wait=1, talk=100))  # 0.1 call/s x 100 s

    staffing = kpi.staffing("support", now=900.0, staffed=5)

    assert staffing is not None
    assert staffing.traffic == pytest.approx(10.0)
    assert math.isinf(staffing.predicted_wait)
    assert staffing.predicted_service_level == 0.0


def test_unconfigured_queues_are_reported_after_configured_ones_with_default_thresholds() -> None:
    kpi = tracker()
    kpi.record_call(call("answered", entered_at=0, wait=19, talk=5, queue="legacy"))

    assert kpi.queues == ("support", "sales", "legacy")
    assert kpi.window("legacy", "15m", now=100.0).service_level == 1.0  # QueueConfig default T = 20 s


@pytest.mark.parametrize(
    "options",
    [
        {"windows": {}},
        {"resolution": 0.0},
        {"windows": {"5s": 5.0}, "resolution": 10.0},
        {"staffing_window": "1d"},
    ],
)
def test_inconsistent_settings_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        KpiTracker(start=0.0, **options)  # type: ignore[arg-type]
