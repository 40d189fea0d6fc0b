"""The core on random event sequences (hypothesis): whatever FreeSWITCH, an operator or the daemon sends, in any
order, each call is in one state, no agent rings for more calls than its ``max_offers``, and every call that
entered ends with exactly one record (and no call that never entered gets one); after every event, no waiting
caller could be offered to an agent at that moment (dispatch decided every call that could move).

The sequences are drawn step by step (``st.data()``), so they name the channels the router knows at that point:
its callers, their agent legs, a caller that left, and unknown ones. ``tests/core/test_reconcile.py`` has the
seeded random walk over the same events for the agent-state invariant.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from fsrouter.core.commands import Command, RecordCall
from fsrouter.core.events import (
    AgentControl,
    AgentRegistration,
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
from fsrouter.core.lifecycle import CallState
from fsrouter.core.routing import Router
from fsrouter.core.rules import QueueConfig, Rules
from tests.core.acd_scenarios import NODE, agent

AGENTS = ("a", "b", "c")
EVENT_KINDS = (
    CallParked,
    ChannelAnswered,
    ChannelBridged,
    ChannelHungUp,
    OriginateFailed,
    OriginateSucceeded,
    CommandFailed,
    AgentControl,
    AgentRegistration,
    NodeDown,
    NodeUp,
    ChannelsAudited,
    Tick,
)
T = TypeVar("T")
#: simulated seconds to let every timer (ring timeout, wrap-up, retry delays, bridge retry) run out
LONG_AFTER = 10_000.0


class Run:
    """A router under test and what its commands said: the records written per stay of a channel (a channel that
    parks again after its stay ended starts a new stay), the callers parked."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.now = 0.0
        self.records: Counter[tuple[str, int]] = Counter()
        self.parked: set[str] = set()
        self.entered: set[tuple[str, int]] = set()

    def handle(self, event: Event) -> None:
        if isinstance(event, CallParked):
            self.parked.add(event.uuid)
        commands: list[Command] = self.router.handle(event, self.now)
        self.records.update((c.record.uuid, c.record.stay) for c in commands if isinstance(c, RecordCall))
        self.entered.update((call.uuid, call.stay) for call in self.router.calls.values())

    def channels(self) -> list[str]:
        """The callers and agent legs the router tracks."""
        calls = self.router.calls.values()
        agent_legs = [call.agent_leg for call in calls if call.agent_leg]
        return [*self.router.calls, *(leg for call in calls for leg in call.offers), *agent_legs]

    def check(self) -> None:
        """The invariants that hold after every event."""
        legs = [leg for call in self.router.calls.values() for leg in call.offers]
        assert len(legs) == len(set(legs)), "an agent leg offers two calls"
        for call in self.router.calls.values():
            assert isinstance(call.state, CallState)
            assert self.records[call.uuid, call.stay] == 0, f"{call.uuid} is recorded and still {call.state}"
            for leg, offer in call.offers.items():
                assert offer.call_uuid == call.uuid and leg in self.router.agents[offer.agent_id].ringing
        for someone in self.router.agents.values():
            assert len(someone.ringing) <= someone.config.max_offers, (someone.id, someone.ringing)
        for call in self.router.calls.values():
            if call.state is CallState.WAITING:
                *_, now_decided = self.router.explain(call.uuid, self.now)
                assert not now_decided["chosen"], f"{call.uuid} waits while {now_decided['chosen']} could take it"
        assert max(self.records.values(), default=0) <= 1, self.records
        assert {uuid for uuid, _ in self.records} <= self.parked, "a record for a call that never entered"


