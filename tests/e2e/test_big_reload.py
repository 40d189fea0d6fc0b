"""A call arriving while a big rules file is reloaded is routed, before the reload ends (issue 11).

The file is parsed in a thread of the hub's pool (``load_rules_in_thread``), so the daemon's greenlets keep
reading events and writing commands meanwhile; ``bench/reload.py`` measures the longest stall, this test only
checks the outcome and its order (the call is bridged to the agent while the reload still runs, and gets one
record), never a time. The same file generator as the bench, with ``AGENTS`` agents in 100 queues and one
answering agent in queue ``q000``: 45,000 rather than the bench's 60,000 keeps the test near 15 s (the daemon
parses the file twice, at start and on reload; 60,000 took 24 s here).
"""

from __future__ import annotations

from pathlib import Path

import gevent

from bench.reload import ANSWERING_USER, write_rules
from fsrouter.sim import Simulator

AGENTS = 45_000


def test_a_call_arriving_during_the_reload_of_a_big_file_is_routed_before_it_ends(
    sim: Simulator,
    daemon_factory,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    sim.add_agent(ANSWERING_USER, answer_after=0.02)
    rules = write_rules(tmp_path / "rules.yaml", AGENTS)
    daemon = daemon_factory(rules)
    loaded_before = daemon.router.rules.loaded_at

    reload = gevent.spawn(daemon.reload)
    gevent.sleep(0.1)  # the parse is under way in its thread
    assert not reload.ready()
    caller = sim.place_call(variables={"fsrouter_queue": "q000"}, talk_time=0.05, patience=120)

    assert sim.wait_until(lambda: sim.calls[caller].bridged_to is not None or reload.ready(), timeout=60)
    assert sim.calls[caller].bridged_to is not None and not reload.ready()  # routed while the parse runs
    reload.get(timeout=60)
    assert daemon.router.rules.loaded_at > loaded_before
    assert sim.wait_until(lambda: [record.uuid for record in daemon.store.calls()] == [caller], timeout=10)
    [record] = daemon.store.calls()
    assert (record.outcome, record.agent) == ("answered", "agent-000000")
