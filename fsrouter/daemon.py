"""The daemon: wires the ESL nodes, the pure router, the store, metrics and the control socket together.

Greenlets (gevent):

- one *core loop* that owns the router: it takes events from one queue, calls ``Router.handle(event, now)``
  and hands the commands out; nothing else touches the router, so it needs no locks;
- per FreeSWITCH node, a *writer* and a *reply checker* (``EslNode.send``, ``adapters/esl.py``) that pipeline
  that node's ESL commands in order: no command waits for the reply to the one before (a slow reply never stalls
  routing on the core loop), and a refused command comes back to the core loop as ``CommandFailed``;
- a *ticker* that feeds ``Tick`` events for timers, and a *watchdog* that pings systemd only while the core
  loop keeps ticking;
- one *auditor* per node that lists its channels every ``reconcile_interval`` seconds and hands the listing to
  the core loop (``ChannelsAudited``), which heals what the router missed; one audit of a node at a time;
- the ESL connection keepers (``adapters/esl.py``), the metrics HTTP server and the control socket.

The core loop writes the router's store commands through one ``StoreWriter`` (``adapters/store_writer.py``): a
failing call store delays them, in order, and never stops routing. A core loop that ends for any reason while the
daemon runs stops the daemon, and ``run()`` raises ``CoreLoopDied`` (exit status 1, for systemd to restart it):
a daemon that answers but routes nothing is worse than a restart.

Signals follow gunicorn's arbiter: handlers only enqueue, and ``run()`` dispatches them one at a time to
``handle_hup`` (validate then swap the rules; the old ones stay on any error), ``handle_term`` (stop taking
calls, drain those in flight for up to ``grace`` seconds, hang up the agent legs not in a conversation, exit) and
``handle_int`` (a second TERM, or INT: stop now).
"""

from __future__ import annotations

import functools
import logging
import math
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast, get_args

import gevent
import gevent.event
import gevent.queue
from prometheus_client import CollectorRegistry

from fsrouter import __version__, systemd
from fsrouter.adapters.esl import EslNode
from fsrouter.adapters.instance_lock import FileInstanceLock
from fsrouter.adapters.metrics import Metrics, serve
from fsrouter.adapters.store import SqliteCallStore
from fsrouter.adapters.store_writer import StoreWriter
from fsrouter.config.rules_loader import load_rules, load_rules_in_thread
from fsrouter.config.settings import Settings
from fsrouter.control import ControlServer
from fsrouter.core.commands import (
    ActionOutcome,
    Answer,
    Bridge,
    Command,
    EslCommand,
    Kill,
    Originate,
    PlayMusic,
    RecordAgentState,
    RecordCall,
    RecordOffer,
    RecordTrace,
    RecordWrapUp,
    SaveWaiting,
    StoreCommand,
    Transfer,
)
from fsrouter.core.events import (
    AGENT_ACTIONS,
    AgentAction,
    AgentControl,
    CallsRestored,
    ChannelGone,
    CommandFailed,
    Event,
    FailedCommand,
    Failure,
    ReleaseAgentLegs,
    StopTakingCalls,
    Tick,
)
from fsrouter.core.kpi import KpiTracker
from fsrouter.core.lifecycle import ActionResult
from fsrouter.core.routing import Heal, Router
from fsrouter.core.rules import Rules
from fsrouter.errors import (
    BadRequest,
    CallGone,
    CoreLoopDied,
    CoreNotAnswering,
    EslError,
    EslNotConnected,
    EslTimeout,
    FsrouterError,
    ReloadNotApplied,
    RuleError,
    UnknownCommand,
)

log = logging.getLogger(__name__)

_STORE_COMMANDS = get_args(StoreCommand)

UNKNOWN_QUEUE_LOG_INTERVAL = 60.0
"""Seconds between two log lines about callers asking for the same unknown queue."""
UNKNOWN_QUEUE_NAMES_KEPT = 1000
"""Unknown queue names remembered for that interval before the expired ones are forgotten (caller input: bounded)."""

