"""The control socket: how ``fsrouter status``, ``reload``, ``agent …`` and ``explain`` talk to the daemon.

Protocol (UNIX stream socket, local only; the file is mode 0660, so the daemon's user and group may use it):

- The client sends one request per line, a JSON object::

      {"command": "status", "args": {}}
      {"command": "agent", "args": {"agent": "agent-1000", "action": "break"}}

  ``args`` may be omitted (it defaults to ``{}``). Several requests may follow each other on one connection;
  each gets its answer before the next is read.
- The daemon answers each request with one line, a JSON object: ``{"ok": true, "result": <any JSON>}`` or
  ``{"ok": false, "error": "<what went wrong, for a human>"}``.
- Lines are UTF-8 and at most ``MAX_LINE_BYTES`` long; a longer or malformed request gets an error answer, and
  so does one without an argument its command reads (``BadRequest``, see ``RequestArgs``).

Which commands exist and what their results look like is the daemon's business (its handler); this module
only carries them. The handler also receives the caller's UID (``SO_PEERCRED``), and commands that change
state (``mutating``) are logged with it, so there is an audit trail of who reloaded or moved an agent.

Example::

    server = ControlServer("/run/fsrouter/fsrouter.sock", daemon.handle_control, mutating={"reload", "agent"})
    server.start()
    ...
    ControlClient("/run/fsrouter/fsrouter.sock").request("agent", agent="agent-1000", action="break")
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import stat
import struct
import sys
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gevent.server import StreamServer

from fsrouter.errors import BadRequest, ControlError, FsrouterError

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 1 << 20
SOCKET_MODE = 0o660
#: a connected client that sends nothing for this long is dropped, so forgotten clients do not pile up
IDLE_TIMEOUT_SECONDS = 60.0

Handler = Callable[[str, dict[str, Any], int], Any]

_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ControlServer:
    """Serves the control protocol on a UNIX socket, one greenlet per connection."""

    def __init__(self, path: str, handler: Handler, *, mutating: Collection[str] = frozenset()) -> None:
        self.path = path
        self._handler = handler
        self._mutating = frozenset(mutating)
        self._server: StreamServer | None = None
        self._inode: int | None = None

    def start(self) -> None:
        """Bind the socket (mode 0660) and start serving; raises ``ControlError`` if the path is taken."""
        from gevent import socket as green
        from gevent.server import StreamServer

        self._remove_stale_socket()
        listener = green.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.path)
            # Before listen(), so no client can connect while the mode is still the umask's.
            os.chmod(self.path, SOCKET_MODE)
            listener.listen(16)
        except OSError as exc:
            listener.close()
            raise ControlError(f"cannot listen on control socket {self.path}: {exc.strerror}") from exc
        self._inode = os.stat(self.path).st_ino
        self._server = StreamServer(listener, self._serve)
        self._server.start()
        log.info("control socket listening on %s", self.path)

    def stop(self) -> None:
        """Stop serving and remove the socket file (unless another process has replaced it meanwhile)."""
        if self._server is None:
            return
        self._server.stop(timeout=1)
        self._server = None
        try:
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _remove_stale_socket(self) -> None:
        """Remove a socket file left by a crashed daemon, but never a live one or a non-socket file."""
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise ControlError(f"{self.path} exists and is not a socket; refusing to replace it")
        from gevent import socket as green

        probe = green.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(self.path)
        except ConnectionRefusedError:
            log.info("removing stale control socket %s", self.path)
            os.unlink(self.path)
            return
        except OSError as exc:
            raise ControlError(f"cannot check existing control socket {self.path}: {exc.strerror}") from exc
        finally:
            probe.close()
        raise ControlError(f"another fsrouter is already listening on {self.path}")

    def _serve(self, conn: socket.socket, _address: object) -> None:
        uid = _peer_uid(conn)
        conn.settimeout(IDLE_TIMEOUT_SECONDS)
        with conn, conn.makefile("rb") as reader:
            try:
                while line := reader.readline(MAX_LINE_BYTES + 1):
                    if not line.endswith(b"\n") and len(line) > MAX_LINE_BYTES:
                        conn.sendall(_encode({"ok": False, "error": "request too long"}))
                        return
                    conn.sendall(self._answer(line, uid))
            except OSError as exc:  # idle timeout, or the client went away mid-answer
                log.debug("control connection from uid %d ended: %s", uid, exc)

    def _answer(self, line: bytes, uid: int) -> bytes:
        try:
            command, args = _parse_request(line)
        except BadRequest as exc:
            return _encode({"ok": False, "error": str(exc)})
        if command in self._mutating:
            log.info("control: %s %s requested by uid %d", command, json.dumps(args, sort_keys=True), uid)
        try:
            # Encoding is inside the try: a result that is not JSON is our bug and is reported as one.
            return _encode({"ok": True, "result": self._handler(command, args, uid)})
        except Exception as exc:
            if isinstance(exc, FsrouterError):  # an expected refusal (unknown agent, invalid rules, …)
                log.warning("control: %s from uid %d refused: %s", command, uid, exc)
            else:
                log.exception("control: %s from uid %d failed", command, uid)
            return _encode({"ok": False, "error": str(exc) or type(exc).__name__})


class ControlClient:
    """Sends one request to the running daemon and returns its result.

    Example: ``ControlClient("/run/fsrouter/fsrouter.sock").request("status")``. Every failure (daemon not
    running, permission denied, timeout, the daemon refusing the request) raises ``ControlError`` with one
    line fit for the terminal.
    """

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout

    def request(self, command: str, **args: Any) -> Any:
        reply_line = self._exchange(_encode({"command": command, "args": args}))
        try:
            reply = json.loads(reply_line)
            ok = reply["ok"]
        except (ValueError, TypeError, KeyError) as exc:
            raise ControlError(f"fsrouter sent an unreadable reply on {self.path}") from exc
        if not ok:
            raise ControlError(str(reply.get("error") or "fsrouter refused the request"))
        return reply.get("result")

    def _exchange(self, request: bytes) -> bytes:
        sock = _client_sockets().socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            with sock, sock.makefile("rb") as reader:
                sock.connect(self.path)
                sock.sendall(request)
                reply: bytes = reader.readline(MAX_LINE_BYTES + 1)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ControlError(f"fsrouter is not running (nothing listens on {self.path})") from exc
        except PermissionError as exc:
            raise ControlError(
                f"permission denied on {self.path}: run as the fsrouter user or a member of its group"
            ) from exc
        except TimeoutError as exc:
            raise ControlError(f"fsrouter did not answer within {self.timeout:g} s on {self.path}") from exc
        except OSError as exc:
            if exc.errno == errno.ENOTSOCK:
                raise ControlError(f"{self.path} is not a control socket") from exc
            raise ControlError(f"cannot talk to fsrouter on {self.path}: {exc.strerror or exc}") from exc
        if not reply.endswith(b"\n"):
            raise ControlError(f"fsrouter closed the connection on {self.path} without answering")
        return reply


def _client_sockets() -> Any:
    """gevent's socket module when gevent is loaded in this process (the daemon, or a test serving the socket in
    this very process: a blocking socket would stall its hub), else the standard library's, so that the CLI does
    not import gevent (~20 ms of every ``fsrouter status``)."""
    return sys.modules.get("gevent.socket", socket)


class RequestArgs(dict[str, Any]):
    """A request's ``args`` as the handler gets them: reading one the client left out (``args["action"]``) raises
    ``BadRequest`` naming it, so an incomplete request is refused in one line instead of failing as a bug."""

    def __init__(self, command: str, args: dict[str, Any]) -> None:
        super().__init__(args)
        self.command = command

    def __missing__(self, key: str) -> Any:
        raise BadRequest(f'{self.command} needs "{key}" in "args"')


def _parse_request(line: bytes) -> tuple[str, RequestArgs]:
    """The command and args of one request line; raises ``BadRequest``."""
    try:
        request = json.loads(line)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise BadRequest(f"request is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # the JSON parser recurses once per nesting level
        raise BadRequest("request is not valid JSON: nested too deeply") from exc
    if not isinstance(request, dict):
        raise BadRequest("request must be a JSON object")
    command = request.get("command")
    if not isinstance(command, str) or not command:
        raise BadRequest('request needs a "command" string')
    args = request.get("args", {})
    if not isinstance(args, dict):
        raise BadRequest('"args" must be a JSON object')
    return command, RequestArgs(command, args)


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def _peer_uid(conn: socket.socket) -> int:
    credentials = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    _pid, uid, _gid = _PEERCRED.unpack(credentials)
    return int(uid)
