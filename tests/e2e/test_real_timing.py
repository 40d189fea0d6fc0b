"""The real daemon against a simulator with FreeSWITCH's originate timing: one agent leg per offer under load,
and a bridge FreeSWITCH acknowledges but never does (``core/routing/offers.py``, "The originate/bridge race").

The simulator delivers each originate job's result ``JOB_DELAY`` after the agent leg's CHANNEL_ANSWER, far more
than the router takes to react, so a router that bridged on the answer would always land its ``uuid_bridge``
inside the window: the job then reports ``-ERR ORIGINATOR_CANCEL`` while the legs bridge (as captured in
``bridge_race_err``), and that router rang a second agent for the same caller and recorded calls wrongly. Only
records and agent legs are asserted, never times.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest

from fsrouter.sim import Simulator
from tests.e2e.conftest import make_daemon, write_rules

#: seconds from the agent leg's CHANNEL_ANSWER to its originate job's result (20 ms in the capture; longer here so
#: that no router reaction, however slow the test machine, comes after it)
JOB_DELAY = 0.08
AGENTS = 80
ANSWER_AFTER = 0.2
TALK_TIME = 1.0


@pytest.fixture
def timed_sim() -> Iterator[Simulator]:
    simulator = Simulator(hostname="e2e", seed=11, heartbeat=1.0, job_delay=JOB_DELAY)
    simulator.start(host="127.0.0.1", port=0)
    for index in range(AGENTS):
        simulator.add_agent(str(1000 + index), behaviour="answer", answer_after=ANSWER_AFTER)
    yield simulator
    simulator.stop()


def rules_file(path: Path) -> Path:
    agents = "\n".join(
        f"  - id: agent-{1000 + index}\n    endpoint: user/{1000 + index}\n    queues: [support]"
        for index in range(AGENTS)
    )
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            queues:
              support:
                strategy: longest-idle
                wrapup: 0
            agents:
            """
        )
        + agents
        + "\n"
    )
    return path


@pytest.mark.parametrize(("calls_per_second", "calls"), [(10, 60), (20, 100), (40, 150)])
def test_every_caller_gets_one_agent_leg_and_is_recorded_answered_with_the_agent_it_talked_to(
    timed_sim: Simulator, tmp_path: Path, calls_per_second: int, calls: int
) -> None:
    daemon = make_daemon(timed_sim, tmp_path, rules_file(tmp_path / "rules.yaml"))
    daemon.start()
    try:
        assert timed_sim.wait_until(lambda: all(node.connected for node in daemon.nodes.values()), timeout=10)
        callers = []
        for _ in range(calls):  # arrivals paced at the rate under test; patient callers that never abandon
            callers.append(
                timed_sim.place_call(variables={"fsrouter_queue": "support"}, patience=120.0, talk_time=TALK_TIME)
            )
            gevent.sleep(1.0 / calls_per_second)
        assert timed_sim.wait_until(lambda: all(timed_sim.calls[c].state == "ended" for c in callers), timeout=90)
        assert timed_sim.wait_until(lambda: len(daemon.store.calls()) == calls, timeout=10)

        legs_per_caller = Counter(leg.variables.get("fsrouter_call") for leg in timed_sim.agent_legs.values())
        assert {caller: legs_per_caller[caller] for caller in callers} == dict.fromkeys(callers, 1)
        assert len(timed_sim.agent_legs) == calls
        records = {record.uuid: record for record in daemon.store.calls()}
        talked_to = {caller: f"agent-{timed_sim.calls[caller].agent}" for caller in callers}
        assert {caller: (records[caller].outcome, records[caller].agent) for caller in callers} == {
            caller: ("answered", talked_to[caller]) for caller in callers
        }
        assert [v for caller in callers for v in timed_sim.calls[caller].violations] == []
    finally:
        daemon.stop()


@pytest.mark.parametrize(
    ("bridges_lost", "results"),
    [
        (1, [("agent-1000", "answered")]),  # sent again to the same agent leg: it bridges
        (2, [("agent-1000", "bridge_timeout"), ("agent-1001", "answered")]),  # given up, offered again
    ],
)
def test_a_bridge_freeswitch_never_does_is_sent_again_then_given_up_never_a_silent_abandon(
    sim: Simulator, daemon_factory, tmp_path: Path, bridges_lost: int, results: list[tuple[str, str]]
) -> None:
    sim.add_agent("1000", answer_after=0.05)
    sim.add_agent("1001", answer_after=0.05)
    daemon = daemon_factory(write_rules(tmp_path / "rules.yaml", ["1000", "1001"]), bridge_timeout=0.3)
    caller = sim.place_call(variables={"fsrouter_queue": "support"}, talk_time=0.2)
    sim.lose_bridges(bridges_lost, caller=caller)

    assert sim.wait_until(lambda: daemon.store.call(caller) is not None, timeout=10)

    record = daemon.store.call(caller)
    assert record is not None and (record.outcome, record.agent) == ("answered", results[-1][0])
    assert [(offer.agent, offer.result) for offer in daemon.store.offers(caller)] == results
    legs = [leg for leg in sim.agent_legs.values() if leg.variables.get("fsrouter_call") == caller]
    assert [(leg.user, leg.answered_at is not None) for leg in legs] == [
        (agent.removeprefix("agent-"), True) for agent, _ in results
    ]
    assert daemon.router.agents["agent-1000"].no_answer_count == 0
