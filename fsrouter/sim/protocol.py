"""Client -> server side of the event socket: command parsing and per-connection subscriptions.

Parsing follows mod_event_socket's read_packet: first line is the command, `Name: value` lines are
headers (value not decoded), an optional Content-Length body follows the blank line, CR is tolerated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from fsrouter.sim.encoding import Header


@dataclass(frozen=True, slots=True)
class ClientCommand:
    line: str
    headers: dict[str, str]
    body: bytes = b""


class CommandReader:
    """Incremental parser: feed raw bytes, iterate complete commands."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> Iterator[ClientCommand]:
        self._buffer += data
        while True:
            self._buffer = self._buffer.lstrip(b"\r\n")
            match = re.search(rb"\r?\n\r?\n", self._buffer)
            if match is None:
                return
            head = self._buffer[: match.start()].decode("utf-8", "replace").replace("\r", "")
            lines = head.split("\n")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip()] = value.lstrip(" ")
            length = int(headers.get("Content-Length", "0") or 0)
            end = match.end() + length
            if len(self._buffer) < end:
                return
            body = self._buffer[match.end() : end]
            self._buffer = self._buffer[end:]
            yield ClientCommand(line=lines[0].strip(), headers=headers, body=body)


@dataclass(slots=True)
class EventFilter:
    header: str
    value: str

    @property
    def excludes(self) -> bool:
        return self.value.startswith("-")

    def matches(self, headers: Sequence[Header]) -> bool:
        wanted = self.value[1:] if self.excludes else self.value
        for name, value in headers:
            if name.lower() != self.header.lower():
                continue
            if wanted.startswith("/"):
                if re.search(wanted[1:].rstrip("/"), value):
                    return True
            elif value.lower() == wanted.lower():
                return True
        return False


@dataclass(slots=True)
class Subscription:
    """What one connection asked for with event/nixevent/noevents/filter."""

    event_format: str = "plain"
    names: set[str] = field(default_factory=set)
    subclasses: set[str] = field(default_factory=set)
    everything: bool = False
    filters: list[EventFilter] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.everything or bool(self.names) or bool(self.subclasses)

    def add(self, words: Sequence[str]) -> None:
        names, subclasses, everything = _event_words(words)
        self.names |= names
        self.subclasses |= subclasses
        self.everything |= everything

    def remove(self, words: Sequence[str]) -> None:
        names, subclasses, everything = _event_words(words)
        self.names -= names
        self.subclasses -= subclasses
        if everything:
            self.everything = False
            self.names.clear()

    def clear(self) -> None:
        self.everything = False
        self.names.clear()
        self.subclasses.clear()

    def wants(self, name: str, subclass: str | None, headers: Sequence[Header]) -> bool:
        if name == "CUSTOM":
            subscribed = self.everything or subclass in self.subclasses or "CUSTOM" in self.names
        else:
            subscribed = self.everything or name in self.names
        return subscribed and self._passes_filters(headers)

    def _passes_filters(self, headers: Sequence[Header]) -> bool:
        if not self.filters:
            return True
        if any(f.excludes and f.matches(headers) for f in self.filters):
            return False
        inclusive = [f for f in self.filters if not f.excludes]
        return not inclusive or any(f.matches(headers) for f in inclusive)

    def delete_filter(self, header: str, value: str | None) -> None:
        if header == "all":
            self.filters.clear()
            return
        self.filters = [f for f in self.filters if not (f.header == header and (value is None or f.value == value))]


def _event_words(words: Sequence[str]) -> tuple[set[str], set[str], bool]:
    """The event names of an event/nixevent command, its CUSTOM subclasses (every word after ``CUSTOM``), and
    whether ``ALL`` is among the names."""
    names, subclasses = list(words), []
    if "CUSTOM" in names:
        at = names.index("CUSTOM")
        names, subclasses = names[:at], names[at + 1 :]
    return set(names) - {"ALL"}, set(subclasses), "ALL" in names
