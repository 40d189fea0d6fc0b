"""The real daemon against the built-in simulator over loopback, in one gevent hub."""

from __future__ import annotations

import textwrap
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

from fsrouter.config.settings import Settings
from fsrouter.daemon import Daemon
from fsrouter.sim import Simulator

FAST_RULES = """\
version: 1
queues:
  support:
    strategy: longest-idle
    ring_timeout: 1
    wrapup: 0.05
agents:
{agents}
"""

#: offers that ring for as long as the test needs, so that agent legs are still ringing when it acts
RINGING_RULES = FAST_RULES.replace("ring_timeout: 1", "ring_timeout: 30")


def write_rules(
    path: Path, users: list[str], template: str = FAST_RULES, *, logged_out: Collection[str] = ()
) -> Path:
    """One agent per user, ``agent-<user>``; those in ``logged_out`` are declared ``status: logged-out``."""
    agents = "\n".join(
        f"  - id: agent-{user}\n    endpoint: user/{user}\n    queues: [support]\n"
        "    busy_delay: 0.3\n    no_answer_delay: 0.3\n    reject_delay: 0.3\n    max_no_answer: 0"
        + ("\n    status: logged-out" if user in logged_out else "")
        for user in users
    )
    path.write_text(textwrap.dedent(template).format(agents=agents))
    return path


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(hostname="e2e", seed=7, chunking=True, heartbeat=1.0)
    simulator.start(host="127.0.0.1", port=0)
    yield simulator
    simulator.stop()


def make_daemon(sim: Simulator, tmp_path: Path, rules: Path, **overrides: object) -> Daemon:
    settings = Settings(
        esl=(f"127.0.0.1:{sim.port}",),
        rules=str(rules),
        db=str(tmp_path / "fsrouter.db"),
        metrics_listen="127.0.0.1:0",
        control_socket=str(tmp_path / "fsrouter.sock"),
        tick=0.05,
        command_timeout=2.0,
        **overrides,  # type: ignore[arg-type]
    )
    return Daemon(settings)


@pytest.fixture
def daemon_factory(sim: Simulator, tmp_path: Path) -> Iterator:
    started: list[Daemon] = []

    def factory(rules: Path, **overrides: object) -> Daemon:
        daemon = make_daemon(sim, tmp_path, rules, **overrides)
        daemon.start()
        started.append(daemon)
        assert sim.wait_until(lambda: all(node.connected for node in daemon.nodes.values()), timeout=10)
        return daemon

    yield factory
    for daemon in started:
        daemon.stop()
