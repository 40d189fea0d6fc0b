"""Call lifecycle scenarios: events in with a fake clock, exact commands out."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from fsrouter.core.commands import (
    Answer,
    Bridge,
    Kill,
    Originate,
    PlayMusic,
    RecordCall,
    RecordWrapUp,
    StoreCommand,
    Transfer,
)
from fsrouter.core.conditions import NumberMatches, NumberPattern
from fsrouter.core.events import (
    AgentControl,
    AgentRegistration,
    CallParked,
    ChannelAnswered,
    ChannelBridged,
    ChannelHungUp,
    CommandFailed,
    HoldChanged,
    NodeDown,
    NodeUp,
    OriginateFailed,
    OriginateSucceeded,
    StopTakingCalls,
    Tick,
)
from fsrouter.core.routing import Router
from fsrouter.core.rules import AgentConfig, QueueConfig, Route, RouteAction, Rules

NODE = "fs1"


def make_rules(*agents: str, **queue_settings: object) -> Rules:
    queue = QueueConfig(name="support", **queue_settings)  # type: ignore[arg-type]
    configs = tuple(
        AgentConfig(id=f"agent-{user}", endpoint=f"user/{user}", queues=("support",), no_answer_delay=15.0)
        for user in agents
    )
    return Rules(queues={"support": queue}, agents=configs, default_queue="support")


def make_router(*agents: str, now: float = 0.0, **queue_settings: object) -> Router:
    counter = itertools.count(1)
    rules = make_rules(*agents, **queue_settings)
    return Router(rules, now=now, new_id=lambda: f"leg-{next(counter)}", emit_traces=True)


def parked(uuid: str = "caller-1", *, answered: bool = False, **variables: str) -> CallParked:
    return CallParked(
        node=NODE,
        uuid=uuid,
        caller_number="0142000000",
        destination="5003",
        answered=answered,
        variables={"fsrouter_queue": "support", **variables},
    )


def esl(commands: list) -> list:
    """Only the commands that go to FreeSWITCH (records are checked separately)."""
    return [c for c in commands if not isinstance(c, StoreCommand)]


def records(commands: list) -> list:
    return [c.record for c in commands if isinstance(c, RecordCall)]


def agent_state(router: Router, agent_id: str) -> str:
    return router.agents[agent_id].state.value


def test_a_call_is_answered_queued_offered_bridged_and_recorded() -> None:
    router = make_router("1000", ring_timeout=20.0, wrapup=5.0)

    out = router.handle(parked(), now=10.0)
    assert esl(out) == [
        Answer(node=NODE, uuid="caller-1"),
        PlayMusic(node=NODE, uuid="caller-1", source="local_stream://moh"),
        Originate(
            node=NODE,
            leg_uuid="leg-1",
            call_uuid="caller-1",
            endpoint="user/1000",
            timeout=20.0,
            caller_number="0142000000",
            variables={"fsrouter_queue": "support", "fsrouter_agent": "agent-1000"},
        ),
    ]
    assert agent_state(router, "agent-1000") == "reserved"

    assert esl(router.handle(ChannelAnswered(node=NODE, uuid="caller-1"), now=10.1)) == []
    # the agent answers; the bridge waits for the originate job's +OK (no race with switch_ivr_originate)
    assert esl(router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=12.98)) == []
    assert agent_state(router, "agent-1000") == "on_call"
    assert esl(router.handle(OriginateSucceeded(node=NODE, leg_uuid="leg-1"), now=13.0)) == [
        Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1")
    ]
    router.handle(ChannelBridged(node=NODE, uuid="caller-1", other_uuid="leg-1"), now=13.1)

    out = router.handle(ChannelHungUp(node=NODE, uuid="caller-1", cause="NORMAL_CLEARING"), now=73.1)
    [record] = records(out)
    assert (record.outcome, record.agent, record.wait_seconds, record.talk_seconds) == (
        "answered",
        "agent-1000",
        pytest.approx(3.1),
        pytest.approx(60.0),
    )
    assert agent_state(router, "agent-1000") == "wrap_up"
    # the agent leg's own hangup arrives after: nothing more happens, no second record
    assert router.handle(ChannelHungUp(node=NODE, uuid="leg-1"), now=73.2) == []

    router.handle(Tick(), now=78.0)
    assert agent_state(router, "agent-1000") == "wrap_up"
    out = router.handle(Tick(), now=78.2)
    assert agent_state(router, "agent-1000") == "available"
    [wrapup] = [c.record for c in out if isinstance(c, RecordWrapUp)]  # completes the call's record
    assert (wrapup.call_uuid, wrapup.agent, wrapup.queue, wrapup.seconds) == (
        "caller-1",
        "agent-1000",
        "support",
        pytest.approx(5.1),
    )


def connected_call(router: Router, at: float) -> None:
    """caller-1 parks at ``at`` and is bridged to agent-1000 (leg-1) at once."""
    router.handle(parked(answered=True), now=at)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=at)
    router.handle(OriginateSucceeded(node=NODE, leg_uuid="leg-1"), now=at)
    router.handle(ChannelBridged(node=NODE, uuid="caller-1", other_uuid="leg-1"), now=at)


def test_hold_time_is_counted_apart_from_talk_whichever_leg_is_held() -> None:
    router = make_router("1000")
    connected_call(router, at=0.0)

    router.handle(HoldChanged(node=NODE, uuid="leg-1", held=True), now=20.0)  # the agent's phone holds
    [view] = router.snapshot(now=21.0).calls
    assert (view.state, view.on_hold, view.waited) == ("talking", True, 0.0)  # fsrouter calls shows it
    router.handle(HoldChanged(node=NODE, uuid="leg-1", held=True), now=25.0)  # a repeated hold changes nothing
    router.handle(HoldChanged(node=NODE, uuid="leg-1", held=False), now=50.0)
    router.handle(HoldChanged(node=NODE, uuid="caller-1", held=True), now=90.0)  # uuid_hold on the caller
    [record] = records(router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), now=100.0))

    assert (record.hold_seconds, record.talk_seconds) == (40.0, 60.0)  # 30 s + 10 s held until the hang-up


def test_an_agent_ready_before_the_end_of_wrap_up_records_the_wrap_up_it_took() -> None:
    router = make_router("1000", wrapup=30.0)
    connected_call(router, at=0.0)
    router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), now=60.0)

    out = router.handle(AgentControl(agent_id="agent-1000", action="ready"), now=72.0)

    assert [c.record.seconds for c in out if isinstance(c, RecordWrapUp)] == [12.0]
    assert not [c for c in router.handle(Tick(), now=95.0) if isinstance(c, RecordWrapUp)]  # only once


def test_hold_events_of_a_caller_not_yet_connected_are_ignored() -> None:
    router = make_router("1000")
    router.handle(parked(answered=True), now=0.0)
    assert router.handle(HoldChanged(node=NODE, uuid="caller-1", held=True), now=1.0) == []
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=2.0)
    router.handle(ChannelBridged(node=NODE, uuid="caller-1", other_uuid="leg-1"), now=2.0)
    [record] = records(router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), now=12.0))
    assert (record.hold_seconds, record.talk_seconds) == (0.0, 10.0)


def test_never_bridges_before_the_caller_is_answered() -> None:
    router = make_router("1000")
    router.handle(parked(), now=0.0)
    # the agent answers before FreeSWITCH confirmed the caller's answer: wait
    assert esl(router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=1.0)) == []
    assert esl(router.handle(OriginateSucceeded(node=NODE, leg_uuid="leg-1"), now=1.02)) == []
    assert esl(router.handle(ChannelAnswered(node=NODE, uuid="caller-1"), now=1.1)) == [
        Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1")
    ]


def test_an_already_answered_caller_is_not_answered_again() -> None:
    router = make_router()
    out = router.handle(parked(answered=True), now=0.0)
    assert esl(out) == [PlayMusic(node=NODE, uuid="caller-1", source="local_stream://moh")]


@pytest.mark.parametrize(
    ("cause", "ready_at", "state", "registered"),
    [
        # a phone that rang, refused or was busy says nothing of a registration the router had not heard of: it
        # may still be rung, and the NOC still does not count it reachable (``Agent.reachable``)
        ("USER_BUSY", 5.0 + 30.0, "available", True),
        ("CALL_REJECTED", 5.0 + 30.0, "available", True),
        ("NO_ANSWER", 5.0 + 15.0, "available", True),
        ("USER_NOT_REGISTERED", 0.0, "available", False),
    ],
)
def test_a_failed_offer_penalises_the_agent_by_cause_and_tries_the_next(
    cause: str, ready_at: float, state: str, registered: bool
) -> None:
    router = make_router("1000", "1001")
    router.agents["agent-1001"].idle_since = 1.0  # agent-1000 has been idle longer: offered first
    router.handle(parked(answered=True), now=5.0)
    out = router.handle(OriginateFailed(node=NODE, leg_uuid="leg-1", cause=cause), now=5.0)
    [originate] = esl(out)
    assert isinstance(originate, Originate)
    assert (originate.leg_uuid, originate.endpoint) == ("leg-2", "user/1001")
    agent = router.agents["agent-1000"]
    assert (agent.state.value, agent.ready_at, agent.registered) == (state, ready_at, registered)
    assert not agent.reachable


def test_max_no_answer_puts_the_agent_on_break() -> None:
    router = make_router("1000")
    router.agents["agent-1000"].config = AgentConfig(
        id="agent-1000", endpoint="user/1000", queues=("support",), max_no_answer=2, no_answer_delay=1.0
    )
    router.handle(parked(answered=True), now=0.0)
    router.handle(OriginateFailed(node=NODE, leg_uuid="leg-1", cause="NO_ANSWER"), now=20.0)
    out = router.handle(Tick(), now=21.0)
    assert [c.leg_uuid for c in esl(out) if isinstance(c, Originate)] == ["leg-2"]
    router.handle(ChannelHungUp(node=NODE, uuid="leg-2", cause="NO_ANSWER"), now=41.0)
    assert agent_state(router, "agent-1000") == "break"
    assert esl(router.handle(Tick(), now=100.0)) == []
    out = router.handle(AgentControl(agent_id="agent-1000", action="ready"), now=101.0)
    assert [c.leg_uuid for c in esl(out) if isinstance(c, Originate)] == ["leg-3"]


def test_caller_hangs_up_while_the_agent_rings_abandon_and_kill_the_leg() -> None:
    router = make_router("1000")
    router.handle(parked(), now=0.0)
    out = router.handle(ChannelHungUp(node=NODE, uuid="caller-1", cause="ORIGINATOR_CANCEL"), now=4.0)
    assert esl(out) == [Kill(node=NODE, uuid="leg-1", cause="ORIGINATOR_CANCEL")]
    [record] = records(out)
    assert (record.outcome, record.agent, record.wait_seconds, record.hangup_cause) == (
        "abandoned",
        None,
        4.0,
        "ORIGINATOR_CANCEL",
    )
    assert agent_state(router, "agent-1000") == "available"
    # the job result of the killed leg arrives later and changes nothing
    assert router.handle(OriginateFailed(node=NODE, leg_uuid="leg-1", cause="ORIGINATOR_CANCEL"), now=4.1) == []
    assert agent_state(router, "agent-1000") == "available"


def test_agent_hangs_up_after_answering_but_before_the_bridge_next_agent() -> None:
    router = make_router("1000", "1001")
    router.agents["agent-1001"].idle_since = 1.0
    router.handle(parked(), now=2.0)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=3.0)
    out = router.handle(ChannelHungUp(node=NODE, uuid="leg-1", cause="NORMAL_CLEARING"), now=3.5)
    assert [c.endpoint for c in esl(out) if isinstance(c, Originate)] == ["user/1001"]
    assert agent_state(router, "agent-1000") == "available"
    assert router.agents["agent-1000"].ready_at == 3.5 + 30.0


def test_bridge_refused_requeues_the_caller_and_kills_the_agent_leg() -> None:
    router = make_router("1000")
    router.handle(parked(answered=True), now=0.0)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=1.0)
    out = router.handle(CommandFailed(node=NODE, command="bridge", uuid="caller-1", reason="-ERR"), now=1.1)
    assert esl(out) == [Kill(node=NODE, uuid="leg-1", cause="NORMAL_CLEARING")]
    assert router.calls["caller-1"].state.value == "waiting"


def test_offer_watchdog_frees_an_agent_whose_ring_never_ends() -> None:
    router = make_router("1000", ring_timeout=20.0)
    router.handle(parked(answered=True), now=0.0)
    assert esl(router.handle(Tick(), now=30.0)) == []
    out = router.handle(Tick(), now=30.5)
    assert esl(out)[0] == Kill(node=NODE, uuid="leg-1", cause="ORIGINATOR_CANCEL")
    assert agent_state(router, "agent-1000") == "available"


def test_max_wait_times_the_caller_out_to_the_configured_destination() -> None:
    router = make_router(max_wait=60.0, timeout_destination="voicemail")
    router.handle(parked(answered=True), now=0.0)
    assert esl(router.handle(Tick(), now=59.9)) == []
    out = router.handle(Tick(), now=60.0)
    assert esl(out) == [Transfer(node=NODE, uuid="caller-1", destination="voicemail")]
    assert [r.outcome for r in records(out)] == ["timed_out"]
    assert router.calls == {}


def test_callers_are_served_first_in_first_out() -> None:
    router = make_router()
    for index in range(3):
        router.handle(parked(f"caller-{index}", answered=True), now=float(index))
    out = router.load_rules(make_rules("1000"), now=5.0)  # an agent appears (hot reload)
    assert [c.call_uuid for c in esl(out) if isinstance(c, Originate)] == ["caller-0"]


def test_unregistered_agents_are_skipped_until_they_register_again() -> None:
    router = make_router("1000")
    router.handle(AgentRegistration(node=NODE, user="1000", registered=False), now=0.0)
    assert router.snapshot(now=0.0).queues[0].unregistered == 1
    assert esl(router.handle(parked(answered=True), now=1.0)) == [
        PlayMusic(node=NODE, uuid="caller-1", source="local_stream://moh")
    ]
    out = router.handle(AgentRegistration(node=NODE, user="1000@example.org", registered=True), now=2.0)
    assert [c.endpoint for c in esl(out) if isinstance(c, Originate)] == ["user/1000"]


def test_an_agent_that_changed_state_while_unregistered_is_offered_once_it_registers() -> None:
    router = make_router("1000")
    router.handle(AgentRegistration(node=NODE, user="1000", registered=False), now=0.0)
    router.handle(AgentControl(agent_id="agent-1000", action="break"), now=0.5)
    router.handle(AgentControl(agent_id="agent-1000", action="ready"), now=0.6)
    assert not [c for c in esl(router.handle(parked(answered=True), now=1.0)) if isinstance(c, Originate)]
    out = router.handle(AgentRegistration(node=NODE, user="1000", registered=True), now=2.0)
    assert [c.call_uuid for c in esl(out) if isinstance(c, Originate)] == ["caller-1"]


def test_logout_while_on_a_call_takes_effect_after_the_call() -> None:
    router = make_router("1000", wrapup=0.0)
    router.handle(parked(answered=True), now=0.0)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=1.0)
    router.handle(ChannelBridged(node=NODE, uuid="caller-1", other_uuid="leg-1"), now=1.1)
    router.handle(AgentControl(agent_id="agent-1000", action="logout"), now=2.0)
    assert agent_state(router, "agent-1000") == "on_call"
    router.handle(ChannelHungUp(node=NODE, uuid="leg-1"), now=3.0)
    assert agent_state(router, "agent-1000") == "logged_out"


def test_reconnect_reconciles_calls_that_ended_while_we_were_away() -> None:
    router = make_router("1000", "1001")
    router.handle(NodeUp(node=NODE, core_uuid="core-a"), now=0.0)
    router.handle(parked("caller-1", answered=True), now=1.0)  # offered to agent-1000 as leg-1
    router.handle(parked("caller-2", answered=True), now=1.0)  # offered to agent-1001 as leg-2
    router.handle(NodeDown(node=NODE), now=2.0)
    # caller-1 hung up while we were away; leg-2 was answered meanwhile
    out = router.handle(
        NodeUp(
            node=NODE,
            core_uuid="core-a",
            live_uuids=frozenset({"caller-2", "leg-2"}),
            answered_uuids=frozenset({"caller-2", "leg-2"}),
        ),
        now=5.0,
    )
    assert esl(out) == []  # leg-2's originate job result may have been lost with the connection: wait for it
    assert [(r.uuid, r.outcome) for r in records(out)] == [("caller-1", "abandoned")]
    assert agent_state(router, "agent-1000") == "available"
    assert esl(router.handle(Tick(), now=8.0)) == []
    # no job result within the bridge timeout (3 s): the answered leg is bridged anyway
    assert esl(router.handle(Tick(), now=8.1)) == [Bridge(node=NODE, caller_uuid="caller-2", agent_uuid="leg-2")]


def test_freeswitch_restart_ends_every_call_of_that_node_once() -> None:
    router = make_router("1000")
    router.handle(NodeUp(node=NODE, core_uuid="core-a"), now=0.0)
    router.handle(parked("caller-1", answered=True), now=1.0)
    router.handle(parked("caller-2", answered=True), now=1.0)
    out = router.handle(NodeUp(node=NODE, core_uuid="core-b", live_uuids=frozenset({"caller-1"})), now=9.0)
    assert sorted((r.uuid, r.outcome) for r in records(out)) == [("caller-1", "failed"), ("caller-2", "failed")]
    assert router.calls == {}
    assert agent_state(router, "agent-1000") == "available"


def test_draining_takes_no_new_calls_but_finishes_the_ones_in_flight() -> None:
    not_taken: list[str] = []
    router = Router(make_rules("1000"), now=0.0, on_not_taken=not_taken.append)
    router.handle(parked("caller-1", answered=True), now=0.0)
    router.handle(StopTakingCalls(), now=1.0)
    assert router.handle(parked("caller-2", answered=True), now=2.0) == []
    assert router.handle(parked("caller-1", answered=True), now=2.1) == []  # its stay, re-learnt: not a refusal
    assert list(router.calls) == ["caller-1"]
    assert not_taken == ["caller-2"]  # told, so that the daemon says who was left parked


def test_snapshot_counts_waiting_calls_and_agents_by_state() -> None:
    router = make_router("1000")
    router.handle(parked("caller-1", answered=True), now=0.0)
    router.handle(parked("caller-2", answered=True), now=3.0)
    [queue] = router.snapshot(now=10.0).queues
    assert (queue.waiting, queue.offering, queue.oldest_entered_at) == (2, 1, 0.0)
    assert [(call.uuid, call.state, call.waited) for call in router.snapshot(now=10.0).calls] == [
        ("caller-1", "offering", 10.0),
        ("caller-2", "waiting", 7.0),
    ]
    assert queue.agents["reserved"] == 1 and queue.agents["available"] == 0


def test_max_wait_still_applies_after_a_reload_changed_the_queue() -> None:
    router = Router(make_rules(max_wait=30.0), now=0.0)  # no agent: the caller waits
    router.handle(parked(answered=True), now=1.0)
    kept = QueueConfig(name="support", max_wait=30.0, ring_timeout=5.0)
    router.load_rules(Rules(queues={"other": QueueConfig(name="other"), "support": kept}, default_queue="other"), 50.0)

    out = router.handle(Tick(), now=100.0)

    assert esl(out) == [Kill(node=NODE, uuid="caller-1", cause="NORMAL_CLEARING")]
    assert [(r.uuid, r.outcome, r.queue) for r in records(out)] == [("caller-1", "timed_out", "support")]


def test_a_reload_that_removes_a_queue_sends_its_waiting_callers_where_the_new_rules_say() -> None:
    """Each caller of the removed queue is classified again: a route to a queue (entry time and priority kept),
    a transfer, the closed hours or a reject; the reload's diff announced each destination, and each stay ends
    once."""
    router = Router(make_rules(), now=0.0)  # no agent: the callers wait
    for uuid, number in [("to-sales", "100"), ("to-voicemail", "200"), ("to-closed", "300"), ("rejected", "400")]:
        router.handle(replace(parked(uuid, answered=True), caller_number=number), now=1.0)
    router.calls["to-sales"].priority = 3
    routes = [("100", RouteAction.QUEUE, "sales"), ("200", RouteAction.TRANSFER, "voicemail")]
    routes += [("300", RouteAction.CLOSED, "closed.wav"), ("400", RouteAction.REJECT, "")]
    new = Rules(
        queues={"sales": QueueConfig(name="sales")},
        routes=tuple(
            Route(label=number, condition=NumberMatches("caller", (NumberPattern(number),)), action=action, target=to)
            for number, action, to in routes
        ),
        default_queue="sales",
    )

    diff = router.reload_diff(new, now=10.0)
    out = router.load_rules(new, now=10.0)

    assert diff["calls_in_removed_queues"] == [
        {"call": "to-sales", "queue": "support", "destination": "queue sales"},
        {"call": "to-voicemail", "queue": "support", "destination": "transfer voicemail"},
        {"call": "to-closed", "queue": "support", "destination": "closed"},
        {"call": "rejected", "queue": "support", "destination": "reject"},
    ]
    assert esl(out) == [
        Transfer(node=NODE, uuid="to-voicemail", destination="voicemail"),
        Transfer(
            node=NODE, uuid="to-closed", destination="playback:closed.wav,hangup:NORMAL_CLEARING", dialplan="inline"
        ),
        Kill(node=NODE, uuid="rejected", cause="CALL_REJECTED"),
    ]
    assert [(r.uuid, r.outcome, r.queue) for r in records(out)] == [
        ("to-voicemail", "overflowed", "support"),
        ("to-closed", "closed", "support"),
        ("rejected", "rejected", "support"),
    ]
    moved = router.calls["to-sales"]
    assert (list(router.calls), moved.queue, moved.entered_at, moved.priority) == (["to-sales"], "sales", 1.0, 3)
    assert [q.name for q in router.snapshot(now=11.0).queues] == ["sales"]  # no row left for the removed queue
    for uuid in ("to-voicemail", "to-closed", "rejected"):  # their hang-up ends nothing twice
        assert records(router.handle(ChannelHungUp(node=NODE, uuid=uuid), now=12.0)) == []


def test_a_reload_that_removes_a_queue_cancels_the_ring_of_its_caller_and_leaves_a_talking_one_alone() -> None:
    router = make_router("1000", "1001")
    router.handle(parked("caller-1", answered=True), now=0.0)  # rings agent-1000 (leg-1)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=1.0)
    router.handle(ChannelBridged(node=NODE, uuid="caller-1", other_uuid="leg-1"), now=1.0)
    router.handle(parked("caller-2", answered=True), now=2.0)  # rings agent-1001 (leg-2)
    agents = tuple(AgentConfig(id=f"agent-{u}", endpoint=f"user/{u}", queues=("sales",)) for u in ("1000", "1001"))
    new = Rules(queues={"sales": QueueConfig(name="sales")}, agents=agents, default_queue="sales")

    assert [c["destination"] for c in router.reload_diff(new, now=3.0)["calls_in_removed_queues"]] == [  # type: ignore[index]
        "stays with its agent",
        "queue sales",
    ]
    out = router.load_rules(new, now=3.0)

    assert esl(out)[0] == Kill(node=NODE, uuid="leg-2", cause="ORIGINATOR_CANCEL")
    assert [c.call_uuid for c in esl(out) if isinstance(c, Originate)] == ["caller-2"]  # rung again, in sales
    assert (router.calls["caller-1"].state.value, router.calls["caller-1"].queue) == ("talking", "support")
    [record] = records(router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), now=60.0))
    assert (record.outcome, record.queue) == ("answered", "support")
