"""Metrics: a fresh CollectorRegistry per test, scripted store commands and snapshots, exact sample values."""

from __future__ import annotations

import math
import platform
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import gevent
import pytest
from prometheus_client import CollectorRegistry

from fsrouter import __version__
from fsrouter.adapters.metrics import Metrics, serve
from fsrouter.core.commands import (
    OUTCOMES,
    AgentStateRecord,
    CallRecord,
    Command,
    Kill,
    OfferRecord,
    RecordAgentState,
    RecordCall,
    RecordOffer,
    RecordWrapUp,
    WrapUpRecord,
)
from fsrouter.core.kpi import KpiTracker
from fsrouter.core.rules import AgentConfig, QueueConfig, Rules
from fsrouter.core.snapshot import AGENT_VIEW_STATES, HEAL_KINDS, AgentView, CallView, QueueView, Snapshot

NOW = 1_767_607_200.0
RULES = Rules(
    queues={
        "support": QueueConfig(name="support", service_level_seconds=20.0, service_level_target=0.8),
        "sales": QueueConfig(name="sales", service_level_seconds=25.0, service_level_target=0.9),
    },
    agents=(
        AgentConfig(id="1001", endpoint="user/1001", queues=("support",)),
        AgentConfig(id="1002", endpoint="user/1002", queues=("support", "sales")),
    ),
    version="7",
    loaded_at=NOW - 3600,
)


def queue_view(name: str, **agents: int) -> QueueView:
    config = RULES.queues[name]
    return QueueView(
        name=name,
        strategy="longest-idle",
        waiting=0,
        offering=0,
        talking=0,
        oldest_entered_at=None,
        agents={state: agents.get(state, 0) for state in AGENT_VIEW_STATES},
        service_level_seconds=config.service_level_seconds,
        service_level_target=config.service_level_target,
    )


@dataclass
class StoreState:
    """What the writer of store commands shows the metrics (``StoreHealth``)."""

    backlog: int = 0
    failing: bool = False
    failures: int = 0
    dropped: int = 0


@dataclass
class Scene:
    """What the fake router and store writer show: what the collectors read at each scrape."""

    registry: CollectorRegistry
    kpi: KpiTracker
    store: StoreState = field(default_factory=StoreState)
    snapshot: Snapshot = field(
        default_factory=lambda: Snapshot(
            taken_at=NOW,
            queues=(queue_view("support", available=2), queue_view("sales", available=1)),
            agents=(),
            calls=(),
            nodes={"fs1": True},
            rules_version="7",
            rules_loaded_at=NOW - 3600,
            draining=False,
        )
    )

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


def make_scene(agent_labels: bool = False) -> tuple[Scene, Metrics]:
    scene = Scene(registry=CollectorRegistry(), kpi=KpiTracker(start=NOW - 3600))
    metrics = Metrics(
        scene.registry, lambda: scene.snapshot, kpi=scene.kpi, store=scene.store, agent_labels=agent_labels
    )
    metrics.configure(RULES)
    return scene, metrics


@pytest.fixture
def scene_and_metrics() -> tuple[Scene, Metrics]:
    return make_scene()


def answered(
    queue: str, wait: float, talk: float, *, hold: float = 0.0, agent: str = "1001", ended_at: float = NOW - 60
) -> RecordCall:
    entered_at = ended_at - talk - hold - wait
    return RecordCall(
        record=CallRecord(
            uuid=f"uuid-{queue}-{wait}-{talk}",
            node="fs1",
            queue=queue,
            outcome="answered",
            entered_at=entered_at,
            answered_at=entered_at + wait,
            ended_at=ended_at,
            agent=agent,
            caller_number="+33145678901",
            hold_seconds=hold,
        )
    )


def unanswered(queue: str, outcome: str, wait: float) -> RecordCall:
    return RecordCall(
        record=CallRecord(
            uuid=f"uuid-{queue}-{outcome}-{wait}",
            node="fs1",
            queue=queue,
            outcome=outcome,
            entered_at=NOW - 60 - wait,
            ended_at=NOW - 60,
            caller_number="+33612345678",
        )
    )


