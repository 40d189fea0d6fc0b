"""A core loop that dies stops ``fsrouter run`` with a non-zero exit status (systemd restarts it), instead of
leaving a daemon that answers ``status`` and scrapes but routes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import write_rules

#: ``fsrouter run`` whose core loop hits a bug outside the router's per-event protection on its first event
RUN_WITH_A_BROKEN_DISPATCH = """
import sys
from fsrouter import daemon
from fsrouter.cli import main

def broken_dispatch(self, commands):
    raise RuntimeError("a bug while handing out commands")

daemon.Daemon._dispatch = broken_dispatch
main(sys.argv[1:], prog_name="fsrouter")
"""


def test_a_core_loop_that_dies_makes_fsrouter_run_exit_non_zero_with_the_cause(tmp_path: Path) -> None:
    command = [
        sys.executable, "-c", RUN_WITH_A_BROKEN_DISPATCH, "run",
        "--esl", "127.0.0.1:1",  # nothing listens: the core loop does not need FreeSWITCH to die
        "--rules", str(write_rules(tmp_path / "rules.yaml", ["1000"])),
        "--db", str(tmp_path / "fsrouter.db"),
        "--control-socket", str(tmp_path / "fsrouter.sock"),
        "--metrics-listen", "127.0.0.1:0",
    ]  # fmt: skip

    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)

    assert result.returncode == 1, result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("fsrouter: the core loop ended, nothing was routed any more: RuntimeError(")
    assert "a bug while handing out commands" in last_line
    assert "fsrouter stopped" in result.stderr
