"""CLI start-up: ``fsrouter --help`` and ``fsrouter status`` against a one-command click app.

Each command runs in a fresh interpreter (``sys.executable -c``, as the ``fsrouter`` console script does),
alternated with the baseline, ``RUNS`` times; the medians are compared. ``status`` runs with no daemon (it
fails at once on the missing control socket), so it times start-up and not the daemon. The goal (issue 14) is
within 1.5x the baseline.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 15
BASELINE = "import click\n@click.command()\ndef main() -> None:\n    'One command.'\nmain()"
FSROUTER = "from fsrouter.cli import main\nmain()"


def seconds(code: str, *args: str) -> float:
    """Wall-clock seconds of one fresh interpreter running ``code`` with ``args``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as empty:
        no_daemon = str(Path(empty) / "fsrouter.sock")
        commands = {"fsrouter --help": ("--help",), "fsrouter status": ("status", "--control-socket", no_daemon)}
        baseline: list[float] = []
        timings: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(RUNS):
            baseline.append(seconds(BASELINE, "--help"))
            for name, args in commands.items():
                timings[name].append(seconds(FSROUTER, *args))
    reference = statistics.median(baseline)
    print(f"median of {RUNS} alternated runs, fresh interpreter each")
    print(f"  one-command click app --help : {reference * 1000:7.1f} ms")
    for name, runs in timings.items():
        median = statistics.median(runs)
        print(f"  {name:28} : {median * 1000:7.1f} ms  x{median / reference:.2f} (goal <= x1.5)")


if __name__ == "__main__":
    main()
