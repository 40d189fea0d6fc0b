"""End to end over the simulator: a FreeSWITCH that stops answering, a caller's hang-up that never arrives, and a
daemon killed (no drain) while a call is talking. Each time the next call is routed and every call has one record.
"""

from __future__ import annotations

from pathlib import Path

import gevent
import pytest

from fsrouter.sim import Simulator
from tests.e2e.conftest import RINGING_RULES, write_rules
from tests.e2e.test_calls_end_to_end import finished

QUEUE = {"fsrouter_queue": "support"}


def legs_for(sim: Simulator, call: str) -> list[str]:
    """The agent legs FreeSWITCH created for ``call``."""
    return [leg.uuid for leg in sim.agent_legs.values() if leg.variables.get("fsrouter_call") == call]


def test_a_command_freeswitch_never_answers_drops_the_connection_and_no_agent_is_charged_a_no_answer(
    sim: Simulator, daemon_factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim.add_agent("1000", behaviour="answer", answer_after=0.05)
    daemon = daemon_factory(write_rules(tmp_path / "rules.yaml", ["1000"]))  # command timeout: 2 s

    sim.api_delay = 3600.0  # FreeSWITCH gets stuck in the next command it reads and answers nothing after it
    first = sim.place_call(variables=QUEUE, patience=60.0, talk_time=0.1)
    assert sim.wait_until(lambda: sim.command_running, timeout=5)
    sim.api_delay = 0.0  # a new connection is served again

    assert sim.wait_until(lambda: finished(sim, daemon, [first]), timeout=20), "the stuck call never went through"
    second = sim.place_call(variables=QUEUE, patience=60.0, talk_time=0.1)
    assert sim.wait_until(lambda: finished(sim, daemon, [second]), timeout=10), "the next call was not routed"

    assert "dropping the connection" in caplog.text
    assert {record.uuid: record.outcome for record in daemon.store.calls()} == {first: "answered", second: "answered"}
    results = [offer.result for call in (first, second) for offer in daemon.store.offers(call)]
    assert "no_answer" not in results and results.count("answered") == 2
    assert daemon.router.agents["agent-1000"].no_answer_count == 0


def test_a_caller_whose_hang_up_was_lost_rings_one_agent_leg_at_most_and_is_recorded_once(
    sim: Simulator, daemon_factory, tmp_path: Path
) -> None:
    sim.add_agent("1000", behaviour="answer", answer_after=0.5)
    daemon = daemon_factory(write_rules(tmp_path / "rules.yaml", ["1000"], RINGING_RULES))
    lost = sim.place_call(variables=QUEUE, patience=60.0)
    assert sim.wait_until(lambda: len(legs_for(sim, lost)) == 1, timeout=5)

    sim.hangup_unheard(lost)  # the agent answers next: the bridge hears that the caller is gone

    assert sim.wait_until(lambda: daemon.store.call(lost) is not None, timeout=10)
    record = daemon.store.call(lost)
    assert record is not None and (record.outcome, record.hangup_cause) == ("abandoned", "CHANNEL_GONE")
    gevent.sleep(0.5)  # time enough for a second agent leg, were the call queued again
    assert len(legs_for(sim, lost)) == 1
    assert sim.wait_until(lambda: not sim.live_channels(), timeout=5), "the agent leg was left up"

    following = sim.place_call(variables=QUEUE, patience=60.0, talk_time=0.1)
    assert sim.wait_until(lambda: finished(sim, daemon, [following]), timeout=10)
    assert sorted(r.uuid for r in daemon.store.calls()) == sorted([lost, following])
    assert daemon.store.call(following).outcome == "answered"  # type: ignore[union-attr]


def test_a_daemon_killed_while_a_call_talks_comes_back_with_the_agent_on_that_call(
    sim: Simulator, daemon_factory, tmp_path: Path
) -> None:
    sim.add_agent("1000", behaviour="answer", answer_after=0.02)
    rules = write_rules(tmp_path / "rules.yaml", ["1000"])
    first = daemon_factory(rules)
    talking = sim.place_call(variables=QUEUE, patience=60.0, talk_time=2.5)
    assert sim.wait_until(lambda: sim.calls[talking].bridged_at is not None, timeout=5)
    first.stop()  # kill -9: nothing drained, nothing recorded

    second = daemon_factory(rules)
    assert sim.wait_until(lambda: second.router.agents["agent-1000"].state.value == "on_call", timeout=5)
    [view] = second.router.snapshot(0.0).calls
    assert (view.uuid, view.state, view.agent) == (talking, "talking", "agent-1000")
    waiting = sim.place_call(variables=QUEUE, patience=60.0, talk_time=0.1)
    assert sim.wait_until(lambda: waiting in second.router.calls, timeout=5)
    gevent.sleep(0.5)
    assert legs_for(sim, waiting) == []  # the agent who talks is not offered the next call
    assert second.store.call(talking) is None  # its record waits for the hang-up

    assert sim.wait_until(lambda: finished(sim, second, [talking, waiting]), timeout=15)
    records = {record.uuid: record for record in second.store.calls()}
    assert sorted(records) == sorted([talking, waiting])
    assert (records[talking].outcome, records[talking].agent) == ("answered", "agent-1000")
    assert records[talking].talk_seconds > 2.0
    assert records[waiting].outcome == "answered"
    assert records[talking].wrapup_seconds > 0  # the agent wrapped up after the re-attached call
