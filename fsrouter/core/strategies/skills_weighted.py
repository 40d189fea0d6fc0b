"""skills-weighted: the best-qualified agent goes first.

score = sum over the required skills of (agent's level 1-5 × skill weight), the weight coming from the
queue's ``skills`` (1 for a skill only the call asks for). Agents missing a required skill, or below its
minimum level, never get here: the eligibility filter excludes them with the reason, for every strategy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from fsrouter.core.model import Agent, Call
from fsrouter.core.strategies.base import Demand, Stateless, best_first


class SkillsWeighted(Stateless):
    name: ClassVar[str] = "skills-weighted"

    def rank(self, candidates: Sequence[Agent], call: Call, demand: Demand, now: float) -> list[tuple[Agent, float]]:
        return best_first((agent, skill_score(agent, demand)) for agent in candidates)


def skill_score(agent: Agent, demand: Demand) -> float:
    """How well ``agent`` covers the demand's skills (0 when nothing is required)."""
    levels = agent.config.skills
    return float(sum(levels.get(skill, 0) * demand.weight(skill) for skill in demand.required))
