"""Fault injection: dropped sockets, restarts, shutdown notices, slow commands, lost bridges."""

from __future__ import annotations

import json

import gevent
import greenswitch
import pytest

from fsrouter.sim import Simulator
from tests.sim.esl_client import RawEslClient


def core_uuid_of_next_event(client: RawEslClient) -> tuple[str, int]:
    event = client.events_until(lambda frame: frame.event_name == "CHANNEL_PARK")[-1]
    headers = dict(event.event_headers())
    return headers["Core-UUID"], int(headers["Event-Sequence"])


def test_dropped_connections_leave_calls_running(sim: Simulator, client: RawEslClient) -> None:
    caller = sim.place_call(patience=30)
    sim.drop_connections()
    client.read_until_closed()  # raises gevent.Timeout if the simulator kept the socket open
    again = RawEslClient(sim.port)
    again.login()
    assert again.api(f"uuid_exists {caller}").body == b"true"


def test_restart_loses_calls_silently_and_changes_core_uuid(sim: Simulator, client: RawEslClient) -> None:
    caller = sim.place_call(patience=30)
    old_core, old_sequence = core_uuid_of_next_event(client)
    restarter = gevent.spawn(sim.restart, down_for=0.2)
    assert sim.wait_until(lambda: sim.down, timeout=2)
    refused = RawEslClient.try_connect(sim.port)
    restarter.join(timeout=5)
    assert not refused
    assert sim.calls[caller].state == "vanished" and sim.live_channels() == set()
    fresh = RawEslClient(sim.port)
    fresh.login()
    assert fresh.api(f"uuid_exists {caller}").body == b"false"
    sim.place_call(patience=30)
    new_core, new_sequence = core_uuid_of_next_event(fresh)
    assert new_core != old_core and new_core == sim.core_uuid
    assert new_sequence == old_sequence  # the same call flow from a counter that started again at 1


def test_shutdown_notice_is_sent_before_close(sim: Simulator, client: RawEslClient) -> None:
    sim.shutdown_notice()
    data = client.read_until_closed()
    assert data.endswith(
        b"Content-Type: text/disconnect-notice\nContent-Length: 31\n\nThe system is being shut down.\n"
    )


@pytest.mark.parametrize(
    ("command", "reply_type"),
    [("api version", "api/response"), ("bgapi version", "command/reply"), ("nixevent HEARTBEAT", "command/reply")],
)
def test_events_wait_while_a_slow_command_runs_on_that_connection(command: str, reply_type: str) -> None:
    sim = Simulator(seed=2, chunking=True, api_delay=0.2)
    sim.start()
    try:
        client = RawEslClient(sim.port)
        client.login()
        client.send(command)
        assert sim.wait_until(lambda: sim.command_running, timeout=2)
        sim.place_call(patience=30)
        assert client.read_frame().content_type == reply_type
        assert client.read_frame().content_type == "text/event-plain"
    finally:
        sim.stop()


def parked(client: RawEslClient, uuid: str) -> bool:
    [row] = [row for row in json.loads(client.api("show channels as json").body)["rows"] if row["uuid"] == uuid]
    return (row["state"], row["callstate"], row["application"]) == ("CS_EXECUTE", "ACTIVE", "park")


def test_a_lost_bridge_replies_ok_and_changes_nothing_until_the_next_one(sim: Simulator, client: RawEslClient) -> None:
    sim.add_agent("1000", answer_after=0.01)
    caller = sim.place_call(answer=True)
    client.command("bgapi originate {origination_uuid=leg-1}user/1000 &park()")
    client.events_until(
        lambda frame: frame.event_name == "CHANNEL_PARK" and ("Unique-ID", "leg-1") in frame.event_headers()
    )
    sim.lose_bridges(caller="another-caller")
    sim.lose_bridges(caller=caller)
    already_read = len(client.frames)

    assert client.api(f"uuid_bridge {caller} leg-1").body == b"+OK leg-1\n"
    assert parked(client, caller) and parked(client, "leg-1") and sim.calls[caller].state == "answered"

    assert client.api(f"uuid_bridge {caller} leg-1").body == b"+OK leg-1\n"
    client.events_until(lambda frame: frame.event_name == "CHANNEL_BRIDGE")
    names = [frame.event_name for frame in client.frames[already_read:] if frame.content_type == "text/event-plain"]
    assert (names.count("CHANNEL_UNPARK"), names.count("CHANNEL_BRIDGE")) == (2, 1)
    assert sim.calls[caller].bridged_to == "leg-1"


def test_heartbeat_every_interval() -> None:
    sim = Simulator(heartbeat=0.05, seed=3)
    sim.start()
    try:
        client = RawEslClient(sim.port)
        client.login(events="plain HEARTBEAT")
        beat = client.read_until("text/event-plain")
        headers = dict(beat.event_headers())
        assert headers["Event-Name"] == "HEARTBEAT" and headers["Event-Info"] == "System Ready"
        assert len(headers["Event-Date-Timestamp"]) == 16
    finally:
        sim.stop()


def test_greenswitch_inbound_esl_receives_a_channel_park(sim: Simulator) -> None:
    parks: list[str] = []
    connection = greenswitch.InboundESL(host="127.0.0.1", port=sim.port, password="ClueCon")
    connection.connect()
    try:
        connection.register_handle("CHANNEL_PARK", lambda event: parks.append(event.headers["Unique-ID"]))
        assert connection.send("event plain CHANNEL_PARK BACKGROUND_JOB").data == "+OK event listener enabled plain"
        caller = sim.place_call(patience=30)
        assert sim.wait_until(lambda: parks == [caller], timeout=5)
    finally:
        connection.stop()