def offered(result: str, agent: str = "1001", queue: str = "support") -> RecordOffer:
    return RecordOffer(
        record=OfferRecord(
            call_uuid="uuid-x",
            leg_uuid=f"leg-{result}-{agent}",
            agent=agent,
            queue=queue,
            offered_at=NOW - 100,
            ended_at=NOW - 90,
            result=result,
        )
    )


def agent_state(agent: str, state: str, at: float) -> RecordAgentState:
    return RecordAgentState(record=AgentStateRecord(agent=agent, state=state, at=at))


def test_every_configured_queue_and_outcome_starts_at_zero(scene_and_metrics: tuple[Scene, Metrics]) -> None:
    scene, _ = scene_and_metrics
    for queue in RULES.queues:
        for outcome in OUTCOMES:
            assert scene.value("fsrouter_calls_total", queue=queue, outcome=outcome) == 0.0
        assert scene.value("fsrouter_offers_total", queue=queue, result="answered") == 0.0
        assert scene.value("fsrouter_agent_no_answers_total", queue=queue) == 0.0
        assert scene.value("fsrouter_wait_seconds_count", queue=queue, outcome="answered") == 0.0
        for histogram in ("fsrouter_talk_seconds", "fsrouter_wrapup_seconds", "fsrouter_hold_seconds"):
            assert scene.value(f"{histogram}_count", queue=queue) == 0.0
    assert scene.value("fsrouter_rules_reloads_total", result="failure") == 0.0
    assert scene.value("fsrouter_esl_events_total", kind="malformed") == 0.0


def test_wait_buckets_include_each_queues_service_level_threshold(
    scene_and_metrics: tuple[Scene, Metrics],
) -> None:
    scene, _ = scene_and_metrics
    for threshold in ("20.0", "25.0"):
        assert scene.value("fsrouter_wait_seconds_bucket", queue="support", outcome="answered", le=threshold) == 0.0


def test_a_scripted_quarter_hour_gives_exact_counters_histograms_and_kpis(
    scene_and_metrics: tuple[Scene, Metrics],
) -> None:
    scene, metrics = scene_and_metrics
    commands: list[Command] = [
        answered("support", wait=5, talk=100),
        answered("support", wait=15, talk=200),
        answered("support", wait=40, talk=270, hold=30),
        unanswered("support", "abandoned", wait=30),
        unanswered("support", "overflowed", wait=90),
        unanswered("support", "closed", wait=0),
        Kill(node="fs1", uuid="uuid-x"),  # ESL commands pass through unnoticed
    ]
    for command in commands:
        metrics.observe(command)

    assert scene.value("fsrouter_calls_total", queue="support", outcome="answered") == 3
    assert scene.value("fsrouter_calls_total", queue="support", outcome="closed") == 1
    assert scene.value("fsrouter_wait_seconds_bucket", queue="support", outcome="answered", le="20.0") == 2
    assert scene.value("fsrouter_wait_seconds_sum", queue="support", outcome="answered") == 60
    assert scene.value("fsrouter_wait_seconds_count", queue="support", outcome="abandoned") == 1
    assert scene.value("fsrouter_wait_seconds_count", queue="support", outcome="closed") is None
    assert scene.value("fsrouter_talk_seconds_sum", queue="support") == 570
    assert scene.value("fsrouter_hold_seconds_sum", queue="support") == 30
    assert scene.value("fsrouter_hold_seconds_count", queue="support") == 3  # every answered call, held or not
    # 5 offered (closed calls never are), 2 answered within 20 s
    assert scene.value("fsrouter_service_level_ratio", queue="support", window="15m") == 0.4
    assert scene.value("fsrouter_service_level_ratio", queue="support", window="1h") == 0.4
    assert scene.value("fsrouter_service_level_target_ratio", queue="support") == 0.8
    assert scene.value("fsrouter_service_level_threshold_seconds", queue="support") == 20.0
    assert scene.value("fsrouter_asa_seconds", queue="support", window="15m") == 20.0
    assert scene.value("fsrouter_aht_seconds", queue="support", window="15m") == 200.0
    assert scene.value("fsrouter_abandon_ratio", queue="support", window="15m") == 0.2
    assert scene.value("fsrouter_overflow_ratio", queue="support", window="15m") == 0.2
    # a queue with no calls has no ratios, rather than a made-up 100 %
    assert scene.value("fsrouter_service_level_ratio", queue="sales", window="15m") is None
    assert scene.value("fsrouter_required_agents", queue="sales") == 0


