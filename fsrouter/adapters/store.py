"""The call store: finished calls, offers, agent-state history, and the live state a restart needs.

``CallStore`` is a port with more than one implementation (design.md "Beyond one machine"), so every
implementation runs the same contract suite (``tests/adapters/test_store_contract.py``):

- ``MemoryCallStore``: plain Python containers, for tests and the simulator.
- ``SqliteCallStore``: one SQLite file (WAL) through sqlite-utils; the only module that imports it.

Both keep exactly one record per call, that is per stay of a caller's channel in fsrouter (``CallRecord``: keyed by
uuid and stay number, a channel transferred back into fsrouter has several): a second record for the same stay is
ignored and logged, so a stay can never end with two outcomes. Time ranges are half-open,
``since <= t < until``, so that consecutive reports never count a call twice.

Greenlets: sqlite3 never yields to the gevent hub, so each method runs to completion before another
greenlet can touch the store; one connection shared by every greenlet is safe without locks or threads.
"""

from __future__ import annotations

import abc
import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, assert_never

import sqlite_utils

from fsrouter.core.commands import (
    OUTCOMES,
    AgentStateRecord,
    CallRecord,
    OfferRecord,
    RecordAgentState,
    RecordCall,
    RecordOffer,
    RecordTrace,
    RecordWrapUp,
    SaveWaiting,
    StoreCommand,
    WaitingCall,
    WrapUpRecord,
)
from fsrouter.core.kpi import call_kpis
from fsrouter.errors import StoreError, StoreUnavailable

log = logging.getLogger(__name__)

REPORT_GROUPS = ("queue", "agent")
"""What ``report(by=...)`` can group calls by."""

ROUTING_GROUP = "(routing)"
"""The ``queue`` of a report row for calls a route sent away before any queue (a route's ``transfer:`` or
``reject``): their records have no queue."""

_CALL_FIELDS = tuple(f.name for f in fields(CallRecord))
_OFFER_FIELDS = tuple(f.name for f in fields(OfferRecord))
_AGENT_STATE_FIELDS = tuple(f.name for f in fields(AgentStateRecord))


