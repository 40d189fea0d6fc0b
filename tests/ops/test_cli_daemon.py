"""An operator's session: the ``fsrouter`` CLI against a real ``fsrouter run`` process and simulated calls."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fsrouter import __version__
from fsrouter.adapters.store import SqliteCallStore
from fsrouter.config.rules_loader import content_version
from fsrouter.sim import Simulator
from tests.e2e.conftest import RINGING_RULES, write_rules
from tests.ops.conftest import DaemonFactory, DaemonProcess
from tests.test_cli import assert_one_clear_line

SUPPORT = {"fsrouter_queue": "support"}


def agent_state(daemon: DaemonProcess, agent_id: str) -> str:
    states: dict[str, str] = {agent["id"]: agent["state"] for agent in daemon.cli_json("agents")}
    return states[agent_id]


@contextlib.contextmanager
def locked_out(socket_path: Path) -> Iterator[None]:
    """Use the socket as someone outside the daemon's user and group: mode 000, and not root either."""
    os.chmod(socket_path, 0)
    nobody = pwd.getpwnam("nobody").pw_uid
    as_root = os.geteuid() == 0
    if as_root:
        os.seteuid(nobody)  # root ignores file modes; connect() then runs as nobody, for this block only
    try:
        yield
    finally:
        if as_root:
            os.seteuid(0)
        os.chmod(socket_path, 0o660)


def test_status_agents_and_queues_describe_the_running_daemon(
    sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path
) -> None:
    sim.add_agent("1000")
    sim.add_agent("1001")
    daemon = daemon_process(write_rules(tmp_path / "rules.yaml", ["1000", "1001"]))

    text = daemon.cli("status")
    status: dict[str, Any] = daemon.cli_json("status")

    assert text.exit_code == 0, text.output
    assert f"nodes 127.0.0.1:{sim.port}=up" in text.stdout
    assert f"store {daemon.db} ok (waiting 0, dropped 0)" in text.stdout
    assert f"rules {daemon.rules} version {content_version(daemon.rules.read_text())}" in text.stdout
    assert status["nodes"] == {f"127.0.0.1:{sim.port}": True}
    assert status["draining"] is False and status["calls"] == 0
    assert status["store"] == {
        "path": str(daemon.db),
        "failing": False,
        "failing_seconds": None,
        "error": None,
        "backlog": 0,
        "dropped": 0,
    }
    assert [(queue["name"], queue["waiting"]) for queue in status["queues"]] == [("support", 0)]
    agents_table = daemon.cli("agents").stdout.splitlines()
    assert agents_table[0].split()[:3] == ["ID", "ENDPOINT", "STATE"]
    assert [row.split()[:3] for row in agents_table[1:]] == [
        ["agent-1000", "user/1000", "available"],
        ["agent-1001", "user/1001", "available"],
    ]
    assert [queue["name"] for queue in daemon.cli_json("queues")] == ["support"]
    assert status["version"] == __version__


def test_an_agent_on_break_gets_no_call_until_ready(
    sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path
) -> None:
    sim.add_agent("1000", answer_after=0.05)
    daemon = daemon_process(write_rules(tmp_path / "rules.yaml", ["1000"]))

    result = daemon.cli("agent", "break", "agent-1000")
    assert (result.exit_code, result.stdout) == (0, "agent-1000: break applied\n")  # said once it is done
    assert sim.wait_until(lambda: agent_state(daemon, "agent-1000") == "break", timeout=5)

    caller = sim.place_call(caller_number="+33142000001", variables=SUPPORT, talk_time=0.2)
    assert sim.wait_until(lambda: [call["uuid"] for call in daemon.cli_json("calls")] == [caller], timeout=5)
    [waiting] = daemon.cli_json("calls")
    assert (waiting["queue"], waiting["state"], waiting["agent"], waiting["on_hold"]) == (
        "support",
        "waiting",
        None,
        False,
    )
    assert waiting["waited"] >= 0
    assert caller in daemon.cli("calls").stdout
    assert sim.calls[caller].bridged_at is None

    assert daemon.cli("agent", "ready", "agent-1000").exit_code == 0
    assert sim.wait_until(lambda: sim.calls[caller].bridged_at is not None, timeout=10), daemon.log_text()
    assert sim.agent_legs[str(sim.calls[caller].bridged_to)].user == "1000"


