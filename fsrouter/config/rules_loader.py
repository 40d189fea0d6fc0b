"""``routing-rules.yaml`` -> a validated ``fsrouter.core.rules.Rules``, or every problem with its file:line.

Operators edit this file on a live call centre, so a mistake must be caught by ``fsrouter check`` or by the
reload (which keeps the old rules), never discovered by a caller. Hence: all problems are collected rather
than stopping at the first; each one points at the line of the offending key or value; names are resolved
and cross-checked here (queues, calendars, VIP lists, regions, strategies) so the core never meets a
dangling reference at call time.

The YAML is read with libyaml (PyYAML's ``CSafeLoader``: the pure-Python parser took 20 of the 25 s of a
60,000-agent file) into dicts and lists remembering where each key, value and item starts (``_YamlMap`` /
``_YamlList``); scalars are plain Python values whose line is asked of their parent.

Nothing in the file can crash the reader: a file over ``MAX_RULES_BYTES``, nesting deeper than
``MAX_NESTING``, a number of more than ``MAX_NUMBER_CHARACTERS`` characters, an impossible date, text that
FreeSWITCH would misread on a command line (``core/esl_safety.py``) are each a located problem, and any other
exception (a bug, a library's surprise) is reported as ``internal error reading rules`` at the last line the
reader had reached. ``load_rules_in_thread`` reads off the gevent hub, so a big file does not stop routing.

    >>> rules = load_rules("routing-rules.yaml", now=time.time())
    >>> errors, warnings = check_file("routing-rules.yaml")
"""

from __future__ import annotations

import difflib
import gc
import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

import gevent
import yaml
from pydantic import ValidationError

from fsrouter.config import rule_schema
from fsrouter.config.rule_schema import (
    CALENDAR_KEYS,
    CONDITION_KEYS,
    ESCALATION_EFFECTS,
    ESCALATION_KEYS,
    ROUTE_ACTIONS,
    TOP_KEYS,
    VIP_KEYS,
)
from fsrouter.core import geo
from fsrouter.core.calendars import (
    ALWAYS,
    WEEKDAYS,
    Calendar,
    TimeRange,
    check_holiday_region,
    format_week_minute,
    parse_days,
    week_gaps,
    zone,
)
from fsrouter.core.conditions import (
    IVR_VARIABLE,
    AllOf,
    AnyOf,
    CalendarIs,
    Condition,
    CountryIs,
    DayOfWeek,
    InVipList,
    Not,
    NumberMatches,
    NumberPattern,
    NumberTypeIs,
    RegionIs,
    TimeOfDay,
    VariableIs,
    VipList,
)
from fsrouter.core.esl_safety import Slot, unsafe_reason
from fsrouter.core.rule_keys import LARGEST_NUMBER, DeclaredKey, declared_keys
from fsrouter.core.rules import AgentConfig, EscalationStep, QueueConfig, Route, RouteAction, Rules
from fsrouter.core.strategies import STRATEGIES
from fsrouter.errors import ConfigError, RuleError

log = logging.getLogger(__name__)

#: ``all`` / ``any`` / ``not`` nesting deeper than this is refused: it is a mistake, not a routing need.
MAX_CONDITION_DEPTH = 8
#: An overflow target made of these characters is an extension number; anything else must name a queue.
EXTENSION = re.compile(r"[0-9+*#]+")
#: The largest rules file read, in bytes (16 MiB): three to four times a 60,000-agent file (4 to 5 MB), a bound on
#: the memory a reload takes (see the RSS per MB of rules printed by ``bench/reload.py``). In the README.
MAX_RULES_BYTES = 16 * 1024 * 1024
#: YAML nesting deeper than this is refused before it is built: a rules file needs about 20 levels (conditions
#: nested ``MAX_CONDITION_DEPTH`` deep), and each level costs the reader a few frames of Python's stack.
MAX_NESTING = 64
#: A number written with more characters than this is refused: no rules value needs one, and Python refuses to
#: read integers of more than 4,300 digits (``sys.get_int_max_str_digits``) or to turn 10^400 into a float.
MAX_NUMBER_CHARACTERS = 32
#: The characters of a value quoted in a problem (a value can be megabytes long).
SHOWN_CHARACTERS = 60
#: The slot of a route action's target on a FreeSWITCH command line (``queue``/``overflow`` name queues or digits).
ACTION_SLOTS = {"transfer": Slot.ARGUMENT, "closed": Slot.INLINE_ARGUMENT}


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of the check; ``str()`` is the line ``fsrouter check`` prints."""

    path: str
    line: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"

    def to_error(self) -> ConfigError:
        return ConfigError(self.message, path=self.path, line=self.line)


def load_rules(path: str, *, now: float) -> Rules:
    """Read, validate and build the rules in ``path``; RuleError lists every problem (warnings are logged)."""
    try:
        content = _read_file(path)
    except OSError as exc:
        raise RuleError([ConfigError(f"cannot read rules file: {exc.strerror or exc}", path=path)]) from exc
    return parse_rules(content, path=path, now=now)


def load_rules_in_thread(path: str, *, now: float) -> Rules:
    """``load_rules`` in a thread of the gevent hub's pool: the calling greenlet waits, the others run.

    Parsing a 60,000-agent file takes seconds of CPU; in the hub's thread it would hold every greenlet (new
    calls waited 22 s). The reader shares nothing with the daemon, only returns a new ``Rules``, and its
    Python code gives the GIL back every few milliseconds (``sys.getswitchinterval``), so the hub keeps
    routing while it runs: ``bench/reload.py`` measured a longest hub gap of 0.18 s while a 60,000-agent file
    (5.3 MB) parsed in the thread, against 10.4 s when it parsed in the hub.
    """
    outcome: Rules | RuleError = gevent.get_hub().threadpool.apply(_rules_or_error, (path, now))
    if isinstance(outcome, RuleError):
        raise outcome
    return outcome


#: one parse in a thread at a time, so that pausing the cyclic garbage collector for it cannot interleave
_THREAD_PARSE = threading.Lock()


def _rules_or_error(path: str, now: float) -> Rules | RuleError:
    """``load_rules``'s rules, or its RuleError returned: gevent's pool prints a traceback for an exception
    raised in its threads, and a refused reload is no bug.

    Python's cyclic garbage collector is paused meanwhile: the parse allocates millions of containers that all
    stay alive, so the collector ran about 4,300 times during a 60,000-agent parse, for up to 1.3 s at a time
    with the GIL held: the longest stall of the hub. Reference counting still frees everything the parse drops
    (it makes no cycles); the collector runs again right after.
    """
    with _THREAD_PARSE:
        collecting = gc.isenabled()
        gc.disable()
        try:
            return load_rules(path, now=now)
        except RuleError as error:
            return error
        finally:
            if collecting:
                gc.enable()


def _read_file(path: str) -> bytes:
    """The file's bytes, at most one more than ``MAX_RULES_BYTES`` (enough to tell that it is too big)."""
    with open(path, "rb") as handle:
        return handle.read(MAX_RULES_BYTES + 1)


