"""A failing call store is an outage of the store, not of routing: the daemon over the simulator, with a real
SQLite file locked by another process, full, or deleted, while calls arrive. Every call is routed, and every call
ends with exactly one record in the file at ``--db``."""

from __future__ import annotations

import logging
import sqlite3
import stat
import sys
from pathlib import Path

import gevent.subprocess
import pytest

from fsrouter.daemon import Daemon, status_document
from fsrouter.sim import Simulator
from tests.e2e.conftest import write_rules

SUPPORT = {"fsrouter_queue": "support"}

#: another process holding the write lock until the test closes its stdin, and for at least 5 s
HOLD_THE_WRITE_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
held_from = time.monotonic()
sys.stdin.read()
time.sleep(max(0.0, 5.0 - (time.monotonic() - held_from)))
db.execute("COMMIT")
"""


@pytest.fixture
def daemon(sim: Simulator, daemon_factory, tmp_path: Path) -> Daemon:  # type: ignore[no-untyped-def]
    """The daemon, routing to two agents who answer at once; its store is ``tmp_path / "fsrouter.db"``."""
    for user in ("1000", "1001"):
        sim.add_agent(user, answer_after=0.02)
    started: Daemon = daemon_factory(write_rules(tmp_path / "rules.yaml", ["1000", "1001"]))
    return started


def routed_call(sim: Simulator, daemon: Daemon, number: int) -> str:
    """Place one call and return its uuid once an agent took it and it ended, in the simulator and in fsrouter."""
    uuid = sim.place_call(caller_number=f"+3314200{number:04d}", variables=SUPPORT, talk_time=0.1)
    assert sim.wait_until(lambda: sim.calls[uuid].state == "ended" and uuid not in daemon.router.calls, timeout=10)
    assert sim.calls[uuid].bridged_at is not None, f"call {uuid} was not routed to an agent"
    return uuid


def records_in_file(path: Path) -> dict[str, str]:
    """Outcome by call uuid, as the file at ``path`` holds them now (another reader, like ``fsrouter report``)."""
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(reader.execute("SELECT uuid, outcome FROM calls").fetchall())
    finally:
        reader.close()


def store_caught_up(daemon: Daemon) -> bool:
    return not daemon.store_writer.failing and daemon.store_writer.backlog == 0


def assert_one_answered_record_each(path: Path, calls: list[str]) -> None:
    records = records_in_file(path)  # the uuid is the table's key: one row per call at most
    assert sorted(records) == sorted(calls)
    assert set(records.values()) == {"answered"}


def store_status(daemon: Daemon) -> dict[str, object]:
    status: dict[str, object] = status_document(daemon, daemon.router.snapshot(daemon.clock()))["store"]
    return status


def test_a_store_locked_for_5_s_by_another_process_delays_the_records_and_routing_goes_on(
    sim: Simulator, daemon: Daemon
) -> None:
    db = Path(daemon.settings.db)
    calls = [routed_call(sim, daemon, 0)]
    holder = gevent.subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_WRITE_LOCK, str(db)],
        stdin=gevent.subprocess.PIPE,
        stdout=gevent.subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"

        calls += [routed_call(sim, daemon, number) for number in (1, 2, 3)]

        assert holder.poll() is None  # all three were routed while the other process held the lock
        status = store_status(daemon)
        assert status["failing"] is True and "database is locked" in str(status["error"])
        assert status["backlog"] == daemon.store_writer.backlog > 0
        assert daemon.registry.get_sample_value("fsrouter_store_failing") == 1
        assert daemon.registry.get_sample_value("fsrouter_store_backlog_commands") == daemon.store_writer.backlog
        assert sorted(records_in_file(db)) == calls[:1]
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        assert holder.wait(timeout=15) == 0

    calls.append(routed_call(sim, daemon, 4))
    assert sim.wait_until(lambda: store_caught_up(daemon), timeout=5)
    assert_one_answered_record_each(db, calls)
    assert store_status(daemon)["failing"] is False
    assert daemon.registry.get_sample_value("fsrouter_store_write_failures_total") >= 1
    assert daemon.store_writer.dropped == 0


def test_a_full_disk_delays_the_records_until_there_is_room_and_routing_goes_on(sim: Simulator, daemon: Daemon) -> None:
    db = Path(daemon.settings.db)
    calls = [routed_call(sim, daemon, 0)]

    daemon.store.limit_size(0)  # the file cannot grow: the next write needing a page fails as on a full disk
    while not daemon.store_writer.failing and len(calls) < 50:  # the last pages' free room takes a few calls
        calls.append(routed_call(sim, daemon, len(calls)))
    assert daemon.store_writer.failing
    calls += [routed_call(sim, daemon, len(calls) + offset) for offset in range(3)]
    assert daemon.store_writer.failing and "database or disk is full" in str(store_status(daemon)["error"])
    assert not set(calls[-3:]) & set(records_in_file(db))

    daemon.store.limit_size(None)  # room again
    calls.append(routed_call(sim, daemon, len(calls)))
    assert sim.wait_until(lambda: store_caught_up(daemon), timeout=5)
    assert_one_answered_record_each(db, calls)
    assert daemon.store_writer.dropped == 0


def test_a_deleted_database_is_made_again_and_every_later_record_is_in_the_file_at_the_path(
    sim: Simulator, daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    db = Path(daemon.settings.db)
    talking = sim.place_call(caller_number="+33142000000", variables=SUPPORT, talk_time=1.0)
    assert sim.wait_until(lambda: sim.calls[talking].bridged_at is not None, timeout=10)

    with caplog.at_level(logging.WARNING, logger="fsrouter.adapters.store"):
        db.unlink()  # as `rm` would: the daemon's WAL and shared-memory files stay
        assert sim.wait_until(lambda: talking not in daemon.router.calls, timeout=10)
        calls = [talking, *(routed_call(sim, daemon, number) for number in (1, 2))]

    assert "the file was deleted or replaced under fsrouter; opened a new one" in caplog.text
    assert store_caught_up(daemon)
    assert_one_answered_record_each(db, calls)  # the call talking across the deletion too
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
