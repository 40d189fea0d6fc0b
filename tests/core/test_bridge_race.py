"""The originate/bridge race (``core/routing/offers.py``, "The originate/bridge race"): events in with a fake clock,
exact commands out.

The first two scenarios replay what a real FreeSWITCH 1.10.12 sent (``tests/fixtures/esl-caller/plain/``,
``bridge_race_ok`` and ``bridge_race_err``), translated by the ESL adapter, each event at its
``Event-Date-Timestamp``. In ``bridge_race_err`` the recording client bridged on the agent's CHANNEL_ANSWER, so
the job reported ``-ERR ORIGINATOR_CANCEL`` although the legs bridged; a router that took that for a failed
offer rang a second agent for the same caller.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsrouter.adapters.esl_translate import translate
from fsrouter.core.commands import (
    AgentStateRecord,
    Bridge,
    Command,
    Kill,
    OfferRecord,
    Originate,
    PlayMusic,
    RecordAgentState,
    RecordCall,
    RecordOffer,
)
from fsrouter.core.events import (
    CallParked,
    ChannelAnswered,
    ChannelBridged,
    ChannelHungUp,
    Event,
    OriginateFailed,
    OriginateSucceeded,
    ReleaseAgentLegs,
    Tick,
)
from fsrouter.core.lifecycle import AgentState, CallState
from fsrouter.core.routing import Router
from fsrouter.core.rules import AgentConfig, QueueConfig, Rules
from tests.adapters.esl_helpers import split_frames

CAPTURES = Path(__file__).parent.parent / "fixtures" / "esl-caller"
NODE = "fs1"
MOH = "local_stream://moh"


def captured(name: str) -> Iterator[tuple[float, Event]]:
    """(time in seconds, core event) for each event of a capture the adapter translates, in delivery order."""
    for frame in split_frames((CAPTURES / "plain" / f"{name}.raw").read_bytes()):
        if not frame.event_headers:
            continue
        event = translate(frame.event_headers, frame.event_body, NODE)
        if event is not None:
            yield int(frame.event_headers["Event-Date-Timestamp"]) / 1e6, event


def router_with(*agents: str, legs: list[str], bridge_timeout: float = 3.0) -> Router:
    """Agents ``agent-<user>`` in queue support; the agent legs the router originates get the uuids ``legs``."""
    configs = tuple(AgentConfig(id=f"agent-{user}", endpoint=f"user/{user}", queues=("support",)) for user in agents)
    rules = Rules(queues={"support": QueueConfig(name="support", moh=MOH)}, agents=configs, default_queue="support")
    new_legs = iter(legs)
    return Router(rules, now=0.0, new_id=lambda: next(new_legs), bridge_timeout=bridge_timeout)


def of_type(commands: list[Command], *kinds: type) -> list[Command]:
    return [command for command in commands if isinstance(command, kinds)]


@pytest.mark.parametrize(
    ("name", "bridged_on"), [("bridge_race_ok", OriginateSucceeded), ("bridge_race_err", OriginateFailed)]
)
def test_a_captured_race_gives_one_agent_leg_one_bridge_and_one_answered_call(name: str, bridged_on: type) -> None:
    run = json.loads((CAPTURES / "bridge_race.json").read_text())[name.removeprefix("bridge_race_")]
    router = router_with("1000", "1001", legs=[run["agent_leg"], "a-second-leg"])

    steps = [(type(event), router.handle(event, now)) for now, event in captured(name)]
    everything = [command for _, commands in steps for command in commands]

    # the bridge goes out once the job's result is in (+OK, or -ERR after the leg answered), never on the answer
    assert [kind for kind, commands in steps if of_type(commands, Bridge)] == [bridged_on]
    assert of_type(everything, Bridge) == [Bridge(node=NODE, caller_uuid=run["caller"], agent_uuid=run["agent_leg"])]
    assert [c.leg_uuid for c in of_type(everything, Originate)] == [run["agent_leg"]]  # agent-1001 never rung
    assert of_type(everything, Kill) == []
    [call] = [c.record for c in of_type(everything, RecordCall)]
    assert (call.uuid, call.outcome, call.agent, call.offers) == (run["caller"], "answered", "agent-1000", 1)
    assert [(o.record.leg_uuid, o.record.result) for o in of_type(everything, RecordOffer)] == [
        (run["agent_leg"], "answered")
    ]
    assert router.agents["agent-1000"].state is AgentState.WRAP_UP


def test_a_job_ok_delivered_before_the_legs_answer_bridges_at_once() -> None:
    """Delivery order is not always Event-Sequence order: the +OK alone says the agent answered."""
    router = router_with("1000", legs=["leg-1"])
    router.handle(CallParked(node=NODE, uuid="caller-1", answered=True, variables={"fsrouter_queue": "support"}), 1.0)

    out = router.handle(OriginateSucceeded(node=NODE, leg_uuid="leg-1"), 2.0)

    assert of_type(out, Bridge) == [Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1")]
    assert router.agents["agent-1000"].state is AgentState.ON_CALL
    assert router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), 2.01) == []


def connecting(router: Router, *, at: float) -> list[Command]:
    """caller-1 (answered by the dialplan) parks at ``at``, agent-1000 answers leg-1, the job says +OK: bridge."""
    router.handle(CallParked(node=NODE, uuid="caller-1", answered=True, variables={"fsrouter_queue": "support"}), at)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), at + 0.3)
    return router.handle(OriginateSucceeded(node=NODE, leg_uuid="leg-1"), at + 0.32)


def test_a_bridge_never_confirmed_is_sent_again_to_the_same_agent() -> None:
    router = router_with("1000", "1001", legs=["leg-1", "leg-2"])
    bridge = Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1")
    assert of_type(connecting(router, at=10.0), Bridge) == [bridge]  # acknowledged +OK, no CHANNEL_BRIDGE comes

    assert router.handle(Tick(), 13.32) == []  # within the bound (3 s)
    assert router.handle(Tick(), 13.4) == [bridge]

    router.handle(ChannelBridged(node=NODE, uuid="caller-1", other_uuid="leg-1"), 13.5)
    [record] = [
        c.record for c in router.handle(ChannelHungUp(node=NODE, uuid="caller-1"), 60.0) if isinstance(c, RecordCall)
    ]
    assert (record.outcome, record.agent, record.answered_at, record.offers) == ("answered", "agent-1000", 13.5, 1)


def test_a_bridge_never_confirmed_twice_ends_cleanly_and_the_caller_is_offered_again_with_its_place() -> None:
    router = router_with("1000", "1001", legs=["leg-1", "leg-2"])
    connecting(router, at=10.0)  # agent-1000 was the longest idle; bridge at 10.32
    router.handle(Tick(), 13.4)  # sent again

    out = router.handle(Tick(), 16.5)

    assert out == [
        Kill(node=NODE, uuid="leg-1", cause="NORMAL_CLEARING"),
        RecordOffer(
            record=OfferRecord(
                call_uuid="caller-1",
                leg_uuid="leg-1",
                agent="agent-1000",
                queue="support",
                offered_at=10.0,
                ended_at=16.5,
                result="bridge_timeout",
            )
        ),
        PlayMusic(node=NODE, uuid="caller-1", source=MOH),  # the bridge's uuid_break had stopped it
        RecordAgentState(
            record=AgentStateRecord(agent="agent-1000", state="available", at=16.5, reason="bridge never confirmed")
        ),
        # agent-1000 is free with no penalty, but agent-1001 is now the one idle the longest
        RecordAgentState(
            record=AgentStateRecord(agent="agent-1001", state="reserved", at=16.5, reason="offered caller-1")
        ),
        Originate(
            node=NODE,
            leg_uuid="leg-2",
            call_uuid="caller-1",
            endpoint="user/1001",
            timeout=20.0,
            variables={"fsrouter_queue": "support", "fsrouter_agent": "agent-1001"},
        ),
    ]
    call = router.calls["caller-1"]
    assert (call.state, call.entered_at, call.offers_made) == (CallState.OFFERING, 10.0, 2)
    agent = router.agents["agent-1000"]
    assert (agent.state, agent.no_answer_count, agent.ready_at) == (AgentState.AVAILABLE, 0, 16.5)
    # the killed leg's hang-up finds nothing left to end
    assert router.handle(ChannelHungUp(node=NODE, uuid="leg-1"), 16.6) == []


def test_a_job_that_fails_after_the_answer_leaves_the_offer_to_the_legs_own_events() -> None:
    router = router_with("1000", legs=["leg-1"])
    router.handle(CallParked(node=NODE, uuid="caller-1", answered=True, variables={"fsrouter_queue": "support"}), 1.0)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), 2.0)

    out = router.handle(OriginateFailed(node=NODE, leg_uuid="leg-1", cause="ORIGINATOR_CANCEL"), 2.02)

    # only &park() never ran: the answered leg is bridged, the agent stays on the call, nobody else is rung
    assert out == [Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1")]
    assert router.agents["agent-1000"].state is AgentState.ON_CALL


def test_a_lost_job_result_is_waited_for_then_the_answered_leg_is_bridged() -> None:
    router = router_with("1000", legs=["leg-1"])
    router.handle(CallParked(node=NODE, uuid="caller-1", answered=True, variables={"fsrouter_queue": "support"}), 1.0)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), 2.0)

    assert router.handle(Tick(), 5.0) == []
    assert router.handle(Tick(), 5.1) == [Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1")]


def test_release_agent_legs_hangs_up_every_leg_not_in_a_conversation_and_rings_no_more() -> None:
    router = router_with("1000", "1001", "1002", "1003", legs=["leg-1", "leg-2", "leg-3", "leg-4", "leg-5"])
    parked = {"fsrouter_queue": "support"}
    for index, now in ((1, 1.0), (2, 1.1), (3, 1.2)):
        router.handle(CallParked(node=NODE, uuid=f"caller-{index}", answered=True, variables=parked), now)
    router.handle(ChannelAnswered(node=NODE, uuid="leg-1"), 2.0)  # caller-1: answered, job not in yet
    router.handle(ChannelAnswered(node=NODE, uuid="leg-2"), 2.0)
    router.handle(OriginateSucceeded(node=NODE, leg_uuid="leg-2"), 2.0)  # caller-2: bridge sent
    # caller-3: leg-3 still rings

    out = router.handle(ReleaseAgentLegs(), 3.0)

    assert of_type(out, Kill) == [
        Kill(node=NODE, uuid="leg-1", cause="NORMAL_CLEARING"),
        Kill(node=NODE, uuid="leg-3", cause="ORIGINATOR_CANCEL"),
    ]
    assert of_type(out, Originate) == []
    assert {uuid: call.state for uuid, call in router.calls.items()} == {
        "caller-1": CallState.WAITING,
        "caller-2": CallState.CONNECTING,  # its legs are about to talk: left to the bridge
        "caller-3": CallState.WAITING,
    }
    assert [router.agents[a].state for a in ("agent-1000", "agent-1001", "agent-1002")] == [
        AgentState.AVAILABLE,
        AgentState.ON_CALL,
        AgentState.AVAILABLE,
    ]
    # agents are free and callers wait, yet nobody is rung any more
    assert of_type(router.handle(Tick(), 60.0), Originate) == []
