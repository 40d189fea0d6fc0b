"""The one writer of store commands: a call store that fails for a while is an outage of the store, not of routing.

The daemon's core loop hands every store command the router returns to ``StoreWriter.apply``. While the store
takes them, each is written at once, in order. When the store cannot (``StoreUnavailable``: another process holds
the write lock, the disk is full, the file is gone and cannot be made again), routing goes on from memory and the
commands wait here, in order, behind the first one that failed. The store is tried again at most every
``retry_interval`` seconds, on the next command or ``retry()`` (the daemon calls it after every event, ticks
included), and what waits is written oldest first, for at most ``drain_budget`` seconds per call, so that a long
backlog never holds the gevent hub.

Nothing is reordered, and nothing is lost while fewer than ``limit`` commands wait. Beyond that, new commands are
dropped and counted, so that the store ends as if fsrouter had stopped writing when the backlog filled. A command
the store refuses for itself (``StoreError``, a bug) is dropped, logged and counted too, rather than blocking
every command after it.

The failure is logged once with its cause, then every ``report_interval`` seconds while it lasts, and once more
when the store is back.

Example::

    writer = StoreWriter(SqliteCallStore(path))
    for command in store_commands:
        writer.apply(command)       # never raises StoreError
    writer.retry()                  # on every tick: writes what waits, at a bounded pace
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable

from fsrouter.adapters.store import CallStore
from fsrouter.core.commands import StoreCommand
from fsrouter.errors import StoreError, StoreUnavailable

log = logging.getLogger(__name__)

BACKLOG_LIMIT = 100_000
"""Store commands kept in memory while the store fails (a few hundred bytes each: tens of MB at the most)."""

RETRY_INTERVAL = 1.0
"""Seconds between two tries of a failing store."""

REPORT_INTERVAL = 60.0
"""Seconds between two log lines about a failure that goes on."""

DRAIN_BUDGET = 0.05
"""Seconds one call may spend writing the backlog once the store is back (the next event or tick goes on)."""


class StoreWriter:
    """Writes store commands through to ``store``, keeping them in order while it fails (module docstring).

    ``clock`` gives seconds (monotonic). ``failures`` counts the failed tries, ``dropped`` the commands never
    written; ``error`` is the cause of the failure going on, if any.
    """

    def __init__(
        self,
        store: CallStore,
        *,
        limit: int = BACKLOG_LIMIT,
        retry_interval: float = RETRY_INTERVAL,
        report_interval: float = REPORT_INTERVAL,
        drain_budget: float = DRAIN_BUDGET,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.limit = limit
        self.retry_interval = retry_interval
        self.report_interval = report_interval
        self.drain_budget = drain_budget
        self._clock = clock
        self._backlog: deque[StoreCommand] = deque()
        self.failures = 0
        self.dropped = 0
        self.error: str | None = None
        self._failing_since: float | None = None
        self._retry_at = 0.0
        self._report_at = 0.0
        self._overflowing = False

    @property
    def backlog(self) -> int:
        """Store commands waiting to be written."""
        return len(self._backlog)

    @property
    def failing(self) -> bool:
        """True from a failed try until a write succeeds."""
        return self._failing_since is not None

    def failing_seconds(self) -> float | None:
        """Seconds since the failure going on began, or ``None`` while the store takes writes."""
        return None if self._failing_since is None else self._clock() - self._failing_since

    def apply(self, command: StoreCommand) -> None:
        """Write ``command`` after those waiting, or keep it to write later; never raises ``StoreError``."""
        if len(self._backlog) < self.limit:
            self._backlog.append(command)
        else:
            self._overflow()
        self.retry()

    def retry(self) -> None:
        """Write what waits, oldest first, for up to ``drain_budget`` seconds; a failing store is tried at most
        every ``retry_interval`` seconds."""
        if self._backlog and self._clock() >= self._retry_at:
            self._drain(self.drain_budget)

    def close(self) -> None:
        """Try once more to write everything that waits, log what is lost if the store still fails, and close it."""
        self._drain(math.inf)
        if self._backlog:
            log.error(
                "call store: %d store commands could not be written and are lost: %s", len(self._backlog), self.error
            )
        self.store.close()

    def _drain(self, budget: float) -> None:
        deadline = self._clock() + budget
        while self._backlog:
            command = self._backlog[0]
            try:
                self.store.apply(command)
            except StoreUnavailable as exc:
                self._failed(exc)
                return
            except StoreError as exc:
                self.dropped += 1
                log.error("call store refused %s, dropped: %s", type(command).__name__, exc)
            else:
                if self._failing_since is not None:
                    self._recovered(self._failing_since)
            self._backlog.popleft()
            if self._clock() >= deadline:
                return

    def _failed(self, exc: StoreUnavailable) -> None:
        now = self._clock()
        self.failures += 1
        self.error = str(exc)
        self._retry_at = now + self.retry_interval
        if self._failing_since is None:
            self._failing_since = now
            self._report_at = now + self.report_interval
            log.error(
                "call store failing, routing goes on: store commands wait in memory (up to %d) and are written "
                "when it is back: %s",
                self.limit,
                exc,
            )
        elif now >= self._report_at:
            self._report_at = now + self.report_interval
            log.error(
                "call store still failing after %.0f s: %d store commands waiting, %d dropped: %s",
                now - self._failing_since,
                len(self._backlog),
                self.dropped,
                exc,
            )

    def _recovered(self, since: float) -> None:
        log.warning(
            "call store back after %.1f s: writing the %d store commands that waited (%d dropped)",
            self._clock() - since,
            len(self._backlog),
            self.dropped,
        )
        self._failing_since = None
        self.error = None
        self._retry_at = 0.0
        self._overflowing = False

    def _overflow(self) -> None:
        self.dropped += 1
        if not self._overflowing:
            self._overflowing = True
            log.error(
                "call store backlog full (%d store commands): new ones are dropped until the store is back "
                "(counted in fsrouter_store_commands_dropped_total)",
                self.limit,
            )
