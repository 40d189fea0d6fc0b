"""StoreWriter: a store that fails on demand, a fake clock, and what was written, in which order."""

from __future__ import annotations

import logging

import pytest

from fsrouter.adapters.store import MemoryCallStore
from fsrouter.adapters.store_writer import StoreWriter
from fsrouter.core.commands import RecordCall, RecordTrace, SaveWaiting, StoreCommand
from fsrouter.errors import StoreError, StoreUnavailable
from tests.adapters.test_store_contract import T0, make_call, waiting

WRITER_LOGGER = "fsrouter.adapters.store_writer"


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FailingStore(MemoryCallStore):
    """A memory store whose ``apply`` raises ``error`` while it is set (writing nothing), and takes
    ``seconds_per_write`` of the clock for each command it writes."""

    def __init__(self, clock: Clock, seconds_per_write: float = 0.0) -> None:
        super().__init__()
        self.clock = clock
        self.seconds_per_write = seconds_per_write
        self.error: StoreError | None = None
        self.tries = 0
        self.written: list[StoreCommand] = []

    def apply(self, command: StoreCommand) -> None:
        self.tries += 1
        if self.error is not None:
            raise self.error
        super().apply(command)
        self.written.append(command)
        self.clock.now += self.seconds_per_write


LOCKED = StoreUnavailable("call store calls.db: cannot write RecordCall: database is locked")


def a_call_story(uuid: str) -> list[StoreCommand]:
    """What the router hands the store for one call: kept in flight, a decision, then its record."""
    return [
        SaveWaiting(call=waiting(uuid, T0)),
        RecordTrace(call_uuid=uuid, trace={"kind": "offer"}),
        RecordCall(record=make_call(uuid)),
    ]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> FailingStore:
    return FailingStore(clock)


def test_commands_are_written_at_once_while_the_store_takes_them(store: FailingStore, clock: Clock) -> None:
    writer = StoreWriter(store, clock=clock)
    for command in a_call_story("c1"):
        writer.apply(command)
    assert store.written == a_call_story("c1")
    assert (writer.backlog, writer.failing, writer.failures, writer.dropped) == (0, False, 0, 0)


def test_a_failing_store_delays_the_commands_in_order_and_loses_none(store: FailingStore, clock: Clock) -> None:
    writer = StoreWriter(store, clock=clock, retry_interval=1.0)
    store.error = LOCKED
    for uuid in ("c1", "c2", "c3"):
        for command in a_call_story(uuid):
            writer.apply(command)  # never raises: routing goes on
        clock.now += 0.4
    assert store.written == []
    assert (writer.backlog, writer.failing, writer.error) == (9, True, str(LOCKED))
    assert writer.failing_seconds() == pytest.approx(1.2)

    store.error = None
    writer.retry()

    assert store.written == [*a_call_story("c1"), *a_call_story("c2"), *a_call_story("c3")]
    assert store.waiting() == []  # each call's record came after its SaveWaiting, as the router said
    assert [rec.uuid for rec in store.calls()] == ["c1", "c2", "c3"]
    assert (writer.backlog, writer.failing, writer.error, writer.dropped) == (0, False, None, 0)
    assert writer.failing_seconds() is None


def test_a_failing_store_is_tried_again_at_most_every_retry_interval(store: FailingStore, clock: Clock) -> None:
    writer = StoreWriter(store, clock=clock, retry_interval=1.0)
    store.error = LOCKED
    for _ in range(10):
        writer.apply(RecordTrace(call_uuid="c1", trace={}))
        writer.retry()
        clock.now += 0.09
    assert (store.tries, writer.failures) == (1, 1)
    clock.now = 1.0
    writer.retry()
    assert (store.tries, writer.failures) == (2, 2)


