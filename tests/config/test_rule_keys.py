"""Each queue, agent and route key is declared once (``core/rule_keys.py``); everything else follows from it.

A test-only queue setting, declared on a subclass and nothing more, reaches the loader, ``fsrouter check``,
the defaults and ``fsrouter schema``. The defaults quoted in the shipped ``routing-rules.yaml`` are the
declared ones, and the core imports no validation library.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsrouter.cli import main
from fsrouter.config import rule_schema
from fsrouter.config.rules_loader import parse_rules
from fsrouter.core.rule_keys import LARGEST_NUMBER, declared_keys, rule_key
from fsrouter.core.rules import AgentConfig, QueueConfig, Route
from fsrouter.errors import RuleError
from tests.config.test_rules_loader import MINIMAL

ROOT = Path(__file__).parents[2]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueWithCallback(QueueConfig):
    """A queue with one more setting, declared the way every real one is."""

    callback_after: float = rule_key(45.0, "Offer a callback after this many seconds of waiting.", minimum=0)


@pytest.fixture
def callback_setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(rule_schema, "RULE_CLASSES", replace(rule_schema.RULE_CLASSES, queue=QueueWithCallback))
    yield


@pytest.mark.usefixtures("callback_setting")
def test_a_declared_queue_setting_reaches_the_loader_with_its_default() -> None:
    written = parse_rules(MINIMAL.replace("strategy: longest-idle", "callback_after: 90"))
    left_out = parse_rules(MINIMAL)

    assert isinstance(written.queues["support"], QueueWithCallback)
    assert written.queues["support"].callback_after == 90.0  # type: ignore[attr-defined]
    assert left_out.queues["support"].callback_after == 45.0  # type: ignore[attr-defined]


@pytest.mark.usefixtures("callback_setting")
def test_a_declared_queue_setting_is_checked_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(MINIMAL.replace("strategy: longest-idle", "callback_after: -5\n    callback_afer: 3"))

    result = CliRunner().invoke(main, ["check", str(path)])

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}:4: error: queue 'support' callback_after should be a number >= 0, got a number (-5)",
        f"{path}:5: error: unknown key 'callback_afer' in queue 'support'; did you mean 'callback_after'?",
    ]


@pytest.mark.usefixtures("callback_setting")
def test_a_declared_queue_setting_is_in_the_json_schema() -> None:
    schema = json.loads(CliRunner().invoke(main, ["schema"]).stdout)

    assert schema["$defs"]["queue"]["properties"]["callback_after"] == {
        "default": 45.0,
        "description": "Offer a callback after this many seconds of waiting.",
        "maximum": LARGEST_NUMBER,
        "minimum": 0,
        "title": "Callback After",
        "type": "number",
    }


def test_every_invalid_declared_value_is_reported_not_just_the_first() -> None:
    text = MINIMAL.replace("strategy: longest-idle", "ring_timeout: -1\n    when_no_agents: never\n    moh: [a]")

    with pytest.raises(RuleError) as caught:
        parse_rules(text)

    assert [problem.message for problem in caught.value.problems] == [
        "queue 'support' ring_timeout should be a number >= 0, got a number (-1)",
        "queue 'support' when_no_agents 'never' is not one of: wait, reject, overflow",
        "queue 'support' moh should be text, got a list",
    ]


# --- the defaults quoted in the shipped example ------------------------------------------------------------

SECTIONS = {"queues": QueueConfig, "agents": AgentConfig, "routes": Route}
KEY_LINE = re.compile(r"^\s+(?:- )?(\w+):[^#]*(?:#(.*))?$")
QUOTED_DEFAULT = re.compile(r"\(default ([^);=]+?)\s*(?:[;=][^)]*)?\)|([\w./:-]+) \(default\)")


def quoted_defaults(path: Path) -> Iterator[tuple[int, str, str, str]]:
    """(line, section, key, default as quoted) for each key of queues/agents/routes whose comment (on its line
    or in the comment block just above it) quotes a default."""
    section, pending = "", ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line and not line[0].isspace() and not line.startswith("#"):
            section, pending = line.split(":", 1)[0], ""
        elif line.lstrip().startswith("#"):
            pending += line
        elif (match := KEY_LINE.match(line)) and section in SECTIONS:
            comment, pending = pending + (match.group(2) or ""), ""
            for found in QUOTED_DEFAULT.finditer(comment):
                yield number, section, match.group(1), found.group(1) or found.group(2)


def test_the_defaults_quoted_in_routing_rules_yaml_are_the_declared_ones() -> None:
    checked = 0
    for line, section, key, quoted in quoted_defaults(ROOT / "routing-rules.yaml"):
        declared = {item.name: item for item in declared_keys(SECTIONS[section])}
        assert key in declared, f"routing-rules.yaml:{line}: {key} is not a declared {section} key"
        default = declared[key].default
        same = float(quoted) == default if isinstance(default, int | float) else quoted == str(default)
        assert same, f"routing-rules.yaml:{line}: {key} says default {quoted}, declared {default!r}"
        checked += 1
    assert checked >= 20


# --- the core stays pure -------------------------------------------------------------------------------------

FORBIDDEN_IN_CORE = ("pydantic", "jsonschema", "yaml", "fsrouter.config", "fsrouter.adapters", "fsrouter.cli")


@pytest.mark.parametrize("module", sorted((ROOT / "fsrouter" / "core").rglob("*.py")), ids=lambda p: p.name)
def test_the_core_imports_no_validation_library_nor_config(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]

    assert not [name for name in imported if name.startswith(FORBIDDEN_IN_CORE)]
