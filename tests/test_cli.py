"""The ``fsrouter`` command without a daemon: help, ``check``, ``report`` and the one-line errors."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import fields
from datetime import datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from fsrouter import cli
from fsrouter.adapters.store import SqliteCallStore
from fsrouter.cli import main, render_trace
from fsrouter.config.settings import Settings
from fsrouter.core.commands import CallRecord, RecordCall

REPO = Path(__file__).resolve().parent.parent
SHIPPED_RULES = REPO / "routing-rules.yaml"
BROKEN = REPO / "tests" / "fixtures" / "rules" / "broken"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def command_paths(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command of the CLI, nested groups included."""
    paths = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            paths += command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


def assert_one_clear_line(result: Result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.output


def test_run_help_names_the_environment_variable_of_every_setting() -> None:
    """The README sends operators to ``fsrouter run --help`` for the FSROUTER_* variables."""
    result = invoke("run", "--help")

    assert result.exit_code == 0
    for setting in fields(Settings):
        assert f"FSROUTER_{setting.name.upper()}" in result.stdout, setting.name


@pytest.mark.parametrize("flag", [["--tick", "-1"], ["--tick", "0"], ["--grace", "-5"]])
def test_run_with_a_duration_out_of_range_is_a_one_line_usage_error(flag: list[str]) -> None:
    result = invoke("run", *flag)

    assert result.exit_code == 2, result.output
    assert result.stderr == f"fsrouter run: {flag[0]} {float(flag[1])!r}: expected a number of seconds " + (
        ">= 0\n" if flag[0] == "--grace" else "> 0\n"
    )


@pytest.mark.parametrize("path", command_paths(), ids=lambda path: " ".join(path) or "fsrouter")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = invoke(*path, "--help")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")


def test_version_matches_the_package() -> None:
    from fsrouter import __version__

    assert invoke("version").stdout == f"fsrouter {__version__}\n"
    assert __version__ in invoke("--version").stdout
    assert json.loads(invoke("version", "--json").stdout) == {"version": __version__}


# --- check -------------------------------------------------------------------------------------------------


def test_check_accepts_the_shipped_rules() -> None:
    result = invoke("check", str(SHIPPED_RULES))

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{SHIPPED_RULES}: ok")
    assert ": error: " not in result.stderr


@pytest.mark.parametrize("name", ["bad-regex", "yaml-syntax", "overflow-cycle"])
def test_check_prints_each_error_at_its_line_and_exits_1(name: str) -> None:
    path = BROKEN / f"{name}.yaml"
    expected_line = path.read_text().splitlines()[0].removeprefix("# expect: ").split(":")[0]

    result = invoke("check", str(path))

    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert errors and all(line.startswith(f"{path}:") for line in errors), result.stderr
    assert any(line.startswith(f"{path}:{expected_line}: error: ") for line in errors), result.stderr
    assert result.stdout == ""


def test_check_with_warnings_only_exits_0(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nqueues:\n  support: {}\n  sales: {}\nagents:\n"
        "  - id: agent-1000\n    endpoint: user/1000\n    queues: [support]\n"
    )

    result = invoke("check", str(rules))

    assert result.exit_code == 0, result.stderr
    assert f"{rules}:4: warning: " in result.stderr
    assert "(1 warnings)" in result.stdout


def test_check_of_a_missing_file_is_exit_2_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    result = invoke("check", str(missing))

    assert result.exit_code == 2
    assert result.stderr == f"{missing}: error: cannot read: No such file or directory\n"


def test_check_without_a_path_is_a_usage_error() -> None:
    assert invoke("check").exit_code == 2


# --- talking to a daemon that is not there -------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["status"], ["reload"], ["agents", "--json"], ["agent", "break", "agent-1000"], ["explain", "x"]]
)
def test_without_a_daemon_each_command_says_so_in_one_line(command: list[str], tmp_path: Path) -> None:
    result = invoke(*command, "--control-socket", str(tmp_path / "fsrouter.sock"))

    assert_one_clear_line(result, "not running")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = invoke("--debug", "status", "--control-socket", str(tmp_path / "fsrouter.sock"))

    assert result.exit_code == 1
    assert type(result.exception).__name__ == "ControlError"