RELOAD_WAIT = 10.0
"""Seconds a reload waits for the core loop to take the new rules (it takes them between two events)."""

ACTION_WAIT = 5.0
"""Seconds an operator's action from the control socket waits for the core loop's ``ActionOutcome``."""

RELEASE_WAIT_COMMAND_TIMEOUTS = 2
"""How long, in ``command_timeout`` units, a stop waits for the agent legs to be hung up once the calls drained.
(systemd's ``TimeoutStopSec`` must exceed ``grace`` plus this.)"""

RECENT_QUEUE_WAITS = 10_000
"""How many of the last command queue waits the daemon keeps for ``bench/latency.py``."""

#: which command failures the router must hear about, and the channel they concern
_FEEDBACK: dict[type, tuple[FailedCommand, Callable[[Any], str]]] = {
    Answer: (FailedCommand.ANSWER, lambda c: c.uuid),
    Originate: (FailedCommand.ORIGINATE, lambda c: c.leg_uuid),
    Bridge: (FailedCommand.BRIDGE, lambda c: c.caller_uuid),
}


def describe(command: Command) -> str:
    """One log line per decision, with the call UUID first so that grep finds a call's whole story."""
    match command:
        case Originate():
            return f"call={command.call_uuid} offer agent_leg={command.leg_uuid} endpoint={command.endpoint}"
        case Bridge():
            return f"call={command.caller_uuid} bridge agent_leg={command.agent_uuid}"
        case Answer() | PlayMusic() | Kill() | Transfer():
            return f"call={command.uuid} {type(command).__name__.lower()} {command}"
        case RecordCall():
            r = command.record
            return (
                f"call={r.uuid} ended outcome={r.outcome} queue={r.queue} agent={r.agent} "
                f"wait={r.wait_seconds:.1f}s talk={r.talk_seconds:.1f}s hold={r.hold_seconds:.1f}s "
                f"cause={r.hangup_cause}"
            )
        case RecordAgentState():
            return f"agent={command.record.agent} state={command.record.state} reason={command.record.reason}"
        case RecordWrapUp():
            w = command.record
            return f"call={w.call_uuid} wrap_up agent={w.agent} seconds={w.seconds:.1f}"
        case RecordOffer():
            r2 = command.record
            return f"call={r2.call_uuid} offer_end agent={r2.agent} result={r2.result}"
        case RecordTrace():
            trace = command.trace
            return f"call={command.call_uuid} decision {trace.get('kind', 'offer')} chosen={trace.get('chosen')}"
        case SaveWaiting():
            return f"call={command.call.uuid} kept for a restart queue={command.call.queue}"
        case ActionOutcome():
            return f"agent={command.agent} {command.describe()} source={command.source} state={command.state}"
    return str(command)


def _log_not_taken(uuid: str) -> None:
    """A caller parked while the router drains (``Router``'s ``on_not_taken``)."""
    log.warning(
        "call=%s parked while fsrouter is stopping: not taken; it stays parked for the next fsrouter start to take "
        "back (route it elsewhere in the dialplan if none will start)",
        uuid,
    )


def describe_heal(heal: Heal) -> str:
    """One log line per reconciliation heal, the call UUID first like ``describe`` when the router knows it."""
    call = f"call={heal.call} " if heal.call else ""
    return f"{call}reconcile {heal.kind} channel={heal.channel} node={heal.node}"


