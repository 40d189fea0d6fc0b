"""sequential: a hunt group; always start from the first agent in the order the rules file declares them.

Unlike round-robin the starting point never moves, so the first agents take most calls (domain.md R-06).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from fsrouter.core.model import Agent, Call
from fsrouter.core.strategies.base import Demand, Stateless


class Sequential(Stateless):
    name: ClassVar[str] = "sequential"
    tie_break: ClassVar[str] = "none (positions are distinct)"

    def rank(self, candidates: Sequence[Agent], call: Call, demand: Demand, now: float) -> list[tuple[Agent, float]]:
        return sorted(((agent, -float(agent.position)) for agent in candidates), key=lambda pair: -pair[1])
