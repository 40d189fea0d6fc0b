"""The Grafana dashboard and the Prometheus files only use what fsrouter exports, and are valid."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fsrouter.core.kpi import DEFAULT_WINDOWS
from tests.adapters.test_metrics import scene_after_a_busy_quarter_hour

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "grafana" / "dashboards" / "fsrouter.json"
ALERTS = ROOT / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "prometheus" / "alerts_test.yml"
PROMETHEUS_CONFIG = ROOT / "prometheus" / "prometheus.yml"
METRIC_NAME = re.compile(r"\b(fsrouter_[a-z_]+)")
WINDOW_LABEL = re.compile(r'window="([^"]*)"')
PROMTOOL = shutil.which("promtool") or ""
needs_promtool = pytest.mark.skipif(
    not PROMTOOL, reason="promtool not installed (Debian package 'prometheus'; CI installs it)"
)


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def dashboard_queries() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def alert_queries() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def exported_names() -> set[str]:
    registry = scene_after_a_busy_quarter_hour().registry
    return {sample.name for family in registry.collect() for sample in family.samples}


def test_dashboard_has_a_stable_uid_and_the_datasource_and_queue_variables() -> None:
    board = dashboard()
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}

    assert board["uid"] == "fsrouter-overview"
    assert board["id"] is None
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["queue"]["type"] == "query"
    assert variables["queue"]["query"]["query"] == "label_values(fsrouter_calls_total, queue)"
    assert variables["queue"]["datasource"]["uid"] == "${datasource}"


def test_every_panel_has_a_query_on_the_datasource_variable() -> None:
    for panel in panels():
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_the_panels_the_noc_asked_for_are_there() -> None:
    titles = " | ".join(panel["title"].lower() for panel in panels())
    for wanted in [
        "service level vs target",
        "waiting calls",
        "oldest wait",
        "average speed of answer",
        "abandon rate",
        "agents by state",
        "occupancy",
        "required vs logged-in agents",
        "esl connected",
        "calls by outcome",
    ]:
        assert wanted in titles


def test_rates_use_the_rate_interval_and_queue_panels_filter_by_queue() -> None:
    for expr in dashboard_queries():
        for window in re.findall(r"(?:rate|increase)\([^\[]*\[([^\]]*)\]", expr):
            assert window == "$__rate_interval", expr
        if "queue" in expr:
            assert 'queue=~"$queue"' in expr, expr


@pytest.mark.parametrize(("source", "queries"), [("dashboard", dashboard_queries), ("alerts", alert_queries)])
def test_queries_use_only_metrics_fsrouter_exports(source: str, queries: Any) -> None:
    exported = exported_names()
    for expr in queries():
        unknown = set(METRIC_NAME.findall(expr)) - exported
        assert not unknown, f"{source}: {expr} uses {unknown}"
        assert set(WINDOW_LABEL.findall(expr)) <= set(DEFAULT_WINDOWS), expr


@needs_promtool
def test_promtool_accepts_the_alert_rules_and_the_scrape_config_and_the_alerts_fire_as_specified() -> None:
    """alerts_test.yml scripts series and the alerts they must (and must not) raise, e.g. 6 % no-answers."""
    for command in (
        ["check", "rules", str(ALERTS)],
        ["check", "config", str(PROMETHEUS_CONFIG)],
        ["test", "rules", str(ALERT_TESTS)],
    ):
        result = subprocess.run([PROMTOOL, *command], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule, with Grafana's variables filled in."""
    rules = [
        {
            "record": f"fsrouter_dashboard_query_{number}",
            "expr": expr.replace("$__rate_interval", "1m").replace("$queue", ".*"),
        }
        for number, expr in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_points_at_the_dashboard_and_a_prometheus_datasource() -> None:
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/fsrouter.yaml").read_text())
    datasource = yaml.safe_load((ROOT / "grafana/provisioning/datasources/prometheus.yaml").read_text())

    assert provider["apiVersion"] == 1
    assert provider["providers"][0]["type"] == "file"
    assert provider["providers"][0]["allowUiUpdates"] is False
    assert datasource["datasources"][0]["type"] == "prometheus"


def test_panels_use_the_per_queue_occupancy_name_not_its_deprecated_alias() -> None:
    queries = " ".join(dashboard_queries())
    assert "fsrouter_queue_occupancy_ratio" in queries
    assert "fsrouter_agent_occupancy_ratio" not in queries
