"""Route conditions, the number description they read, and calendars: pure predicates over one call."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from fsrouter.core.calendars import Calendar, TimeRange, parse_days, week_gaps
from fsrouter.core.conditions import (
    AllOf,
    AnyOf,
    CalendarIs,
    CallInfo,
    CountryIs,
    DayOfWeek,
    Facts,
    Not,
    NumberMatches,
    NumberPattern,
    NumberTypeIs,
    RegionIs,
    TimeOfDay,
    VariableIs,
)
from fsrouter.core.geo import DEFAULT_REGION_TABLES, describe, merge_region_tables

PARIS = "Europe/Paris"


def at(text: str, timezone: str = PARIS) -> float:
    """Epoch seconds of a local wall-clock time, e.g. at("2026-12-25 10:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(timezone)).timestamp()


def facts(caller: str = "0145678901", destination: str = "3000", now: float = 0.0, **variables: str) -> Facts:
    return Facts(
        call=CallInfo(caller_number=caller, destination=destination, variables=variables),
        number=describe(caller),
        now=now,
    )


# --- numbers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "country", "region", "number_type"),
    [
        ("0145678901", "FR", "ile-de-france", "fixed_line"),
        ("+33245678901", "FR", "north-west", "fixed_line"),
        ("0345678901", "FR", "north-east", "fixed_line"),
        ("0033472000002", "FR", "south-east", "fixed_line"),
        ("0556000000", "FR", "south-west", "fixed_line"),
        ("0612345678", "FR", "", "mobile"),
        ("0756123456", "FR", "", "mobile"),
        ("+442079460000", "GB", "", "fixed_line"),
        ("1000", "", "", "unknown"),
        ("anonymous", "", "", "unknown"),
    ],
)
def test_describe_reads_country_region_and_line_type_offline(
    number: str, country: str, region: str, number_type: str
) -> None:
    info = describe(number)

    assert (info.country, info.region, info.number_type) == (country, region, number_type)


def test_operator_prefixes_refine_the_shipped_regions_longest_prefix_first() -> None:
    tables = merge_region_tables(DEFAULT_REGION_TABLES, {"FR": {"0556": "bordeaux", "+3314": "paris-14"}})

    assert describe("0556000000", region_tables=tables).region == "bordeaux"
    assert describe("0557000000", region_tables=tables).region == "south-west"
    assert describe("+33145678901", region_tables=tables).region == "paris-14"


@pytest.mark.parametrize(
    ("pattern", "number", "expected"),
    [
        ("1000", "1000", True),
        ("1000", "10000", False),
        ("33*", "33145678901", True),
        ("33*", "0145678901", False),
        ("/^0[67]/", "0612345678", True),
        ("/^0[67]/", "0145678901", False),
    ],
)
def test_number_patterns_are_exact_prefix_or_regex(pattern: str, number: str, expected: bool) -> None:
    assert NumberPattern.parse(pattern).matches(number) is expected


def test_caller_patterns_also_match_the_e164_form_of_a_national_number() -> None:
    condition = NumberMatches("caller", (NumberPattern.parse("+3314*"),))

    assert condition.matches(facts(caller="0145678901"))
    assert not condition.matches(facts(caller="0245678901"))


def test_destination_is_matched_as_dialled() -> None:
    condition = NumberMatches("destination", (NumberPattern.parse("300*"),))

    assert condition.matches(facts(destination="3001"))
    assert not condition.matches(facts(destination="4000"))


def test_a_bad_regex_is_refused_at_parse_time() -> None:
    with pytest.raises(ValueError, match="bad regular expression"):
        NumberPattern.parse("/^(06/")


# --- composition ----------------------------------------------------------------------------------------


def test_all_any_and_not_compose() -> None:
    landline_paris = AllOf((RegionIs(frozenset({"ile-de-france"})), NumberTypeIs(frozenset({"fixed_line"}))))
    french_but_not_mobile = AllOf((CountryIs(frozenset({"FR"})), Not(NumberTypeIs(frozenset({"mobile"})))))
    english_or_paris = AnyOf((VariableIs("fsrouter_lang", frozenset({"en"})), landline_paris))

    assert landline_paris.matches(facts(caller="0145678901"))
    assert not landline_paris.matches(facts(caller="0612345678"))
    assert french_but_not_mobile.matches(facts(caller="0472000002"))
    assert not french_but_not_mobile.matches(facts(caller="0612345678"))
    assert english_or_paris.matches(facts(caller="0612345678", fsrouter_lang="en"))
    assert english_or_paris.matches(facts(caller="0145678901", fsrouter_lang="fr"))
    assert not english_or_paris.matches(facts(caller="0612345678", fsrouter_lang="fr"))


