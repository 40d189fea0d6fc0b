"""The daemon over the simulator: a caller transferred back into another queue, a caller that leaves park, and a
phone registered on one of two nodes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fsrouter.config.settings import Settings
from fsrouter.daemon import Daemon
from fsrouter.sim import Simulator
from tests.e2e.conftest import make_daemon

TWO_QUEUES = """\
version: 1
queues:
  support:
    strategy: longest-idle
    ring_timeout: {ring_timeout}
    wrapup: 0.05
  sales:
    strategy: longest-idle
    ring_timeout: {ring_timeout}
    wrapup: 0.05
agents:
  - id: agent-1000
    endpoint: user/1000
    queues: [support]
    status: {support_status}
  - id: agent-2000
    endpoint: user/2000
    queues: [sales]
"""

#: the extension an agent blind-transfers its caller to (``repark_after_transfer``)
TO_SALES = (("set", "fsrouter_queue=sales"), ("pre_answer", ""), ("park", ""))
#: the dialplan's way out of the queue (``leave_park``)
WAY_OUT = (("set", "fsrouter_left_park=true"), ("playback", "tone_stream://%(500,500,440);loops=2"), ("hangup", ""))


def rules(tmp_path: Path, *, ring_timeout: int = 1, support_status: str = "available") -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(TWO_QUEUES.format(ring_timeout=ring_timeout, support_status=support_status))
    return path


def started(daemon: Daemon, *sims: Simulator) -> Daemon:
    daemon.start()
    assert sims[0].wait_until(lambda: all(node.connected for node in daemon.nodes.values()), timeout=10)
    return daemon


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    running: list[Daemon] = []
    yield running
    for daemon in running:
        daemon.stop()


def test_a_caller_an_agent_transfers_into_sales_is_answered_there_with_two_linked_records(
    sim: Simulator, tmp_path: Path, daemons: list[Daemon]
) -> None:
    sim.add_agent("1000", answer_after=0.1)
    sim.add_agent("2000", answer_after=0.1)
    sim.add_extension("5004", *TO_SALES)
    daemon = started(make_daemon(sim, tmp_path, rules(tmp_path)), sim)
    daemons.append(daemon)
    caller = sim.place_call(talk_time=30.0)
    assert sim.wait_until(lambda: sim.calls[caller].agent == "1000", timeout=10)

    sim.transfer(caller, "5004")  # the agent's blind transfer

    assert sim.wait_until(lambda: sim.calls[caller].agent == "2000" and sim.calls[caller].state == "bridged")
    sim.hangup(caller)
    assert sim.wait_until(lambda: len(daemon.store.stays(caller)) == 2, timeout=10)
    support, sales = daemon.store.stays(caller)
    assert (support.queue, support.outcome, support.agent, support.stay) == ("support", "answered", "agent-1000", 1)
    assert (sales.queue, sales.outcome, sales.agent, sales.stay) == ("sales", "answered", "agent-2000", 2)
    assert sales.previous_stay == support.stay and sales.entered_at >= support.ended_at
    assert daemon.router.transfers == {("support", "sales"): 1}


@pytest.mark.parametrize("agent_ringing", [False, True], ids=["no-agent-free", "agent-ringing"])
def test_a_waiting_caller_the_dialplan_takes_out_of_park_ends_left_and_is_never_bridged(
    sim: Simulator, tmp_path: Path, daemons: list[Daemon], agent_ringing: bool
) -> None:
    sim.add_agent("1000", behaviour="no_answer")
    sim.add_extension("5005", *WAY_OUT)
    path = rules(tmp_path, ring_timeout=30, support_status="available" if agent_ringing else "logged-out")
    daemon = started(make_daemon(sim, tmp_path, path), sim)
    daemons.append(daemon)
    caller = sim.place_call()
    assert sim.wait_until(lambda: caller in daemon.router.calls, timeout=5)
    if agent_ringing:
        assert sim.wait_until(lambda: any(leg.user == "1000" for leg in sim.agent_legs.values()), timeout=5)

    sim.transfer(caller, "5005")

    assert sim.wait_until(lambda: daemon.store.call(caller) is not None, timeout=10)
    assert sim.wait_until(lambda: all(leg.ended_at is not None for leg in sim.agent_legs.values()), timeout=5)
    assert sim.wait_until(lambda: sim.calls[caller].ended_at is not None, timeout=5)
    record = daemon.store.call(caller)
    assert record is not None and (record.outcome, record.hangup_cause) == ("left", "left park for 5005")
    assert [stay.stay for stay in daemon.store.stays(caller)] == [1]
    assert sim.calls[caller].bridged_to is None and sim.calls[caller].violations == []
    assert len(sim.agent_legs) == (1 if agent_ringing else 0)
    assert daemon.router.agents["agent-1000"].state.value == ("available" if agent_ringing else "logged_out")


@pytest.fixture
def node_b() -> Iterator[Simulator]:
    simulator = Simulator(hostname="e2e-b", seed=8, chunking=True, heartbeat=1.0)
    simulator.start(host="127.0.0.1", port=0)
    yield simulator
    simulator.stop()


def test_a_phone_registered_on_node_a_is_rung_only_for_node_a_callers(
    sim: Simulator, node_b: Simulator, tmp_path: Path, daemons: list[Daemon]
) -> None:
    node_a = sim
    node_a.add_agent("1000", answer_after=0.05)
    node_b.add_agent("1000", registered=False)  # FreeSWITCH B would answer USER_NOT_REGISTERED
    settings = Settings(
        esl=(f"127.0.0.1:{node_a.port}", f"127.0.0.1:{node_b.port}"),
        rules=str(rules(tmp_path)),
        db=str(tmp_path / "fsrouter.db"),
        metrics_listen="127.0.0.1:0",
        control_socket=str(tmp_path / "fsrouter.sock"),
        tick=0.05,
        command_timeout=2.0,
    )
    daemon = started(Daemon(settings), node_a)
    daemons.append(daemon)
    name_a, name_b = (f"127.0.0.1:{s.port}" for s in (node_a, node_b))
    node_a.register("1000")
    # each node's registrations listing at connect, then node A's sofia::register
    known = {name_a: True, name_b: False}
    assert node_a.wait_until(lambda: daemon.router.agents["agent-1000"].registrations == known)

    callers_a: list[str] = []
    for _ in range(3):
        node_b.place_call(patience=0.3)  # node B's callers come and go
        callers_a.append(node_a.place_call(talk_time=0.2))
        assert node_a.wait_until(lambda: node_a.calls[callers_a[-1]].state == "ended", timeout=10)

    assert all(node_a.calls[caller].agent == "1000" for caller in callers_a)
    assert node_b.agent_legs == {}  # never rung on node B
    assert node_a.wait_until(lambda: not daemon.router.calls, timeout=5)
    assert [daemon.store.call(caller).outcome for caller in callers_a] == ["answered"] * 3  # type: ignore[union-attr]
    view = next(agent for agent in daemon.router.snapshot(0.0).agents if agent.id == "agent-1000")
    assert view.registrations == known and name_b in daemon.router.snapshot(0.0).nodes
