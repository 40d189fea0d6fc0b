"""``Rules.classify(call, now)``: where a new caller goes and why, with explicit times (no wall clock)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fsrouter.config.rules_loader import check_file, parse_rules
from fsrouter.core.rules import CallInfo, RouteDecision, Rules

ROOT = Path(__file__).parents[2]

RULES = parse_rules(
    """
version: 1
timezone: Europe/Paris
default_queue: support
calendars:
  office:
    timezone: Europe/Paris
    hours: {mon-fri: "08:00-18:00"}
    holidays: {country: FR}
vip:
  gold:
    priority: 20
    numbers: ["+33612000003"]
queues:
  support: {calendar: office, closed_message: ivr/closed.wav}
  paris: {}
  south-east: {}
  france: {}
  english: {}
  sales: {}
agents:
  - id: agent-1000
    endpoint: user/1000
    queues: [support, paris, south-east, france, english, sales]
routes:
  - name: blocked
    when: {caller: "0999*"}
    reject: true
  - name: voicemail line
    when: {destination: "4000"}
    transfer: "4000"
  - name: announcement line
    when: {destination: "4001"}
    closed: ivr/holiday.wav
  - name: english outside paris
    when:
      all:
        - any:
            - variable: {fsrouter_lang: en}
            - ivr: "9"
        - not: {region: ile-de-france}
    queue: english
    skills: {english: 3}
  - name: paris landlines
    when: {region: ile-de-france, number_type: fixed_line}
    queue: paris
  - name: south-east
    when: {region: south-east}
    queue: south-east
    priority: 5
  - name: sales spill
    when: {destination: "3009"}
    overflow: sales
  - name: rest of france
    when: {country: FR, destination: "3000"}
    queue: france
""",
    path="test-rules.yaml",
)


def at(text: str, timezone: str = "Europe/Paris") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(timezone)).timestamp()


MONDAY_TEN = at("2026-03-02 10:00")


def classify(
    caller: str = "0145678901",
    destination: str = "3000",
    now: float = MONDAY_TEN,
    rules: Rules = RULES,
    **variables: str,
) -> RouteDecision:
    return rules.classify(CallInfo(caller_number=caller, destination=destination, variables=variables), now)


def test_a_paris_landline_goes_to_the_paris_queue() -> None:
    decision = classify(caller="0145678901")

    assert (decision.action, decision.queue) == ("queue", "paris")
    assert decision.rule.startswith("routes[4] 'paris landlines' (line ")


def test_a_04_number_goes_to_south_east_with_the_route_priority() -> None:
    decision = classify(caller="+33472000002")

    assert (decision.action, decision.queue, decision.priority) == ("queue", "south-east", 5)


def test_a_mobile_has_no_region_and_falls_back_to_the_country_rule() -> None:
    assert classify(caller="0756123456").queue == "france"


def test_a_vip_caller_gets_the_list_priority_wherever_it_is_routed() -> None:
    decision = classify(caller="0612000003")  # the E.164 form is on the list

    assert (decision.queue, decision.priority) == ("france", 20)


def test_priority_is_the_highest_of_route_dialplan_and_vip() -> None:
    assert classify(caller="+33472000002", fsrouter_priority="3").priority == 5
    assert classify(caller="+33472000002", fsrouter_priority="8").priority == 8
    assert classify(caller="+33472000002", fsrouter_priority="high").priority == 5


def test_any_all_not_composition_picks_english_speakers_outside_paris() -> None:
    assert classify(caller="0472000002", fsrouter_lang="en").queue == "english"
    assert classify(caller="0472000002", fsrouter_ivr="9").queue == "english"
    assert classify(caller="0145678901", fsrouter_lang="en").queue == "paris"
    assert classify(caller="0472000002", fsrouter_lang="fr").queue == "south-east"


def test_route_skills_and_dialplan_skills_are_merged() -> None:
    decision = classify(caller="0472000002", fsrouter_lang="en", fsrouter_skills="english:5,billing, bad:x")

    assert dict(decision.skills) == {"english": 5, "billing": 1}


def test_other_actions_reject_transfer_and_closed() -> None:
    assert classify(caller="0999000000").action == "reject"
    assert (classify(destination="4000").action, classify(destination="4000").destination) == (
        "transfer",
        "4000",
    )
    assert (classify(destination="4001").action, classify(destination="4001").announcement) == (
        "closed",
        "ivr/holiday.wav",
    )


def test_an_overflow_route_to_a_queue_is_queued_there() -> None:
    decision = classify(caller="anonymous", destination="3009")

    assert (decision.action, decision.queue) == ("queue", "sales")


def test_the_requested_queue_is_used_when_no_route_matches() -> None:
    decision = classify(caller="anonymous", destination="5003", fsrouter_queue="sales")

    assert (decision.queue, decision.rule, decision.unknown_queue) == ("sales", "fsrouter_queue 'sales'", "")


def test_routes_win_over_the_requested_queue() -> None:
    assert classify(caller="0145678901", fsrouter_queue="sales").queue == "paris"


def test_an_unknown_requested_queue_goes_to_the_default_queue_and_says_so() -> None:
    decision = classify(caller="anonymous", destination="5003", fsrouter_queue="foo")

    assert (decision.action, decision.queue, decision.unknown_queue) == ("queue", "support", "foo")
    assert decision.rule == "default queue; unknown queue 'foo' → default"


def test_an_unknown_requested_queue_still_goes_through_the_routes() -> None:
    decision = classify(caller="0145678901", fsrouter_queue="foo")

    assert (decision.queue, decision.unknown_queue) == ("paris", "foo")
    assert decision.rule.endswith("; unknown queue 'foo' → routes")


def test_fsrouter_true_with_no_matching_route_goes_to_the_default_queue() -> None:
    decision = classify(caller="anonymous", destination="5003", fsrouter="true")

    assert (decision.action, decision.queue, decision.rule) == ("queue", "support", "default queue")


@pytest.mark.parametrize(
    ("now", "action"),
    [
        (at("2026-12-24 17:59"), "queue"),
        (at("2026-12-24 18:00"), "closed"),  # end of the day's hours
        (at("2026-12-25 10:00"), "closed"),  # Christmas, a Friday
        (at("2026-12-28 07:59"), "closed"),
        (at("2026-12-28 08:00"), "queue"),
    ],
)
def test_a_queue_calendar_closes_the_queue_outside_its_hours(now: float, action: str) -> None:
    decision = classify(caller="anonymous", destination="5003", now=now)

    assert (decision.action, decision.queue) == (action, "support")
    if action == "closed":
        assert decision.announcement == "ivr/closed.wav"
        assert decision.rule == "default queue; queue 'support' closed (calendar 'office')"


def test_a_holiday_is_judged_in_the_calendars_time_zone_not_utc() -> None:
    rules = parse_rules(
        """
