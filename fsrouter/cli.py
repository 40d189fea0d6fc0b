"""The ``fsrouter`` command: the only user interface.

Errors are one clear line on stderr and a non-zero exit code, never a traceback (``--debug`` shows it).
Commands that talk to a running daemon go through the control socket; ``--json`` gives machine-readable output.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from fsrouter import __version__
from fsrouter.config.settings import Settings, setting_fields
from fsrouter.errors import ActionRefused, ConfigError, ControlError, FsrouterError, StoreError

log = logging.getLogger("fsrouter")

#: where the shipped unit (systemd/fsrouter.service) has the daemon put its files: RuntimeDirectory= and
#: StateDirectory=. An operator's shell has neither variable set, so the CLI looks there too.
SYSTEM_CONTROL_SOCKET = "/run/fsrouter/fsrouter.sock"
SYSTEM_DB = "/var/lib/fsrouter/fsrouter.db"


def setting_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """click options derived from the Settings declarations (env var ``FSROUTER_<NAME>``)."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        for name, default, meta in reversed(setting_fields()):
            if names and name not in names:
                continue
            flag = "--" + name.replace("_", "-")
            if isinstance(default, bool):
                flag = f"{flag}/--no-{name.replace('_', '-')}"
            function = click.option(
                flag,
                name,
                default=default,
                show_default=default != "",  # an empty default is computed (``--instance``): its help says how
                multiple=meta["multiple"],
                metavar=meta["metavar"],
                help=meta["help"],
                envvar=f"FSROUTER_{name.upper()}",
                show_envvar=True,
                type=type(default) if not meta["multiple"] and not isinstance(default, bool) else None,
            )(function)
        return function

    return decorate


def configure_logging(level_spec: str) -> None:
    """``info`` or ``info,fsrouter.adapters.esl=debug``: a default level plus per-component levels."""
    from fsrouter import systemd

    default, *overrides = [part.strip() for part in level_spec.split(",") if part.strip()] or ["info"]
    timestamp = "" if systemd.under_systemd() else "%(asctime)s "
    logging.basicConfig(level=default.upper(), format=f"{timestamp}%(levelname)s %(name)s: %(message)s")
    for override in overrides:
        component, _, level = override.partition("=")
        logging.getLogger(component).setLevel(level.upper())


def installed_path(default: str, system: str) -> str:
    """``default`` (the daemon's own default), unless only the systemd unit's file exists."""
    if not os.path.exists(default) and os.path.exists(system):
        return system
    return default


