"""The sd_notify helper against a real datagram socket, and the shipped unit file against systemd itself."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsrouter import systemd
from fsrouter.config.settings import Settings, setting_fields
from fsrouter.daemon import RELEASE_WAIT_COMMAND_TIMEOUTS

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "fsrouter.service"
ENV_FILE = REPO / "systemd" / "fsrouter.env"

#: every daemon setting, as its environment variable (the env example must document them all)
SETTING_VARIABLES = {f"FSROUTER_{name.upper()}" for name, _default, _meta in setting_fields()}
DRAIN_GRACE_SECONDS = Settings().grace
#: after the grace period, the agent legs are hung up and their kills waited for
RELEASE_SECONDS = RELEASE_WAIT_COMMAND_TIMEOUTS * Settings().command_timeout


@pytest.fixture(autouse=True)
def no_inherited_systemd_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test run itself may be under systemd (CI runners are); start every test from a clean slate."""
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "INVOCATION_ID", "JOURNAL_STREAM"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """What systemd does: a datagram socket whose path is handed over in NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


# --- sd_notify ----------------------------------------------------------------------------------------------


def test_without_notify_socket_nothing_is_sent_and_nothing_fails() -> None:
    assert systemd.notify("READY=1") is False
    assert systemd.ready() is False
    assert systemd.watchdog() is False


def test_a_socket_nobody_listens_on_is_reported_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert systemd.ready() is False


def test_each_helper_sends_its_state(notify_socket: socket.socket) -> None:
    assert systemd.ready() is True
    assert received(notify_socket) == "READY=1"
    systemd.stopping()
    assert received(notify_socket) == "STOPPING=1"
    systemd.watchdog()
    assert received(notify_socket) == "WATCHDOG=1"


def test_reloading_carries_the_monotonic_timestamp_systemd_253_wants(notify_socket: socket.socket) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    systemd.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000

    reloading, stamp = received(notify_socket).split("\n")
    assert reloading == "RELOADING=1"
    key, value = stamp.split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_status_is_kept_on_one_line(notify_socket: socket.socket) -> None:
    systemd.status("2 nodes connected\n14 calls waiting")
    assert received(notify_socket) == "STATUS=2 nodes connected 14 calls waiting"


def test_abstract_socket_names_start_with_at(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"fsrouter-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.ready() is True
        assert received(sock) == "READY=1"


# --- watchdog and environment -------------------------------------------------------------------------------


def test_watchdog_interval_is_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert systemd.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 30.0


@pytest.mark.parametrize(
    ("usec", "pid"),
    [
        (None, None),  # no WatchdogSec=
        ("30000000", "1"),  # meant for another process (we inherited it)
        ("0", None),
        ("thirty", None),
    ],
)
def test_no_watchdog_interval_when_it_is_not_ours(
    monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None
) -> None:
    if usec is not None:
        monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid is not None:
        monkeypatch.setenv("WATCHDOG_PID", pid)
    assert systemd.watchdog_interval() is None


@pytest.mark.parametrize("variable", ["INVOCATION_ID", "JOURNAL_STREAM"])
def test_under_systemd_when_it_left_its_marks(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    assert systemd.under_systemd() is False
    monkeypatch.setenv(variable, "8:123456")
    assert systemd.under_systemd() is True


# --- the unit file ------------------------------------------------------------------------------------------


def unit_settings(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` → values in order (unit files repeat keys, which configparser refuses)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return settings


def test_unit_keeps_the_promises_other_tools_rely_on() -> None:
    service = {key: values[-1] for key, values in unit_settings(UNIT).items()}
    assert service["Service.Type"] == "notify"
    assert service["Service.ExecStart"] == "/usr/bin/fsrouter run"
    assert service["Service.ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Service.StateDirectory"] == "fsrouter"  # $STATE_DIRECTORY/fsrouter.db
    assert service["Service.RuntimeDirectory"] == "fsrouter"  # $RUNTIME_DIRECTORY/fsrouter.sock
    assert service["Service.UMask"] == "0007"  # the control socket and the DB stay out of reach of others
    assert service["Service.EnvironmentFile"] == "-/etc/fsrouter/fsrouter.env"
    stop_timeout = int(service["Service.TimeoutStopSec"].removesuffix("s"))
    assert stop_timeout > DRAIN_GRACE_SECONDS + RELEASE_SECONDS, "systemd must not SIGKILL a drain or its clean-up"


def test_environment_file_documents_every_setting_and_sets_none() -> None:
    text = ENV_FILE.read_text()
    mentioned = set(re.findall(r"^#\s*(FSROUTER_[A-Z_]+)=", text, flags=re.MULTILINE))
    assert mentioned == SETTING_VARIABLES
    active = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert active == [], "the example must not override the daemon defaults until the operator says so"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit_and_rates_it_well_hardened(tmp_path: Path) -> None:
    # `verify` refuses a unit whose ExecStart binary does not exist, and /usr/bin/fsrouter is where a
    # package installs it, not where this checkout lives: verify a copy that starts this venv's Python
    # instead. Nothing else in the unit changes.
    unit = tmp_path / "fsrouter.service"
    unit.write_text(
        UNIT.read_text().replace("ExecStart=/usr/bin/fsrouter run", f"ExecStart={sys.executable} -m fsrouter run")
    )
    assert f"ExecStart={sys.executable}" in unit.read_text()

    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert verify.returncode == 0, verify.stderr
    assert unit.name not in verify.stderr, verify.stderr  # no warning about our file (unknown keys, typos)

    # Exposure 0.0 (locked down) … 10.0 (unprotected); up to 2.0 is rated "OK" by systemd-analyze.
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert security.returncode == 0, security.stdout + security.stderr
