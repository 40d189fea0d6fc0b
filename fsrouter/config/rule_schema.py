"""The declared rule keys (``core/rule_keys.py``) as pydantic validators, and the JSON Schema of the rules file.

The core declares each queue, agent and route setting once, on its dataclass field; this module is the only
place that turns those declarations into pydantic types: ``key_adapter(cls, name)`` validates one key's value
(the loader maps a failure back to its YAML line), ``json_schema()`` publishes the whole file's shape for
editors (``fsrouter schema``, ``schema/routing-rules.schema.json``). The parts of the file that are not
declared settings (calendars, VIP lists, regions, route conditions and actions) get hand-written shapes here,
named after the loader's key tables so that the two cannot drift apart silently.

    >>> key_adapter(QueueConfig, "ring_timeout").validate_python(15)
    15.0
    >>> json_schema()["properties"]["queues"]["additionalProperties"]["$ref"]
    '#/$defs/queue'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
    create_model,
)

from fsrouter.core import geo
from fsrouter.core.esl_safety import Slot, unsafe_reason
from fsrouter.core.rule_keys import LARGEST_NUMBER, DeclaredKey, declared_keys
from fsrouter.core.rules import AgentConfig, QueueConfig, Route, RouteAction
from fsrouter.core.strategies import STRATEGIES

__all__ = [
    "RULE_CLASSES",
    "RuleClasses",
    "base_type",
    "json_schema",
    "key_adapter",
    "key_model",
    "schema_text",
]

SCHEMA_ID = "https://fsrouter.invalid/routing-rules.schema.json"
TOP_KEYS = (
    "version",
    "timezone",
    "default_region",
    "default_queue",
    "calendars",
    "vip",
    "regions",
    "queues",
    "agents",
    "routes",
)
ROUTE_ACTIONS = tuple(action.value for action in RouteAction)
CALENDAR_KEYS = ("timezone", "hours", "holidays", "closed_dates")
VIP_KEYS = ("priority", "numbers")
CONDITION_KEYS = (
    "all",
    "any",
    "not",
    "destination",
    "caller",
    "country",
    "region",
    "number_type",
    "variable",
    "ivr",
    "open",
    "closed",
    "time",
    "days",
    "vip",
)
#: ``escalation:`` step keys; ``widen`` holds ``min_level``
ESCALATION_KEYS = ("after", "widen", "add_tier", "overflow")
ESCALATION_EFFECTS = ("widen", "add_tier", "overflow")


@dataclass(frozen=True, slots=True)
class RuleClasses:
    """The core classes whose declared keys make ``queues:``, ``agents:`` and ``routes:`` entries.

    A test swaps ``RULE_CLASSES`` for subclasses with one more declared key to show that the loader, the
    check, the defaults and the JSON Schema follow the declarations alone.
    """

    queue: type[QueueConfig] = QueueConfig
    agent: type[AgentConfig] = AgentConfig
    route: type[Route] = Route


RULE_CLASSES = RuleClasses()


def _number_as_text(value: object) -> object:
    """An extension ``5000`` written without quotes is text to us (but ``true`` is not)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


#: a non-empty string; a whole number is accepted as its text (extensions, announcement ids)
Text = Annotated[
    str,
    BeforeValidator(_number_as_text),
    Field(min_length=1),
    WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]}),
]
#: one name or a list of names (``region: [north-west, north-east]``)
Names = Text | list[Text]


def _fits(slot: Slot) -> AfterValidator:
    """Refuses text FreeSWITCH would misread in ``slot`` of a command line (``core/esl_safety.py``)."""

    def check(value: str) -> str:
        reason = unsafe_reason(value, slot)
        if reason is not None:
            raise ValueError(reason)
        return value

    return AfterValidator(check)


def base_type(key: DeclaredKey) -> Any:
    """``key``'s annotation without ``| None``."""
    annotation = key.annotation
    if get_origin(annotation) in (Union, UnionType):
        (annotation,) = [arg for arg in get_args(annotation) if arg is not NoneType]
    return annotation


