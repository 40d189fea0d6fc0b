"""One contract for every CallStore implementation, then what only the SQLite file must do."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import gevent
import pytest

from fsrouter.adapters.store import (
    FAILING_BUSY_TIMEOUT,
    MIGRATIONS,
    SCHEMA_VERSION,
    CallStore,
    MemoryCallStore,
    SqliteCallStore,
)
from fsrouter.core.commands import (
    AgentStateRecord,
    CallRecord,
    OfferRecord,
    RecordAgentState,
    RecordCall,
    RecordOffer,
    RecordTrace,
    RecordWrapUp,
    SaveWaiting,
    WaitingCall,
    WrapUpRecord,
)
from fsrouter.errors import StoreError, StoreUnavailable

T0 = 1_000.0


def make_call(
    uuid: str,
    *,
    entered_at: float = T0,
    wait: float = 10.0,
    talk: float | None = None,
    outcome: str = "abandoned",
    queue: str = "sales",
    agent: str | None = None,
    hold: float = 0.0,
) -> CallRecord:
    """A call that waited ``wait`` seconds, then talked ``talk`` seconds (and was held ``hold``) if answered."""
    answered_at = entered_at + wait if talk is not None else None
    ended_at = entered_at + wait + (talk or 0.0) + hold
    return CallRecord(
        uuid=uuid,
        node="fs1",
        queue=queue,
        outcome=outcome,
        entered_at=entered_at,
        ended_at=ended_at,
        agent=agent,
        answered_at=answered_at,
        hold_seconds=hold,
    )


def answered(
    uuid: str, *, entered_at: float, wait: float, talk: float, agent: str, hold: float = 0.0, queue: str = "sales"
) -> CallRecord:
    return make_call(
        uuid, entered_at=entered_at, wait=wait, talk=talk, outcome="answered", agent=agent, hold=hold, queue=queue
    )


def make_offer(call_uuid: str, leg_uuid: str, *, agent: str = "alice", offered_at: float = T0) -> OfferRecord:
    return OfferRecord(
        call_uuid=call_uuid,
        leg_uuid=leg_uuid,
        agent=agent,
        queue="sales",
        offered_at=offered_at,
        ended_at=offered_at + 5,
        result="NO_ANSWER",
    )


def uuids(records: list[CallRecord]) -> list[str]:
    return [rec.uuid for rec in records]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CallStore]:
    implementation: CallStore
    if request.param == "memory":
        implementation = MemoryCallStore()
    else:
        implementation = SqliteCallStore(tmp_path / "calls.db")
    yield implementation
    implementation.close()


# --- Calls --------------------------------------------------------------------------------------------


def test_a_call_record_reads_back_exactly_as_written(store: CallStore) -> None:
    rec = CallRecord(
        uuid="c1",
        node="fs2",
        queue="support",
        outcome="answered",
        entered_at=T0 + 0.25,
        ended_at=T0 + 90.5,
        agent="alice",
        answered_at=T0 + 12.75,
        caller_number="+33123456789",
        destination="3000",
        hangup_cause="NORMAL_CLEARING",
        offers=2,
        wrapup_seconds=15.0,
    )
    store.record_call(rec)
    assert store.call("c1") == rec
    assert store.calls() == [rec]


def test_an_unknown_call_is_none(store: CallStore) -> None:
    assert store.call("nope") is None


def test_a_second_record_for_the_same_call_is_ignored_and_logged(
    store: CallStore, caplog: pytest.LogCaptureFixture
) -> None:
    first = make_call("c1", outcome="abandoned")
    store.record_call(first)
    with caplog.at_level(logging.WARNING, logger="fsrouter.adapters.store"):
        store.record_call(answered("c1", entered_at=T0, wait=3, talk=30, agent="bob"))
    assert store.calls() == [first]
    assert store.call("c1") == first
    assert "c1 already recorded" in caplog.text


def test_apply_hands_each_store_command_to_its_table(store: CallStore) -> None:
    rec = make_call("c1")
    offer = make_offer("c1", "leg1")
    state = AgentStateRecord(agent="alice", state="available", at=T0)
    kept = waiting("c2", T0 + 1)
    for command in (RecordCall(record=rec), RecordOffer(record=offer), RecordAgentState(record=state)):
        store.apply(command)
    store.apply(SaveWaiting(call=kept))
    assert store.calls() == [rec]
    assert store.offers() == [offer]
    assert store.agent_states() == [state]
    assert store.waiting() == [kept]


def test_a_calls_record_drops_it_from_the_calls_in_flight(store: CallStore) -> None:
    store.apply(SaveWaiting(call=waiting("c1", T0)))
    store.apply(SaveWaiting(call=waiting("c2", T0 + 1)))
    store.apply(RecordCall(record=make_call("c1")))
    assert [call.uuid for call in store.waiting()] == ["c2"]


def test_a_wrap_up_completes_the_record_of_its_call_after_the_call_ended(store: CallStore) -> None:
    rec = answered("c1", entered_at=T0, wait=3, talk=60, agent="alice")
    store.apply(RecordCall(record=rec))
    wrapup = WrapUpRecord(call_uuid="c1", agent="alice", queue="sales", ended_at=rec.ended_at + 12, seconds=12.0)

    store.apply(RecordWrapUp(record=wrapup))
    store.apply(RecordWrapUp(record=replace(wrapup, call_uuid="never-recorded")))  # nothing to complete

    assert store.calls() == [replace(rec, wrapup_seconds=12.0)]


def test_calls_come_in_order_of_entry_then_of_recording(store: CallStore) -> None:
    late, early, tie_first, tie_second = (
        make_call("late", entered_at=T0 + 30),
        make_call("early", entered_at=T0),
        make_call("tie-1", entered_at=T0 + 10),
        make_call("tie-2", entered_at=T0 + 10),
    )
    for rec in (late, tie_first, early, tie_second):
        store.record_call(rec)
    assert uuids(store.calls()) == ["early", "tie-1", "tie-2", "late"]


def test_calls_filter_on_a_half_open_time_range_and_a_queue(store: CallStore) -> None:
    entries = [("a", 0, "sales"), ("b", 10, "support"), ("c", 20, "sales"), ("d", 30, "sales")]
    for uuid, offset, queue in entries:
        store.record_call(make_call(uuid, entered_at=T0 + offset, queue=queue))

    assert uuids(store.calls(since=T0 + 10)) == ["b", "c", "d"]
    assert uuids(store.calls(until=T0 + 20)) == ["a", "b"]
    assert uuids(store.calls(since=T0 + 10, until=T0 + 30)) == ["b", "c"]
    assert uuids(store.calls(queue="sales")) == ["a", "c", "d"]
    assert uuids(store.calls(queue="sales", since=T0 + 5, until=T0 + 25)) == ["c"]
    assert store.calls(queue="billing") == []


# --- Offers and agent states --------------------------------------------------------------------------


def test_offers_are_listed_per_call_in_order_of_offer(store: CallStore) -> None:
    second = make_offer("c1", "leg2", agent="bob", offered_at=T0 + 20)
    first = make_offer("c1", "leg1", agent="alice", offered_at=T0 + 5)
    other = make_offer("c2", "leg3", offered_at=T0 + 10)
    for rec in (second, other, first):
        store.record_offer(rec)
    assert store.offers("c1") == [first, second]
    assert store.offers() == [first, other, second]
    assert store.offers("c3") == []


def test_agent_state_history_filters_on_agent_and_time(store: CallStore) -> None:
    history = [
        AgentStateRecord(agent="alice", state="available", at=T0),
        AgentStateRecord(agent="bob", state="available", at=T0 + 1),
        AgentStateRecord(agent="alice", state="ringing", at=T0 + 2),
        AgentStateRecord(agent="alice", state="on-break", at=T0 + 3, reason="lunch"),
    ]
    for rec in history:
        store.record_agent_state(rec)
    assert store.agent_states() == history
    assert store.agent_states(agent="alice") == [history[0], history[2], history[3]]
    assert store.agent_states(since=T0 + 2) == history[2:]
    assert store.agent_states(agent="bob", since=T0 + 2) == []


def test_last_agent_states_keep_the_latest_state_per_agent(store: CallStore) -> None:
    latest_alice = AgentStateRecord(agent="alice", state="logged-out", at=T0 + 50, reason="end of shift")
    tie_bob_first = AgentStateRecord(agent="bob", state="ringing", at=T0 + 10)
    tie_bob_second = AgentStateRecord(agent="bob", state="in-call", at=T0 + 10)
    for rec in (
        latest_alice,
        AgentStateRecord(agent="alice", state="available", at=T0),  # recorded late, but older
        tie_bob_first,
        tie_bob_second,
    ):
        store.record_agent_state(rec)
    assert store.last_agent_states() == {"alice": latest_alice, "bob": tie_bob_second}


def test_no_agent_states_means_nothing_to_restore(store: CallStore) -> None:
    assert store.last_agent_states() == {}


# --- Live state for restart recovery ------------------------------------------------------------------


def waiting(uuid: str, entered_at: float, queue: str = "sales", node: str = "fs1") -> WaitingCall:
    return WaitingCall(uuid=uuid, node=node, queue=queue, entered_at=entered_at)


def test_calls_in_flight_are_saved_updated_and_dropped(store: CallStore) -> None:
    store.save_waiting(waiting("w2", T0 + 5))
    store.save_waiting(waiting("w1", T0, queue="support", node="fs2"))
    store.save_waiting(waiting("w3", T0 + 9))
    store.save_waiting(waiting("w2", T0 + 5, queue="vip"))  # overflowed to vip
    store.drop_waiting("w3")
    store.drop_waiting("never-waited")

    assert store.waiting() == [waiting("w1", T0, queue="support", node="fs2"), waiting("w2", T0 + 5, queue="vip")]


def test_traces_are_kept_per_call_in_order(store: CallStore) -> None:
    store.save_trace("c1", {"step": "rule", "matched": "vip", "queue": "sales"})
    store.save_trace("c2", {"step": "rule", "matched": None})
    store.save_trace("c1", {"step": "select", "candidates": ["alice", "bob"], "chosen": "bob"})
    assert store.trace("c1") == [
        {"step": "rule", "matched": "vip", "queue": "sales"},
        {"step": "select", "candidates": ["alice", "bob"], "chosen": "bob"},
    ]
    assert store.trace("c2") == [{"step": "rule", "matched": None}]
    assert store.trace("c3") == []


def test_several_greenlets_writing_at_once_lose_nothing(store: CallStore) -> None:
    def caller(n: int) -> None:
        uuid = f"c{n}"
        store.save_waiting(waiting(uuid, T0 + n))
        gevent.sleep(0)  # let the other greenlets write in between
        store.record_offer(make_offer(uuid, f"leg{n}", offered_at=T0 + n))
        gevent.sleep(0)
        store.drop_waiting(uuid)
        store.record_call(make_call(uuid, entered_at=T0 + n))

    gevent.joinall([gevent.spawn(caller, n) for n in range(20)], timeout=10, raise_error=True)
    assert uuids(store.calls()) == [f"c{n}" for n in range(20)]
    assert len(store.offers()) == 20
    assert store.waiting() == []


# --- Reports ------------------------------------------------------------------------------------------


def record_scripted_day(store: CallStore) -> None:
    """Ten sales calls: 8 answered (6 within 20 s, 20 s itself included, one held 40 s, one
    wrapped up 16 s), 2 abandoned; waits sum
    to 174 s.

    Two support calls, and two sales calls outside the reported range ``[T0, T0 + 1000)``.
    """
    sales = [
        answered("s1", entered_at=T0 + 0, wait=2, talk=60, agent="alice"),
        answered("s2", entered_at=T0 + 10, wait=5, talk=120, agent="alice", hold=40),
        replace(answered("s3", entered_at=T0 + 20, wait=10, talk=30, agent="bob"), wrapup_seconds=16.0),
        answered("s4", entered_at=T0 + 30, wait=15, talk=90, agent="alice"),
        answered("s5", entered_at=T0 + 40, wait=19, talk=60, agent="bob"),
        answered("s6", entered_at=T0 + 50, wait=20, talk=60, agent="alice"),
        answered("s7", entered_at=T0 + 60, wait=25, talk=30, agent="bob"),
        answered("s8", entered_at=T0 + 70, wait=40, talk=30, agent="alice"),
        make_call("s9", entered_at=T0 + 80, wait=8, outcome="abandoned"),
        make_call("s10", entered_at=T0 + 90, wait=30, outcome="abandoned"),
    ]
    support = [
        answered("p1", entered_at=T0 + 5, wait=4, talk=100, agent="bob", hold=20, queue="support"),
        make_call("p2", entered_at=T0 + 15, wait=60, outcome="overflowed", queue="support"),
    ]
    outside = [make_call("before", entered_at=T0 - 1), make_call("at-until", entered_at=T0 + 1000)]
    for rec in [*outside, *support, *sales]:
        store.record_call(rec)


ZERO_OUTCOMES = {
    "answered": 0,
    "abandoned": 0,
    "overflowed": 0,
    "closed": 0,
    "timed_out": 0,
    "rejected": 0,
    "failed": 0,
    "left": 0,
}


def test_report_by_queue_gives_exact_numbers(store: CallStore) -> None:
    record_scripted_day(store)
    assert store.report(since=T0, until=T0 + 1000) == [
        {
            "queue": "sales",
            "offered": 10,
            "short_abandoned": 0,
            **ZERO_OUTCOMES,
            "answered": 8,
            "abandoned": 2,
            "avg_wait_seconds": 17.4,
            "avg_talk_seconds": 60.0,
            "avg_hold_seconds": 5.0,
            "avg_wrapup_seconds": 2.0,
            "max_wait_seconds": 40.0,
            "service_level": 0.6,
            "asa_seconds": 17.0,
            "aht_seconds": 67.0,
            "abandon_rate": 0.2,
            "overflow_rate": 0.0,
        },
        {
            "queue": "support",
            "offered": 2,
            "short_abandoned": 0,
            **ZERO_OUTCOMES,
            "answered": 1,
            "overflowed": 1,
            "avg_wait_seconds": 32.0,
            "avg_talk_seconds": 100.0,
            "avg_hold_seconds": 20.0,
            "avg_wrapup_seconds": 0.0,
            "max_wait_seconds": 60.0,
            "service_level": 0.5,
            "asa_seconds": 4.0,
            "aht_seconds": 120.0,
            "abandon_rate": 0.0,
            "overflow_rate": 0.5,
        },
    ]


def test_report_service_level_follows_the_threshold_each_call_kept(store: CallStore) -> None:
    """Calls recorded before thresholds were kept (None) count with the default 20 s; the others with theirs."""
    record_scripted_day(store)
    ten = [replace(rec, uuid=f"t-{rec.uuid}", service_level_seconds=10.0) for rec in store.calls(queue="sales")]
    for rec in ten:
        store.record_call(replace(rec, queue="ten"))
    rows = {row["queue"]: row for row in store.report(since=T0, until=T0 + 1000)}
    assert (rows["sales"]["service_level"], rows["ten"]["service_level"]) == (0.6, 0.3)


def test_report_counts_offered_calls_as_the_kpis_do(store: CallStore) -> None:
    """Closed-hours calls are not offered; abandons under the queue's short-abandon threshold are not either, nor
    abandoned in the rates, but every outcome is counted; calls a route sent away are ``(routing)``, last."""
    for rec in [
        answered("a", entered_at=T0, wait=5, talk=60, agent="alice"),
        replace(make_call("closed", wait=0, outcome="closed"), service_level_seconds=20.0),
        replace(make_call("short", wait=3, outcome="abandoned"), short_abandon_seconds=5.0),
        replace(make_call("long", wait=30, outcome="abandoned"), short_abandon_seconds=5.0),
        make_call("sent-away", wait=0, outcome="overflowed", queue=""),
    ]:
        store.record_call(rec)
    sales, routing = store.report(since=T0, until=T0 + 1)
    assert (sales["queue"], sales["offered"], sales["short_abandoned"]) == ("sales", 2, 1)
    assert (sales["answered"], sales["abandoned"], sales["closed"]) == (1, 2, 1)
    assert (sales["service_level"], sales["abandon_rate"]) == (0.5, 0.5)
    assert (routing["queue"], routing["offered"], routing["overflowed"]) == ("(routing)", 1, 1)


def test_report_by_agent_puts_calls_nobody_took_last(store: CallStore) -> None:
    record_scripted_day(store)
    rows = store.report(since=T0, until=T0 + 1000, by="agent")
    assert [(row["agent"], row["offered"], row["answered"]) for row in rows] == [
        ("alice", 5, 5),
        ("bob", 4, 4),
        (None, 3, 0),
    ]
    alice, bob, nobody = rows
    assert alice["service_level"] == 0.8
    assert alice["avg_talk_seconds"] == 72.0
    assert bob["max_wait_seconds"] == 25.0
    assert nobody["avg_talk_seconds"] is None
    assert (nobody["abandoned"], nobody["overflowed"]) == (2, 1)


def test_report_of_an_empty_range_has_no_rows(store: CallStore) -> None:
    record_scripted_day(store)
    assert store.report(since=T0 + 2000, until=T0 + 3000) == []


def test_report_rejects_an_unknown_grouping(store: CallStore) -> None:
    with pytest.raises(ValueError, match="node"):
        store.report(since=T0, until=T0 + 1, by="node")


# --- SQLite only --------------------------------------------------------------------------------------


def test_sqlite_keeps_everything_across_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    first = SqliteCallStore(path)
    call = answered("c1", entered_at=T0, wait=3, talk=30, agent="alice")
    offer = make_offer("c1", "leg1")
    state = AgentStateRecord(agent="alice", state="in-call", at=T0 + 3)
    first.record_call(call)
    first.record_offer(offer)
    first.record_agent_state(state)
    first.save_waiting(waiting("c2", T0 + 1))
    first.save_trace("c1", {"step": "rule"})
    first.close()

    reopened = SqliteCallStore(path)
    try:
        assert reopened.calls() == [call]
        assert reopened.offers() == [offer]
        assert reopened.last_agent_states() == {"alice": state}
        assert reopened.waiting() == [waiting("c2", T0 + 1)]
        assert reopened.trace("c1") == [{"step": "rule"}]
    finally:
        reopened.close()


def test_sqlite_creates_the_file_and_its_directory_in_wal_mode_with_indexes(tmp_path: Path) -> None:
    path = tmp_path / "state" / "fsrouter" / "calls.db"
    SqliteCallStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        call_columns = {row[1] for row in db.execute("PRAGMA table_info(calls)")}
        leading_index_columns = {
            column
            for (column,) in db.execute(
                "SELECT info.name FROM pragma_index_list('calls') AS list,"
                " pragma_index_info(list.name) AS info WHERE info.seqno = 0"
            )
        }
    db.close()
    assert {"wait_seconds", "talk_seconds", *CallRecord.__dataclass_fields__} <= call_columns
    assert {"entered_at", "queue"} <= leading_index_columns


V1_CALL_COLUMNS = (
    "uuid", "node", "queue", "outcome", "entered_at", "ended_at", "agent", "answered_at", "caller_number",
    "destination", "hangup_cause", "offers", "wrapup_seconds", "wait_seconds", "talk_seconds",
)  # fmt: skip


def test_sqlite_migrates_a_version_1_database(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    old = SqliteCallStore(path, schema=MIGRATIONS[:1])
    assert old.schema_version == 1
    old.close()
    old_call = answered("from-v1", entered_at=T0, wait=3, talk=50, agent="alice")
    v1_row = {name: getattr(old_call, name) for name in V1_CALL_COLUMNS}
    with sqlite3.connect(path) as v1_writer:  # a version-1 fsrouter wrote it, without today's columns
        v1_writer.execute(
            f"INSERT INTO calls ({', '.join(v1_row)}) VALUES ({', '.join('?' * len(v1_row))})", list(v1_row.values())
        )
    v1_writer.close()

    upgraded = SqliteCallStore(path)
    try:
        assert upgraded.schema_version == SCHEMA_VERSION > 1
        assert upgraded.calls() == [old_call]  # hold_seconds 0: not measured then
        upgraded.save_waiting(waiting("w1", T0))
        upgraded.save_trace("w1", {"step": "rule"})
        assert [row.uuid for row in upgraded.waiting()] == ["w1"]
        assert upgraded.trace("w1") == [{"step": "rule"}]
    finally:
        upgraded.close()


def test_sqlite_a_failed_migration_step_leaves_the_previous_version(tmp_path: Path) -> None:
    def half_done_step(db: Any) -> None:
        db.execute("CREATE TABLE half_done (x)")
        db.execute("THIS IS NOT SQL")

    path = tmp_path / "calls.db"
    with pytest.raises(StoreError, match="cannot migrate to schema version 2"):
        SqliteCallStore(path, schema=(MIGRATIONS[0], half_done_step))
    store = SqliteCallStore(path, schema=MIGRATIONS[:1])
    try:
        assert store.schema_version == 1
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchall() == []
    db.close()


def test_sqlite_refuses_a_schema_newer_than_it_knows(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    SqliteCallStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        SqliteCallStore(path)


def test_sqlite_reports_a_corrupt_file_clearly(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    with pytest.raises(StoreError, match=r"calls\.db: cannot open: file is not a database"):
        SqliteCallStore(path)


def test_sqlite_reports_a_file_locked_by_another_process_at_open(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match=r"calls\.db: cannot open: database is locked"):
            SqliteCallStore(path, busy_timeout=0.05)
    finally:
        other.close()


def test_sqlite_reports_a_write_blocked_by_another_writer(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    store = SqliteCallStore(path, busy_timeout=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="cannot record call c1: database is locked"):
            store.record_call(make_call("c1"))
    finally:
        other.close()
    store.record_call(make_call("c1"))  # the lock is gone: the store works again
    assert store.call("c1") == make_call("c1")
    store.close()


def test_sqlite_reports_a_directory_it_cannot_create(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create its directory"):
        SqliteCallStore(blocker / "calls.db")


def test_sqlite_reports_use_after_close(tmp_path: Path) -> None:
    store = SqliteCallStore(tmp_path / "calls.db")
    store.close()
    with pytest.raises(StoreError, match="cannot read calls"):
        store.calls()


def test_sqlite_a_locked_file_is_unavailable_and_then_holds_the_hub_briefly_until_a_write_succeeds(
    tmp_path: Path,
) -> None:
    path = tmp_path / "calls.db"
    store = SqliteCallStore(path, busy_timeout=0.5)
    other = sqlite3.connect(path, isolation_level=None)

    def failed_apply_seconds() -> float:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="cannot record call c1: database is locked"):
            store.apply(RecordCall(record=make_call("c1")))
        return time.monotonic() - started

    other.execute("BEGIN IMMEDIATE")
    assert failed_apply_seconds() >= 0.45  # the whole busy timeout, once
    assert failed_apply_seconds() < 0.25  # then FAILING_BUSY_TIMEOUT per try
    other.execute("COMMIT")
    store.apply(RecordCall(record=make_call("c1")))
    other.execute("BEGIN IMMEDIATE")
    assert failed_apply_seconds() >= 0.45  # a write went through: the normal timeout is back
    other.close()
    assert FAILING_BUSY_TIMEOUT < 0.25
    assert store.call("c1") == make_call("c1")
    store.close()


def test_sqlite_applies_a_command_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    store = SqliteCallStore(path)
    store.apply(SaveWaiting(call=waiting("c1", T0)))
    with sqlite3.connect(path) as db:
        db.execute("CREATE TRIGGER kept BEFORE DELETE ON waiting BEGIN SELECT RAISE(ABORT, 'kept in flight'); END")
    db.close()

    with pytest.raises(StoreError, match="kept in flight") as refused:
        store.apply(RecordCall(record=make_call("c1")))

    assert not isinstance(refused.value, StoreUnavailable)  # the command itself was refused: no use retrying
    assert store.calls() == []  # the record went with the failed removal from the calls in flight
    assert [row.uuid for row in store.waiting()] == ["c1"]
    store.close()


def test_sqlite_a_full_disk_is_unavailable_until_there_is_room(tmp_path: Path) -> None:
    store = SqliteCallStore(tmp_path / "calls.db")
    store.limit_size(0)
    with pytest.raises(StoreUnavailable, match="database or disk is full"):
        for index in range(1_000):
            store.apply(RecordTrace(call_uuid=f"c{index}", trace={"step": "x" * 500}))
    store.limit_size(None)
    store.apply(RecordCall(record=make_call("c1")))
    assert store.call("c1") == make_call("c1")
    store.close()


@pytest.mark.parametrize("deleted", [("calls.db",), ("calls.db", "calls.db-wal", "calls.db-shm")])
def test_sqlite_a_deleted_file_is_made_again_and_later_records_go_to_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, deleted: tuple[str, ...]
) -> None:
    path = tmp_path / "calls.db"
    store = SqliteCallStore(path)
    store.apply(RecordCall(record=make_call("before")))
    for name in deleted:
        (tmp_path / name).unlink()

    with caplog.at_level(logging.WARNING, logger="fsrouter.adapters.store"):
        store.apply(RecordCall(record=make_call("after")))

    assert "the file was deleted or replaced under fsrouter; opened a new one" in caplog.text
    assert uuids(store.calls()) == ["after"]
    store.close()
    reader = SqliteCallStore(path)  # what the next process, or `fsrouter report`, reads
    assert reader.schema_version == SCHEMA_VERSION
    assert uuids(reader.calls()) == ["after"]
    reader.close()


def test_sqlite_a_replaced_file_is_followed(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    store = SqliteCallStore(path)
    store.apply(RecordCall(record=make_call("before")))
    restored = SqliteCallStore(tmp_path / "backup.db")  # a backup put back
    restored.record_call(make_call("from-backup"))
    restored.close()
    os.replace(tmp_path / "backup.db", path)

    store.apply(RecordCall(record=make_call("after", entered_at=T0 + 1)))

    assert uuids(store.calls()) == ["from-backup", "after"]
    store.close()


def test_sqlite_files_are_for_the_daemons_user_only_even_under_umask_022(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    previous = os.umask(0o022)  # run by hand
    try:
        store = SqliteCallStore(path)
        store.apply(RecordCall(record=make_call("c1")))
    finally:
        os.umask(previous)
    modes = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("calls.db", "calls.db-wal")}
    store.close()
    assert modes == {"calls.db": 0o600, "calls.db-wal": 0o600}
