"""The strategy registry: the YAML ``strategy:`` key selects a class from this table.

An unknown name is a load error (the rules loader checks against this table), never a silent fallback.
"""

from __future__ import annotations

from fsrouter.core.strategies.base import Demand, Strategy
from fsrouter.core.strategies.fewest_calls import FewestCalls
from fsrouter.core.strategies.fixed import Fixed
from fsrouter.core.strategies.least_occupied import LeastOccupied
from fsrouter.core.strategies.longest_idle import LongestIdle
from fsrouter.core.strategies.ring_all import RingAll
from fsrouter.core.strategies.round_robin import RoundRobin
from fsrouter.core.strategies.sequential import Sequential
from fsrouter.core.strategies.skills_weighted import SkillsWeighted
from fsrouter.core.strategies.weighted_random import WeightedRandom

STRATEGIES: dict[str, type[Strategy]] = {
    strategy.name: strategy
    for strategy in (
        RoundRobin,
        LongestIdle,
        LeastOccupied,
        FewestCalls,
        SkillsWeighted,
        RingAll,
        Sequential,
        WeightedRandom,
        Fixed,
    )
}


def make_strategy(name: str) -> Strategy:
    """A fresh strategy instance for one queue."""
    return STRATEGIES[name]()


__all__ = ["STRATEGIES", "Demand", "Strategy", "make_strategy"]
