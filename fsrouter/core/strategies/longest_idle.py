"""longest-idle: the agent who has waited longest since their last call (or login) goes first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from fsrouter.core.model import Agent, Call
from fsrouter.core.strategies.base import Demand, Stateless, best_first


class LongestIdle(Stateless):
    name: ClassVar[str] = "longest-idle"
    tie_break: ClassVar[str] = "agent id"

    def rank(self, candidates: Sequence[Agent], call: Call, demand: Demand, now: float) -> list[tuple[Agent, float]]:
        return best_first((agent, now - agent.idle_since) for agent in candidates)
