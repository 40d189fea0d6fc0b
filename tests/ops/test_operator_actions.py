"""Operator actions and a reload that removes a queue, through ``fsrouter`` commands against a running daemon.

The control socket answers with what the core did (applied, pending until the ring or the call ends, refused),
and ``fsrouter reload --dry-run`` says where each caller of a removed queue goes before the reload sends it there.
"""

from __future__ import annotations

import json
from pathlib import Path

from fsrouter.sim import Simulator
from tests.ops.conftest import DaemonFactory, DaemonProcess

RULES = """\
version: 1
queues:
  support:
    ring_timeout: 30
    wrapup: 0.5
{more_queues}
agents:
  - id: agent-1000
    endpoint: user/1000
    queues: [support]
    reject_delay: 60
    max_no_answer: 0
{more}
"""

SUPPORT = {"fsrouter_queue": "support"}


def agent_state(daemon: DaemonProcess) -> str:
    [agent] = daemon.cli_json("agents")
    return str(agent["state"])


def test_break_during_a_ring_and_during_a_call_puts_the_agent_on_break_after_the_call(
    sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path
) -> None:
    sim.add_agent("1000", answer_after=1.5)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(more_queues="", more=""))
    daemon = daemon_process(rules)

    first = sim.place_call(variables=SUPPORT, talk_time=0.5)
    assert sim.wait_until(lambda: agent_state(daemon) == "reserved", timeout=5), daemon.log_text()
    during_ring = daemon.cli("agent", "break", "agent-1000")
    assert (during_ring.exit_code, during_ring.stdout) == (
        0,
        "agent-1000: break pending until the ring or the call it leads to ends\n",
    )
    assert sim.wait_until(lambda: sim.calls[first].state == "ended", timeout=10), daemon.log_text()
    assert sim.calls[first].bridged_at is not None  # the ring was not cancelled: the agent took the call
    assert sim.wait_until(lambda: agent_state(daemon) == "break", timeout=5), daemon.log_text()

    assert daemon.cli("agent", "ready", "agent-1000").stdout == "agent-1000: ready applied\n"
    second = sim.place_call(variables=SUPPORT, talk_time=1.0)
    assert sim.wait_until(lambda: agent_state(daemon) == "on_call", timeout=5), daemon.log_text()
    during_call = daemon.cli_json("agent", "break", "agent-1000")
    assert (during_call["result"], during_call["reason"]) == ("pending", "until the call ends")
    assert sim.wait_until(lambda: sim.calls[second].state == "ended", timeout=10), daemon.log_text()
    assert sim.wait_until(lambda: agent_state(daemon) == "break", timeout=5), daemon.log_text()
    again = daemon.cli("agent", "break", "agent-1000")
    assert (again.exit_code, again.stdout) == (0, "agent-1000: break applied: already on break\n")


def test_a_refused_action_exits_non_zero_with_the_reason(
    sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(more_queues="", more="    status: logged-out"))
    daemon = daemon_process(rules)

    refused = daemon.cli("agent", "ready", "agent-1000")
    as_json = daemon.cli("agent", "break", "agent-1000", "--json")

    assert (refused.exit_code, refused.stdout) == (1, "")
    assert refused.stderr == "fsrouter: agent-1000: ready refused: logged out: log in first\n"
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["result"] == "refused"
    assert "agent=agent-1000 ready refused: logged out: log in first" in daemon.log_text()
    assert daemon.cli("agent", "break", "agent-9").exit_code == 1  # unknown agent


def test_ready_during_a_60_s_retry_delay_offers_the_waiting_caller_in_the_same_core_step(
    sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path
) -> None:
    sim.add_agent("1000", behaviour="reject")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(more_queues="", more=""))
    daemon = daemon_process(rules)
    caller = sim.place_call(variables=SUPPORT, talk_time=0.5, patience=60)
    assert sim.wait_until(lambda: sim.agent_legs and all(leg.ended_at for leg in sim.agent_legs.values()), timeout=5)
    assert sim.wait_until(lambda: agent_state(daemon) == "available", timeout=5)
    sim.set_agent("1000", behaviour="answer", answer_after=0.1)

    reply = daemon.cli("agent", "ready", "agent-1000")

    assert reply.stdout == "agent-1000: ready applied: already available; retry delay and no-answer count cleared\n"
    assert agent_state(daemon) == "reserved"  # rung in the step that answered, not on a later tick
    assert sim.wait_until(lambda: sim.calls[caller].bridged_at is not None, timeout=5), daemon.log_text()


REMOVED_SALES = """\
default_queue: support
routes:
  - name: transfer 200
    when: {caller: "200"}
    transfer: "5000"
  - name: reject 300
    when: {caller: "300"}
    reject: true
"""


def test_a_reload_that_removes_a_queue_sends_each_waiting_caller_where_the_dry_run_said(
    sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path
) -> None:
    sim.add_agent("1000", answer_after=0.1)
    rules = tmp_path / "rules.yaml"
    sales = "  sales:\n    strategy: round-robin"
    rules.write_text(RULES.format(more_queues=sales, more="    status: logged-out"))
    daemon = daemon_process(rules)
    callers = {
        number: sim.place_call(caller_number=number, variables={"fsrouter_queue": "sales"}, talk_time=0.5, patience=60)
        for number in ("100", "200", "300")
    }
    assert sim.wait_until(lambda: len(daemon.cli_json("calls")) == 3, timeout=10), daemon.log_text()

    rules.write_text(REMOVED_SALES + RULES.format(more_queues="", more="    status: logged-out"))
    preview = daemon.cli_json("reload", "--dry-run")
    destinations = {call["call"]: call["destination"] for call in preview["calls_in_removed_queues"]}
    assert destinations == {
        callers["100"]: "queue support",
        callers["200"]: "transfer 5000",
        callers["300"]: "reject",
    }
    assert len(daemon.cli_json("calls")) == 3  # a dry run changes nothing

    assert daemon.cli("reload").exit_code == 0

    transferred = sim.calls[callers["200"]]
    assert sim.wait_until(lambda: transferred.transferred_to == "5000", timeout=5), daemon.log_text()
    assert sim.wait_until(lambda: sim.calls[callers["300"]].hangup_cause == "CALL_REJECTED", timeout=5)
    [waiting] = daemon.cli_json("calls")
    assert (waiting["uuid"], waiting["queue"]) == (callers["100"], "support")
    assert [queue["name"] for queue in daemon.cli_json("queues")] == ["support"]
    assert daemon.cli("agent", "login", "agent-1000").exit_code == 0
    answered = f"call={callers['100']} ended outcome=answered queue=support agent=agent-1000"
    assert sim.wait_until(lambda: answered in daemon.log_text(), timeout=10), daemon.log_text()
    log = daemon.log_text()
    assert f"call={callers['200']} ended outcome=overflowed queue=sales" in log
    assert f"call={callers['300']} ended outcome=rejected queue=sales" in log
    for uuid in callers.values():  # each stay ended once
        assert log.count(f"call={uuid} ended") == 1