def parse_rules(content: str | bytes, *, path: str = "<rules>", now: float = 0.0) -> Rules:
    """``load_rules`` for content already in memory (tests, ``fsrouter demo``'s packaged file)."""
    rules, errors, warnings = _analyse(content, path, now)
    for warning in warnings:
        log.warning("%s", warning)
    if errors or rules is None:
        raise RuleError([problem.to_error() for problem in errors])
    return rules


def check_file(path: str) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) for the rules file at ``path``; OSError (FileNotFoundError, ...) if unreadable."""
    _, errors, warnings = _analyse(_read_file(path), path, 0.0)
    return errors, warnings


Analysis = tuple[Rules | None, list[Problem], list[Problem]]


def _analyse(content: str | bytes, path: str, now: float) -> Analysis:
    """(rules or None, errors, warnings). Never raises: an unexpected exception is an error at the last line
    the reader had reached, so a bad file can never stop a daemon (a reload keeps the old rules)."""
    builder = _RulesBuilder(path)
    try:
        return _analyse_with(builder, content, now)
    except Exception as exc:
        log.debug("internal error reading %s", path, exc_info=True)
        message = f"internal error reading rules: {type(exc).__name__}: {_shown(str(exc))}"
        return None, [Problem(path, builder.at, message)], []


def _analyse_with(builder: _RulesBuilder, content: str | bytes, now: float) -> Analysis:
    path = builder.path
    data = content.encode("utf-8") if isinstance(content, str) else content
    if len(data) > MAX_RULES_BYTES:
        line = data[:MAX_RULES_BYTES].count(b"\n") + 1
        limit = f"{MAX_RULES_BYTES // (1024 * 1024)} MiB"
        return None, [Problem(path, line, f"the file is larger than {limit}, the most fsrouter reads")], []
    if isinstance(content, bytes):
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = content[: exc.start].count(b"\n") + 1
            return None, [Problem(path, line, "the file is not UTF-8 text (save it as UTF-8)")], []
    else:
        text = content
    try:
        loader = _LineLoader(text)
        try:
            document = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(exc, text, path)], []
    except yaml.YAMLError as exc:
        return None, [Problem(path, 1, f"YAML syntax: {exc}")], []
    for line, key in loader.duplicate_keys:
        builder.error(line, f"duplicate key {key!r} (YAML keeps only the last one)")
    rules = builder.build(document, now)
    errors = sorted(builder.errors, key=lambda problem: problem.line)
    if errors or rules is None:
        return None, errors, sorted(builder.warnings, key=lambda problem: problem.line)
    rules = replace(rules, version=content_version(text))
    return rules, errors, sorted(builder.warnings, key=lambda problem: problem.line)


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str, path: str) -> Problem:
    """The problem libyaml (or a constructor of ours) reports, at its line; a tab gets a hint."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    message = f"YAML syntax: {exc.problem or exc.context}"
    if exc.context and exc.context_mark is not None and exc.problem:
        message += f" ({exc.context} started at line {exc.context_mark.line + 1})"
    if mark is not None and _character_at(text, mark.line, mark.column) == "\t":
        message += "; indent with spaces, not tabs"
    return Problem(path, line, message)


def _character_at(text: str, line: int, column: int) -> str:
    """The character at 0-based ``line`` and ``column`` of ``text`` ("" past the end)."""
    lines = text.split("\n", line + 1)
    return lines[line][column : column + 1] if line < len(lines) else ""


def content_version(text: str) -> str:
    """The rules version shown by ``status``, ``fsrouter_rules_info`` and every routing trace: the first 12 hex
    digits of the file's SHA-256, so an operator can tell which edit of the file is live (``sha256sum``)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# --- YAML with line numbers -------------------------------------------------------------------------------


class _YamlMap(dict[Any, Any]):
    """A mapping that remembers the line of itself, of each key and of each value (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}
        self.value_lines: dict[Any, int] = {}


class _YamlList(list[Any]):
    """A sequence that remembers the line of itself and of each item (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


class _LineLoader(yaml.CSafeLoader):
    """libyaml's parser with PyYAML's safe constructors, bounded: nesting deeper than ``MAX_NESTING`` and any
    value a constructor cannot build (``!!int x``) are YAML errors at the value's line, never an exception."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicate_keys: list[tuple[int, str]] = []
        self.depth = 0

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        nested = isinstance(node, yaml.CollectionNode)
        if nested and self.depth >= MAX_NESTING:
            raise yaml.constructor.ConstructorError(
                None, None, f"nested deeper than {MAX_NESTING} levels", node.start_mark
            )
        self.depth += nested
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value: {_shown(str(exc))}", node.start_mark
            ) from exc
        finally:
            self.depth -= nested


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> _YamlMap:
    loader.flatten_mapping(node)
    mapping = _YamlMap(node.start_mark.line + 1)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool | date | None):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value, not a list or mapping", key_node.start_mark
            )
        if key in mapping:
            loader.duplicate_keys.append((key_node.start_mark.line + 1, str(key)))
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
        mapping.value_lines[key] = value_node.start_mark.line + 1
    return mapping


def _construct_list(loader: _LineLoader, node: yaml.SequenceNode) -> _YamlList:
    sequence = _YamlList(node.start_mark.line + 1)
    for item_node in node.value:
        sequence.append(loader.construct_object(item_node, deep=True))
        sequence.item_lines.append(item_node.start_mark.line + 1)
    return sequence