def test_without_socket_option_the_systemd_runtime_socket_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's shell has no RUNTIME_DIRECTORY: the unit's /run/fsrouter/fsrouter.sock is found anyway."""
    installed = tmp_path / "run" / "fsrouter.sock"
    installed.parent.mkdir()
    installed.write_text("")  # not a socket: the error names the path the CLI chose
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.delenv("FSROUTER_CONTROL_SOCKET", raising=False)
    monkeypatch.setattr(cli, "SYSTEM_CONTROL_SOCKET", str(installed))

    assert_one_clear_line(invoke("status"), str(installed))
    (tmp_path / "fsrouter.sock").write_text("")  # a local socket file, when present, wins
    assert_one_clear_line(invoke("status"), "nothing listens on fsrouter.sock)")


# --- report ------------------------------------------------------------------------------------------------


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / "calls.db"
    now = time.time()
    store = SqliteCallStore(path)
    records = [
        CallRecord(
            uuid="c1",
            node="n1",
            queue="support",
            outcome="answered",
            entered_at=now - 300,
            answered_at=now - 290,
            ended_at=now - 200,
            agent="agent-1000",
            hold_seconds=30.0,
        ),
        CallRecord(
            uuid="c2", node="n1", queue="support", outcome="abandoned", entered_at=now - 250, ended_at=now - 220
        ),
        CallRecord(
            uuid="c3",
            node="n1",
            queue="sales",
            outcome="answered",
            entered_at=now - 100,
            answered_at=now - 95,
            ended_at=now - 50,
            agent="agent-1001",
        ),
    ]
    for record in records:
        store.apply(RecordCall(record=record))
    store.close()
    return path


def test_report_prints_one_row_per_queue(store_file: Path) -> None:
    result = invoke("report", "--db", str(store_file))

    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "QUEUE", "OFFERED", "ANSWERED", "ABANDONED", "OVERFLOWED", "CLOSED", "TIMED_OUT", "REJECTED", "FAILED", "LEFT",
        "SHORT_ABANDONED", "SERVICE_LEVEL", "ABANDON_RATE", "OVERFLOW_RATE", "ASA_SECONDS", "AHT_SECONDS",
        "AVG_WAIT_SECONDS", "MAX_WAIT_SECONDS", "AVG_TALK_SECONDS", "AVG_HOLD_SECONDS", "AVG_WRAPUP_SECONDS",
    ]  # fmt: skip
    by_queue = {row.split()[0]: row.split() for row in rows}
    assert by_queue["sales"][:4] == ["sales", "1", "1", "0"]
    assert by_queue["support"][:4] == ["support", "2", "1", "1"]
    assert by_queue["support"][18:20] == ["60.0", "30.0"]  # 90 s connected, 30 of them on hold


def test_report_refuses_an_inverted_range(store_file: Path) -> None:
    result = invoke("report", "--db", str(store_file), "--since", "2026-11-29", "--until", "2026-11-28")

    assert result.exit_code == 2
    assert "--since is after --until" in result.output


def test_report_as_csv_by_agent(store_file: Path) -> None:
    result = invoke("report", "--db", str(store_file), "--by", "agent", "--csv")

    assert result.exit_code == 0, result.output
    rows = {row["agent"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["agent-1000"]["answered"] == "1" and rows["agent-1001"]["answered"] == "1"
    assert float(rows["agent-1000"]["avg_wait_seconds"]) == pytest.approx(10.0)


def test_report_as_json_honours_the_time_range(store_file: Path) -> None:
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 150))

    result = invoke("report", "--db", str(store_file), "--since", since, "--json")

    assert result.exit_code == 0, result.output
    assert [(row["queue"], row["offered"]) for row in json.loads(result.stdout)] == [("sales", 1)]


def test_report_rejects_a_bad_date_as_usage_error(store_file: Path) -> None:
    result = invoke("report", "--db", str(store_file), "--since", "yesterday")

    assert result.exit_code == 2
    assert "'yesterday' is not an ISO date" in result.stderr


def test_report_without_a_store_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"

    assert_one_clear_line(invoke("report", "--db", str(missing)), f"no call store at {missing}")
    assert not os.path.exists(missing)


def test_explain_shows_a_deadline_as_local_iso_time_and_how_far_off_it_is() -> None:
    """The trace carries the deadline as a number (the JSON form prints it as is); the text form says when."""
    until = time.time() + 30.4
    trace = {"kind": "offer", "at": until - 40, "excluded": [{"agent": "a", "reason": "retry delay", "until": until}]}

    text = render_trace(trace)

    local = datetime.fromtimestamp(until).isoformat(timespec="seconds")
    assert f"  excluded: agent=a reason=retry delay until={local} (in 30 s)" in text
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", local)
    assert json.loads(json.dumps(trace))["excluded"][0]["until"] == until


def test_report_refuses_csv_and_json_together(store_file: Path) -> None:
    result = invoke("report", "--db", str(store_file), "--csv", "--json")

    assert result.exit_code == 2
    assert "--csv and --json cannot be combined" in result.output


@pytest.mark.parametrize("option", [("--callers-per-minute", "-1"), ("--duration", "-5"), ("--duration", "0")])
def test_the_demo_refuses_a_rate_or_duration_that_cannot_work(option: tuple[str, str]) -> None:
    result = invoke("demo", *option)

    assert result.exit_code == 2, result.output
    assert option[0] in result.output


#: packages a command that reads no rules and talks to no FreeSWITCH has no use for (issue 14: start-up time)
HEAVY_PACKAGES = (
    "gevent",
    "greenswitch",
    "yaml",
    "holidays",
    "phonenumbers",
    "pydantic",
    "prometheus_client",
    "sqlite_utils",
)
_LOADED_AFTER = (
    "import sys\nfrom fsrouter.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    "print(' '.join(sorted({name.partition('.')[0] for name in sys.modules})))"
)


@pytest.mark.parametrize("args", [("--help",), ("status", "--control-socket", "{tmp}/none.sock")])
def test_help_and_status_start_without_the_heavy_packages(args: tuple[str, ...], tmp_path: Path) -> None:
    command = [sys.executable, "-c", _LOADED_AFTER, *(arg.format(tmp=tmp_path) for arg in args)]
    loaded = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()

    assert set(HEAVY_PACKAGES).isdisjoint(loaded)
