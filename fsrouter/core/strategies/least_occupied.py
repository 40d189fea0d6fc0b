"""least-occupied: the agent with the lowest occupancy (talk + wrap-up over logged-in time) goes first.

The window is the queue's ``occupancy_window`` (default one hour), so a busy morning does not count against
an agent all day. This is the seeds' "least active agent" (domain.md R-08) measured as the K-15 ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from fsrouter.core.model import Agent, Call
from fsrouter.core.strategies.base import Demand, Stateless, best_first


class LeastOccupied(Stateless):
    name: ClassVar[str] = "least-occupied"

    def rank(self, candidates: Sequence[Agent], call: Call, demand: Demand, now: float) -> list[tuple[Agent, float]]:
        window = demand.queue.occupancy_window
        return best_first((agent, -agent.occupancy(now, window)) for agent in candidates)