version: 1
calendars:
  paris: {timezone: Europe/Paris, hours: {mon-sun: "00:00-24:00"}, holidays: FR}
  london: {timezone: Europe/London, hours: {mon-sun: "00:00-24:00"}, holidays: GB}
queues:
  fr: {calendar: paris}
  uk: {calendar: london}
agents:
  - {id: a, endpoint: user/1000, queues: [fr, uk]}
"""
    )
    edge = at("2026-12-24 23:30", "UTC")  # 00:30 on the 25th in Paris, still the 24th in London

    assert classify(now=edge, rules=rules, fsrouter_queue="fr").action == "closed"
    assert classify(now=edge, rules=rules, fsrouter_queue="uk").action == "queue"
    assert classify(now=at("2026-12-24 22:30", "UTC"), rules=rules, fsrouter_queue="fr").action == "queue"


@pytest.mark.parametrize("path", ["routing-rules.yaml", "fsrouter/demo-rules.yaml"])
def test_the_shipped_rules_files_have_no_error(path: str) -> None:
    errors, _ = check_file(str(ROOT / path))

    assert [str(error) for error in errors] == []


def test_the_shipped_example_routes_a_key_account_and_an_out_of_hours_call() -> None:
    rules = parse_rules((ROOT / "routing-rules.yaml").read_text(encoding="utf-8"))

    vip = classify(caller="+33612345678", rules=rules)
    night = classify(caller="+33612345678", now=at("2026-03-02 22:00"), rules=rules)

    assert (vip.queue, vip.priority, vip.agent) == ("support", 20, "agent-1000")
    assert (night.action, night.destination) == ("transfer", "4000")


def test_the_demo_rules_declare_agents_1000_to_1009_in_support_and_sales() -> None:
    rules = parse_rules((ROOT / "fsrouter" / "demo-rules.yaml").read_text(encoding="utf-8"))
    users = {agent.sip_user: agent for agent in rules.agents}

    assert set(rules.queues) == {"support", "sales"}
    assert {str(user) for user in range(1000, 1010)} <= set(users)
    assert {"support", "sales"} == {queue for agent in rules.agents for queue in agent.queues}
    assert classify(caller="+33142999999", rules=rules, fsrouter_queue="sales").priority == 10
