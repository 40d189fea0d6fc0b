"""The control socket over a real UNIX socket: the protocol, its errors, and the socket file's life."""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from gevent import socket

from fsrouter.control import ControlClient, ControlServer
from fsrouter.errors import ConfigError, ControlError

NOBODY = 65534


class FakeDaemon:
    """Stands in for the daemon's handler: records who asked what, and answers a few commands."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any], int]] = []

    def handle(self, command: str, args: dict[str, Any], uid: int) -> Any:
        self.requests.append((command, args, uid))
        if command == "status":
            return {"queues": {"support": {"waiting": 2}}}
        if command == "agent":
            if args.get("agent") != "agent-1000":
                raise ConfigError(f"unknown agent {args.get('agent')!r}")
            return {"agent": "agent-1000", "state": args["action"]}
        if command == "reload":
            return {"version": 2}
        if command == "crash":
            raise RuntimeError("snapshot is inconsistent")
        if command == "unserialisable":
            return {"when": object()}
        raise ConfigError(f"unknown command {command!r}")


@pytest.fixture
def daemon() -> FakeDaemon:
    return FakeDaemon()


@pytest.fixture
def socket_path(tmp_path: Path) -> str:
    return str(tmp_path / "fsrouter.sock")


@pytest.fixture
def server(socket_path: str, daemon: FakeDaemon) -> Iterator[ControlServer]:
    control = ControlServer(socket_path, daemon.handle, mutating={"reload", "agent"})
    control.start()
    yield control
    control.stop()


def exchange_lines(path: str, *lines: bytes) -> list[dict[str, Any]]:
    """Speak the raw protocol: send lines on one connection, read one answer per line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock, sock.makefile("rb") as reader:
        sock.settimeout(5)
        sock.connect(path)
        answers = []
        for line in lines:
            sock.sendall(line)
            answers.append(json.loads(reader.readline()))
        return answers


