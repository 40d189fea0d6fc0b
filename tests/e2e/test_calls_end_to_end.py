"""End to end over loopback: the daemon routes simulated calls through the simulator's real ESL protocol."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import gevent
import pytest

from fsrouter.control import ControlClient
from fsrouter.core.events import StopTakingCalls
from fsrouter.errors import ControlError
from fsrouter.sim import Simulator
from tests.e2e.conftest import RINGING_RULES, write_rules

TERMINAL = {"answered", "abandoned", "timed_out", "failed", "overflowed", "closed", "rejected"}


def finished(sim: Simulator, daemon, uuids: list[str]) -> bool:  # type: ignore[no-untyped-def]
    return all(sim.calls[u].state in ("ended", "transferred") for u in uuids) and not daemon.router.calls


def test_200_calls_with_every_kind_of_agent_and_caller(sim: Simulator, daemon_factory, tmp_path: Path) -> None:
    rng = random.Random(3)
    behaviours = ["answer"] * 6 + ["busy", "no_answer", "reject", "answer"]
    users = [str(1000 + i) for i in range(len(behaviours))]
    for user, behaviour in zip(users, behaviours, strict=True):
        sim.add_agent(user, behaviour=behaviour, answer_after=rng.uniform(0.02, 0.15))
    sim.add_agent("1010", behaviour="unregistered")
    daemon = daemon_factory(write_rules(tmp_path / "rules.yaml", [*users, "1010"]))

    placed: list[str] = []
    held: set[str] = set()  # callers the agent puts on hold for half of the conversation
    for index in range(200):
        if index == 100:
            sim.unregister("1009")  # an agent's phone goes away mid-run
        abandoning = rng.random() < 0.15
        talk_time = rng.uniform(0.05, 0.25)
        hold_time = talk_time / 2 if index % 5 == 0 else 0.0
        placed.append(
            sim.place_call(
                caller_number=f"+3314200{index:04d}",
                variables={"fsrouter_queue": "support"},
                patience=rng.uniform(0.05, 0.4) if abandoning else 60.0,
                talk_time=talk_time,
                hold_time=hold_time,
            )
        )
        if hold_time:
            held.add(placed[-1])
        gevent.sleep(rng.uniform(0.0, 0.04))

    assert sim.wait_until(lambda: finished(sim, daemon, placed), timeout=120), "calls still in flight"
    # wrap-ups complete the records of the last calls
    assert sim.wait_until(lambda: all(a.state.value != "wrap_up" for a in daemon.router.agents.values()), timeout=5)
    records = {record.uuid: record for record in daemon.store.calls()}
    # every call that entered fsrouter ends with exactly one record and one outcome
    assert sorted(records) == sorted(placed)
    outcomes = Counter(record.outcome for record in records.values())
    assert set(outcomes) <= TERMINAL and outcomes["answered"] > 100 and outcomes["abandoned"] > 0
    for uuid in placed:
        caller, record = sim.calls[uuid], records[uuid]
        assert caller.violations == [], (uuid, caller.violations)
        assert (caller.bridged_at is not None) == (record.outcome == "answered"), (uuid, caller, record)
        if record.outcome == "answered":
            assert sim.agent_legs[caller.bridged_to].user == record.agent.removeprefix("agent-")
            # hold is measured from the agent leg's CHANNEL_HOLD/UNHOLD and never counted as talk too
            assert (record.hold_seconds > 0) == (uuid in held), (uuid, record)
            assert record.talk_seconds + record.hold_seconds == pytest.approx(record.ended_at - record.answered_at)
            assert record.wrapup_seconds > 0  # the agent's wrap-up (0.05 s in these rules), after the call
    # the busy / no-answer / rejecting / unregistered agents never took a call
    answered_by = Counter(r.agent for r in records.values() if r.outcome == "answered")
    assert not {"agent-1006", "agent-1007", "agent-1008", "agent-1010"} & set(answered_by)
    # no agent is left ringing or on a call, and FreeSWITCH has no channel left
    assert sim.wait_until(
        lambda: all(a.state.value in ("available", "wrap_up", "break") for a in daemon.router.agents.values()),
        timeout=5,
    )
    assert sim.wait_until(lambda: not sim.live_channels(), timeout=5), sim.live_channels()
    assert daemon.router.agents["agent-1010"].registered is False
    assert daemon.router.agents["agent-1009"].registered is False


def test_connection_drop_mid_call_is_survived(sim: Simulator, daemon_factory, tmp_path: Path) -> None:
    sim.add_agent("1000", behaviour="answer", answer_after=0.05)
    daemon = daemon_factory(write_rules(tmp_path / "rules.yaml", ["1000"]))
    talking = sim.place_call(variables={"fsrouter_queue": "support"}, talk_time=1.0)
    assert sim.wait_until(lambda: sim.calls[talking].bridged_at is not None, timeout=10)
    waiting = sim.place_call(variables={"fsrouter_queue": "support"}, talk_time=0.1)
    assert sim.wait_until(lambda: waiting in daemon.router.calls, timeout=5)

    sim.drop_connections()
    assert sim.wait_until(lambda: not daemon.nodes[next(iter(daemon.nodes))].connected, timeout=5)
    # a caller parks while fsrouter is away: it is re-learnt on reconnect
    parked_meanwhile = sim.place_call(variables={"fsrouter_queue": "support"}, talk_time=0.1)

    calls = [talking, waiting, parked_meanwhile]
    assert sim.wait_until(lambda: finished(sim, daemon, calls), timeout=30)
    records = {record.uuid: record.outcome for record in daemon.store.calls()}
    assert records == {talking: "answered", waiting: "answered", parked_meanwhile: "answered"}


def test_freeswitch_restart_ends_lost_calls_once(sim: Simulator, daemon_factory, tmp_path: Path) -> None:
    sim.add_agent("1000", behaviour="no_answer")
    daemon = daemon_factory(write_rules(tmp_path / "rules.yaml", ["1000"]))
    lost = sim.place_call(variables={"fsrouter_queue": "support"}, patience=60.0)
    assert sim.wait_until(lambda: lost in daemon.router.calls, timeout=5)
    old_core = sim.core_uuid

    sim.restart(down_for=0.3)
    assert sim.core_uuid != old_core
    assert sim.wait_until(lambda: not daemon.router.calls, timeout=15)
    [record] = daemon.store.calls()
    assert (record.uuid, record.outcome, record.hangup_cause) == (lost, "failed", "FREESWITCH_RESTARTED")
    assert sim.wait_until(lambda: daemon.router.agents["agent-1000"].state.value == "available", timeout=5)


def test_daemon_restart_with_callers_waiting_keeps_their_place(sim: Simulator, daemon_factory, tmp_path) -> None:
    rules = write_rules(tmp_path / "rules.yaml", ["1000"])
    first = daemon_factory(rules)
    waiting = [sim.place_call(variables={"fsrouter_queue": "support"}, patience=60.0, talk_time=0.05) for _ in range(3)]
    assert sim.wait_until(lambda: all(u in first.router.calls for u in waiting), timeout=5)
    entered = {u: first.router.calls[u].entered_at for u in waiting}
    first.stop()  # a crash or an upgrade: nothing is drained, the callers stay parked in FreeSWITCH

    sim.add_agent("1000", behaviour="answer", answer_after=0.02)  # an agent shows up while fsrouter is down
    second = daemon_factory(rules)
    assert sim.wait_until(lambda: finished(sim, second, waiting), timeout=30)
    records = {r.uuid: r for r in second.store.calls()}
    assert sorted(records) == sorted(waiting)
    assert all(records[u].outcome == "answered" for u in waiting)
    # back at their original entry time (persisted in the store), so they were served in order
    assert {u: records[u].entered_at for u in waiting} == entered
    served = sorted(waiting, key=lambda u: records[u].answered_at)
    assert served == sorted(waiting, key=lambda u: entered[u])


def test_daemon_crash_with_a_call_connected_and_a_caller_leaving_meanwhile_still_records_each_once(
    sim: Simulator, daemon_factory, tmp_path
) -> None:
    sim.add_agent("1000", behaviour="answer", answer_after=0.02)
    rules = write_rules(tmp_path / "rules.yaml", ["1000"])
    first = daemon_factory(rules)
    talking = sim.place_call(variables={"fsrouter_queue": "support"}, patience=60.0, talk_time=1.5)
    assert sim.wait_until(lambda: sim.calls[talking].bridged_at is not None, timeout=5)
    leaving = sim.place_call(variables={"fsrouter_queue": "support"}, patience=60.0)  # the only agent is busy
    assert sim.wait_until(lambda: leaving in first.router.calls, timeout=5)
    first.stop()  # a crash: nothing drained, nothing recorded
    sim.hangup(leaving, "ORIGINATOR_CANCEL")  # gives up while no fsrouter is running

    second = daemon_factory(rules)

    # the caller who left is recorded at the new process's first look at the node ...
    assert sim.wait_until(lambda: second.store.call(leaving) is not None, timeout=5)
    left = second.store.call(leaving)
    assert left is not None and (left.outcome, left.hangup_cause) == ("abandoned", "ENDED_WHILE_FSROUTER_WAS_AWAY")
    # ... and the connected call when it ends, answered by its agent, talk time whole
    assert second.store.call(talking) is None
    assert sim.wait_until(lambda: second.store.call(talking) is not None, timeout=10)
    answered = second.store.call(talking)
    assert answered is not None and (answered.outcome, answered.agent) == ("answered", "agent-1000")
    assert answered.answered_at == pytest.approx(second.store.offers(talking)[-1].ended_at)  # when bridged
    assert answered.talk_seconds > 1.0
    assert sorted(r.uuid for r in second.store.calls()) == sorted([talking, leaving])
    assert second.store.waiting() == []  # nothing left for a third process to take back


def test_term_during_a_burst_hangs_up_every_agent_leg_not_talking_and_leaves_the_waiting_callers(
    sim: Simulator, daemon_factory, tmp_path: Path
) -> None:
    sim.api_delay = 0.02  # FreeSWITCH busy: the originates queue up behind the answers and music
    ringing, answering = [str(1000 + i) for i in range(8)], ["1008", "1009"]
    for user in ringing:
        sim.add_agent(user, behaviour="no_answer")
    for user in answering:
        sim.add_agent(user, behaviour="answer", answer_after=0.05)
    rules = write_rules(tmp_path / "rules.yaml", ringing + answering, template=RINGING_RULES)
    daemon = daemon_factory(rules, grace=0.2)
    [node] = daemon.nodes.values()

    callers = [sim.place_call(variables={"fsrouter_queue": "support"}, patience=60, talk_time=60) for _ in range(20)]
    # some originates are written and not yet run by FreeSWITCH: their legs do not exist yet
    assert sim.wait_until(lambda: bool(node.unsettled_legs() - set(sim.agent_legs)), timeout=10)
    daemon.handle_term()

    assert daemon.wait_stopped(timeout=15)
    talking = {sim.calls[u].bridged_to for u in callers if sim.calls[u].bridged_at is not None}
    assert sim.wait_until(
        lambda: all(leg.ended_at is not None or leg.uuid in talking for leg in sim.agent_legs.values()), timeout=5
    ), [leg for leg in sim.agent_legs.values() if leg.ended_at is None and leg.uuid not in talking]
    assert len(sim.agent_legs) > len(talking)  # legs did ring, and were hung up
    waiting = [u for u in callers if sim.calls[u].bridged_at is None]
    assert waiting and all(sim.calls[u].state in ("parked", "answered") for u in waiting)
    assert sim.live_channels() == set(callers) | talking


def test_an_unknown_agent_action_is_refused_in_one_line_and_the_daemon_goes_on(
    sim: Simulator, daemon_factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim.add_agent("1000", answer_after=0.05)
    daemon = daemon_factory(write_rules(tmp_path / "rules.yaml", ["1000"]))
    client = ControlClient(daemon.settings.control_socket)

    with pytest.raises(ControlError, match="unknown agent action 'dance': expected one of login, logout, break, ready"):
        client.request("agent", agent="agent-1000", action="dance")

    assert "Traceback" not in caplog.text
    caller = sim.place_call(variables={"fsrouter_queue": "support"}, talk_time=0.1)
    assert sim.wait_until(lambda: sim.calls[caller].state == "ended", timeout=10)
    record = daemon.store.call(caller)
    assert record is not None and record.outcome == "answered"


def test_a_caller_parking_while_the_daemon_drains_is_left_parked_with_a_log_line(
    sim: Simulator, daemon_factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Not silently: the operator sees who waits for the next start (which takes parked callers back)."""
    sim.add_agent("1000", answer_after=0.05)
    daemon = daemon_factory(write_rules(tmp_path / "rules.yaml", ["1000"]))
    daemon.submit(StopTakingCalls())
    assert sim.wait_until(lambda: daemon.router.draining)

    caller = sim.place_call(variables={"fsrouter_queue": "support"}, patience=60.0)

    assert sim.wait_until(lambda: f"call={caller} parked while fsrouter is stopping: not taken" in caplog.text)
    assert caller not in daemon.router.calls and sim.calls[caller].state == "parked"
    assert sim.agent_legs == {}
