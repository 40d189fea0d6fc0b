"""A real Prometheus scrapes the daemon while it routes simulated calls: what the NOC sees must be the truth.

One scene per module: the simulator and the daemon run in this hub, Prometheus in its own process scraping
every second; ~30 calls are routed (some callers give up), and once a scrape has followed the last call the
tests read Prometheus's HTTP API and compare it with the store, the dashboard and the alert rules.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import pytest

from fsrouter import __version__
from fsrouter.core.commands import CallRecord
from fsrouter.daemon import Daemon
from fsrouter.sim import Simulator
from tests.e2e.conftest import FAST_RULES, make_daemon, write_rules
from tests.integration.conftest import (
    NOT_INSTALLED,
    PROMETHEUS,
    PROMTOOL,
    SCRAPE_INTERVAL_SECONDS,
    PrometheusServer,
    eventually,
    promtool,
    running_prometheus,
    write_prometheus_config,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "grafana" / "dashboards" / "fsrouter.json"
ALERTS = ROOT / "prometheus" / "alerts.yml"
JOB = "fsrouter"
SERVICE_LEVEL_SECONDS = 0.3

# the e2e queue, with a service-level threshold short enough that callers queued behind busy agents miss it
SUPPORT_RULES = FAST_RULES.replace(
    "  support:\n",
    f"  support:\n    service_level_seconds: {SERVICE_LEVEL_SECONDS}\n    service_level_target: 0.8\n"
    "    max_waiting_calls: 1000\n    overflow: '4000'\n",  # a configured overflow path, never taken
)
AGENT_USERS = ["1000", "1001", "1002", "1003"]
CALLS = 30

#: Grafana's built-in variables; $__rate_interval must span >= 4 scrapes for rate() to have two samples
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": f"{SCRAPE_INTERVAL_SECONDS}s", "__range": "5m"}
#: the $queue variable as Grafana renders it: the All value (its allValue), or the queues picked
QUEUE_SELECTIONS = {"All": ".*", "support picked": "support"}
GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@dataclass
class Scene:
    daemon: Daemon
    prometheus: PrometheusServer
    config: Path
    records: list[CallRecord]


def route_calls(sim: Simulator, daemon: Daemon) -> list[CallRecord]:
    """Callers arrive faster than four agents can talk to them; a quarter of them give up quickly, and one in
    three of the others is put on hold for a third of the conversation."""
    rng = random.Random(5)
    placed = []
    for index in range(CALLS):
        impatient = rng.random() < 0.25
        talk_time = rng.uniform(0.1, 0.4)
        placed.append(
            sim.place_call(
                caller_number=f"+3314200{index:04d}",
                variables={"fsrouter_queue": "support"},
                patience=rng.uniform(0.1, 0.6) if impatient else 60.0,
                talk_time=talk_time,
                hold_time=talk_time / 3 if index % 3 == 0 else 0.0,
            )
        )
        gevent.sleep(rng.uniform(0.0, 0.06))  # the next caller arrives a moment later (the daemon runs meanwhile)

    def all_ended() -> bool:
        return all(sim.calls[u].state in ("ended", "transferred") for u in placed) and not daemon.router.calls

    assert eventually(all_ended, timeout=30), "calls still in flight"
    records = daemon.store.calls()
    assert sorted(record.uuid for record in records) == sorted(placed)
    return records


def scraped_after(prometheus: PrometheusServer, moment: float) -> bool:
    """Whether Prometheus's latest successful scrape of the daemon started after ``moment``."""
    # timestamp() of a raw selector is the scrape's time (of an expression it would be the query's)
    latest = prometheus.query(f'timestamp(up{{job="{JOB}"}}) and up{{job="{JOB}"}} == 1')
    return bool(latest) and float(latest[0]["value"][1]) > moment


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    if not PROMETHEUS:
        pytest.skip(NOT_INSTALLED)
    directory = tmp_path_factory.mktemp("noc")
    with ExitStack() as cleanup:
        sim = Simulator(hostname="noc", seed=11, heartbeat=1.0)
        sim.start(host="127.0.0.1", port=0)
        cleanup.callback(sim.stop)
        for user in AGENT_USERS:
            sim.add_agent(user, behaviour="answer", answer_after=0.05)
        daemon = make_daemon(sim, directory, write_rules(directory / "rules.yaml", AGENT_USERS, SUPPORT_RULES))
        support = daemon.router.rules.queues["support"]
        assert support.service_level_seconds == SERVICE_LEVEL_SECONDS, "FAST_RULES changed?"
        daemon.start()
        cleanup.callback(daemon.stop)
        assert eventually(lambda: all(node.connected for node in daemon.nodes.values()), timeout=10)

        config = write_prometheus_config(directory, JOB, f"127.0.0.1:{daemon.metrics_port}", [ALERTS])
        prometheus = cleanup.enter_context(running_prometheus(config, directory))
        # scrapes before, during and after the calls, so that rate() sees them happen
        started = time.time()
        assert eventually(lambda: scraped_after(prometheus, started), timeout=15), prometheus.log_tail()

        records = route_calls(sim, daemon)
        last_call_ended = max(record.ended_at for record in records)
        assert eventually(lambda: scraped_after(prometheus, last_call_ended), timeout=15), prometheus.log_tail()
        yield Scene(daemon, prometheus, config, records)
    assert prometheus.exited, "Prometheus is still running after the scene"