def bind_and_abandon(path: str) -> None:
    """What a crashed daemon leaves behind: a socket file nobody listens on."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(path)


# --- requests and answers -----------------------------------------------------------------------------------


def test_a_request_gets_the_handlers_result_and_the_handler_sees_who_asked(
    server: ControlServer, daemon: FakeDaemon
) -> None:
    client = ControlClient(server.path)
    assert client.request("status") == {"queues": {"support": {"waiting": 2}}}
    assert client.request("agent", agent="agent-1000", action="break") == {
        "agent": "agent-1000",
        "state": "break",
    }
    assert daemon.requests == [
        ("status", {}, os.getuid()),
        ("agent", {"agent": "agent-1000", "action": "break"}, os.getuid()),
    ]


def test_several_requests_share_one_connection_and_args_may_be_omitted(server: ControlServer) -> None:
    answers = exchange_lines(
        server.path,
        b'{"command": "status"}\n',
        b'{"command": "reload", "args": {}}\n',
    )
    assert answers == [
        {"ok": True, "result": {"queues": {"support": {"waiting": 2}}}},
        {"ok": True, "result": {"version": 2}},
    ]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"status\n", "request is not valid JSON"),
        (b'["status"]\n', "request must be a JSON object"),
        (b'{"args": {}}\n', 'request needs a "command" string'),
        (b'{"command": "agent", "args": ["agent-1000"]}\n', '"args" must be a JSON object'),
        (b'{"command": "\xff"}\n', "request is not valid JSON"),
        (b'{"command": "agent", "args": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "request is not valid JSON"),
    ],
)
def test_a_malformed_request_gets_an_error_and_the_connection_stays_usable(
    server: ControlServer, line: bytes, error: str
) -> None:
    bad, good = exchange_lines(server.path, line, b'{"command": "reload"}\n')
    assert bad["ok"] is False
    assert bad["error"].startswith(error)
    assert good == {"ok": True, "result": {"version": 2}}


def test_a_refusal_from_the_daemon_reaches_the_client_as_one_line(server: ControlServer) -> None:
    with pytest.raises(ControlError, match=r"^unknown agent 'agent-9999'$"):
        ControlClient(server.path).request("agent", agent="agent-9999", action="login")


def test_a_request_without_an_argument_its_command_reads_is_refused_without_a_traceback(
    server: ControlServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="fsrouter.control"):
        (answer,) = exchange_lines(server.path, b'{"command": "agent", "args": {"agent": "agent-1000"}}\n')

    assert answer == {"ok": False, "error": 'agent needs "action" in "args"'}
    assert not [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]
    assert ControlClient(server.path).request("reload") == {"version": 2}


def test_a_handler_bug_is_answered_and_logged_with_its_traceback(
    server: ControlServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="fsrouter.control"):
        with pytest.raises(ControlError, match="^snapshot is inconsistent$"):
            ControlClient(server.path).request("crash")
        with pytest.raises(ControlError, match="not JSON serializable"):
            ControlClient(server.path).request("unserialisable")
    failures = [record for record in caplog.records if record.exc_info]
    assert [record.getMessage() for record in failures] == [
        f"control: crash from uid {os.getuid()} failed",
        f"control: unserialisable from uid {os.getuid()} failed",
    ]
    assert ControlClient(server.path).request("reload") == {"version": 2}  # the server survived both


def test_state_changes_are_audited_with_the_callers_uid(
    server: ControlServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="fsrouter.control"):
        client = ControlClient(server.path)
        client.request("status")
        client.request("reload")
        client.request("agent", agent="agent-1000", action="logout")
    audit = [record.getMessage() for record in caplog.records if "requested by" in record.getMessage()]
    assert audit == [
        f"control: reload {{}} requested by uid {os.getuid()}",
        f'control: agent {{"action": "logout", "agent": "agent-1000"}} requested by uid {os.getuid()}',
    ]


# --- what the client reports when it cannot get an answer ---------------------------------------------------


def test_no_socket_means_the_daemon_is_not_running(socket_path: str) -> None:
    with pytest.raises(ControlError, match="fsrouter is not running"):
        ControlClient(socket_path).request("status")


def test_a_socket_nobody_listens_on_means_the_daemon_is_not_running(socket_path: str) -> None:
    bind_and_abandon(socket_path)
    with pytest.raises(ControlError, match="fsrouter is not running"):
        ControlClient(socket_path).request("status")


def test_a_daemon_that_does_not_answer_times_out(socket_path: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wedged:
        wedged.bind(socket_path)
        wedged.listen(1)  # the kernel accepts the connection; nobody ever reads it
        with pytest.raises(ControlError, match=r"did not answer within 0.2 s"):
            ControlClient(socket_path, timeout=0.2).request("status")


@contextmanager
def locked_out_of(path: str) -> Iterator[None]:
    """Be someone the 0660 mode keeps out: as root, become nobody; otherwise take our own access away."""
    if os.geteuid() == 0:
        os.setegid(NOBODY)
        os.seteuid(NOBODY)
        try:
            yield
        finally:
            os.seteuid(0)
            os.setegid(0)
    else:
        os.chmod(path, 0)
        yield


def test_a_user_outside_the_socket_group_is_told_permission_denied(daemon: FakeDaemon) -> None:
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)  # only the socket's own mode may stand in the way
        path = os.path.join(directory, "fsrouter.sock")
        control = ControlServer(path, daemon.handle)
        control.start()
        try:
            with locked_out_of(path), pytest.raises(ControlError, match="permission denied"):
                ControlClient(path).request("status")
        finally:
            control.stop()
    assert daemon.requests == []


# --- the socket file ----------------------------------------------------------------------------------------


def test_the_socket_is_0660_while_serving_and_removed_on_stop(socket_path: str, daemon: FakeDaemon) -> None:
    control = ControlServer(socket_path, daemon.handle)
    control.start()
    mode = os.stat(socket_path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660
    control.stop()
    assert not os.path.exists(socket_path)
    with pytest.raises(ControlError, match="fsrouter is not running"):
        ControlClient(socket_path).request("status")


def test_a_stale_socket_left_by_a_crash_is_replaced(socket_path: str, daemon: FakeDaemon) -> None:
    bind_and_abandon(socket_path)
    control = ControlServer(socket_path, daemon.handle)
    control.start()
    try:
        assert ControlClient(socket_path).request("reload") == {"version": 2}
    finally:
        control.stop()


def test_a_second_daemon_does_not_steal_a_live_socket(server: ControlServer, daemon: FakeDaemon) -> None:
    with pytest.raises(ControlError, match="another fsrouter is already listening"):
        ControlServer(server.path, daemon.handle).start()
    assert ControlClient(server.path).request("reload") == {"version": 2}


def test_a_file_that_is_not_a_socket_is_never_deleted(socket_path: str, daemon: FakeDaemon) -> None:
    Path(socket_path).write_text("operator notes\n")
    with pytest.raises(ControlError, match="is not a socket"):
        ControlServer(socket_path, daemon.handle).start()
    assert Path(socket_path).read_text() == "operator notes\n"


def test_a_missing_directory_is_reported_clearly(tmp_path: Path, daemon: FakeDaemon) -> None:
    path = str(tmp_path / "no-such-dir" / "fsrouter.sock")
    with pytest.raises(ControlError, match=f"cannot listen on control socket {path}: No such file"):
        ControlServer(path, daemon.handle).start()
