"""Soak: the real daemon against the simulator for minutes at a steady call rate, with a fault every 20 s.

The faults come in rotation: every ESL connection dropped (``sim.drop_connections()``), FreeSWITCH restarted
(``sim.restart()``: its calls vanish), the SQLite store write-locked by another process for ``STORE_LOCK_SECONDS``,
and events lost on the way (the next CHANNEL_ANSWER, CHANNEL_BRIDGE and CHANNEL_HANGUP of any channel). Calls keep
coming throughout. Once the calls stop and the last ones have ended, the store's records are compared with the
callers the simulator placed: a call is *lost* when it has no record or was recorded more than once (a second
record is refused by the store and logged; those warnings are counted).

The simulator runs in the daemon's process (its faults are plain calls), so the RSS printed at the start, middle
and end is both of them together; the calls per second are real time, not simulated.

Run: ``make bench`` (10 minutes at 30 calls/s), or ``python -m bench.soak --minutes 2 --rate 30``. Not part of
``make test``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import gevent
from gevent import subprocess

from fsrouter.config.settings import Settings
from fsrouter.daemon import Daemon
from fsrouter.sim import Simulator

AGENTS = 120
#: seconds a connected call lasts, and how long a caller waits before hanging up
TALK_SECONDS = 2.0
PATIENCE_SECONDS = 30.0
FAULT_EVERY_SECONDS = 20.0
STORE_LOCK_SECONDS = 5.0
#: how long the calls still in progress when the calls stop may take to end and be recorded (reconciliation
#: heals lost events every ``reconcile_interval``, 30 s by default)
SETTLE_SECONDS = 120.0
LOST_EVENTS = ("CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_HANGUP")

#: holds the write lock of the SQLite file in argv[1] for argv[2] seconds, as a backup or a VACUUM would
_LOCK_HOLDER = (
    "import sqlite3, sys, time\n"
    "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "db.execute('BEGIN IMMEDIATE')\n"
    "time.sleep(float(sys.argv[2]))\n"
    "db.execute('ROLLBACK')\n"
)


def rss_mib() -> float:
    """This process's resident set size now, in MiB (``/proc/self/status`` VmRSS)."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


class DuplicateRecords(logging.Handler):
    """Counts the store's "already recorded; ignoring another record" warnings: a call recorded twice."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.calls: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("call %s already recorded"):
            self.calls[str(record.args[0])] += 1  # type: ignore[index]


def faults(sim: Simulator, db: Path) -> list[tuple[str, Callable[[], None]]]:
    """The faults in the order they are applied (then again from the first)."""

    def lock_store() -> None:
        subprocess.Popen([sys.executable, "-c", _LOCK_HOLDER, str(db), str(STORE_LOCK_SECONDS)])

    def lose_events() -> None:
        for name in LOST_EVENTS:
            sim.lose_event(name)

    return [
        ("ESL connections dropped", sim.drop_connections),
        ("FreeSWITCH restarted", lambda: gevent.spawn(sim.restart)),
        (f"store locked {STORE_LOCK_SECONDS:g} s by another process", lock_store),
        (f"events lost: next {', '.join(LOST_EVENTS)}", lose_events),
    ]


def start_daemon(port: int, workdir: Path) -> Daemon:
    agents = "\n".join(
        f"  - id: agent-{1000 + i}\n    endpoint: user/{1000 + i}\n    queues: [support]" for i in range(AGENTS)
    )
    rules = workdir / "rules.yaml"
    rules.write_text(f"version: 1\nqueues:\n  support:\n    strategy: longest-idle\n    wrapup: 0\nagents:\n{agents}\n")
    daemon = Daemon(
        Settings(
            esl=(f"127.0.0.1:{port}",),
            rules=str(rules),
            db=str(workdir / "soak.db"),
            metrics_listen="127.0.0.1:0",
            control_socket=str(workdir / "soak.sock"),
        )
    )
    daemon.start()
    return daemon


def soak(minutes: float, rate: float) -> None:
    """Place ``rate`` calls per second for ``minutes`` with the faults in rotation, then print the tally."""
    out = sys.stdout
    workdir = Path(tempfile.mkdtemp(prefix="fsrouter-soak-"))
    db = workdir / "soak.db"
    duplicates = DuplicateRecords()
    logging.getLogger("fsrouter.adapters.store").addHandler(duplicates)
    sim = Simulator(hostname="soak", seed=1)
    sim.start(host="127.0.0.1", port=0)
    for index in range(AGENTS):
        sim.add_agent(str(1000 + index), behaviour="answer", answer_after=0.1)
    daemon = start_daemon(sim.port, workdir)
    sim.wait_until(lambda: all(node.connected for node in daemon.nodes.values()), timeout=10)
    rss = {"start": rss_mib()}
    out.write(f"soak: {minutes:g} min at {rate:g} calls/s, a fault every {FAULT_EVERY_SECONDS:g} s; store {db}\n")

    placed: list[str] = []
    rotation = itertools.cycle(faults(sim, db))
    began = time.monotonic()
    duration = minutes * 60.0
    next_fault = FAULT_EVERY_SECONDS
    while (elapsed := time.monotonic() - began) < duration:
        if len(placed) < elapsed * rate:
            placed.append(sim.place_call(patience=PATIENCE_SECONDS, talk_time=TALK_SECONDS))
            continue
        if elapsed >= next_fault:
            name, apply = next(rotation)
            out.write(f"  {elapsed:6.1f} s  {name}  (placed {len(placed)})\n")
            apply()
            next_fault += FAULT_EVERY_SECONDS
        if "middle" not in rss and elapsed >= duration / 2:
            rss["middle"] = rss_mib()
        gevent.sleep(min(1.0 / rate, 0.05))

    settled = sim.wait_until(
        lambda: all(sim.calls[u].state in ("ended", "vanished") for u in placed) and not daemon.router.calls,
        timeout=SETTLE_SECONDS,
        interval=0.5,
    )
    rss["end"] = rss_mib()
    daemon.stop()
    sim.stop()
    with sqlite3.connect(db) as connection:
        outcomes = dict(connection.execute("SELECT uuid, outcome FROM calls").fetchall())
    tally = Counter(outcomes.get(uuid, "no record") for uuid in placed)
    twice = sum(1 for uuid in placed if duplicates.calls[uuid])
    lost = tally["no record"] + twice
    other = sum(count for outcome, count in tally.items() if outcome not in ("answered", "abandoned", "no record"))
    out.write(
        f"calls offered {len(placed)}  answered {tally['answered']}  abandoned {tally['abandoned']}  "
        f"failed {other}  lost {lost} (no record {tally['no record']}, recorded twice {twice})\n"
        f"  outcomes {dict(sorted(tally.items()))}\n"
        f"  still in progress at the end: {'none' if settled else sum(1 for u in placed if u not in outcomes)}\n"
        f"  records not placed by this run: {len(set(outcomes) - set(placed))}\n"
        f"RSS MiB (daemon + simulator) start {rss['start']:.1f}  middle {rss.get('middle', 0.0):.1f}  "
        f"end {rss['end']:.1f}\n"
    )


def main(argv: list[str] | None = None) -> None:
    """Run with ``argv`` (default: none, as ``python -m bench`` runs every module)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long calls are placed (default 10)")
    parser.add_argument("--rate", type=float, default=30.0, help="calls placed per second (default 30)")
    args = parser.parse_args(argv or [])
    # WARNING: the faults are meant to be seen (connection lost, store failing); the tally says what they cost
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    soak(args.minutes, args.rate)


if __name__ == "__main__":
    main(sys.argv[1:])
