"""The published JSON Schema of the rules file: committed, printed by ``fsrouter schema``, true to the loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from fsrouter.cli import main
from fsrouter.config import rule_schema
from fsrouter.config.rule_schema import CALENDAR_KEYS, CONDITION_KEYS, ROUTE_ACTIONS, TOP_KEYS, VIP_KEYS
from tests.config.test_rules_loader import MINIMAL

ROOT = Path(__file__).parents[2]
COMMITTED = ROOT / "schema" / "routing-rules.schema.json"


def as_json(text: str) -> Any:
    """The YAML document as an editor's schema check sees it (dates stay text)."""
    return json.loads(json.dumps(yaml.safe_load(text), default=str))


def schema_errors(text: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(json.loads(COMMITTED.read_text(encoding="utf-8")))
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(as_json(text))]


def test_the_committed_schema_is_what_fsrouter_schema_prints() -> None:
    printed = CliRunner().invoke(main, ["schema"]).stdout

    assert printed == COMMITTED.read_text(encoding="utf-8"), "run: fsrouter schema > schema/routing-rules.schema.json"


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(COMMITTED.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", ["routing-rules.yaml", "fsrouter/demo-rules.yaml"])
def test_the_shipped_rules_files_follow_the_schema(path: str) -> None:
    assert schema_errors((ROOT / path).read_text(encoding="utf-8")) == []


def test_the_minimal_file_of_the_design_follows_the_schema() -> None:
    assert schema_errors(MINIMAL) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("strategy: longest-idle", "strategy: longest_idle"),
        ("strategy: longest-idle", "ring_timout: 20"),
        ("strategy: longest-idle", "max_wait: ten minutes"),
        ("queues: [support]", "queues: [support]\n    skills: {french: 7}"),
        ("    endpoint: user/1000\n", ""),
    ],
)
def test_the_schema_refuses_what_check_refuses(old: str, new: str) -> None:
    assert schema_errors(MINIMAL.replace(old, new)) != []


def test_the_shipped_example_names_the_schema_for_yaml_language_server() -> None:
    first = (ROOT / "routing-rules.yaml").read_text(encoding="utf-8").splitlines()[0]

    assert first == "# yaml-language-server: $schema=./schema/routing-rules.schema.json"
    assert (ROOT / first.split("=", 1)[1]).resolve() == COMMITTED


def test_the_schema_knows_the_keys_the_loader_reads() -> None:
    schema = rule_schema.json_schema()
    definitions = schema["$defs"]

    assert tuple(schema["properties"]) == TOP_KEYS
    assert tuple(definitions["calendar"]["properties"]) == CALENDAR_KEYS
    assert tuple(definitions["viplist"]["properties"]) == VIP_KEYS
    assert set(definitions["condition"]["anyOf"][0]["properties"]) == set(CONDITION_KEYS)
    assert set(ROUTE_ACTIONS) <= set(definitions["route"]["properties"])
