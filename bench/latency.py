"""Routing latency through the simulator, fsrouter against a raw greenswitch client in the same process.

Two delays matter to a caller: from the caller's CHANNEL_PARK to the ``bgapi originate`` that rings an agent,
and from the agent leg's CHANNEL_ANSWER to the ``uuid_bridge``. Both are taken on the simulator's side of the
wire (when it publishes the event, when it receives the command), so they include parsing, routing, and the
ESL round trips. The baseline is the least any client must do: a bare greenswitch ``InboundESL`` that answers
the caller, originates to the next agent and bridges on answer, with no rules, no store and no metrics.

The simulator runs in a child process (as FreeSWITCH would), so its own CPU time does not queue behind the
client's; it reports its timestamps back as JSON when the run is over.

fsrouter's own share of the park -> originate delay is printed too: how long its ESL commands waited in fsrouter
before being written (``Daemon.command_queue_waits``, exported as ``fsrouter_esl_command_queue_seconds``), and
the agent legs originated per caller bridged (1.00: no agent rung twice for one caller). The simulator reports the
originate job's result ``job_delay`` after the agent's answer, as FreeSWITCH does; fsrouter bridges only once that
result is in (``core/routing/offers.py``), so its answer -> bridge includes that delay, which the baseline's
bridge-on-answer races.

Run: ``make bench`` (or ``python -m bench.latency --calls 500``). Prints p50/p99 in ms and fsrouter/baseline
ratios; the numbers are for comparison on this machine, never asserted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from gevent import subprocess
from greenswitch import InboundESL

from fsrouter.config.settings import Settings
from fsrouter.daemon import Daemon
from fsrouter.sim import Simulator
from fsrouter.sim.events import SimEvent

AGENTS = 20
CALLS_PER_SECOND = 40.0
#: seconds from the agent leg's answer to its originate job's result (as captured on FreeSWITCH 1.10)
JOB_DELAY = 0.02


class Probe:
    """Timestamps the wire from the simulator's side; keyed by caller uuid and agent-leg uuid."""

    def __init__(self) -> None:
        self.parked: dict[str, float] = {}
        self.originated: dict[str, float] = {}
        #: agent legs originated per caller, and the callers a bridge was sent for
        self.legs_of: Counter[str] = Counter()
        self.bridged_callers: set[str] = set()
        self.leg_answered: dict[str, float] = {}
        self.bridged: dict[str, float] = {}

    def __call__(self, kind: str, payload: object) -> None:
        now = time.perf_counter()
        if kind == "event" and isinstance(payload, SimEvent):
            headers = dict(payload.headers)
            channel = headers.get("Unique-ID", "")
            if payload.name == "CHANNEL_PARK" and "variable_fsrouter_leg" not in headers:
                self.parked.setdefault(channel, now)
            elif payload.name == "CHANNEL_ANSWER" and headers.get("variable_fsrouter_leg") == "agent":
                self.leg_answered.setdefault(channel, now)
        elif kind == "bgapi" and isinstance(payload, str) and "fsrouter_call=" in payload:
            caller = payload.split("fsrouter_call=", 1)[1].split(",", 1)[0].split("}", 1)[0]
            self.originated.setdefault(caller, now)
            self.legs_of[caller] += 1
        elif kind == "api" and isinstance(payload, str) and payload.startswith("uuid_bridge "):
            _, caller, leg = payload.split()[:3]
            self.bridged.setdefault(leg, now)
            self.bridged_callers.add(caller)

    def result(self) -> Result:
        to_originate = [self.originated[c] - t for c, t in self.parked.items() if c in self.originated]
        to_bridge = [self.bridged[leg] - t for leg, t in self.leg_answered.items() if leg in self.bridged]
        legs = sum(self.legs_of[caller] for caller in self.bridged_callers)
        return to_originate, to_bridge, legs / max(1, len(self.bridged_callers))


#: (park -> originate delays, answer -> bridge delays, agent legs per caller bridged), delays in seconds
Result = tuple[list[float], list[float], float]


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def serve_simulator(count: int, workdir: Path) -> None:
    """Child process: run the simulator, place the calls once the client is ready, report the probe as JSON."""
    probe = Probe()
    sim = Simulator(hostname="bench", seed=1, heartbeat=20.0, observer=probe, job_delay=JOB_DELAY)
    sim.start(host="127.0.0.1", port=0)
    for index in range(AGENTS):
        sim.add_agent(str(1000 + index), behaviour="answer", answer_after=0.01)
    (workdir / "port").write_text(str(sim.port))
    sim.wait_until(lambda: (workdir / "go").exists(), timeout=60, interval=0.05)
    placed = []
    for _ in range(count):
        placed.append(sim.place_call(variables={"fsrouter_queue": "support"}, patience=120.0, talk_time=0.05))
        gevent.sleep(1.0 / CALLS_PER_SECOND)
    sim.wait_until(lambda: all(sim.calls[u].state == "ended" for u in placed), timeout=120)
    sim.stop()
    (workdir / "result.json").write_text(json.dumps(probe.result()))