def test_empty_all_matches_everything_and_empty_any_nothing() -> None:
    assert AllOf(()).matches(facts())
    assert not AnyOf(()).matches(facts())


# --- time -----------------------------------------------------------------------------------------------


def test_time_of_day_and_days_are_read_in_the_rules_time_zone() -> None:
    mornings = TimeOfDay((TimeRange.parse("08:00-12:00"),), PARIS)
    weekdays = DayOfWeek(frozenset(parse_days("mon-fri")), PARIS)

    assert mornings.matches(facts(now=at("2026-07-06 08:00")))  # 06:00 UTC in summer
    assert not mornings.matches(facts(now=at("2026-07-06 12:00")))
    assert weekdays.matches(facts(now=at("2026-07-10 23:59")))  # Friday
    assert not weekdays.matches(facts(now=at("2026-07-10 23:59", "America/New_York")))  # Saturday in Paris


def office(**overrides: object) -> Calendar:
    fields: dict[str, object] = {
        "name": "office",
        "timezone": PARIS,
        "weekly": {day: (TimeRange.parse("08:00-18:00"),) for day in parse_days("mon-fri")},
        "holiday_country": "FR",
    }
    fields.update(overrides)
    return Calendar(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("local_time", "is_open"),
    [
        ("2026-03-02 07:59", False),  # Monday, just before opening
        ("2026-03-02 08:00", True),
        ("2026-03-02 17:59", True),
        ("2026-03-02 18:00", False),  # the end of a range is closed
        ("2026-03-07 10:00", False),  # Saturday: not in the hours
        ("2026-07-06 08:00", True),  # summer time: still 08:00 local
        ("2026-07-14 10:00", False),  # Bastille Day, a Tuesday
    ],
)
def test_business_hours_edges(local_time: str, is_open: bool) -> None:
    assert office().is_open(at(local_time)) is is_open


def test_a_holiday_closes_in_the_calendars_own_time_zone() -> None:
    around_the_clock = {day: (TimeRange(0, 24 * 60),) for day in range(7)}
    paris = office(weekly=around_the_clock)
    utc = office(weekly=around_the_clock, timezone="UTC")
    edge = at("2026-12-24 23:30", "UTC")  # already 00:30 on Christmas Day in Paris

    assert paris.is_open(at("2026-12-24 22:30", "UTC"))
    assert not paris.is_open(edge)
    assert utc.is_open(edge)
    assert not utc.is_open(at("2026-12-25 10:00", "UTC"))


def test_extra_closed_dates_close_all_day() -> None:
    calendar = office(closed_dates=frozenset({date(2026, 3, 2)}))

    assert not calendar.is_open(at("2026-03-02 10:00"))
    assert calendar.is_open(at("2026-03-03 10:00"))


def test_calendar_conditions_follow_open_and_closed() -> None:
    monday_ten = facts(now=at("2026-03-02 10:00"))
    sunday_ten = facts(now=at("2026-03-01 10:00"))

    assert CalendarIs(office(), want_open=True).matches(monday_ten)
    assert CalendarIs(office(), want_open=False).matches(sunday_ten)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("18:00-08:00", "ends before it starts"),
        ("8-18", "not a time of day"),
        ("08:00", "should look like"),
        ("08:00-24:30", "not a time"),
    ],
)
def test_bad_time_ranges_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimeRange.parse(text)


def test_day_spans_wrap_over_the_weekend() -> None:
    assert parse_days("fri-mon") == (4, 5, 6, 0)
    assert parse_days("sat") == (5,)


def test_week_gaps_lists_what_no_span_covers() -> None:
    required = [TimeRange(0, 100), TimeRange(200, 300)]

    assert week_gaps(required, [TimeRange(0, 40), TimeRange(60, 250)]) == [
        TimeRange(40, 60),
        TimeRange(250, 300),
    ]
    assert week_gaps(required, [TimeRange(0, 300)]) == []
