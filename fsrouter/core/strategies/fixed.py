"""fixed: the caller's dedicated agent when available, else at once the longest-idle agent (domain.md R-05, R-18).

The dedicated agent comes from the channel variable ``fsrouter_agent`` or a route's ``agent:``. If that
agent is busy (talking, in wrap-up, ringing for another call), the caller waits for them up to the queue's
``owner_timeout`` seconds (``eligibility.demand_for``; 0, the default: not at all), then any other eligible
agent takes it. An owner logged out, on break or absent is not waited for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from fsrouter.core.model import Agent, Call
from fsrouter.core.strategies.base import Demand, Stateless, best_first


class Fixed(Stateless):
    name: ClassVar[str] = "fixed"

    def rank(self, candidates: Sequence[Agent], call: Call, demand: Demand, now: float) -> list[tuple[Agent, float]]:
        return best_first((agent, 1.0 if agent.id == demand.preferred_agent else 0.0) for agent in candidates)
