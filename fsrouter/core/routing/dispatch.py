"""Dispatch: after every event, waiting callers are offered, best queue score first (``core/ordering.py``: wait
plus a bounded priority boost), to the best eligible agent(s) of their queue; each decision leaves a trace for
``fsrouter explain`` (``core/explain.py``).

Only the queue's own members are looked at: ``strategies/eligibility.py`` filters them (state, registration,
retry delay, shift, tier, skills, occupancy cap), widened by the escalation steps the wait reached, then so does
registration on the caller's node (``presence.py``), and the queue's strategy ranks the rest. Only queues where
some member can take an offer by state are looked at, so the cost follows the queues that can move, and a call
is only decided when some member can also be rung on some node (``Book.offerable``: when every such member's
phone is unregistered, no decision could choose anyone). A call whose overflow step is due overflows instead of
being offered. Agents still free once every waiting call had its turn
join the ringing of simultaneous (ring-all) offers in progress: a waiting caller always comes first.
"""

from __future__ import annotations

import random as randomlib
from collections.abc import Callable

from fsrouter.core.commands import Command
from fsrouter.core.explain import Trace, offer_trace
from fsrouter.core.lifecycle import CallState
from fsrouter.core.model import Agent, Call
from fsrouter.core.ordering import order_key
from fsrouter.core.routing.book import Book
from fsrouter.core.routing.callers import Callers
from fsrouter.core.routing.offers import Offers
from fsrouter.core.routing.records import Records
from fsrouter.core.strategies.eligibility import Exclusion, demand_for, exclusion


class Dispatcher:
    """Decides who is offered which call, and has ``offers`` ring them."""

    def __init__(self, book: Book, records: Records, callers: Callers, offers: Offers) -> None:
        self._book = book
        self._records = records
        self._callers = callers
        self._offers = offers

    def dispatch(self, now: float) -> list[Command]:
        """Offer every call that can take an agent now, in order (module docstring)."""
        book = self._book
        if book.offering_stopped:
            return []
        routable = [c for c in book.calls.values() if book.routable.get(c.queue) and self._may_ring_more(c)]
        if not routable:
            return []
        routable.sort(key=lambda call: order_key(call, book.queue(call.queue), now))
        commands: list[Command] = []
        for call in routable:
            if call.state is not CallState.WAITING:
                continue
            escalated = self._callers.escalate(call, now)
            if escalated:
                commands += escalated
            elif book.offerable.get(call.queue):
                commands += self._offer(call, now)
        for call in routable:
            ringing_all = call.state is CallState.OFFERING and book.strategies[call.queue].simultaneous
            if ringing_all and call.uuid in book.calls and book.offerable.get(call.queue):
                commands += self._offer(call, now)
        return commands

    def _may_ring_more(self, call: Call) -> bool:
        """A waiting call, or a ring-all offer in progress (it can take more agents)."""
        return call.state is CallState.WAITING or (
            call.state is CallState.OFFERING and self._book.strategies[call.queue].simultaneous
        )

    def _offer(self, call: Call, now: float) -> list[Command]:
        chosen, trace = self.decide(call, now)
        if not chosen:
            return []
        commands = self._records.trace(call, trace)
        strategy = self._book.strategies[call.queue]
        for agent in chosen:
            commands += self._offers.ring(call, agent, strategy, now)
        return commands

    def decide(self, call: Call, now: float) -> tuple[list[Agent], Trace]:
        """Pick the agent(s) to ring for ``call`` among its queue's members, with the trace saying why.

        Weighted-random draws come from the router's ``random``, or from a source seeded with the call uuid and
        its offer count, so that a replay of the same events makes the same choices."""
        book = self._book
        queue = book.queue(call.queue)
        strategy = book.strategies[call.queue]
        members = book.members.get(call.queue, [])
        draws = book.options.random or _seeded_draws(f"{call.uuid}/{call.offers_made}")
        demand = demand_for(call, queue, members, now, draws)
        candidates: list[Agent] = []
        excluded: list[tuple[Agent, Exclusion]] = []
        for agent in members:
            reason = exclusion(agent, call, demand, book.rules, now) or _unreachable(agent, call.node)
            if reason is None:
                candidates.append(agent)
            else:
                excluded.append((agent, reason))
        ranked = strategy.rank(candidates, call, demand, now)
        chosen = [agent for agent, _ in (ranked if strategy.simultaneous else ranked[:1])]
        trace = offer_trace(
            call, demand, strategy, ranked, excluded, chosen, rules_version=book.rules.version, now=now
        )
        return chosen, trace


def _unreachable(agent: Agent, node: str) -> Exclusion | None:
    """Why ``agent``'s phone cannot be rung on ``node`` (registration per node, ``presence.py``), or None."""
    return None if agent.registered_on(node) else Exclusion(f"unregistered on {node}")


def _seeded_draws(seed: str) -> Callable[[], float]:
    """Uniform draws from a source seeded by ``seed``, created on the first draw (most decisions need none)."""
    source: list[randomlib.Random] = []

    def draw() -> float:
        if not source:
            source.append(randomlib.Random(seed))
        return source[0].random()

    return draw