class CallStore(abc.ABC):
    """Where calls, offers, agent states and the calls in flight are kept; the daemon hands the router's store
    commands to ``apply``. Every implementation runs ``tests/adapters/test_store_contract.py``.

    Example::

        store = SqliteCallStore("/var/lib/fsrouter/calls.db")
        store.apply(RecordCall(record=call_record))
        store.report(since=day_start, until=day_end, by="queue")
    """

    def apply(self, command: StoreCommand) -> None:
        """Execute one store command returned by the router. A call's record also drops it from the calls in
        flight (``waiting``): once recorded, no restart may take it back."""
        match command:
            case RecordCall():
                self.record_call(command.record)
                self.drop_waiting(command.record.uuid)
            case RecordOffer():
                self.record_offer(command.record)
            case RecordAgentState():
                self.record_agent_state(command.record)
            case RecordWrapUp():
                self.record_wrapup(command.record)
            case RecordTrace():
                self.save_trace(command.call_uuid, command.trace)
            case SaveWaiting():
                self.save_waiting(command.call)
            case _:
                assert_never(command)

    @abc.abstractmethod
    def record_call(self, rec: CallRecord) -> None:
        """Keep the stay's final record; a second record for the same (uuid, stay) is ignored and logged."""

    @abc.abstractmethod
    def record_offer(self, rec: OfferRecord) -> None: ...

    @abc.abstractmethod
    def record_agent_state(self, rec: AgentStateRecord) -> None: ...

    @abc.abstractmethod
    def record_wrapup(self, rec: WrapUpRecord) -> None:
        """Complete the record of call ``rec.call_uuid`` with its wrap-up time: its last stay that ``rec.agent``
        answered, else its last stay (no record: nothing happens)."""

    @abc.abstractmethod
    def calls(
        self, *, since: float | None = None, until: float | None = None, queue: str | None = None
    ) -> list[CallRecord]:
        """Calls that entered in ``[since, until)``, oldest first (ties in recording order)."""

    @abc.abstractmethod
    def call(self, uuid: str, stay: int = 1) -> CallRecord | None:
        """The record of stay ``stay`` of channel ``uuid`` (its first by default)."""

    @abc.abstractmethod
    def stays(self, uuid: str) -> list[CallRecord]:
        """The records of every stay of channel ``uuid``, first stay first."""

    @abc.abstractmethod
    def offers(self, call_uuid: str | None = None) -> list[OfferRecord]:
        """Offers in order of ``offered_at`` (ties in recording order)."""

    @abc.abstractmethod
    def agent_states(self, agent: str | None = None, since: float | None = None) -> list[AgentStateRecord]:
        """State history in order of ``at`` (ties in recording order)."""

    @abc.abstractmethod
    def last_agent_states(self) -> dict[str, AgentStateRecord]:
        """The latest state of every agent ever recorded, to restore agents after a restart."""

    @abc.abstractmethod
    def save_waiting(self, call: WaitingCall) -> None:
        """Keep (or update) a call in flight."""

    @abc.abstractmethod
    def drop_waiting(self, uuid: str) -> None:
        """Forget a call in flight; unknown uuids are ignored."""

    @abc.abstractmethod
    def waiting(self) -> list[WaitingCall]:
        """Every call in flight, in order of ``entered_at`` (ties in first-save order)."""

    @abc.abstractmethod
    def save_trace(self, call_uuid: str, trace: dict[str, Any]) -> None:
        """Append one JSON-serialisable routing-decision step for ``fsrouter explain``."""

    @abc.abstractmethod
    def trace(self, call_uuid: str) -> list[dict[str, Any]]: ...

    def report(self, *, since: float, until: float, by: str = "queue") -> list[dict[str, Any]]:
        """One row per queue (or agent) for calls that entered in ``[since, until)``, counted as ``/metrics``
        counts them (``core/kpi.call_kpis``, with the thresholds each call's record kept: no rules file needed).

        Keys: the group (``queue``, where calls a route sent away before any queue are ``ROUTING_GROUP``; or
        ``agent``, where calls no agent took are ``None``; either listed last); one count per outcome in
        ``OUTCOMES``; ``offered`` (``docs/kpi.md``: not closed-hours calls, nor short abandons) and
        ``short_abandoned``; ``service_level``, ``asa_seconds``, ``aht_seconds``, ``abandon_rate``,
        ``overflow_rate`` (None when their denominator is 0); ``avg_wait_seconds`` and ``max_wait_seconds`` over
        every call; ``avg_talk_seconds``, ``avg_hold_seconds`` and ``avg_wrapup_seconds`` over answered calls
        (None when there are none).
        """
        _check_group(by)
        groups: dict[str | None, list[CallRecord]] = {}
        for rec in self.calls(since=since, until=until):
            key = getattr(rec, by)
            groups.setdefault(ROUTING_GROUP if by == "queue" and not key else key, []).append(rec)
        last = (None, ROUTING_GROUP)
        return [_summarize(by, key, groups[key]) for key in sorted(groups, key=lambda key: (key in last, key or ""))]

    @abc.abstractmethod
    def close(self) -> None: ...

    @staticmethod
    def _ignore_duplicate(rec: CallRecord) -> None:
        log.warning(
            "call %s already recorded for stay %d; ignoring another record (outcome %s)",
            rec.uuid,
            rec.stay,
            rec.outcome,
        )


def _check_group(by: str) -> None:
    if by not in REPORT_GROUPS:
        raise ValueError(f"report(by={by!r}): expected one of {', '.join(REPORT_GROUPS)}")