def _value_type(key: DeclaredKey) -> Any:
    """The pydantic type of one declared key's YAML value, with its constraints and help."""
    spec = key.spec
    base = base_type(key)
    maximum = LARGEST_NUMBER if spec.maximum is None else spec.maximum
    value: Any
    if spec.shape:
        value = _SHAPES[spec.shape]
    elif spec.refers_to == "strategy":
        value = Literal[tuple(sorted(STRATEGIES))]
    elif spec.choices:
        value = Literal[spec.choices]
    elif base is str:
        value = Annotated[Text, Field(pattern=spec.pattern or None)]
        if spec.esl_slot is not None:
            value = Annotated[value, _fits(spec.esl_slot)]
    elif base is float:
        value = Annotated[float, Field(ge=spec.minimum, le=maximum, allow_inf_nan=False)]
    elif base is int:
        value = Annotated[int, Field(ge=spec.minimum, le=maximum)]
    elif get_origin(base) is Mapping:
        value = dict[str, Annotated[int, Field(ge=spec.minimum, le=maximum)]]
    else:
        raise TypeError(f"rule key {key.name!r}: no YAML type for {key.annotation!r}")
    return Annotated[value, Field(description=spec.help)]


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


@cache
def key_adapter(cls: type, name: str) -> TypeAdapter[Any]:
    """A strict validator of the value of declared key ``name`` of ``cls`` (no text-to-number guessing)."""
    (key,) = [key for key in declared_keys(cls) if key.name == name]
    return TypeAdapter(_value_type(key), config=ConfigDict(strict=True))


def key_model(cls: type, title: str, **extra_fields: Any) -> type[BaseModel]:
    """A pydantic model of one entry (a queue, an agent, a route) from the declared keys of ``cls``.

    ``extra_fields`` adds the YAML keys that are not declared settings (a route's ``name``, ``when``, actions),
    as ``create_model`` field definitions. Unknown keys are refused (``additionalProperties: false``).
    """
    fields: dict[str, Any] = {}
    for key in declared_keys(cls):
        if key.required:
            fields[key.name] = (_value_type(key), ...)
        elif key.default is None:
            fields[key.name] = (_value_type(key) | None, None)
        else:
            fields[key.name] = (_value_type(key), _json_default(key.default))
    fields.update(extra_fields)
    return create_model(title, __config__=ConfigDict(extra="forbid", strict=True, title=title), **fields)


# --- the shapes that are not one value per key ---------------------------------------------------------------


class _Widen(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    min_level: Annotated[int, Field(ge=1, le=5, description="Accept agents with at least this level.")] = 1


class _EscalationStep(BaseModel):
    """One step: after ``after`` seconds of waiting, exactly one of widen, add_tier, overflow."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        title="escalation step",
        json_schema_extra={"oneOf": [{"required": [effect]} for effect in ESCALATION_EFFECTS]},
    )
    after: Annotated[float, Field(ge=0, description="Seconds of waiting before this step applies.")]
    widen: _Widen | None = None
    add_tier: Annotated[int, Field(ge=1, le=9, description="Also offer the call to agents of this tier.")] | None = None
    overflow: Annotated[Text, Field(description="A queue name or an extension.")] | None = None


_Tier = Annotated[int, Field(ge=1, le=9)]
_SHAPES: dict[str, Any] = {
    "escalation": list[_EscalationStep],
    "agent-queues": Text | dict[str, _Tier] | list[Text | dict[str, _Tier]],
}


#: stands for ``{"$ref": "#/$defs/condition"}`` while pydantic writes the schema (it resolves every $ref among
#: its own definitions, and the hand-written condition is not one of them); ``_finished`` swaps it back
_CONDITION_MARK = {"x-fsrouter-shape": "condition"}


def _condition_schema() -> dict[str, Any]:
    """A route's ``when``: one mapping (each key a condition) or a list of them; all must hold."""
    condition = {"$ref": "#/$defs/condition"}
    names = {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}, {"type": "array", "items": {}}]}
    leaf: dict[str, Any] = {key: names for key in CONDITION_KEYS}
    leaf.update(
        {
            "all": {"type": "array", "minItems": 1, "items": condition},
            "any": {"type": "array", "minItems": 1, "items": condition},
            "not": condition,
            "variable": {"type": "object", "minProperties": 1},
            "number_type": {
                "anyOf": [
                    {"enum": sorted(geo.NUMBER_TYPE_NAMES)},
                    {"type": "array", "items": {"enum": sorted(geo.NUMBER_TYPE_NAMES)}},
                ]
            },
            "country": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        }
    )
    return {
        "anyOf": [
            {"type": "object", "properties": leaf, "additionalProperties": False, "minProperties": 1},
            {"type": "array", "items": condition},
        ]
    }


