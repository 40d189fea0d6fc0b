"""Call-centre KPIs over rolling windows: service level, ASA, AHT, abandon, overflow and no-answer rates, and
the Erlang C staffing hint that follows from them.

Theory of operation. ``KpiTracker`` is fed the router's store commands' records (calls, offers, agent states)
and answers questions for an explicit ``now``; it reads no clock. Each queue keeps a ring of time buckets
``resolution`` seconds wide covering the longest window, so memory is bounded by
``queues x longest window / resolution`` whatever the call rate.

Window semantics. A call counts in a window once its record is written (``ended_at``: after the caller hung
up, so its wait and talk are known) and for as long as its bucket overlaps the last ``W`` seconds: it is in
the window for at least ``W`` seconds and drops out at most ``resolution`` seconds later. A wrap-up counts
when it ends, an offer when it is resolved. Rates per second divide by ``W``, or by the time since the
tracker started while that is shorter, so a fresh daemon does not report a falsely quiet queue.

Definitions (``docs/kpi.md`` has the prose):

- offered = every call that reached the queue, whatever its outcome, except ``closed`` (closed hours: no
  agent was ever going to answer) and, only when the queue sets ``short_abandon_seconds``, abandons shorter
  than it.
- service level = answered within the ``service_level_seconds`` its queue had when it ended (wait <= T; kept in
  its record) / offered. Abandoned,
  timed-out, overflowed, rejected and failed calls are in the denominator.
- ASA = total wait of answered calls / answered.
- AHT = (talk + hold + wrap-up) / answered. Talk excludes hold (CHANNEL_HOLD/UNHOLD of either leg while
  connected); wrap-up is the time agents spend in ``wrap_up`` after a call of the queue.
- abandon rate = abandoned / offered; overflow rate = overflowed / offered.
- agent no-answer rate = offers the agent let ring out, refused or was busy for / offers presented
  (answered + those). Offers we withdrew ourselves or that never reached a registered phone are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType
from typing import Any

from fsrouter.core.causes import NO_ANSWER_ENDS, PRESENTED_ENDS, offer_end
from fsrouter.core.commands import CallRecord, OfferRecord, WrapUpRecord
from fsrouter.core.erlang import average_speed_of_answer, required_agents, service_level
from fsrouter.core.lifecycle import AgentState
from fsrouter.core.rules import QueueConfig

__all__ = [
    "BUSY_STATES",
    "DEFAULT_WINDOWS",
    "STAFFED_STATES",
    "KpiTracker",
    "Kpis",
    "Staffing",
    "WindowStats",
    "agent_occupancy",
    "call_kpis",
    "keep_thresholds",
    "is_agent_no_answer",
    "staffed_agents",
]

DEFAULT_WINDOWS: Mapping[str, float] = MappingProxyType({"15m": 900.0, "1h": 3600.0})

#: outcomes of calls that never waited for an agent
NOT_OFFERED_OUTCOMES = frozenset({"closed"})

#: agents able to take calls (Erlang's N); ``break`` and ``logged_out`` are not
STAFFED_STATES = tuple(
    state.value for state in (AgentState.AVAILABLE, AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP)
)
#: staffed agents busy with a call: ringing, talking or wrapping up
BUSY_STATES = tuple(state.value for state in (AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP))


def is_agent_no_answer(result: str) -> bool:
    """Whether an offer's result counts against the agent (K-03: presented but not picked up; ``core/causes.py``)."""
    return offer_end(result) in NO_ANSWER_ENDS


def was_presented(result: str) -> bool:
    """Whether an offer with this result reached the agent's phone and the agent could pick up (K-03's
    denominator): not withdrawn by fsrouter, not lost, not unregistered, not unsent (``core/causes.py``)."""
    return offer_end(result) in PRESENTED_ENDS


def staffed_agents(agents_by_state: Mapping[str, int]) -> int:
    """Agents able to take calls, from a per-state count (``QueueView.agents``)."""
    return sum(agents_by_state.get(state, 0) for state in STAFFED_STATES)


def agent_occupancy(agents_by_state: Mapping[str, int]) -> float | None:
    """Share of staffed agents busy right now (K-15 as a point-in-time ratio); None when nobody is staffed."""
    staffed = staffed_agents(agents_by_state)
    if staffed == 0:
        return None
    return sum(agents_by_state.get(state, 0) for state in BUSY_STATES) / staffed


