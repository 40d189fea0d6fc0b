"""Opening hours: weekly time ranges in a named time zone, minus public holidays and extra closed dates.

Time only comes in as ``now`` (epoch seconds); the calendar turns it into a local wall-clock time with
``zoneinfo`` so that "08:00" means 08:00 in Paris in winter and in summer alike. Public holidays come from
the ``holidays`` package, a pure-data library (the rules are computed, nothing is fetched), so this module
stays within the core's no-I/O rule.

    >>> office = Calendar(name="office", timezone="Europe/Paris",
    ...                   weekly={day: (TimeRange.parse("08:00-18:00"),) for day in range(5)})
    >>> office.is_open(1_767_607_200.0)  # Monday 2026-01-05 11:00 Paris
    True
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY


@dataclass(frozen=True, slots=True)
class TimeRange:
    """``[start, end)`` in minutes after local midnight; ``24:00`` is allowed as an end."""

    start: int
    end: int

    @classmethod
    def parse(cls, text: str) -> TimeRange:
        """``"08:00-18:00"`` -> TimeRange(480, 1080); ValueError with an operator-readable reason."""
        parts = text.split("-")
        if len(parts) != 2:
            raise ValueError(f"time range {text!r} should look like 08:00-18:00")
        start, end = (_parse_clock(part.strip()) for part in parts)
        if end <= start:
            raise ValueError(
                f"time range {text!r} ends before it starts; split a range that crosses midnight in two "
                "(22:00-24:00 and 00:00-06:00 on the next day)"
            )
        return cls(start, end)

    def contains(self, minute: int) -> bool:
        return self.start <= minute < self.end

    def overlaps(self, other: TimeRange) -> bool:
        return self.start < other.end and other.start < self.end

    def __str__(self) -> str:
        return f"{_format_clock(self.start)}-{_format_clock(self.end)}"


def _parse_clock(text: str) -> int:
    hours, sep, minutes = text.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and len(hours) <= 2):
        raise ValueError(f"{text!r} is not a time of day (HH:MM)")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or value > MINUTES_PER_DAY:
        raise ValueError(f"{text!r} is not a time of day (00:00 to 24:00)")
    return value


def _format_clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_days(text: str) -> tuple[int, ...]:
    """``"mon-fri"`` -> (0, 1, 2, 3, 4); ``"sat"`` -> (5,); ``"fri-mon"`` wraps over the week-end."""
    first, _, last = text.strip().lower().partition("-")
    for name in (first, last) if last else (first,):
        if name not in WEEKDAYS:
            raise ValueError(f"{name!r} is not a day (one of {', '.join(WEEKDAYS)}, or a span like mon-fri)")
    if not last:
        return (WEEKDAYS.index(first),)
    start, end = WEEKDAYS.index(first), WEEKDAYS.index(last)
    return tuple((start + offset) % 7 for offset in range((end - start) % 7 + 1))


def format_week_minute(minute: int) -> str:
    """Minute 540 of the week -> ``"mon 09:00"`` (the end of the week reads as the next Monday 00:00)."""
    minute %= MINUTES_PER_WEEK
    return f"{WEEKDAYS[minute // MINUTES_PER_DAY]} {_format_clock(minute % MINUTES_PER_DAY)}"


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``; ValueError (not a zoneinfo-specific error) when it does not exist."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)") from exc


def check_holiday_region(country: str, subdiv: str) -> None:
    """Raise ValueError when the ``holidays`` package has no calendar for this country/subdivision."""
    try:
        holidays.country_holidays(country, subdiv=subdiv or None, years=2000)
    except NotImplementedError as exc:
        raise ValueError(f"no public holidays known for {country!r}{f'/{subdiv}' if subdiv else ''}") from exc


@functools.lru_cache(maxsize=128)
def _public_holidays(country: str, subdiv: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, subdiv=subdiv or None, years=year))


def _empty_week() -> Mapping[int, tuple[TimeRange, ...]]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class Calendar:
    """Named opening hours; closed on public holidays of ``holiday_country`` and on ``closed_dates``."""

    name: str
    timezone: str = "UTC"
    #: weekday (0 = Monday) -> open ranges that day; a missing day is closed all day
    weekly: Mapping[int, tuple[TimeRange, ...]] = field(default_factory=_empty_week)
    holiday_country: str = ""
    holiday_subdiv: str = ""
    closed_dates: frozenset[date] = frozenset()
    line: int = 0

    def is_open(self, now: float) -> bool:
        """Whether the calendar is open at epoch second ``now``, read in the calendar's own time zone."""
        local = datetime.fromtimestamp(now, zone(self.timezone))
        if self.is_closed_day(local.date()):
            return False
        minute = local.hour * 60 + local.minute
        return any(span.contains(minute) for span in self.weekly.get(local.weekday(), ()))

    def is_closed_day(self, day: date) -> bool:
        """A public holiday or an extra closed date: closed all day whatever the weekly hours say."""
        if day in self.closed_dates:
            return True
        return bool(self.holiday_country) and day in _public_holidays(
            self.holiday_country, self.holiday_subdiv, day.year
        )

    def week_spans(self) -> list[TimeRange]:
        """The weekly hours as minutes since Monday 00:00 (holidays ignored): for coverage checks."""
        return [
            TimeRange(day * MINUTES_PER_DAY + span.start, day * MINUTES_PER_DAY + span.end)
            for day, spans in sorted(self.weekly.items())
            for span in spans
        ]


ALWAYS = [TimeRange(0, MINUTES_PER_WEEK)]


def week_gaps(required: Sequence[TimeRange], covered: Iterable[TimeRange]) -> list[TimeRange]:
    """The parts of ``required`` (week minutes) that no span of ``covered`` covers, in order."""
    gaps: list[TimeRange] = []
    cover = sorted(covered, key=lambda span: span.start)
    for need in sorted(required, key=lambda span: span.start):
        cursor = need.start
        for span in cover:
            if span.end <= cursor or span.start >= need.end:
                continue
            if span.start > cursor:
                gaps.append(TimeRange(cursor, span.start))
            cursor = max(cursor, span.end)
        if cursor < need.end:
            gaps.append(TimeRange(cursor, need.end))
    return gaps
