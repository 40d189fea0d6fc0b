"""Each queue, agent and route setting of ``routing-rules.yaml`` is declared once, on its core field.

A setting is a field of ``QueueConfig``, ``AgentConfig`` or ``Route`` made with ``rule_key(...)``: the field's
name is the YAML key, its annotation the type, its default what an operator gets by writing nothing, and the
``RuleKey`` in its metadata the help text and the constraints. ``config/rule_schema.py`` turns these
declarations into validators and the published JSON Schema; ``config/rules_loader.py`` reads every declared
key with one generic reader. Fields made with plain ``field()`` (``name``, ``line``, ``tiers``, ...) are not
YAML keys.

Pure like the rest of the core: declarations are data, checked elsewhere.

    >>> @dataclass(frozen=True, kw_only=True)
    ... class Queue:
    ...     ring_timeout: float = rule_key(20.0, "Seconds an agent rings.", minimum=0)
    >>> [key.name for key in declared_keys(Queue)]
    ['ring_timeout']
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from fsrouter.core.esl_safety import Slot

__all__ = ["LARGEST_NUMBER", "RULE_KEY", "DeclaredKey", "RuleKey", "declared_keys", "rule_key"]

#: the field-metadata entry that holds a ``RuleKey``
RULE_KEY = "fsrouter.rule_key"

#: the bound of a number key that declares no ``maximum``: 10^9 seconds is 31 years, and no count, level or
#: weight of a call centre comes near it; a bigger number is a typo (and 1e400 would be infinite)
LARGEST_NUMBER = 10**9

#: what ``refers_to`` may name; the loader resolves each once the whole file is read
REFERENCE_KINDS = ("queue", "queue-or-extension", "calendar", "agent", "strategy")


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleKey:
    """How one YAML key reads, beyond its type and default.

    ``minimum``/``maximum`` bound a number (for a ``Mapping[str, int]`` such as ``skills``: each level).
    ``choices`` is the closed set of words a text key accepts. ``refers_to`` (one of ``REFERENCE_KINDS``)
    makes the value a name that must exist elsewhere in the file. ``pattern`` is a regular expression a text
    value must match in full, ``pattern_meaning`` says what it means in the error (``a dial string like
    user/1000``). ``shape`` names a key whose YAML shape differs from its field's (``escalation``,
    ``agent-queues``): the loader has a dedicated reader for each shape. ``esl_slot`` says where on a FreeSWITCH
    command line a text key's value goes (``core/esl_safety.py``): text FreeSWITCH would misread there is refused.
    """

    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    refers_to: str = ""
    pattern: str = ""
    pattern_meaning: str = ""
    shape: str = ""
    esl_slot: Slot | None = None

    def __post_init__(self) -> None:
        if self.refers_to and self.refers_to not in REFERENCE_KINDS:
            raise ValueError(f"refers_to {self.refers_to!r} is not one of {REFERENCE_KINDS}")
        if bool(self.pattern) != bool(self.pattern_meaning):
            raise ValueError("pattern and pattern_meaning go together")


_NO_DEFAULT: Any = dataclasses.MISSING


def rule_key(
    default: Any = _NO_DEFAULT,
    help: str = "",
    *,
    default_factory: Callable[[], Any] | None = None,
    **constraints: Any,
) -> Any:
    """A dataclass field declared as a YAML key: ``ring_timeout: float = rule_key(20.0, "help", minimum=0)``.

    Without ``default`` (nor ``default_factory``) the key is required. ``constraints`` are ``RuleKey``'s
    keyword arguments; a wrong one is a TypeError at import time.
    """
    metadata = {RULE_KEY: RuleKey(help=help, **constraints)}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True, slots=True)
class DeclaredKey:
    """One declared key of a class: ``name``, resolved ``annotation``, ``default`` (``required`` if none)."""

    name: str
    annotation: Any
    spec: RuleKey
    required: bool
    default: Any = None


def declared_keys(cls: type) -> tuple[DeclaredKey, ...]:
    """The declared YAML keys of dataclass ``cls`` (subclasses' own keys last), in field order."""
    return _declared_keys(cls)


@cache  # behind a plain function: mypy takes a dataclass type for an unhashable argument of a cached one
def _declared_keys(cls: type) -> tuple[DeclaredKey, ...]:
    hints = typing.get_type_hints(cls)
    keys = []
    for item in dataclasses.fields(cls):
        spec = item.metadata.get(RULE_KEY)
        if spec is None:
            continue
        if item.default is not dataclasses.MISSING:
            keys.append(DeclaredKey(item.name, hints[item.name], spec, required=False, default=item.default))
        elif item.default_factory is not dataclasses.MISSING:
            keys.append(DeclaredKey(item.name, hints[item.name], spec, required=False, default=item.default_factory()))
        else:
            keys.append(DeclaredKey(item.name, hints[item.name], spec, required=True))
    return tuple(keys)
