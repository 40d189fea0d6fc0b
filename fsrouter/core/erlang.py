"""Erlang B and Erlang C: how many agents a queue needs, and how long its callers will wait.

Theory of operation. Calls arrive at random (Poisson) at ``rate`` calls per second and each keeps an agent
busy for ``aht`` seconds on average, so the offered load is ``traffic = rate * aht`` Erlangs. With ``agents``
servers and an infinite queue (Erlang C, nobody abandons):

- Erlang B, the blocking probability of a loss system, comes from the recursion
  ``B(0) = 1, B(n) = A*B(n-1) / (n + A*B(n-1))``, which never forms ``A**N`` or ``N!`` and so stays exact for
  hundreds of agents where the textbook factorial form overflows.
- Erlang C, the probability that a caller has to wait, follows from it: ``C = N*B / (N - A*(1 - B))``.
- The share answered within ``T`` seconds is ``SL = 1 - C * exp(-(N - A) * T / aht)``.
- The average speed of answer is ``ASA = C * aht / (N - A)``.

With ``N <= A`` the queue grows without bound: everybody waits (``C = 1``), nobody is answered within any
``T`` (``SL = 0``) and the ASA is infinite. These are the model's answers, not errors.

The model ignores abandons (Erlang A would not), so it slightly overstates the agents needed: the safe side
for a staffing hint.
"""

from __future__ import annotations

import math

__all__ = [
    "average_speed_of_answer",
    "erlang_b",
    "erlang_c",
    "occupancy",
    "required_agents",
    "service_level",
]

#: a guard against a target no staffing can meet in floating point; no real queue needs more agents
MAX_AGENTS = 100_000


def _check(agents: int, traffic: float) -> None:
    if agents < 0:
        raise ValueError(f"agents must be >= 0, got {agents}")
    if traffic < 0 or not math.isfinite(traffic):
        raise ValueError(f"traffic must be a finite number of Erlangs >= 0, got {traffic}")


def erlang_b(agents: int, traffic: float) -> float:
    """Probability that a call finds all ``agents`` busy in a loss system offered ``traffic`` Erlangs.

    >>> round(erlang_b(2, 1.0), 4)
    0.2
    """
    _check(agents, traffic)
    blocking = 1.0
    for servers in range(1, agents + 1):
        blocking = traffic * blocking / (servers + traffic * blocking)
    return blocking


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a caller has to wait (Erlang C), with ``agents`` agents and ``traffic`` Erlangs.

    >>> round(erlang_c(11, 10.0), 3)
    0.682
    """
    _check(agents, traffic)
    if traffic == 0:
        return 0.0
    if agents <= traffic:
        return 1.0
    blocking = erlang_b(agents, traffic)
    return agents * blocking / (agents - traffic * (1 - blocking))


def service_level(agents: int, traffic: float, aht: float, threshold: float) -> float:
    """Share of callers answered within ``threshold`` seconds: ``1 - C * exp(-(N - A) * T / aht)``."""
    if aht <= 0:
        raise ValueError(f"aht must be > 0 seconds, got {aht}")
    waiting = erlang_c(agents, traffic)
    if waiting == 0:
        return 1.0
    if agents <= traffic:
        return 0.0
    return 1.0 - waiting * math.exp(-(agents - traffic) * threshold / aht)


def average_speed_of_answer(agents: int, traffic: float, aht: float) -> float:
    """Mean wait over all callers (0 for those answered at once): ``C * aht / (N - A)``, inf if ``N <= A``."""
    if aht <= 0:
        raise ValueError(f"aht must be > 0 seconds, got {aht}")
    waiting = erlang_c(agents, traffic)
    if waiting == 0:
        return 0.0
    if agents <= traffic:
        return math.inf
    return waiting * aht / (agents - traffic)


def occupancy(agents: int, traffic: float) -> float:
    """Share of the agents' time spent handling calls: ``A / N`` (1 when overloaded, 0 with no agents)."""
    _check(agents, traffic)
    if agents == 0:
        return 0.0
    return min(1.0, traffic / agents)


def required_agents(
    traffic: float, aht: float, threshold: float, target: float, *, max_occupancy: float | None = None
) -> int:
    """The smallest number of agents that answers ``target`` of the calls within ``threshold`` seconds.

    With ``max_occupancy`` the answer also keeps ``A / N`` at or below it (agents need breathing space even
    when the service level would allow fewer). No traffic needs no agents.

    >>> required_agents(10.0, aht=180.0, threshold=20.0, target=0.8)
    14
    """
    if not 0 <= target <= 1:
        raise ValueError(f"target must be a ratio between 0 and 1, got {target}")
    if max_occupancy is not None and not 0 < max_occupancy <= 1:
        raise ValueError(f"max_occupancy must be a ratio in (0, 1], got {max_occupancy}")
    _check(0, traffic)
    if traffic == 0:
        return 0
    agents = math.floor(traffic) + 1
    if max_occupancy is not None:
        agents = max(agents, math.ceil(traffic / max_occupancy))
    while service_level(agents, traffic, aht, threshold) < target:
        agents += 1
        if agents > MAX_AGENTS:
            raise ValueError(f"no staffing up to {MAX_AGENTS} agents meets a service level of {target}")
    return agents
