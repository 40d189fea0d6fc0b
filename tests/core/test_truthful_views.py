"""What the router tells the NOC is true (issue 13): waits end when the caller left, agents count reachable only
once FreeSWITCH lists their registration, records keep their queue's thresholds, unknown queues are told."""

from __future__ import annotations

from fsrouter.core.causes import LOST_WHILE_DISCONNECTED
from fsrouter.core.commands import CallRecord, Command, RecordCall
from fsrouter.core.events import (
    AgentRegistration,
    ChannelAnswered,
    ChannelBridged,
    ChannelHungUp,
    HoldChanged,
    NodeDown,
    NodeUp,
    OriginateSucceeded,
)
from fsrouter.core.routing import Router
from fsrouter.core.rules import AgentConfig, QueueConfig, Rules
from fsrouter.core.snapshot import UNREGISTERED
from tests.core.acd_scenarios import NODE, agent, park


def make_router(*agents: AgentConfig, unknown: list[str] | None = None, **queue: object) -> Router:
    support = QueueConfig(name="support", strategy="longest-idle", moh="", **queue)  # type: ignore[arg-type]
    rules = Rules(queues={"support": support}, agents=agents, default_queue="support")
    on_unknown = unknown.append if unknown is not None else None
    router = Router(rules, now=0.0, new_id=lambda: "leg-1", on_unknown_queue=on_unknown)
    users = frozenset(config.sip_user for config in agents)
    router.handle(NodeUp(node=NODE, core_uuid="core-1", registered_users=users), 0.0)
    return router


def record_of(commands: list[Command]) -> CallRecord:
    [record] = [command.record for command in commands if isinstance(command, RecordCall)]
    return record


# --- waits end when the caller left ---------------------------------------------------------------------


def test_a_hang_up_learnt_late_ends_the_wait_at_freeswitch_s_hang_up_time() -> None:
    router = make_router()  # no agent: the caller waits
    park(router, "caller-1", now=10.0)

    record = record_of(router.handle(ChannelHungUp(node=NODE, uuid="caller-1", hung_up_at=14.0), now=19.0))

    assert (record.outcome, record.ended_at, record.wait_seconds) == ("abandoned", 14.0, 4.0)


def test_freeswitch_s_hang_up_time_never_ends_a_call_after_fsrouter_learnt_it_nor_before_it_was_connected() -> None:
    router = make_router(agent("a"))
    park(router, "caller-1", now=10.0)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=11.0)
    router.handle(ChannelBridged(node=NODE, uuid="caller-1", other_uuid="leg-1"), now=12.0)

    late_clock = record_of(router.handle(ChannelHungUp(node=NODE, uuid="caller-1", hung_up_at=11.5), now=30.0))

    assert (late_clock.outcome, late_clock.answered_at, late_clock.ended_at) == ("answered", 12.0, 12.0)
    router = make_router()
    park(router, "caller-2", now=10.0)
    fast_clock = record_of(router.handle(ChannelHungUp(node=NODE, uuid="caller-2", hung_up_at=99.0), now=20.0))
    assert fast_clock.ended_at == 20.0


def test_a_caller_gone_at_reconnect_ends_at_the_disconnect_with_an_estimated_end() -> None:
    """``LOST_WHILE_DISCONNECTED`` says the end is estimated: the caller left at the latest when the link
    dropped, as far as fsrouter can know; the outage is not counted as waiting."""
    router = make_router()
    park(router, "caller-1", now=10.0)
    router.handle(NodeDown(node=NODE), now=25.0)

    record = record_of(router.handle(NodeUp(node=NODE, core_uuid="core-1"), now=85.0))

    assert (record.outcome, record.ended_at, record.hangup_cause) == ("abandoned", 25.0, LOST_WHILE_DISCONNECTED)


# --- reachability ---------------------------------------------------------------------------------------


def test_agents_of_user_endpoints_are_not_counted_reachable_before_a_registrations_listing() -> None:
    gateway = AgentConfig(id="gw", endpoint="sofia/gateway/pstn/0145678901", queues=("support",))
    rules = Rules(queues={"support": QueueConfig(name="support", moh="")}, agents=(agent("a"), agent("b"), gateway))
    router = Router(rules, now=0.0)

    def counts() -> tuple[int, int, int]:
        [queue] = router.snapshot(now=1.0).queues
        return queue.agents["available"], queue.agents[UNREGISTERED], queue.unregistered

    assert counts() == (1, 2, 2)  # not known yet: only the gateway is reachable
    router.handle(NodeUp(node=NODE, core_uuid="core-1", registered_users=frozenset({"a"})), now=1.0)
    assert counts() == (2, 1, 1)
    assert [(view.id, view.registered, view.reachable) for view in router.snapshot(now=1.0).agents] == [
        ("a", True, True),
        ("b", False, False),
        ("gw", True, True),  # a gateway needs no registration: it may be rung on any node
    ]
    router.handle(AgentRegistration(node=NODE, user="b", registered=True), now=2.0)
    assert counts() == (3, 0, 0)


def test_a_listing_from_another_node_does_not_unregister_a_known_phone() -> None:
    router = make_router(agent("a"))
    router.handle(NodeUp(node="fs2", core_uuid="core-2", registered_users=frozenset()), now=1.0)
    assert router.agents["a"].registered is True


# --- records keep their thresholds; unknown queues are told -----------------------------------------------


def test_a_record_keeps_its_queue_s_thresholds_and_an_unknown_queue_name_is_told() -> None:
    unknown: list[str] = []
    router = make_router(unknown=unknown, service_level_seconds=7.0, short_abandon_seconds=3.0)
    park(router, "caller-1", now=10.0, queue="suport")

    record = record_of(router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), now=12.0))

    assert (record.queue, record.service_level_seconds, record.short_abandon_seconds) == ("support", 7.0, 3.0)
    assert unknown == ["suport"]


def test_a_hang_up_time_before_a_hold_the_router_counted_ends_the_call_at_that_hold_not_before() -> None:
    """Under load the router sees events a little late: FreeSWITCH's hang-up time can be earlier than the router's
    own time for the hold it counted. The record stays consistent: talk + hold = connected time."""
    router = make_router(agent("a"))
    park(router, "caller-1", now=1.0)  # rings a on leg-1
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=2.0)
    router.handle(OriginateSucceeded(node=NODE, leg_uuid="leg-1"), now=2.0)
    router.handle(ChannelBridged(node=NODE, uuid="caller-1", other_uuid="leg-1"), now=2.0)
    router.handle(HoldChanged(node=NODE, uuid="leg-1", held=True), now=3.0)
    router.handle(HoldChanged(node=NODE, uuid="leg-1", held=False), now=4.0)

    record = record_of(router.handle(ChannelHungUp(node=NODE, uuid="caller-1", hung_up_at=3.5), now=4.2))

    assert (record.ended_at, record.hold_seconds, record.talk_seconds) == (4.0, 1.0, 1.0)
