"""Periodic reconciliation: audits of a connected node in, exact commands and counted heals out (fake clock).

An audit (``ChannelsAudited``) lists what FreeSWITCH has at ``taken_at``; the router heals what two audits in a
row found out of step with its picture, and only judges what existed before the listing was taken. A lost answer
or bridge found once is healed at once only where waiting would settle the call wrongly (ring watchdog, hang-up).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterable

import pytest

from fsrouter.core.commands import (
    AgentStateRecord,
    Answer,
    Bridge,
    CallRecord,
    Command,
    Kill,
    OfferRecord,
    Originate,
    RecordAgentState,
    RecordCall,
    RecordOffer,
)
from fsrouter.core.events import (
    AgentControl,
    CallParked,
    ChannelAnswered,
    ChannelBridged,
    ChannelHungUp,
    ChannelsAudited,
    CommandFailed,
    Event,
    NodeDown,
    NodeUp,
    OriginateFailed,
    OriginateSucceeded,
    Tick,
)
from fsrouter.core.lifecycle import AgentState, CallState
from fsrouter.core.routing import Heal, Router
from fsrouter.core.rules import QueueConfig, Rules
from fsrouter.core.snapshot import HEAL_KINDS
from tests.core.acd_scenarios import NODE, agent, park


def connected_router(
    *agent_ids: str, healed: list[Heal] | None = None, strategy: str = "longest-idle", **queue: object
) -> Router:
    """Agents ``agent_ids`` in queue support (legs leg-1, leg-2, ...), node up at 0 with nothing on it;
    ``healed`` collects what ``on_heal`` is told."""
    support = QueueConfig(name="support", strategy=strategy, moh="", **queue)  # type: ignore[arg-type]
    rules = Rules(queues={"support": support}, agents=tuple(agent(name) for name in agent_ids), default_queue="support")
    legs = itertools.count(1)
    on_heal = healed.append if healed is not None else None
    router = Router(rules, now=0.0, new_id=lambda: f"leg-{next(legs)}", on_heal=on_heal)
    router.handle(NodeUp(node=NODE, core_uuid="core-1"), now=0.0)
    return router


def audit(
    router: Router,
    taken_at: float,
    now: float,
    live: Iterable[str] = (),
    agent_legs: Iterable[str] = (),
    answered: Iterable[str] = (),
    bridged: Iterable[tuple[str, str]] = (),
) -> list[Command]:
    """The node listed ``live`` channels, ``agent_legs``, ``answered`` channels and ``bridged`` pairs (all of them
    live) at ``taken_at``; the router hears of it at ``now``."""
    answered, bridged = list(answered), list(bridged)
    event = ChannelsAudited(
        node=NODE,
        taken_at=taken_at,
        live_uuids=frozenset([*live, *agent_legs, *answered, *itertools.chain.from_iterable(bridged)]),
        agent_legs=frozenset(agent_legs),
        answered_uuids=frozenset(answered),
        bridged=frozenset(frozenset(pair) for pair in bridged),
    )
    return router.handle(event, now)


def park_unanswered(router: Router, uuid: str, now: float) -> list[Command]:
    """A caller the dialplan parked without answering it: the router answers it."""
    return router.handle(CallParked(node=NODE, uuid=uuid, variables={"fsrouter_queue": "support"}), now)


def ended(commands: list[Command]) -> list[CallRecord]:
    return [command.record for command in commands if isinstance(command, RecordCall)]


def test_nothing_drifted_means_no_command_and_no_count() -> None:
    router = connected_router("a", "b")
    park(router, "talking", now=1.0)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=2.0)
    router.handle(ChannelBridged(node=NODE, uuid="talking", other_uuid="leg-1"), now=2.0)
    park(router, "ringing", now=3.0)  # rings b on leg-2

    for taken_at in (30.0, 60.0, 90.0):
        listed = audit(
            router,
            taken_at,
            taken_at + 0.1,
            agent_legs=["leg-2"],  # ringing; leg-1 is bridged: not an idle agent leg
            answered=["talking", "leg-1", "ringing"],
            bridged=[("talking", "leg-1")],
        )
        assert listed == []

    assert router.snapshot(now=91.0).heals == dict.fromkeys(HEAL_KINDS, 0)  # every kind, zeros included
    assert [call.state for call in router.calls.values()] == [CallState.TALKING, CallState.OFFERING]


def test_a_caller_whose_hang_up_was_lost_is_abandoned_once_two_audits_found_it_gone() -> None:
    healed: list[Heal] = []
    router = connected_router(healed=healed)  # no agent: the caller waits
    park(router, "caller-1", now=1.0)

    assert audit(router, taken_at=30.0, now=30.1) == []  # gone once: its hang-up may still be on the way
    out = audit(router, taken_at=60.0, now=60.1)

    assert out == [
        RecordCall(
            record=CallRecord(
                uuid="caller-1",
                node=NODE,
                queue="support",
                outcome="abandoned",
                entered_at=1.0,
                ended_at=60.1,
                hangup_cause="MISSED_HANGUP",
                service_level_seconds=20.0,
                short_abandon_seconds=0.0,
            )
        )
    ]
    assert router.heals == Counter(call_gone=1)
    assert healed == [Heal("call_gone", NODE, "caller-1", "caller-1")]
    # healed once: later audits and a late hang-up event find nothing more to end
    assert audit(router, taken_at=90.0, now=90.1) == []
    assert router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), now=91.0) == []
    assert router.heals == Counter(call_gone=1)


def test_a_hang_up_event_that_arrives_after_the_first_audit_is_no_heal() -> None:
    router = connected_router()
    park(router, "caller-1", now=1.0)

    audit(router, taken_at=30.0, now=30.1)  # listed after the hang-up, heard before its event
    [record] = ended(router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), now=30.2))
    assert audit(router, taken_at=60.0, now=60.1) == []

    assert (record.outcome, record.hangup_cause) == ("abandoned", "NORMAL_CLEARING")
    assert router.heals == Counter()


@pytest.mark.parametrize(
    ("lost", "still_listed", "kind"), [("caller-1", "leg-1", "call_gone"), ("leg-1", "caller-1", "offer_leg_gone")]
)
def test_what_started_after_the_listing_was_taken_is_not_judged_by_it(lost: str, still_listed: str, kind: str) -> None:
    router = connected_router("a", ring_timeout=120.0)

    # caller-1 parks and rings a on leg-1 after the listing (10), before the router hears of the listing (12)
    park(router, "caller-1", now=11.0)
    assert audit(router, taken_at=10.0, now=12.0) == []
    # then the hang-up of one of them is lost: found gone at 40 for the first time, healed at 70 only
    assert audit(router, taken_at=40.0, now=40.1, live=[still_listed]) == []
    assert lost in router.calls or lost in router.calls["caller-1"].offers
    assert audit(router, taken_at=70.0, now=70.1, live=[still_listed]) != []

    assert router.heals == Counter({kind: 1})


def test_an_offer_leg_that_vanished_frees_the_agent_without_penalty_and_the_call_is_offered_again() -> None:
    healed: list[Heal] = []
    router = connected_router("a", healed=healed, ring_timeout=120.0)
    park(router, "caller-1", now=1.0)  # rings a on leg-1

    assert audit(router, taken_at=30.0, now=30.1, live=["caller-1"]) == []
    out = audit(router, taken_at=60.0, now=60.1, live=["caller-1"])

    assert out == [
        RecordOffer(
            record=OfferRecord(
                call_uuid="caller-1",
                leg_uuid="leg-1",
                agent="a",
                queue="support",
                offered_at=1.0,
                ended_at=60.1,
                result="missed_hangup",
            )
        ),
        RecordAgentState(record=AgentStateRecord(agent="a", state="available", at=60.1, reason="missed_hangup")),
        RecordAgentState(record=AgentStateRecord(agent="a", state="reserved", at=60.1, reason="offered caller-1")),
        Originate(
            node=NODE,
            leg_uuid="leg-2",
            call_uuid="caller-1",
            endpoint="user/a",
            timeout=120.0,
            variables={"fsrouter_queue": "support", "fsrouter_agent": "a"},
        ),
    ]
    assert router.agents["a"].no_answer_count == 0
    assert router.heals == Counter(offer_leg_gone=1)
    assert healed == [Heal("offer_leg_gone", NODE, "leg-1", "caller-1")]


def test_a_conversation_whose_agent_leg_vanished_ends_answered_and_the_agent_wraps_up() -> None:
    router = connected_router("a", wrapup=5.0)
    park(router, "caller-1", now=1.0)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=2.0)
    router.handle(ChannelBridged(node=NODE, uuid="caller-1", other_uuid="leg-1"), now=2.0)

    assert audit(router, taken_at=30.0, now=30.1, live=["caller-1"]) == []
    out = audit(router, taken_at=60.0, now=60.1, live=["caller-1"])

    assert out == [
        RecordCall(
            record=CallRecord(
                uuid="caller-1",
                node=NODE,
                queue="support",
                outcome="answered",
                entered_at=1.0,
                ended_at=60.1,
                agent="a",
                answered_at=2.0,
                hangup_cause="MISSED_HANGUP",
                offers=1,
                service_level_seconds=20.0,
                short_abandon_seconds=0.0,
            )
        ),
        RecordAgentState(record=AgentStateRecord(agent="a", state="wrap_up", at=60.1, reason="call ended")),
    ]
    assert router.heals == Counter(agent_leg_gone=1)


def test_a_caller_whose_answer_was_lost_is_bridged_once_two_audits_found_it_answered() -> None:
    healed: list[Heal] = []
    router = connected_router("a", healed=healed)
    assert Answer(node=NODE, uuid="caller-1") in park_unanswered(router, "caller-1", now=1.0)  # and rings a on leg-1
    assert router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=2.0) != []  # a answers: on call
    assert router.handle(OriginateSucceeded(node=NODE, leg_uuid="leg-1"), now=2.02) == []
    # the caller's CHANNEL_ANSWER is lost: no bridge to a caller the router believes unanswered
    assert router.calls["caller-1"].state is CallState.CONNECTING

    answered = ["caller-1", "leg-1"]
    assert audit(router, 30.0, 30.1, answered=answered) == []
    out = audit(router, 60.0, 60.1, answered=answered)

    assert out == [Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1")]
    assert router.heals == Counter(answer_lost=1)
    assert healed == [Heal("answer_lost", NODE, "caller-1", "caller-1")]
    # healed once: the event arriving late or more audits bridge nothing twice
    assert router.handle(ChannelAnswered(node=NODE, uuid="caller-1"), now=60.2) == []
    assert audit(router, 90.0, 90.1, answered=answered) == []
    router.handle(ChannelBridged(node=NODE, uuid="caller-1", other_uuid="leg-1"), now=90.2)
    [record] = ended(router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), now=120.0))
    assert (record.outcome, record.agent, record.answered_at) == ("answered", "a", 90.2)
    assert router.heals == Counter(answer_lost=1)


def test_an_agent_leg_whose_answer_was_lost_is_bridged_once_two_audits_found_it_answered() -> None:
    healed: list[Heal] = []
    router = connected_router("a", healed=healed)
    park(router, "caller-1", now=1.0)  # answered by the dialplan; rings a on leg-1

    answered = ["caller-1", "leg-1"]
    assert audit(router, 5.0, 5.1, answered=answered) == []
    out = audit(router, 10.0, 10.1, answered=answered)

    assert out == [
        RecordAgentState(record=AgentStateRecord(agent="a", state="on_call", at=10.1, reason="answered offer")),
        Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1"),
    ]
    assert router.heals == Counter(answer_lost=1)
    assert healed == [Heal("answer_lost", NODE, "leg-1", "caller-1")]
    # past the ring watchdog, an answered leg is never timed out; its unconfirmed bridge is sent once more
    assert router.handle(Tick(), now=40.0) == [Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1")]


def test_the_ring_watchdog_answers_a_leg_the_last_audit_found_answered_instead_of_timing_it_out() -> None:
    """With audits every 30 s the second one comes after the watchdog (ring timeout 20 s + 10 s of grace): one
    sighting must do, or an agent who answered is hung up on and counted as a no-answer."""
    router = connected_router("a", "b")
    park(router, "caller-1", now=1.0)  # rings a on leg-1
    park(router, "caller-2", now=1.0)  # rings b on leg-2
    assert audit(router, 25.0, 25.1, answered=["caller-1", "caller-2", "leg-1"]) == []  # leg-2 still rings

    out = router.handle(Tick(), now=31.5)

    assert [c for c in out if isinstance(c, Bridge | Kill)] == [
        Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1"),
        Kill(node=NODE, uuid="leg-2", cause="ORIGINATOR_CANCEL"),
    ]
    assert (router.agents["a"].state, router.agents["a"].no_answer_count) == (AgentState.ON_CALL, 0)
    assert router.agents["b"].no_answer_count == 1
    # healed once: the next audit finds the same listing and bridges nothing more (b is offered caller-2 again)
    later = audit(router, 55.0, 55.1, answered=["caller-1", "caller-2", "leg-1"])
    assert [c for c in later if isinstance(c, Bridge | Kill)] == []
    assert router.heals == Counter(answer_lost=1)


def test_a_lost_bridge_is_talking_once_two_audits_found_the_legs_bridged_from_the_first_listing_on() -> None:
    healed: list[Heal] = []
    router = connected_router("a", healed=healed, wrapup=5.0)
    park(router, "caller-1", now=1.0)  # rings a on leg-1
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=2.0)
    assert Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1") in router.handle(
        OriginateSucceeded(node=NODE, leg_uuid="leg-1"), now=2.02
    )
    # the CHANNEL_BRIDGE is lost: the call stays connecting

    answered, bridged = ["caller-1", "leg-1"], [("caller-1", "leg-1")]
    assert audit(router, 30.0, 30.1, answered=answered, bridged=bridged) == []
    out = audit(router, 60.0, 60.1, answered=answered, bridged=bridged)

    assert out == [  # talking since the first listing that showed the bridge: it happened no later
        RecordOffer(
            record=OfferRecord(
                call_uuid="caller-1",
                leg_uuid="leg-1",
                agent="a",
                queue="support",
                offered_at=1.0,
                ended_at=30.0,
                result="answered",
            )
        )
    ]
    assert router.heals == Counter(bridge_lost=1)
    assert healed == [Heal("bridge_lost", NODE, "leg-1", "caller-1")]
    [record] = ended(router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), now=90.0))
    assert (record.outcome, record.agent, record.answered_at, record.ended_at) == ("answered", "a", 30.0, 90.0)


@pytest.mark.parametrize(
    ("hanging_up", "bridge_seen", "outcome"),
    [("caller-1", True, "answered"), ("leg-1", True, "answered"), ("caller-1", False, "abandoned")],
)
def test_a_call_ending_after_one_audit_saw_its_legs_bridged_was_answered(
    hanging_up: str, bridge_seen: bool, outcome: str
) -> None:
    """Its CHANNEL_BRIDGE was lost and it ends before a second audit: the caller talked to the agent. Unless no
    audit saw the bridge: then nothing tells, and it stays abandoned."""
    router = connected_router("a")
    park(router, "caller-1", now=1.0)  # rings a on leg-1
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=2.0)  # bridge sent; its CHANNEL_BRIDGE is lost
    audit(router, 30.0, 30.1, answered=["caller-1", "leg-1"], bridged=[("caller-1", "leg-1")] if bridge_seen else [])

    [record] = ended(router.handle(ChannelHungUp(node=NODE, uuid=hanging_up), now=40.0))

    assert (record.outcome, record.answered_at) == (outcome, 30.0 if bridge_seen else None)
    assert router.heals == Counter(bridge_lost=1 if bridge_seen else 0)


@pytest.mark.parametrize("late", ["the caller's answer", "the bridge"])
def test_an_answer_or_bridge_event_that_arrives_after_the_first_audit_is_no_heal(late: str) -> None:
    router = connected_router("a")
    park_unanswered(router, "caller-1", now=1.0)  # rings a on leg-1
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=2.0)
    answered, bridged = ["caller-1", "leg-1"], [("caller-1", "leg-1")]
    if late == "the bridge":
        router.handle(ChannelAnswered(node=NODE, uuid="caller-1"), now=2.0)  # bridge sent

    audit(router, 30.0, 30.1, answered=answered, bridged=bridged if late == "the bridge" else [])
    router.handle(ChannelAnswered(node=NODE, uuid="caller-1"), now=30.2)  # a duplicate when it is the bridge
    router.handle(ChannelBridged(node=NODE, uuid="caller-1", other_uuid="leg-1"), now=30.3)
    assert audit(router, 60.0, 60.1, answered=answered, bridged=bridged) == []

    assert router.calls["caller-1"].state is CallState.TALKING
    assert router.heals == Counter()


def test_an_agent_leg_nobody_tracks_is_killed_once_two_audits_found_it() -> None:
    healed: list[Heal] = []
    router = connected_router("a", healed=healed, ring_timeout=120.0)
    park(router, "caller-1", now=1.0)  # leg-1 is ours and known: never an orphan

    assert audit(router, 30.0, 30.1, live=["caller-1"], agent_legs=["leg-1", "left-by-previous-process"]) == []
    out = audit(router, 60.0, 60.1, live=["caller-1"], agent_legs=["leg-1", "left-by-previous-process"])

    assert out == [Kill(node=NODE, uuid="left-by-previous-process", cause="NORMAL_CLEARING")]
    assert router.heals == Counter(orphan_leg=1)
    assert healed == [Heal("orphan_leg", NODE, "left-by-previous-process")]
    assert audit(router, 90.0, 90.1, live=["caller-1"], agent_legs=["leg-1"]) == []


def test_a_leg_we_just_hung_up_is_no_orphan_even_if_a_listing_still_shows_it() -> None:
    router = connected_router("a", ring_timeout=120.0)
    park(router, "caller-1", now=1.0)  # rings a on leg-1

    # listed at 10; the caller hangs up at 11 and we kill leg-1; the audit is heard at 12: leg-1 is unknown now
    router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), now=11.0)
    assert audit(router, 10.0, 12.0, live=["caller-1"], agent_legs=["leg-1"]) == []
    assert audit(router, 40.0, 40.1) == []  # the kill worked: gone by the next listing

    assert router.heals == Counter()


def test_a_listing_taken_before_the_last_reconnect_is_ignored() -> None:
    router = connected_router()
    park(router, "caller-1", now=1.0)
    assert audit(router, taken_at=5.0, now=5.1) == []  # found gone once

    router.handle(NodeDown(node=NODE), now=6.0)
    assert audit(router, taken_at=5.5, now=6.5) == []  # heard while the node is down
    router.handle(NodeUp(node=NODE, core_uuid="core-1", live_uuids=frozenset({"caller-1"})), now=8.0)
    assert audit(router, taken_at=7.0, now=9.0) == []  # listed on the old connection, heard after NodeUp
    assert audit(router, taken_at=30.0, now=30.1) == []  # gone once since the reconnect: not yet

    assert "caller-1" in router.calls
    assert router.heals == Counter()


def test_after_a_refused_bridge_the_killed_agent_leg_is_no_longer_tracked() -> None:
    """Its hang-up (or a reconnect or audit finding it gone) must not end the offer a second time."""
    router = connected_router("a", "b")
    park(router, "caller-1", now=1.0)  # rings a on leg-1 (b has been idle as long: a is first in the rules)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), now=2.0)

    out = router.handle(CommandFailed(node=NODE, command="bridge", uuid="caller-1", reason="-ERR"), now=2.1)
    assert [c for c in out if isinstance(c, Kill | RecordOffer | Originate)] == [
        Kill(node=NODE, uuid="leg-1", cause="NORMAL_CLEARING"),
        RecordOffer(
            record=OfferRecord(
                call_uuid="caller-1",
                leg_uuid="leg-1",
                agent="a",
                queue="support",
                offered_at=1.0,
                ended_at=2.1,
                result="send_failed",
            )
        ),
        Originate(
            node=NODE,
            leg_uuid="leg-2",
            call_uuid="caller-1",
            endpoint="user/b",
            timeout=20.0,
            variables={"fsrouter_queue": "support", "fsrouter_agent": "b"},
        ),
    ]

    assert router.handle(ChannelHungUp(node=NODE, uuid="leg-1"), now=2.2) == []
    for taken_at in (30.0, 60.0):
        assert audit(router, taken_at, taken_at + 0.1, live=["caller-1", "leg-2"]) == []
    assert router.heals == Counter()


def test_reconnect_bridges_a_leg_answered_meanwhile_and_waits_for_freeswitch_to_confirm_the_bridge() -> None:
    router = connected_router("a")
    park(router, "caller-1", now=1.0)  # rings a on leg-1
    router.handle(NodeDown(node=NODE), now=2.0)

    both = frozenset({"caller-1", "leg-1"})
    out = router.handle(NodeUp(node=NODE, core_uuid="core-1", live_uuids=both, answered_uuids=both), now=5.0)

    # the job result may have been lost with the connection: it is waited for, then the leg is bridged anyway
    assert [c for c in out if isinstance(c, Bridge)] == []
    assert router.handle(Tick(), now=8.1) == [Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1")]
    assert router.calls["caller-1"].state is CallState.CONNECTING  # not talking before CHANNEL_BRIDGE says so
    router.handle(ChannelBridged(node=NODE, uuid="caller-1", other_uuid="leg-1"), now=8.2)
    assert (router.calls["caller-1"].state, router.calls["caller-1"].connected_at) == (CallState.TALKING, 8.2)


# --- why there is no "stuck agent" heal -----------------------------------------------------------------------


def random_event(rng: random.Random, router: Router, now: float, step: int) -> Event:
    """Any event FreeSWITCH, an operator or the daemon could send next, about channels the router knows or not."""
    legs = [leg for call in router.calls.values() for leg in call.offers] + [
        call.agent_leg for call in router.calls.values() if call.agent_leg
    ]
    channels = [*router.calls, *legs, f"caller-{step - 3}"]
    uuid = rng.choice(channels)
    live = frozenset(u for u in channels if rng.random() < 0.8)
    choices: list[Event] = [
        ChannelAnswered(node=NODE, uuid=uuid),
        ChannelBridged(node=NODE, uuid=uuid, other_uuid=rng.choice(channels)),
        ChannelHungUp(node=NODE, uuid=uuid, cause=rng.choice(["NORMAL_CLEARING", "NO_ANSWER"])),
        OriginateFailed(
            node=NODE, leg_uuid=uuid, cause=rng.choice(["USER_BUSY", "NO_ANSWER", "CALL_REJECTED", "ORIGINATOR_CANCEL"])
        ),
        OriginateSucceeded(node=NODE, leg_uuid=uuid),
        CommandFailed(node=NODE, command=rng.choice(["answer", "bridge", "originate"]), uuid=uuid, reason="-ERR"),
        AgentControl(
            agent_id=rng.choice(list(router.agents)), action=rng.choice(["login", "logout", "break", "ready"])
        ),
        NodeDown(node=NODE),
        NodeUp(node=NODE, core_uuid=rng.choice(["core-1", "core-1", "core-2"]), live_uuids=live, answered_uuids=live),
        ChannelsAudited(
            node=NODE,
            taken_at=now - rng.random(),
            live_uuids=live,
            agent_legs=frozenset(legs),
            answered_uuids=frozenset(u for u in live if rng.random() < 0.5),
            bridged=frozenset(
                frozenset({call.uuid, call.agent_leg})
                for call in router.calls.values()
                if call.agent_leg and rng.random() < 0.5
            ),
        ),
        Tick(),
    ]
    return rng.choice(choices)


def test_no_agent_is_ever_reserved_or_on_call_without_an_offer_or_a_call_pointing_at_it() -> None:
    """Seeded random walks over every kind of event: an agent is RESERVED only while a tracked call offers it a
    ringing leg, ON_CALL only while a tracked call has it as its agent. So a stuck agent is always a stuck offer
    or call, which the heals end, and a separate "stuck agent" heal would never fire."""
    for seed in range(150):
        rng = random.Random(seed)
        router = connected_router("a", "b", "c", strategy=rng.choice(["longest-idle", "ring-all"]), ring_timeout=2.0)
        now = 0.0
        for step in range(200):
            now += rng.choice([0.0, 0.5, 3.0])
            if rng.random() < 0.2:
                park(router, f"caller-{step}", now)
            else:
                router.handle(random_event(rng, router, now, step), now)
            offers = {leg: offer for call in router.calls.values() for leg, offer in call.offers.items()}
            for someone in router.agents.values():
                if someone.state is AgentState.RESERVED:
                    assert someone.ringing, (seed, step)
                    assert all(offers[leg].agent_id == someone.id for leg in someone.ringing), (seed, step)
                if someone.state is AgentState.ON_CALL:
                    call = router.calls.get(someone.call_uuid or "")
                    assert call is not None and call.agent_id == someone.id, (seed, step)
