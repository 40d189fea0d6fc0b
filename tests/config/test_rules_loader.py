"""The rules loader: good files build the expected Rules, bad ones give every problem at its file:line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fsrouter.config.rules_loader import check_file, load_rules, parse_rules
from fsrouter.errors import RuleError

MINIMAL = """\
version: 1
queues:
  support:
    strategy: longest-idle
agents:
  - id: agent-1000
    endpoint: user/1000
    queues: [support]
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_minimal_file_of_the_design_is_valid(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)

    assert check_file(path) == ([], [])
    rules = load_rules(path, now=1_000.0)

    assert list(rules.queues) == ["support"]
    assert rules.queues["support"].strategy == "longest-idle"
    assert rules.default_queue == "support"
    (agent,) = rules.agents
    assert (agent.id, agent.endpoint, agent.queues, agent.status) == (
        "agent-1000",
        "user/1000",
        ("support",),
        "available",
    )
    assert agent.sip_user == "1000"
    assert (rules.source, rules.loaded_at) == (path, 1_000.0)


def test_load_rules_raises_rule_error_with_every_problem(tmp_path: Path) -> None:
    broken = MINIMAL.replace("longest-idle", "longest-idel").replace("version: 1", "version: 2")
    path = write(tmp_path, broken)

    with pytest.raises(RuleError) as caught:
        load_rules(path, now=0.0)

    assert [(problem.line, problem.path) for problem in caught.value.problems] == [(1, path), (4, path)]
    assert "unknown strategy 'longest-idel'" in str(caught.value)


def test_check_file_raises_os_error_for_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        check_file(str(tmp_path / "missing.yaml"))


def test_load_rules_turns_an_unreadable_file_into_a_rule_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="cannot read rules file"):
        load_rules(str(tmp_path / "missing.yaml"), now=0.0)


def test_problems_render_as_path_line_severity_message(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "calendars:\n  office:\n    hours: {mon-fri: '08:00-18:00'}\n")

    errors, warnings = check_file(path)

    assert errors == []
    assert [str(warning) for warning in warnings] == [f"{path}:10: warning: calendar 'office' is never used"]


def test_the_rules_version_is_the_start_of_the_files_sha256(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    expected = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]

    assert load_rules(path, now=0.0).version == expected == parse_rules(MINIMAL).version
    assert parse_rules(MINIMAL + "# a comment is an edit too\n").version != expected


def test_parse_rules_reads_text_without_a_file() -> None:
    assert list(parse_rules(MINIMAL).queues) == ["support"]


def test_every_setting_of_the_shipped_example_reaches_the_model() -> None:
    rules = load_rules(str(Path(__file__).parents[2] / "routing-rules.yaml"), now=0.0)

    support = rules.queues["support"]
    assert (support.max_waiting_calls, support.when_no_agents, support.overflow) == (30, "overflow", "sales")
    assert [(step.after, step.min_level, step.add_tier, step.overflow) for step in support.escalation] == [
        (30.0, 2, 0, ""),
        (60.0, 0, 2, ""),
        (180.0, 0, 0, "4000"),
    ]
    assert (support.vip_boost, support.max_boost, support.calendar) == (60.0, 600.0, "office")
    agents = {agent.id: agent for agent in rules.agents}
    assert agents["agent-1002"].queues == ("support", "sales")
    assert (agents["agent-1002"].tier("support"), agents["agent-1002"].tier("sales")) == (2, 1)
    assert (agents["agent-1001"].wrapup, agents["agent-1001"].occupancy_cap) == (15.0, 0.9)
    assert (agents["agent-1001"].weight, support.occupancy_window) == (1.0, 3600.0)
    assert rules.routes[1].agent == "agent-1000"
    assert agents["agent-1003"].status == "logged-out"
    assert rules.region_tables["FR"]["0556"] == "bordeaux"
    assert rules.vip_lists["key-accounts"].priority == 20
    assert rules.timezone == "Europe/Paris"


def test_routes_after_a_catch_all_are_reported_unreachable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL
        + """\
routes:
  - queue: support
  - when: {destination: "3000"}
    queue: support
""",
    )

    errors, warnings = check_file(path)

    assert errors == []
    assert [str(warning) for warning in warnings] == [
        f"{path}:11: warning: routes[1] (line 11) is never reached: routes[0] (line 10) matches every call"
    ]


def test_conditions_nested_too_deep_are_refused() -> None:
    deep = "{not: " * 10 + "{destination: '1'}" + "}" * 10

    with pytest.raises(RuleError, match="nested deeper than 8 levels"):
        parse_rules(MINIMAL + f"routes:\n  - when: {deep}\n    queue: support\n")


def test_an_agent_with_no_queue_shift_covering_the_queue_is_fine(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL
        + """\
    shift: mornings
  - id: agent-1001
    endpoint: user/1001
    queues: [support]
    shift: afternoons
calendars:
  mornings: {hours: {mon-sun: "00:00-12:00"}}
  afternoons: {hours: {mon-sun: "12:00-24:00"}}
""",
    )

    assert check_file(path) == ([], [])


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = MINIMAL.replace("strategy: longest-idle", "strategy: nope\n    wrapup: -1\n    colour: red")

    with pytest.raises(RuleError) as caught:
        parse_rules(text)

    assert [problem.line for problem in caught.value.problems] == [4, 5, 6]


def test_unquoted_phone_numbers_keep_their_plus_and_leading_zero() -> None:
    rules = parse_rules(MINIMAL + "vip:\n  gold:\n    numbers: [+33612345678, 0145670123]\n")

    assert [pattern.text for pattern in rules.vip_lists["gold"].patterns] == ["+33612345678", "0145670123"]


def test_a_bad_item_of_a_list_is_pointed_at_on_its_own_line() -> None:
    text = MINIMAL + "routes:\n  - when:\n      days:\n        - mon\n        - funday\n    queue: support\n"

    with pytest.raises(RuleError) as caught:
        parse_rules(text)

    assert [(problem.line, problem.message) for problem in caught.value.problems] == [
        (
            13,
            "routes[0] (line 10) when days: 'funday' is not a day (one of mon, tue, wed, thu, fri, sat, sun, "
            "or a span like mon-fri)",
        )
    ]


def test_a_file_that_is_not_utf8_is_an_error_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes((MINIMAL + "# Île-de-France\n").encode("latin-1"))

    errors, _ = check_file(str(path))

    assert [str(error) for error in errors] == [f"{path}:9: error: the file is not UTF-8 text (save it as UTF-8)"]
