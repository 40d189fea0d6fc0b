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
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import gevent
import yaml

from fsrouter.config.settings import Settings
from fsrouter.core.commands import CallRecord
from fsrouter.core.events import StopTakingCalls
from fsrouter.core.kpi import KpiTracker
from fsrouter.core.rules import QueueConfig
from fsrouter.daemon import Daemon
from fsrouter.errors import ConfigError
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


#: agents (and phones) of the packaged demo rules unless ``--agents`` says otherwise
DEMO_AGENTS = 6
#: seconds between two queue views when the output is not a terminal (a file, a pipe, a CI log)
PIPED_VIEW_EVERY = 5.0
#: part of ``--duration`` kept for the calls in flight to finish once no new caller comes (at most DRAIN_MAX s)
DRAIN_SHARE = 0.25
DRAIN_MAX = 30.0
#: seconds the callers still in flight at the end of ``--duration`` get to be recorded after they hang up
CUT_SHORT_WAIT = 5.0


def demo_rules_path() -> str:
    return str(resources.files("fsrouter") / "demo-rules.yaml")


def rules_with_agents(source: str, agents: int | None, workdir: str) -> tuple[str, list[str]]:
    """The rules file the demo runs, and the SIP users of its agents (one simulated phone each).

    With ``agents``, only the first ``agents`` agents the file declares are kept (written to ``workdir``), so the
    screen never shows declared agents with no phone; raises ``ConfigError`` when the file declares fewer."""
    with open(source, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    declared = list(document.get("agents") or [])
    if agents is not None and agents != len(declared):
        if agents > len(declared) or agents < 1:
            raise ConfigError(f"--agents {agents}: {source} declares {len(declared)} agents (1 to {len(declared)})")
        document["agents"] = declared = declared[:agents]
        source = os.path.join(workdir, "demo-rules.yaml")
        with open(source, "w", encoding="utf-8") as handle:
            yaml.safe_dump(document, handle, sort_keys=False)
    users = [str(agent["endpoint"]).split("/", 1)[1].split("@", 1)[0] for agent in declared]
    return source, users


def add_agents(sim: Simulator, users: list[str], rng: random.Random) -> None:
    """One phone per user: the first always answers, the others mostly do (retries show up)."""
    for index, user in enumerate(users):
        behaviour = "answer" if index == 0 else rng.choices(DEMO_BEHAVIOURS, DEMO_BEHAVIOUR_WEIGHTS)[0]
        sim.add_agent(user, behaviour=behaviour, answer_after=rng.uniform(0.5, 3.0))


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


def header(daemon: Daemon, db: str) -> list[str]:
    """Where to look while the demo runs (kept on every screen)."""
    socket = daemon.settings.control_socket
    return [
        f"metrics http://127.0.0.1:{daemon.metrics_port}/metrics   store {db}",
        f"try: fsrouter status --control-socket {socket}   |   fsrouter explain CALL_UUID --control-socket {socket}",
    ]


def render(daemon: Daemon, db: str, placed: int, started: float) -> str:
    snapshot = daemon.router.snapshot(time.time())
    outcomes = Counter(record.outcome for record in daemon.store.calls(since=started))
    nodes = " ".join(f"{name}={'up' if up else 'DOWN'}" for name, up in snapshot.nodes.items())
    lines = [
        f"fsrouter demo  {time.time() - started:5.0f}s",
        *header(daemon, db),
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


def _known(daemon: Daemon, sim: Simulator, uuid: str) -> bool:
    """Whether the daemon took caller ``uuid`` in (or it already left): its park is no longer on its way."""
    return uuid in daemon.router.calls or sim.calls[uuid].state != "parked" or daemon.store.call(uuid) is not None


def service_levels(records: list[CallRecord], queues: Mapping[str, QueueConfig], now: float, since: float) -> str:
    """Each queue's service level over the demo's calls, computed as ``/metrics`` does (``core/kpi.py``)."""
    tracker = KpiTracker(start=since, windows={"demo": max(now - since, 10.0)})
    tracker.configure(queues)
    for record in records:
        tracker.record_call(record)
    parts = []
    for name, queue in queues.items():
        stats = tracker.window(name, "demo", now)
        level = "-" if stats.service_level is None else f"{stats.service_level:.0%}"
        parts.append(f"{name} {level} answered within {queue.service_level_seconds:g} s ({stats.offered} offered)")
    return "service level: " + ", ".join(parts)


def run_demo(
    *,
    duration: float | None,
    agents: int | None,
    callers_per_minute: float,
    rules: str | None,
    db: str | None,
    metrics_listen: str,
    seed: int,
) -> None:
    """Run the demo; ``duration`` bounds the whole run, the calls' drain included (module constants)."""
    rng = random.Random(seed)
    workdir = tempfile.mkdtemp(prefix="fsrouter-demo-")
    db = db or os.path.join(workdir, "fsrouter.db")
    if agents is None and rules is None:
        agents = DEMO_AGENTS
    rules_path, users = rules_with_agents(rules or demo_rules_path(), agents, workdir)
    sim = Simulator(hostname="demo", seed=seed)
    sim.start(host="127.0.0.1", port=0)
    add_agents(sim, users, rng)
    settings = Settings(
        esl=(f"127.0.0.1:{sim.port}",),
        rules=rules_path,
        db=db,
        metrics_listen=metrics_listen,
        control_socket=os.path.join(workdir, "fsrouter.sock"),
        grace=90.0,
    )
    daemon = Daemon(settings)
    daemon.start()
    out = sys.stdout
    out.write("\n".join(header(daemon, db)) + f"\nrules {rules_path}: {len(users)} agents, one phone each\n")
    placed: list[str] = []
    started = time.time()
    deadline = None if duration is None else started + duration
    arrivals_end = None if duration is None else started + duration - min(DRAIN_MAX, duration * DRAIN_SHARE)
    generator = gevent.spawn(generate_callers, sim, DemoTraffic(callers_per_minute), rng, placed)
    interactive = out.isatty()
    interrupts = watch_interrupts()
    last_view = 0.0
    while (arrivals_end is None or time.time() < arrivals_end) and not interrupts:
        gevent.sleep(1.0)
        view = render(daemon, db, len(placed), started)
        if interactive:
            out.write("\x1b[H\x1b[2J" + view + "\n")
        elif time.time() - last_view >= PIPED_VIEW_EVERY:
            out.write("\n" + view + "\n")
            last_view = time.time()
        out.flush()
    if interrupts:
        out.write("\ninterrupted (again to stop without waiting for the calls in flight)\n")
    generator.kill()
    # the last callers' parks may still be on their way: let the daemon take them before it stops taking calls
    Simulator.wait_until(lambda: all(_known(daemon, sim, uuid) for uuid in placed), timeout=5.0, interval=0.05)
    out.write(f"no new callers; letting {len(daemon.router.calls)} calls in flight finish...\n")
    out.flush()
    daemon.submit(StopTakingCalls())
    drain_end = started + settings.grace if deadline is None else deadline
    Simulator.wait_until(
        lambda: not daemon.router.calls or len(interrupts) > 1, timeout=max(0.0, drain_end - time.time()), interval=0.2
    )
    cut_short = [uuid for uuid in placed if sim.calls[uuid].state != "ended"]
    for uuid in cut_short:  # the callers still in flight leave: each call still gets its one record
        sim.hangup(uuid)
    Simulator.wait_until(lambda: not daemon.router.calls, timeout=CUT_SHORT_WAIT, interval=0.1)
    records = daemon.store.calls(since=started - 1)
    recorded = {record.uuid for record in records}
    outcomes = Counter(record.outcome for record in records)
    levels = service_levels(records, daemon.router.rules.queues, time.time(), started)
    daemon.stop()
    sim.stop()
    missing = [uuid for uuid in placed if uuid not in recorded]
    ended_by = "interrupted" if interrupts else "--duration reached"
    out.write(
        f"\nsummary: {len(placed)} calls placed, {len(records)} recorded, {len(missing)} missing\n"
        + "".join(f"  {outcome:<10} {count}\n" for outcome, count in sorted(outcomes.items()))
        + f"{levels}\n"
        + (
            f"cut short ({ended_by}): the demo hung up the {len(cut_short)} callers still in flight (each recorded as"
            " that hang-up ended it)\n"
            if cut_short
            else "nothing cut short: every call in flight finished\n"
        )
        + f"store: {db}\n"
        + f"explore: fsrouter report --db {db}   |   fsrouter report --db {db} --by agent --csv\n"
    )
    if missing:
        raise SystemExit(f"calls without a record: {', '.join(missing[:5])}")
