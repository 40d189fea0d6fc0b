"""Explain: every offer decision leaves a trace saying who could take the call, who could not and why."""

from __future__ import annotations

from fsrouter.adapters.store import MemoryCallStore
from fsrouter.core.commands import RecordTrace, StoreCommand
from fsrouter.core.events import AgentRegistration
from fsrouter.core.explain import TraceLog
from fsrouter.core.rules import EscalationStep
from tests.core.acd_scenarios import NODE, agent, control, park, router_for, talk


def test_an_offer_trace_names_the_rule_the_candidates_the_excluded_with_reasons_and_the_winner() -> None:
    router = router_for(
        agent("best", skills={"french": 4}),
        agent("second", skills={"french": 2}),
        agent("pause", skills={"french": 5}),
        agent("wrapping", skills={"french": 5}),
        agent("retrying", skills={"french": 5}),
        agent("unreg", skills={"french": 5}),
        agent("english", skills={"english": 5}),
        agent("tier2", skills={"french": 5}, tiers={"support": 2}),
        strategy="skills-weighted",
        skills={"french": 1},
        wrapup=30.0,
        escalation=(EscalationStep(after=600, add_tier=2),),
    )
    for name in ("best", "second", "pause", "retrying", "unreg", "english", "tier2"):
        control(router, name, "break", now=0.0)
    park(router, "earlier", now=1.0)  # only "wrapping" is free
    talk(router, "earlier", "wrapping", start=1.0, end=2.0)  # then wraps up until 32
    for name in ("best", "second", "retrying", "unreg", "english", "tier2"):
        control(router, name, "ready", now=3.0)
    router.handle(AgentRegistration(node=NODE, user="unreg", registered=False), now=3.0)
    router.agents["retrying"].ready_at = 34.0  # as after a busy offer

    park(router, "caller", now=5.0)

    [trace] = router.explain("caller")
    assert {key: trace[key] for key in ("kind", "call", "queue", "rule", "rules_version", "strategy")} == {
        "kind": "offer",
        "call": "caller",
        "queue": "support",
        "rule": "fsrouter_queue 'support'",
        "rules_version": "1",
        "strategy": "skills-weighted",
    }
    assert trace["candidates"] == [{"agent": "best", "score": 4.0}, {"agent": "second", "score": 2.0}]
    assert {e["agent"]: (e["reason"], e.get("until")) for e in trace["excluded"]} == {
        "english": ("missing skill french", None),
        "pause": ("state break", None),
        "retrying": ("retry delay", 34.0),  # a deadline is a number (epoch seconds), never prose
        "tier2": ("tier 2 not open yet (open: 1-1)", None),
        "unreg": ("unregistered", None),
        "wrapping": ("wrap-up", 32.0),
    }
    assert (trace["chosen"], trace["tie_break"]) == (["best"], "none needed (best score is unique)")


def test_a_tie_says_how_it_was_broken() -> None:
    router = router_for(agent("a"), agent("b"), strategy="fewest-calls")
    router.agents["b"].idle_since = -5.0
    park(router, "caller", now=1.0)
    [trace] = router.explain("caller")
    assert (trace["chosen"], trace["tie_break"]) == (["b"], "longest idle, then agent id")


def test_a_waiting_call_can_be_asked_why_it_waits_without_keeping_that_answer() -> None:
    router = router_for(agent("a"))
    control(router, "a", "break", now=0.0)
    park(router, "caller", now=1.0)

    assert router.explain("caller") == []
    [live] = router.explain("caller", now=2.0)
    assert (live["chosen"], live["excluded"], live["live"]) == ([], [{"agent": "a", "reason": "state break"}], True)
    assert router.explain("caller") == []


def test_traces_go_to_the_store_when_emitted() -> None:
    router = router_for(agent("a"), emit_traces=True)
    store = MemoryCallStore()
    out = park(router, "caller", now=1.0)
    for command in out:
        if isinstance(command, StoreCommand):
            store.apply(command)

    assert [type(c) for c in out if isinstance(c, RecordTrace)] == [RecordTrace]
    assert store.trace("caller") == router.explain("caller")
    quiet = router_for(agent("a"))
    assert not any(isinstance(c, RecordTrace) for c in park(quiet, "caller", now=1.0))
    assert len(quiet.explain("caller")) == 1


def test_the_trace_log_keeps_only_the_most_recent_calls() -> None:
    log = TraceLog(max_calls=2)
    for call in ("c1", "c2", "c1", "c3"):
        log.add(call, {"call": call})
    assert (log.get("c2"), len(log.get("c1")), len(log)) == ([], 2, 2)


def test_an_agent_ringing_for_another_call_is_excluded_for_max_offers() -> None:
    router = router_for(agent("a"))
    park(router, "first", now=0.0)
    park(router, "second", now=1.0)
    [live] = router.explain("second", now=2.0)
    assert live["excluded"] == [{"agent": "a", "reason": "max offers: 1 of 1 ringing"}]
