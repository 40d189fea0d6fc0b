"""Shared helpers for the ESL tests: where the recorded fixture bytes are, and a tiny pure frame splitter.

The splitter is deliberately independent of greenswitch so the translation tests check ``translate`` against
the real bytes, not against greenswitch's (lossy) parser.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import gevent
import gevent.event
import gevent.queue
from gevent.server import StreamServer

from fsrouter.adapters.esl_translate import translate
from fsrouter.core.events import Event

INSTANCE = "test-host-0123abcd"
"""The fsrouter instance id (``--instance``) of the nodes the adapter tests build."""

_REPO = Path(__file__).resolve().parents[2]
_CANDIDATES = (_REPO / "tests" / "fixtures" / "esl", _REPO.parent / "shared" / "fixtures" / "esl")


def fixture_dir() -> Path:
    """The project's copy of the captures when present, else the shared originals."""
    for candidate in _CANDIDATES:
        if (candidate / "scenarios.json").is_file():
            return candidate
    raise FileNotFoundError(f"no ESL fixtures in {[str(c) for c in _CANDIDATES]}")


def fixture_bytes(relative: str) -> bytes:
    return (fixture_dir() / relative).read_bytes()


def plain_captures() -> list[str]:
    """Every recorded event-plain stream (the ESL scenarios', then the caller-side bridge races), as paths that
    ``fixture_bytes`` reads."""
    directory = fixture_dir()
    caller_side = sorted((directory.parent / "esl-caller" / "plain").glob("*.raw"))
    return [f"plain/{path.name}" for path in sorted((directory / "plain").glob("*.raw"))] + [
        f"../esl-caller/plain/{path.name}" for path in caller_side
    ]


def scenario(name: str) -> dict[str, Any]:
    scenarios: dict[str, Any] = json.loads((fixture_dir() / "scenarios.json").read_text())["scenarios"]
    return dict(scenarios[name])


def scenario_value(name: str, key: str) -> Any:
    """The first value of ``key`` among a scenario's steps (e.g. ``caller_uuid``)."""
    return next(step[key] for step in scenario(name)["steps"] if key in step)


@dataclass
class Frame:
    headers: dict[str, str]
    body: bytes = b""
    event_headers: dict[str, str] = field(default_factory=dict)
    event_body: str = ""


def split_frames(data: bytes) -> list[Frame]:
    """Cut an Event Socket byte stream into frames: headers up to a blank line, then Content-Length bytes."""
    frames: list[Frame] = []
    position = 0
    while position < len(data):
        end = data.index(b"\n\n", position)
        headers = _header_lines(data[position:end].decode(), decode_values=False)
        position = end + 2
        length = int(headers.get("Content-Length", "0"))
        body = data[position : position + length]
        position += length
        frame = Frame(headers=headers, body=body)
        if headers.get("Content-Type") == "text/event-plain":
            frame.event_headers, frame.event_body = parse_plain_event(body)
        frames.append(frame)
    return frames


def parse_plain_event(body: bytes) -> tuple[dict[str, str], str]:
    """A text/event-plain body: URL-encoded header lines, and an inner body when it has a Content-Length."""
    head, _, rest = body.partition(b"\n\n")
    headers = _header_lines(head.decode(), decode_values=True)
    inner_length = int(headers.get("Content-Length", "0"))
    return headers, rest[:inner_length].decode()


def _header_lines(block: str, *, decode_values: bool) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split("\n"):
        if not line:
            continue
        name, _, value = line.partition(": ")
        headers[name] = unquote(value) if decode_values else value
    return headers


def translated_events(relative: str, node: str = "fs1") -> list[Event]:
    """Every core event a recorded plain stream translates to, in order."""
    events = (
        translate(frame.event_headers, frame.event_body, node)
        for frame in split_frames(fixture_bytes(relative))
        if frame.event_headers
    )
    return [event for event in events if event is not None]


# --- a tiny loopback FreeSWITCH for the adapter tests ------------------------------------------------------


def plain_event_frame(headers: Mapping[str, str], body: str = "") -> bytes:
    """One text/event-plain frame as FreeSWITCH writes it (values URL-encoded, optional inner body)."""
    lines = "".join(f"{name}: {quote(value, safe='')}\n" for name, value in headers.items())
    inner = f"{lines}Content-Length: {len(body.encode())}\n\n{body}" if body else f"{lines}\n"
    encoded = inner.encode()
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n%s" % (len(encoded), encoded)


def api_response_frame(body: str) -> bytes:
    encoded = body.encode()
    return b"Content-Type: api/response\nContent-Length: %d\n\n%s" % (len(encoded), encoded)


def command_reply_frame(reply_text: str, **extra: str) -> bytes:
    extra_lines = "".join(f"{name.replace('_', '-')}: {value}\n" for name, value in extra.items())
    return f"Content-Type: command/reply\nReply-Text: {reply_text}\n{extra_lines}\n".encode()


