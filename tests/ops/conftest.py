"""The real daemon as a subprocess (``python -m fsrouter run``) against the simulator running in this process.

Everything here cooperates with the gevent hub the simulator lives in: the daemon is a
``gevent.subprocess`` child, the CLI runs in-process through click's ``CliRunner`` (its control client uses
gevent sockets), and every wait is ``Simulator.wait_until`` with a bounded timeout.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import gevent.subprocess
import pytest
from click.testing import CliRunner, Result

from fsrouter.cli import main
from fsrouter.control import ControlClient
from fsrouter.errors import ControlError
from fsrouter.sim import Simulator
from tests.e2e.conftest import sim  # noqa: F401  (the fixture: a simulator on an ephemeral port)

#: variables a test run may itself have inherited (CI under systemd, a developer's FSROUTER_* settings)
_INHERITED = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "INVOCATION_ID", "JOURNAL_STREAM")

STARTUP_TIMEOUT = 20.0


@dataclass
class DaemonProcess:
    """One ``fsrouter run`` child, its files, and the CLI pointed at its control socket."""

    process: gevent.subprocess.Popen
    control_socket: Path
    rules: Path
    db: Path
    log: Path

    def cli(self, *args: str) -> Result:
        """``fsrouter ARGS --control-socket SOCKET``, run in this process."""
        return CliRunner().invoke(main, [*args, "--control-socket", str(self.control_socket)])

    def cli_json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code == 0, (args, result.output, self.log_text())
        return json.loads(result.stdout)

    def status(self) -> dict[str, Any] | None:
        """The daemon's status, or ``None`` while its control socket does not answer."""
        try:
            status: dict[str, Any] = ControlClient(str(self.control_socket), timeout=2.0).request("status")
        except ControlError:
            return None
        return status

    def connected(self) -> bool:
        status = self.status()
        return status is not None and bool(status["nodes"]) and all(status["nodes"].values())

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float = 15.0) -> int | None:
        """The exit code, or ``None`` if the daemon is still running after ``timeout`` seconds."""
        try:
            return int(self.process.wait(timeout=timeout))
        except gevent.subprocess.TimeoutExpired:
            return None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


class DaemonFactory(Protocol):
    def __call__(
        self,
        rules: Path,
        *,
        env: dict[str, str] | None = None,
        esl_port: int | None = None,
        wait: bool = True,
        args: Sequence[str] = (),
    ) -> DaemonProcess: ...


@pytest.fixture
def daemon_process(sim: Simulator, tmp_path: Path) -> Iterator[DaemonFactory]:  # noqa: F811
    """Start ``fsrouter run`` children; each is killed at the end of the test if it is still running."""
    started: list[DaemonProcess] = []

    def start(
        rules: Path,
        *,
        env: dict[str, str] | None = None,
        esl_port: int | None = None,
        wait: bool = True,
        args: Sequence[str] = (),
    ) -> DaemonProcess:
        """``args`` come last on the command line, so they override the defaults here (``--grace 0.5``)."""
        workdir = tmp_path / f"daemon{len(started)}"
        workdir.mkdir()
        daemon_files = {"control_socket": workdir / "fsrouter.sock", "db": workdir / "fsrouter.db"}
        log = workdir / "daemon.log"
        command = [
            sys.executable, "-m", "fsrouter", "run",
            "--esl", f"127.0.0.1:{esl_port or sim.port}",
            "--rules", str(rules),
            "--db", str(daemon_files["db"]),
            "--control-socket", str(daemon_files["control_socket"]),
            "--metrics-listen", "127.0.0.1:0",
            "--tick", "0.05",
            "--grace", "10",
            "--log-level", "info",
            *args,
        ]  # fmt: skip
        child_env = {k: v for k, v in os.environ.items() if k not in _INHERITED and not k.startswith("FSROUTER_")}
        with log.open("wb") as log_file:
            process = gevent.subprocess.Popen(
                command, env={**child_env, **(env or {})}, stdout=log_file, stderr=gevent.subprocess.STDOUT
            )
        daemon = DaemonProcess(process=process, rules=rules, log=log, **daemon_files)
        started.append(daemon)
        if wait:
            assert sim.wait_until(daemon.connected, timeout=STARTUP_TIMEOUT, interval=0.05), daemon.log_text()
        return daemon

    yield start
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.send(signal.SIGKILL)
            daemon.process.wait(timeout=10)
