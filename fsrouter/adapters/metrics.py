"""Prometheus metrics for fsrouter: the only module that imports prometheus_client.

Two kinds of metric, as client_python intends:

- event counters and histograms (calls by outcome, offers by result, wait/talk/wrap-up times), incremented
  by ``Metrics.observe`` from the store commands the router returns, and by the daemon's ``rules_reload`` /
  ``esl_event`` calls;
- point-in-time gauges (queue depth, oldest wait, agents by state, ESL links, rolling-window KPIs, Erlang C
  staffing) computed at scrape time by a custom Collector from ``snapshot()`` and the ``KpiTracker``, never
  kept up to date with ``set()`` calls; the same Collector exports the counters the router keeps itself
  (reconciliation heals), and another one the call store's health as its writer keeps it.

Labels stay bounded: queue names come from the rules, outcomes from ``OUTCOMES``, offer results from
FreeSWITCH's hang-up causes. No call UUID or phone number is ever a label; agent ids only with
``agent_labels=True``.

``serve`` runs the HTTP endpoint on gevent's WSGI server, in the daemon's hub, so a scrape never runs
concurrently with the router greenlet and needs no lock.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol

from gevent.pywsgi import WSGIServer
from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fsrouter import __version__
from fsrouter.core.commands import OUTCOMES, Command, RecordCall, RecordOffer, RecordWrapUp
from fsrouter.core.kpi import NOT_OFFERED_OUTCOMES, KpiTracker, agent_occupancy, is_agent_no_answer, staffed_agents
from fsrouter.core.rules import Rules
from fsrouter.core.snapshot import AGENT_VIEW_STATES, HEAL_KINDS, Snapshot

__all__ = ["ESL_EVENT_KINDS", "Metrics", "MetricsServer", "StoreHealth", "serve"]

logger = logging.getLogger(__name__)

#: wait-time bucket edges in seconds; each queue's service-level threshold is added to them
WAIT_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
TALK_BUCKETS: tuple[float, ...] = (10, 30, 60, 120, 180, 300, 600, 900, 1800, 3600)
WRAPUP_BUCKETS: tuple[float, ...] = (5, 10, 15, 30, 60, 120, 300, 600)
HOLD_BUCKETS: tuple[float, ...] = (5, 15, 30, 60, 120, 300, 600)

#: outcomes of calls that waited in a queue, hence have a wait time worth a histogram sample
WAITED_OUTCOMES = tuple(outcome for outcome in OUTCOMES if outcome not in NOT_OFFERED_OUTCOMES)
ESL_EVENT_KINDS = ("translated", "tracked", "ignored", "malformed")
#: time an ESL command waits in fsrouter before it is written, in seconds: well under a FreeSWITCH reply (~1-8 ms)
#: when all is well, up to the command timeout when the node stalls
COMMAND_QUEUE_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
#: kinds of ESL command, for the label of the commands not sent
ESL_COMMAND_KINDS = ("answer", "playmusic", "originate", "bridge", "kill", "transfer")
RELOAD_RESULTS = ("success", "failure")
#: the per-queue occupancy gauge's old name, exported as an alias of ``fsrouter_queue_occupancy_ratio`` for one
#: release (``docs/kpi.md``)
DEPRECATED_OCCUPANCY = "fsrouter_agent_occupancy_ratio"


class StoreHealth(Protocol):
    """What the metrics read of the writer of store commands (``adapters/store_writer.StoreWriter``)."""

    failures: int
    dropped: int

    @property
    def backlog(self) -> int: ...

    @property
    def failing(self) -> bool: ...


class Metrics:
    """All of fsrouter's metrics, registered in ``registry`` (never the global one).

    Usage::

        metrics = Metrics(
            registry, lambda: router.snapshot(time.time()), kpi=KpiTracker(start=time.time()), store=writer
        )
        metrics.configure(rules)                  # after each load and reload
        for command in router.handle(event, now):
            metrics.observe(command)              # counts calls, offers, wrap-ups; feeds the KpiTracker
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        snapshot: Callable[[], Snapshot],
        *,
        kpi: KpiTracker,
        store: StoreHealth,
        agent_labels: bool = False,
        build_version: str = __version__,
    ) -> None:
        self._registry = registry
        self._kpi = kpi
        self._agent_labels = agent_labels
        agent = ("agent",) if agent_labels else ()
        self._calls = Counter(
            "fsrouter_calls_total",
            "Calls that ended, by queue and outcome.",
            ("queue", "outcome"),
            registry=registry,
        )
        self._offers = Counter(
            "fsrouter_offers_total",
            "Offers of a call to an agent, by how they ended (answered or the lower-case hang-up cause).",
            ("queue", "result", *agent),
            registry=registry,
        )
        self._no_answers = Counter(
            "fsrouter_agent_no_answers_total",
            "Offers presented to an agent and not picked up (no answer, busy, rejected).",
            ("queue", *agent),
            registry=registry,
        )
        self._reloads = Counter(
            "fsrouter_rules_reloads_total", "Rules (re)loads, by result.", ("result",), registry=registry
        )
        self._esl_events = Counter(
            "fsrouter_esl_events_total",
            "ESL events received, by what became of them.",
            ("kind",),
            registry=registry,
        )
        self._command_queue = Histogram(
            "fsrouter_esl_command_queue_seconds",
            "Time an ESL command waited in fsrouter, from the router's decision to its write on the socket.",
            ("node",),
            buckets=COMMAND_QUEUE_BUCKETS,
            registry=registry,
        )
        self._unknown_queues = Counter(
            "fsrouter_unknown_queue",
            "Callers whose fsrouter_queue names no queue of the rules (they went to the default route; the name is "
            "in the log, never a label).",
            registry=registry,
        )
        self._commands_dropped = Counter(
            "fsrouter_esl_commands_dropped_total",
            "ESL commands not sent because their channel was already gone (its hang-up seen, or never created).",
            ("node", "command"),
            registry=registry,
        )
        self._talk = self._histogram("fsrouter_talk_seconds", "Talk time of answered calls.", TALK_BUCKETS)
        self._wrapup = self._histogram("fsrouter_wrapup_seconds", "Agent wrap-up time after a call.", WRAPUP_BUCKETS)
        self._hold = self._histogram("fsrouter_hold_seconds", "Time callers spent on hold by agents.", HOLD_BUCKETS)
        self._wait_edges = WAIT_BUCKETS
        self._wait = self._wait_histogram()
        for result in RELOAD_RESULTS:
            self._reloads.labels(result)
        for kind in ESL_EVENT_KINDS:
            self._esl_events.labels(kind)
        registry.register(_SnapshotCollector(snapshot, kpi, build_version, agent_labels=agent_labels))
        registry.register(_StoreCollector(store))

    # ------------------------------------------------------------------ daemon calls

    def configure(self, rules: Rules) -> None:
        """Adopt ``rules``: wait buckets that include every queue's SL threshold, and zero series for every
        configured queue x outcome, so ``rate()`` and alerts work before the first call."""
        self._kpi.configure(rules.queues)
        edges = tuple(sorted({*WAIT_BUCKETS, *(queue.service_level_seconds for queue in rules.queues.values())}))
        if edges != self._wait_edges:
            # bucket edges are fixed per histogram: a new threshold means a new histogram (a counter reset)
            self._registry.unregister(self._wait)
            self._wait_edges = edges
            self._wait = self._wait_histogram()
        for queue in rules.queues:
            for outcome in OUTCOMES:
                self._calls.labels(queue, outcome)
            for outcome in WAITED_OUTCOMES:
                self._wait.labels(queue, outcome)
            for histogram in (self._talk, self._wrapup, self._hold):
                histogram.labels(queue)
            if not self._agent_labels:
                self._offers.labels(queue, "answered")
                self._no_answers.labels(queue)
        if self._agent_labels:
            for agent in rules.agents:
                for queue in agent.queues:
                    self._offers.labels(queue, "answered", agent.id)
                    self._no_answers.labels(queue, agent.id)

    def observe(self, command: Command) -> None:
        """Count a store command (ESL commands are ignored) and feed it to the KPI tracker."""
        if isinstance(command, RecordCall):
            call = command.record
            self._calls.labels(call.queue, call.outcome).inc()
            if call.outcome not in NOT_OFFERED_OUTCOMES:
                self._wait.labels(call.queue, call.outcome).observe(call.wait_seconds)
            if call.answered_at is not None:
                self._talk.labels(call.queue).observe(call.talk_seconds)
                self._hold.labels(call.queue).observe(call.hold_seconds)
            self._kpi.record_call(call)
        elif isinstance(command, RecordOffer):
            offer = command.record
            agent = (offer.agent,) if self._agent_labels else ()
            self._offers.labels(offer.queue, offer.result, *agent).inc()
            if is_agent_no_answer(offer.result):
                self._no_answers.labels(offer.queue, *agent).inc()
            self._kpi.record_offer(offer)
        elif isinstance(command, RecordWrapUp):
            wrapup = command.record
            self._wrapup.labels(wrapup.queue).observe(wrapup.seconds)
            self._kpi.record_wrapup(wrapup)

    def unknown_queue(self) -> None:
        """Count a caller that asked for a queue the rules do not have (``Router``'s ``on_unknown_queue``)."""
        self._unknown_queues.inc()

    def rules_reload(self, ok: bool) -> None:
        self._reloads.labels("success" if ok else "failure").inc()

    def esl_nodes(self, nodes: Sequence[str]) -> None:
        """Zero series for every configured FreeSWITCH node."""
        for node in nodes:
            self._command_queue.labels(node)
            for command in ESL_COMMAND_KINDS:
                self._commands_dropped.labels(node, command)

    def esl_command_queued(self, node: str, seconds: float) -> None:
        """An ESL command was written to ``node`` after waiting ``seconds`` in fsrouter."""
        self._command_queue.labels(node).observe(seconds)

    def esl_command_dropped(self, node: str, command: str) -> None:
        """An ESL command of kind ``command`` (``ESL_COMMAND_KINDS``) was not sent: its channel was gone."""
        self._commands_dropped.labels(node, command).inc()

    def esl_event(self, kind: str) -> None:
        """Count one ESL event: ``translated`` into a core event, ``tracked`` by the ESL adapter alone (its own
        bookkeeping of channels), ``ignored`` or ``malformed``."""
        if kind not in ESL_EVENT_KINDS:
            raise ValueError(f"unknown ESL event kind {kind!r}, expected one of {ESL_EVENT_KINDS}")
        self._esl_events.labels(kind).inc()

    # ------------------------------------------------------------------ helpers

    def _histogram(self, name: str, documentation: str, buckets: Sequence[float]) -> Histogram:
        return Histogram(name, documentation, ("queue",), buckets=buckets, registry=self._registry)

    def _wait_histogram(self) -> Histogram:
        return Histogram(
            "fsrouter_wait_seconds",
            "Time callers waited in queue, until answered or until they left; bucket edges include every "
            "queue's service-level threshold.",
            ("queue", "outcome"),
            buckets=self._wait_edges,
            registry=self._registry,
        )


