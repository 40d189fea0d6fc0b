"""Nothing in a rules file crashes the reader, and nothing in it reaches FreeSWITCH misread (issue 11).

Impossible dates, numbers out of range, nesting too deep, a file too big and text FreeSWITCH would misread on
a command line are each one ``PATH:LINE: error`` of ``fsrouter check`` (exit 1) and a ``RuleError`` of
``load_rules``; random documents never make the reader raise anything else.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsrouter.cli import main
from fsrouter.config import rules_loader
from fsrouter.config.rules_loader import MAX_NESTING, MAX_RULES_BYTES, check_file, parse_rules
from fsrouter.errors import RuleError

BASE = """\
version: 1
queues:
  support:
    strategy: longest-idle
agents:
  - id: agent-1000
    endpoint: user/1000
    queues: [support]
"""

INJECTION = '"user/1001 &park()\\n\\napi fsctl shutdown"'


def with_queue_key(line: str) -> str:
    """BASE with ``line`` added to queue 'support' (at line 5)."""
    return BASE.replace("    strategy: longest-idle\n", f"    strategy: longest-idle\n    {line}\n")


def with_route(line: str) -> str:
    """BASE with one route whose action is ``line`` (the action at line 11)."""
    return BASE + f"routes:\n  - when: {{destination: '5000'}}\n    {line}\n"


CALENDAR = BASE.replace(
    "agents:",
    'calendars:\n  office:\n    hours: {mon-fri: "08:00-18:00"}\n    closed_dates: [2026-12-25, 2026-02-30]\nagents:',
).replace("    strategy: longest-idle\n", "    strategy: longest-idle\n    calendar: office\n", 1)

#: (file text, line of the error, fragment of its message)
BAD_FILES = {
    "impossible date": (CALENDAR, 9, "text ('2026-02-30') is not a date (YYYY-MM-DD): day is out of range for month"),
    "impossible date-time": (
        CALENDAR.replace("2026-02-30", "2026-02-30 10:00:00"),
        9,
        "is not a date",
    ),
    "huge integer": (with_queue_key("ring_timeout: " + "9" * 5000), 5, "a number of 5000 characters is out of range"),
    "huge negative integer": (with_queue_key("max_wait: -" + "9" * 50), 5, "out of range"),
    "integer above the largest number": (with_queue_key("max_wait: 10000000000"), 5, "between 0 and 1e+09"),
    "infinite number": (with_queue_key("ring_timeout: .inf"), 5, "ring_timeout should be between 0 and 1e+09"),
    "not a number": (with_queue_key("wrapup: .nan"), 5, "wrapup should be between 0 and 1e+09"),
    "huge escalation delay": (
        with_queue_key("escalation: [{after: 1e300, overflow: '5000'}]"),
        5,
        "after should be between 0 and 1e+09",
    ),
    "a tag no constructor can read": (with_queue_key("ring_timeout: !!int twenty"), 5, "cannot read this value"),
    "endpoint with an ESL command": (
        BASE.replace("endpoint: user/1000", f"endpoint: {INJECTION}"),
        7,
        "contains the control character U+000A",
    ),
    "endpoint with a NUL": (BASE.replace("endpoint: user/1000", 'endpoint: "user/1000\\0"'), 7, "U+0000"),
    "endpoint with a variable block": (
        BASE.replace("endpoint: user/1000", "endpoint: '{origination_uuid=x}user/1000'"),
        7,
        "channel-variable block",
    ),
    "endpoint ringing two legs": (BASE.replace("endpoint: user/1000", "endpoint: user/1000|user/1001"), 7, "'|'"),
    "moh with an ESL command": (with_queue_key(f"moh: {INJECTION}"), 5, "queue 'support' moh"),
    "moh with a space": (with_queue_key("moh: /sounds/my music.wav"), 5, "contains a space"),
    "timeout_destination with an ESL command": (
        with_queue_key('timeout_destination: "5000\\r\\napi fsctl shutdown"'),
        5,
        "U+000D",
    ),
    "timeout_destination read as an option": (with_queue_key("timeout_destination: -both"), 5, "starts with '-'"),
    "closed_message with a second application": (
        with_queue_key("closed_message: 'ivr/closed.wav,system:reboot'"),
        5,
        "an inline dialplan separates its applications",
    ),
    "route transfer with an ESL command": (with_route(f"transfer: {INJECTION}"), 11, "transfer"),
    "route closed announcement with a quote": (with_route('closed: "it\'s.wav"'), 11, "a quote"),
    "overflow to an extension with a space": (with_queue_key("overflow: '5000 inline'"), 5, "unknown queue"),
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "line", "fragment"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_check_reports_the_value_at_its_line_and_exits_1(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write(tmp_path, text)

    result = CliRunner().invoke(main, ["check", str(path)])

    assert result.exit_code == 1, result.output
    assert f"{path}:{line}: error: " in result.stderr and fragment in result.stderr, result.stderr
    assert "internal error" not in result.stderr
    with pytest.raises(RuleError):
        parse_rules(text)


@pytest.mark.parametrize(
    "nested",
    [
        "[" * 100_000 + "]" * 100_000,
        "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1),
        "{a: " * (MAX_NESTING + 1) + "1" + "}" * (MAX_NESTING + 1),
        "".join(f"\n{' ' * depth}k:" for depth in range(300)) + " 1",
        "\n  " + "- " * 800 + "x",
    ],
    ids=["flow-100000", "flow-just-too-deep", "mappings-just-too-deep", "block-300", "sequences-800"],
)
def test_nesting_too_deep_is_a_located_error(tmp_path: Path, nested: str) -> None:
    path = write(tmp_path, with_queue_key("skills: {english: 1}") + f"extra: {nested}\n")

    errors, _ = check_file(str(path))

    assert errors and errors[0].line >= 9, errors
    assert "nest" in errors[0].message, errors


def test_conditions_nested_as_deep_as_allowed_still_read() -> None:
    """``MAX_NESTING`` leaves room for every rules file: conditions at their own depth limit."""
    when = "{not: " * 8 + "{destination: '5000'}" + "}" * 8
    parse_rules(BASE + f"routes:\n  - when: {when}\n    queue: support\n")


def test_a_file_over_the_limit_is_one_error_at_the_line_where_it_crosses_it(tmp_path: Path) -> None:
    line = "# " + "x" * 98 + "\n"
    path = write(tmp_path, BASE + line * (MAX_RULES_BYTES // len(line) + 1))

    errors, _ = check_file(str(path))

    crossing = (MAX_RULES_BYTES - len(BASE)) // len(line) + 9
    assert [(error.line, error.message) for error in errors] == [
        (crossing, "the file is larger than 16 MiB, the most fsrouter reads")
    ]


def test_an_unexpected_exception_is_an_internal_error_at_the_last_line_read(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> object:
        raise KeyError("surprise")

    monkeypatch.setattr(rules_loader._RulesBuilder, "agent", broken)

    with pytest.raises(RuleError) as caught:
        parse_rules(BASE, path="rules.yaml")

    assert str(caught.value) == "rules.yaml:6: error: internal error reading rules: KeyError: 'surprise'"


# --- random documents ---------------------------------------------------------------------------------------

KEYS = st.sampled_from(
    ["version", "queues", "agents", "routes", "calendars", "support", "id", "endpoint", "hours", "closed_dates",
     "when", "all", "not", "moh", "ring_timeout", "skills", "queue", "transfer", "<<", "vip", "numbers"]
)  # fmt: skip
SCALARS = st.one_of(
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.dates().map(str),
    st.from_regex(r"20[0-9]{2}-[0-9]{2}-[0-9]{2}", fullmatch=True),
    st.text(max_size=20),
    st.sampled_from(["user/1000", "longest-idle", "08:00-18:00", "mon-fri", "+33612345678", "1" * 5000, "*"]),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)),
    max_leaves=30,
)


def nest(value: object, depth: int) -> object:
    """``value`` inside ``depth`` lists."""
    for _ in range(depth):
        value = [value]
    return value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    document=st.fixed_dictionaries({"version": st.just(1)}, optional={"queues": DOCUMENTS, "agents": DOCUMENTS})
    | DOCUMENTS,
    depth=st.integers(min_value=0, max_value=120),
    style=st.sampled_from([None, True, False]),
)
def test_random_documents_only_ever_raise_rule_error(document: object, depth: int, style: bool | None) -> None:
    parses_or_rule_error(yaml.safe_dump(nest(document, depth), default_flow_style=style, allow_unicode=True))


#: YAML's indicators, white space, digits, a NUL, NEL and a Unicode line separator
YAML_CHARACTERS = list(":-[]{}\n \t'\"!&*#|>%@`,?\\0123456789abc\x00\x85\u2028")


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(YAML_CHARACTERS), max_size=80))
def test_random_text_only_ever_raises_rule_error(text: str) -> None:
    parses_or_rule_error(BASE.replace("queues: [support]", f"queues: [support]\n    skills: {text}"))


def parses_or_rule_error(text: str) -> None:
    """Any exception but RuleError fails the test (hypothesis shows the document)."""
    try:
        parse_rules(text, path="random.yaml")
    except RuleError as error:
        assert all(problem.path == "random.yaml" and problem.line for problem in error.problems)
        assert not any("internal error" in problem.message for problem in error.problems), error