def test_staffing_gauges_follow_erlang_c_on_the_recent_load(scene_and_metrics: tuple[Scene, Metrics]) -> None:
    """100 answered calls in the last 15 min with an AHT of 90 s is 10 Erlangs."""
    scene, metrics = scene_and_metrics
    for i in range(100):
        metrics.observe(answered("support", wait=1, talk=90, ended_at=NOW - 800 + 7 * i))
    scene.snapshot = replace(scene.snapshot, queues=(queue_view("support", available=9, on_call=3),))

    assert scene.value("fsrouter_offered_traffic_erlangs", queue="support") == pytest.approx(10.0)
    # 12 agents answer 71 % within 20 s, 13 agents 85 %: the target is 80 %
    assert scene.value("fsrouter_required_agents", queue="support") == 13
    # 12 staffed (9 available + 3 on call): ASA = C(12, 10) x 90 / (12 - 10) = 0.4494 x 45
    assert scene.value("fsrouter_predicted_wait_seconds", queue="support") == pytest.approx(20.22, abs=0.01)

    scene.snapshot = replace(scene.snapshot, queues=(queue_view("support", available=4, on_call=3),))
    assert scene.value("fsrouter_predicted_wait_seconds", queue="support") == math.inf


def test_offers_and_no_answers_count_only_what_the_agent_could_pick_up(
    scene_and_metrics: tuple[Scene, Metrics],
) -> None:
    scene, metrics = scene_and_metrics
    for result in ["answered"] * 3 + ["no_answer", "user_busy", "originator_cancel"]:
        metrics.observe(offered(result))

    assert scene.value("fsrouter_offers_total", queue="support", result="answered") == 3
    assert scene.value("fsrouter_offers_total", queue="support", result="originator_cancel") == 1
    assert scene.value("fsrouter_agent_no_answers_total", queue="support") == 2
    assert scene.value("fsrouter_agent_no_answer_ratio", queue="support", window="15m") == 0.4


def test_wrap_up_ends_in_the_histogram_of_the_queue_of_its_call(scene_and_metrics: tuple[Scene, Metrics]) -> None:
    scene, metrics = scene_and_metrics
    call = answered("sales", wait=2, talk=60, agent="1002", ended_at=NOW - 100)
    metrics.observe(call)
    metrics.observe(agent_state("1002", "wrap_up", NOW - 100))  # agent states alone say nothing of wrap-up time
    wrapup = WrapUpRecord(call_uuid=call.record.uuid, agent="1002", queue="sales", ended_at=NOW - 88, seconds=12.0)
    metrics.observe(RecordWrapUp(record=wrapup))

    assert scene.value("fsrouter_wrapup_seconds_sum", queue="sales") == 12
    assert scene.value("fsrouter_wrapup_seconds_count", queue="sales") == 1
    assert scene.value("fsrouter_aht_seconds", queue="sales", window="15m") == 72  # 60 talk + 12 wrap-up


