"""round-robin: agents take turns in a fixed order (by id), starting after the last one offered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from fsrouter.core.model import Agent, Call
from fsrouter.core.strategies.base import Demand


class RoundRobin:
    name: ClassVar[str] = "round-robin"
    simultaneous: ClassVar[bool] = False
    tie_break: ClassVar[str] = "none (scores are distinct)"

    def __init__(self) -> None:
        self._last: str = ""

    def rank(self, candidates: Sequence[Agent], call: Call, demand: Demand, now: float) -> list[tuple[Agent, float]]:
        after = [agent for agent in candidates if agent.id > self._last]
        rotation = after + [agent for agent in candidates if agent.id <= self._last]
        count = len(rotation)
        return [(agent, float(count - position)) for position, agent in enumerate(rotation)]

    def offered(self, agent: Agent, now: float) -> None:
        self._last = agent.id
