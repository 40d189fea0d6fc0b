"""Escalation in time and queue limits, at the exact second with a fake clock: widening skills, opening
tiers, overflowing to a queue or an extension, max waiting calls, no agents logged in, max offers, occupancy."""

from __future__ import annotations

from fsrouter.core.commands import Kill
from fsrouter.core.events import ChannelAnswered, Tick
from fsrouter.core.rules import EscalationStep, QueueConfig
from tests.core.acd_scenarios import (
    NODE,
    agent,
    control,
    killed,
    outcomes,
    park,
    router_for,
    rung,
    rung_for,
    state,
    talk,
    transfers,
)

SALES = QueueConfig(name="sales", moh="")


def test_widening_accepts_a_lower_skill_level_at_the_exact_second() -> None:
    router = router_for(agent("junior", skills={"english": 2}), escalation=(EscalationStep(after=30, min_level=2),))
    assert rung(park(router, "caller", now=0.0, fsrouter_skills="english:3")) == []
    assert rung(router.handle(Tick(), now=29.9)) == []
    assert rung(router.handle(Tick(), now=30.0)) == ["junior"]


def test_tier_two_rings_only_once_the_step_opens_it() -> None:
    router = router_for(
        agent("first", queues=("support",)),
        agent("second", queues=("support",), tiers={"support": 2}),
        escalation=(EscalationStep(after=60, add_tier=2),),
    )
    control(router, "first", "break", now=0.0)  # logged in, but not taking calls
    assert rung(park(router, "caller", now=0.0)) == []
    assert rung(router.handle(Tick(), now=59.9)) == []
    assert rung(router.handle(Tick(), now=60.0)) == ["second"]


def test_tier_two_rings_at_once_when_no_tier_one_agent_is_logged_in() -> None:
    router = router_for(agent("first"), agent("second", tiers={"support": 2}))
    control(router, "first", "logout", now=0.0)
    assert rung(park(router, "caller", now=1.0)) == ["second"]


def test_overflow_to_another_queue_at_the_exact_second_keeps_the_callers_place() -> None:
    router = router_for(
        agent("seller", queues=("sales",)),
        others=(SALES,),
        escalation=(EscalationStep(after=120, overflow="sales"),),
    )
    control(router, "seller", "break", now=0.0)
    park(router, "from-support", now=0.0)
    park(router, "sales-caller", now=100.0, queue="sales")
    assert router.handle(Tick(), now=119.9) == []
    assert router.snapshot(119.9).overflows == {("support", "sales"): 0}  # the configured path, before any use

    out = router.handle(Tick(), now=120.0)

    assert (router.calls["from-support"].queue, outcomes(out)) == ("sales", [])
    assert router.snapshot(120.0).overflows == {("support", "sales"): 1}
    assert [t["kind"] for t in router.explain("from-support")] == ["overflow"]
    # it entered at 0, before the caller who arrived in sales at 100: it is served first
    assert rung_for(control(router, "seller", "ready", now=130.0)) == [("from-support", "seller")]


def test_overflow_to_an_extension_cancels_the_ringing_agent_and_ends_overflowed() -> None:
    router = router_for(agent("a"), escalation=(EscalationStep(after=180, overflow="4000"),), ring_timeout=300.0)
    park(router, "caller", now=0.0)  # a rings (leg-1) and keeps ringing

    out = router.handle(Tick(), now=180.0)

    assert (killed(out), transfers(out), outcomes(out)) == (
        ["leg-1"],
        [("caller", "4000")],
        [("caller", "overflowed")],
    )
    assert state(router, "a") == "available" and router.calls == {}


def test_a_caller_beyond_max_waiting_calls_overflows_or_is_rejected() -> None:
    overflowing = router_for(agent("a"), max_waiting_calls=2, overflow="sales", others=(SALES,))
    rejecting = router_for(agent("a"), max_waiting_calls=2)
    for router in (overflowing, rejecting):
        control(router, "a", "break", now=0.0)
        park(router, "c1", now=1.0)
        park(router, "c2", now=2.0)

    assert outcomes(park(overflowing, "c3", now=3.0)) == []
    assert overflowing.calls["c3"].queue == "sales"
    out = park(rejecting, "c3", now=3.0)
    assert (out[0], outcomes(out)) == (Kill(node=NODE, uuid="c3", cause="CALL_REJECTED"), [("c3", "rejected")])
    assert [t["reason"] for t in rejecting.explain("c3")] == ["queue full"]


def test_when_no_agents_is_logged_in_wait_reject_or_overflow() -> None:
    def newcomer(**support: object) -> list[tuple[str, str]]:
        router = router_for(agent("a"), **support)  # type: ignore[arg-type]
        control(router, "a", "logout", now=0.0)
        out = park(router, "caller", now=1.0)
        return outcomes(out) + transfers(out) + [("queue", c.queue) for c in router.calls.values()]

    assert newcomer(when_no_agents="wait") == [("queue", "support")]
    assert newcomer(when_no_agents="reject") == [("caller", "rejected")]
    assert newcomer(when_no_agents="overflow", overflow="4000") == [("caller", "overflowed"), ("caller", "4000")]
    # an agent on break is still logged in: the caller waits for them
    router = router_for(agent("a"), when_no_agents="reject")
    control(router, "a", "break", now=0.0)
    assert outcomes(park(router, "caller", now=1.0)) == []


def test_max_offers_lets_one_agent_ring_for_two_calls_and_answering_one_frees_the_other() -> None:
    router = router_for(agent("a", max_offers=2), agent("b"))
    control(router, "b", "break", now=0.0)
    assert rung_for(park(router, "c1", now=1.0)) == [("c1", "a")]
    assert rung_for(park(router, "c2", now=2.0)) == [("c2", "a")]
    assert rung(park(router, "c3", now=3.0)) == []  # two offers ring: a is full

    out = router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=4.0)

    assert killed(out) == ["leg-2"] and state(router, "a") == "on_call"
    assert router.calls["c2"].state.value == "waiting"
    assert rung_for(control(router, "b", "ready", now=5.0)) == [("c2", "b")]


def test_an_agent_above_its_occupancy_cap_is_skipped_until_it_falls_below() -> None:
    router = router_for(agent("a", occupancy_cap=0.5), agent("b"), wrapup=0.0)
    control(router, "b", "break", now=0.0)
    park(router, "c1", now=0.0)
    talk(router, "c1", "a", start=0.0, end=60.0)  # 60 s busy of 100 s logged in at t=100
    control(router, "b", "ready", now=1.0)

    assert rung(park(router, "c2", now=100.0)) == ["b"]
    assert [e["reason"] for e in router.explain("c2")[0]["excluded"]] == ["occupancy cap: 60% above 50%"]
    assert rung(park(router, "c3", now=121.0)) == ["a"]  # b still rings for c2; a is at 60 / 121 < 50 %