def test_explain_shows_why_the_call_went_to_its_agent(
    sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path
) -> None:
    sim.add_agent("1000", answer_after=0.05)
    daemon = daemon_process(write_rules(tmp_path / "rules.yaml", ["1000"]))
    caller = sim.place_call(variables=SUPPORT, talk_time=5.0)
    assert sim.wait_until(lambda: sim.calls[caller].bridged_at is not None, timeout=10), daemon.log_text()

    traces = daemon.cli_json("explain", caller)  # while the call talks: the one decision, not repeated
    text = daemon.cli("explain", caller)

    [offer] = traces
    assert (offer["kind"], offer["call"], offer["queue"]) == ("offer", caller, "support")
    assert offer["chosen"] == ["agent-1000"]
    assert text.exit_code == 0
    assert "kind=offer" in text.stdout and "chosen: agent-1000" in text.stdout


def test_explain_of_an_unknown_call_is_one_line(sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path) -> None:
    daemon = daemon_process(write_rules(tmp_path / "rules.yaml", ["1000"]))

    assert_one_clear_line(daemon.cli("explain", "no-such-call"), "no routing decision recorded for call no-such-call")
    assert daemon.cli_json("explain", "no-such-call") == []


def test_a_refused_request_is_one_line(sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path) -> None:
    daemon = daemon_process(write_rules(tmp_path / "rules.yaml", ["1000"]))

    with locked_out(daemon.control_socket):
        denied = daemon.cli("status")

    assert_one_clear_line(denied, f"permission denied on {daemon.control_socket}")
    assert oct(daemon.control_socket.stat().st_mode & 0o777) == oct(0o660)
    assert daemon.cli("status").exit_code == 0  # the daemon itself was not disturbed


def test_sigterm_drains_the_calls_in_flight_then_exits_0(
    sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path
) -> None:
    sim.add_agent("1000", answer_after=0.05)
    daemon = daemon_process(write_rules(tmp_path / "rules.yaml", ["1000"]))
    talking = sim.place_call(variables=SUPPORT, talk_time=1.5)
    assert sim.wait_until(lambda: sim.calls[talking].bridged_at is not None, timeout=10), daemon.log_text()

    daemon.send(signal.SIGTERM)

    assert sim.wait_until(lambda: (daemon.status() or {}).get("draining") is True, timeout=5)
    assert "DRAINING" in daemon.cli("status").stdout
    assert daemon.wait_exit(timeout=15) == 0, daemon.log_text()
    assert sim.calls[talking].state == "ended"  # the call finished on its own, it was not cut
    store = SqliteCallStore(daemon.db)
    try:
        assert [(record.uuid, record.outcome) for record in store.calls()] == [(talking, "answered")]
    finally:
        store.close()
    assert "draining: 1 calls in flight" in daemon.log_text()
    assert not daemon.control_socket.exists()
    assert_one_clear_line(daemon.cli("status"), f"fsrouter is not running (nothing listens on {daemon.control_socket})")


def test_sigterm_hangs_up_the_ringing_agent_legs_and_leaves_the_waiting_callers_for_the_next_start(
    sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path
) -> None:
    sim.api_delay = 0.02  # a busy FreeSWITCH: originates still on their way when TERM comes
    users = ["1000", "1001", "1002"]
    for user in users:
        sim.add_agent(user, behaviour="no_answer")
    rules = write_rules(tmp_path / "rules.yaml", users, template=RINGING_RULES)
    daemon = daemon_process(rules, args=("--grace", "0.3"))
    callers = [sim.place_call(variables=SUPPORT, patience=60.0) for _ in range(6)]
    assert sim.wait_until(lambda: len(sim.agent_legs) == len(users), timeout=10), daemon.log_text()

    daemon.send(signal.SIGTERM)

    assert daemon.wait_exit(timeout=15) == 0, daemon.log_text()
    assert sim.wait_until(lambda: all(leg.ended_at is not None for leg in sim.agent_legs.values()), timeout=5)
    assert {leg.hangup_cause for leg in sim.agent_legs.values()} == {"ORIGINATOR_CANCEL"}
    assert sim.live_channels() == set(callers)  # still parked, for the next start to take back
    assert "agent legs may be left" not in daemon.log_text()


def test_a_second_sigterm_stops_at_once(sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path) -> None:
    sim.add_agent("1000", answer_after=0.05)
    daemon = daemon_process(write_rules(tmp_path / "rules.yaml", ["1000"]))  # a 10 s grace
    talking = sim.place_call(variables=SUPPORT, talk_time=30.0)
    assert sim.wait_until(lambda: sim.calls[talking].bridged_at is not None, timeout=10), daemon.log_text()
    daemon.send(signal.SIGTERM)
    assert sim.wait_until(lambda: (daemon.status() or {}).get("draining") is True, timeout=5)

    daemon.send(signal.SIGTERM)

    assert daemon.wait_exit(timeout=5) == 0, daemon.log_text()
    assert sim.calls[talking].state == "bridged"  # not cut: FreeSWITCH carries it on
