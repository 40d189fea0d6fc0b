"""One FreeSWITCH node over the inbound Event Socket: the only module that imports greenswitch.

greenswitch 0.0.19 parses frames and matches replies to commands; this module works around its known bugs
(shared/reference/esl.md §4), each covered by a test in ``tests/adapters/test_esl_client.py``:

- a send in flight when the socket drops blocks forever -> pending replies fail with EslNotConnected;
- no timeout anywhere -> every send and every connect runs under ``gevent.Timeout``, and a command left without
  a reply past ``command_timeout`` ends the connection: replies are paired with commands by their order only,
  so after one that never comes every later reply would be taken for the command before it (and a FreeSWITCH
  stuck in one ``api`` answers nothing else on that connection anyway); the reconnect re-learns what is live;
- a header line that is not UTF-8 ends the reader silently -> it is an unreadable frame, logged as one;
- ``sock.send`` without a lock -> one lock around ``sendall`` + FIFO registration;
- ``_read_socket`` spins forever on EOF mid-body -> it raises instead, and the connection is dropped;
- event bodies land in the ``Content-Length`` header value, and values are URL-decoded before lines are
  split (a multi-line SDP becomes bogus headers) -> plain events are parsed here (``parse_plain_event``);
- events already read are dropped when the socket closes -> the event greenlet drains its queue first;
- EOF only sets ``connected = False`` -> the keeper greenlet notices, emits NodeDown once and reconnects.

Commands from the router are pipelined (``EslNode.send``): one writer greenlet writes them in the order they
came, without waiting for replies, up to ``COMMAND_WINDOW`` unanswered; one reply greenlet checks the replies,
which come back in the same order (mod_event_socket.c runs a connection's ``api`` commands inline, one at a time,
and answers ``bgapi`` at once). A command for a channel already gone is not written, and a kill of an agent leg
FreeSWITCH has not created yet waits for it (``esl_gate.py``).

The core UUID comes from ``api global_getvar core_uuid``: FreeSWITCH sets that global at start-up
(switch_core_init), so it answers at once, unlike waiting for the first event's ``Core-UUID`` header.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote

import gevent
import gevent.event
import gevent.lock
import gevent.queue
from greenswitch.esl import ESLEvent, InboundESL, NotConnectedError

from fsrouter.adapters.esl_gate import ChannelGate, Verdict
from fsrouter.adapters.esl_translate import (
    ADAPTER_EVENTS,
    AGENT_LEG_TAG,
    INSTANCE_VARIABLE,
    SUBSCRIBED_EVENTS,
    SUBSCRIBED_NAMES,
    Malformed,
    encode,
    is_marked_for_fsrouter,
    registered_users,
    reply_error,
    sofia_profiles,
    translate_or_malformed,
)
from fsrouter.core.commands import Bridge, EslCommand, Kill, Originate
from fsrouter.core.events import CallParked, ChannelsAudited, Event, NodeDown, NodeUp
from fsrouter.errors import CallGone, EslAuthError, EslError, EslNotConnected, EslTimeout

logger = logging.getLogger(__name__)

WAITING_APPLICATIONS = frozenset({"park", "playback"})
"""``show channels`` application of a caller still waiting: parked, or hearing music via uuid_broadcast
(which runs ``playback``). A bridged caller shows ``uuid_bridge``."""

IDLE_AGENT_LEG_APPLICATIONS = frozenset({"", "park"})
"""``show channels`` application of an agent leg fsrouter originated and nobody talks on: none while it rings,
``park`` once answered (``&park()``). A bridged leg shows ``uuid_bridge``: someone is talking on it."""

RELEARN_VARIABLES = (
    "fsrouter_queue",
    "fsrouter",
    "fsrouter_priority",
    "fsrouter_skills",
    "fsrouter_lang",
    INSTANCE_VARIABLE,
)
"""Variables fetched for a waiting channel after a reconnect (``show channels`` rows carry none)."""

AGENT_VARIABLE = "fsrouter_agent"
"""The variable naming the agent on every agent leg the router originates (``core/routing/offers.py``, ``ring``):
fetched after a reconnect for the bridged agent legs, so that a restarted fsrouter knows who talks."""

ANSWERED_CALL_STATES = frozenset({"ACTIVE", "HELD"})
"""``show channels`` callstate of an answered channel. EARLY is early media: an agent leg in it still rings."""

BRIDGEABLE_CALL_STATES = ANSWERED_CALL_STATES | {"EARLY"}
"""callstate of a caller that can be bridged: answered, or pre-answered by the dialplan (``CallParked.answered``)."""

COMMAND_WINDOW = 64
"""Commands a node may have written and not yet had answered; beyond it, writing waits for replies. FreeSWITCH
runs them one at a time anyway, in well under 10 ms each: more in flight would only wait in its socket."""

_GONE_MARKERS = ("no such channel", "invalid uuid")
_UNSET = "_undef_"


def parse_plain_event(data: str) -> tuple[dict[str, str], str]:
    """Headers (URL-decoded) and inner body of a text/event-plain frame's body.

    greenswitch decodes the whole text before splitting lines, so encoded newlines in a value break it into
    bogus headers, and it appends the inner body to the ``Content-Length`` value (``'15\\n\\n-ERR NO_ANSWER'``).
    A repeated header (HANGUP_COMPLETE's ``Hangup-Cause``) keeps its first value.
    """
    head, _, body = data.partition("\n\n")
    headers: dict[str, str] = {}
    for line in head.split("\n"):
        name, separator, value = line.partition(": ")
        if separator and name not in headers:
            headers[name] = value
    return dict(zip(headers, _unquote_values(list(headers.values())), strict=True)), (
        body if "Content-Length" in headers else ""
    )


def _unquote_values(values: list[str]) -> list[str]:
    """``[unquote(value) for value in values]``, in one pass of C codecs over all of them when it can.

    ``unquote`` per value cost most of the daemon's time under load (~130 values per event, ~0.1 ms per event).
    The values are joined by NUL, which no value holds, raw or encoded (an encoded newline must stay inside its
    value), and each ``%XX`` becomes a ``\\xXX`` escape for the ``unicode_escape`` codec (backslashes doubled
    first). Values that are not ASCII, that hold a NUL, or a ``%`` without two hex digits after it (which
    ``unquote`` keeps as it is and the codec refuses) are decoded one at a time.
    """
    joined = "\0".join(values)
    if joined.isascii() and "%00" not in joined and joined.count("\0") == len(values) - 1:
        try:
            latin = joined.replace("\\", "\\\\").replace("%", "\\x").encode("ascii").decode("unicode_escape")
        except UnicodeDecodeError:
            pass
        else:
            return latin.encode("latin-1").decode("utf-8", errors="replace").split("\0")
    return [unquote(value) for value in values]


class _MalformedFrame(Exception):
    """A frame whose headers cannot be read: a header line that is not UTF-8, no ``Content-Type``, or a
    ``Content-Length`` that is not a number."""


class _Connection(InboundESL):  # type: ignore[misc]
    """greenswitch's inbound client with its bugs worked around; one instance per TCP connection.

    ``on_malformed`` is called for each frame or event it cannot read."""

    _commands_sent: list[gevent.event.AsyncResult]

    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        *,
        connect_timeout: float,
        command_timeout: float,
        on_malformed: Callable[[], None],
    ):
        self._reading = True
        super().__init__(host, port, password, timeout=connect_timeout)
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._on_malformed = on_malformed
        self.lost = gevent.event.Event()
        self._send_lock = gevent.lock.Semaphore()

    # greenswitch's greenlets loop `while self._run`; its reader clears it on EOF, which made the event
    # greenlet quit with events still queued. Keep it true until that queue is drained.
    @property
    def _run(self) -> bool:
        return self._reading or not self._esl_event_queue.empty()

    @_run.setter
    def _run(self, value: bool) -> None:
        self._reading = value

    def open(self) -> None:
        """Connect and authenticate, or raise EslAuthError / EslNotConnected / EslTimeout."""
        try:
            with gevent.Timeout(self.connect_timeout, EslTimeout(f"no auth exchange in {self.connect_timeout}s")):
                self.connect()
        except ValueError as error:
            self.close()
            raise EslAuthError("FreeSWITCH refused the event socket password") from error
        except (OSError, NotConnectedError) as error:
            self.close()
            raise EslNotConnected(f"cannot connect to {self.host}:{self.port}: {error}") from error
        except EslError:
            self.close()
            raise

    def start_event_handlers(self) -> None:
        """Called by greenswitch right after the TCP connect: commands are small writes that must go out at
        once (Nagle's algorithm with delayed ACKs would hold each one for ~40 ms)."""
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().start_event_handlers()

    def receive_events(self) -> None:
        """greenswitch's reader (header lines up to a blank line make a frame), plus what it forgets when the
        connection ends; it ended silently on a header line that is not UTF-8."""
        try:
            headers = ""
            while (line := self._read_header_line()) is not None:
                if line == self._EOL:
                    self.handle_event(ESLEvent(headers))
                    headers = ""
                else:
                    headers += line
        except _MalformedFrame as error:
            # Where the next frame starts is unknown now: only a new connection is in step again.
            self._on_malformed()
            logger.warning("ESL %s:%s: unreadable frame, dropping the connection: %s", self.host, self.port, error)
        except Exception:
            logger.warning("ESL %s:%s: connection lost mid-frame", self.host, self.port)
        finally:
            self._reading = False
            self.connected = False
            self._fail_pending()
            self._auth_request_event.set()  # wake a connect() still waiting for auth/request
            self._esl_event_queue.put(ESLEvent(""))  # wake the event greenlet so it drains and ends now
            self.lost.set()

    def _read_header_line(self) -> str | None:
        """The next header line, or None once the connection is closed; raises _MalformedFrame for one that is not
        UTF-8 (FreeSWITCH URL-encodes every value it writes, so its headers are ASCII)."""
        if not self._reading:
            return None
        try:
            line: bytes = self.sock_file.readline()
        except OSError:
            return None
        try:
            return line.decode("utf-8") if line else None
        except UnicodeDecodeError as error:
            raise _MalformedFrame(f"header line is not UTF-8: {line[:100]!r}") from error

    def handle_event(self, event: ESLEvent) -> None:
        """Parse plain events ourselves (see ``parse_plain_event``); leave the other frames to greenswitch.

        Raises _MalformedFrame for a frame whose headers cannot be read; a plain event without an
        ``Event-Name`` is counted malformed and dropped (no handler could take it)."""
        content_type = event.headers.get("Content-Type")
        length = event.headers.get("Content-Length", "0")
        if content_type is None:
            raise _MalformedFrame(f"no Content-Type in frame headers {event.headers!r}"[:200])
        if not (length.isascii() and length.isdigit()):
            raise _MalformedFrame(f"Content-Length is not a number: {length!r}"[:200])
        if content_type != "text/event-plain":
            super().handle_event(event)
            return
        event.headers, event.body = parse_plain_event(self._read_socket(self.sock_file, int(length)))
        if "Event-Name" not in event.headers:
            self._on_malformed()
            logger.warning("ESL %s:%s: event without Event-Name dropped", self.host, self.port)
            return
        self._esl_event_queue.put(event)

    @staticmethod
    def _read_socket(sock: Any, length: int) -> str:
        """Read exactly ``length`` body bytes; greenswitch looped forever when EOF came first."""
        data: bytes = sock.read(length)
        if len(data) < length:
            raise ConnectionError(f"connection closed after {len(data)} of {length} body bytes")
        return data.decode("utf-8", errors="replace")

    def send(self, data: str) -> ESLEvent:
        """Send one command and wait for its reply, all under ``command_timeout`` (then see ``no_reply``)."""
        deadline = gevent.Timeout(self.command_timeout)
        try:
            with deadline:
                return self.submit(data).get()
        except gevent.Timeout as expired:
            if expired is not deadline:
                raise
            raise self.no_reply(data) from None

    def no_reply(self, line: str) -> EslTimeout:
        """End the connection because ``line`` got no reply within ``command_timeout``, and return the error to
        raise: FreeSWITCH answers a connection's commands in order (mod_event_socket.c runs its ``api`` commands
        one at a time), so a reply that never comes would shift every later one onto the command before it."""
        command = line.split("\n", 1)[0]
        logger.warning(
            "ESL %s:%s: no reply to %s in %ss, dropping the connection", self.host, self.port, command,
            self.command_timeout,
        )  # fmt: skip
        self.abort()
        return EslTimeout(f"no reply to {command} in {self.command_timeout}s")

    def submit(self, data: str) -> gevent.event.AsyncResult:
        """Write one command without waiting for its reply; returns the slot the reply will fill (in the order
        the commands were written). Raises EslNotConnected."""
        if not self.connected:
            raise EslNotConnected("not connected")
        reply = gevent.event.AsyncResult()
        try:
            self._write(reply, (data + "\n\n").encode("utf-8"))
        except OSError as error:
            raise EslNotConnected(f"connection lost sending {data.split(' ', 1)[0]}: {error}") from error
        return reply

    def _write(self, reply: gevent.event.AsyncResult, raw: bytes) -> None:
        """Register the reply slot and write the command as one unit, so replies stay in sending order."""
        with self._send_lock:
            if not self.connected:
                raise EslNotConnected("not connected")
            self._commands_sent.append(reply)
            try:
                self.sock.sendall(raw)
            except BaseException:
                # A half-written command would shift every later reply: this connection is finished.
                self._shut_socket()
                raise

    def _fail_pending(self) -> None:
        pending, self._commands_sent = self._commands_sent, []
        for reply in pending:
            if not reply.ready():
                reply.set_exception(EslNotConnected("connection to FreeSWITCH lost with the command pending"))

    def abort(self) -> None:
        """End the connection from any greenlet; the reader notices and the keeper reconnects."""
        self._shut_socket()

    def _shut_socket(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def drain(self, timeout: float) -> None:
        """Let the event greenlet hand over the events read before the connection ended."""
        if self._process_events_greenlet is not None:
            self._process_events_greenlet.join(timeout=timeout)

    def close(self) -> None:
        self._reading = False
        self.connected = False
        self._shut_socket()
        greenlets = [g for g in (self._receive_events_greenlet, self._process_events_greenlet) if g is not None]
        gevent.killall(greenlets, timeout=self.command_timeout)
        self._fail_pending()
        self.lost.set()


def _ignore(*_args: object) -> None:
    """The default of the optional callbacks."""


class EslNode:
    """A long-lived link to one FreeSWITCH node: keeps it connected, turns its events into core events and
    pipelines the router's commands.

    ``on_event`` is called from the node's greenlets and must only enqueue. After every (re)connection it
    receives ``NodeUp`` then a ``CallParked`` per caller still waiting; after a loss, one ``NodeDown``.

    Commands handed to ``send`` report back through the callbacks, called from the node's greenlets (never
    blocking): ``on_command_written(seconds)`` with the time the command waited in fsrouter,
    ``on_command_dropped(command)`` for one not sent because its channel is gone, and
    ``on_command_failed(command, error)`` with EslNotConnected / EslTimeout (unknown whether FreeSWITCH ran it),
    CallGone or EslError (refused), exactly as ``execute`` would raise them.

    ``instance`` is this fsrouter's id (``--instance``). It tags every agent leg the node originates
    (``fsrouter_instance``), and the node leaves alone what belongs to another instance: its agent legs are never
    reported to the router (so never killed as orphans, never taken for callers) and each is logged once as an
    error, since two daemons on one FreeSWITCH fight over its agents; a caller whose dialplan set
    ``fsrouter_instance`` to another instance's id is not taken. An agent leg tagged before instances existed
    (``fsrouter_leg=agent`` alone) counts as this instance's: an upgraded daemon's first audits must still kill
    what its previous version left behind (an old version still running beside it would lose its idle legs, but
    one daemon per node is the rule).
    """

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        password: str,
        on_event: Callable[[Event], None],
        *,
        instance: str,
        command_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        heartbeat_timeout: float = 60.0,
        count_event: Callable[[str], None] = _ignore,
        window: int = COMMAND_WINDOW,
        on_command_written: Callable[[float], None] = _ignore,
        on_command_dropped: Callable[[EslCommand], None] = _ignore,
        on_command_failed: Callable[[EslCommand, EslError], None] = _ignore,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._password = password
        self._on_event = on_event
        self.instance = instance
        #: agent legs of other instances already logged, forgotten once an audit no longer finds them idle
        self._foreign_legs: set[str] = set()
        #: told "translated", "tracked", "ignored" or "malformed" for every event received but HEARTBEAT, and
        #: "malformed" for every frame that cannot be read (the daemon counts them in metrics)
        self._count_event = count_event
        self._on_command_written = on_command_written
        self._on_command_dropped = on_command_dropped
        self._on_command_failed = on_command_failed
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.heartbeat_timeout = heartbeat_timeout
        self._connection: _Connection | None = None
        self._keeper: gevent.Greenlet | None = None
        self._stopping = gevent.event.Event()
        self._up = False
        self._last_heard = 0.0
        self._held: list[Event] | None = None
        self._random = random.Random()
        self._gate = ChannelGate()
        self._outbox: gevent.queue.Queue[tuple[int, EslCommand, float]] = gevent.queue.Queue()
        self._written: gevent.queue.Queue[_Written] = gevent.queue.Queue()
        self._window = gevent.lock.BoundedSemaphore(window)
        #: commands taken by ``send`` and not settled yet (queued, being written, or waiting for replies), by number
        self._unsettled: dict[int, EslCommand] = {}
        self._numbers = itertools.count()
        self._pipeline: list[gevent.Greenlet] = []

    # --- public API ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Spawn the greenlet that connects, and reconnects for as long as the node runs, and the two that write
        commands and check their replies."""
        if self._keeper is None:
            self._stopping.clear()
            self._keeper = gevent.spawn(self._keep_connected)
            self._pipeline = [gevent.spawn(self._write_commands), gevent.spawn(self._check_replies)]

    def stop(self) -> None:
        """Stop at once: commands not written yet are forgotten (``settled`` tells when none is left)."""
        self._stopping.set()
        gevent.killall(self._pipeline)  # first: a deliberate stop is not a lost connection to report
        self._pipeline = []
        connection = self._connection
        if connection is not None:
            connection.close()
        if self._keeper is not None:
            self._keeper.kill(timeout=self.connect_timeout + self.command_timeout)
            self._keeper = None

    @property
    def connected(self) -> bool:
        connection = self._connection
        return connection is not None and bool(connection.connected)

    def send(self, command: EslCommand) -> None:
        """Queue a core command for writing, after those queued before it (never blocks)."""
        number = next(self._numbers)
        self._unsettled[number] = command
        self._outbox.put((number, command, time.monotonic()))

    def settled(self) -> bool:
        """Whether every command handed to ``send`` is written and answered (or dropped), and every originate
        written has its leg known to exist or gone, with any kill held for it sent."""
        return not self._unsettled and not self._gate.unresolved()

    def unsettled_legs(self) -> frozenset[str]:
        """Channels fsrouter may leave behind in FreeSWITCH if it stopped now: legs of originates in flight, legs
        whose kill is held, queued, unanswered or got no reply."""
        kills = frozenset(command.uuid for command in self._unsettled.values() if isinstance(command, Kill))
        return self._gate.unresolved() | kills

    def execute(self, command: EslCommand) -> str:
        """Send the ESL lines of a core command in order and wait for their replies; returns the last reply text.
        Bypasses the pipeline of ``send`` (for callers that need the reply).

        Raises EslNotConnected, EslTimeout, CallGone (the channel is gone) or EslError (any other refusal).
        """
        reply = ""
        for line in encode(command, instance=self.instance):
            reply = self._send_checked(line)
        return reply

    def api(self, text: str) -> str:
        """Run ``api <text>`` (CLI, diagnostics) with the same error rules as ``execute``."""
        return self._send_checked(f"api {text}")

    def audit(self, clock: Callable[[], float] = time.time) -> ChannelsAudited:
        """List the node's channels and bridged pairs for the router's periodic reconciliation; raises like
        ``execute``.

        ``taken_at`` is read from ``clock`` just before the listings are asked for. The bridged pairs come from
        ``show calls`` (FreeSWITCH's ``basic_calls`` view): one row per pair, the A leg's ``uuid`` with the B leg's
        ``b_uuid``. Only outbound channels that ring or are parked can be agent legs fsrouter left behind, so only
        they are asked for their tag: a FreeSWITCH carrying many other calls is not flooded with ``uuid_getvar``.
        ``agent_legs`` are this instance's only (class docstring).
        """
        connection = self._connection
        if connection is None or not self._up:
            raise EslNotConnected(f"node {self.name} is not connected")
        taken_at = clock()
        rows = self._listing("channels", connection)
        pairs = self._listing("calls", connection)
        idle_outbound = [
            row["uuid"]
            for row in rows
            if row.get("direction") == "outbound" and row.get("application", "") in IDLE_AGENT_LEG_APPLICATIONS
        ]
        owners = {uuid: self._agent_leg_owner(uuid, connection) for uuid in idle_outbound}
        self._foreign_legs &= {uuid for uuid, owner in owners.items() if owner not in (None, self.instance)}
        return ChannelsAudited(
            node=self.name,
            taken_at=taken_at,
            live_uuids=frozenset(row["uuid"] for row in rows),
            agent_legs=frozenset(uuid for uuid, owner in owners.items() if owner == self.instance),
            answered_uuids=_answered(rows),
            bridged=_bridged(pairs),
        )

    # --- commands ------------------------------------------------------------------------------------------

    def _send_checked(self, line: str, connection: _Connection | None = None) -> str:
        connection = connection or self._connection
        if connection is None:
            raise EslNotConnected(f"node {self.name} is not connected")
        return _checked(line, connection.send(line))

    def _write_commands(self) -> None:
        """The writer greenlet: write each queued command as soon as the window has room, never waiting for a
        reply; a command whose channel is gone is dropped, a kill of a leg not created yet is held."""
        while True:
            self._window.acquire()
            number, command, queued_at = self._outbox.get()
            verdict = self._gate.admit(command)
            if verdict is not Verdict.SEND:
                if verdict is Verdict.DROP:
                    logger.debug("ESL node %s: %s not sent, its channel is gone", self.name, command)
                    self._on_command_dropped(command)
                self._settle(number)
                continue
            try:
                written = self._write_lines(number, command)
            except EslError as error:
                self._fail(command, error)
                self._settle(number)
                continue
            self._on_command_written(time.monotonic() - queued_at)
            self._written.put(written)

    def _write_lines(self, number: int, command: EslCommand) -> _Written:
        connection = self._connection
        if connection is None:
            raise EslNotConnected(f"node {self.name} is not connected")
        lines = encode(command, instance=self.instance)
        with gevent.Timeout(self.command_timeout, EslTimeout(f"could not write {lines[0]} in {self.command_timeout}s")):
            replies = [(line, connection.submit(line)) for line in lines]
        return _Written(number, command, connection, replies, time.monotonic() + self.command_timeout)

    def _check_replies(self) -> None:
        """The reply greenlet: the replies come in the order the commands were written, so waiting for each in
        turn costs nothing; the first failing line of a command is its failure."""
        while True:
            written = self._written.get()
            try:
                for line, reply in written.replies:
                    try:
                        event = reply.get(timeout=max(0.0, written.deadline - time.monotonic()))
                    except gevent.Timeout:
                        raise written.connection.no_reply(line) from None
                    _checked(line, event)
            except CallGone as error:
                self._fail(written.command, self._name_gone_channel(written, error))
            except EslError as error:
                self._fail(written.command, error)
            finally:
                self._settle(written.number)

    def _name_gone_channel(self, written: _Written, error: CallGone) -> EslError:
        """``error``, with the channel that is gone named. ``uuid_bridge`` answers ``-ERR Invalid uuid`` whichever
        of its two channels is missing (mod_commands.c, ``switch_ivr_uuid_bridge`` failing): ``uuid_exists`` of
        the caller tells which. If that question gets no answer, the bridge's fate stays unknown."""
        command = written.command
        if error.uuid is not None or not isinstance(command, Bridge):
            return error
        try:
            exists = written.connection.send(f"api uuid_exists {command.caller_uuid}").data
        except EslError as unanswered:
            return unanswered
        gone = command.caller_uuid if exists == "false" else command.agent_uuid
        return CallGone(str(error), uuid=gone)

    def _fail(self, command: EslCommand, error: EslError) -> None:
        if isinstance(error, (EslNotConnected, EslTimeout)):
            if isinstance(command, Kill):
                self._gate.unconfirmed(command)
        elif isinstance(error, CallGone) and error.uuid is not None:
            self._gate.gone(error.uuid)  # its hang-up event was lost: nothing more is sent for it
        elif isinstance(command, Originate):
            self._gate.gone(command.leg_uuid)  # the bgapi itself was refused: no job, no leg
        self._on_command_failed(command, error)

    def _settle(self, number: int) -> None:
        del self._unsettled[number]
        self._window.release()

    # --- connection keeping --------------------------------------------------------------------------------

    def _keep_connected(self) -> None:
        delay = self.backoff_initial
        while not self._stopping.is_set():
            connection = _Connection(
                self.host,
                self.port,
                self._password,
                connect_timeout=self.connect_timeout,
                command_timeout=self.command_timeout,
                on_malformed=lambda: self._count_event("malformed"),
            )
            try:
                self._connect(connection)
                delay = self.backoff_initial
                self._watch(connection)
            except EslAuthError as error:
                logger.error("ESL node %s (%s:%s): %s", self.name, self.host, self.port, error)
            except EslError as error:
                logger.warning("ESL node %s (%s:%s): %s", self.name, self.host, self.port, error)
            except Exception:
                logger.exception("ESL node %s: unexpected failure, reconnecting", self.name)
            finally:
                self._disconnect(connection)
            if self._stopping.wait(self._random.uniform(delay / 2, delay)):
                break
            delay = min(delay * 2, self.backoff_max)

    def _connect(self, connection: _Connection) -> None:
        connection.open()
        for name in SUBSCRIBED_NAMES:
            connection.register_handle(name, self._handle)
        connection.register_handle("DISCONNECT", self._handle_disconnect_notice)
        self._held = []  # live events wait until NodeUp and the re-learnt callers are out
        self._connection = connection
        reply = connection.send(SUBSCRIBED_EVENTS).data or ""
        if reply_error(reply) is not None:
            raise EslError(f"subscription refused: {reply}")
        for kill in self._gate.reset():
            self.send(kill)
        self._relearn(connection)
        logger.info("ESL node %s (%s:%s) connected", self.name, self.host, self.port)

    def _watch(self, connection: _Connection) -> None:
        """Return when the connection ends or FreeSWITCH has been silent past ``heartbeat_timeout``."""
        while not self._stopping.is_set():
            silent_for = time.monotonic() - self._last_heard
            if silent_for >= self.heartbeat_timeout:
                logger.warning("ESL node %s: no event for %.0fs, reconnecting", self.name, silent_for)
                return
            if connection.lost.wait(self.heartbeat_timeout - silent_for):
                if not self._stopping.is_set():
                    logger.warning("ESL node %s: connection lost", self.name)
                return

    def _disconnect(self, connection: _Connection) -> None:
        self._connection = None
        self._held = None
        if connection.lost.is_set():
            connection.drain(self.command_timeout)
        connection.close()
        if self._up and not self._stopping.is_set():
            self._on_event(NodeDown(node=self.name))
        self._up = False

    # --- re-learning what is live --------------------------------------------------------------------------

    def _relearn(self, connection: _Connection) -> None:
        """Announce NodeUp with the live channels, the bridged pairs among them and the agents talking on the
        agent legs fsrouter originated, then CallParked for each caller still waiting."""
        core_uuid = self._send_checked("api global_getvar core_uuid", connection).strip()
        rows = self._listing("channels", connection)
        # show channels lags behind hangups: only uuid_exists is trusted.
        live = [row for row in rows if self._send_checked(f"api uuid_exists {row['uuid']}", connection) == "true"]
        live_uuids = frozenset(row["uuid"] for row in live)
        bridged = frozenset(pair for pair in _bridged(self._listing("calls", connection)) if pair <= live_uuids)
        waiting = [call for call in (self._waiting_call(row, connection) for row in live) if call is not None]
        self._up = True
        self._last_heard = time.monotonic()
        self._on_event(
            NodeUp(
                node=self.name,
                core_uuid=core_uuid,
                live_uuids=live_uuids,
                answered_uuids=_answered(live),
                bridged=bridged,
                agents_of_legs=self._agents_of_legs(bridged, connection),
                registered_users=self._registered_users(connection),
            )
        )
        held, self._held = self._held or [], None
        # A caller who parked while we were re-learning is in both: its live event has the precise entry time
        # (show channels counts whole seconds), so the live event speaks for it, in arrival order.
        parked_meanwhile = {event.uuid for event in held if isinstance(event, CallParked)}
        for call in waiting:
            if call.uuid not in parked_meanwhile:
                self._on_event(call)
        for event in held:
            self._on_event(event)

    def _registered_users(self, connection: _Connection) -> frozenset[str] | None:
        """The SIP users registered on the node: ``sofia status profile <name> reg`` of every profile ``sofia
        status`` lists. Not ``show registrations``: its core table is written asynchronously and can miss a
        registered user. None (nothing learnt) when the node refuses them, e.g. without mod_sofia."""
        try:
            profiles = sofia_profiles(self._send_checked("api sofia status", connection))
            replies = [self._send_checked(f"api sofia status profile {name} reg", connection) for name in profiles]
        except (EslNotConnected, EslTimeout):
            raise
        except EslError as error:
            logger.warning("ESL node %s: registrations not listed (%s); agents' phones stay unknown", self.name, error)
            return None
        return frozenset().union(*(registered_users(reply) for reply in replies))

    def _listing(self, what: str, connection: _Connection) -> list[dict[str, str]]:
        """``show <what> as json`` rows (``channels`` or ``calls``); none is ``{"row_count": 0}`` without ``rows``."""
        reply = self._send_checked(f"api show {what} as json", connection)
        try:
            rows = json.loads(reply).get("rows", [])
            return [row for row in rows if isinstance(row, dict) and row.get("uuid")]
        except (ValueError, AttributeError) as error:
            raise EslError(f"unreadable show {what} reply: {reply[:200]!r}") from error

    def _waiting_call(self, row: Mapping[str, str], connection: _Connection) -> CallParked | None:
        if row.get("application") not in WAITING_APPLICATIONS:
            return None
        uuid = row["uuid"]
        if self._agent_leg_owner(uuid, connection) is not None:
            return None
        try:
            variables = {
                name: value
                for name in RELEARN_VARIABLES
                if (value := self._send_checked(f"api uuid_getvar {uuid} {name}", connection)) != _UNSET
            }
        except CallGone:
            return None
        if not is_marked_for_fsrouter(variables) or not self._claims(variables):
            return None
        return CallParked(
            node=self.name,
            uuid=uuid,
            caller_number=row.get("cid_num", ""),
            caller_name=row.get("cid_name", ""),
            destination=row.get("dest", ""),
            answered=row.get("callstate") in BRIDGEABLE_CALL_STATES,
            variables=variables,
            entered_at=_epoch(row.get("created_epoch")),
        )

    def _agents_of_legs(self, bridged: frozenset[frozenset[str]], connection: _Connection) -> dict[str, str]:
        """The agent (``AGENT_VARIABLE``) of each bridged channel that is an agent leg this instance originated."""
        agents: dict[str, str] = {}
        for uuid in sorted(frozenset().union(*bridged)):
            if self._agent_leg_owner(uuid, connection) != self.instance:
                continue
            try:
                agent = self._send_checked(f"api uuid_getvar {uuid} {AGENT_VARIABLE}", connection)
            except CallGone:
                continue
            if agent != _UNSET:
                agents[uuid] = agent
        return agents

    def _agent_leg_owner(self, uuid: str, connection: _Connection) -> str | None:
        """The instance that originated channel ``uuid`` if it carries fsrouter's agent leg tag, else None (also
        once the channel is gone). An untagged agent leg counts as this instance's (class docstring); another
        instance's is logged as an error the first time it is seen."""
        try:
            tag = self._send_checked(f"api uuid_getvar {uuid} {AGENT_LEG_TAG[0]}", connection)
            if tag != AGENT_LEG_TAG[1]:
                return None
            owner = self._send_checked(f"api uuid_getvar {uuid} {INSTANCE_VARIABLE}", connection)
        except CallGone:
            return None
        if owner in (_UNSET, self.instance):
            return self.instance
        if uuid not in self._foreign_legs:
            self._foreign_legs.add(uuid)
            logger.error(
                "ESL node %s: another fsrouter instance %s is routing on this node (its agent leg %s): two daemons "
                "on one FreeSWITCH fight over its agents; this instance (%s) leaves that leg alone",
                self.name,
                owner,
                uuid,
                self.instance,
            )
        return owner

    def _claims(self, variables: Mapping[str, str]) -> bool:
        """Whether this instance may take a caller marked for fsrouter: yes unless the dialplan set
        ``fsrouter_instance`` to another instance's id."""
        return variables.get(INSTANCE_VARIABLE) in (None, "", self.instance)

    # --- event handlers (greenswitch's event greenlet: translate and enqueue, never block) -----------------

    def _handle(self, event: ESLEvent) -> None:
        self._last_heard = time.monotonic()
        released = self._gate.observe(event.headers, event.body)
        if released is not None:
            self.send(released)
        translated = translate_or_malformed(event.headers, event.body, self.name)
        if isinstance(translated, Malformed):
            logger.warning("ESL node %s: malformed %s: %s", self.name, event.headers["Event-Name"], translated.reason)
            self._count_event("malformed")
            return
        if translated is None:
            name = event.headers.get("Event-Name")
            if name in ADAPTER_EVENTS:
                self._count_event("tracked")
            elif name != "HEARTBEAT":
                self._count_event("ignored")
            return
        if isinstance(translated, CallParked) and not self._claims(translated.variables):
            self._count_event("ignored")  # another instance's caller
            return
        self._count_event("translated")
        if self._held is not None:
            self._held.append(translated)
        else:
            self._on_event(translated)

    def _handle_disconnect_notice(self, event: ESLEvent) -> None:
        logger.warning("ESL node %s: FreeSWITCH sent a disconnect notice", self.name)
        connection = self._connection
        if connection is not None:
            connection.abort()


class _Written(NamedTuple):
    """A command written on ``connection``, waiting for its replies (one per line) until ``deadline``
    (``time.monotonic()``)."""

    number: int
    command: EslCommand
    connection: _Connection
    replies: list[tuple[str, gevent.event.AsyncResult]]
    deadline: float


def _checked(line: str, reply_event: ESLEvent) -> str:
    """The reply text to ``line``; raises CallGone (the channel is gone) or EslError (any other refusal)."""
    reply: str = reply_event.data or ""
    error = reply_error(reply)
    if error is None:
        return reply
    first_line = line.split("\n", 1)[0]
    if any(marker in error.lower() for marker in _GONE_MARKERS) or (
        error == "-ERROR" and line.startswith("api uuid_answer")  # uuid_answer's only failure: no channel
    ):
        words = first_line.split(" ")
        # ``api uuid_<command> <uuid> ...`` is about one channel, but uuid_bridge about two
        channel = words[2] if len(words) > 2 and words[1] != "uuid_bridge" else None
        raise CallGone(f"{first_line}: {error}", uuid=channel)
    raise EslError(f"{first_line}: {error}")


def _bridged(pairs: list[dict[str, str]]) -> frozenset[frozenset[str]]:
    """The bridged pairs of ``show calls`` rows (FreeSWITCH's ``basic_calls`` view: the A leg's ``uuid`` with the
    B leg's ``b_uuid``), each as a set of its two uuids."""
    return frozenset(frozenset((row["uuid"], row["b_uuid"])) for row in pairs if row.get("b_uuid"))


def _answered(rows: list[dict[str, str]]) -> frozenset[str]:
    return frozenset(row["uuid"] for row in rows if row.get("callstate") in ANSWERED_CALL_STATES)


def _epoch(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