def through_simulator(count: int, client: Callable[[int], Callable[[], None]]) -> Result:
    """Start the simulator child, connect ``client(port)`` (which returns its stop function), run the calls."""
    workdir = Path(tempfile.mkdtemp(prefix="fsrouter-bench-"))
    child = subprocess.Popen([sys.executable, "-m", "bench.latency", "--serve", str(workdir), "--calls", str(count)])
    Simulator.wait_until(lambda: (workdir / "port").exists(), timeout=30, interval=0.05)
    stop = client(int((workdir / "port").read_text()))
    (workdir / "go").touch()
    Simulator.wait_until(lambda: child.poll() is not None, timeout=300, interval=0.1)
    stop()
    to_originate, to_bridge, legs_per_caller = json.loads((workdir / "result.json").read_text())
    return to_originate, to_bridge, legs_per_caller


def fsrouter_client(port: int, queue_waits: list[float]) -> Callable[[], None]:
    """The daemon; once stopped, ``queue_waits`` holds the seconds each ESL command waited before its write."""
    workdir = Path(tempfile.mkdtemp(prefix="fsrouter-bench-"))
    agents = "\n".join(
        f"  - id: agent-{1000 + i}\n    endpoint: user/{1000 + i}\n    queues: [support]" for i in range(AGENTS)
    )
    rules = workdir / "rules.yaml"
    rules.write_text(f"version: 1\nqueues:\n  support:\n    strategy: longest-idle\n    wrapup: 0\nagents:\n{agents}\n")
    settings = Settings(
        esl=(f"127.0.0.1:{port}",),
        rules=str(rules),
        db=str(workdir / "bench.db"),
        metrics_listen="127.0.0.1:0",
        control_socket=str(workdir / "bench.sock"),
    )
    daemon = Daemon(settings)
    daemon.start()
    Simulator.wait_until(lambda: all(node.connected for node in daemon.nodes.values()), timeout=10)

    def stop() -> None:
        daemon.stop()
        queue_waits.extend(daemon.command_queue_waits)

    return stop


def baseline_client(port: int) -> Callable[[], None]:
    """The bare greenswitch client: answer, originate round-robin, bridge on answer."""
    client = InboundESL(host="127.0.0.1", port=port, password="ClueCon")
    client.connect()
    agents = itertools.cycle(str(1000 + i) for i in range(AGENTS))
    callers_of_legs: dict[str, str] = {}

    def on_park(event: Any) -> None:
        headers = event.headers
        if "variable_fsrouter_queue" not in headers or "variable_fsrouter_leg" in headers:
            return
        caller, leg = headers["Unique-ID"], str(uuid.uuid4())
        callers_of_legs[leg] = caller
        client.send(f"api uuid_answer {caller}")
        client.send(
            f"bgapi originate {{origination_uuid={leg},fsrouter_leg=agent,fsrouter_call={caller}}}"
            f"user/{next(agents)} &park()"
        )

    def on_answer(event: Any) -> None:
        leg = event.headers.get("Unique-ID", "")
        if leg in callers_of_legs:
            client.send(f"api uuid_bridge {callers_of_legs.pop(leg)} {leg}")

    client.register_handle("CHANNEL_PARK", lambda event: gevent.spawn(on_park, event))
    client.register_handle("CHANNEL_ANSWER", lambda event: gevent.spawn(on_answer, event))
    client.send("event plain CHANNEL_PARK CHANNEL_ANSWER")
    return client.stop


def main(argv: list[str] | None = None) -> None:
    """Run with ``argv`` (default: none, as ``python -m bench`` runs every module; ``python -m bench.latency
    --calls N`` passes its own)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--serve", metavar="WORKDIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv or [])
    if args.serve:
        serve_simulator(args.calls, Path(args.serve))
        return
    # ERROR: the simulator child exits when its calls are done, which the daemon rightly warns about
    logging.basicConfig(level=logging.ERROR)
    baseline = through_simulator(args.calls, baseline_client)
    queue_waits: list[float] = []
    ours = through_simulator(args.calls, lambda port: fsrouter_client(port, queue_waits))
    out = sys.stdout
    out.write(
        f"latency over {args.calls} calls through the simulator ({AGENTS} agents, {CALLS_PER_SECOND:.0f} calls/s, "
        f"originate result {JOB_DELAY * 1000:.0f} ms after the answer)\n"
    )
    for label, mine, base in (("park -> originate", ours[0], baseline[0]), ("answer -> bridge", ours[1], baseline[1])):
        p50, p99 = percentiles(mine)
        b50, b99 = percentiles(base)
        out.write(
            f"  {label:<18} fsrouter p50 {p50:6.2f} ms  p99 {p99:6.2f} ms   (n={len(mine)})\n"
            f"  {'':<18} baseline p50 {b50:6.2f} ms  p99 {b99:6.2f} ms   (n={len(base)})\n"
            f"  {'':<18} ratio    p50 {p50 / b50:6.2f}     p99 {p99 / b99:6.2f}\n"
        )
    q50, q99 = percentiles(queue_waits)
    out.write(f"  {'command queue':<18} fsrouter p50 {q50:6.2f} ms  p99 {q99:6.2f} ms   (n={len(queue_waits)})\n")
    out.write(f"  {'agent legs/caller':<18} fsrouter {ours[2]:.2f}   baseline {baseline[2]:.2f}   (goal 1.00)\n")


if __name__ == "__main__":
    main(sys.argv[1:])
