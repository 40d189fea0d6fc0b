"""``uuid_bridge`` racing the originate job, against tests/fixtures/esl-caller/plain/bridge_race_{ok,err}.raw.

Each test drives the simulator like the recording (``bridge_race.json``): a caller parks on 5003 with
``fsrouter_queue`` set, ``uuid_answer``, ``bgapi originate`` of agent 1000, ``uuid_bridge``; the caller
hangs up. The comparison is test_vs_capture's (same helpers, same ignored events), with one difference:
from the first CHANNEL_HANGUP on, the events are compared leg by leg, because the two legs' threads
interleave differently in each capture (bridge_answered, bridge_race_ok and bridge_race_err show three
orders); the simulator keeps bridge_answered's, which test_vs_capture checks event for event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fsrouter.sim import Simulator
from tests.sim.esl_client import Frame, RawEslClient
from tests.sim.test_vs_capture import assert_like_capture, originate, run, wait_destroyed

CAPTURES = Path(__file__).parent.parent / "fixtures" / "esl-caller"
#: per outcome: uuids, the uuid_bridge reply and the job body, each without its final newline
TRANSCRIPT = json.loads((CAPTURES / "bridge_race.json").read_text())


@pytest.fixture
def race_sim(sim: Simulator) -> Simulator:
    sim.add_agent("1000", behaviour="answer", answer_after=0.05)
    return sim


def answered_caller(sim: Simulator, control: RawEslClient, talk_time: float) -> str:
    caller = sim.place_call(caller_number="2000", destination="5003", talk_time=talk_time)
    assert control.api(f"uuid_answer {caller}").body == b"+OK\n"
    return caller


def is_event_of(name: str, uuid: str) -> Callable[[Frame], bool]:
    return lambda frame: frame.event_name == name and ("Unique-ID", uuid) in frame.event_headers()


def timestamp_us(event: Frame) -> int:
    return int(dict(event.event_headers())["Event-Date-Timestamp"])


def test_bridge_after_the_job_unparks_the_agent_leg(race_sim: Simulator) -> None:
    transcript = TRANSCRIPT["ok"]
    leg = transcript["agent_leg"]

    def scenario(sim: Simulator, control: RawEslClient, listener: RawEslClient) -> None:
        caller = answered_caller(sim, control, talk_time=0.1)
        assert originate(control, listener, leg, "1000") == f"{transcript['originate_job_body']}\n".encode()
        assert control.api(f"uuid_bridge {caller} {leg}").body == f"{transcript['uuid_bridge_reply']}\n".encode()
        wait_destroyed(listener, caller, leg)
        assert sim.calls[caller].bridged_to == leg and sim.calls[caller].hangup_cause == "NORMAL_CLEARING"

    assert_like_capture(
        "bridge_race_ok", run(race_sim, scenario), plain=CAPTURES / "plain", leg_by_leg_from="CHANNEL_HANGUP"
    )


def test_bridge_on_the_agent_answer_cancels_the_job_and_bridges(race_sim: Simulator) -> None:
    """The job's ``-ERR ORIGINATOR_CANCEL`` comes before the bridge's events and is its only result: the call
    lasts longer than ``job_delay``, so a second BACKGROUND_JOB would be in the compared stream."""
    transcript = TRANSCRIPT["err"]
    leg = transcript["agent_leg"]
    race_sim.job_delay = 0.2

    def scenario(sim: Simulator, control: RawEslClient, listener: RawEslClient) -> None:
        caller = answered_caller(sim, control, talk_time=0.4)
        reply = control.command(f"bgapi originate {{origination_uuid={leg}}}user/1000 &park()")
        assert reply.reply_text.startswith("+OK Job-UUID: ")
        listener.events_until(is_event_of("CHANNEL_ANSWER", leg))
        assert control.api(f"uuid_bridge {caller} {leg}").body == f"{transcript['uuid_bridge_reply']}\n".encode()
        job = listener.events_until(lambda frame: frame.event_name == "BACKGROUND_JOB")[-1]
        assert job.event_inner_body() == f"{transcript['originate_job_body']}\n".encode()
        wait_destroyed(listener, caller, leg)
        assert sim.calls[caller].bridged_to == leg and sim.agent_legs[leg].hangup_cause == "NORMAL_CLEARING"

    assert_like_capture(
        "bridge_race_err", run(race_sim, scenario), plain=CAPTURES / "plain", leg_by_leg_from="CHANNEL_HANGUP"
    )


def test_between_answer_and_job_the_leg_is_answered_but_not_parked(race_sim: Simulator, client: RawEslClient) -> None:
    """``job_delay`` after the CHANNEL_ANSWER the originate returns: CHANNEL_OUTGOING, ``+OK``, then the park."""
    race_sim.job_delay = 0.2
    client.command("bgapi originate {origination_uuid=leg-1}user/1000 &park()")
    answer = client.events_until(is_event_of("CHANNEL_ANSWER", "leg-1"))[-1]

    [row] = json.loads(client.api("show channels as json").body)["rows"]
    assert (row["uuid"], row["callstate"], row["state"]) == ("leg-1", "ACTIVE", "CS_CONSUME_MEDIA")
    assert row["application"] == ""  # not parked

    client.events_until(is_event_of("CHANNEL_PARK", "leg-1"))
    events = [frame for frame in client.frames if frame.content_type == "text/event-plain"]
    after_answer = events[events.index(answer) + 1 :]
    assert [frame.event_name for frame in after_answer] == [
        "CHANNEL_CALLSTATE",
        "CHANNEL_OUTGOING",
        "BACKGROUND_JOB",
        "CHANNEL_STATE",
        "CHANNEL_EXECUTE",
        "CHANNEL_PARK",
    ]
    job = after_answer[2]
    waited_us = timestamp_us(job) - timestamp_us(answer)
    assert waited_us >= 150_000 and job.event_inner_body() == b"+OK leg-1\n"  # gevent timers: cached loop clock


def test_a_hangup_between_answer_and_job_fails_the_job_once(race_sim: Simulator, client: RawEslClient) -> None:
    race_sim.job_delay = 5.0
    client.command("bgapi originate {origination_uuid=leg-1}user/1000 &park()")
    client.events_until(is_event_of("CHANNEL_ANSWER", "leg-1"))

    assert client.api("uuid_kill leg-1").body == b"+OK\n"

    events = client.events_until(is_event_of("CHANNEL_DESTROY", "leg-1"))
    assert [frame.event_inner_body() for frame in events if frame.event_name == "BACKGROUND_JOB"] == [
        b"-ERR NORMAL_CLEARING\n"
    ]
    assert "CHANNEL_PARK" not in [frame.event_name for frame in events]
    assert race_sim.agent_legs["leg-1"].hangup_cause == "NORMAL_CLEARING"
