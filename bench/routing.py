"""Routing decision cost: the per-queue member index against a naive scan of every agent.

Set-up: ``queues`` queues of ``agents_per_queue`` agents each, all on break, and 1,000 waiting callers,
10 of them in queue ``q000``. Two measures:

1. One decision for a caller of ``q000`` (filter the queue's agents with reasons, rank, build the explain
   trace) through ``Router.explain(uuid, now)``, with every agent of ``q000`` made available behind the
   router's back (so the caller stays waiting and each decision ranks 100 candidates), against the same
   work done by scanning every agent of the router, as the router did before the index. Same process,
   one after the other.
2. The event loop: one agent of ``q000`` is ready; its ringing leg hangs up (no fault), the agent is free
   again and the router re-offers a waiting call: one ``Router.handle`` per decision. Run with 1,000 and
   with 10,000 agents, same queue size and same number of waiting callers; a ratio near 1 means agents of
   other queues cost nothing.
3. Agents in the SAME queue (the curves the first two miss): one queue, 100 or 1,000 agents, 10 or 1,000
   callers waiting in it. µs per decision (``Router.explain`` as in 1.), and µs per event that concerns no call
   (a hang-up of an unknown channel) with every agent ready but its phone unregistered: no offer can be made,
   yet each event re-decides every waiting call. Growth factors per step are printed; the goal (issue 14) is
   about x1 per event as waiting callers grow, and at most linear per decision as agents grow.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from fsrouter.core.events import AgentControl, AgentRegistration, CallParked, ChannelHungUp
from fsrouter.core.explain import offer_trace
from fsrouter.core.lifecycle import AgentState
from fsrouter.core.model import Call
from fsrouter.core.routing import Router
from fsrouter.core.rules import AgentConfig, QueueConfig, Rules
from fsrouter.core.strategies import make_strategy
from fsrouter.core.strategies.eligibility import demand_for, exclusion

NODE = "bench"
WAITING_CALLS = 1000
CALLS_IN_PROBED_QUEUE = 10
PROBED = "q000"


def build(queues: int, agents_per_queue: int, strategy: str = "longest-idle", waiting: int = WAITING_CALLS) -> Router:
    """A router with every agent on break and ``waiting`` callers waiting (the first 10 in ``q000``)."""
    names = [f"q{index:03d}" for index in range(queues)]
    agents = tuple(
        AgentConfig(id=f"{queue}-a{index:03d}", endpoint=f"user/{queue}-{index}", queues=(queue,))
        for queue in names
        for index in range(agents_per_queue)
    )
    rules = Rules(queues={name: QueueConfig(name=name, strategy=strategy, moh="") for name in names}, agents=agents)
    legs = itertools.count()
    router = Router(rules, now=0.0, new_id=lambda: f"leg-{next(legs)}")
    for config in agents:
        router.handle(AgentControl(agent_id=config.id, action="break"), 0.0)
    others = itertools.cycle(names[1:] or names)
    for index in range(waiting):
        queue = PROBED if index < CALLS_IN_PROBED_QUEUE else next(others)
        variables = {"fsrouter_queue": queue}
        router.handle(CallParked(node=NODE, uuid=f"call-{index}", answered=True, variables=variables), 1.0)
    return router


def naive_decision(router: Router, call: Call, now: float) -> dict[str, object]:
    """The same decision and trace as the router's, but finding the queue's agents by scanning them all."""
    queue = router.rules.queues[call.queue]
    strategy = make_strategy(queue.strategy)
    members = sorted((a for a in router.agents.values() if call.queue in a.config.queues), key=lambda a: a.id)
    demand = demand_for(call, queue, members, now, lambda: 0.5)
    reasons = [(agent, exclusion(agent, call, demand, router.rules, now)) for agent in members]
    candidates = [agent for agent, reason in reasons if reason is None]
    excluded = [(agent, reason) for agent, reason in reasons if reason is not None]
    ranked = strategy.rank(candidates, call, demand, now)
    chosen = [agent for agent, _ in ranked[:1]]
    return offer_trace(call, demand, strategy, ranked, excluded, chosen, rules_version="1", now=now)


def rate(step: Callable[[], object], repeat: int) -> float:
    """Operations per second of ``step``: best of three rounds of ``repeat`` calls (least disturbed by others)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            step()
        best = min(best, time.perf_counter() - start)
    return repeat / best


