"""Who may be offered a call right now, and why the others may not (the reasons ``fsrouter explain`` shows).

Escalation in time is applied here, when the router builds a call's ``Demand``: as the wait in the current
queue grows past each step's ``after``, ``widen`` lowers the minimum skill level and ``add_tier`` opens
further tiers. Overflow steps move the call itself and are the router's business.

The ``fixed`` strategy's owner timeout is applied here too: while the dedicated agent is busy (talking, in
wrap-up, ringing for another call) and the caller has waited less than the queue's ``owner_timeout`` in it, no
other agent is eligible; an owner logged out, on break or absent is not waited for.

Tiers: tier 1 agents are offered calls first; tier N only once a step opened it, or when no agent of the
open tiers is logged in at all (waiting for nobody helps no one, like mod_callcenter's
``tier-rule-no-agent-no-wait``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from fsrouter.core.lifecycle import AgentState
from fsrouter.core.model import Agent, Call
from fsrouter.core.rules import QueueConfig, Rules
from fsrouter.core.strategies.base import Demand
from fsrouter.core.strategies.fixed import Fixed


def demand_for(
    call: Call, queue: QueueConfig, members: Sequence[Agent], now: float, random: Callable[[], float]
) -> Demand:
    """What ``call`` asks of ``queue`` at ``now``, given the escalation steps its wait has reached."""
    waited = now - call.queue_entered_at
    reached = [step for step in queue.escalation if step.after <= waited]
    widened = [step.min_level for step in reached if step.min_level]
    required = dict.fromkeys(queue.skills, 1) | dict(call.skills)
    if widened:
        floor = min(widened)
        required = {skill: min(level, floor) for skill, level in required.items()}
    max_tier = max((step.add_tier for step in reached), default=1)
    logged_in_tiers = [a.config.tier(queue.name) for a in members if a.state is not AgentState.LOGGED_OUT]
    if logged_in_tiers and min(logged_in_tiers) > max_tier:
        max_tier = min(logged_in_tiers)
    return Demand(
        queue=queue,
        required=MappingProxyType(required),
        max_tier=max_tier,
        preferred_agent=call.preferred_agent,
        owner_only_until=_owner_only_until(call, queue, members, now),
        random=random,
    )


#: the states of a dedicated agent that a caller of a ``fixed`` queue with an ``owner_timeout`` waits through
_OWNER_BUSY = (AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP)


def _owner_only_until(call: Call, queue: QueueConfig, members: Sequence[Agent], now: float) -> float:
    """Until when only ``call``'s dedicated agent may take it (0: any agent may, now)."""
    if queue.strategy != Fixed.name or queue.owner_timeout <= 0 or not call.preferred_agent:
        return 0.0
    until = call.queue_entered_at + queue.owner_timeout
    owner = next((agent for agent in members if agent.id == call.preferred_agent), None)
    if owner is None or owner.state not in _OWNER_BUSY or until <= now:
        return 0.0
    return until


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Why an agent cannot be offered a call now, and ``until`` when that ends if it is a matter of time (epoch
    seconds, as a number: the core has no clock or time zone to write it with; ``fsrouter explain`` does)."""

    reason: str
    until: float | None = None


def exclusion(agent: Agent, call: Call, demand: Demand, rules: Rules, now: float) -> Exclusion | None:
    """Why ``agent`` cannot be offered ``call`` now, or None when it can."""
    config = agent.config
    if demand.owner_only_until and agent.id != demand.preferred_agent:
        return Exclusion(f"waiting for the dedicated agent {demand.preferred_agent}", until=demand.owner_only_until)
    if agent.state is AgentState.RESERVED:
        if len(agent.ringing) >= config.max_offers:
            return Exclusion(f"max offers: {len(agent.ringing)} of {config.max_offers} ringing")
        if any(leg in call.offers for leg in agent.ringing):
            return Exclusion("already ringing for this call")
    elif agent.state is AgentState.WRAP_UP:
        return Exclusion("wrap-up", until=agent.wrapup_until)
    elif agent.state is not AgentState.AVAILABLE:
        return Exclusion(f"state {agent.state.value}")
    if agent.registered is False:
        return Exclusion("unregistered")
    if agent.ready_at > now:
        return Exclusion("retry delay", until=agent.ready_at)
    if not rules.on_shift(config, now):
        return Exclusion(f"off shift ({config.shift})")
    tier = config.tier(demand.queue.name)
    if tier > demand.max_tier:
        return Exclusion(f"tier {tier} not open yet (open: 1-{demand.max_tier})")
    for skill, level in demand.required.items():
        has = config.skills.get(skill, 0)
        if has == 0:
            return Exclusion(f"missing skill {skill}")
        if has < level:
            return Exclusion(f"skill {skill} level {has} below {level}")
    if config.occupancy_cap:
        occupancy = agent.occupancy(now, demand.queue.occupancy_window)
        if occupancy > config.occupancy_cap:
            return Exclusion(f"occupancy cap: {occupancy:.0%} above {config.occupancy_cap:.0%}")
    return None
