"""Why a call went where it went: one trace per routing decision, for ``fsrouter explain CALL_UUID``.

A trace is a plain JSON-able dict (it is stored as JSON by ``store.save_trace``). ``kind`` says what was
decided: ``offer`` (agents were chosen; ``Router.explain`` can also show a ``live`` one, computed when asked and
not kept, for a caller still waiting),
``overflow`` (the call moved to another queue, or left for an extension) and ``rejected`` (a new caller was
refused: queue full, or nobody logged in). An offer trace names the call, queue, rule and rules
version, the strategy, every candidate with its score, every agent of the queue that was left out with
the reason, the winner(s) and how ties were broken.

``TraceLog`` keeps the traces of the last ``max_calls`` calls in memory so that ``Router.explain`` answers
without the store; the store keeps them all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from fsrouter.core.model import Agent, Call
from fsrouter.core.strategies.base import Demand, Strategy
from fsrouter.core.strategies.eligibility import Exclusion

#: calls whose traces stay in memory
DEFAULT_MAX_CALLS = 1000
#: traces kept per call (a call that keeps failing to connect would otherwise grow without bound)
MAX_TRACES_PER_CALL = 50

Trace = dict[str, Any]


def offer_trace(
    call: Call,
    demand: Demand,
    strategy: Strategy,
    ranked: Sequence[tuple[Agent, float]],
    excluded: Sequence[tuple[Agent, Exclusion]],
    chosen: Sequence[Agent],
    *,
    rules_version: str,
    now: float,
) -> Trace:
    """The record of one offer decision (``chosen`` is empty when no agent could take the call)."""
    return {
        "kind": "offer",
        "at": now,
        "call": call.uuid,
        "queue": call.queue,
        "rule": call.rule,
        "rules_version": rules_version,
        "strategy": strategy.name,
        "waited": now - call.entered_at,
        "priority": call.priority,
        "required_skills": dict(demand.required),
        "open_tiers": demand.max_tier,
        "candidates": [{"agent": agent.id, "score": round(score, 6)} for agent, score in ranked],
        "excluded": [_excluded(agent, why) for agent, why in excluded],
        "chosen": [agent.id for agent in chosen],
        "tie_break": _tie_break(strategy, ranked, chosen),
    }


def _excluded(agent: Agent, why: Exclusion) -> dict[str, Any]:
    """``{"agent", "reason"}``, with ``until`` (epoch seconds) when the reason ends at a known time."""
    entry: dict[str, Any] = {"agent": agent.id, "reason": why.reason}
    if why.until is not None:
        entry["until"] = why.until
    return entry


def _tie_break(strategy: Strategy, ranked: Sequence[tuple[Agent, float]], chosen: Sequence[Agent]) -> str:
    if not chosen or strategy.simultaneous:
        return "none needed" if not strategy.simultaneous else strategy.tie_break
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return strategy.tie_break
    return "none needed (best score is unique)"


def treatment_trace(
    kind: str, call: Call, origin: str, target: str, reason: str, *, rules_version: str, now: float
) -> Trace:
    """The call left queue ``origin``: ``overflow`` to ``target`` (a queue, or an extension when it left
    fsrouter), or ``rejected`` (``target`` empty)."""
    return {
        "kind": kind,
        "at": now,
        "call": call.uuid,
        "queue": origin,
        "rule": call.rule,
        "rules_version": rules_version,
        "to": target,
        "reason": reason,
        "waited": now - call.entered_at,
    }


class TraceLog:
    """The traces of the most recently traced calls, oldest call forgotten first."""

    def __init__(self, max_calls: int = DEFAULT_MAX_CALLS) -> None:
        self._max_calls = max_calls
        self._traces: OrderedDict[str, list[Trace]] = OrderedDict()

    def add(self, call_uuid: str, trace: Trace) -> None:
        traces = self._traces.setdefault(call_uuid, [])
        self._traces.move_to_end(call_uuid)
        traces.append(trace)
        del traces[:-MAX_TRACES_PER_CALL]
        while len(self._traces) > self._max_calls:
            self._traces.popitem(last=False)

    def get(self, call_uuid: str) -> list[Trace]:
        return list(self._traces.get(call_uuid, ()))

    def __len__(self) -> int:
        return len(self._traces)
