"""Reconciliation end to end: the daemon heals what it never heard about, by asking the simulator what it has."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import gevent
import pytest

from fsrouter.core.commands import Originate
from fsrouter.core.events import AgentControl, ChannelsAudited
from fsrouter.core.snapshot import HEAL_KINDS
from fsrouter.daemon import Daemon
from fsrouter.errors import EslTimeout
from fsrouter.sim import Simulator
from tests.e2e.conftest import write_rules

AUDIT_EVERY = 0.1


@pytest.fixture
def listings() -> list[str]:
    """Every ``show channels as json`` the simulator answered: one per audit (and one per connect)."""
    return []


@pytest.fixture
def sim(listings: list[str]) -> Iterator[Simulator]:
    """The e2e simulator (see conftest), telling ``listings`` about each channel listing it is asked for."""

    def observe(kind: str, detail: object) -> None:
        if kind == "api" and detail == "show channels as json":
            listings.append(str(detail))

    simulator = Simulator(hostname="e2e", seed=7, chunking=True, heartbeat=1.0, observer=observe)
    simulator.start(host="127.0.0.1", port=0)
    yield simulator
    simulator.stop()


def leave_orphan_leg(daemon: Daemon, user: str) -> str:
    """Ring ``user`` with an agent leg tagged as fsrouter's that this daemon's router never asked for: what a
    previous fsrouter process leaves behind when it stops between the originate and the bridge."""
    name, node = next(iter(daemon.nodes.items()))
    leg = "0rphan00-0000-4000-8000-000000000000"
    node.execute(
        Originate(node=name, leg_uuid=leg, call_uuid="a-call-of-the-previous-run", endpoint=f"user/{user}", timeout=60)
    )
    return leg


def test_a_lost_hang_up_and_an_orphan_agent_leg_are_healed_once(
    sim: Simulator, daemon_factory, tmp_path: Path, listings: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fsrouter.daemon")
    sim.add_agent("1000", behaviour="answer", answer_after=0.02)
    # agent-1000 starts logged out: the caller waits, and nothing but the orphan rings its phone
    rules = write_rules(tmp_path / "rules.yaml", ["1000"], logged_out={"1000"})
    daemon = daemon_factory(rules, reconcile_interval=AUDIT_EVERY)
    node = next(iter(daemon.nodes))
    caller = sim.place_call(variables={"fsrouter_queue": "support"}, patience=60.0)
    assert sim.wait_until(lambda: caller in daemon.router.calls, timeout=5)
    # its answer and music went out and were answered: no later command of ours can find it gone (CHANNEL_GONE)
    assert sim.wait_until(lambda: daemon.nodes[node].settled() and sim.calls[caller].answered_at is not None)

    sim.hangup_unheard(caller)  # FreeSWITCH has no such caller any more; fsrouter was never told
    orphan = leave_orphan_leg(daemon, "1000")  # answered at once: the agent sits in silence
    assert sim.wait_until(lambda: orphan in sim.agent_legs and sim.agent_legs[orphan].answered_at, timeout=5)

    assert sim.wait_until(lambda: daemon.store.call(caller) is not None, timeout=5)
    assert sim.wait_until(lambda: sim.agent_legs[orphan].ended_at is not None, timeout=5)
    record = daemon.store.call(caller)
    assert record is not None and (record.outcome, record.hangup_cause) == ("abandoned", "MISSED_HANGUP")
    assert sim.agent_legs[orphan].hangup_cause == "NORMAL_CLEARING"
    assert f"call={caller} reconcile call_gone channel={caller} node={node}" in caplog.text
    assert f"reconcile orphan_leg channel={orphan} node={node}" in caplog.text

    # more audits pass: nothing more is healed, the caller still has its one record
    audits_so_far = len(listings)
    assert sim.wait_until(lambda: len(listings) >= audits_so_far + 3, timeout=5)
    assert daemon.router.heals == Counter(call_gone=1, orphan_leg=1)
    assert [r.uuid for r in daemon.store.calls()] == [caller]
    scraped = {
        kind: daemon.registry.get_sample_value("fsrouter_reconcile_heals_total", {"kind": kind}) for kind in HEAL_KINDS
    }
    assert scraped == dict.fromkeys(HEAL_KINDS, 0) | {"call_gone": 1, "orphan_leg": 1}

    # the agent's phone, held by the orphan until then, takes calls again
    daemon.submit(AgentControl(agent_id="agent-1000", action="login", source="test"))
    next_caller = sim.place_call(variables={"fsrouter_queue": "support"}, talk_time=0.05)
    assert sim.wait_until(lambda: daemon.store.call(next_caller) is not None, timeout=10)
    answered = daemon.store.call(next_caller)
    assert answered is not None and (answered.outcome, answered.agent) == ("answered", "agent-1000")


@pytest.mark.parametrize(
    ("lost", "kind"),
    [
        ("the caller's CHANNEL_ANSWER", "answer_lost"),
        ("the agent's CHANNEL_ANSWER and its originate result", "answer_lost"),
        ("CHANNEL_BRIDGE", "bridge_lost"),
    ],
)
def test_a_call_whose_answer_or_bridge_event_was_lost_is_bridged_and_recorded_answered_once(
    sim: Simulator,
    daemon_factory,
    tmp_path: Path,
    listings: list[str],
    caplog: pytest.LogCaptureFixture,
    lost: str,
    kind: str,
) -> None:
    """Without the heal the call would stay connecting (a caller believed unanswered is never bridged), the agent
    leg would be timed out as a no-answer, or the call would end abandoned although the caller talked."""
    caplog.set_level(logging.WARNING, logger="fsrouter.daemon")
    sim.add_agent("1000", behaviour="answer", answer_after=0.02)
    daemon = daemon_factory(
        write_rules(tmp_path / "rules.yaml", ["1000"]), reconcile_interval=AUDIT_EVERY, bridge_timeout=2.0
    )
    node = next(iter(daemon.nodes))

    # placing a call publishes its events at once: the router cannot act on them before the loss is armed
    caller = sim.place_call(
        variables={"fsrouter_queue": "support"}, talk_time=1.0, answer=lost != "the caller's CHANNEL_ANSWER"
    )
    if lost == "the caller's CHANNEL_ANSWER":
        sim.lose_event("CHANNEL_ANSWER", caller)  # the router answers the caller: that event never reaches it
    elif lost.startswith("the agent's CHANNEL_ANSWER"):
        sim.lose_event("CHANNEL_ANSWER")  # the caller is answered already: the next answer is the agent's
        sim.lose_event("BACKGROUND_JOB")  # its +OK alone would tell the router that the agent answered
    else:
        sim.lose_event("CHANNEL_BRIDGE", caller)

    assert sim.wait_until(lambda: sim.calls[caller].bridged_at is not None, timeout=5)
    assert sim.wait_until(lambda: daemon.store.call(caller) is not None, timeout=5)
    record = daemon.store.call(caller)
    assert record is not None and (record.outcome, record.agent) == ("answered", "agent-1000")
    assert record.answered_at is not None and record.answered_at < record.ended_at
    assert f"call={caller} reconcile {kind} channel=" in caplog.text and f" node={node}" in caplog.text

    # more audits pass: nothing more is healed, the caller has its one record
    audits_so_far = len(listings)
    assert sim.wait_until(lambda: len(listings) >= audits_so_far + 3, timeout=5)
    assert daemon.router.heals == Counter({kind: 1})
    assert [r.uuid for r in daemon.store.calls()] == [caller]
    assert daemon.registry.get_sample_value("fsrouter_reconcile_heals_total", {"kind": kind}) == 1
    assert daemon.router.agents["agent-1000"].no_answer_count == 0


def test_a_failed_audit_is_logged_in_one_line_and_the_next_period_tries_again(
    sim: Simulator, daemon_factory, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="fsrouter.daemon")
    daemon = daemon_factory(
        write_rules(tmp_path / "rules.yaml", ["1000"], logged_out={"1000"}), reconcile_interval=AUDIT_EVERY
    )
    name, node = next(iter(daemon.nodes.items()))
    answers = node.audit
    failures = [EslTimeout("no reply to api in 2.0s")]

    def audit_that_fails_once(clock: Callable[[], float]) -> ChannelsAudited:
        if failures:
            raise failures.pop()
        return answers(clock=clock)

    monkeypatch.setattr(node, "audit", audit_that_fails_once)
    caller = sim.place_call(variables={"fsrouter_queue": "support"}, patience=60.0)
    assert sim.wait_until(lambda: caller in daemon.router.calls, timeout=5)
    sim.hangup_unheard(caller)

    assert sim.wait_until(lambda: daemon.store.call(caller) is not None, timeout=5)
    failed = [r.getMessage() for r in caplog.records if "audit of node" in r.getMessage()]
    assert failed == [f"reconcile: audit of node {name} failed, next try in 0.1 s: no reply to api in 2.0s"]


def test_frequent_audits_during_busy_traffic_heal_nothing(sim: Simulator, daemon_factory, tmp_path: Path) -> None:
    """Every call's events arrive: audits ten times a second, racing hang-ups, originates and kills, must find
    nothing to heal (a heal is a lost event or an orphan, never a race)."""
    rng = random.Random(11)
    behaviours = ["answer", "answer", "answer", "busy", "no_answer"]
    users = [str(1000 + index) for index in range(len(behaviours))]
    for user, behaviour in zip(users, behaviours, strict=True):
        sim.add_agent(user, behaviour=behaviour, answer_after=rng.uniform(0.02, 0.1))
    daemon = daemon_factory(write_rules(tmp_path / "rules.yaml", users), reconcile_interval=AUDIT_EVERY)

    placed = []
    for _ in range(60):
        placed.append(
            sim.place_call(
                variables={"fsrouter_queue": "support"},
                patience=rng.choice([0.05, 0.2, 60.0, 60.0]),
                talk_time=rng.uniform(0.05, 0.2),
            )
        )
        gevent.sleep(rng.uniform(0.0, 0.05))

    assert sim.wait_until(lambda: all(daemon.store.call(u) is not None for u in placed), timeout=60)
    assert sim.wait_until(lambda: not sim.live_channels(), timeout=5), sim.live_channels()
    assert daemon.router.heals == Counter()
    assert sorted(r.uuid for r in daemon.store.calls()) == sorted(placed)
