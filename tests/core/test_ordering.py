"""Caller order: FIFO, priority boosts that never starve ordinary callers, and one order across queues."""

from __future__ import annotations

import random
from typing import Any

from fsrouter.core.events import CallParked, ChannelHungUp
from fsrouter.core.model import Call
from fsrouter.core.ordering import boost, order_key
from fsrouter.core.routing import Router
from fsrouter.core.rules import QueueConfig
from tests.core.acd_scenarios import NODE, agent, control, park, router_for, rung_for

Caller = tuple[str, float, int]  # uuid, arrival time, fsrouter_priority


def served_order(callers: list[Caller], *, back_at: float, **support: Any) -> list[str]:
    """The order in which the only agent, back from a break at ``back_at``, is offered the waiting callers
    (each caller hangs up as soon as the agent rings, which frees the agent for the next one)."""
    router = router_for(agent("a"), **support)
    control(router, "a", "break", now=0.0)
    for uuid, at, priority in callers:
        park(router, uuid, now=at, fsrouter_priority=str(priority))
    return offers_once_ready(router, back_at)


def offers_once_ready(router: Router, back_at: float) -> list[str]:
    """The callers agent "a" is offered, in order, once ready at ``back_at``; each hangs up as it rings."""
    served: list[str] = []
    out = control(router, "a", "ready", now=back_at)
    while rung_for(out):
        [(call, _)] = rung_for(out)
        served.append(call)
        out = router.handle(ChannelHungUp(node=NODE, uuid=call), now=back_at)
    return served


def test_callers_of_equal_priority_are_served_first_come_first_served() -> None:
    assert served_order([("c", 3.0, 0), ("a", 1.0, 0), ("b", 2.0, 0)], back_at=10.0) == ["a", "b", "c"]


def test_callers_relearnt_with_the_same_whole_second_are_served_in_the_order_fsrouter_learnt_them() -> None:
    """``show channels`` gives entry times in whole seconds: ties go to arrival order, never to the uuid."""
    router = router_for(agent("a"))
    control(router, "a", "break", now=0.0)
    for uuid in ("c-first", "b-second", "a-third"):
        relearnt = CallParked(
            node=NODE, uuid=uuid, answered=True, variables={"fsrouter_queue": "support"}, entered_at=100.0
        )
        router.handle(relearnt, now=100.4)
    assert offers_once_ready(router, back_at=101.0) == ["c-first", "b-second", "a-third"]


def test_a_vip_goes_ahead_of_callers_who_arrived_less_than_its_boost_earlier() -> None:
    # priority 2 × 60 s = 120 s of head start: ahead of "recent" (arrived 100 s earlier), not of "old" (150 s)
    callers = [("old", 0.0, 0), ("recent", 50.0, 0), ("vip", 150.0, 2)]
    assert served_order(callers, back_at=200.0, vip_boost=60.0) == ["old", "vip", "recent"]


def test_a_normal_caller_waiting_longer_than_max_boost_goes_before_a_vip_who_just_arrived() -> None:
    callers = [("patient", 0.0, 0), ("vip", 600.5, 1000)]
    assert served_order(callers, back_at=600.5, vip_boost=60.0, max_boost=600.0) == ["patient", "vip"]
    # ... while with a bigger max_boost the VIP would have jumped the queue
    assert served_order(callers, back_at=600.5, vip_boost=60.0, max_boost=700.0) == ["vip", "patient"]


def test_no_starvation_bound_holds_for_any_priorities_and_settings() -> None:
    """Property: whatever the priorities, a call that entered more than max_boost seconds before another is
    ordered before it (a boost is worth 0 to max_boost seconds and waits grow at the same pace)."""
    draw = random.Random(2024)
    for _ in range(2000):
        queue = QueueConfig(name="q", vip_boost=draw.uniform(0, 300), max_boost=draw.uniform(0, 900))
        older_entry = draw.uniform(0, 1000)
        newer_entry = older_entry + queue.max_boost + draw.uniform(0.001, 500)
        now = newer_entry + draw.uniform(0, 1000)
        older = Call(uuid="z-older", node=NODE, queue="q", entered_at=older_entry, priority=draw.randint(-50, 50))
        newer = Call(uuid="a-newer", node=NODE, queue="q", entered_at=newer_entry, priority=draw.randint(0, 50))
        assert order_key(older, queue, now) < order_key(newer, queue, now)


def test_a_boost_grows_with_priority_up_to_max_boost_and_never_goes_negative() -> None:
    queue = QueueConfig(name="q", vip_boost=60.0, max_boost=300.0)
    assert (boost(2, queue), boost(9, queue), boost(-9, queue), boost(0, queue)) == (120.0, 300.0, 0.0, 0.0)


def test_an_agent_of_two_queues_takes_the_longest_waiting_caller_of_either() -> None:
    router = router_for(agent("a", queues=("support", "sales")), others=(QueueConfig(name="sales", moh=""),))
    control(router, "a", "break", now=0.0)
    park(router, "support-caller", now=5.0)
    park(router, "sales-caller", now=2.0, queue="sales")

    assert rung_for(control(router, "a", "ready", now=10.0)) == [("sales-caller", "a")]
