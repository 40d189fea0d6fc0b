"""What systemd hears from ``fsrouter run`` (Type=notify, WatchdogSec=): READY only once FreeSWITCH is
reached, RELOADING…READY around a SIGHUP, WATCHDOG pings while it runs, STOPPING on SIGTERM."""

from __future__ import annotations

import signal
import socket as stdlib_socket
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest
from gevent import socket

from fsrouter.sim import Simulator
from tests.e2e.conftest import write_rules
from tests.ops.conftest import DaemonFactory

WATCHDOG_USEC = 1_000_000  # the daemon pings every half period: 0.5 s


class NotifySocket:
    """systemd's side of sd_notify: a datagram socket whose path goes into NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[str] = []
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(path))
        self._reader = gevent.spawn(self._read)

    def _read(self) -> None:
        while True:
            self.messages.append(self._socket.recv(4096).decode())

    def close(self) -> None:
        self._reader.kill()
        self._socket.close()

    def states(self) -> list[str]:
        """Each message's first assignment (``RELOADING=1`` comes with ``MONOTONIC_USEC=…``)."""
        return [message.splitlines()[0] for message in self.messages]

    def lifecycle(self) -> list[str]:
        """The states without the watchdog pings, repeats collapsed (stop() repeats STOPPING=1 after drain)."""
        collapsed: list[str] = []
        for state in self.states():
            if state != "WATCHDOG=1" and (not collapsed or collapsed[-1] != state):
                collapsed.append(state)
        return collapsed


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    listener = NotifySocket(tmp_path / "notify")
    yield listener
    listener.close()


def unused_port() -> int:
    """A loopback port nothing listens on yet (the simulator takes it later)."""
    with stdlib_socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_systemd_hears_ready_reloading_watchdog_and_stopping(
    daemon_process: DaemonFactory, notify_socket: NotifySocket, tmp_path: Path
) -> None:
    port = unused_port()
    freeswitch = Simulator(hostname="late", seed=1)
    daemon = daemon_process(
        write_rules(tmp_path / "rules.yaml", ["1000"]),
        env={"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": str(WATCHDOG_USEC)},
        esl_port=port,
        wait=False,
    )
    try:
        # up and answering the CLI, but FreeSWITCH is not there yet: systemd must not hear READY
        assert Simulator.wait_until(lambda: daemon.status() is not None, timeout=20), daemon.log_text()
        assert daemon.cli_json("status")["nodes"] == {f"127.0.0.1:{port}": False}
        assert "READY=1" not in notify_socket.states()

        freeswitch.start(port=port)
        assert freeswitch.wait_until(lambda: "READY=1" in notify_socket.states(), timeout=15), daemon.log_text()
        assert daemon.connected()
        pings_before_reload = notify_socket.states().count("WATCHDOG=1")
        assert freeswitch.wait_until(
            lambda: notify_socket.states().count("WATCHDOG=1") >= pings_before_reload + 2, timeout=5
        )

        daemon.send(signal.SIGHUP)
        assert freeswitch.wait_until(lambda: notify_socket.lifecycle()[-2:] == ["RELOADING=1", "READY=1"], timeout=5)

        daemon.send(signal.SIGTERM)
        assert daemon.wait_exit(timeout=15) == 0, daemon.log_text()
    finally:
        freeswitch.stop()

    assert freeswitch.wait_until(lambda: notify_socket.states()[-1:] == ["STOPPING=1"], timeout=2)
    assert notify_socket.lifecycle() == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]
    reloading = next(message for message in notify_socket.messages if message.startswith("RELOADING=1"))
    assert reloading.splitlines()[1].startswith("MONOTONIC_USEC=")
    states = notify_socket.states()
    assert "WATCHDOG=1" in states[states.index("READY=1") : states.index("STOPPING=1")]
