"""fewest-calls: the agent who has answered the fewest calls since the daemon started goes first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from fsrouter.core.model import Agent, Call
from fsrouter.core.strategies.base import Demand, Stateless, best_first


class FewestCalls(Stateless):
    name: ClassVar[str] = "fewest-calls"

    def rank(self, candidates: Sequence[Agent], call: Call, demand: Demand, now: float) -> list[tuple[Agent, float]]:
        return best_first((agent, -float(agent.calls_answered)) for agent in candidates)