def next_event(data: st.DataObject, run: Run, step: int) -> Event:
    """Any event FreeSWITCH, an operator or the daemon could send next, about channels the router knows or not."""
    channels = st.sampled_from([*run.channels(), f"caller-{step - 3}", "stranger"])
    some = st.frozensets(channels, max_size=4)

    def draw(strategy: st.SearchStrategy[T]) -> T:
        return data.draw(strategy)

    kind = draw(st.sampled_from(EVENT_KINDS))
    if kind is CallParked:
        uuid = draw(st.just(f"caller-{step}") | channels)
        return CallParked(node=NODE, uuid=uuid, answered=draw(st.booleans()), variables={"fsrouter_queue": "support"})
    if kind in (ChannelAnswered, OriginateSucceeded):
        return (
            ChannelAnswered(node=NODE, uuid=draw(channels))
            if kind is ChannelAnswered
            else (OriginateSucceeded(node=NODE, leg_uuid=draw(channels)))
        )
    if kind is ChannelBridged:
        return ChannelBridged(node=NODE, uuid=draw(channels), other_uuid=draw(channels))
    if kind is ChannelHungUp:
        return ChannelHungUp(
            node=NODE, uuid=draw(channels), cause=draw(st.sampled_from(["NORMAL_CLEARING", "NO_ANSWER"]))
        )
    if kind is OriginateFailed:
        cause = draw(st.sampled_from(["USER_BUSY", "NO_ANSWER", "CALL_REJECTED", "ORIGINATOR_CANCEL"]))
        return OriginateFailed(node=NODE, leg_uuid=draw(channels), cause=cause)
    if kind is CommandFailed:
        command = draw(st.sampled_from(["answer", "bridge", "originate"]))
        return CommandFailed(node=NODE, command=command, uuid=draw(channels), reason="-ERR")  # type: ignore[arg-type]
    if kind is AgentControl:
        action = draw(st.sampled_from(["login", "logout", "break", "ready"]))
        return AgentControl(agent_id=draw(st.sampled_from(AGENTS)), action=action)  # type: ignore[arg-type]
    if kind is AgentRegistration:
        return AgentRegistration(node=NODE, user=draw(st.sampled_from(AGENTS)), registered=draw(st.booleans()))
    if kind is NodeDown:
        return NodeDown(node=NODE)
    if kind is NodeUp:
        live = draw(some)
        return NodeUp(
            node=NODE,
            core_uuid=draw(st.sampled_from(["core-1", "core-2"])),
            live_uuids=live,
            answered_uuids=live & draw(some),
        )
    if kind is ChannelsAudited:
        live = draw(some)
        return ChannelsAudited(
            node=NODE,
            taken_at=run.now - draw(st.sampled_from([0.0, 0.5, 1.0])),
            live_uuids=live,
            agent_legs=draw(some),
            answered_uuids=live & draw(some),
        )
    return Tick()


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    strategy=st.sampled_from(["longest-idle", "ring-all"]),
    max_offers=st.tuples(*(st.integers(1, 3) for _ in AGENTS)),
    steps=st.integers(1, 60),
)
def test_any_event_sequence_keeps_one_state_per_call_offers_within_limits_and_one_record_per_call(
    data: st.DataObject, strategy: str, max_offers: tuple[int, ...], steps: int
) -> None:
    support = QueueConfig(name="support", strategy=strategy, moh="", ring_timeout=2.0)
    agents = tuple(agent(name, max_offers=limit) for name, limit in zip(AGENTS, max_offers, strict=True))
    rules = Rules(queues={"support": support}, agents=agents, default_queue="support")
    legs = itertools.count(1)
    run = Run(Router(rules, now=0.0, new_id=lambda: f"leg-{next(legs)}"))
    run.handle(NodeUp(node=NODE, core_uuid="core-1"))
    for step in range(steps):
        run.now += data.draw(st.sampled_from([0.0, 0.5, 3.0]), label="seconds")
        run.handle(next_event(data, run, step))
        run.check()

    # Every channel hangs up and every timer runs out: each call that entered has ended, with one record.
    for channel in run.channels():
        run.handle(ChannelHungUp(node=NODE, uuid=channel))
    run.now += LONG_AFTER
    run.handle(Tick())
    run.check()
    assert not run.router.calls
    assert set(run.records) == run.entered
