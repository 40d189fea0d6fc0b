"""``fsrouter demo``: the real daemon routing simulated calls, with no FreeSWITCH installed.

The built-in simulator (``fsrouter/sim``) listens on loopback and speaks the real event-socket protocol; the
daemon connects to it exactly as it would to FreeSWITCH. Simulated agents answer (most of them), are busy or let
it ring; simulated callers arrive at random (Poisson), wait with a patience and hang up after talking.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from importlib import resources

import gevent

from fsrouter.config.settings import Settings
from fsrouter.core.events import StopTakingCalls
from fsrouter.daemon import Daemon
from fsrouter.sim import Simulator

#: agent behaviours of the demo, by share: most answer, a few are unreliable so that retries show up
DEMO_BEHAVIOURS = ("answer", "no_answer", "busy", "reject")
DEMO_BEHAVIOUR_WEIGHTS = (0.75, 0.1, 0.1, 0.05)
#: caller numbers: Paris and Lyon landlines, a mobile, and the demo rules' VIP number
DEMO_CALLERS = ("+33142000001", "+33472000002", "+33612000003", "+33142999999")


@dataclass(frozen=True, slots=True)
class DemoTraffic:
    callers_per_minute: float
    talk_time: tuple[float, float] = (4.0, 15.0)
    patience: tuple[float, float] = (15.0, 60.0)


def demo_rules_path() -> str:
    return str(resources.files("fsrouter") / "demo-rules.yaml")


def add_agents(sim: Simulator, count: int, rng: random.Random) -> None:
    for index in range(count):
        behaviour = "answer" if index == 0 else rng.choices(DEMO_BEHAVIOURS, DEMO_BEHAVIOUR_WEIGHTS)[0]
        sim.add_agent(str(1000 + index), behaviour=behaviour, answer_after=rng.uniform(0.5, 3.0))


def generate_callers(sim: Simulator, traffic: DemoTraffic, rng: random.Random, placed: list[str]) -> None:
    """Poisson arrivals, 70 % support / 30 % sales, a quarter of them held a third of the call, until killed."""
    while True:
        gevent.sleep(rng.expovariate(traffic.callers_per_minute / 60.0))
        queue = "support" if rng.random() < 0.7 else "sales"
        talk_time = rng.uniform(*traffic.talk_time)
        placed.append(
            sim.place_call(
                caller_number=rng.choice(DEMO_CALLERS),
                destination="5003",
                variables={"fsrouter_queue": queue},
                patience=rng.uniform(*traffic.patience),
                talk_time=talk_time,
                hold_time=talk_time / 3 if rng.random() < 0.25 else 0.0,
            )
        )


def render(daemon: Daemon, placed: int, started: float) -> str:
    snapshot = daemon.router.snapshot(time.time())
    outcomes = Counter(record.outcome for record in daemon.store.calls(since=started))
    nodes = " ".join(f"{name}={'up' if up else 'DOWN'}" for name, up in snapshot.nodes.items())
    lines = [
        f"fsrouter demo  {time.time() - started:5.0f}s  metrics http://127.0.0.1:{daemon.metrics_port}/metrics",
        f"ESL: {nodes or 'connecting'}"
        f"   callers placed: {placed}   " + " ".join(f"{k}={v}" for k, v in sorted(outcomes.items())),
        "",
        f"{'QUEUE':<10} {'WAITING':>7} {'OLDEST':>7} {'TALKING':>7}  AGENTS",
    ]
    for queue in snapshot.queues:
        oldest = f"{snapshot.taken_at - queue.oldest_entered_at:.0f}s" if queue.oldest_entered_at else "-"
        agents = " ".join(f"{state}={count}" for state, count in queue.agents.items() if count)
        agents += f"  (phone not registered: {queue.unregistered})" if queue.unregistered else ""
        lines.append(f"{queue.name:<10} {queue.waiting:>7} {oldest:>7} {queue.talking:>7}  {agents}")
    return "\n".join(lines)


def watch_interrupts() -> list[int]:
    """Ctrl-C or SIGTERM (``timeout``, ``docker stop``, a CI runner) ends the demo with its summary; a second one
    stops waiting for the calls in flight. Returns the list the signals are appended to."""
    received: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, received.append, signum)
    return received


def run_demo(
    *,
    duration: float | None,
    agents: int,
    callers_per_minute: float,
    rules: str | None,
    db: str | None,
    metrics_listen: str,
    seed: int,
) -> None:
    rng = random.Random(seed)
    workdir = tempfile.mkdtemp(prefix="fsrouter-demo-")
    db = db or os.path.join(workdir, "fsrouter.db")
    sim = Simulator(hostname="demo", seed=seed)
    sim.start(host="127.0.0.1", port=0)
    add_agents(sim, agents, rng)
    settings = Settings(
        esl=(f"127.0.0.1:{sim.port}",),
        rules=rules or demo_rules_path(),
        db=db,
        metrics_listen=metrics_listen,
        control_socket=os.path.join(workdir, "fsrouter.sock"),
        grace=90.0,
    )
    daemon = Daemon(settings)
    daemon.start()
    out = sys.stdout
    out.write(f"SQLite call store: {db}\ncontrol socket: {settings.control_socket}\n")
    placed: list[str] = []
    started = time.time()
    generator = gevent.spawn(generate_callers, sim, DemoTraffic(callers_per_minute), rng, placed)
    interactive = out.isatty()
    interrupts = watch_interrupts()
    while (duration is None or time.time() - started < duration) and not interrupts:
        gevent.sleep(1.0)
        view = render(daemon, len(placed), started)
        out.write(("\x1b[H\x1b[2J" + view + "\n") if interactive else view.splitlines()[1] + "\n")
        out.flush()
    if interrupts:
        out.write("\ninterrupted (again to stop without waiting for the calls in flight)\n")
    generator.kill()
    out.write(f"no new callers; letting {len(daemon.router.calls)} calls in flight finish...\n")
    out.flush()
    daemon.submit(StopTakingCalls())
    Simulator.wait_until(lambda: not daemon.router.calls or len(interrupts) > 1, timeout=settings.grace, interval=0.2)
    records = daemon.store.calls(since=started - 1)
    recorded = {record.uuid for record in records}
    outcomes = Counter(record.outcome for record in records)
    daemon.stop()
    sim.stop()
    missing = [uuid for uuid in placed if uuid not in recorded]
    out.write(
        f"\nsummary: {len(placed)} calls placed, {len(records)} recorded, {len(missing)} missing\n"
        + "".join(f"  {outcome:<10} {count}\n" for outcome, count in sorted(outcomes.items()))
        + f"store: {db}\n"
    )
    if missing:
        raise SystemExit(f"calls without a record: {', '.join(missing[:5])}")
