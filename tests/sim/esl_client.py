"""A tiny raw-socket ESL client for the simulator tests (independent of greenswitch and the daemon)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

import gevent
from gevent import socket


@dataclass(frozen=True)
class Frame:
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    @property
    def content_type(self) -> str:
        return dict(self.headers).get("Content-Type", "")

    @property
    def reply_text(self) -> str:
        return dict(self.headers).get("Reply-Text", "")

    def event_headers(self) -> list[tuple[str, str]]:
        """Decoded headers of a text/event-plain body (inner body excluded)."""
        head = self.body.split(b"\n\n", 1)[0].decode()
        pairs = [_split_header(line) for line in head.split("\n")]
        return [(name, urllib.parse.unquote(value)) for name, value in pairs]

    def event_inner_body(self) -> bytes:
        return self.body.split(b"\n\n", 1)[1] if b"\n\n" in self.body else b""

    @property
    def event_name(self) -> str:
        return dict(self.event_headers()).get("Event-Name", "")


def _split_header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(": ")
    return name, value


def split_frames(data: bytes) -> tuple[list[Frame], bytes]:
    """Split complete frames off `data` using Content-Length framing; return the rest."""
    frames: list[Frame] = []
    while True:
        end = data.find(b"\n\n")
        if end < 0:
            return frames, data
        headers = [_split_header(line) for line in data[:end].decode().split("\n")]
        length = int(dict(headers).get("Content-Length", "0"))
        if len(data) < end + 2 + length:
            return frames, data
        frames.append(Frame(headers, data[end + 2 : end + 2 + length], data[: end + 2 + length]))
        data = data[end + 2 + length :]


class RawEslClient:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        self._buffer = b""
        self.frames: list[Frame] = []  # every frame read so far, in order
        self._pending: list[Frame] = []

    @staticmethod
    def try_connect(port: int, host: str = "127.0.0.1") -> bool:
        """True if a TCP connection to the listener is accepted."""
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            return False
        return True

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\n\n")

    def read_frame(self, timeout: float = 5.0) -> Frame:
        with gevent.Timeout(timeout):
            while not self._pending:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed by server")
                frames, self._buffer = split_frames(self._buffer + data)
                self._pending += frames
                self.frames += frames
        return self._pending.pop(0)

    def read_until(self, content_type: str, timeout: float = 5.0) -> Frame:
        while True:
            frame = self.read_frame(timeout)
            if frame.content_type == content_type:
                return frame

    def command(self, text: str) -> Frame:
        self.send(text)
        return self.read_until("command/reply")

    def api(self, text: str) -> Frame:
        self.send(f"api {text}")
        return self.read_until("api/response")

    def login(self, password: str = "ClueCon", events: str = "plain ALL") -> None:
        assert self.read_frame().content_type == "auth/request"
        assert self.command(f"auth {password}").reply_text == "+OK accepted"
        if events:
            assert self.command(f"event {events}").reply_text.startswith("+OK event listener enabled")

    def events_until(self, predicate, timeout: float = 5.0) -> list[Frame]:  # type: ignore[no-untyped-def]
        """Read frames until an event satisfying `predicate` arrives; return all events read."""
        seen = []
        while True:
            frame = self.read_frame(timeout)
            if frame.content_type.startswith("text/event"):
                seen.append(frame)
                if predicate(frame):
                    return seen

    def read_until_closed(self, timeout: float = 5.0) -> bytes:
        data = b""
        with gevent.Timeout(timeout):
            while chunk := self.sock.recv(65536):
                data += chunk
        return data

    def close(self) -> None:
        self.sock.close()
