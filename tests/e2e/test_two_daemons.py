"""Two daemons (issue 11, item 3): on one store the second refuses to start; on one FreeSWITCH with two stores,
neither kills nor offers on the other's agent legs, each logs an error naming the other, and each routes its
own callers (the dialplan names the instance with ``fsrouter_instance``)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsrouter.daemon import Daemon
from fsrouter.errors import InstanceLocked
from fsrouter.sim import Simulator
from tests.e2e.conftest import RINGING_RULES, make_daemon, write_rules

AUDIT_EVERY = 0.1
RING_SECONDS = 1.0
"""How long each agent's phone rings: ten audits of the other daemon see its agent leg idle."""


@pytest.fixture
def two_daemons(sim: Simulator, tmp_path: Path) -> Iterator[dict[str, Daemon]]:
    """Instances ``pbx-a`` (agent 1000) and ``pbx-b`` (agent 2000), each with its own store, on one simulator."""
    daemons: dict[str, Daemon] = {}
    for instance, user in (("pbx-a", "1000"), ("pbx-b", "2000")):
        sim.add_agent(user, behaviour="answer", answer_after=RING_SECONDS)
        workdir = tmp_path / instance
        workdir.mkdir()
        rules = write_rules(workdir / "rules.yaml", [user], RINGING_RULES)
        daemons[instance] = make_daemon(sim, workdir, rules, instance=instance, reconcile_interval=AUDIT_EVERY)
    try:
        for daemon in daemons.values():
            daemon.start()
        assert sim.wait_until(lambda: all(d.nodes[n].connected for d in daemons.values() for n in d.nodes), 10)
        yield daemons
    finally:
        for daemon in daemons.values():
            daemon.stop()


def test_two_daemons_on_one_freeswitch_route_their_own_callers_and_never_kill_each_others_agent_legs(
    sim: Simulator, two_daemons: dict[str, Daemon], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="fsrouter.adapters.esl")
    callers = {
        instance: sim.place_call(variables={"fsrouter_queue": "support", "fsrouter_instance": instance}, talk_time=0.2)
        for instance in two_daemons
    }

    for instance, daemon in two_daemons.items():
        caller = callers[instance]
        assert sim.wait_until(lambda: daemon.store.call(caller) is not None, timeout=10), instance  # noqa: B023
    for instance, daemon in two_daemons.items():
        other = next(name for name in two_daemons if name != instance)
        record = daemon.store.call(callers[instance])
        assert record is not None and record.outcome == "answered", (instance, record)
        assert record.agent == {"pbx-a": "agent-1000", "pbx-b": "agent-2000"}[instance]
        assert daemon.store.call(callers[other]) is None  # never took the other's caller
        assert daemon.router.heals == Counter()  # no orphan_leg: the other's ringing leg was left alone
        [warning] = [r.getMessage() for r in caplog.records if f"instance ({instance})" in r.getMessage()]
        assert f"another fsrouter instance {other} is routing on this node" in warning
    assert sorted(leg.user for leg in sim.agent_legs.values()) == ["1000", "2000"]  # each agent rung once


def test_a_second_daemon_on_the_same_store_is_refused_before_it_touches_the_store(
    sim: Simulator, daemon_factory, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules.yaml", ["1000"])
    first = daemon_factory(rules)

    with pytest.raises(InstanceLocked) as refused:
        make_daemon(sim, tmp_path, rules)

    assert refused.value.pid == first.lock.holder()
    first.stop()
    make_daemon(sim, tmp_path, rules).stop()  # the store is free once the first daemon stopped