def test_prometheus_scrapes_the_daemon(scene: Scene) -> None:
    assert scene.prometheus.values(f'up{{job="{JOB}"}}') == {
        f"instance=127.0.0.1:{scene.daemon.metrics_port},job={JOB}": 1.0
    }


def test_calls_by_outcome_in_prometheus_are_the_stores_records(scene: Scene) -> None:
    outcomes = Counter(record.outcome for record in scene.records)
    assert outcomes["answered"] > 0 and outcomes["abandoned"] > 0, outcomes  # the scene has both kinds

    counted = scene.prometheus.values(f'sum by (outcome) (fsrouter_calls_total{{job="{JOB}"}}) > 0')

    assert counted == {f"outcome={outcome}": float(count) for outcome, count in outcomes.items()}


def test_talk_and_hold_time_in_prometheus_are_the_stores_records(scene: Scene) -> None:
    answered = [record for record in scene.records if record.outcome == "answered"]
    assert any(record.hold_seconds > 0 for record in answered), "the scene has held calls"

    for name, seconds in (("talk", "talk_seconds"), ("hold", "hold_seconds")):
        scraped = scene.prometheus.values(f'fsrouter_{name}_seconds_sum{{job="{JOB}", queue="support"}}')
        assert list(scraped.values()) == [pytest.approx(sum(getattr(r, seconds) for r in answered), abs=1e-6)]


def test_build_agent_and_queue_gauges_are_scraped(scene: Scene) -> None:
    prometheus = scene.prometheus

    assert [sample["metric"]["version"] for sample in prometheus.query("fsrouter_build_info")] == [__version__]
    assert prometheus.values('sum(fsrouter_agents{queue="support"})') == {"": float(len(AGENT_USERS))}
    assert prometheus.values("fsrouter_queue_waiting_calls") == {
        f"instance=127.0.0.1:{scene.daemon.metrics_port},job={JOB},queue=support": 0.0
    }


def test_service_level_gauge_is_the_one_computed_from_the_store(scene: Scene) -> None:
    offered = [record for record in scene.records if record.outcome != "closed"]
    within = [r for r in offered if r.outcome == "answered" and r.wait_seconds <= SERVICE_LEVEL_SECONDS]
    expected = len(within) / len(offered)
    assert 0 < expected < 1, "the threshold should separate the calls"

    scraped = scene.prometheus.values('fsrouter_service_level_ratio{queue="support", window="15m"}')

    assert list(scraped.values()) == [pytest.approx(expected, abs=1e-9)]


def dashboard_targets() -> list[tuple[str, str, str]]:
    """(panel title, refId, expression) of every query of the dashboard, rows' nested panels included."""
    found = []
    pending: list[dict[str, Any]] = list(json.loads(DASHBOARD.read_text())["panels"])
    while pending:
        panel = pending.pop(0)
        pending.extend(panel.get("panels", []))
        found += [(panel["title"], target["refId"], target["expr"]) for target in panel.get("targets", [])]
    return found


def as_grafana_sends_it(expression: str, queue_regex: str) -> str:
    """Substitute the dashboard's variables the way Grafana does before querying Prometheus."""
    variables = {**GRAFANA_BUILTINS, "queue": queue_regex}

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"dashboard variable ${name} unknown to this test: {expression}"
        return variables[name]

    return GRAFANA_VARIABLE.sub(value, expression)


def has_data(samples: list[dict[str, Any]]) -> bool:
    """A panel shows something when a series has a number (NaN, as from a quantile of no rate, draws nothing)."""
    return any(not math.isnan(float(sample["value"][1])) for sample in samples)


@pytest.mark.parametrize("queue_regex", QUEUE_SELECTIONS.values(), ids=QUEUE_SELECTIONS.keys())
def test_every_dashboard_panel_shows_data(scene: Scene, queue_regex: str) -> None:
    failing = []
    for title, ref_id, expression in dashboard_targets():
        query = as_grafana_sends_it(expression, queue_regex)
        try:
            samples = scene.prometheus.query(query)
        except Exception as refusal:  # a refused query is a broken panel: list it with the others
            failing.append(f"{title} [{ref_id}] {query}: {refusal}")
            continue
        if not has_data(samples):
            failing.append(f"{title} [{ref_id}] {query}: no data ({samples})")

    assert not failing, "panels without data:\n" + "\n".join(failing)


def test_alert_rules_load_and_evaluate_on_real_series(scene: Scene) -> None:
    def rules() -> list[dict[str, Any]]:
        groups = scene.prometheus.api("rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]

    assert eventually(lambda: all(rule["health"] != "unknown" for rule in rules()), timeout=10)

    unhealthy = {rule["name"]: rule.get("lastError") for rule in rules() if rule["health"] != "ok"}
    assert rules() and not unhealthy


@pytest.mark.skipif(not PROMTOOL, reason=NOT_INSTALLED)
def test_promtool_accepts_the_generated_config_and_the_alert_rules(scene: Scene) -> None:
    for check in (["check", "config", str(scene.config)], ["check", "rules", str(ALERTS)]):
        checked = promtool(*check)
        assert checked.returncode == 0, checked.stdout


def test_esl_events_received_are_counted(scene: Scene) -> None:
    assert scene.prometheus.values(f'sum(fsrouter_esl_events_total{{job="{JOB}"}}) > 0')
