"""Strategies: properties every registered strategy keeps, and one exact-choice scenario per strategy."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from fsrouter.config.rules_loader import parse_rules
from fsrouter.core.events import (
    AgentRegistration,
    ChannelAnswered,
    ChannelBridged,
    ChannelHungUp,
    OriginateFailed,
    Tick,
)
from fsrouter.core.lifecycle import AgentState
from fsrouter.core.model import Agent, Call
from fsrouter.core.rules import QueueConfig, Route
from fsrouter.core.strategies import STRATEGIES, Demand, make_strategy
from fsrouter.errors import RuleError
from tests.core.acd_scenarios import (
    NODE,
    agent,
    control,
    killed,
    leg_of,
    park,
    router_for,
    rung,
    rung_for,
    state,
    talk,
)

EVERY_STRATEGY = sorted(STRATEGIES)


def test_the_registry_holds_every_planned_strategy_under_its_yaml_name() -> None:
    assert EVERY_STRATEGY == [
        "fewest-calls",
        "fixed",
        "least-occupied",
        "longest-idle",
        "ring-all",
        "round-robin",
        "sequential",
        "skills-weighted",
        "weighted-random",
    ]
    assert all(make_strategy(name).name == name for name in EVERY_STRATEGY)


def test_an_unknown_strategy_is_a_load_error() -> None:
    with pytest.raises(RuleError, match="unknown strategy 'fastest'"):
        parse_rules("version: 1\nqueues:\n  support:\n    strategy: fastest\n")


@pytest.mark.parametrize("strategy", EVERY_STRATEGY)
def test_never_offers_an_agent_who_cannot_take_the_call(strategy: str) -> None:
    router = router_for(
        *(agent(name) for name in ("away", "busy", "off", "pause", "ready", "unreg")),
        strategy=strategy,
    )
    router.handle(AgentRegistration(node=NODE, user="unreg", registered=False), now=0.0)
    control(router, "pause", "break", now=0.0)
    control(router, "off", "logout", now=0.0)
    router.agents["away"].ready_at = 50.0  # in a retry delay
    control(router, "ready", "break", now=0.0)
    assert rung(park(router, "first", now=1.0)) == ["busy"]  # now RESERVED for another call
    assert rung(park(router, "second", now=2.0, fsrouter_agent="unreg")) == []

    out = control(router, "ready", "ready", now=2.5)

    assert rung_for(out) == [("second", "ready")]  # a waiting caller before a ring-all already ringing


@pytest.mark.parametrize("strategy", EVERY_STRATEGY)
def test_an_agent_who_becomes_available_gets_the_waiting_call(strategy: str) -> None:
    router = router_for(agent("a"), agent("b"), strategy=strategy, wrapup=0.0)
    control(router, "a", "break", now=0.0)
    control(router, "b", "break", now=0.0)
    assert rung(park(router, "caller", now=1.0)) == []

    assert rung(control(router, "b", "ready", now=5.0)) == ["b"]


def test_ring_all_rings_an_agent_freed_while_it_rings_when_nobody_else_waits() -> None:
    router = router_for(agent("a"), agent("b"), agent("c"), strategy="ring-all")
    control(router, "c", "break", now=0.0)
    assert sorted(rung(park(router, "caller", now=1.0))) == ["a", "b"]

    assert rung_for(control(router, "c", "ready", now=3.0)) == [("caller", "c")]  # joins the ringing
    others = {leg_of(router, "a"), leg_of(router, "b")}
    answered = router.handle(ChannelAnswered(node=NODE, uuid=leg_of(router, "c")), now=4.0)

    assert set(killed(answered)) == others  # c answered first: the others stop ringing
    assert (state(router, "a"), state(router, "b"), state(router, "c")) == ("available", "available", "on_call")


def test_round_robin_takes_turns_even_when_the_previous_agent_is_free_again() -> None:
    router = router_for(agent("a"), agent("b"), agent("c"), strategy="round-robin")
    assert rung(park(router, "c1", now=1.0)) == ["a"]
    router.handle(ChannelHungUp(node=NODE, uuid="c1"), now=2.0)  # abandoned: a is free again
    assert rung(park(router, "c2", now=3.0)) == ["b"]


@pytest.mark.parametrize(
    ("strategy", "chosen"),
    [("longest-idle", "a"), ("least-occupied", "b"), ("fewest-calls", "b")],
)
def test_idle_time_occupancy_and_call_count_each_pick_their_own_agent(strategy: str, chosen: str) -> None:
    # a takes a 60 s call (idle since 70, occupancy 60 %, 1 call); b logs in at 90 (idle since 90, 0 %, 0 calls)
    router = router_for(agent("a"), agent("b"), strategy=strategy, wrapup=0.0)
    control(router, "b", "logout", now=0.0)
    park(router, "c1", now=10.0)
    talk(router, "c1", "a", start=10.0, end=70.0)
    control(router, "b", "login", now=90.0)

    assert router.agents["a"].occupancy(100.0, window=3600.0) == pytest.approx(0.6)
    assert rung(park(router, "c2", now=100.0)) == [chosen]


def test_least_occupied_only_counts_the_queue_window() -> None:
    router = router_for(agent("a"), agent("b"), strategy="least-occupied", wrapup=0.0, occupancy_window=100.0)
    park(router, "c1", now=0.0)
    talk(router, "c1", "a", start=0.0, end=500.0)  # a was busy long ago ...
    park(router, "c2", now=1000.0)
    talk(router, "c2", "b", start=1000.0, end=1050.0)  # ... b recently

    assert rung(park(router, "c3", now=1100.0)) == ["a"]


def test_fewest_calls_only_counts_the_calls_of_the_queue_window() -> None:
    router = router_for(agent("a"), agent("b"), strategy="fewest-calls", wrapup=0.0, occupancy_window=100.0)
    control(router, "b", "break", now=0.0)
    for n, start in enumerate((0.0, 20.0, 40.0)):  # a took three calls long ago ...
        park(router, f"old-{n}", now=start)
        talk(router, f"old-{n}", "a", start=start, end=start + 10.0)
    control(router, "a", "break", now=900.0)
    control(router, "b", "ready", now=900.0)
    park(router, "recent", now=1000.0)
    talk(router, "recent", "b", start=1000.0, end=1010.0)  # ... b one recently
    control(router, "a", "ready", now=1020.0)

    assert (router.agents["a"].calls_taken(1050.0, 100.0), router.agents["b"].calls_taken(1050.0, 100.0)) == (0, 1)
    assert rung(park(router, "next", now=1050.0)) == ["a"]


def test_skills_weighted_picks_the_best_weighted_score_and_skips_missing_skills() -> None:
    router = router_for(
        agent("fr-only", skills={"french": 5}),  # no english: excluded
        agent("solid", skills={"french": 3, "english": 2}),  # 3×2 + 2×1 = 8
        agent("expert", skills={"french": 2, "english": 5}),  # 2×2 + 5×1 = 9
        strategy="skills-weighted",
        skills={"french": 2, "english": 1},
    )
    assert rung(park(router, "c1", now=0.0)) == ["expert"]
    # the caller needs french level 3: expert (french 2) is now below it
    assert rung(park(router, "c2", now=1.0, fsrouter_skills="french:3")) == ["solid"]


def test_ring_all_rings_everyone_and_the_first_answer_cancels_the_others() -> None:
    router = router_for(agent("a"), agent("b"), agent("c"), strategy="ring-all")
    control(router, "c", "break", now=0.0)
    assert rung(park(router, "caller", now=1.0)) == ["a", "b"]

    out = router.handle(ChannelAnswered(node=NODE, uuid="leg-2"), now=3.0)

    assert killed(out) == ["leg-1"]
    assert (state(router, "a"), state(router, "b")) == ("available", "on_call")
    # the cancelled leg's own hangup arrives later and changes nothing
    router.handle(ChannelHungUp(node=NODE, uuid="leg-1", cause="LOSE_RACE"), now=3.1)
    assert state(router, "a") == "available"


def test_sequential_hunts_in_the_declared_order_from_the_top_every_time() -> None:
    router = router_for(agent("carol"), agent("alice"), agent("bob"), strategy="sequential")
    assert rung(park(router, "c1", now=0.0)) == ["carol"]
    assert rung(router.handle(OriginateFailed(node=NODE, leg_uuid="leg-1", cause="NO_ANSWER"), 20.0)) == ["alice"]
    router.handle(ChannelHungUp(node=NODE, uuid="c1"), now=21.0)
    router.agents["carol"].ready_at = 0.0

    assert rung(park(router, "c2", now=22.0)) == ["carol"]


def test_weighted_random_favours_heavier_agents_in_proportion() -> None:
    strategy = make_strategy("weighted-random")
    light = Agent(config=agent("light"), state=AgentState.AVAILABLE, since=0.0)
    heavy = Agent(config=agent("heavy", weight=3.0), state=AgentState.AVAILABLE, since=0.0)
    demand = Demand(queue=QueueConfig(name="support"), random=random.Random(7).random)
    call = Call(uuid="c", node=NODE, queue="support", entered_at=0.0)

    wins = Counter(strategy.rank([heavy, light], call, demand, 0.0)[0][0].id for _ in range(4000))

    assert wins["heavy"] / 4000 == pytest.approx(0.75, abs=0.03)


def test_weighted_random_is_the_same_on_replay_and_follows_an_injected_source() -> None:
    def choices() -> list[str]:
        router = router_for(*(agent(f"a{n}") for n in range(5)), strategy="weighted-random")
        return [rung(park(router, f"c{n}", now=float(n)))[0] for n in range(3)]

    assert choices() == choices()
    heavy_wins = router_for(agent("a"), agent("b", weight=4.0), strategy="weighted-random", random=lambda: 0.5)
    assert rung(park(heavy_wins, "c", now=0.0)) == ["b"]


def test_fixed_rings_the_dedicated_agent_and_falls_back_to_the_longest_idle_at_once() -> None:
    router = router_for(
        agent("a"),
        agent("b"),
        agent("c"),
        strategy="fixed",
        routes=(Route(label="key account", target="support", agent="c"),),
    )
    router.agents["a"].idle_since = -10.0
    assert rung(park(router, "c1", now=0.0, fsrouter_agent="b")) == ["b"]
    # b is ringing: the next caller for b does not wait for b
    assert rung(park(router, "c2", now=1.0, fsrouter_agent="b")) == ["a"]
    # no variable: the route's dedicated agent
    assert rung(park(router, "c3", now=2.0)) == ["c"]


def test_fixed_with_an_owner_timeout_waits_through_the_owners_wrap_up_and_the_owner_answers() -> None:
    router = router_for(agent("a"), agent("b"), strategy="fixed", owner_timeout=20.0, wrapup=10.0)
    router.agents["a"].idle_since = -10.0  # the longest idle: the fallback
    assert rung(park(router, "c1", now=0.0, fsrouter_agent="b")) == ["b"]
    talk(router, "c1", "b", start=1.0, end=5.0)  # b in wrap-up until 15 s

    assert rung(park(router, "c2", now=6.0, fsrouter_agent="b")) == []  # a is free, but c2 waits for b
    assert rung(router.handle(Tick(), now=14.9)) == []
    assert rung(router.handle(Tick(), now=15.0)) == ["b"]
    talk(router, "c2", "b", start=16.0, end=30.0)
    assert state(router, "a") == "available"


def test_fixed_falls_back_once_the_owner_timeout_runs_out() -> None:
    router = router_for(agent("a"), agent("b"), strategy="fixed", owner_timeout=20.0)
    park(router, "c1", now=0.0, fsrouter_agent="b")
    leg = leg_of(router, "b")
    router.handle(ChannelAnswered(node=NODE, uuid=leg), 1.0)
    router.handle(ChannelBridged(node=NODE, uuid="c1", other_uuid=leg), 1.0)  # b talks on

    assert rung(park(router, "c2", now=2.0, fsrouter_agent="b")) == []
    assert rung(router.handle(Tick(), now=21.9)) == []
    assert rung(router.handle(Tick(), now=22.0)) == ["a"]


@pytest.mark.parametrize("owner_state", ["logout", "break"])
def test_fixed_does_not_wait_for_an_owner_logged_out_or_on_break(owner_state: str) -> None:
    router = router_for(agent("a"), agent("b"), strategy="fixed", owner_timeout=20.0)
    control(router, "b", owner_state, now=0.0)
    assert rung(park(router, "c1", now=1.0, fsrouter_agent="b")) == ["a"]


def test_a_retry_delay_ends_on_a_tick_and_the_agent_gets_the_waiting_call() -> None:
    router = router_for(agent("a"), strategy="round-robin")
    park(router, "c1", now=0.0)
    router.handle(OriginateFailed(node=NODE, leg_uuid="leg-1", cause="USER_BUSY"), now=1.0)  # busy_delay 30 s
    assert rung(router.handle(Tick(), now=30.9)) == []
    assert rung(router.handle(Tick(), now=31.0)) == ["a"]
