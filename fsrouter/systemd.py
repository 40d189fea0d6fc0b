"""Tell systemd how the daemon is doing (the ``sd_notify`` protocol), with no dependency.

systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace) to ``Type=notify``
services; each notification is one datagram of ``KEY=VALUE`` lines. Outside systemd the variable is absent
and every call here is a no-op, so the daemon calls these helpers unconditionally. Nothing here raises:
a lost notification must never take the call router down.

Usage in the daemon::

    systemd.ready()            # after ESL is authenticated, rules loaded and the DB open
    systemd.reloading()        # on SIGHUP, then ready() again once the new rules are in (or refused)
    systemd.stopping()         # on SIGTERM, before draining
    interval = systemd.watchdog_interval()
    if interval:               # ping at half the interval, only while the core loop ticks
        ...systemd.watchdog()
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


def notify(state: str) -> bool:
    """Send one notification (``KEY=VALUE`` lines) to systemd; ``True`` when it was sent.

    Example: ``notify("READY=1\\nSTATUS=routing calls")``.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
    except OSError as exc:
        log.debug("sd_notify to %r failed: %s", address, exc)
        return False
    return True


def ready() -> bool:
    """Startup (or a reload) is complete: systemd considers the service started."""
    return notify("READY=1")


def reloading() -> bool:
    """A reload began; call ``ready()`` when it is over, whether the new rules were taken or refused.

    ``MONOTONIC_USEC`` (CLOCK_MONOTONIC) is what systemd ≥ 253 requires with ``Type=notify-reload`` to tell
    this reload apart from an earlier one; older versions ignore it.
    """
    now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify(f"RELOADING=1\nMONOTONIC_USEC={now_usec}")


def stopping() -> bool:
    """Shutdown began (draining calls); systemd shows the unit as deactivating."""
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """A one-line status for ``systemctl status`` (a newline would end the assignment: it becomes a space)."""
    return notify("STATUS=" + " ".join(text.splitlines()))


def watchdog() -> bool:
    """Keep-alive ping; send it at least every ``watchdog_interval() / 2`` seconds."""
    return notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """The watchdog period in seconds (``WatchdogSec=``), or ``None`` when this process has no watchdog.

    ``WATCHDOG_PID`` names the process the watchdog applies to; a child that inherited the variables must
    not ping on the daemon's behalf.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        interval = int(usec)
    except ValueError:
        return None
    return interval / 1_000_000 if interval > 0 else None


def under_systemd() -> bool:
    """True when started by systemd, whose journal timestamps every line (so our log format can omit them)."""
    return bool(os.environ.get("INVOCATION_ID") or os.environ.get("JOURNAL_STREAM"))