def decision_rates(router: Router, repeat: int) -> tuple[float, float]:
    """(indexed, naive) decisions per second for one waiting caller of the probed queue."""
    for agent in router.agents.values():
        if PROBED in agent.config.queues:
            agent.enter(AgentState.AVAILABLE, 2.0)  # no event: nothing is dispatched, the caller keeps waiting
    call = router.calls["call-0"]
    indexed = rate(lambda: router.explain(call.uuid, now=10.0), repeat)
    naive = rate(lambda: naive_decision(router, call, 10.0), repeat)
    return indexed, naive


def event_loop_rate(router: Router, repeat: int) -> float:
    """Decisions per second when each event frees an agent whose offer the router immediately renews."""
    probe = router.agents[f"{PROBED}-a000"]
    router.handle(AgentControl(agent_id=probe.id, action="ready"), 2.0)
    clock = itertools.count(100)

    def cycle() -> None:
        (leg,) = probe.ringing
        router.handle(ChannelHungUp(node=NODE, uuid=leg, cause="ORIGINATOR_CANCEL"), float(next(clock)))

    return rate(cycle, repeat)


def unrelated_event_us(router: Router, repeat: int) -> float:
    """µs per event that concerns no call (a hang-up of a channel the router never saw), with every agent ready
    and its phone unregistered on the callers' node (no offer is possible)."""
    for agent in list(router.agents.values()):
        router.handle(AgentRegistration(node=NODE, user=agent.config.sip_user, registered=False), 2.0)
    for agent in list(router.agents.values()):
        router.handle(AgentControl(agent_id=agent.id, action="ready"), 3.0)
    clock = itertools.count(100)
    return 1e6 / rate(
        lambda: router.handle(ChannelHungUp(node=NODE, uuid="unknown", cause="NORMAL_CLEARING"), float(next(clock))),
        repeat,
    )


def same_queue_curves() -> None:
    """Section 3 of the module docstring."""
    print("agents in the SAME queue (one queue)")
    decisions: dict[tuple[int, int], float] = {}
    for agents in (100, 1000):
        for waiting in (10, 1000):
            indexed, _ = decision_rates(build(queues=1, agents_per_queue=agents, waiting=waiting), repeat=200)
            decisions[agents, waiting] = 1e6 / indexed
            print(f"  one decision, {agents:>5} agents, {waiting:>5} waiting : {decisions[agents, waiting]:10.1f} µs")
    for waiting in (10, 1000):
        growth = decisions[1000, waiting] / decisions[100, waiting]
        print(f"  decision growth 100 -> 1,000 agents ({waiting:>5} waiting): x{growth:.1f} (goal <= x10)")
    events: dict[int, float] = {}
    for waiting in (10, 1000):
        events[waiting] = unrelated_event_us(build(queues=1, agents_per_queue=100, waiting=waiting), repeat=20)
        print(f"  unrelated event, 100 agents unregistered, {waiting:>5} waiting : {events[waiting]:10.1f} µs")
    print(f"  event growth 10 -> 1,000 waiting                : x{events[1000] / events[10]:.1f} (goal ~ x1)")


def main() -> None:
    agents_per_queue = 100
    big = build(queues=100, agents_per_queue=agents_per_queue)
    small = build(queues=10, agents_per_queue=agents_per_queue)
    print(f"{len(big.agents)} agents in 100 queues of {agents_per_queue}, {len(big.calls)} callers waiting")

    indexed, naive = decision_rates(build(queues=100, agents_per_queue=agents_per_queue), repeat=2000)
    print(f"  one decision, per-queue index : {indexed:10.0f} decisions/s")
    print(f"  one decision, scan all agents : {naive:10.0f} decisions/s")
    print(f"  index / scan                  : {indexed / naive:10.1f}x")

    loop_big = event_loop_rate(big, repeat=2000)
    loop_small = event_loop_rate(small, repeat=2000)
    print(f"  event loop, {len(big.agents):>5} agents      : {loop_big:10.0f} decisions/s")
    print(f"  event loop, {len(small.agents):>5} agents      : {loop_small:10.0f} decisions/s")
    print(f"  cost ratio 10k / 1k agents    : {loop_small / loop_big:10.2f} (1.0 = other queues cost nothing)")
    same_queue_curves()


if __name__ == "__main__":
    main()
