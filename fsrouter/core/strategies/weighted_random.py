"""weighted-random: a random agent, each with odds proportional to its ``weight`` in the rules file.

Each candidate draws ``u ** (1 / weight)`` with ``u`` uniform in [0, 1) (Efraimidis-Spirakis); sorting by
that key is a weighted random permutation, so the runner-ups are meaningful too. The draws come from the
router's seeded source (``demand.random``), so a replayed scenario makes the same choices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from fsrouter.core.model import Agent, Call
from fsrouter.core.strategies.base import Demand, Stateless, best_first


class WeightedRandom(Stateless):
    name: ClassVar[str] = "weighted-random"

    def rank(self, candidates: Sequence[Agent], call: Call, demand: Demand, now: float) -> list[tuple[Agent, float]]:
        return best_first((agent, demand.random() ** (1.0 / agent.config.weight)) for agent in candidates)
