"""ring-all: every eligible agent rings at once; the first to answer gets the call, the others are cancelled.

The ranking (longest idle first) only orders the originates. Good for short calls where a fast answer
matters more than fairness (domain.md R-01); it inflates offers per agent, which the offer records show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from fsrouter.core.model import Agent, Call
from fsrouter.core.strategies.base import Demand, Stateless, best_first


class RingAll(Stateless):
    name: ClassVar[str] = "ring-all"
    simultaneous: ClassVar[bool] = True
    tie_break: ClassVar[str] = "agent id (every candidate rings)"

    def rank(self, candidates: Sequence[Agent], call: Call, demand: Demand, now: float) -> list[tuple[Agent, float]]:
        return best_first((agent, now - agent.idle_since) for agent in candidates)
