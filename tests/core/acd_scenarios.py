"""Building blocks for the ACD scenario tests (strategies, ordering, escalation, explain): a router over one
or more queues, events with short names, and readers that say which agents were rung."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from fsrouter.core.commands import Command, Kill, Originate, RecordCall, Transfer
from fsrouter.core.events import AgentControl, CallParked, ChannelAnswered, ChannelBridged, ChannelHungUp
from fsrouter.core.routing import Router
from fsrouter.core.rules import AgentConfig, QueueConfig, Route, Rules

NODE = "fs1"


def agent(name: str, *, queues: Sequence[str] = ("support",), **settings: object) -> AgentConfig:
    """``agent("a")`` is agent ``a`` ringing ``user/a`` in queue support."""
    return AgentConfig(id=name, endpoint=f"user/{name}", queues=tuple(queues), **settings)  # type: ignore[arg-type]


def router_for(
    *agents: AgentConfig,
    strategy: str = "longest-idle",
    others: Sequence[QueueConfig] = (),
    routes: Sequence[Route] = (),
    random: Callable[[], float] | None = None,
    emit_traces: bool = False,
    now: float = 0.0,
    **support: object,
) -> Router:
    """A router whose queue ``support`` uses ``strategy`` and ``support`` settings, plus ``others`` queues."""
    queues = [QueueConfig(name="support", strategy=strategy, moh="", **support), *others]  # type: ignore[arg-type]
    rules = Rules(
        queues={queue.name: queue for queue in queues}, agents=agents, routes=tuple(routes), default_queue="support"
    )
    legs = itertools.count(1)
    return Router(rules, now=now, new_id=lambda: f"leg-{next(legs)}", random=random, emit_traces=emit_traces)


def park(router: Router, uuid: str, now: float, queue: str = "support", **variables: str) -> list[Command]:
    """A caller (already answered by the dialplan) parked for ``queue``."""
    event = CallParked(node=NODE, uuid=uuid, answered=True, variables={"fsrouter_queue": queue, **variables})
    return router.handle(event, now)


def rung(commands: Sequence[Command]) -> list[str]:
    """The agents the commands ring, in order."""
    return [c.variables["fsrouter_agent"] for c in commands if isinstance(c, Originate)]


def rung_for(commands: Sequence[Command]) -> list[tuple[str, str]]:
    """(call, agent) for every agent the commands ring."""
    return [(c.call_uuid, c.variables["fsrouter_agent"]) for c in commands if isinstance(c, Originate)]


def outcomes(commands: Sequence[Command]) -> list[tuple[str, str]]:
    return [(c.record.uuid, c.record.outcome) for c in commands if isinstance(c, RecordCall)]


def killed(commands: Sequence[Command]) -> list[str]:
    return [c.uuid for c in commands if isinstance(c, Kill)]


def transfers(commands: Sequence[Command]) -> list[tuple[str, str]]:
    return [(c.uuid, c.destination) for c in commands if isinstance(c, Transfer)]


def leg_of(router: Router, agent_id: str) -> str:
    """The leg currently ringing ``agent_id`` (exactly one)."""
    (leg,) = router.agents[agent_id].ringing
    return leg


def talk(router: Router, call: str, agent_id: str, start: float, end: float) -> list[Command]:
    """``agent_id``, ringing for ``call``, answers at ``start``; the caller hangs up at ``end``."""
    leg = leg_of(router, agent_id)
    router.handle(ChannelAnswered(node=NODE, uuid=leg), start)
    router.handle(ChannelBridged(node=NODE, uuid=call, other_uuid=leg), start)
    return router.handle(ChannelHungUp(node=NODE, uuid=call), end)


def control(router: Router, agent_id: str, action: str, now: float) -> list[Command]:
    return router.handle(AgentControl(agent_id=agent_id, action=action), now)


def state(router: Router, agent_id: str) -> str:
    return router.agents[agent_id].state.value