class MemoryCallStore(CallStore):
    """A ``CallStore`` in Python containers: nothing survives the process."""

    def __init__(self) -> None:
        self._calls: dict[tuple[str, int], CallRecord] = {}
        self._offers: list[OfferRecord] = []
        self._agent_states: list[AgentStateRecord] = []
        self._waiting: dict[str, WaitingCall] = {}
        self._traces: dict[str, list[str]] = {}

    def record_call(self, rec: CallRecord) -> None:
        if (rec.uuid, rec.stay) in self._calls:
            self._ignore_duplicate(rec)
            return
        self._calls[rec.uuid, rec.stay] = rec

    def record_offer(self, rec: OfferRecord) -> None:
        self._offers.append(rec)

    def record_agent_state(self, rec: AgentStateRecord) -> None:
        self._agent_states.append(rec)

    def record_wrapup(self, rec: WrapUpRecord) -> None:
        stays = self.stays(rec.call_uuid)
        if stays:
            call = max(stays, key=lambda stay: (stay.agent == rec.agent, stay.stay))
            self._calls[call.uuid, call.stay] = replace(call, wrapup_seconds=rec.seconds)

    def calls(
        self, *, since: float | None = None, until: float | None = None, queue: str | None = None
    ) -> list[CallRecord]:
        selected = (
            rec
            for rec in self._calls.values()
            if (since is None or rec.entered_at >= since)
            and (until is None or rec.entered_at < until)
            and (queue is None or rec.queue == queue)
        )
        return sorted(selected, key=lambda rec: rec.entered_at)

    def call(self, uuid: str, stay: int = 1) -> CallRecord | None:
        return self._calls.get((uuid, stay))

    def stays(self, uuid: str) -> list[CallRecord]:
        return sorted((rec for rec in self._calls.values() if rec.uuid == uuid), key=lambda rec: rec.stay)

    def offers(self, call_uuid: str | None = None) -> list[OfferRecord]:
        selected = (rec for rec in self._offers if call_uuid is None or rec.call_uuid == call_uuid)
        return sorted(selected, key=lambda rec: rec.offered_at)

    def agent_states(self, agent: str | None = None, since: float | None = None) -> list[AgentStateRecord]:
        selected = (
            rec
            for rec in self._agent_states
            if (agent is None or rec.agent == agent) and (since is None or rec.at >= since)
        )
        return sorted(selected, key=lambda rec: rec.at)

    def last_agent_states(self) -> dict[str, AgentStateRecord]:
        return {rec.agent: rec for rec in self.agent_states()}

    def save_waiting(self, call: WaitingCall) -> None:
        self._waiting[call.uuid] = call

    def drop_waiting(self, uuid: str) -> None:
        self._waiting.pop(uuid, None)

    def waiting(self) -> list[WaitingCall]:
        return sorted(self._waiting.values(), key=lambda row: row.entered_at)

    def save_trace(self, call_uuid: str, trace: dict[str, Any]) -> None:
        # Stored as JSON, as SQLite does, so that both reject the same traces and return copies.
        self._traces.setdefault(call_uuid, []).append(json.dumps(trace))

    def trace(self, call_uuid: str) -> list[dict[str, Any]]:
        return [json.loads(step) for step in self._traces.get(call_uuid, [])]

    def close(self) -> None:
        """Nothing to release."""


def _summarize(by: str, key: str | None, calls: list[CallRecord]) -> dict[str, Any]:
    kpis = call_kpis(calls)
    answered = [rec for rec in calls if rec.outcome == "answered"]
    waits = [rec.wait_seconds for rec in calls]
    row: dict[str, Any] = {by: key, **kpis.row()}
    row.update({outcome: sum(rec.outcome == outcome for rec in calls) for outcome in OUTCOMES})
    row["avg_wait_seconds"] = sum(waits) / len(waits)
    row["max_wait_seconds"] = max(waits)
    for part in ("talk", "hold", "wrapup"):
        seconds = [getattr(rec, f"{part}_seconds") for rec in answered]
        row[f"avg_{part}_seconds"] = sum(seconds) / len(seconds) if answered else None
    return row


# --- SQLite -------------------------------------------------------------------------------------------

Migration = Callable[[sqlite_utils.Database], None]


