"""Memory: what the core keeps per agent and per waiting caller, and that a long run does not grow it.

A daemon runs for months, so everything the router remembers about finished calls must be bounded: ended uuids
(``RECENTLY_ENDED_LIMIT``), explain traces (``TraceLog``), occupancy history (one day) and the KPI buckets (the
longest window). Measured with ``tracemalloc`` on the pure core (``Router`` + ``KpiTracker``) under a simulated
clock, so the figures do not depend on the machine's load:

1. Cost per agent and per waiting caller: memory held after adding 10,000 agents, then 1,000 waiting callers.
2. Growth: memory held after ``WARM_CALLS`` complete calls (park, offer, answer, bridge, hang-up, wrap-up),
   then after twice as many. The baseline is the first checkpoint of the same run: a ratio near 1.0 means the
   state of finished calls is bounded; a leak shows as a ratio near 2.
"""

from __future__ import annotations

import itertools
import tracemalloc

from fsrouter.core.commands import Originate, RecordCall, RecordWrapUp
from fsrouter.core.events import AgentControl, CallParked, ChannelAnswered, ChannelBridged, ChannelHungUp, Tick
from fsrouter.core.kpi import KpiTracker
from fsrouter.core.routing import Router
from fsrouter.core.rules import AgentConfig, QueueConfig, Rules

NODE = "bench"
AGENTS = 20
#: simulated seconds between two calls: WARM_CALLS of them span more than the one day of occupancy history
CALL_SPACING = 8.0
WARM_CALLS = 12_000


def held_bytes() -> int:
    return tracemalloc.get_traced_memory()[0]


def make_router(agents: int, queues: int = 1) -> Router:
    names = [f"q{index:03d}" for index in range(queues)]
    configs = tuple(
        AgentConfig(id=f"a{index:05d}", endpoint=f"user/{index}", queues=(names[index % queues],))
        for index in range(agents)
    )
    rules = Rules(queues={name: QueueConfig(name=name, moh="", wrapup=2.0) for name in names}, agents=configs)
    legs = itertools.count()
    return Router(rules, now=0.0, new_id=lambda: f"leg-{next(legs)}", emit_traces=True)


def cost_per_object() -> tuple[float, float]:
    """(bytes per agent, bytes per waiting caller) held by a router with 100 queues."""
    start = held_bytes()
    router = make_router(agents=10_000, queues=100)
    for agent_id in list(router.agents):
        router.handle(AgentControl(agent_id=agent_id, action="break"), 0.0)
    with_agents = held_bytes()
    for index in range(1_000):
        queue = f"q{index % 100:03d}"
        event = CallParked(node=NODE, uuid=f"waiting-{index:04d}", answered=True, variables={"fsrouter_queue": queue})
        router.handle(event, 1.0)
    with_callers = held_bytes()
    return (with_agents - start) / 10_000, (with_callers - with_agents) / 1_000


class CallStream:
    """Complete calls one after the other through one router and one KPI tracker, on a simulated clock."""

    def __init__(self) -> None:
        self.router = make_router(agents=AGENTS)
        self.kpi = KpiTracker(start=0.0)
        self.kpi.configure(self.router.rules.queues)
        self.now = 10.0
        self.calls = 0

    def observe(self, commands: list[object]) -> list[object]:
        for command in commands:
            if isinstance(command, RecordCall):
                self.kpi.record_call(command.record)
            elif isinstance(command, RecordWrapUp):
                self.kpi.record_wrapup(command.record)
        return commands

    def step(self, now: float, event: object) -> list[object]:
        return self.observe(self.router.handle(event, now))  # type: ignore[arg-type]

    def run(self, count: int) -> None:
        for _ in range(count):
            caller = f"caller-{self.calls:07d}"
            self.calls += 1
            offered = self.step(
                self.now, CallParked(node=NODE, uuid=caller, answered=True, variables={"fsrouter_queue": "q000"})
            )
            [leg] = [command.leg_uuid for command in offered if isinstance(command, Originate)]
            self.step(self.now + 1, ChannelAnswered(node=NODE, uuid=leg))
            self.step(self.now + 1, ChannelBridged(node=NODE, uuid=caller, other_uuid=leg))
            self.step(self.now + 4, ChannelHungUp(node=NODE, uuid=caller))
            self.step(self.now + 4, ChannelHungUp(node=NODE, uuid=leg))
            self.step(self.now + 7, Tick())  # wrap-up over
            self.now += CALL_SPACING


def main() -> None:
    tracemalloc.start()
    per_agent, per_caller = cost_per_object()
    print(f"  per agent (10,000 in 100 queues)   : {per_agent:10.0f} bytes")
    print(f"  per waiting caller (1,000)         : {per_caller:10.0f} bytes")

    stream = CallStream()
    before = held_bytes()
    stream.run(WARM_CALLS)
    warm = held_bytes() - before
    stream.run(WARM_CALLS)
    twice = held_bytes() - before
    tracemalloc.stop()
    print(f"  held after {WARM_CALLS:>6} calls              : {warm / 1e6:10.2f} MB")
    print(f"  held after {2 * WARM_CALLS:>6} calls              : {twice / 1e6:10.2f} MB")
    print(f"  growth ratio (1.0 = bounded)       : {twice / warm:10.2f}")


if __name__ == "__main__":
    main()
