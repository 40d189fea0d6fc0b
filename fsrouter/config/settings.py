"""Daemon settings, each declared once: name, type, default, help, validator. click options are derived from this.

Precedence: defaults < ``FSROUTER_<NAME>`` environment variables < command-line flags. These are the
daemon's own settings, kept apart from the hot-reloadable ``routing-rules.yaml``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from fsrouter.errors import ConfigError


def _state_path(name: str, variable: str) -> Callable[[], str]:
    """A file in systemd's StateDirectory/RuntimeDirectory when run as a unit, else in the working directory."""

    def default() -> str:
        directory = os.environ.get(variable)
        return os.path.join(directory.split(":")[0], name) if directory else name

    return default


def _setting(default: Any, help: str, *, multiple: bool = False, metavar: str | None = None, seconds: str = "") -> Any:
    """One setting. ``seconds`` makes it a duration that must be ``">"`` 0 (a wait that must last) or ``">="`` 0."""
    meta = {"help": help, "multiple": multiple, "metavar": metavar, "seconds": seconds}
    if callable(default):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


_INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""What an instance id may be: it travels unescaped in an originate's ``{...}`` block and in log lines."""


def default_instance(db: str) -> str:
    """``HOSTNAME-HASH``: the host name (as ``_INSTANCE_ID`` allows it) and the first 8 hex digits of the
    SHA-256 of the absolute ``db`` path. Stable across restarts of one daemon; distinct for two daemons on one
    host with two stores, and for two hosts. (hashlib and socket are imported here: ~8 ms that ``fsrouter --help``
    need not pay.)"""
    import hashlib
    import socket

    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip(".-_")[:55] or "fsrouter"
    digest = hashlib.sha256(os.path.abspath(db).encode()).hexdigest()[:8]
    return f"{host}-{digest}"


@dataclass(frozen=True, kw_only=True)
class Settings:
    esl: tuple[str, ...] = _setting(
        ("127.0.0.1:8021",),
        "FreeSWITCH event socket HOST:PORT, or HOST:PORT=PASSWORD; repeat for several nodes.",
        multiple=True,
        metavar="HOST:PORT",
    )
    esl_password: str = _setting("ClueCon", "Event socket password for nodes that do not give their own.")
    rules: str = _setting("routing-rules.yaml", "Routing rules file.", metavar="PATH")
    db: str = _setting(_state_path("fsrouter.db", "STATE_DIRECTORY"), "SQLite call store.", metavar="PATH")
    instance: str = _setting(
        "",
        "This daemon's name on the FreeSWITCH nodes, set on every agent leg it originates (fsrouter_instance) so "
        "that it never touches another daemon's legs. Default: HOSTNAME-HASH, HASH from the absolute --db path.",
        metavar="ID",
    )
    metrics_listen: str = _setting("127.0.0.1:9464", "Prometheus /metrics HOST:PORT (port 0: any free port).")
    control_socket: str = _setting(
        _state_path("fsrouter.sock", "RUNTIME_DIRECTORY"), "Control socket for the CLI.", metavar="PATH"
    )
    grace: float = _setting(60.0, "Seconds TERM waits for calls in flight before stopping.", seconds=">=")
    command_timeout: float = _setting(5.0, "Seconds to wait for FreeSWITCH to reply to a command.", seconds=">")
    bridge_timeout: float = _setting(
        3.0,
        "Seconds a bridge may go unconfirmed by FreeSWITCH before it is sent again (once), then given up with the "
        "caller back in the queue; also how long an answered agent leg's originate result is waited for.",
        seconds=">",
    )
    tick: float = _setting(0.2, "Seconds between timer checks (wrap-up ends, ring timeouts, max wait).", seconds=">")
    reconcile_interval: float = _setting(
        30.0,
        "Seconds between audits of each node's channels, which heal what fsrouter missed (a lost hang-up, "
        "answer or bridge, an agent leg nobody tracks); 0 disables them.",
        seconds=">=",
    )
    agent_labels: bool = _setting(False, "Export per-agent metric labels (bounded by the agents you declare).")
    log_level: str = _setting("info", "Log level: debug, info, warning, error; or COMPONENT=LEVEL,...")

    def __post_init__(self) -> None:
        """Refuse a duration that cannot work (a tick of 0 or less would spin the ticker) or an instance id a
        channel variable cannot carry: ConfigError. An empty ``instance`` becomes ``default_instance(db)``."""
        if not self.instance:
            object.__setattr__(self, "instance", default_instance(self.db))  # frozen: set once, here
        if not _INSTANCE_ID.fullmatch(self.instance):
            raise ConfigError(f"--instance {self.instance!r}: expected 1 to 64 letters, digits, '.', '_' or '-'")
        self.nodes()
        self.metrics_address()
        _check_log_levels(self.log_level)
        for item in fields(self):
            relation = item.metadata["seconds"]
            if not relation:
                continue
            value = getattr(self, item.name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (number and (value > 0 if relation == ">" else value >= 0)):  # NaN fails both
                flag = "--" + item.name.replace("_", "-")
                raise ConfigError(f"{flag} {value!r}: expected a number of seconds {relation} 0")

    def nodes(self) -> list[tuple[str, str, int, str]]:
        """(name, host, port, password) per FreeSWITCH node; the name is ``HOST:PORT``.

        A malformed value is refused with its password masked (``HOST=***``): error messages end up in logs."""
        parsed = []
        for spec in self.esl:
            address, separator, password = spec.partition("=")
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                shown = address + ("=***" if separator else "")
                raise ConfigError(f"--esl {shown!r}: expected HOST:PORT or HOST:PORT=PASSWORD (port 1 to 65535)")
            parsed.append((address, host, int(port), password or self.esl_password))
        return parsed

    def metrics_address(self) -> tuple[str, int]:
        host, _, port = self.metrics_listen.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"--metrics-listen {self.metrics_listen!r}: expected HOST:PORT (port 0 to 65535)")
        return host, int(port)


#: the levels ``--log-level`` takes, for the whole daemon or one component (``COMPONENT=LEVEL``)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _check_log_levels(spec: str) -> None:
    """``info`` or ``info,fsrouter.adapters.esl=debug``; anything else is a ConfigError naming the bad part."""
    default, *overrides = [part.strip() for part in spec.split(",") if part.strip()] or ["info"]
    bad = [part for part in overrides if part.partition("=")[2].lower() not in LOG_LEVELS]
    if default.lower() not in LOG_LEVELS:
        bad.insert(0, default)
    if bad:
        choices = ", ".join(LOG_LEVELS)
        raise ConfigError(f"--log-level {spec!r}: {bad[0]!r} is not LEVEL or COMPONENT=LEVEL ({choices})")


def setting_fields() -> list[tuple[str, Any, dict[str, Any]]]:
    """(name, default, metadata) for every setting, for the CLI to build its options from."""
    result = []
    for item in fields(Settings):
        factory: Callable[[], Any] = item.default_factory  # type: ignore[assignment]
        default = factory() if item.default is MISSING else item.default
        result.append((item.name, default, dict(item.metadata)))
    return result
