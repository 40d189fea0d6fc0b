"""The contract every routing strategy implements, and the ``Demand`` it ranks agents against.

The router keeps one strategy instance per queue. For each decision it filters the queue's members with
``eligibility.exclusion`` (state, registration, retry delay, shift, tier, skills, occupancy cap, max offers)
and hands the survivors, sorted by id, to ``rank``. Strategies only rank; they never filter, except
``skills-weighted`` whose exclusions are the filter's skill rule, shared by every strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Protocol

from fsrouter.core.model import Agent, Call
from fsrouter.core.rules import QueueConfig


def _no_draw() -> float:
    """The random source of a Demand built without one: always the middle of [0, 1)."""
    return 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class Demand:
    """What one call asks of its queue at one moment, once the escalation steps reached so far are applied."""

    queue: QueueConfig
    #: skill -> minimum level (the call's levels, the queue's skills at level 1, lowered by ``widen`` steps)
    required: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    #: agents of tiers 1..max_tier may be offered the call
    max_tier: int = 1
    #: the dedicated agent (``fixed`` strategy); empty when none was asked for
    preferred_agent: str = ""
    #: until when (epoch seconds) only the dedicated agent may take the call: it is busy and the queue's
    #: ``owner_timeout`` has not run out (``eligibility.demand_for``); 0 when the call does not wait for it
    owner_only_until: float = 0.0
    #: uniform draws in [0, 1), seeded by the router so that a replay makes the same choices
    random: Callable[[], float] = _no_draw

    def weight(self, skill: str) -> int:
        """A required skill's weight: the queue's, or 1 for a skill only the call asks for."""
        return self.queue.skills.get(skill, 1)


class Strategy(Protocol):
    """Orders the eligible agents of a queue for one call, best first.

    ``candidates`` are already filtered and sorted by id; the strategy only ranks. It returns
    ``(agent, score)`` pairs so that ``fsrouter explain`` can show why the winner won: a higher score is
    better, and equal scores are ordered as ``tie_break`` says. Strategies read time only through ``now``
    and chance only through ``demand.random``. A strategy instance belongs to one queue and may keep state
    (round-robin's pointer), updated through ``offered``.
    """

    name: ClassVar[str]
    #: ring every ranked agent at once (first answer wins) instead of the best one only
    simultaneous: ClassVar[bool]
    #: how equal scores are ordered, as shown by ``fsrouter explain``
    tie_break: ClassVar[str]

    def rank(
        self, candidates: Sequence[Agent], call: Call, demand: Demand, now: float
    ) -> list[tuple[Agent, float]]: ...

    def offered(self, agent: Agent, now: float) -> None: ...


class Stateless:
    """Defaults for strategies that remember nothing between decisions and ring one agent at a time."""

    simultaneous: ClassVar[bool] = False
    tie_break: ClassVar[str] = "longest idle, then agent id"

    def offered(self, agent: Agent, now: float) -> None:
        """Nothing to remember: the ranking depends only on the agents' own state."""


def best_first(scored: Iterable[tuple[Agent, float]]) -> list[tuple[Agent, float]]:
    """Highest score first; equal scores go to the agent idle the longest, then by id (the input order)."""
    return sorted(scored, key=lambda pair: (-pair[1], pair[0].idle_since))