def _construct_int(loader: _LineLoader, node: yaml.ScalarNode) -> int | str:
    """Phone numbers stay text: YAML 1.1 would read ``+33612345678`` as 33612345678 and ``0612345670`` as octal.

    A number longer than ``MAX_NUMBER_CHARACTERS`` is a YAML error at its line."""
    text = loader.construct_scalar(node)
    if text.startswith("+") or (len(text) > 1 and text.startswith("0") and text[1].isdigit()):
        return text
    if len(text) > MAX_NUMBER_CHARACTERS:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"a number of {len(text)} characters is out of range (quote it if it is text)",
            node.start_mark,
        )
    value = yaml.SafeLoader.construct_yaml_int(loader, node)
    assert isinstance(value, int)
    return value


def _construct_timestamp(loader: _LineLoader, node: yaml.ScalarNode) -> date | datetime | str:
    """A date YAML cannot build (``2026-02-30``) stays text, for the reader of the key to report where it is."""
    try:
        value: date | datetime = yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        text: str = loader.construct_scalar(node)
        return text
    return value


_LineLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_list)


def _items(sequence: _YamlList) -> Iterable[tuple[int, int, Any]]:
    """(index, line, item) for each item of a YAML list."""
    for index, (item, line) in enumerate(zip(sequence, sequence.item_lines, strict=True)):
        yield index, line, item


def _kind(value: object) -> str:
    """How a YAML value reads to an operator, for "expected X, got Y" messages."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"text ({_shown(value)!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _shown(text: str) -> str:
    """``text`` cut to ``SHOWN_CHARACTERS`` for a problem's message."""
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"


# --- validation ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _References:
    """Names used by one part of the file, with where, to check once everything is defined."""

    queues: list[tuple[str, int, str]] = field(default_factory=list)  # (name, line, who refers to it)
    calendars: set[str] = field(default_factory=set)
    agents: list[tuple[str, int, str]] = field(default_factory=list)  # (agent id, line, who refers to it)


