"""One ``fsrouter run`` process per store (issue 11, item 3): a second one on the same ``--db`` exits at once naming
the first one's pid; a first one killed with ``kill -9`` does not block its restart."""

from __future__ import annotations

import signal
from pathlib import Path

from fsrouter.sim import Simulator
from tests.e2e.conftest import write_rules
from tests.ops.conftest import DaemonFactory


def test_a_second_daemon_on_the_same_store_exits_naming_the_first_ones_pid(
    sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path
) -> None:
    sim.add_agent("1000", answer_after=0.02)
    rules = write_rules(tmp_path / "rules.yaml", ["1000"])
    first = daemon_process(rules)

    second = daemon_process(rules, wait=False, args=("--db", str(first.db)))

    assert second.wait_exit(timeout=15) == 1, second.log_text()
    assert second.log_text() == (  # one line, no traceback, before any log line
        f"fsrouter: the store {first.db} is in use by another fsrouter process (pid {first.process.pid}); "
        "not starting\n"
    )
    # the first one routes on, its store untouched by the second
    assert first.connected()
    caller = sim.place_call(variables={"fsrouter_queue": "support"}, talk_time=0.05)
    assert sim.wait_until(lambda: sim.calls[caller].bridged_at is not None, timeout=10), first.log_text()


def test_a_daemon_killed_with_sigkill_is_restarted_on_its_store_at_once(
    sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules.yaml", ["1000"])
    first = daemon_process(rules)
    first.send(signal.SIGKILL)
    assert first.wait_exit() == -signal.SIGKILL
    assert Path(f"{first.db}.lock").read_text() == f"{first.process.pid}\n"  # the stale lock file kill -9 leaves

    restarted = daemon_process(rules, args=("--db", str(first.db)))

    assert restarted.connected()
    assert Path(f"{first.db}.lock").read_text() == f"{restarted.process.pid}\n"