class Daemon:
    """One fsrouter process. ``start()`` runs it in the background; ``run()`` also handles signals."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.started_at = clock()
        rules = load_rules(settings.rules, now=self.started_at)
        #: held until ``stop``: a second daemon on this store refuses to start (InstanceLocked)
        self.lock = FileInstanceLock(settings.db)
        self.lock.acquire()
        try:
            self.store = SqliteCallStore(settings.db)
        except BaseException:
            self.lock.release()
            raise
        self.store_writer = StoreWriter(self.store)
        self.router = Router(
            rules,
            now=self.started_at,
            emit_traces=True,
            on_heal=lambda heal: log.warning(describe_heal(heal)),
            bridge_timeout=settings.bridge_timeout,
            on_unknown_queue=self._unknown_queue,
            on_not_taken=_log_not_taken,
        )
        #: unknown queue name -> when it was last logged
        self._unknown_queues_logged: dict[str, float] = {}
        self.registry = CollectorRegistry()
        #: the rolling-window KPIs ``/metrics`` and ``fsrouter status`` both read
        self.kpi = KpiTracker(start=self.started_at)
        self.metrics = Metrics(
            self.registry,
            lambda: self.router.snapshot(self.clock()),
            kpi=self.kpi,
            store=self.store_writer,
            agent_labels=settings.agent_labels,
            build_version=__version__,
        )
        self.metrics.configure(rules)
        self.metrics_port = 0
        self._metrics_server: Any = None
        self._events: gevent.queue.Queue[Event | _CoreRequest] = gevent.queue.Queue()
        self._signals: gevent.queue.Queue[int] = gevent.queue.Queue()
        #: seconds each of the last ESL commands waited in fsrouter before it was written, oldest first
        self.command_queue_waits: deque[float] = deque(maxlen=RECENT_QUEUE_WAITS)
        self.nodes: dict[str, EslNode] = {}
        for name, host, port, password in settings.nodes():
            self.nodes[name] = EslNode(
                name,
                host,
                port,
                password,
                self.submit,
                instance=settings.instance,
                command_timeout=settings.command_timeout,
                count_event=self.metrics.esl_event,
                on_command_written=functools.partial(self._command_written, name),
                on_command_dropped=functools.partial(self._command_dropped, name),
                on_command_failed=functools.partial(self._command_failed, name),
            )
        self.metrics.esl_nodes(list(self.nodes))
        self.control = ControlServer(settings.control_socket, self._control, mutating={"reload", "agent"})
        self._greenlets: list[gevent.Greenlet] = []
        self._last_loop_at = self.started_at
        self._stopped = gevent.event.Event()
        #: why the daemon stopped on its own (``run`` raises it), or None
        self.failure: CoreLoopDied | None = None
        self._ready_sent = False
        self.terminating = False

    # ------------------------------------------------------------------ lifecycle

    def _unknown_queue(self, name: str) -> None:
        """A caller's ``fsrouter_queue`` names no queue of the rules: counted, and logged once per name per
        ``UNKNOWN_QUEUE_LOG_INTERVAL`` (the name is caller input: the log has it, never a metric label)."""
        self.metrics.unknown_queue()
        now = self.clock()
        logged = self._unknown_queues_logged
        if now - logged.get(name, -math.inf) < UNKNOWN_QUEUE_LOG_INTERVAL:
            return
        if len(logged) >= UNKNOWN_QUEUE_NAMES_KEPT:
            self._unknown_queues_logged = logged = {
                known: at for known, at in logged.items() if now - at < UNKNOWN_QUEUE_LOG_INTERVAL
            }
        logged[name] = now
        log.warning(
            "fsrouter_queue=%r names no queue of the rules: the caller goes to the default route (logged once a "
            "minute per name; fsrouter_unknown_queue_total counts them all)",
            name,
        )

    def submit(self, event: Event | _CoreRequest) -> None:
        """Hand an event to the core loop (safe from any greenlet; never blocks)."""
        self._events.put(event)

    def start(self) -> None:
        self._restore()  # first in the queue: ahead of any operator command, node or call
        host, port = self.settings.metrics_address()
        self._metrics_server, self.metrics_port = serve(self.registry, host, port)
        self.control.start()
        core_loop = gevent.spawn(self._core_loop)
        core_loop.link(self._core_loop_ended)
        self._greenlets = [core_loop, gevent.spawn(self._ticker)]
        if self.settings.reconcile_interval > 0:
            self._greenlets += [gevent.spawn(self._auditor, name) for name in self.nodes]
        if systemd.watchdog_interval():
            self._greenlets.append(gevent.spawn(self._watchdog))
        for node in self.nodes.values():
            node.start()
        log.info(
            "fsrouter %s started: instance=%s rules=%s version=%s db=%s metrics=%s:%d nodes=%s",
            __version__,
            self.settings.instance,
            self.settings.rules,
            self.router.rules.version,
            self.settings.db,
            host,
            self.metrics_port,
            ",".join(self.nodes),
        )

    def _restore(self) -> None:
        """Hand the router what the previous process left: the calls it never recorded, their offers, and the
        agents' last states (``CallsRestored``: the router decides what becomes of each)."""
        calls = tuple(self.store.waiting())
        self.submit(
            CallsRestored(
                calls=calls,
                offers=tuple(offer for call in calls for offer in self.store.offers(call.uuid)),
                agent_states=tuple(self.store.last_agent_states().values()),
            )
        )

    def stop(self) -> None:
        """Stop now: close connections, servers and the store (calls in FreeSWITCH are left as they are, and so
        are commands not written yet: ``drain`` waits for them first)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        systemd.stopping()
        gevent.killall(self._greenlets, timeout=2)
        for node in self.nodes.values():
            node.stop()
        self.control.stop()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        self.store_writer.close()
        self.lock.release()
        log.info("fsrouter stopped")

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return bool(self._stopped.wait(timeout))

    def run(self) -> None:
        """Start, then dispatch signals until stopped (the process's main loop); raises ``CoreLoopDied`` if the
        daemon stopped because its core loop ended."""
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, self._signals.put, signum)
        self.start()
        handlers = {signal.SIGHUP: self.handle_hup, signal.SIGTERM: self.handle_term, signal.SIGINT: self.handle_int}
        while not self._stopped.is_set():
            try:
                signum = self._signals.get(timeout=0.5)
            except gevent.queue.Empty:
                continue
            handlers[signal.Signals(signum)]()
        if self.failure is not None:
            raise self.failure

    def handle_hup(self) -> None:
        try:
            self.reload()
        except FsrouterError as exc:
            log.error("reload refused, old rules kept: %s", exc)

    def handle_term(self) -> None:
        if self.terminating:
            self.handle_int()
            return
        self.terminating = True
        gevent.spawn(self.drain, self.settings.grace)

    def handle_int(self) -> None:
        log.warning("stopping now; calls in flight stay in FreeSWITCH and are re-learnt at the next start")
        self.stop()

    def drain(self, grace: float) -> None:
        """Stop taking calls, let the calls in flight finish for up to ``grace`` seconds, hang up the agent legs
        not in a conversation, then stop."""
        systemd.stopping()
        self.submit(StopTakingCalls())
        deadline = self.clock() + grace
        log.info("draining: %d calls in flight, up to %.0f s", len(self.router.calls), grace)
        while self.router.calls and self.clock() < deadline and not self._stopped.is_set():
            gevent.sleep(0.1)
        if self.router.calls:
            log.warning("grace period over with %d calls still in flight", len(self.router.calls))
        if not self._stopped.is_set():
            self._release_agent_legs(RELEASE_WAIT_COMMAND_TIMEOUTS * self.settings.command_timeout)
        self.stop()

    def _release_agent_legs(self, timeout: float) -> None:
        """Have the router hang up every agent leg not in a conversation, and wait up to ``timeout`` seconds for
        every node to have written and seen answered all its commands, every originate in flight settled and the
        kill held for it sent; what a node could not clean up (unreachable, say) is logged in one line, and the
        next start's audit kills those legs (``orphan_leg``)."""
        self.submit(ReleaseAgentLegs())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stopped.is_set():
            # the core loop hands out the commands of an event before it yields: once the router has taken
            # ReleaseAgentLegs, its kills are with the nodes
            if self.router.offering_stopped and all(node.settled() for node in self.nodes.values()):
                return
            gevent.sleep(0.05)
        for name, node in self.nodes.items():
            legs = node.unsettled_legs()
            if legs:
                log.warning(
                    "node %s: %d agent legs may be left in FreeSWITCH, for the next start's audit to kill: %s",
                    name,
                    len(legs),
                    " ".join(sorted(legs)),
                )

    def reload(self, *, dry_run: bool = False) -> dict[str, Any]:
        """Validate the rules file completely, then have the core loop swap it in between two events (router,
        metrics and KPI tracker together) and say what changed; raises RuleError and keeps the old rules, or
        ReloadNotApplied when the core loop did not take them within ``RELOAD_WAIT`` seconds."""
        systemd.reloading()
        try:
            try:
                new_rules = load_rules_in_thread(self.settings.rules, now=self.clock())
            except RuleError:
                self.metrics.rules_reload(False)
                raise
            swap = _SwapRules(new_rules, dry_run=dry_run)
            self.submit(swap)
            try:
                diff: dict[str, Any] = swap.result.get(timeout=RELOAD_WAIT)
                return diff
            except gevent.Timeout:
                raise ReloadNotApplied(f"the core loop did not take the new rules within {RELOAD_WAIT:g} s") from None
        finally:
            systemd.ready()

    def _swap_rules(self, swap: _SwapRules, now: float) -> list[Command]:
        """On the core loop: the reload's diff from the router's own state; then, unless a dry run, the router,
        the metrics and the KPI tracker take the new rules together."""
        diff = self.router.reload_diff(swap.rules, now)
        commands: list[Command] = []
        if not swap.dry_run:
            commands = self.router.load_rules(swap.rules, now)
            self.metrics.configure(swap.rules)
            self.metrics.rules_reload(True)
            log.info("rules reloaded: version %s, %s", swap.rules.version, diff)
        swap.result.set(diff)
        return commands

    def agent_action(self, control: AgentControl) -> dict[str, Any]:
        """Have the core loop do an operator's action and answer with what it did (``ActionOutcome`` as a dict:
        agent, action, source, result, reason, state); raises CoreNotAnswering when it did not answer within
        ``ACTION_WAIT`` seconds (the action may still be done later)."""
        request = _AgentRequest(control)
        self.submit(request)
        try:
            outcome = request.result.get(timeout=ACTION_WAIT)
        except gevent.Timeout:
            raise CoreNotAnswering(
                f"the core loop did not answer {control.action} of {control.agent_id} within {ACTION_WAIT:g} s"
            ) from None
        return vars_of(outcome)

    # ------------------------------------------------------------------ greenlets

    def _core_loop(self) -> None:
        while True:
            event = self._events.get()
            now = self.clock()
            self._last_loop_at = now
            try:
                if isinstance(event, _SwapRules):
                    commands = self._swap_rules(event, now)
                elif isinstance(event, _AgentRequest):
                    commands = self.router.handle(event.control, now)
                    event.result.set(next(c for c in commands if isinstance(c, ActionOutcome)))
                else:
                    commands = self.router.handle(event, now)
            except Exception as exc:
                # a bug must cost one event, never the routing of every other call
                log.exception("router failed on %r; event dropped", event)
                if isinstance(event, _SwapRules | _AgentRequest):
                    event.result.set_exception(exc)
                continue
            self._dispatch(commands)
            if not self._ready_sent and any(node.connected for node in self.nodes.values()):
                self._ready_sent = True
                systemd.ready()

    def _core_loop_ended(self, core_loop: gevent.Greenlet) -> None:
        """Called in the hub when the core loop greenlet ends: unless the daemon is stopping, nothing routes any
        more, so the daemon stops (in a greenlet of its own: the hub cannot block) and ``run`` raises."""
        if self._stopped.is_set():
            return
        self.failure = CoreLoopDied(f"the core loop ended, nothing was routed any more: {core_loop.exception!r}")
        log.critical("%s; stopping", self.failure)  # gevent has printed the traceback
        gevent.spawn(self.stop)

    def _dispatch(self, commands: list[Command]) -> None:
        """Hand out one event's commands, in order: ESL commands to their node, store commands to the store's
        writer (written at once, or delayed in order while the store fails), then retry what the store still owes."""
        for command in commands:
            if isinstance(command, ActionOutcome):
                (log.warning if command.result is ActionResult.REFUSED else log.info)(describe(command))
            elif isinstance(command, _STORE_COMMANDS):
                self.store_writer.apply(command)
                self.metrics.observe(command)
                (log.debug if isinstance(command, SaveWaiting) else log.info)(describe(command))
            else:
                log.debug(describe(command))
                esl_command = cast(EslCommand, command)
                self.nodes[esl_command.node].send(esl_command)
        self.store_writer.retry()

    def _command_written(self, node: str, seconds: float) -> None:
        self.metrics.esl_command_queued(node, seconds)
        self.command_queue_waits.append(seconds)

    def _command_dropped(self, node: str, command: EslCommand) -> None:
        self.metrics.esl_command_dropped(node, type(command).__name__.lower())

    def _command_failed(self, node: str, command: EslCommand, exc: EslError) -> None:
        """Tell the router what a failed command means: a channel FreeSWITCH says is gone (``ChannelGone``: its
        hang-up event was lost), or the failure of a command it must hear of, refused or of unknown fate (no reply:
        the reconciliation after the reconnect, NodeUp, settles it)."""
        if isinstance(exc, CallGone) and exc.uuid is not None and isinstance(command, (Answer, PlayMusic, Bridge)):
            log.warning("%s: channel %s gone on %s: %s", describe(command), exc.uuid, node, exc)
            self.submit(ChannelGone(node=node, uuid=exc.uuid))
            return
        unknown = isinstance(exc, (EslNotConnected, EslTimeout))
        log.warning("%s %s on %s: %s", describe(command), "got no reply" if unknown else "failed", node, exc)
        feedback = _FEEDBACK.get(type(command))
        if feedback is not None:
            kind, channel = feedback
            failure = Failure.UNKNOWN if unknown else Failure.REFUSED
            self.submit(CommandFailed(node=node, command=kind, uuid=channel(command), reason=str(exc), failure=failure))

    def _auditor(self, name: str) -> None:
        """Audit node ``name`` every ``reconcile_interval`` seconds, one audit after the other, and hand each
        listing to the core loop; a failed audit is logged in one line and the next period tries again."""
        node = self.nodes[name]
        interval = self.settings.reconcile_interval
        while True:
            gevent.sleep(interval)
            if not node.connected:
                continue  # the loss is logged by the adapter, and NodeUp reconciles once the link is back
            try:
                self.submit(node.audit(clock=self.clock))
            except EslNotConnected:
                continue  # lost meanwhile, or still re-learning after a reconnect
            except EslError as exc:
                log.warning("reconcile: audit of node %s failed, next try in %g s: %s", name, interval, exc)

    def _ticker(self) -> None:
        while True:
            gevent.sleep(self.settings.tick)
            self.submit(Tick())

    def _watchdog(self) -> None:
        interval = systemd.watchdog_interval() or 30.0
        while True:
            gevent.sleep(interval / 2)
            if self.clock() - self._last_loop_at < interval / 2:
                systemd.watchdog()

    # ------------------------------------------------------------------ control socket

    def _control(self, command: str, args: dict[str, Any], uid: int) -> Any:
        now = self.clock()
        if command == "reload":
            return self.reload(dry_run=bool(args.get("dry_run")))
        if command == "agent":
            action = str(args["action"])
            if action not in AGENT_ACTIONS:
                raise BadRequest(f"unknown agent action {action!r}: expected one of {', '.join(AGENT_ACTIONS)}")
            return self.agent_action(
                AgentControl(
                    agent_id=str(args["agent"]),
                    action=AgentAction(action),
                    source=f"uid {uid}",
                    cancel_ring=bool(args.get("cancel_ring")),
                )
            )
        if command == "explain":
            call_uuid = str(args["call"])
            traces = self.store.trace(call_uuid)
            # a caller still waiting also gets a fresh "why is it still waiting" trace (``live``); nothing else
            traces += [trace for trace in self.router.explain(call_uuid, now) if trace.get("live")]
            return traces
        if command == "version":
            return {"version": __version__}
        if command == "status":
            return status_document(self, self.router.snapshot(now))
        if command in ("calls", "agents", "queues"):  # the snapshot's views of that name
            return [vars_of(view) for view in getattr(self.router.snapshot(now), command)]
        raise UnknownCommand(f"unknown command {command!r}")


class _SwapRules:
    """Internal event: the core loop swaps the rules between two events, never in the middle of one, and sets
    ``result`` to the reload's diff (``Router.reload_diff``)."""

    def __init__(self, rules: Rules, *, dry_run: bool) -> None:
        self.rules = rules
        self.dry_run = dry_run
        self.result: gevent.event.AsyncResult[dict[str, Any]] = gevent.event.AsyncResult()


class _AgentRequest:
    """Internal event: an operator's action from the control socket; the core loop sets ``result`` to the
    ``ActionOutcome`` the router answered it with, in the same step as the action's other commands."""

    def __init__(self, control: AgentControl) -> None:
        self.control = control
        self.result: gevent.event.AsyncResult[ActionOutcome] = gevent.event.AsyncResult()


_CoreRequest = _SwapRules | _AgentRequest


def vars_of(view: Any) -> dict[str, Any]:
    """A snapshot view as a JSON-ready dict."""
    return {name: getattr(view, name) for name in view.__slots__}


def status_document(daemon: Daemon, snapshot: Any) -> dict[str, Any]:
    return {
        "version": __version__,
        "uptime_seconds": round(daemon.clock() - daemon.started_at, 1),
        "rules": {
            "path": daemon.settings.rules,
            "version": snapshot.rules_version,
            "loaded_at": snapshot.rules_loaded_at,
        },
        "nodes": {name: node.connected for name, node in daemon.nodes.items()},
        "store": store_status(daemon.settings.db, daemon.store_writer),
        "draining": snapshot.draining,
        "queues": [
            {**vars_of(queue), "kpis": window_kpis(daemon.kpi, queue.name, snapshot.taken_at)}
            for queue in snapshot.queues
        ],
        "agents": [vars_of(agent) for agent in snapshot.agents],
        "calls": len(snapshot.calls),
    }


def window_kpis(kpi: KpiTracker, queue: str, now: float) -> dict[str, dict[str, float | int | None]]:
    """The queue's KPIs over each window of ``/metrics``' gauges (``Kpis.row``, as ``fsrouter report`` names
    them), plus the agent no-answer rate that only the live offers give."""
    windows = {window: kpi.window(queue, window, now) for window in kpi.windows}
    return {
        window: {**stats.row(), "agent_no_answer_rate": stats.agent_no_answer_rate}
        for window, stats in windows.items()
    }


def store_status(path: str, writer: StoreWriter) -> dict[str, Any]:
    """The call store in the status document: ``failing`` with the seconds it has lasted and its cause, the
    store commands waiting to be written (``backlog``) and those never written (``dropped``)."""
    failing_seconds = writer.failing_seconds()
    return {
        "path": path,
        "failing": writer.failing,
        "failing_seconds": None if failing_seconds is None else round(failing_seconds, 1),
        "error": writer.error,
        "backlog": writer.backlog,
        "dropped": writer.dropped,
    }