def _v1_finished_calls(db: sqlite_utils.Database) -> None:
    """Finished calls (with their wait and talk times, for reports), offers and agent-state history."""
    calls = db.table("calls").create(
        {
            "uuid": str,
            "node": str,
            "queue": str,
            "outcome": str,
            "entered_at": float,
            "ended_at": float,
            "agent": str,
            "answered_at": float,
            "caller_number": str,
            "destination": str,
            "hangup_cause": str,
            "offers": int,
            "wrapup_seconds": float,
            "wait_seconds": float,
            "talk_seconds": float,
        },
        pk="uuid",
        not_null=["node", "queue", "outcome", "entered_at", "ended_at", "wait_seconds", "talk_seconds"],
    )
    calls.create_index(["entered_at"])
    calls.create_index(["queue", "entered_at"])
    offers = db.table("offers").create(
        {
            "call_uuid": str,
            "leg_uuid": str,
            "agent": str,
            "queue": str,
            "offered_at": float,
            "ended_at": float,
            "result": str,
        },
        not_null=_OFFER_FIELDS,
    )
    offers.create_index(["call_uuid"])
    agent_states = db.table("agent_states").create(
        {"agent": str, "state": str, "at": float, "reason": str}, not_null=_AGENT_STATE_FIELDS
    )
    agent_states.create_index(["agent", "at"])


def _v2_restart_recovery(db: sqlite_utils.Database) -> None:
    """Live state persisted as it changes: waiting callers, and routing traces for ``fsrouter explain``."""
    db.table("waiting").create(
        {"uuid": str, "node": str, "queue": str, "entered_at": float, "priority": int, "data": str},
        pk="uuid",
        not_null=["node", "queue", "entered_at", "priority", "data"],
    )
    traces = db.table("traces").create({"call_uuid": str, "step": str}, not_null=["call_uuid", "step"])
    traces.create_index(["call_uuid"])


def _v3_hold_time(db: sqlite_utils.Database) -> None:
    """Hold time apart from talk time (calls recorded before this step had none measured: 0)."""
    db.table("calls").add_column("hold_seconds", float, not_null_default=0.0)


def _v4_waiting_without_priority(db: sqlite_utils.Database) -> None:
    """The calls in flight keep only what a restart uses (a caller's priority comes back from its park)."""
    db.table("waiting").transform(drop={"priority", "data"})


def _v5_call_thresholds(db: sqlite_utils.Database) -> None:
    """Each call keeps its queue's service-level and short-abandon thresholds, so that ``report`` counts it as
    ``/metrics`` did without the rules file (calls recorded before this step: NULL, the defaults 20 s and 0 s)."""
    calls = db.table("calls")
    calls.add_column("service_level_seconds", float)
    calls.add_column("short_abandon_seconds", float)


def _v6_stays(db: sqlite_utils.Database) -> None:
    """A record per stay of a channel, keyed by (uuid, stay): calls recorded before this step are first stays."""
    calls = db.table("calls")
    calls.add_column("stay", int, not_null_default=1)
    calls.add_column("previous_stay", int)
    calls.transform(pk=("uuid", "stay"))


MIGRATIONS: tuple[Migration, ...] = (
    _v1_finished_calls,
    _v2_restart_recovery,
    _v3_hold_time,
    _v4_waiting_without_priority,
    _v5_call_thresholds,
    _v6_stays,
)
"""Schema steps in order; step ``n`` (1-based) brings ``PRAGMA user_version`` from ``n - 1`` to ``n``.
Never edit a released step: append a new one."""

SCHEMA_VERSION = len(MIGRATIONS)

FAILING_BUSY_TIMEOUT = 0.05
"""Seconds a write waits for another process's lock once a write failed: a store locked for minutes (a backup,
a VACUUM) then holds the gevent hub this long per try, not the full ``busy_timeout``."""

MAX_PAGE_COUNT = 4_294_967_294
"""SQLite's own ceiling on ``PRAGMA max_page_count`` (a larger value is lowered to it): no limit."""


