"""A rules file with an impossible value never stops a real ``fsrouter run`` (issue 11).

SIGHUP with such a file: the daemon keeps running on the old rules and logs the located error. Started with
such a file: it exits (code 1, like ``check``) with the located error, one line per problem, and no traceback.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from fsrouter.config.rules_loader import MAX_RULES_BYTES
from fsrouter.sim import Simulator
from tests.ops.conftest import DaemonFactory
from tests.ops.test_reload import assert_all_callers_answered, start_with_waiting_callers, waiting_line, write

GOOD = write  # the rules of test_reload: one queue 'support', agent-1000 logged out


def bad_files(tmp_path: Path) -> dict[str, tuple[str, int]]:
    """name -> (rules text, line of the error); each is GOOD's text with one impossible value."""
    good = GOOD(tmp_path / "good.yaml").read_text()
    support = "  support:\n"
    calendar = (
        'calendars:\n  office:\n    hours: {mon-fri: "00:00-23:59"}\n    closed_dates: [2026-02-30]\n'
        "    timezone: UTC\n"
    )
    files = {
        "impossible date": (good.replace("queues:\n", calendar + "queues:\n"), "2026-02-30"),
        "deep nesting": (good + "extra: " + "[" * 5000 + "]" * 5000 + "\n", "extra: ["),
        "huge integer": (good.replace(support, support + "    max_wait: " + "9" * 5000 + "\n"), "max_wait"),
        "endpoint injection": (
            good.replace("endpoint: user/1000", 'endpoint: "user/1000 &park()\\n\\napi fsctl shutdown"'),
            "&park",
        ),
        "oversized file": (good + ("#" * 99 + "\n") * (MAX_RULES_BYTES // 100 + 1), "#" * 99),
    }
    return {name: (text, line_of(text, marker)) for name, (text, marker) in files.items()}


def line_of(text: str, marker: str) -> int:
    """The line where ``marker`` first appears in ``text`` (for the oversized file: where it crosses the limit)."""
    if marker == "#" * 99:
        return text[:MAX_RULES_BYTES].count("\n") + 1
    return text[: text.index(marker)].count("\n") + 1


def test_sighup_with_an_impossible_value_keeps_the_daemon_and_its_rules(
    sim: Simulator, daemon_process: DaemonFactory, tmp_path: Path
) -> None:
    rules = GOOD(tmp_path / "rules.yaml")
    daemon = start_with_waiting_callers(sim, daemon_process, rules)
    line_before = waiting_line(daemon)
    rules_before = daemon.cli_json("status")["rules"]

    for name, (text, line) in bad_files(tmp_path).items():
        rules.write_text(text)
        logged_before = len(daemon.log_text())
        daemon.send(signal.SIGHUP)

        def logged(located: str = f"{rules}:{line}: error: ", start: int = logged_before) -> bool:
            return located in daemon.log_text()[start:]

        assert sim.wait_until(logged, timeout=10), (name, daemon.log_text()[-2000:])
        assert daemon.process.poll() is None, name
        assert daemon.cli_json("status")["rules"] == rules_before, name

    log = daemon.log_text()
    assert "Traceback" not in log and "internal error" not in log
    assert waiting_line(daemon) == line_before
    assert_all_callers_answered(sim, daemon, [uuid for uuid, _, _ in line_before])


@pytest.mark.parametrize(
    "name", ["impossible date", "deep nesting", "huge integer", "endpoint injection", "oversized file"]
)
def test_start_with_an_impossible_value_exits_with_the_located_error(
    daemon_process: DaemonFactory, tmp_path: Path, name: str
) -> None:
    text, line = bad_files(tmp_path)[name]
    rules = tmp_path / "rules.yaml"
    rules.write_text(text)

    daemon = daemon_process(rules, wait=False)

    assert daemon.wait_exit(timeout=20) == 1
    output = daemon.log_text()
    assert "Traceback" not in output and "internal error" not in output, output
    problems = [text for text in output.splitlines() if text.startswith(str(rules))]  # log lines have a timestamp
    assert len(problems) == 1 and problems[0].startswith(f"{rules}:{line}: error: "), output