def test_the_failure_is_logged_once_with_its_cause_then_at_intervals_and_the_return_once(
    store: FailingStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    writer = StoreWriter(store, clock=clock, retry_interval=1.0, report_interval=60.0)
    store.error = LOCKED
    with caplog.at_level(logging.INFO, logger=WRITER_LOGGER):
        for _ in range(100):  # 150 s of calls, one every 1.5 s
            writer.apply(RecordTrace(call_uuid="c1", trace={}))
            clock.now += 1.5
        store.error = None
        writer.retry()
    lines = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert writer.failures == 100
    assert [level for level, _ in lines] == ["ERROR", "ERROR", "ERROR", "WARNING"]
    assert lines[0][1].startswith("call store failing, routing goes on") and str(LOCKED) in lines[0][1]
    assert lines[1][1].startswith("call store still failing after 60 s: 41 store commands waiting, 0 dropped")
    assert lines[2][1].startswith("call store still failing after 120 s")
    assert lines[3][1] == "call store back after 150.0 s: writing the 100 store commands that waited (0 dropped)"


def test_a_full_backlog_drops_new_commands_counts_them_and_says_so_once(
    store: FailingStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    writer = StoreWriter(store, clock=clock, limit=3)
    store.error = LOCKED
    commands = [RecordTrace(call_uuid=f"c{index}", trace={}) for index in range(5)]
    with caplog.at_level(logging.ERROR, logger=WRITER_LOGGER):
        for command in commands:
            writer.apply(command)
    assert (writer.backlog, writer.dropped) == (3, 2)
    assert sum("backlog full (3 store commands)" in record.getMessage() for record in caplog.records) == 1

    store.error = None
    clock.now += 1.0
    writer.retry()
    assert store.written == commands[:3]  # the oldest are kept: the store ends as if writing stopped there


def test_a_long_backlog_is_written_at_a_bounded_pace_behind_the_new_commands(clock: Clock) -> None:
    store = FailingStore(clock, seconds_per_write=0.0625)
    writer = StoreWriter(store, clock=clock, drain_budget=0.25)
    store.error = LOCKED
    backlog = [RecordTrace(call_uuid=f"c{index}", trace={}) for index in range(12)]
    for command in backlog:
        writer.apply(command)
    store.error = None
    clock.now += 1.0

    writer.retry()
    assert store.written == backlog[:4]  # 0.25 s of writing, then the hub is free again
    newer = RecordTrace(call_uuid="new", trace={})
    writer.apply(newer)
    assert store.written == backlog[:8]
    writer.retry()
    assert store.written == backlog
    writer.retry()
    assert store.written == [*backlog, newer]
    assert writer.backlog == 0


def test_a_command_the_store_refuses_is_dropped_and_counted_and_the_next_ones_written(
    store: FailingStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    writer = StoreWriter(store, clock=clock)
    store.error = StoreError("call store calls.db: cannot record call c1: NOT NULL constraint failed: calls.queue")
    with caplog.at_level(logging.ERROR, logger=WRITER_LOGGER):
        writer.apply(RecordCall(record=make_call("c1")))
    store.error = None
    writer.apply(RecordCall(record=make_call("c2")))
    assert [rec.uuid for rec in store.calls()] == ["c2"]
    assert (writer.dropped, writer.failing, writer.backlog) == (1, False, 0)
    assert "call store refused RecordCall, dropped: call store calls.db: cannot record call c1" in caplog.text


def test_close_writes_what_waits_whatever_the_pace(store: FailingStore, clock: Clock) -> None:
    writer = StoreWriter(store, clock=clock, retry_interval=60.0)
    store.error = LOCKED
    writer.apply(RecordCall(record=make_call("c1")))
    store.error = None
    writer.close()
    assert [rec.uuid for rec in store.calls()] == ["c1"]


def test_close_says_what_is_lost_when_the_store_still_fails(
    store: FailingStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    writer = StoreWriter(store, clock=clock)
    store.error = LOCKED
    writer.apply(RecordCall(record=make_call("c1")))
    writer.apply(RecordCall(record=make_call("c2")))
    with caplog.at_level(logging.ERROR, logger=WRITER_LOGGER):
        writer.close()
    assert f"2 store commands could not be written and are lost: {LOCKED}" in caplog.text