def test_snapshot_gauges_show_the_router_as_it_is_at_scrape_time(scene_and_metrics: tuple[Scene, Metrics]) -> None:
    scene, _ = scene_and_metrics
    support = replace(
        queue_view("support", available=1, on_call=2, wrap_up=1, logged_out=3), waiting=2, oldest_entered_at=NOW - 42
    )
    scene.snapshot = replace(
        scene.snapshot,
        queues=(support, queue_view("sales")),
        calls=(
            CallView(
                uuid="uuid-secret",
                node="fs1",
                queue="support",
                state="waiting",
                entered_at=NOW - 42,
                waited=42.0,
                on_hold=False,
                priority=0,
                caller_number="+33145678901",
                agent=None,
            ),
        ),
        nodes={"fs1": True, "fs2": False},
    )

    assert scene.value("fsrouter_queue_waiting_calls", queue="support") == 2
    assert scene.value("fsrouter_queue_oldest_wait_seconds", queue="support") == 42
    assert scene.value("fsrouter_queue_oldest_wait_seconds", queue="sales") == 0
    assert scene.value("fsrouter_agents", queue="support", state="on_call") == 2
    assert scene.value("fsrouter_agents", queue="support", state="break") == 0
    assert scene.value("fsrouter_queue_occupancy_ratio", queue="support") == 0.75
    assert scene.value("fsrouter_queue_occupancy_ratio", queue="sales") is None  # nobody staffed
    # the per-queue gauge's old name stays one release, as a deprecated alias
    assert scene.value("fsrouter_agent_occupancy_ratio", queue="support") == 0.75
    assert scene.value("fsrouter_esl_connected", node="fs1") == 1
    assert scene.value("fsrouter_esl_connected", node="fs2") == 0
    assert scene.value("fsrouter_rules_info", version="7") == 1
    assert scene.value("fsrouter_rules_loaded_timestamp_seconds") == NOW - 3600
    assert scene.value("fsrouter_draining") == 0
    assert scene.value("fsrouter_build_info", version=__version__, python=platform.python_version()) == 1


def test_reconciliation_heals_are_a_counter_by_kind_that_starts_at_zero_for_every_kind(
    scene_and_metrics: tuple[Scene, Metrics],
) -> None:
    scene, _ = scene_and_metrics
    for kind in HEAL_KINDS:
        assert scene.value("fsrouter_reconcile_heals_total", kind=kind) == 0

    scene.snapshot = replace(scene.snapshot, heals={"call_gone": 2, "orphan_leg": 1})

    assert scene.value("fsrouter_reconcile_heals_total", kind="call_gone") == 2
    assert scene.value("fsrouter_reconcile_heals_total", kind="orphan_leg") == 1
    assert scene.value("fsrouter_reconcile_heals_total", kind="agent_leg_gone") == 0
    families = {family.name: family.type for family in scene.registry.collect()}
    assert families["fsrouter_reconcile_heals"] == "counter"  # rate() and increase() apply


def test_overflows_are_a_counter_by_queue_and_target(scene_and_metrics: tuple[Scene, Metrics]) -> None:
    scene, _ = scene_and_metrics
    scene.snapshot = replace(scene.snapshot, overflows={("support", "sales"): 3, ("sales", "4000"): 0})

    assert scene.value("fsrouter_overflows_total", queue="support", to="sales") == 3
    assert scene.value("fsrouter_overflows_total", queue="sales", to="4000") == 0  # configured, not used yet
    families = {family.name: family.type for family in scene.registry.collect()}
    assert families["fsrouter_overflows"] == "counter"


def test_reloads_and_esl_events_are_counted_by_kind(scene_and_metrics: tuple[Scene, Metrics]) -> None:
    scene, metrics = scene_and_metrics
    metrics.rules_reload(ok=True)
    metrics.rules_reload(ok=False)
    metrics.rules_reload(ok=False)
    for kind in ("translated", "translated", "ignored", "malformed"):
        metrics.esl_event(kind)

    assert scene.value("fsrouter_rules_reloads_total", result="success") == 1
    assert scene.value("fsrouter_rules_reloads_total", result="failure") == 2
    assert scene.value("fsrouter_esl_events_total", kind="translated") == 2
    assert scene.value("fsrouter_esl_events_total", kind="malformed") == 1
    with pytest.raises(ValueError):
        metrics.esl_event("call-1234")  # an unbounded label value is refused