class _Holidays(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    country: str
    subdiv: str = ""


class _Calendar(BaseModel):
    """Weekly ``hours`` (a day or span -> "HH:MM-HH:MM", a list of ranges, or "closed"), minus holidays."""

    model_config = ConfigDict(extra="forbid", strict=True, title="calendar")
    timezone: str = Field("", description="Default: the top-level timezone.")
    hours: dict[str, str | list[str]]
    holidays: str | _Holidays | None = None
    closed_dates: list[Annotated[str, Field(json_schema_extra={"format": "date"})]] = []


class _VipList(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, title="vip list")
    priority: Annotated[int, Field(ge=1, le=1000)] = 10
    numbers: Names = Field(description='Exact numbers, prefixes ("3314*") or /regular expressions/.')


def _route_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": (Text | None, None),
        "when": (Annotated[Any, WithJsonSchema(_CONDITION_MARK)], None),
    }
    for action in ROUTE_ACTIONS:
        value = Literal[True] if action == "reject" else Text
        fields[action] = (value | None, None)
    return fields


def json_schema(classes: RuleClasses | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``routing-rules.yaml``, from the declarations of ``classes``."""
    classes = classes or RULE_CLASSES
    queue = key_model(classes.queue, "queue")
    agent = key_model(classes.agent, "agent")
    route = key_model(classes.route, "route", **_route_fields())
    document = create_model(
        "RoutingRules",
        __config__=ConfigDict(extra="forbid", strict=True, title="fsrouter routing rules"),
        version=(Literal[1], ...),
        timezone=(str, Field("UTC", description="Zone of the route conditions time: and days:.")),
        default_region=(str, Field("FR", description="How a number without +country code is read.")),
        default_queue=(Text | None, Field(None, description="Default: the first queue.")),
        calendars=(dict[str, _Calendar], {}),
        vip=(dict[str, _VipList], {}),
        regions=(dict[str, dict[str, str]], Field({}, description="Country -> prefix -> region name.")),
        queues=(_generic(Annotated, _generic(dict, str, queue), Field(min_length=1)), ...),
        agents=(_generic(list, agent), []),
        routes=(_generic(list, route), []),
    )
    schema = document.model_json_schema()
    schema["$defs"] = {_def_name(name): body for name, body in schema["$defs"].items()}
    schema["$defs"]["condition"] = _condition_schema()
    schema["$defs"]["route"]["oneOf"] = [{"required": [action]} for action in ROUTE_ACTIONS]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **_finished(schema)}


def schema_text() -> str:
    """``json_schema()`` as ``fsrouter schema`` prints it and ``schema/routing-rules.schema.json`` holds it."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def _generic(container: Any, *items: Any) -> Any:
    """``container[items]`` for item types made at run time (``list[route]``), which mypy cannot check."""
    return container[items if len(items) > 1 else items[0]]


def _def_name(model_name: str) -> str:
    """``_EscalationStep`` -> ``escalationstep``: definitions named for operators, not for Python."""
    return model_name.strip("_").lower()


def _finished(node: Any) -> Any:
    """``node`` with definitions renamed by ``_def_name``, the condition marks turned into references, and
    no ``null``: a key with nothing to say is left out of the YAML, never written empty (``add_tier:``)."""
    if isinstance(node, dict) and _CONDITION_MARK.items() <= node.items():
        rest = {key: value for key, value in node.items() if key not in _CONDITION_MARK and value is not None}
        return {**rest, "$ref": "#/$defs/condition"}
    if isinstance(node, dict) and "anyOf" in node:
        branches = [branch for branch in node["anyOf"] if branch != {"type": "null"}]
        rest = {key: value for key, value in node.items() if key != "anyOf" and value is not None}
        node = {**rest, **branches[0]} if len(branches) == 1 else {**rest, "anyOf": branches}
    if isinstance(node, dict):
        return {
            key: "#/$defs/" + _def_name(value.rsplit("/", 1)[1]) if key == "$ref" else _finished(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_finished(item) for item in node]
    return node
