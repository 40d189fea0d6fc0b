"""``fsrouter demo`` (what ``make demo`` runs) as a user runs it: a process, its output, its SQLite file."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

SUMMARY = re.compile(r"summary: (\d+) calls placed, (\d+) recorded, 0 missing")


def rows_in(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        count: int = connection.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    connection.close()
    return count


def test_the_demo_routes_calls_until_sigterm_then_lets_them_finish_and_records_every_one(tmp_path: Path) -> None:
    """Ctrl-C in a terminal; SIGTERM from ``timeout``, ``docker stop`` or a CI runner: the same graceful end."""
    db = tmp_path / "demo.db"
    command = [sys.executable, "-m", "fsrouter", "demo", "--metrics-listen", "127.0.0.1:0", "--db", str(db)]
    command += ["--agents", "12", "--callers-per-minute", "40"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # the live status, one line a second off a terminal: wait for a caller
        seen.append(line)
        if "callers placed: " in line and "callers placed: 0" not in line:
            break
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=120)
    output = "".join(seen) + rest

    assert process.returncode == 0, output
    assert "interrupted" in output and "no new callers" in output
    summary = SUMMARY.search(output)
    assert summary is not None, output
    placed, recorded = map(int, summary.groups())
    assert placed == recorded > 0
    assert re.search(r"^  answered +[1-9]", output, re.MULTILINE), output  # routed to agents, not just recorded
    assert rows_in(db) == recorded


def test_a_bounded_demo_piped_to_a_file_shows_the_queue_view_and_says_what_its_duration_cut_short(
    tmp_path: Path,
) -> None:
    """``--duration`` bounds the whole run, the drain included; off a terminal the queue view comes every 5 s."""
    log = tmp_path / "demo.log"
    command = [sys.executable, "-m", "fsrouter", "demo", "--duration", "20", "--metrics-listen", "127.0.0.1:0"]
    command += ["--callers-per-minute", "60", "--db", str(tmp_path / "demo.db")]
    with log.open("w") as output:
        completed = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, timeout=120)
    text = log.read_text()

    assert completed.returncode == 0, text
    assert "\x1b" not in text  # no terminal escape codes in a file
    assert text.count("QUEUE      WAITING") >= 3, text
    assert "6 agents, one phone each" in text
    assert SUMMARY.search(text) is not None, text
    assert re.search(r"^(cut short \(--duration reached\): the demo hung up the \d+ callers|nothing cut short)", text,
                     re.MULTILINE), text  # fmt: skip
    assert "service level: support " in text and f"fsrouter report --db {tmp_path / 'demo.db'}" in text