class FsrouterGroup(click.Group):
    """Turns every error into one line and exit code 1; ``--debug`` lets the traceback through."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # usage errors (exit 2), --help, Ctrl-C: click reports them itself
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(one_line_error(exc), err=True)
            sys.exit(1)


def one_line_error(exc: Exception) -> str:
    """A located rules error reads like ``fsrouter check`` (``PATH:LINE: error: …``); a bug says it is one."""
    if isinstance(exc, ConfigError) and exc.path is not None:
        return str(exc)
    if isinstance(exc, FsrouterError | OSError):
        return f"fsrouter: {exc}"
    return f"fsrouter: internal error: {type(exc).__name__}: {exc} (--debug shows the traceback)"


class IsoTime(click.ParamType[float]):
    """An ISO 8601 date or date-time on the command line, as a POSIX timestamp (local time if no zone)."""

    name = "ISO-TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            return datetime.fromisoformat(str(value)).timestamp()
        except ValueError:
            self.fail(f"{value!r} is not an ISO date or date-time (e.g. 2026-03-01 or 2026-03-01T08:00)", param, ctx)


@click.group(cls=FsrouterGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(__version__, prog_name="fsrouter")
def main(debug: bool) -> None:
    """fsrouter: ACD call routing for FreeSWITCH."""


@main.command()
@setting_options()
def run(**options: Any) -> None:
    """Run the daemon (see also systemd/fsrouter.service)."""
    from fsrouter.daemon import Daemon

    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in options.items()}
    try:
        settings = Settings(**values)
    except ConfigError as exc:  # a flag or FSROUTER_* value out of range: a usage error, in one line
        click.echo(f"fsrouter run: {exc}", err=True)
        sys.exit(2)
    configure_logging(settings.log_level)
    try:
        Daemon(settings).run()
    except FsrouterError:
        raise
    except Exception:
        log.exception("fsrouter crashed")  # the journal keeps the traceback; the terminal gets one line
        raise


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
def check(path: str) -> None:
    """Validate a rules file: one `PATH:LINE: error|warning: message` line per problem."""
    from fsrouter.config.rules_loader import check_file

    try:
        errors, warnings = check_file(path)
    except OSError as exc:
        click.echo(f"{path}: error: cannot read: {exc.strerror or exc}", err=True)
        sys.exit(2)
    for problem in [*errors, *warnings]:
        click.echo(str(problem), err=True)
    if errors:
        sys.exit(1)
    click.echo(f"{path}: ok ({len(warnings)} warnings)")


@main.command()
def schema() -> None:
    """Print the JSON Schema of the rules file, for editors (yaml-language-server's `# yaml-language-server:
    $schema=...` line; the repository ships a copy in schema/routing-rules.schema.json)."""
    from fsrouter.config.rule_schema import schema_text

    click.echo(schema_text(), nl=False)


@main.command()
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds to run in all, the drain included (default: until Ctrl-C).",
)
@click.option(
    "--agents",
    type=click.IntRange(min=1),
    default=None,
    help="Agents: the first N the rules declare, one simulated phone each (default: 6 of the demo rules' 20, "
    "all of a --rules file's).",
)
@click.option(
    "--callers-per-minute",
    type=click.FloatRange(min=0, min_open=True, max=6000),
    default=30.0,
    show_default=True,
    help="Simulated call rate.",
)
@click.option("--rules", type=click.Path(dir_okay=False), default=None, help="Rules file (default: demo rules).")
@click.option("--db", type=click.Path(dir_okay=False), default=None, help="SQLite file (default: a temp file).")
@click.option("--metrics-listen", default="127.0.0.1:9464", show_default=True, help="/metrics HOST:PORT.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed of the simulated traffic.")
@click.option("--log-level", default="warning", show_default=True)
def demo(**options: Any) -> None:
    """Route simulated calls through the built-in FreeSWITCH simulator, with a live status view."""
    from fsrouter.demo import run_demo

    configure_logging(options.pop("log_level"))
    run_demo(**options)


def control_option(function: Callable[..., Any]) -> Callable[..., Any]:
    default = dict((name, value) for name, value, _ in setting_fields())["control_socket"]
    function = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(function)
    return click.option(
        "--control-socket",
        default=None,
        show_default=f"{default}, else {SYSTEM_CONTROL_SOCKET}",
        envvar="FSROUTER_CONTROL_SOCKET",
        help="The daemon's control socket.",
    )(function)


def ask(control_socket: str | None, command: str, **args: Any) -> Any:
    from fsrouter.control import ControlClient

    path = control_socket or installed_path(Settings().control_socket, SYSTEM_CONTROL_SOCKET)
    return ControlClient(path).request(command, **args)


def emit(result: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    click.echo(json.dumps(result, indent=2, sort_keys=True, default=str) if as_json else render(result))


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain text table: fixed columns, one row per line."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(row[i]) for row in cells]) for i, column in enumerate(columns)]
    lines = ["  ".join(column.upper().ljust(width) for column, width in zip(columns, widths, strict=True))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items() if v)
    return "" if value is None else str(value)


def render_status(status: dict[str, Any]) -> str:
    nodes = " ".join(f"{name}={'up' if up else 'DOWN'}" for name, up in status["nodes"].items())
    loaded = datetime.fromtimestamp(status["rules"]["loaded_at"]).isoformat(timespec="seconds")
    head = [
        f"fsrouter {status['version']}  up {status['uptime_seconds']:.0f}s  {'DRAINING' if status['draining'] else ''}",
        f"rules {status['rules']['path']} version {status['rules']['version']} loaded {loaded}",
        f"nodes {nodes}",
        render_store(status["store"]),
        "",
    ]
    return "\n".join(head) + table(
        status["queues"], ["name", "strategy", "waiting", "offering", "talking", "agents", "unregistered"]
    )


def render_store(store: dict[str, Any]) -> str:
    """One line: the call store's path and state, and its store commands waiting to be written and dropped."""
    if store["failing"]:
        state = f"FAILING for {store['failing_seconds']:.0f}s: {store['error']}"
    else:
        state = "catching up" if store["backlog"] else "ok"
    return f"store {store['path']} {state} (waiting {store['backlog']}, dropped {store['dropped']})"


@main.command()
@control_option
def status(control_socket: str | None, as_json: bool) -> None:
    """Nodes, queues (waiting, agents by state), rules version and uptime of the running daemon."""
    emit(ask(control_socket, "status"), as_json, render_status)


@main.command()
@click.option("--dry-run", is_flag=True, help="Validate and show the diff without applying it.")
@control_option
def reload(control_socket: str | None, as_json: bool, dry_run: bool) -> None:
    """Validate the rules file and swap it in; on any error the old rules stay."""
    diff = ask(control_socket, "reload", dry_run=dry_run)
    emit(diff, as_json, lambda d: "\n".join(f"{key}: {_cell(value) or '-'}" for key, value in d.items()))


@main.command()
@control_option
def queues(control_socket: str | None, as_json: bool) -> None:
    """Queues of the running daemon."""
    emit(ask(control_socket, "queues"), as_json, lambda rows: table(rows, ["name", "strategy", "waiting", "agents"]))


@main.command()
@control_option
def agents(control_socket: str | None, as_json: bool) -> None:
    """Agents of the running daemon and their state."""
    columns = ["id", "endpoint", "state", "registered", "queues", "calls_answered", "call_uuid"]
    emit(ask(control_socket, "agents"), as_json, lambda rows: table(rows, columns))


@main.command()
@control_option
def calls(control_socket: str | None, as_json: bool) -> None:
    """Live calls with their state and wait."""
    columns = ["uuid", "queue", "state", "waited", "on_hold", "priority", "caller_number", "agent"]
    emit(ask(control_socket, "calls"), as_json, lambda rows: table(rows, columns))


@main.command()
@click.argument("action", type=click.Choice(["login", "logout", "break", "ready"]))
@click.argument("agent_id")
@click.option("--now", "cancel_ring", is_flag=True, help="A break or logout while the phone rings cancels the ring.")
@control_option
def agent(control_socket: str | None, as_json: bool, action: str, agent_id: str, cancel_ring: bool) -> None:
    """Log an agent in or out, put it on break, or make it ready.

    Says what the daemon did: applied, pending until the ring or the call ends (a break or logout while the
    agent rings or talks), or refused with the reason (exit status 1)."""
    outcome = ask(control_socket, "agent", agent=agent_id, action=action, cancel_ring=cancel_ring)
    line = f"{agent_id}: {render_outcome(outcome)}"
    if outcome["result"] != "refused":
        emit(outcome, as_json, lambda _: line)
        return
    if as_json:
        emit(outcome, as_json, lambda _: line)
    raise ActionRefused(line)


def render_outcome(outcome: dict[str, Any]) -> str:
    """``break pending until the call ends``, ``break applied: already on break`` (``core.commands.ActionOutcome``)."""
    from fsrouter.core.commands import ActionOutcome

    return ActionOutcome(**outcome).describe()


@main.command()
@click.argument("call_uuid")
@control_option
def explain(control_socket: str | None, as_json: bool, call_uuid: str) -> None:
    """Why a call went where it went: the routing decisions recorded for it."""
    traces = ask(control_socket, "explain", call=call_uuid)
    if not traces and not as_json:
        raise ControlError(f"no routing decision recorded for call {call_uuid}")
    emit(traces, as_json, lambda items: "\n".join(render_trace(trace) for trace in items))


def render_trace(trace: dict[str, Any]) -> str:
    """One decision: its plain fields on one line, then one indented line per list (candidates, excluded, …).

    Generic on purpose: the trace's fields belong to ``core/explain.py`` and may grow.
    """
    plain = [f"{key}={_trace_value(key, value)}" for key, value in trace.items() if not isinstance(value, list | dict)]
    nested = [f"  {key}: {_trace_value(key, value)}" for key, value in trace.items() if isinstance(value, list | dict)]
    return "\n".join([" ".join(plain), *nested])


#: trace fields that are instants (epoch seconds), shown in local time
_INSTANTS = frozenset({"at", "until"})


def _trace_value(key: str, value: Any) -> str:
    if key in _INSTANTS and isinstance(value, int | float):
        shown = datetime.fromtimestamp(value).isoformat(timespec="seconds" if key == "until" else "milliseconds")
        return shown if key == "at" else f"{shown} ({_from_now(value)})"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return " ".join(f"{k}={_trace_value(k, v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return "; ".join(_trace_value(key, item) for item in value) or "-"
    return "-" if value is None or value == "" else str(value)


def _from_now(instant: float) -> str:
    """``in 12 s`` or ``12 s ago``, from this process's clock."""
    seconds = round(instant - time.time())
    return f"in {seconds} s" if seconds >= 0 else f"{-seconds} s ago"


@main.command()
@click.option("--db", default=None, show_default=f"fsrouter.db, else {SYSTEM_DB}", help="SQLite call store.")
@click.option("--since", type=IsoTime(), default=None, help="Start (ISO date/time; default: 24 hours ago).")
@click.option("--until", type=IsoTime(), default=None, help="End (ISO date/time; default: now).")
@click.option("--by", type=click.Choice(["queue", "agent"]), default="queue", show_default=True)
@click.option("--csv", "as_csv", is_flag=True, help="CSV output.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def report(db: str | None, since: float | None, until: float | None, by: str, as_csv: bool, as_json: bool) -> None:
    """Per-queue or per-agent call report from the store (works without the daemon): every outcome, and the KPIs
    as /metrics computes them (docs/kpi.md), with the thresholds each call's queue had."""
    import csv
    import time

    from fsrouter.adapters.store import SqliteCallStore

    db = db or installed_path(Settings().db, SYSTEM_DB)
    end = until if until is not None else time.time()
    start = since if since is not None else end - 86400
    if start > end:
        raise click.BadParameter("--since is after --until: the range is empty", param_hint="--since/--until")
    if as_csv and as_json:
        raise click.UsageError("--csv and --json cannot be combined: choose one output format")
    if not os.path.exists(db):
        raise StoreError(f"no call store at {db}")
    store = SqliteCallStore(db)
    try:
        rows = store.report(since=start, until=end, by=by)
    finally:
        store.close()
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else [by])
        writer.writeheader()
        writer.writerows(rows)
        return
    emit(rows, as_json, lambda r: table([_report_cells(row) for row in r], report_columns(by)))


#: the report table's columns after the group and the outcomes (``report_columns``)
REPORT_KPIS = (
    "short_abandoned",
    "service_level",
    "abandon_rate",
    "overflow_rate",
    "asa_seconds",
    "aht_seconds",
    "avg_wait_seconds",
    "max_wait_seconds",
    "avg_talk_seconds",
    "avg_hold_seconds",
    "avg_wrapup_seconds",
)


def report_columns(by: str) -> list[str]:
    """The report table's columns: the group ``by``, calls offered, every outcome, then the KPIs
    (``CallStore.report``). The outcomes come from the core, imported here: ``--help`` need not load it."""
    from fsrouter.core.commands import OUTCOMES

    return [by, "offered", *OUTCOMES, *REPORT_KPIS]


#: report columns that are ratios (0 to 1), shown with three decimals
_REPORT_RATIOS = frozenset({"service_level", "abandon_rate", "overflow_rate"})


def _report_cells(row: dict[str, Any]) -> dict[str, Any]:
    return {key: f"{value:.3f}" if key in _REPORT_RATIOS and value is not None else value for key, value in row.items()}


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def version(as_json: bool) -> None:
    """Print this CLI's version (``status`` shows the running daemon's)."""
    emit({"version": __version__}, as_json, lambda v: f"fsrouter {v['version']}")
