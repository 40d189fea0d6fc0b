"""Hot reload of the rules while callers wait: ``fsrouter reload`` (and SIGHUP) against a running daemon.

The only agent starts logged out, so every caller stays waiting in the queue across the reloads; logging
it in at the end shows that routing goes on with the rules that are active.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from fsrouter.config.rules_loader import content_version
from fsrouter.sim import Simulator
from tests.ops.conftest import DaemonFactory, DaemonProcess

RULES = """\
version: 1
queues:
  support:
    strategy: {strategy}
    ring_timeout: {ring_timeout}
    wrapup: 0.05
{more_queues}
agents:
  - id: agent-1000
    endpoint: user/1000
    queues: [support]
    status: logged-out
{more_agents}
"""

#: the line of ``strategy:`` in RULES, where a bad strategy name is reported
STRATEGY_LINE = 4


def write(
    path: Path,
    *,
    strategy: str = "longest-idle",
    ring_timeout: int = 1,
    more_queues: str = "",
    more_agents: str = "",
) -> Path:
    path.write_text(
        RULES.format(strategy=strategy, ring_timeout=ring_timeout, more_queues=more_queues, more_agents=more_agents)
    )
    return path


SALES_QUEUE = "  sales:\n    strategy: round-robin"
SALES_AGENT = "  - id: agent-1001\n    endpoint: user/1001\n    queues: [sales]\n    status: logged-out"


def waiting_line(daemon: DaemonProcess) -> list[tuple[str, str, float]]:
    """The callers in fsrouter, in the order the daemon lists them, with their queue and entry time."""
    calls: list[dict[str, Any]] = daemon.cli_json("calls")
    assert all(call["state"] == "waiting" for call in calls), calls
    return [(call["uuid"], call["queue"], call["entered_at"]) for call in calls]


def queue_names(daemon: DaemonProcess) -> list[str]:
    return [queue["name"] for queue in daemon.cli_json("queues")]


def start_with_waiting_callers(sim: Simulator, daemon_process: DaemonFactory, rules: Path) -> DaemonProcess:
    sim.add_agent("1000", answer_after=0.05)
    daemon = daemon_process(rules)
    callers = [sim.place_call(caller_number=f"+3314200000{n}", talk_time=0.1, patience=60) for n in range(3)]
    assert sim.wait_until(lambda: len(daemon.cli_json("calls")) == 3, timeout=10), daemon.log_text()
    assert [uuid for uuid, _, _ in waiting_line(daemon)] == callers
    return daemon


def assert_all_callers_answered(sim: Simulator, daemon: DaemonProcess, callers: list[str]) -> None:
    assert daemon.cli("agent", "login", "agent-1000").exit_code == 0
    assert sim.wait_until(lambda: all(sim.calls[uuid].bridged_at for uuid in callers), timeout=20), daemon.log_text()
    bridged_order = sorted(callers, key=lambda uuid: sim.calls[uuid].bridged_at or 0.0)
    assert bridged_order == callers  # first come, first served: the reloads kept the line in order


def test_reload_applies_new_rules_and_keeps_the_callers_in_line(
    sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path
) -> None:
    rules = write(tmp_path / "rules.yaml")
    daemon = start_with_waiting_callers(sim, daemon_process, rules)
    line_before = waiting_line(daemon)
    loaded_before = daemon.cli_json("status")["rules"]["loaded_at"]

    write(rules, ring_timeout=5, more_queues=SALES_QUEUE, more_agents=SALES_AGENT)
    preview = daemon.cli("reload", "--dry-run")

    assert preview.exit_code == 0, preview.output
    assert "queues_added: sales" in preview.stdout
    assert "queues_changed: support" in preview.stdout
    assert "agents_added: agent-1001" in preview.stdout
    assert queue_names(daemon) == ["support"]  # a dry run changes nothing
    assert daemon.cli_json("status")["rules"]["loaded_at"] == loaded_before

    diff = daemon.cli_json("reload")

    assert (diff["queues_added"], diff["agents_added"]) == (["sales"], ["agent-1001"])
    assert sim.wait_until(lambda: queue_names(daemon) == ["support", "sales"], timeout=5)
    rules_after = daemon.cli_json("status")["rules"]
    assert rules_after["loaded_at"] > loaded_before
    assert rules_after["version"] == content_version(rules.read_text())  # which edit of the file is live
    assert waiting_line(daemon) == line_before

    write(rules, ring_timeout=5, more_queues=SALES_QUEUE)  # agent-1001 leaves, by SIGHUP this time
    daemon.send(signal.SIGHUP)

    assert sim.wait_until(lambda: "agent-1001" not in [a["id"] for a in daemon.cli_json("agents")], timeout=5)
    assert waiting_line(daemon) == line_before
    assert_all_callers_answered(sim, daemon, [uuid for uuid, _, _ in line_before])


def test_a_broken_rules_file_is_refused_and_the_old_rules_stay(
    sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path
) -> None:
    rules = write(tmp_path / "rules.yaml")
    daemon = start_with_waiting_callers(sim, daemon_process, rules)
    line_before = waiting_line(daemon)
    status_before = daemon.cli_json("status")

    write(rules, strategy="longest_idle", more_queues=SALES_QUEUE)
    refused = daemon.cli("reload")

    assert refused.exit_code == 1
    assert f"{rules}:{STRATEGY_LINE}: error: queue 'support': unknown strategy 'longest_idle'" in refused.stderr
    assert "Traceback" not in refused.output
    assert daemon.cli("reload", "--dry-run").exit_code == 1

    daemon.send(signal.SIGHUP)
    assert sim.wait_until(lambda: "reload refused, old rules kept" in daemon.log_text(), timeout=5)

    status_after = daemon.cli_json("status")
    assert status_after["rules"] == status_before["rules"]
    assert [queue["strategy"] for queue in status_after["queues"]] == ["longest-idle"]
    assert waiting_line(daemon) == line_before
    assert_all_callers_answered(sim, daemon, [uuid for uuid, _, _ in line_before])