@dataclass(slots=True)
class _Tally:
    """Counts and sums of one bucket (or of a whole window, once added up)."""

    offered: int = 0
    answered: int = 0
    answered_within_threshold: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    overflowed: int = 0
    answered_wait_seconds: float = 0.0
    talk_seconds: float = 0.0
    hold_seconds: float = 0.0
    wrapup_seconds: float = 0.0
    presented_offers: int = 0
    agent_no_answers: int = 0

    def add(self, other: _Tally) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def count_call(self, record: CallRecord, queue: QueueConfig) -> bool:
        """Count one finished call by ``docs/kpi.md``'s definitions, with the thresholds the record kept (else
        ``queue``'s); returns whether it was counted as answered (its wrap-up belongs to the queue's AHT)."""
        if record.outcome in NOT_OFFERED_OUTCOMES:
            return False
        short = queue.short_abandon_seconds if record.short_abandon_seconds is None else record.short_abandon_seconds
        if record.outcome == "abandoned" and record.wait_seconds < short:
            self.short_abandoned += 1
            return False
        self.offered += 1
        if record.outcome == "answered":
            threshold = (
                queue.service_level_seconds if record.service_level_seconds is None else record.service_level_seconds
            )
            self.answered += 1
            self.answered_wait_seconds += record.wait_seconds
            self.talk_seconds += record.talk_seconds
            self.hold_seconds += record.hold_seconds
            self.answered_within_threshold += record.wait_seconds <= threshold
            return True
        if record.outcome == "abandoned":
            self.abandoned += 1
        elif record.outcome == "overflowed":
            self.overflowed += 1
        return False

    def kpis(self) -> dict[str, Any]:
        """The fields of ``Kpis`` (``docs/kpi.md``'s formulas), a ratio or mean None when its denominator is 0."""
        handled_seconds = self.talk_seconds + self.hold_seconds + self.wrapup_seconds
        return {
            "offered": self.offered,
            "answered": self.answered,
            "answered_within_threshold": self.answered_within_threshold,
            "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned,
            "overflowed": self.overflowed,
            "presented_offers": self.presented_offers,
            "agent_no_answers": self.agent_no_answers,
            "service_level": _ratio(self.answered_within_threshold, self.offered),
            "asa": _ratio(self.answered_wait_seconds, self.answered),
            "aht": _ratio(handled_seconds, self.answered),
            "abandon_rate": _ratio(self.abandoned, self.offered),
            "overflow_rate": _ratio(self.overflowed, self.offered),
            "agent_no_answer_rate": _ratio(self.agent_no_answers, self.presented_offers),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Kpis:
    """KPIs of a set of calls (``docs/kpi.md``); a ratio (0 to 1) or mean (seconds) is None when its denominator
    is 0. ``offered``, ``abandoned``: without closed-hours calls and short abandons; ``short_abandoned``: the
    abandons left out by the queue's ``short_abandon_seconds``."""

    offered: int
    answered: int
    answered_within_threshold: int
    abandoned: int
    short_abandoned: int
    overflowed: int
    presented_offers: int
    agent_no_answers: int
    #: K-07: answered within T / offered
    service_level: float | None
    #: K-05: seconds of wait of answered calls / answered
    asa: float | None
    #: K-10: seconds of talk + hold + wrap-up / answered
    aht: float | None
    #: K-08: abandoned / offered
    abandon_rate: float | None
    #: K-13: overflowed / offered
    overflow_rate: float | None
    #: K-03: not picked up / presented offers
    agent_no_answer_rate: float | None

    def row(self) -> dict[str, float | int | None]:
        """The KPIs ``fsrouter report`` and ``fsrouter status --json`` show, under the same names in both."""
        return {
            "offered": self.offered,
            "short_abandoned": self.short_abandoned,
            "service_level": self.service_level,
            "asa_seconds": self.asa,
            "aht_seconds": self.aht,
            "abandon_rate": self.abandon_rate,
            "overflow_rate": self.overflow_rate,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowStats(Kpis):
    """One queue's KPIs over one window."""

    window: str
    seconds: float
    #: offered calls per second
    arrival_rate: float


def keep_thresholds(record: CallRecord, queue: QueueConfig | None) -> CallRecord:
    """``record`` with the service-level threshold and short-abandon threshold of its ``queue`` (None: a
    route-level call, in no queue), so that its KPIs never depend on the rules read later."""
    if queue is None:
        return record
    return replace(
        record, service_level_seconds=queue.service_level_seconds, short_abandon_seconds=queue.short_abandon_seconds
    )


def call_kpis(records: Iterable[CallRecord]) -> Kpis:
    """The KPIs of finished calls read back from the store (``fsrouter report``), counted exactly as
    ``KpiTracker`` counts them, with the thresholds each record kept and its own wrap-up time. Offers are not
    in call records: ``presented_offers``, ``agent_no_answers`` are 0.

    Example::

        call_kpis(store.calls(since=day_start, until=day_end, queue="support")).service_level   # e.g. 0.9
    """
    total = _Tally()
    for record in records:
        if total.count_call(record, QueueConfig(name=record.queue)):
            total.wrapup_seconds += record.wrapup_seconds
    return Kpis(**total.kpis())


@dataclass(frozen=True, slots=True, kw_only=True)
class Staffing:
    """What Erlang C says about a queue's recent load, for the staffing window."""

    #: offered load in Erlangs (arrival rate x AHT)
    traffic: float
    #: the fewest agents meeting the queue's service-level target
    required_agents: int
    #: expected ASA with the agents staffed now (inf when they cannot keep up)
    predicted_wait: float
    #: expected service level with the agents staffed now
    predicted_service_level: float


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


class KpiTracker:
    """Rolling-window KPIs per queue, fed records with their own timestamps.

    Usage::

        tracker = KpiTracker(start=now)
        tracker.configure(rules.queues)
        tracker.record_call(command.record)      # for each RecordCall the router returns
        tracker.window("support", "15m", now).service_level   # e.g. 0.9
    """

    def __init__(
        self,
        *,
        start: float,
        windows: Mapping[str, float] = DEFAULT_WINDOWS,
        resolution: float = 10.0,
        staffing_window: str = "",
        max_occupancy: float | None = None,
    ) -> None:
        if not windows:
            raise ValueError("at least one window is needed")
        if resolution <= 0 or any(seconds < resolution for seconds in windows.values()):
            raise ValueError("resolution must be > 0 and no longer than any window")
        if staffing_window and staffing_window not in windows:
            raise ValueError(f"staffing window {staffing_window!r} is not one of {sorted(windows)}")
        self.start = start
        self.windows: Mapping[str, float] = MappingProxyType(dict(windows))
        self.resolution = resolution
        self.staffing_window = staffing_window or next(iter(windows))
        self.max_occupancy = max_occupancy
        self._horizon = max(windows.values())
        self._config: dict[str, QueueConfig] = {}
        self._buckets: dict[str, dict[int, _Tally]] = {}

    # ------------------------------------------------------------------ input

    def configure(self, queues: Mapping[str, QueueConfig]) -> None:
        """Take the queues' thresholds and targets (after each rules load); history is kept."""
        self._config = dict(queues)

    def record_call(self, record: CallRecord) -> None:
        """Count a finished call in its queue, with the thresholds its record kept (``_Tally.count_call``)."""
        self._bucket(record.queue, record.ended_at).count_call(record, self._queue(record.queue))

    def record_offer(self, record: OfferRecord) -> None:
        """Count an offer presented to an agent and whether the agent picked up."""
        if not was_presented(record.result):
            return
        tally = self._bucket(record.queue, record.ended_at)
        tally.presented_offers += 1
        if is_agent_no_answer(record.result):
            tally.agent_no_answers += 1

    def record_wrapup(self, record: WrapUpRecord) -> None:
        """Count an agent's wrap-up in the queue of the call it followed, when it ended."""
        self._bucket(record.queue, record.ended_at).wrapup_seconds += record.seconds

    # ------------------------------------------------------------------ output

    @property
    def queues(self) -> tuple[str, ...]:
        """Configured queues first, then any other queue a record named."""
        return (*self._config, *sorted(set(self._buckets) - set(self._config)))

    def target(self, queue: str) -> float:
        """The queue's service-level target (a ratio)."""
        return self._queue(queue).service_level_target

    def window(self, queue: str, window: str, now: float) -> WindowStats:
        """The queue's KPIs over the last ``windows[window]`` seconds before ``now``."""
        seconds = self.windows[window]
        total = _Tally()
        for tally in self._in_window(queue, now - seconds):
            total.add(tally)
        observed = max(self.resolution, min(seconds, now - self.start))
        return WindowStats(window=window, seconds=seconds, arrival_rate=total.offered / observed, **total.kpis())

    def staffing(self, queue: str, now: float, staffed: int) -> Staffing | None:
        """Erlang C on the staffing window's arrival rate and AHT, against ``staffed`` agents.

        None while calls were offered but none answered yet: with no AHT there is no load to speak of.
        """
        stats = self.window(queue, self.staffing_window, now)
        if stats.offered == 0:
            return Staffing(traffic=0.0, required_agents=0, predicted_wait=0.0, predicted_service_level=1.0)
        if not stats.aht:
            return None
        config = self._queue(queue)
        traffic = stats.arrival_rate * stats.aht
        threshold = config.service_level_seconds
        return Staffing(
            traffic=traffic,
            required_agents=required_agents(
                traffic, stats.aht, threshold, config.service_level_target, max_occupancy=self.max_occupancy
            ),
            predicted_wait=average_speed_of_answer(staffed, traffic, stats.aht),
            predicted_service_level=service_level(staffed, traffic, stats.aht, threshold),
        )

    # ------------------------------------------------------------------ buckets

    def _queue(self, queue: str) -> QueueConfig:
        return self._config.get(queue) or QueueConfig(name=queue)

    def _index(self, at: float) -> int:
        return math.floor(at / self.resolution)

    def _bucket(self, queue: str, at: float) -> _Tally:
        buckets = self._buckets.setdefault(queue, {})
        oldest_kept = self._index(at - self._horizon)
        for index in [index for index in buckets if index < oldest_kept]:
            del buckets[index]
        return buckets.setdefault(self._index(at), _Tally())

    def _in_window(self, queue: str, window_start: float) -> Iterable[_Tally]:
        """Buckets whose span reaches past ``window_start``."""
        first = self._index(window_start)
        return [tally for index, tally in self._buckets.get(queue, {}).items() if index >= first]
