"""One fsrouter process per store: the lock is refused to a second process, and a killed holder blocks nobody."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsrouter.adapters.instance_lock import FileInstanceLock
from fsrouter.errors import InstanceLocked

#: a process that takes the lock on the store in argv[1], says so, and holds it until killed
_HOLDER = textwrap.dedent(
    """\
    import sys, time
    from fsrouter.adapters.instance_lock import FileInstanceLock
    lock = FileInstanceLock(sys.argv[1])  # kept: the lock lives as long as its open file
    lock.acquire()
    print("held", flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "fsrouter.db")


@pytest.fixture
def holder(db: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock on ``db``; killed at the end if the test did not kill it."""
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, db], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    yield process
    process.kill()
    process.wait(timeout=10)


def test_the_lock_file_beside_the_store_names_its_holder_until_released(db: str) -> None:
    lock = FileInstanceLock(db)

    lock.acquire()
    assert (lock.path, Path(lock.path).read_text()) == (f"{db}.lock", f"{os.getpid()}\n")
    assert lock.holder() == os.getpid()

    lock.release()
    assert lock.holder() is None
    lock.release()  # releasing a lock not held does nothing


def test_a_second_process_is_refused_with_the_holders_pid(db: str, holder: subprocess.Popen[str]) -> None:
    lock = FileInstanceLock(db)

    with pytest.raises(InstanceLocked) as refused:
        lock.acquire()

    assert refused.value.pid == holder.pid
    assert str(refused.value) == (
        f"the store {db} is in use by another fsrouter process (pid {holder.pid}); not starting"
    )
    assert lock.holder() == holder.pid


def test_a_killed_holder_leaves_a_stale_file_that_blocks_nobody(db: str, holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    assert Path(f"{db}.lock").read_text() == f"{holder.pid}\n"  # what kill -9 leaves behind

    lock = FileInstanceLock(db)
    assert lock.holder() is None
    lock.acquire()

    assert Path(lock.path).read_text() == f"{os.getpid()}\n"
    lock.release()


def test_two_locks_in_one_process_exclude_each_other_like_two_processes(db: str) -> None:
    """flock belongs to the open file, not the process: two daemons built in one test process cannot share a
    store either."""
    first, second = FileInstanceLock(db), FileInstanceLock(db)
    first.acquire()

    with pytest.raises(InstanceLocked) as refused:
        second.acquire()

    assert refused.value.pid == os.getpid()
    first.release()
    second.acquire()
    second.release()
