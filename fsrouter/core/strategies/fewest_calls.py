"""fewest-calls: the agent who answered the fewest calls during the queue's ``occupancy_window`` goes first.

A window (default one hour), not a count since the daemon started: a restart does not reset the balance, and
an agent who just logged in after a busy morning is not flooded until they "catch up" with the others."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from fsrouter.core.model import Agent, Call
from fsrouter.core.strategies.base import Demand, Stateless, best_first


class FewestCalls(Stateless):
    name: ClassVar[str] = "fewest-calls"

    def rank(self, candidates: Sequence[Agent], call: Call, demand: Demand, now: float) -> list[tuple[Agent, float]]:
        window = demand.queue.occupancy_window
        return best_first((agent, -float(agent.calls_taken(now, window))) for agent in candidates)