class _RulesBuilder:
    """Walks the YAML tree once, building core objects and collecting every problem on the way."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        self.refs = _References()
        self.timezone = "UTC"
        self.calendars: dict[str, Calendar] = {}
        self.vip_lists: dict[str, VipList] = {}
        self.regions: set[str] = set()
        self.queue_lines: dict[str, int] = {}
        #: the line of the last entry read: where an unexpected exception is reported
        self.at = 1

    def error(self, line: int, message: str) -> None:
        self.errors.append(Problem(self.path, line, message))

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(Problem(self.path, line, message, "warning"))

    # --- generic readers ---

    def mapping(self, value: object, line: int, what: str) -> _YamlMap | None:
        if isinstance(value, _YamlMap):
            return value
        self.error(line, f"{what} should be a mapping (key: value lines), got {_kind(value)}")
        return None

    def known_keys(self, mapping: _YamlMap, allowed: Iterable[str], what: str) -> None:
        allowed = tuple(allowed)
        for key in mapping:
            if key in allowed:
                continue
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            suggestion = (
                f"; did you mean {hint[0]!r}?" if hint else f" (expected one of: {', '.join(allowed)})"
            )
            self.error(mapping.key_lines[key], f"unknown key {key!r} in {what}{suggestion}")

    def text(self, mapping: _YamlMap, key: str, default: str, what: str) -> str:
        """A string setting; numbers are accepted (an extension ``5000`` is text to us)."""
        if key not in mapping:
            return default
        value = mapping[key]
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        self.error(mapping.value_lines[key], f"{what} {key} should be text, got {_kind(value)}")
        return default

    def number(self, mapping: _YamlMap, key: str, default: float, what: str) -> float:
        """A non-negative number of seconds, at most ``LARGEST_NUMBER``."""
        if key not in mapping:
            return default
        value = mapping[key]
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= LARGEST_NUMBER:
            return float(value)
        bound = _bounds(False, 0, LARGEST_NUMBER)
        self.error(mapping.value_lines[key], f"{what} {key} should be {bound}, got {_kind(value)}")
        return default

    def integer(
        self,
        mapping: _YamlMap,
        key: str,
        default: int,
        what: str,
        *,
        minimum: int = 0,
        maximum: int = LARGEST_NUMBER,
    ) -> int:
        if key not in mapping:
            return default
        value = mapping[key]
        if isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum:
            return value
        self.error(
            mapping.value_lines[key],
            f"{what} {key} should be a whole number from {minimum} to {maximum}, got {_kind(value)}",
        )
        return default

    def names(self, value: object, line: int, what: str) -> list[str]:
        """A name or a list of names (``region: north-west`` or ``region: [north-west, north-east]``)."""
        return [name for name, _ in self.located_names(value, line, what)]

    def located_names(self, value: object, line: int, what: str) -> list[tuple[str, int]]:
        """``names`` with the line of each, so a bad item of a long list is pointed at precisely."""
        items = zip(value, value.item_lines, strict=True) if isinstance(value, _YamlList) else [(value, line)]
        names: list[tuple[str, int]] = []
        for item, item_line in items:
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if isinstance(item, str) and item:
                names.append((item, item_line))
            else:
                self.error(item_line, f"{what} should be text or a list of text, got {_kind(item)}")
        return names

    def named_entries(self, document: _YamlMap, key: str) -> Iterable[tuple[str, int, _YamlMap]]:
        """(name, line, body) for each entry of a top-level ``name: {...}`` section."""
        if key not in document:
            return
        section = self.mapping(document[key], document.value_lines[key], key)
        if section is None:
            return
        for name, body in section.items():
            line = section.key_lines[name]
            self.at = line
            entry = self.mapping(body, section.value_lines[name], f"{key} {name!r}")
            if entry is not None:
                yield str(name), line, entry

    def list_entries(self, parent: _YamlMap, key: str, what: str, example: str) -> Iterable[tuple[int, int, _YamlMap]]:
        """(index, line, body) for each mapping of the list ``parent[key]`` (``agents:``, ``routes:``, ...).

        ``what`` names the list in problems (``agents``, ``queue 'support' escalation``); ``example`` shows
        its first line (``- id: ...``).
        """
        if key not in parent:
            return
        value = parent[key]
        if not isinstance(value, _YamlList):
            self.error(parent.value_lines[key], f"{what} should be a list ({example}), got {_kind(value)}")
            return
        for index, line, item in _items(value):
            self.at = line
            body = self.mapping(item, line, f"{what}[{index}]")
            if body is not None:
                yield index, line, body

    # --- the declared keys of queues, agents and routes ---

    def declared(self, cls: type, body: _YamlMap, what: str) -> dict[str, Any] | None:
        """The keys of ``body`` declared on ``cls`` (``core/rule_keys.py``), validated: field name -> value.

        None when a required key is missing. A bad value is one problem at its line and leaves its field at
        the declared default; a key with a shape of its own is read by that shape's reader; a name that
        refers to something else (queue, calendar, agent) is checked now or once the whole file is read.
        """
        keys = declared_keys(cls)
        missing = [key.name for key in keys if key.required and key.name not in body]
        if missing:
            self.error(body.line, f"{what} needs {' and '.join(missing)}")
            return None
        shape_readers: dict[str, Callable[[_YamlMap, str], dict[str, Any]]] = {
            "escalation": self.escalation,
            "agent-queues": self.agent_queues,
        }
        values: dict[str, Any] = {}
        for key in keys:
            if key.name not in body:
                continue
            if key.spec.shape:
                values.update(shape_readers[key.spec.shape](body, what))
                continue
            try:
                value = rule_schema.key_adapter(cls, key.name).validate_python(body[key.name])
            except ValidationError as exc:
                for error in exc.errors():
                    self.error(_line_at(body, (key.name, *error["loc"])), _bad_value(key, what, error))
                continue
            values[key.name] = MappingProxyType(value) if isinstance(value, dict) else value
            if key.spec.refers_to:
                self.refer(key.spec.refers_to, value, body.value_lines[key.name], f"{what} {key.name}")
        return values

    def fits(self, text: str, slot: Slot, line: int, what: str) -> None:
        """``text`` goes into ``slot`` of a FreeSWITCH command line: an error if FreeSWITCH would misread it."""
        reason = unsafe_reason(text, slot)
        if reason is not None:
            self.error(line, f"{what} {_shown(text)!r} {reason}")

    def refer(self, kind: str, name: str, line: int, who: str) -> None:
        """Note (or check at once) that ``name`` must be a ``kind`` (``core.rule_keys.REFERENCE_KINDS``)."""
        if kind == "queue":
            self.refs.queues.append((name, line, who))
        elif kind == "queue-or-extension":
            self.refer_overflow(name, line, who)
        elif kind == "calendar":
            self.refer_calendar(name, line, who)
        elif kind == "agent":
            self.refs.agents.append((name, line, who))
        # "strategy": the key's type is the registry's names, already checked

    # --- the whole file ---

    def build(self, document: object, now: float) -> Rules | None:
        if document is None:
            self.error(1, "the file is empty; it needs at least 'version: 1' and one queue")
            return None
        top = self.mapping(document, 1, "the rules file")
        if top is None:
            return None
        self.known_keys(top, TOP_KEYS, "the rules file")
        self.check_version(top)
        if "timezone" in top:
            self.timezone = self.time_zone(top, "timezone", "UTC", "the rules file")
        default_region = self.country(top, "default_region", "FR", "the rules file")
        for name, line, body in self.named_entries(top, "calendars"):
            self.add_calendar(name, line, body)
        region_tables = self.region_tables(top)
        for name, line, body in self.named_entries(top, "vip"):
            self.add_vip_list(name, line, body)
        queues = self.queues(top)
        agents = self.agents(top)
        routes = self.routes(top)
        default_queue = self.text(top, "default_queue", "", "the rules file")
        if default_queue:
            self.refs.queues.append((default_queue, top.value_lines["default_queue"], "default_queue"))
        self.check_references(queues, agents)
        self.check_overflow_cycles(queues)
        self.check_queue_staffing(queues, agents)
        self.check_unused()
        return Rules(
            queues=MappingProxyType(queues),
            agents=tuple(agents),
            default_queue=default_queue or next(iter(queues), ""),
            routes=tuple(routes),
            calendars=MappingProxyType(self.calendars),
            vip_lists=MappingProxyType(self.vip_lists),
            region_tables=region_tables,
            timezone=self.timezone,
            default_region=default_region,
            source=self.path,
            loaded_at=now,
        )

    def check_version(self, top: _YamlMap) -> None:
        if "version" not in top:
            self.error(top.line, "missing 'version: 1' at the top of the file")
        elif top["version"] != 1 or isinstance(top["version"], bool):
            self.error(
                top.value_lines["version"],
                f"unsupported version {top['version']!r}: this fsrouter reads version 1 rules",
            )

    def time_zone(self, mapping: _YamlMap, key: str, default: str, what: str) -> str:
        name = self.text(mapping, key, default, what)
        try:
            zone(name)
        except ValueError as exc:
            self.error(mapping.value_lines[key], str(exc))
            return default
        return name

    def country(self, mapping: _YamlMap, key: str, default: str, what: str) -> str:
        if key not in mapping:
            return default
        value = mapping[key]
        if isinstance(value, str) and value.upper() in geo.COUNTRIES:
            return value.upper()
        hint = " (YAML reads a bare NO as false: quote it, 'NO')" if isinstance(value, bool) else ""
        self.error(
            mapping.value_lines[key], f"{what} {key}: {_kind(value)} is not a country code such as FR{hint}"
        )
        return default

    # --- calendars ---

    def add_calendar(self, name: str, line: int, body: _YamlMap) -> None:
        what = f"calendar {name!r}"
        self.known_keys(body, CALENDAR_KEYS, what)
        timezone = self.time_zone(body, "timezone", self.timezone, what)
        weekly = self.weekly_hours(body, what)
        country, subdiv = self.holiday_region(body, what)
        closed_dates: set[date] = set()
        if "closed_dates" in body:
            dates = body["closed_dates"]
            if not isinstance(dates, _YamlList):
                self.error(body.value_lines["closed_dates"], f"{what} closed_dates should be a list of dates")
            else:
                closed_dates = {
                    parsed
                    for _, item_line, item in _items(dates)
                    if (parsed := self.date_value(item, item_line, what)) is not None
                }
        self.calendars[name] = Calendar(
            name=name,
            timezone=timezone,
            weekly=MappingProxyType(weekly),
            holiday_country=country,
            holiday_subdiv=subdiv,
            closed_dates=frozenset(closed_dates),
            line=line,
        )

    def date_value(self, item: object, line: int, what: str) -> date | None:
        if isinstance(item, date) and not isinstance(item, datetime):
            return item
        reason = ""
        if isinstance(item, str):
            try:
                return date.fromisoformat(item)
            except ValueError as exc:
                reason = f": {exc}" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", item) else ""
        self.error(line, f"{what}: {_kind(item)} is not a date (YYYY-MM-DD){reason}")
        return None

    def weekly_hours(self, body: _YamlMap, what: str) -> dict[int, tuple[TimeRange, ...]]:
        """``hours: {mon-fri: "08:00-18:00", sat: [...]}``; a day named by two keys is ambiguous: an error."""
        if "hours" not in body:
            self.error(body.line, f"{what} has no 'hours' (e.g. mon-fri: \"08:00-18:00\")")
            return {}
        hours = self.mapping(body["hours"], body.value_lines["hours"], f"{what} hours")
        if hours is None:
            return {}
        weekly: dict[int, tuple[TimeRange, ...]] = {}
        first_key: dict[int, str] = {}
        for key, value in hours.items():
            key_line, value_line = hours.key_lines[key], hours.value_lines[key]
            try:
                days = parse_days(str(key))
            except ValueError as exc:
                self.error(key_line, f"{what}: {exc}")
                continue
            spans = self.day_ranges(value, value_line, what)
            for day in days:
                if day in first_key:
                    self.error(
                        key_line,
                        f"{what}: {WEEKDAYS[day]} is given twice ({first_key[day]!r} and {key!r}); "
                        "overlapping day keys are ambiguous",
                    )
                    continue
                first_key[day] = str(key)
                weekly[day] = spans
        return weekly

    def day_ranges(self, value: object, line: int, what: str) -> tuple[TimeRange, ...]:
        """One day's hours: a range, a list of ranges, or ``closed``."""
        if value == "closed":
            return ()
        spans = sorted(self.time_ranges(value, line, what), key=lambda span: span.start)
        for earlier, later in zip(spans, spans[1:], strict=False):
            if earlier.overlaps(later):
                self.error(line, f"{what}: time ranges {earlier} and {later} overlap")
        return tuple(spans)

    def time_ranges(self, value: object, line: int, what: str) -> list[TimeRange]:
        spans: list[TimeRange] = []
        for text, item_line in self.located_names(value, line, what):
            try:
                spans.append(TimeRange.parse(text))
            except ValueError as exc:
                self.error(item_line, f"{what}: {exc}")
        return spans

    def holiday_region(self, body: _YamlMap, what: str) -> tuple[str, str]:
        """``holidays: FR`` or ``holidays: {country: FR, subdiv: "57"}``."""
        if "holidays" not in body:
            return "", ""
        value, line = body["holidays"], body.value_lines["holidays"]
        if isinstance(value, str):
            country, subdiv = value, ""
        else:
            spec = self.mapping(value, line, f"{what} holidays")
            if spec is None:
                return "", ""
            self.known_keys(spec, ("country", "subdiv"), f"{what} holidays")
            country = self.country(spec, "country", "", f"{what} holidays")
            subdiv = self.text(spec, "subdiv", "", f"{what} holidays")
            if not country:
                if "country" not in spec:
                    self.error(line, f"{what} holidays needs a country")
                return "", ""
        try:
            check_holiday_region(country.upper(), subdiv)
        except ValueError as exc:
            self.error(line, f"{what}: {exc}")
            return "", ""
        return country.upper(), subdiv

    # --- regions and VIP lists ---

    def region_tables(self, top: _YamlMap) -> geo.RegionTables:
        """Shipped tables plus ``regions: {FR: {"0556": bordeaux}}``; remembers every region name."""
        extra: dict[str, dict[str, str]] = {}
        for country, line, table in self.named_entries(top, "regions"):
            if country.upper() not in geo.COUNTRIES:
                self.error(line, f"regions: {country!r} is not a country code such as FR")
                continue
            prefixes = extra.setdefault(country.upper(), {})
            for prefix, region in table.items():
                prefix_text = str(prefix)
                if not re.fullmatch(r"\+?[0-9]+", prefix_text):
                    self.error(
                        table.key_lines[prefix], f"regions {country}: prefix {prefix!r} should be digits"
                    )
                elif not isinstance(region, str) or not region:
                    self.error(
                        table.value_lines[prefix], f"regions {country}: {prefix_text} needs a region name"
                    )
                else:
                    prefixes[prefix_text] = region
        tables = geo.merge_region_tables(geo.DEFAULT_REGION_TABLES, extra)
        self.regions = {region for table in tables.values() for region in table.values()}
        return tables

    def add_vip_list(self, name: str, line: int, body: _YamlMap) -> None:
        """``vip: {gold: {priority: 10, numbers: ["+33612345678", "33*", "/^06/"]}}``."""
        what = f"vip list {name!r}"
        self.known_keys(body, VIP_KEYS, what)
        priority = self.integer(body, "priority", 10, what, minimum=1, maximum=1000)
        if "numbers" not in body:
            self.error(body.line, f"{what} has no 'numbers'")
            return
        patterns = self.patterns(body["numbers"], body.value_lines["numbers"], what)
        self.vip_lists[name] = VipList(name=name, patterns=patterns, priority=priority, line=line)

    def patterns(self, value: object, line: int, what: str) -> tuple[NumberPattern, ...]:
        patterns: list[NumberPattern] = []
        for text, item_line in self.located_names(value, line, what):
            try:
                patterns.append(NumberPattern.parse(text))
            except ValueError as exc:
                self.error(item_line, f"{what}: {exc}")
        return tuple(patterns)

    # --- queues ---

    def queues(self, top: _YamlMap) -> dict[str, QueueConfig]:
        if "queues" not in top:
            self.error(top.line, "no 'queues' defined; at least one queue is needed")
            return {}
        queues: dict[str, QueueConfig] = {}
        for name, line, body in self.named_entries(top, "queues"):
            self.queue_lines[name] = line
            queues[name] = self.queue(name, line, body)
        if not queues and isinstance(top["queues"], _YamlMap):
            self.error(top.value_lines["queues"], "no queue defined; at least one queue is needed")
        return queues

    def queue(self, name: str, line: int, body: _YamlMap) -> QueueConfig:
        what = f"queue {name!r}"
        queue_class = rule_schema.RULE_CLASSES.queue
        self.known_keys(body, [key.name for key in declared_keys(queue_class)], what)
        values = self.declared(queue_class, body, what) or {}
        if values.get("when_no_agents") == "overflow" and not values.get("overflow"):
            self.error(body.value_lines["when_no_agents"], f"{what}: when_no_agents: overflow needs 'overflow:'")
        return queue_class(name=name, line=line, **values)

    def refer_overflow(self, target: str, line: int, who: str) -> None:
        """An overflow target is an extension (digits) or must be a queue, checked once all are known."""
        if not EXTENSION.fullmatch(target):
            self.refs.queues.append((target, line, who))

    def refer_calendar(self, name: str, line: int, who: str) -> None:
        self.refs.calendars.add(name)
        if name not in self.calendars:
            self.error(line, f"{who}: unknown calendar {name!r}{self.hint(name, self.calendars)}")

    @staticmethod
    def hint(name: str, known: Iterable[str]) -> str:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        return f"; did you mean {close[0]!r}?" if close else ""

    def escalation(self, body: _YamlMap, what: str) -> dict[str, tuple[EscalationStep, ...]]:
        """``escalation:`` steps like ``{after: 30, widen: {min_level: 2}}`` or ``{after: 60, add_tier: 2}``.

        Each step does one thing (widen, add_tier or overflow); ``after`` (seconds waited) grows step by step.
        """
        steps: list[EscalationStep] = []
        for index, line, step in self.list_entries(body, "escalation", f"{what} escalation", "- after: ..."):
            step_what = f"{what} escalation[{index}]"
            self.known_keys(step, ESCALATION_KEYS, step_what)
            if "after" not in step:
                self.error(line, f"{step_what} needs 'after' (seconds of waiting)")
            after = self.number(step, "after", 0.0, step_what)
            if steps and after <= steps[-1].after:
                self.error(step.value_lines.get("after", line), f"{step_what}: 'after' must grow from step to step")
            effects = [key for key in ESCALATION_EFFECTS if key in step]
            if len(effects) != 1:
                self.error(line, f"{step_what} needs exactly one of {', '.join(ESCALATION_EFFECTS)}")
                continue
            min_level = 0
            if "widen" in step:
                widen = self.mapping(step["widen"], step.value_lines["widen"], f"{step_what} widen")
                if widen is not None:
                    self.known_keys(widen, ("min_level",), f"{step_what} widen")
                    min_level = self.integer(
                        widen, "min_level", 1, f"{step_what} widen", minimum=1, maximum=5
                    )
            overflow = self.text(step, "overflow", "", step_what)
            if overflow:
                self.refer_overflow(overflow, step.value_lines["overflow"], f"{step_what} overflow")
            steps.append(
                EscalationStep(
                    after=after,
                    min_level=min_level,
                    add_tier=self.integer(step, "add_tier", 0, step_what, minimum=1, maximum=9),
                    overflow=overflow,
                    line=line,
                )
            )
        return {"escalation": tuple(steps)}

    # --- agents ---

    def agents(self, top: _YamlMap) -> list[AgentConfig]:
        agents: list[AgentConfig] = []
        seen_ids: dict[str, int] = {}
        seen_endpoints: dict[str, int] = {}
        for index, _, body in self.list_entries(top, "agents", "agents", "- id: ..."):
            agent = self.agent(index, body)
            if agent is None:
                continue
            for value, seen, key in (
                (agent.id, seen_ids, "id"),
                (agent.endpoint, seen_endpoints, "endpoint"),
            ):
                if value in seen:
                    self.error(
                        body.value_lines[key],
                        f"duplicate agent {key} {value!r} (first at line {seen[value]})",
                    )
                else:
                    seen[value] = body.value_lines[key]
            agents.append(agent)
        return agents

    def agent(self, index: int, body: _YamlMap) -> AgentConfig | None:
        agent_class = rule_schema.RULE_CLASSES.agent
        agent_id = body.get("id")
        named = isinstance(agent_id, str | int) and not isinstance(agent_id, bool) and agent_id != ""
        what = f"agent {str(agent_id)!r}" if named else f"agents[{index}]"
        self.known_keys(body, [key.name for key in declared_keys(agent_class)], what)
        values = self.declared(agent_class, body, what)
        if values is None or "id" not in values or "endpoint" not in values:
            return None
        return agent_class(line=body.line, **values)

    def agent_queues(self, body: _YamlMap, what: str) -> dict[str, Any]:
        """``queues: [support, {sales: 2}]`` or ``queues: {support: 1, sales: 2}`` -> the agent's ``queues``
        (names, in order) and ``tiers`` (the queues whose tier is not 1)."""
        value, line = body["queues"], body.value_lines["queues"]
        entries: list[tuple[object, object, int]] = []
        if isinstance(value, _YamlMap):
            entries = [(queue, tier, value.key_lines[queue]) for queue, tier in value.items()]
        elif isinstance(value, _YamlList):
            for _, item_line, item in _items(value):
                if isinstance(item, _YamlMap):
                    entries.extend((queue, tier, item.key_lines[queue]) for queue, tier in item.items())
                else:
                    entries.append((item, 1, item_line))
        else:
            entries = [(value, 1, line)]
        tiers: dict[str, int] = {}
        for queue, tier, entry_line in entries:
            if not isinstance(queue, str) or not queue:
                self.error(entry_line, f"{what} queues: {_kind(queue)} is not a queue name")
            elif not isinstance(tier, int) or isinstance(tier, bool) or not 1 <= tier <= 9:
                self.error(entry_line, f"{what} queue {queue!r}: tier should be a whole number from 1 to 9")
            else:
                tiers[queue] = tier
                self.refs.queues.append((queue, entry_line, what))
        return {
            "queues": tuple(tiers),
            "tiers": MappingProxyType({queue: tier for queue, tier in tiers.items() if tier != 1}),
        }

    # --- routes ---

    def routes(self, top: _YamlMap) -> list[Route]:
        routes: list[Route] = []
        catch_all: Route | None = None
        for index, line, body in self.list_entries(top, "routes", "routes", "- when: ..."):
            route = self.route(index, line, body)
            if route is None:
                continue
            if catch_all is not None:
                self.warn(line, f"{route.label} is never reached: {catch_all.label} matches every call")
            elif "when" not in body:
                catch_all = route
            routes.append(route)
        return routes

    def route(self, index: int, line: int, body: _YamlMap) -> Route | None:
        route_class = rule_schema.RULE_CLASSES.route
        name = self.text(body, "name", "", f"routes[{index}]")
        label = f"routes[{index}]" + (f" {name!r}" if name else "") + f" (line {line})"
        route_keys = [key.name for key in declared_keys(route_class)]
        self.known_keys(body, ("name", "when", *route_keys, *ROUTE_ACTIONS), label)
        actions = [key for key in ROUTE_ACTIONS if key in body]
        if len(actions) != 1:
            found = f" (found {', '.join(actions)})" if actions else ""
            self.error(line, f"{label} needs exactly one action: {', '.join(ROUTE_ACTIONS)}{found}")
            return None
        action = actions[0]
        action_line = body.value_lines[action]
        target = ""
        if action == "reject":
            if body["reject"] is not True:
                self.error(action_line, f"{label}: write 'reject: true'")
        else:
            target = self.text(body, action, "", label)
            if action in ACTION_SLOTS:
                self.fits(target, ACTION_SLOTS[action], action_line, f"{label} {action}")
            if action == "queue":
                self.refs.queues.append((target, action_line, label))
            elif action == "overflow":
                self.refer_overflow(target, action_line, label)
        if action not in ("queue", "overflow") and any(key in body for key in route_keys):
            self.error(line, f"{label}: {', '.join(route_keys)} only apply to queue and overflow actions")
        condition: Condition = AllOf(())
        if "when" in body:
            condition = self.condition_list(body["when"], body.value_lines["when"], f"{label} when", depth=0)
        values = self.declared(route_class, body, label) or {}
        return route_class(
            label=label, condition=condition, action=RouteAction(action), target=target, line=line, **values
        )

    def condition_list(self, value: object, line: int, what: str, *, depth: int) -> Condition:
        """A mapping (each key one condition) or a list of mappings: all of them must hold."""
        if depth > MAX_CONDITION_DEPTH:
            self.error(line, f"{what}: conditions nested deeper than {MAX_CONDITION_DEPTH} levels")
            return AllOf(())
        if isinstance(value, _YamlList):
            parts = [
                self.condition_list(item, item_line, what, depth=depth + 1)
                for _, item_line, item in _items(value)
            ]
        else:
            mapping = self.mapping(value, line, what)
            if mapping is None:
                return AllOf(())
            if not mapping:
                self.error(line, f"{what} is empty; leave 'when' out to match every call")
            self.known_keys(mapping, CONDITION_KEYS, what)
            parts = [
                self.condition(str(key), mapping[key], mapping.value_lines[key], what, depth)
                for key in mapping
                if key in CONDITION_KEYS
            ]
        return parts[0] if len(parts) == 1 else AllOf(tuple(parts))

    def condition(self, key: str, value: object, line: int, what: str, depth: int) -> Condition:
        what = f"{what} {key}"
        if key == "not":
            return Not(self.condition_list(value, line, what, depth=depth + 1))
        if key in ("all", "any"):
            if not isinstance(value, _YamlList) or not value:
                self.error(line, f"{what} should be a non-empty list of conditions")
                return AllOf(())
            parts = tuple(
                self.condition_list(item, item_line, what, depth=depth + 1)
                for _, item_line, item in _items(value)
            )
            return AllOf(parts) if key == "all" else AnyOf(parts)
        return self.simple_condition(key, value, line, what)

    def simple_condition(self, key: str, value: object, line: int, what: str) -> Condition:
        if key in ("destination", "caller"):
            return NumberMatches(
                "caller" if key == "caller" else "destination", self.patterns(value, line, what)
            )
        if key == "variable":
            return self.variable_condition(value, line, what)
        if key in ("open", "closed"):
            calendars = self.names(value, line, what)
            if len(calendars) == 1:
                self.refer_calendar(calendars[0], line, what)
                if calendars[0] in self.calendars:
                    return CalendarIs(self.calendars[calendars[0]], want_open=key == "open")
            elif calendars:
                self.error(line, f"{what} takes one calendar name")
            return AllOf(())
        if key == "time":
            return TimeOfDay(tuple(self.time_ranges(value, line, what)), self.timezone)
        if key == "days":
            return DayOfWeek(frozenset(self.days(value, line, what)), self.timezone)
        if key == "vip":
            names = self.names(value, line, what)
            for name in names:
                if name not in self.vip_lists:
                    self.error(line, f"{what}: unknown vip list {name!r}{self.hint(name, self.vip_lists)}")
            return AnyOf(tuple(InVipList(self.vip_lists[name]) for name in names if name in self.vip_lists))
        return self.value_condition(key, value, line, what)

    def value_condition(self, key: str, value: object, line: int, what: str) -> Condition:
        """``country``, ``region``, ``number_type``, ``ivr``: a value or a list, each checked if it can be."""
        if key == "country" and isinstance(value, bool):
            self.error(line, f"{what}: YAML reads a bare NO/YES as a boolean; quote the country code ('NO')")
            return AllOf(())
        names = self.names(value, line, what)
        if key == "ivr":
            return VariableIs(IVR_VARIABLE, frozenset(names))
        known: Mapping[str, frozenset[str]] = {
            "country": geo.COUNTRIES,
            "region": frozenset(self.regions),
            "number_type": geo.NUMBER_TYPE_NAMES,
        }
        normalised = [name.upper() if key == "country" else name for name in names]
        for name in normalised:
            if name not in known[key]:
                self.error(
                    line, f"{what}: unknown {key.replace('_', ' ')} {name!r}{self.hint(name, known[key])}"
                )
        if key == "country":
            return CountryIs(frozenset(normalised))
        if key == "region":
            return RegionIs(frozenset(normalised))
        return NumberTypeIs(frozenset(normalised))

    def variable_condition(self, value: object, line: int, what: str) -> Condition:
        """``variable: {fsrouter_lang: fr}`` (several names: all must match; a list of values: any one)."""
        mapping = self.mapping(value, line, what)
        if mapping is None or not mapping:
            if mapping is not None:
                self.error(line, f"{what} needs at least one name: value")
            return AllOf(())
        parts = tuple(
            VariableIs(str(name), frozenset(self.names(wanted, mapping.value_lines[name], f"{what} {name}")))
            for name, wanted in mapping.items()
        )
        return parts[0] if len(parts) == 1 else AllOf(parts)

    def days(self, value: object, line: int, what: str) -> set[int]:
        days: set[int] = set()
        for text, item_line in self.located_names(value, line, what):
            try:
                days.update(parse_days(text))
            except ValueError as exc:
                self.error(item_line, f"{what}: {exc}")
        return days

    # --- cross-checks, once everything is defined ---

    def check_references(self, queues: Mapping[str, QueueConfig], agents: list[AgentConfig]) -> None:
        for name, line, who in self.refs.queues:
            if name not in queues:
                self.error(line, f"{who}: unknown queue {name!r}{self.hint(name, queues)}")
        agent_ids = {agent.id for agent in agents}
        for agent_id, line, who in self.refs.agents:
            if agent_id not in agent_ids:
                self.error(line, f"{who}: unknown agent {agent_id!r}{self.hint(agent_id, agent_ids)}")

    def check_overflow_cycles(self, queues: Mapping[str, QueueConfig]) -> None:
        """A caller must not bounce between queues forever: overflow and escalation edges form no cycle."""
        edges = {
            name: [
                target
                for target in (queue.overflow, *(step.overflow for step in queue.escalation))
                if target in queues
            ]
            for name, queue in queues.items()
        }
        reported: set[frozenset[str]] = set()
        for start in queues:
            cycle = _find_cycle(start, edges)
            if cycle and frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                self.error(self.queue_lines[start], f"overflow cycle: {' → '.join([*cycle, cycle[0]])}")

    def check_queue_staffing(self, queues: Mapping[str, QueueConfig], agents: list[AgentConfig]) -> None:
        """Every queue has agents, with every skill it requires, on shift whenever the queue is open."""
        members_of: dict[str, list[AgentConfig]] = {name: [] for name in queues}
        for agent in agents:
            for name in agent.queues:
                members_of.get(name, []).append(agent)
        for name, queue in queues.items():
            members = members_of[name]
            line = self.queue_lines[name]
            if not members:
                self.warn(
                    line, f"queue {name!r} has no agents; its callers can only wait, time out or overflow"
                )
                continue
            for skill in queue.skills:
                if not any(skill in agent.skills for agent in members):
                    self.error(line, f"queue {name!r} requires skill {skill!r} but none of its agents has it")
            self.check_shift_coverage(queue, members, line)

    def check_shift_coverage(self, queue: QueueConfig, members: list[AgentConfig], line: int) -> None:
        shifts = [self.calendars.get(agent.shift) for agent in members if agent.shift]
        if not shifts or len(shifts) < len(members) or None in shifts:
            return  # someone is always on duty, or a shift name is already reported as unknown
        opening = self.calendars.get(queue.calendar)
        open_spans = opening.week_spans() if opening else ALWAYS
        zones = {calendar.timezone for calendar in shifts if calendar} | (
            {opening.timezone} if opening else set()
        )
        if len(zones) > 1:
            self.warn(
                line, f"queue {queue.name!r}: shift coverage not checked across time zones {sorted(zones)}"
            )
            return
        gaps = week_gaps(
            open_spans, (span for calendar in shifts if calendar for span in calendar.week_spans())
        )
        if gaps:
            shown = ", ".join(
                f"{format_week_minute(gap.start)} to {format_week_minute(gap.end)}" for gap in gaps[:3]
            )
            more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
            self.error(line, f"queue {queue.name!r} is open with no agent on shift: {shown}{more}")

    def check_unused(self) -> None:
        """Calendars nobody refers to are likely a typo elsewhere (VIP lists are always used: they set priority)."""
        for name, calendar in self.calendars.items():
            if name not in self.refs.calendars:
                self.warn(calendar.line, f"calendar {name!r} is never used")


