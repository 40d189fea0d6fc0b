"""The gevent inbound event-socket listener and its per-connection protocol state."""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Callable

import gevent
import gevent.queue
from gevent.server import StreamServer

from fsrouter.sim.encoding import (
    AUTH_REQUEST,
    DISCONNECT_GOODBYE,
    api_response,
    command_reply,
    disconnect_notice,
    event_frame,
)
from fsrouter.sim.events import SimEvent, new_uuid
from fsrouter.sim.protocol import ClientCommand, CommandReader, EventFilter, Subscription

log = logging.getLogger(__name__)

ApiRunner = Callable[[str], str]
BgapiStarter = Callable[[str, str], None]


class EslConnection:
    """One client socket: auth, subscriptions, commands, and a writer that may split/coalesce frames.

    Like mod_event_socket's thread per connection, it handles one command at a time: ``api_delay()`` seconds
    (see ``Simulator``) pass over each one, and the events published meanwhile are sent after its reply."""

    def __init__(
        self,
        sock: socket.socket,
        password: str,
        run_api: ApiRunner,
        start_bgapi: BgapiStarter,
        rng: random.Random,
        chunking: bool,
        api_delay: Callable[[], float],
    ) -> None:
        self.sock = sock
        self._password = password
        self._run_api = run_api
        self._start_bgapi = start_bgapi
        self._rng = rng
        self._chunking = chunking
        self._api_delay = api_delay
        self.subscription = Subscription()
        self.authenticated = False
        self._outbox: gevent.queue.Queue[bytes | None] = gevent.queue.Queue()
        self._held_events: list[bytes] | None = None  # set while a command is being handled
        self.closed = False

    @property
    def command_running(self) -> bool:
        return self._held_events is not None

    # -------------------------------------------------------------- output
    def deliver(self, event: SimEvent) -> None:
        if self.closed or not self.authenticated:
            return
        if not self.subscription.wants(event.name, event.subclass, event.headers):
            return
        frame = event_frame(event.headers, event.body, self.subscription.event_format)
        if self._held_events is not None:
            self._held_events.append(frame)
        else:
            self._outbox.put(frame)

    def _send(self, frame: bytes) -> None:
        self._outbox.put(frame)

    def close(self, notice: str | None = None) -> None:
        """Queue an optional disconnect-notice, then close after everything queued is written."""
        if self.closed:
            return
        self.closed = True
        if notice is not None:
            self._outbox.put(disconnect_notice(notice))
        self._outbox.put(None)

    def abort(self) -> None:
        """Drop the TCP connection at once (crash-like)."""
        self.closed = True
        self._outbox.put(None)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _writer(self) -> None:
        while True:
            frame = self._outbox.get()
            batch = [frame]
            while frame is not None and not self._outbox.empty():
                frame = self._outbox.get()
                batch.append(frame)
            data = b"".join(item for item in batch if item is not None)
            try:
                self._write(data)
            except OSError:
                return
            if batch[-1] is None:
                break
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _write(self, data: bytes) -> None:
        if not self._chunking or len(data) < 2:
            self.sock.sendall(data)
            return
        cuts = sorted(self._rng.sample(range(1, len(data)), min(3, len(data) - 1)))
        start = 0
        for cut in [*cuts, len(data)]:
            self.sock.sendall(data[start:cut])
            start = cut
            gevent.sleep(0)

    # --------------------------------------------------------------- input
    def serve(self) -> None:
        writer = gevent.spawn(self._writer)
        reader = CommandReader()
        self._send(AUTH_REQUEST)
        try:
            while not self.closed:
                data = self.sock.recv(65536)
                if not data:
                    break
                for command in reader.feed(data):
                    self._handle(command)
                    if self.closed:
                        break
        except OSError:
            pass
        finally:
            self.closed = True
            self._outbox.put(None)
            writer.join(timeout=5)

    def _handle(self, command: ClientCommand) -> None:
        """Take ``api_delay()`` over ``command``, reply, then send the events held meanwhile."""
        self._held_events = []
        try:
            delay = self._api_delay()
            if delay:
                gevent.sleep(delay)
            self._dispatch(command)
        finally:
            held, self._held_events = self._held_events, None
        for frame in held:
            self._send(frame)

    def _dispatch(self, command: ClientCommand) -> None:
        word, _, rest = command.line.partition(" ")
        if word == "exit":
            self._send(command_reply("+OK bye"))
            self.close(DISCONNECT_GOODBYE)
        elif not self.authenticated:
            self._handle_auth(word, rest)
        else:
            handler = self._COMMANDS.get(word)
            if handler is None:
                self._send(command_reply("-ERR command not found"))
            else:
                handler(self, rest.strip(), command)

    def _handle_auth(self, word: str, rest: str) -> None:
        if word != "auth":
            self._send(command_reply("-ERR command not found"))
        elif rest.strip() == self._password:
            self.authenticated = True
            self._send(command_reply("+OK accepted"))
        else:
            self._send(command_reply("-ERR invalid"))
            self.close(DISCONNECT_GOODBYE)

    def _cmd_event(self, rest: str, command: ClientCommand) -> None:
        words = rest.split()
        if words and words[0] in ("plain", "json", "xml"):
            self.subscription.event_format = "json" if words[0] == "json" else "plain"
            words = words[1:]
        if not words:
            self._send(command_reply("-ERR no keywords supplied"))
            return
        self.subscription.add(words)
        self._send(command_reply(f"+OK event listener enabled {self.subscription.event_format}"))

    def _cmd_nixevent(self, rest: str, command: ClientCommand) -> None:
        self.subscription.remove(rest.split())
        self._send(command_reply("+OK events nixed"))

    def _cmd_noevents(self, rest: str, command: ClientCommand) -> None:
        if not self.subscription.active:
            self._send(command_reply("-ERR not listening for events"))
            return
        self.subscription.clear()
        self._send(command_reply("+OK no longer listening for events"))

    def _cmd_filter(self, rest: str, command: ClientCommand) -> None:
        words = rest.split(" ", 2)
        if words[0] == "delete" and len(words) > 1:
            value = words[2] if len(words) > 2 else None
            self.subscription.delete_filter(words[1], value)
            self._send(command_reply(f"+OK filter deleted. [{words[1]}][{value or ''}]"))
            return
        if len(words) < 2:
            self._send(command_reply("-ERR invalid syntax"))
            return
        value = " ".join(words[1:])
        self.subscription.filters.append(EventFilter(words[0], value))
        self._send(command_reply(f"+OK filter added. [{words[0]}]=[{value}]"))

    def _cmd_api(self, rest: str, command: ClientCommand) -> None:
        self._send(api_response(self._run_api(rest)))

    def _cmd_bgapi(self, rest: str, command: ClientCommand) -> None:
        job_uuid = command.headers.get("Job-UUID") or new_uuid()
        self._send(command_reply(f"+OK Job-UUID: {job_uuid}", [("Job-UUID", job_uuid)]))
        self._start_bgapi(rest, job_uuid)

    _COMMANDS: dict[str, Callable[[EslConnection, str, ClientCommand], None]] = {
        "event": _cmd_event,
        "nixevent": _cmd_nixevent,
        "noevents": _cmd_noevents,
        "filter": _cmd_filter,
        "api": _cmd_api,
        "bgapi": _cmd_bgapi,
    }


class EslListener:
    """Owns the listening socket and the set of live connections."""

    def __init__(self, make_connection: Callable[[socket.socket], EslConnection]) -> None:
        self._make_connection = make_connection
        self.connections: set[EslConnection] = set()
        self._server: StreamServer | None = None

    def start(self, host: str, port: int) -> int:
        self._server = StreamServer((host, port), self._accept)
        self._server.start()
        return int(self._server.address[1])

    def stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _accept(self, sock: socket.socket, address: tuple[str, int]) -> None:
        # mod_event_socket sets TCP_NODELAY on its sockets; without it Nagle + delayed ACKs add ~40 ms per reply
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = self._make_connection(sock)
        self.connections.add(connection)
        try:
            connection.serve()
        finally:
            self.connections.discard(connection)
