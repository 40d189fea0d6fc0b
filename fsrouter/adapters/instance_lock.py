"""One fsrouter process per store: the daemon holds an ``InstanceLock`` for as long as it routes on its store.

Two daemons on one store fight over every caller and agent (issue 11: 2 of 4 calls never bridged, 100+ agent
legs originated in 20 s), so the second one refuses to start (``InstanceLocked``, naming the first one's pid).

``InstanceLock`` is the port; ``FileInstanceLock`` is the implementation for a SQLite store: an OS advisory lock
(``flock(2)``) on a file beside the database. The kernel drops the lock when the holding process ends, however it
ends (``kill -9`` included), so a crashed daemon never blocks its own restart: a lock file left behind is only a
file, and its stale pid is overwritten by the next holder.

When the store becomes a shared database (active/standby daemons on PostgreSQL), the same port becomes a lease: a
row naming the holder and an expiry time, taken with a conditional write in ``acquire``, renewed by the holder
before it expires, taken over by a standby once it has expired, and deleted by ``release``; ``holder`` reads the
row. The kernel's "the holder died" then becomes "the lease expired".
"""

from __future__ import annotations

import fcntl
import os
from typing import IO, Protocol

from fsrouter.errors import InstanceLocked, StoreError


class InstanceLock(Protocol):
    """The right to route on one store, held by one process at a time."""

    def acquire(self) -> None:
        """Take the lock for this process, or raise InstanceLocked (never waits)."""

    def release(self) -> None:
        """Give the lock up; doing so when it is not held does nothing."""

    def holder(self) -> int | None:
        """The pid of the process that holds the lock, or None when free or unreadable."""


class FileInstanceLock:
    """``flock(2)`` on ``<db>.lock``, which holds the holder's pid in decimal (module docstring).

    The lock belongs to the open file, not to the process: it lasts while this object is kept (a lock object
    garbage-collected closes its file and drops the lock), and two objects in one process exclude each other.

    >>> lock = FileInstanceLock("/var/lib/fsrouter/fsrouter.db")
    >>> lock.acquire()  # raises InstanceLocked while another process holds /var/lib/fsrouter/fsrouter.db.lock
    """

    def __init__(self, db: str) -> None:
        self.db = db
        self.path = f"{db}.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        if self._file is not None:
            return
        # never unlinked: a process that opened the old file and one that created a new one would both "hold" it
        try:
            lock_file = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644), "r+")
        except OSError as exc:
            raise StoreError(f"call store {self.db}: cannot open its lock file {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise InstanceLocked(self.db, self.holder()) from None
        except BaseException:
            lock_file.close()
            raise
        lock_file.truncate(0)
        lock_file.write(f"{os.getpid()}\n")
        lock_file.flush()
        self._file = lock_file

    def release(self) -> None:
        lock_file, self._file = self._file, None
        if lock_file is None:
            return
        lock_file.truncate(0)
        lock_file.close()  # closing the only descriptor drops the flock

    def holder(self) -> int | None:
        """The pid written in the lock file by the process that holds it; None when nobody does."""
        try:
            with open(self.path) as lock_file:
                if _free(lock_file):
                    return None
                text = lock_file.read().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None


def _free(lock_file: IO[str]) -> bool:
    """Whether nobody holds the flock on ``lock_file`` (a shared lock is taken and dropped at once to tell)."""
    try:
        fcntl.flock(lock_file, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(lock_file, fcntl.LOCK_UN)
    return True