def test_a_reload_with_a_new_threshold_rebuilds_the_wait_buckets(scene_and_metrics: tuple[Scene, Metrics]) -> None:
    scene, metrics = scene_and_metrics
    queues = {**RULES.queues, "vip": QueueConfig(name="vip", service_level_seconds=7.5)}
    metrics.configure(replace(RULES, queues=queues))

    assert scene.value("fsrouter_wait_seconds_bucket", queue="vip", outcome="answered", le="7.5") == 0
    assert scene.value("fsrouter_wait_seconds_bucket", queue="support", outcome="answered", le="20.0") == 0
    assert scene.value("fsrouter_calls_total", queue="vip", outcome="abandoned") == 0


def label_values(registry: CollectorRegistry) -> Iterator[tuple[str, str, str]]:
    for family in registry.collect():
        for sample in family.samples:
            for label, value in sample.labels.items():
                yield sample.name, label, value


def scripted_day(metrics: Metrics) -> None:
    commands: list[Command] = [
        answered("support", wait=5, talk=100, agent="1001"),
        unanswered("support", "abandoned", wait=30),
        offered("answered", "1001"),
        offered("no_answer", "1002"),
    ]
    for command in commands:
        metrics.observe(command)


def test_no_call_id_or_phone_number_ever_becomes_a_label() -> None:
    scene, metrics = make_scene()
    scripted_day(metrics)

    labels = list(label_values(scene.registry))
    assert labels
    for _name, label, value in labels:
        assert label != "agent"
        assert "uuid" not in value and "leg-" not in value and "+33" not in value


def test_agent_labels_are_opt_in() -> None:
    scene, metrics = make_scene(agent_labels=True)
    scripted_day(metrics)

    assert scene.value("fsrouter_offers_total", queue="support", result="answered", agent="1001") == 1
    assert scene.value("fsrouter_agent_no_answers_total", queue="support", agent="1002") == 1
    assert scene.value("fsrouter_agent_no_answers_total", queue="sales", agent="1002") == 0  # pre-created


def agent_view(agent_id: str, occupancy: dict[str, float]) -> AgentView:
    return AgentView(
        id=agent_id,
        endpoint=f"user/{agent_id}",
        state="available",
        since=NOW - 600,
        registered=True,
        reachable=True,
        queues=tuple(occupancy),
        call_uuid=None,
        calls_answered=3,
        no_answer_count=0,
        occupancy=occupancy,
    )


def test_per_agent_occupancy_is_exported_with_agent_labels_only() -> None:
    """The windowed figure least-occupied ranks by (``Agent.occupancy`` over the queue's occupancy_window)."""
    agents = (agent_view("1001", {"support": 0.25}), agent_view("1002", {"support": 0.5, "sales": 0.125}))
    labelled, _ = make_scene(agent_labels=True)
    plain, _ = make_scene()
    for scene in (labelled, plain):
        scene.snapshot = replace(scene.snapshot, agents=agents)

    name = "fsrouter_agent_windowed_occupancy_ratio"
    assert labelled.value(name, queue="support", agent="1001") == 0.25
    assert labelled.value(name, queue="support", agent="1002") == 0.5
    assert labelled.value(name, queue="sales", agent="1002") == 0.125
    assert name not in {family.name for family in plain.registry.collect()}


def test_available_agents_whose_phone_is_not_registered_are_not_staffed(
    scene_and_metrics: tuple[Scene, Metrics],
) -> None:
    scene, metrics = scene_and_metrics
    metrics.observe(answered("support", wait=5, talk=100))
    support = replace(queue_view("support", on_call=1, unregistered=2), waiting=3, unregistered=2)
    scene.snapshot = replace(scene.snapshot, queues=(support, queue_view("sales")))

    assert scene.value("fsrouter_agents", queue="support", state="unregistered") == 2
    assert scene.value("fsrouter_agents", queue="support", state="available") == 0
    assert scene.value("fsrouter_queue_occupancy_ratio", queue="support") == 1.0  # 1 busy of 1 staffed, not 1 of 3
    one_agent = scene.kpi.staffing("support", NOW, staffed=1)
    assert one_agent is not None and one_agent != scene.kpi.staffing("support", NOW, staffed=3)
    assert scene.value("fsrouter_predicted_wait_seconds", queue="support") == one_agent.predicted_wait  # Erlang's N


