"""Route conditions: small predicates over one call that compose with ``all`` / ``any`` / ``not``.

Each condition is a frozen value with a ``matches(facts)`` method. The loader resolves every name at load time
(a ``vip: gold`` condition holds the ``VipList`` itself, ``open: office`` holds the ``Calendar``), so matching
never looks anything up and cannot fail at call time. Nesting depth is bounded by the loader.

    >>> rule = AllOf((RegionIs(frozenset({"ile-de-france"})), Not(NumberTypeIs(frozenset({"mobile"})))))
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Literal, Protocol

from fsrouter.core.calendars import Calendar, TimeRange, zone
from fsrouter.core.geo import NumberInfo

#: The channel variable the dialplan's IVR menu stores the caller's choice in (``ivr:`` conditions read it).
IVR_VARIABLE = "fsrouter_ivr"


def _no_variables() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class CallInfo:
    """What the rules may look at: the numbers and the channel variables (no ``variable_`` prefix)."""

    caller_number: str
    destination: str
    variables: Mapping[str, str] = field(default_factory=_no_variables)


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """One call being classified, with its number already described and the time it is classified at."""

    call: CallInfo
    number: NumberInfo
    now: float


class Condition(Protocol):
    def matches(self, facts: Facts) -> bool: ...


@dataclass(frozen=True, slots=True)
class NumberPattern:
    """``1000`` (exact), ``33*`` (prefix) or ``/^0[67]/`` (regular expression, searched)."""

    text: str
    regex: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, text: str) -> NumberPattern:
        """ValueError for an invalid regular expression or an empty pattern."""
        if not text:
            raise ValueError("empty number pattern")
        if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
            try:
                return cls(text, re.compile(text[1:-1]))
            except re.error as exc:
                raise ValueError(f"bad regular expression {text}: {exc}") from exc
        return cls(text)

    def matches(self, number: str) -> bool:
        if self.regex is not None:
            return self.regex.search(number) is not None
        if self.text.endswith("*"):
            return number.startswith(self.text[:-1])
        return number == self.text


def any_pattern_matches(patterns: tuple[NumberPattern, ...], *numbers: str) -> bool:
    return any(pattern.matches(number) for pattern in patterns for number in numbers if number)


@dataclass(frozen=True, slots=True, kw_only=True)
class VipList:
    """Numbers that get ``priority``; a caller matches by the number as presented or by its E.164 form."""

    name: str
    patterns: tuple[NumberPattern, ...]
    priority: int = 10
    line: int = 0

    def contains(self, facts: Facts) -> bool:
        return any_pattern_matches(self.patterns, facts.call.caller_number, facts.number.e164)


@dataclass(frozen=True, slots=True)
class AllOf:
    conditions: tuple[Condition, ...]

    def matches(self, facts: Facts) -> bool:
        return all(condition.matches(facts) for condition in self.conditions)


@dataclass(frozen=True, slots=True)
class AnyOf:
    conditions: tuple[Condition, ...]

    def matches(self, facts: Facts) -> bool:
        return any(condition.matches(facts) for condition in self.conditions)


@dataclass(frozen=True, slots=True)
class Not:
    condition: Condition

    def matches(self, facts: Facts) -> bool:
        return not self.condition.matches(facts)


@dataclass(frozen=True, slots=True)
class NumberMatches:
    """``caller:`` (as presented or E.164) or ``destination:`` (as dialled) against a list of patterns."""

    subject: Literal["caller", "destination"]
    patterns: tuple[NumberPattern, ...]

    def matches(self, facts: Facts) -> bool:
        if self.subject == "caller":
            return any_pattern_matches(self.patterns, facts.call.caller_number, facts.number.e164)
        return any_pattern_matches(self.patterns, facts.call.destination)


@dataclass(frozen=True, slots=True)
class CountryIs:
    countries: frozenset[str]

    def matches(self, facts: Facts) -> bool:
        return facts.number.country in self.countries


@dataclass(frozen=True, slots=True)
class RegionIs:
    regions: frozenset[str]

    def matches(self, facts: Facts) -> bool:
        return facts.number.region in self.regions


@dataclass(frozen=True, slots=True)
class NumberTypeIs:
    number_types: frozenset[str]

    def matches(self, facts: Facts) -> bool:
        return facts.number.number_type in self.number_types


@dataclass(frozen=True, slots=True)
class VariableIs:
    """A channel variable equals one of ``values`` (exact, case-sensitive, as FreeSWITCH compares)."""

    name: str
    values: frozenset[str]

    def matches(self, facts: Facts) -> bool:
        return facts.call.variables.get(self.name) in self.values


@dataclass(frozen=True, slots=True)
class CalendarIs:
    """``open: office`` (want_open=True) or ``closed: office``."""

    calendar: Calendar
    want_open: bool

    def matches(self, facts: Facts) -> bool:
        return self.calendar.is_open(facts.now) == self.want_open


@dataclass(frozen=True, slots=True)
class TimeOfDay:
    """Local time (in the rules' ``timezone``) falls in one of the ranges."""

    ranges: tuple[TimeRange, ...]
    timezone: str

    def matches(self, facts: Facts) -> bool:
        local = datetime.fromtimestamp(facts.now, zone(self.timezone))
        return any(span.contains(local.hour * 60 + local.minute) for span in self.ranges)


@dataclass(frozen=True, slots=True)
class DayOfWeek:
    """Local weekday (0 = Monday, in the rules' ``timezone``) is one of ``days``."""

    days: frozenset[int]
    timezone: str

    def matches(self, facts: Facts) -> bool:
        return datetime.fromtimestamp(facts.now, zone(self.timezone)).weekday() in self.days


@dataclass(frozen=True, slots=True)
class InVipList:
    vip_list: VipList

    def matches(self, facts: Facts) -> bool:
        return self.vip_list.contains(facts)


ALWAYS_TRUE = AllOf(())