def _insert_sql(table: str, columns: Sequence[str], on_conflict: str = "") -> str:
    names = ", ".join(columns)
    values = ", ".join(f":{name}" for name in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({values}) {on_conflict}".rstrip()


# Only a second record of the same call is skipped (not, as with OR IGNORE, a record missing a field).
_INSERT_CALL = _insert_sql(
    "calls", (*_CALL_FIELDS, "wait_seconds", "talk_seconds"), on_conflict="ON CONFLICT (uuid, stay) DO NOTHING"
)
_INSERT_OFFER = _insert_sql("offers", _OFFER_FIELDS)
_INSERT_AGENT_STATE = _insert_sql("agent_states", _AGENT_STATE_FIELDS)
_INSERT_TRACE = _insert_sql("traces", ("call_uuid", "step"))
_SET_WRAPUP = (
    "UPDATE calls SET wrapup_seconds = :seconds WHERE rowid = (SELECT rowid FROM calls WHERE uuid = :uuid"
    " ORDER BY agent IS :agent DESC, stay DESC LIMIT 1)"
)
_WAITING_FIELDS = tuple(f.name for f in fields(WaitingCall))
_UPSERT_WAITING = _insert_sql(
    "waiting",
    _WAITING_FIELDS,
    on_conflict="ON CONFLICT (uuid) DO UPDATE SET node = excluded.node, queue = excluded.queue,"
    " entered_at = excluded.entered_at",
)

class SqliteCallStore(CallStore):
    """A ``CallStore`` in one SQLite file, created (mode 0600, with its directory) and migrated on open.

    ``busy_timeout`` (seconds) bounds how long a write waits for a lock held by another process; it blocks the
    whole gevent loop meanwhile, so it is short, and after a failed ``apply`` it is ``FAILING_BUSY_TIMEOUT`` until
    an ``apply`` succeeds. ``schema`` is for tests that build an older database.

    The file is followed by its path: before each write or read, a path that no longer names the open file
    (deleted, or replaced by another) is opened afresh, migrated, and written to from then on, with a warning.

    Example::

        store = SqliteCallStore(Path(state_dir) / "calls.db")
    """

    def __init__(
        self, path: str | Path, *, busy_timeout: float = 2.0, schema: Sequence[Migration] = MIGRATIONS
    ) -> None:
        self._path = Path(path)
        self._busy_timeout = busy_timeout
        self._schema = schema
        self._closed = False
        #: (device, inode) of the open file, or None while no file is open (a reopen failed)
        self._identity: tuple[int, int] | None = None
        self._open()

    def _open(self) -> None:
        """Open (creating it if need be) and migrate the file at the path; raises ``StoreUnavailable``."""
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"call store {self._path}: cannot create its directory: {exc}") from exc
        try:
            # sqlite creates files 0644 (its WAL and shared-memory files copy the database's mode): not for others
            os.close(os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise StoreUnavailable(f"call store {self._path}: cannot create the file: {exc}") from exc
        with self._translating("open"):
            connection = sqlite3.connect(self._path, timeout=self._busy_timeout)
            self._db = sqlite_utils.Database(connection, execute_plugins=False)
        try:
            with self._translating("open"):
                self._db.enable_wal()
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._migrate(self._schema)
        except StoreError:
            self._db.close()
            raise
        self._identity = _identity_of(self._path)
        self._sidecars = {sidecar: _identity_of(sidecar) for sidecar in self._sidecar_paths()}
        self._waiting_briefly = False

    def _sidecar_paths(self) -> list[Path]:
        """The WAL and shared-memory files SQLite keeps beside the file."""
        return [self._path.with_name(self._path.name + suffix) for suffix in ("-wal", "-shm")]

    def _follow_path(self) -> None:
        """Reopen the file at the path if it is no longer the file open (deleted or replaced: writing on would
        go to a file nobody will read again); raises ``StoreUnavailable`` if it cannot, and tries again next
        time. Inside ``apply``'s transaction there is nothing to do: it was checked as the transaction began.

        SQLite leaves the old file's WAL and shared-memory files at the path when the file was moved away (it
        does not checkpoint a moved file): they are removed first, or the new file would be read through them."""
        if self._closed or (self._identity is not None and self._db.conn.in_transaction):
            return
        if self._identity is not None and _identity_of(self._path) == self._identity:
            return
        if self._identity is not None:
            self._identity = None
            self._db.close()
        try:
            for sidecar, identity in self._sidecars.items():
                if identity is not None and _identity_of(sidecar) == identity:
                    sidecar.unlink()
        except OSError as exc:
            raise StoreUnavailable(f"call store {self._path}: cannot remove the old file's WAL: {exc}") from exc
        self._open()
        log.warning(
            "call store %s: the file was deleted or replaced under fsrouter; opened a new one at that path "
            "(what was written before stays in the old file)",
            self._path,
        )

    @property
    def schema_version(self) -> int:
        with self._translating("read the schema version"):
            version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        return version

    def _migrate(self, schema: Sequence[Migration]) -> None:
        current = self.schema_version
        if current > len(schema):
            raise StoreUnavailable(
                f"call store {self._path}: schema version {current} is newer than this fsrouter "
                f"knows ({len(schema)}); upgrade fsrouter or use another file"
            )
        for version, step in enumerate(schema[current:], start=current + 1):
            with self._translating(f"migrate to schema version {version}"), self._db.atomic():
                step(self._db)
                self._db.execute(f"PRAGMA user_version = {version}")
            log.info("call store %s: migrated to schema version %d", self._path, version)

    @contextlib.contextmanager
    def _translating(self, action: str) -> Iterator[None]:
        """Turn sqlite errors into errors naming the file and what was being done: ``StoreError`` when the
        statement itself was refused (a constraint, a value sqlite cannot take), ``StoreUnavailable`` otherwise
        (locked, disk full, I/O error, not a database, closed)."""
        try:
            yield
        except (sqlite3.IntegrityError, sqlite3.InterfaceError) as exc:
            raise StoreError(f"call store {self._path}: cannot {action}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"call store {self._path}: cannot {action}: {exc}") from exc

    def _set_busy_timeout(self, *, failing: bool) -> None:
        """Wait ``FAILING_BUSY_TIMEOUT`` for a lock while writes fail, ``busy_timeout`` otherwise."""
        if not self._closed and failing != self._waiting_briefly:
            seconds = FAILING_BUSY_TIMEOUT if failing else self._busy_timeout
            self._db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
            self._waiting_briefly = failing

    def apply(self, command: StoreCommand) -> None:
        """``CallStore.apply`` in one transaction: a command (a call's record and its removal from the calls in
        flight) is written whole or not at all. Raises ``StoreUnavailable`` when it may succeed later."""
        self._follow_path()
        try:
            with self._translating(f"write {type(command).__name__}"), self._db.atomic():
                super().apply(command)
        except StoreUnavailable:
            self._set_busy_timeout(failing=True)
            raise
        self._set_busy_timeout(failing=False)

    def _write(self, action: str, sql: str, params: Mapping[str, Any]) -> int:
        """Run one write statement (committed at once, or with the transaction of ``apply``) and return how many
        rows it changed."""
        self._follow_path()
        with self._translating(action):
            return self._db.execute(sql, dict(params)).rowcount

    def _read(self, action: str, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self._follow_path()
        with self._translating(action):
            return list(self._db.query(sql, list(params)))

    def limit_size(self, pages: int | None) -> None:
        """Test hook for a full disk: let the file grow by at most ``pages`` more pages (``PRAGMA
        max_page_count``, on this connection only; a write that needs more fails as on a full disk), or lift the
        limit (``None``)."""
        with self._translating("limit its size"):
            current: int = self._db.execute("PRAGMA page_count").fetchone()[0]
            cap = MAX_PAGE_COUNT if pages is None else current + pages
            self._db.execute(f"PRAGMA max_page_count = {cap}")

    def record_call(self, rec: CallRecord) -> None:
        params = {name: getattr(rec, name) for name in _CALL_FIELDS}
        params.update(wait_seconds=rec.wait_seconds, talk_seconds=rec.talk_seconds)
        if self._write(f"record call {rec.uuid}", _INSERT_CALL, params) == 0:
            self._ignore_duplicate(rec)

    def record_offer(self, rec: OfferRecord) -> None:
        params = {name: getattr(rec, name) for name in _OFFER_FIELDS}
        self._write(f"record an offer of call {rec.call_uuid}", _INSERT_OFFER, params)

    def record_agent_state(self, rec: AgentStateRecord) -> None:
        params = {name: getattr(rec, name) for name in _AGENT_STATE_FIELDS}
        self._write(f"record a state of agent {rec.agent}", _INSERT_AGENT_STATE, params)

    def record_wrapup(self, rec: WrapUpRecord) -> None:
        params = {"uuid": rec.call_uuid, "agent": rec.agent, "seconds": rec.seconds}
        self._write(f"record the wrap-up of call {rec.call_uuid}", _SET_WRAPUP, params)

    def calls(
        self, *, since: float | None = None, until: float | None = None, queue: str | None = None
    ) -> list[CallRecord]:
        where, params = _where(("entered_at >= ?", since), ("entered_at < ?", until), ("queue = ?", queue))
        rows = self._read("read calls", f"SELECT * FROM calls {where} ORDER BY entered_at, rowid", params)
        return [_call_record(row) for row in rows]

    def call(self, uuid: str, stay: int = 1) -> CallRecord | None:
        rows = self._read(f"read call {uuid}", "SELECT * FROM calls WHERE uuid = ? AND stay = ?", [uuid, stay])
        return _call_record(rows[0]) if rows else None

    def stays(self, uuid: str) -> list[CallRecord]:
        rows = self._read(f"read the stays of call {uuid}", "SELECT * FROM calls WHERE uuid = ? ORDER BY stay", [uuid])
        return [_call_record(row) for row in rows]

    def offers(self, call_uuid: str | None = None) -> list[OfferRecord]:
        where, params = _where(("call_uuid = ?", call_uuid))
        rows = self._read("read offers", f"SELECT * FROM offers {where} ORDER BY offered_at, rowid", params)
        return [OfferRecord(**row) for row in rows]

    def agent_states(self, agent: str | None = None, since: float | None = None) -> list[AgentStateRecord]:
        where, params = _where(("agent = ?", agent), ("at >= ?", since))
        sql = f"SELECT * FROM agent_states {where} ORDER BY at, rowid"
        rows = self._read("read agent states", sql, params)
        return [AgentStateRecord(**row) for row in rows]

    def last_agent_states(self) -> dict[str, AgentStateRecord]:
        rows = self._read(
            "read the last agent states",
            "SELECT * FROM agent_states AS latest WHERE rowid = (SELECT rowid FROM agent_states"
            " WHERE agent = latest.agent ORDER BY at DESC, rowid DESC LIMIT 1) ORDER BY agent",
        )
        return {row["agent"]: AgentStateRecord(**row) for row in rows}

    def save_waiting(self, call: WaitingCall) -> None:
        params = {name: getattr(call, name) for name in _WAITING_FIELDS}
        self._write(f"save call in flight {call.uuid}", _UPSERT_WAITING, params)

    def drop_waiting(self, uuid: str) -> None:
        self._write(f"drop call in flight {uuid}", "DELETE FROM waiting WHERE uuid = :uuid", {"uuid": uuid})

    def waiting(self) -> list[WaitingCall]:
        rows = self._read("read the calls in flight", "SELECT * FROM waiting ORDER BY entered_at, rowid")
        return [WaitingCall(**row) for row in rows]

    def save_trace(self, call_uuid: str, trace: dict[str, Any]) -> None:
        params = {"call_uuid": call_uuid, "step": json.dumps(trace)}
        self._write(f"save a trace of call {call_uuid}", _INSERT_TRACE, params)

    def trace(self, call_uuid: str) -> list[dict[str, Any]]:
        rows = self._read(
            f"read the trace of call {call_uuid}",
            "SELECT step FROM traces WHERE call_uuid = ? ORDER BY rowid",
            [call_uuid],
        )
        return [json.loads(row["step"]) for row in rows]

    def close(self) -> None:
        self._closed = True
        with self._translating("close"):
            self._db.close()


def _identity_of(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``, or ``None`` if there is none."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """A WHERE clause from ``(sql, value)`` pairs, leaving out those whose value is ``None``."""
    used = [(sql, value) for sql, value in conditions if value is not None]
    if not used:
        return "", []
    return "WHERE " + " AND ".join(sql for sql, _ in used), [value for _, value in used]


def _call_record(row: Mapping[str, Any]) -> CallRecord:
    return CallRecord(**{name: row[name] for name in _CALL_FIELDS})