def _find_cycle(start: str, edges: Mapping[str, list[str]]) -> list[str]:
    """The first cycle through ``start`` (as a path starting there), or [] when there is none."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    while stack:
        node, path = stack.pop()
        for target in edges.get(node, []):
            if target == start:
                return path
            if target not in path:
                stack.append((target, [*path, target]))
    return []


def _line_at(mapping: _YamlMap, path: Iterable[str | int]) -> int:
    """The line of the value at ``path`` (keys and list indexes) below ``mapping``, or of the nearest parent."""
    node: object = mapping
    line = mapping.line
    for part in path:
        if isinstance(node, _YamlMap) and part in node:
            line, node = node.value_lines[part], node[part]
        elif isinstance(node, _YamlList) and isinstance(part, int) and 0 <= part < len(node):
            line, node = node.item_lines[part], node[part]
        else:
            break
    return line


def _bad_value(key: DeclaredKey, what: str, error: Mapping[str, Any]) -> str:
    """The operator's message for one validation ``error`` (pydantic's) of declared ``key``, said from what the
    declaration expects: ``queue 'support' max_wait should be a number >= 0, got text ('ten minutes')``."""
    spec, value, name = key.spec, error["input"], key.name
    if isinstance(value, str) and value and spec.esl_slot is not None:
        reason = unsafe_reason(value, spec.esl_slot)
        if reason is not None:
            return f"{what} {name} {_shown(value)!r} {reason}"
    if isinstance(value, str) and value:
        if spec.refers_to == "strategy":
            known = sorted(STRATEGIES)
            return f"{what}: unknown strategy {value!r}{_RulesBuilder.hint(value, known)} (known: {', '.join(known)})"
        if spec.choices:
            return f"{what} {name} {_shown(value)!r} is not one of: {', '.join(spec.choices)}"
        if spec.pattern:
            return f"{what} {name} {_shown(value)!r} should be {spec.pattern_meaning}"
    expected = rule_schema.base_type(key)
    if expected is str:
        return f"{what} {name} should be text, got {_kind(value)}"
    maximum = spec.maximum
    if maximum is None and isinstance(value, int | float) and not value <= LARGEST_NUMBER:  # nan too
        maximum = LARGEST_NUMBER
    if expected is float:
        return f"{what} {name} should be {_bounds(False, spec.minimum, maximum)}, got {_kind(value)}"
    if expected is int:
        return f"{what} {name} should be {_bounds(True, spec.minimum, maximum)}, got {_kind(value)}"
    if error["loc"]:
        entry = name.removesuffix("s")
        level = _bounds(True, spec.minimum, spec.maximum)
        return f"{what} {entry} {error['loc'][0]!r}: level should be {level}, got {_kind(value)}"
    return f"{what} {name} should be a mapping (key: value lines), got {_kind(value)}"


def _bounds(whole: bool, minimum: float | None, maximum: float | None) -> str:
    """``a number >= 0``, ``between 0 and 1``, ``a whole number from 1 to 5``, ``a whole number >= 0``."""
    kind = "a whole number" if whole else "a number"
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum:g} to {maximum:g}" if whole else f"between {minimum:g} and {maximum:g}"
    return f"{kind} >= {minimum:g}" if minimum is not None else kind
