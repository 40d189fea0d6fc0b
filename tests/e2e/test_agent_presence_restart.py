"""A daemon restart brings agents back in the presence the operator last gave them, not the rules file's."""

from __future__ import annotations

from pathlib import Path

from fsrouter.control import ControlClient
from fsrouter.daemon import Daemon
from fsrouter.sim import Simulator
from tests.e2e.conftest import write_rules


def presence(daemon: Daemon) -> dict[str, str]:
    return {agent_id: agent.state.value for agent_id, agent in daemon.router.agents.items()}


def operator(daemon: Daemon, action: str, agent: str) -> None:
    """What ``fsrouter agent ACTION AGENT`` does: ask the daemon over its control socket."""
    ControlClient(daemon.settings.control_socket).request("agent", agent=agent, action=action)


def restored_rows(daemon: Daemon) -> list[tuple[str, str, str]]:
    """The agent states the daemon recorded since it started."""
    return [(r.agent, r.state, r.reason) for r in daemon.store.agent_states(since=daemon.started_at)]


def test_agents_come_back_on_break_logged_in_or_logged_out(sim: Simulator, daemon_factory, tmp_path: Path) -> None:
    users = ["1000", "1001", "1002", "1003"]
    for user in users:
        sim.add_agent(user, behaviour="answer", answer_after=0.02)
    rules = write_rules(tmp_path / "rules.yaml", users, logged_out={"1001", "1003"})
    first = daemon_factory(rules)
    operator(first, "break", "agent-1000")
    operator(first, "login", "agent-1001")  # declared logged out, logged in by the operator
    operator(first, "logout", "agent-1002")
    operator(first, "login", "agent-1003")
    operator(first, "logout", "agent-1003")  # back to the file's presence
    last_given = {
        "agent-1000": "break",
        "agent-1001": "available",
        "agent-1002": "logged_out",
        "agent-1003": "logged_out",
    }
    assert sim.wait_until(lambda: presence(first) == last_given, timeout=5), presence(first)
    first.stop()  # a crash, an upgrade or `systemctl restart`

    second = daemon_factory(rules)
    assert sim.wait_until(lambda: presence(second) == last_given, timeout=5), presence(second)
    # each change is recorded with why; agent-1003, already as the file starts it, gets no second row
    assert restored_rows(second) == [
        ("agent-1000", "break", "break from restart"),
        ("agent-1001", "available", "login from restart"),
        ("agent-1002", "logged_out", "logout from restart"),
    ]

    caller = sim.place_call(variables={"fsrouter_queue": "support"}, talk_time=0.05)
    assert sim.wait_until(lambda: second.store.call(caller) is not None, timeout=10)
    assert {offer.agent for offer in second.store.offers(caller)} == {"agent-1001"}
    record = second.store.call(caller)
    assert record is not None and (record.outcome, record.agent) == ("answered", "agent-1001")


def test_agents_without_history_keep_the_rules_file_presence(sim: Simulator, daemon_factory, tmp_path: Path) -> None:
    first = daemon_factory(write_rules(tmp_path / "before.yaml", ["1000", "1001"]))
    operator(first, "logout", "agent-1000")
    operator(first, "break", "agent-1001")
    assert sim.wait_until(lambda: presence(first) == {"agent-1000": "logged_out", "agent-1001": "break"}, timeout=5)
    first.stop()

    # while fsrouter is down, agent-1001 leaves the rules file and two agents new to it arrive
    second = daemon_factory(write_rules(tmp_path / "after.yaml", ["1000", "1002", "1003"], logged_out={"1003"}))
    expected = {"agent-1000": "logged_out", "agent-1002": "available", "agent-1003": "logged_out"}
    assert sim.wait_until(lambda: presence(second) == expected, timeout=5), presence(second)
    assert restored_rows(second) == [("agent-1000", "logged_out", "logout from restart")]


def test_an_agent_a_reload_removed_and_the_file_brings_back_starts_as_the_file_says(
    sim: Simulator, daemon_factory, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules.yaml", ["1000", "1001"])
    first = daemon_factory(rules)
    operator(first, "break", "agent-1001")
    assert sim.wait_until(lambda: presence(first).get("agent-1001") == "break", timeout=5)
    write_rules(rules, ["1000"])
    first.reload()  # agent-1001 leaves the rules: its last record is that removal, not a choice of presence
    assert sim.wait_until(lambda: "agent-1001" not in presence(first), timeout=5)
    first.stop()

    second = daemon_factory(write_rules(rules, ["1000", "1001"]))  # back in the file while fsrouter was down
    assert sim.wait_until(lambda: presence(second) == {"agent-1000": "available", "agent-1001": "available"}, 5)
    assert restored_rows(second) == []
