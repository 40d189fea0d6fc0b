"""What the NOC sees is true (issue 13): one computation of each KPI for ``/metrics``, ``fsrouter report`` and
``fsrouter status``; agents whose phone is not registered counted apart; unknown queue names logged and counted."""

from __future__ import annotations

import json
import logging
import textwrap
import time
from pathlib import Path

import gevent
import pytest
from click.testing import CliRunner

from fsrouter.cli import main
from fsrouter.daemon import status_document
from fsrouter.sim import Simulator

#: a queue whose threshold T is 0.5 s, not 20 s; while the calendar ``shut`` is in force its callers get
#: closed-hours treatment (closed today, all day)
KPI_RULES = """\
version: 1
calendars:
  shut:
    timezone: UTC
    hours: {{mon-sun: "00:00-24:00"}}
    closed_dates: [{today}]
queues:
  support:
    strategy: longest-idle
    ring_timeout: 1
    wrapup: 0.05
    service_level_seconds: 0.5
    service_level_target: 0.8{calendar}
agents:
  - {{id: agent-1000, endpoint: user/1000, queues: [support]}}
  - {{id: agent-1001, endpoint: user/1001, queues: [support]}}
"""


def kpi_rules(path: Path, *, closed: bool) -> Path:
    today = time.strftime("%Y-%m-%d", time.gmtime())
    calendar = "\n    calendar: shut" if closed else ""
    path.write_text(KPI_RULES.format(today=today, calendar=calendar))
    return path


def settled(sim: Simulator, daemon, uuids: list[str]) -> bool:  # type: ignore[no-untyped-def]
    """Every call ended and every wrap-up is over (their time completes the records)."""
    return (
        all(sim.calls[uuid].state in ("ended", "transferred") for uuid in uuids)
        and not daemon.router.calls
        and all(agent.state.value != "wrap_up" for agent in daemon.router.agents.values())
        and len(daemon.store.calls()) == len(uuids)
    )


def test_the_same_calls_give_the_same_kpis_in_metrics_report_and_status(
    sim: Simulator, daemon_factory, tmp_path: Path
) -> None:
    for user in ("1000", "1001"):
        sim.add_agent(user, answer_after=0.2)
    rules = kpi_rules(tmp_path / "rules.yaml", closed=True)
    daemon = daemon_factory(rules)
    closed = [sim.place_call(variables={"fsrouter_queue": "support"}) for _ in range(2)]
    assert sim.wait_until(lambda: settled(sim, daemon, closed), timeout=10)
    kpi_rules(rules, closed=False)
    daemon.reload()
    placed = list(closed)
    for index in range(8):  # two agents, eight callers at once: some wait past 0.5 s, two give up
        patience = 0.3 if index in (5, 7) else 30.0
        placed.append(sim.place_call(variables={"fsrouter_queue": "support"}, patience=patience, talk_time=0.2))
        gevent.sleep(0.02)
    assert sim.wait_until(lambda: settled(sim, daemon, placed), timeout=30), daemon.router.calls

    gauge = daemon.registry.get_sample_value
    labels = {"queue": "support", "window": "15m"}
    metrics = {
        "service_level": gauge("fsrouter_service_level_ratio", labels),
        "asa_seconds": gauge("fsrouter_asa_seconds", labels),
        "aht_seconds": gauge("fsrouter_aht_seconds", labels),
        "abandon_rate": gauge("fsrouter_abandon_ratio", labels),
    }
    [queue] = status_document(daemon, daemon.router.snapshot(daemon.clock()))["queues"]
    status = json.loads(json.dumps(queue["kpis"]["15m"]))  # as `fsrouter status --json` prints it
    result = CliRunner().invoke(main, ["report", "--db", daemon.settings.db, "--json"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)

    assert report["closed"] == 2 and report["offered"] == 8 == status["offered"]  # closed hours: not offered
    assert report["abandoned"] == 2 and 0 < metrics["service_level"] < report["answered"] / report["offered"]
    for name, value in metrics.items():
        assert value is not None, name
        assert status[name] == pytest.approx(value, rel=1e-9), name
        assert report[name] == pytest.approx(value, rel=1e-9), name


def test_agents_whose_phone_is_not_registered_are_counted_apart_and_not_staffed(
    sim: Simulator, daemon_factory, tmp_path: Path
) -> None:
    """1 of 3 phones registered, its agent on a call: FreeSWITCH's registrations listing at connect says so,
    though no unregister event ever came."""
    sim.add_agent("1000", answer_after=0.05)
    for user in ("1001", "1002"):
        sim.add_agent(user, registered=False)
    assert list(sim.model.agents) == ["1000", "1001", "1002"]
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        textwrap.dedent("""\
            version: 1
            queues:
              support: {strategy: longest-idle, ring_timeout: 1}
            agents:
            """)
        + "".join(f"  - {{id: agent-{user}, endpoint: user/{user}, queues: [support]}}\n" for user in sim.model.agents)
    )
    daemon = daemon_factory(rules)

    def agents(state: str) -> float | None:
        return daemon.registry.get_sample_value("fsrouter_agents", {"queue": "support", "state": state})

    assert (agents("available"), agents("unregistered")) == (1, 2)
    caller = sim.place_call(variables={"fsrouter_queue": "support"}, talk_time=30)
    assert sim.wait_until(lambda: sim.calls[caller].bridged_at is not None, timeout=10)
    waiting = [sim.place_call(variables={"fsrouter_queue": "support"}) for _ in range(2)]
    waiting_calls = {"queue": "support"}
    assert sim.wait_until(
        lambda: daemon.registry.get_sample_value("fsrouter_queue_waiting_calls", waiting_calls) == 2, timeout=5
    )

    assert (agents("available"), agents("unregistered"), agents("on_call")) == (0, 2, 1)
    assert daemon.registry.get_sample_value("fsrouter_queue_occupancy_ratio", {"queue": "support"}) == 1.0
    assert daemon.registry.get_sample_value("fsrouter_agents_unregistered", {"queue": "support"}) == 2
    [queue] = status_document(daemon, daemon.router.snapshot(daemon.clock()))["queues"]
    assert (queue["waiting"], queue["agents"]["unregistered"]) == (2, 2)
    for uuid in [caller, *waiting]:
        sim.hangup(uuid)


def test_an_unknown_queue_name_is_logged_once_and_counted(
    sim: Simulator, daemon_factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim.add_agent("1000", answer_after=0.05)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nqueues:\n  support: {strategy: longest-idle}\n"
        "agents:\n  - {id: agent-1000, endpoint: user/1000, queues: [support]}\n"
    )
    daemon = daemon_factory(rules)
    caplog.set_level(logging.WARNING, logger="fsrouter")
    counter = "fsrouter_unknown_queue_total"
    assert daemon.registry.get_sample_value(counter) == 0

    first = sim.place_call(variables={"fsrouter_queue": "suport"}, talk_time=0.1)
    assert sim.wait_until(lambda: daemon.registry.get_sample_value(counter) == 1, timeout=5)
    assert [record.message for record in caplog.records if "suport" in record.message] != []
    assert sim.wait_until(lambda: sim.calls[first].bridged_at is not None, timeout=5)  # the default queue took it

    sim.place_call(variables={"fsrouter_queue": "suport"}, talk_time=0.1)
    assert sim.wait_until(lambda: daemon.registry.get_sample_value(counter) == 2, timeout=5)
    assert len([record for record in caplog.records if "suport" in record.message]) == 1  # once a minute per name
    assert not [sample for sample in daemon.registry.collect() if "suport" in str(sample.samples)]
