"""Reloading a big rules file while calls are routed: the longest stall of the gevent hub, and the memory it takes.

A daemon runs in this process against the simulator, with a generated file of ``AGENTS`` agents in 100 queues
(about 4 MB; one agent is a simulated phone that answers, the others are logged out). A greenlet that sleeps
1 ms records the longest interval between two of its ticks: the longest time no greenlet could run, so no ESL
event was read, no command written, no call routed. It is measured over the same wall time three ways in one
run: with no reload (the baseline: the machine's own jitter), during ``Daemon.reload()`` of the file (parsed in
a thread of the hub's pool, ``load_rules_in_thread``, then swapped into the router by the core loop), during
``load_rules_in_thread`` alone, and during ``load_rules`` called in the hub itself (how reloads ran before
issue 11). A call placed as the reload starts must be bridged: its park -> bridge delay is
printed. Memory is the process's resident set (``/proc/self/statm``) sampled every 20 ms: before the daemon
starts, once it runs the file, and the peak during the reload, each growth divided by the file's size in MB.

Run: ``make bench`` or ``python -m bench.reload [--agents N]``; the numbers are for comparison on this machine,
never asserted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import gevent

from fsrouter.config.rules_loader import load_rules, load_rules_in_thread
from fsrouter.config.settings import Settings
from fsrouter.daemon import Daemon
from fsrouter.sim import Simulator

AGENTS = 60_000
QUEUES = 100
#: the simulated phone of the one agent that answers (``agent-000000``, queue ``q000``)
ANSWERING_USER = "1000"
TICK = 0.001
RSS_SAMPLE = 0.02
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def write_rules(path: Path, agents: int = AGENTS) -> Path:
    """A rules file of ``agents`` agents spread over ``QUEUES`` queues; only the first (user ``ANSWERING_USER``,
    queue ``q000``) is available, so a call for ``q000`` rings it whatever else the file holds."""
    lines = ["version: 1", "queues:"]
    for queue in range(QUEUES):
        lines += [f"  q{queue:03d}:", "    strategy: longest-idle", "    ring_timeout: 5", "    wrapup: 0"]
    lines.append("agents:")
    lines += ["  - id: agent-000000", f"    endpoint: user/{ANSWERING_USER}", "    queues: [q000]"]
    for index in range(1, agents):
        lines += [
            f"  - id: agent-{index:06d}",
            f"    endpoint: user/{100_000 + index}",
            f"    queues: [q{index % QUEUES:03d}]",
            "    status: logged-out",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_BYTES


class HubWatch:
    """Greenlets measuring, between ``start`` and ``stop``, the longest gap between 1 ms ticks and the peak RSS."""

    def __init__(self) -> None:
        self.longest_gap = 0.0
        self.peak_rss = 0
        self._greenlets: list[gevent.Greenlet] = []

    def __enter__(self) -> HubWatch:
        self._greenlets = [gevent.spawn(self._tick), gevent.spawn(self._sample)]
        gevent.sleep(0.05)
        self.longest_gap = 0.0  # the first ticks include the spawn itself
        return self

    def __exit__(self, *_exc: object) -> None:
        gevent.sleep(10 * TICK)  # the ticker's first tick after a stall is the one that measures it
        gevent.killall(self._greenlets)

    def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            gevent.sleep(TICK)
            now = time.perf_counter()
            self.longest_gap = max(self.longest_gap, now - last)
            last = now

    def _sample(self) -> None:
        while True:
            self.peak_rss = max(self.peak_rss, rss_bytes())
            gevent.sleep(RSS_SAMPLE)


@contextmanager
def running_daemon(rules: Path, sim: Simulator) -> Iterator[Daemon]:
    workdir = rules.parent
    settings = Settings(
        esl=(f"127.0.0.1:{sim.port}",),
        rules=str(rules),
        db=str(workdir / "bench.db"),
        metrics_listen="127.0.0.1:0",
        control_socket=str(workdir / "bench.sock"),
        tick=0.05,
    )
    daemon = Daemon(settings)
    daemon.start()
    try:
        assert Simulator.wait_until(lambda: all(node.connected for node in daemon.nodes.values()), timeout=30)
        yield daemon
    finally:
        daemon.stop()


def watched(action: Callable[[], object]) -> tuple[float, float, int]:
    """(seconds ``action`` took, longest hub gap in them, peak RSS in them) for ``action`` run in a greenlet."""
    with HubWatch() as watch:
        started = time.perf_counter()
        gevent.spawn(action).get()
        seconds = time.perf_counter() - started
    return seconds, watch.longest_gap, watch.peak_rss


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=AGENTS)
    args = parser.parse_args(argv or [])
    logging.basicConfig(level=logging.ERROR)
    rules = write_rules(Path(tempfile.mkdtemp(prefix="fsrouter-bench-")) / "rules.yaml", args.agents)
    megabytes = rules.stat().st_size / 1e6
    sim = Simulator(hostname="bench", seed=1, heartbeat=20.0)
    sim.start(host="127.0.0.1", port=0)
    sim.add_agent(ANSWERING_USER, answer_after=0.01)
    rss_before = rss_bytes()
    try:
        with running_daemon(rules, sim) as daemon:
            rss_running = rss_bytes()
            call: list[str] = []

            def reload_with_a_call() -> None:
                call.append(sim.place_call(variables={"fsrouter_queue": "q000"}, patience=120.0, talk_time=0.05))
                daemon.reload()

            reload_seconds, reload_gap, reload_peak = watched(reload_with_a_call)
            caller = sim.calls[call[0]]
            assert Simulator.wait_until(lambda: caller.bridged_at is not None, timeout=30), "the call was not routed"
            bridged_after = (caller.bridged_at or 0.0) - caller.created_at
            _, baseline_gap, _ = watched(lambda: gevent.sleep(reload_seconds))
            thread_seconds, thread_gap, _ = watched(lambda: load_rules_in_thread(str(rules), now=0.0))
            hub_seconds, hub_gap, _ = watched(lambda: load_rules(str(rules), now=0.0))
    finally:
        sim.stop()
    out = sys.stdout
    out.write(f"reload of {args.agents} agents ({megabytes:.1f} MB of rules) while the daemon routes\n")
    for label, gap, note in (
        ("no reload", baseline_gap, f"over {reload_seconds:.1f} s"),
        ("Daemon.reload", reload_gap, f"reload took {reload_seconds:.1f} s: parse, then swap in the core loop"),
        ("parse in thread", thread_gap, f"load_rules_in_thread alone took {thread_seconds:.1f} s"),
        ("parse in the hub", hub_gap, f"parse took {hub_seconds:.1f} s"),
    ):
        out.write(f"  longest hub gap, {label:<16} {gap * 1000:8.1f} ms   ({note})\n")
    out.write(f"  call placed as the reload began  bridged after {bridged_after * 1000:.0f} ms\n")
    out.write(f"  RSS before the daemon            {rss_before / 1e6:8.0f} MB\n")
    out.write(
        f"  RSS with the rules loaded        {rss_running / 1e6:8.0f} MB   "
        f"({(rss_running - rss_before) / 1e6 / megabytes:.0f} MB per MB of rules)\n"
    )
    out.write(
        f"  RSS peak during the reload       {reload_peak / 1e6:8.0f} MB   "
        f"(+{(reload_peak - rss_running) / 1e6 / megabytes:.0f} MB per MB of rules)\n"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