DISCONNECT_NOTICE = (
    b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\n"
    b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
)

ApiHandler = Callable[["FakeConnection", str], "str | None"]
"""Answers ``api <text>``: the body to reply, or None to fall back to the defaults."""


class FakeConnection:
    """The server side of one client connection."""

    def __init__(self, server: FakeFreeSwitch, sock: socket.socket, number: int) -> None:
        self.server = server
        self.sock = sock
        self.number = number
        self._reader = sock.makefile("rb")

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def read_command(self) -> str | None:
        """One client command (lines up to a blank line), or None at EOF."""
        lines: list[str] = []
        while True:
            line = self._reader.readline()
            if not line:
                return None
            if line == b"\n":
                if lines:
                    return "\n".join(lines)
                continue
            lines.append(line.decode().rstrip("\n"))

    def serve(self) -> None:
        try:
            self.write(b"Content-Type: auth/request\n\n")
            while (command := self.read_command()) is not None:
                self.server.commands.put((self.number, command))
                if not self._answer(command):
                    break
        except OSError:
            pass  # the client or the test closed the connection
        finally:
            self.close()

    def _answer(self, command: str) -> bool:
        """Reply like FreeSWITCH would; False once the connection must end."""
        first_line = command.split("\n", 1)[0]
        if first_line.startswith("auth "):
            if first_line[len("auth ") :] != self.server.password:
                self.write(command_reply_frame("-ERR invalid") + DISCONNECT_NOTICE)
                return False
            self.write(command_reply_frame("+OK accepted"))
        elif first_line.startswith("event plain "):
            self.write(command_reply_frame("+OK event listener enabled plain"))
            if self.server.after_subscribe is not None:
                gevent.spawn(self.server.after_subscribe, self)
        elif first_line.startswith("api "):
            body = self.server.api_reply(self, first_line[len("api ") :])
            self.write(api_response_frame(body))
        elif first_line.startswith("bgapi "):
            job = next(
                (line.split(": ", 1)[1] for line in command.split("\n") if line.startswith("Job-UUID")), "j"
            )
            self.write(command_reply_frame(f"+OK Job-UUID: {job}", Job_UUID=job))
        else:
            self.write(command_reply_frame("-ERR command not found"))
        return True


class FakeFreeSwitch:
    """Accepts inbound Event Socket clients on 127.0.0.1 (ephemeral port) and answers like FreeSWITCH.

    ``commands`` receives ``(connection number, command text)`` for everything clients send, so tests wait
    on it instead of sleeping. ``on_api`` and ``after_subscribe`` let a test script the node's behaviour.
    """

    def __init__(self, *, password: str = "ClueCon", core_uuid: str = "core-1") -> None:
        self.password = password
        self.core_uuid = core_uuid
        self.on_api: ApiHandler | None = None
        self.after_subscribe: Callable[[FakeConnection], None] | None = None
        self.commands: gevent.queue.Queue[tuple[int, str]] = gevent.queue.Queue()
        self.connections: list[FakeConnection] = []
        self._server = StreamServer(("127.0.0.1", 0), self._accept)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> FakeFreeSwitch:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(timeout=1)
        for connection in self.connections:
            connection.close()

    def _accept(self, sock: socket.socket, _address: object) -> None:
        connection = FakeConnection(self, sock, len(self.connections) + 1)
        self.connections.append(connection)
        connection.serve()

    def api_reply(self, connection: FakeConnection, text: str) -> str:
        if self.on_api is not None and (body := self.on_api(connection, text)) is not None:
            return body
        if text == "global_getvar core_uuid":
            return self.core_uuid
        if text in ("show channels as json", "show calls as json"):
            return '{"row_count": 0}\n'
        if text.startswith("uuid_exists "):
            return "false"
        return "+OK\n"

    def next_command(self, timeout: float = 5.0) -> tuple[int, str]:
        item: tuple[int, str] = self.commands.get(timeout=timeout)
        return item

    def wait_for_command(self, wanted: str, timeout: float = 5.0) -> int:
        """Skip commands until ``wanted`` arrives; returns the connection it came on."""
        with gevent.Timeout(timeout, AssertionError(f"FreeSWITCH never received {wanted!r}")):
            while True:
                item: tuple[int, str] = self.commands.get()
                if item[1] == wanted:
                    return item[0]


class EventRecorder:
    """The ``on_event`` callback of the node under test: keeps events and lets the test wait for them."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = gevent.event.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def wait_for(self, predicate: Callable[[list[Event]], bool], timeout: float = 5.0) -> list[Event]:
        with gevent.Timeout(timeout, AssertionError(f"events never matched; got {self.events!r}")):
            while not predicate(self.events):
                self._changed.clear()
                self._changed.wait()
        return list(self.events)

    def wait_for_count(self, kind: type, count: int, timeout: float = 5.0) -> list[Event]:
        return self.wait_for(lambda events: sum(isinstance(e, kind) for e in events) >= count, timeout)