def test_metrics_are_scraped_over_real_http_on_an_ephemeral_port(scene_and_metrics: tuple[Scene, Metrics]) -> None:
    scene, metrics = scene_and_metrics
    metrics.observe(answered("support", wait=5, talk=100))
    server, port = serve(scene.registry, "127.0.0.1", 0)
    try:
        assert port > 0
        # urllib blocks its thread, so it runs in gevent's thread pool while the hub serves the request
        fetch = gevent.get_hub().threadpool.spawn(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        )
        body = fetch.get(timeout=10)
    finally:
        server.shutdown()

    assert 'fsrouter_calls_total{outcome="answered",queue="support"} 1.0' in body
    assert 'fsrouter_service_level_ratio{queue="support",window="15m"} 1.0' in body
    assert server.closed


def scene_after_a_busy_quarter_hour() -> Scene:
    """Every metric fsrouter exports has a sample here (used by the dashboard and alert checks too)."""
    scene, metrics = make_scene()
    scripted_day(metrics)
    wrapup = WrapUpRecord(call_uuid="uuid-support-5-100", agent="1001", queue="support", ended_at=NOW - 50, seconds=10)
    metrics.observe(RecordWrapUp(record=wrapup))
    metrics.rules_reload(ok=True)
    metrics.esl_event("translated")
    scene.snapshot = replace(
        scene.snapshot, queues=(queue_view("support", available=1, on_call=1),), overflows={("support", "sales"): 1}
    )
    return scene


def test_a_busy_scene_exports_every_kind_of_metric() -> None:
    registry = scene_after_a_busy_quarter_hour().registry
    names = {sample.name for family in registry.collect() for sample in family.samples}

    for name in [
        "fsrouter_agent_no_answer_ratio",
        "fsrouter_queue_occupancy_ratio",
        "fsrouter_predicted_wait_seconds",
        "fsrouter_required_agents",
        "fsrouter_wrapup_seconds_bucket",
        "fsrouter_hold_seconds_count",
    ]:
        assert name in names


def test_the_call_store_health_is_read_at_each_scrape(scene_and_metrics: tuple[Scene, Metrics]) -> None:
    scene, _ = scene_and_metrics
    store_metrics = (
        "fsrouter_store_failing",
        "fsrouter_store_backlog_commands",
        "fsrouter_store_write_failures_total",
        "fsrouter_store_commands_dropped_total",
    )
    assert [scene.value(name) for name in store_metrics] == [0, 0, 0, 0]
    scene.store.failing, scene.store.backlog, scene.store.failures, scene.store.dropped = True, 120, 7, 2
    assert [scene.value(name) for name in store_metrics] == [1, 120, 7, 2]


def test_esl_command_queue_waits_and_dropped_commands_are_per_node(scene_and_metrics: tuple[Scene, Metrics]) -> None:
    scene, metrics = scene_and_metrics
    metrics.esl_nodes(["fs1", "fs2"])
    metrics.esl_command_queued("fs1", 0.002)
    metrics.esl_command_queued("fs1", 0.3)
    metrics.esl_command_dropped("fs1", "answer")

    assert scene.value("fsrouter_esl_command_queue_seconds_count", node="fs1") == 2
    assert scene.value("fsrouter_esl_command_queue_seconds_bucket", node="fs1", le="0.005") == 1
    assert scene.value("fsrouter_esl_command_queue_seconds_count", node="fs2") == 0  # exists before any command
    assert scene.value("fsrouter_esl_commands_dropped_total", node="fs1", command="answer") == 1
    assert scene.value("fsrouter_esl_commands_dropped_total", node="fs2", command="kill") == 0
