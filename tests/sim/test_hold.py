"""Hold in the simulator: ``uuid_hold`` and an agent's phone holding the caller raise CHANNEL_HOLD/UNHOLD.

No capture of a hold exists in ``fixtures/esl``; the shape follows switch_channel_mark_hold (call state HELD then
ACTIVE, Last-Hold and Hold-Accum kept in the channel's times) and the reply strings of ``reference/esl.md``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fsrouter.sim import Simulator
from tests.sim.esl_client import RawEslClient


@pytest.fixture
def hold_events(sim: Simulator) -> Iterator[RawEslClient]:
    """A second connection that hears only hold changes."""
    connection = RawEslClient(sim.port)
    connection.login(events="plain CHANNEL_HOLD CHANNEL_UNHOLD")
    yield connection
    connection.close()


def next_hold_event(events: RawEslClient) -> dict[str, str]:
    [frame] = events.events_until(lambda frame: True)
    return dict(frame.event_headers())


def test_uuid_hold_on_off_and_toggle(sim: Simulator, client: RawEslClient, hold_events: RawEslClient) -> None:
    caller = sim.place_call(answer=True)

    assert client.api(f"uuid_hold {caller}").body == b"+OK Success\n"
    held = next_hold_event(hold_events)
    assert (held["Event-Name"], held["Unique-ID"], held["Channel-Call-State"]) == ("CHANNEL_HOLD", caller, "HELD")
    assert int(held["Caller-Channel-Last-Hold"]) > 0 and held["Caller-Channel-Hold-Accum"] == "0"

    assert client.api(f"uuid_hold off {caller}").body == b"+OK Success\n"
    unheld = next_hold_event(hold_events)
    assert (unheld["Event-Name"], unheld["Channel-Call-State"]) == ("CHANNEL_UNHOLD", "ACTIVE")
    assert int(unheld["Caller-Channel-Hold-Accum"]) > 0

    assert client.api(f"uuid_hold toggle {caller}").body == b"+OK Success\n"
    assert next_hold_event(hold_events)["Event-Name"] == "CHANNEL_HOLD"
    assert client.api("uuid_hold 00000000-0000-0000-0000-000000000000").body == b"-ERR Operation failed\n"


def test_an_agent_phone_holds_the_caller_in_the_middle_of_the_conversation(
    sim: Simulator, client: RawEslClient, hold_events: RawEslClient
) -> None:
    sim.add_agent("1000", answer_after=0.01)
    caller = sim.place_call(answer=True, talk_time=0.4, hold_time=0.2)
    client.command("bgapi originate {origination_uuid=agent-leg-1}user/1000 &park()")
    assert sim.wait_until(lambda: "agent-leg-1" in sim.agent_legs and sim.agent_legs["agent-leg-1"].answered_at)
    assert client.api(f"uuid_bridge {caller} agent-leg-1").body == b"+OK agent-leg-1\n"

    held, unheld = next_hold_event(hold_events), next_hold_event(hold_events)

    assert [(e["Event-Name"], e["Unique-ID"]) for e in (held, unheld)] == [
        ("CHANNEL_HOLD", "agent-leg-1"),
        ("CHANNEL_UNHOLD", "agent-leg-1"),
    ]
    assert sim.wait_until(lambda: sim.calls[caller].state == "ended")