class _SnapshotCollector(Collector):
    """Gauges computed at scrape time from the router's snapshot and the KPI windows (no state kept)."""

    def __init__(
        self, snapshot: Callable[[], Snapshot], kpi: KpiTracker, build_version: str, *, agent_labels: bool
    ) -> None:
        self._snapshot = snapshot
        self._kpi = kpi
        self._build_version = build_version
        self._agent_labels = agent_labels

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot()
        yield from self._queue_gauges(snapshot)
        yield from self._kpi_gauges(snapshot)
        yield from self._process_gauges(snapshot)
        yield self._heals(snapshot)
        yield _pair_counter(
            "fsrouter_overflows_total",
            "Calls moved out of a queue by an overflow (queue full, no agents, escalation step), by target: "
            "another queue, or an extension (those calls also end with outcome overflowed).",
            ("queue", "to"),
            snapshot.overflows,
        )
        yield _pair_counter(
            "fsrouter_transfers_total",
            "Callers parked again into fsrouter after a stay in a queue (an agent's blind transfer), by the queue "
            "of that stay and the queue of the new one; each stay has its own record.",
            ("queue", "to"),
            snapshot.transfers,
        )

    def _queue_gauges(self, snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
        waiting = _gauge("fsrouter_queue_waiting_calls", "Callers waiting for an agent now.", "queue")
        oldest = _gauge(
            "fsrouter_queue_oldest_wait_seconds", "How long the longest-waiting caller has waited.", "queue"
        )
        agents = _gauge(
            "fsrouter_agents",
            "Agents of the queue, by state (an agent counts in each of its queues); an available agent whose phone "
            "is not registered counts as unregistered.",
            "queue",
            "state",
        )
        occupancy = _gauge(
            "fsrouter_queue_occupancy_ratio",
            "Share of the queue's staffed agents (available with a reachable phone, reserved, on call, wrap-up) "
            "busy with a call now.",
            "queue",
        )
        deprecated_occupancy = _gauge(
            DEPRECATED_OCCUPANCY,
            "Deprecated alias of fsrouter_queue_occupancy_ratio (per queue despite its name), removed in the next "
            "release.",
            "queue",
        )
        unregistered = _gauge(
            "fsrouter_agents_unregistered",
            "Agents of the queue whose phone is not registered, whatever their state.",
            "queue",
        )
        for queue in snapshot.queues:
            waiting.add_metric((queue.name,), queue.waiting)
            unregistered.add_metric((queue.name,), queue.unregistered)
            since = queue.oldest_entered_at
            oldest.add_metric((queue.name,), 0.0 if since is None else max(0.0, snapshot.taken_at - since))
            for state in AGENT_VIEW_STATES:
                agents.add_metric((queue.name, state), queue.agents.get(state, 0))
            ratio = agent_occupancy(queue.agents)
            if ratio is not None:
                occupancy.add_metric((queue.name,), ratio)
                deprecated_occupancy.add_metric((queue.name,), ratio)
        yield from (waiting, oldest, agents, occupancy, deprecated_occupancy, unregistered)
        if self._agent_labels:
            yield self._agent_occupancy(snapshot)

    @staticmethod
    def _agent_occupancy(snapshot: Snapshot) -> GaugeMetricFamily:
        windowed = _gauge(
            "fsrouter_agent_windowed_occupancy_ratio",
            "The agent's talk + wrap-up time over its logged-in time during the queue's occupancy_window (what "
            "least-occupied ranks by).",
            "queue",
            "agent",
        )
        for agent in snapshot.agents:
            for queue, ratio in sorted(agent.occupancy.items()):
                windowed.add_metric((queue, agent.id), ratio)
        return windowed

    def _kpi_gauges(self, snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
        per_window = {
            "service_level": _gauge(
                "fsrouter_service_level_ratio",
                "Calls answered within the queue's threshold / calls offered (abandons included), per window.",
                "queue",
                "window",
            ),
            "asa": _gauge(
                "fsrouter_asa_seconds", "Average speed of answer of answered calls, per window.", "queue", "window"
            ),
            "aht": _gauge(
                "fsrouter_aht_seconds",
                "Average handling time (talk + hold + wrap-up) per answered call, per window.",
                "queue",
                "window",
            ),
            "abandon_rate": _gauge(
                "fsrouter_abandon_ratio", "Abandoned / offered calls, per window.", "queue", "window"
            ),
            "overflow_rate": _gauge(
                "fsrouter_overflow_ratio", "Overflowed / offered calls, per window.", "queue", "window"
            ),
            "agent_no_answer_rate": _gauge(
                "fsrouter_agent_no_answer_ratio",
                "Offers agents did not pick up / offers presented, per window.",
                "queue",
                "window",
            ),
        }
        target = _gauge("fsrouter_service_level_target_ratio", "The queue's service-level target.", "queue")
        threshold = _gauge(
            "fsrouter_service_level_threshold_seconds", "The queue's service-level threshold T.", "queue"
        )
        required = _gauge(
            "fsrouter_required_agents",
            "Agents Erlang C says the queue needs to meet its service-level target at the recent load.",
            "queue",
        )
        traffic = _gauge("fsrouter_offered_traffic_erlangs", "Recent offered load: arrival rate x AHT.", "queue")
        predicted = _gauge(
            "fsrouter_predicted_wait_seconds",
            "Erlang C average speed of answer with the agents staffed now (+Inf when they cannot keep up).",
            "queue",
        )
        views = {queue.name: queue for queue in snapshot.queues}
        now = snapshot.taken_at
        for queue in self._kpi.queues:
            for window in self._kpi.windows:
                stats = self._kpi.window(queue, window, now)
                for attribute, family in per_window.items():
                    value = getattr(stats, attribute)
                    if value is not None:
                        family.add_metric((queue, window), value)
            target.add_metric((queue,), self._kpi.target(queue))
            view = views.get(queue)
            if view is not None:
                threshold.add_metric((queue,), view.service_level_seconds)
            staffing = self._kpi.staffing(queue, now, staffed_agents(view.agents) if view is not None else 0)
            if staffing is not None:
                required.add_metric((queue,), staffing.required_agents)
                traffic.add_metric((queue,), staffing.traffic)
                predicted.add_metric((queue,), staffing.predicted_wait)
        yield from per_window.values()
        yield from (target, threshold, required, traffic, predicted)

    def _process_gauges(self, snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
        connected = _gauge("fsrouter_esl_connected", "1 while the ESL link to the node is up.", "node")
        for node, up in sorted(snapshot.nodes.items()):
            connected.add_metric((node,), 1.0 if up else 0.0)
        rules = _gauge("fsrouter_rules_info", "The rules version in force (value always 1).", "version")
        rules.add_metric((snapshot.rules_version,), 1.0)
        loaded = GaugeMetricFamily(
            "fsrouter_rules_loaded_timestamp_seconds",
            "When the rules in force were loaded (Unix time).",
            value=snapshot.rules_loaded_at,
        )
        draining = GaugeMetricFamily(
            "fsrouter_draining", "1 while fsrouter takes no new calls (shutting down).", value=float(snapshot.draining)
        )
        build = _gauge("fsrouter_build_info", "fsrouter build (value always 1).", "version", "python")
        build.add_metric((self._build_version, platform.python_version()), 1.0)
        yield from (connected, rules, loaded, draining, build)

    @staticmethod
    def _heals(snapshot: Snapshot) -> CounterMetricFamily:
        heals = CounterMetricFamily(
            "fsrouter_reconcile_heals_total",
            "Differences with FreeSWITCH the periodic audit healed, by kind: a caller (call_gone) or an agent leg "
            "(offer_leg_gone, agent_leg_gone) whose hang-up event never arrived, an answer (answer_lost) or a "
            "bridge (bridge_lost) whose event never arrived, an agent leg nobody tracked (orphan_leg, killed).",
            labels=("kind",),
        )
        for kind in HEAL_KINDS:
            heals.add_metric((kind,), snapshot.heals.get(kind, 0))
        return heals



def _pair_counter(
    name: str, documentation: str, labels: tuple[str, str], counts: Mapping[tuple[str, str], int]
) -> CounterMetricFamily:
    """A counter computed from the snapshot's ``counts`` by (queue, target)."""
    family = CounterMetricFamily(name, documentation, labels=labels)
    for pair, count in sorted(counts.items()):
        family.add_metric(pair, count)
    return family


class _StoreCollector(Collector):
    """The call store's health, read at scrape time from its writer (no state kept)."""

    def __init__(self, store: StoreHealth) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "fsrouter_store_failing",
            "1 while the call store refuses writes (routing goes on; records wait in memory).",
            value=float(self._store.failing),
        )
        yield GaugeMetricFamily(
            "fsrouter_store_backlog_commands",
            "Store commands (records, offers, agent states, traces) waiting in memory to be written.",
            value=self._store.backlog,
        )
        yield CounterMetricFamily(
            "fsrouter_store_write_failures_total",
            "Tries to write to the call store that failed (locked by another process, disk full, file gone).",
            value=self._store.failures,
        )
        yield CounterMetricFamily(
            "fsrouter_store_commands_dropped_total",
            "Store commands never written: the backlog was full, or the store refused them.",
            value=self._store.dropped,
        )


def _gauge(name: str, documentation: str, *labels: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


class MetricsServer:
    """The running ``/metrics`` endpoint; ``shutdown()`` stops it, like the standard library's servers."""

    def __init__(self, server: WSGIServer) -> None:
        self._server = server

    @property
    def closed(self) -> bool:
        return bool(self._server.closed)

    def shutdown(self) -> None:
        self._server.stop(timeout=1)


def serve(registry: CollectorRegistry, host: str, port: int) -> tuple[MetricsServer, int]:
    """Serve ``/metrics`` over HTTP on ``host:port`` (port 0 picks a free one) with gevent's WSGI server.

    Returns the started server and the port actually bound.
    """
    server = WSGIServer((host, port), make_wsgi_app(registry), log=None, error_log=logger)
    server.start()
    bound_port: int = server.server_port
    logger.info("metrics on http://%s:%d/metrics", host, bound_port)
    return MetricsServer(server), bound_port
