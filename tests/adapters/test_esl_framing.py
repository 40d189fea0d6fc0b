"""Framing through the adapter: recorded FreeSWITCH bytes, cut at random offsets and coalesced, over loopback.

The expected events come from the pure splitter in esl_helpers, so these tests check that greenswitch's
parsing inside ``EslNode`` (and our body digging) agree with it on real wire data.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from greenswitch.esl import ESLEvent

from fsrouter.adapters.esl import EslNode, parse_plain_event
from fsrouter.adapters.esl_translate import translate
from fsrouter.core.events import ChannelAnswered, NodeDown, NodeUp, OriginateFailed
from tests.adapters.esl_helpers import (
    INSTANCE,
    EventRecorder,
    FakeConnection,
    FakeFreeSwitch,
    Frame,
    fixture_bytes,
    split_frames,
    translated_events,
)

SCENARIOS = [
    "bridge_answered",
    "abandon",
    "parked_burst",
    "originate_busy",
    "originate_no_answer",
    "originate_unregistered",
]


def event_stream(relative: str) -> bytes:
    """The recorded stream without its own handshake (auth/request and two replies): the fake does that."""
    data = fixture_bytes(relative)
    position = 0
    for _ in range(3):
        position = data.index(b"\n\n", position) + 2
    assert data[position:].startswith(b"Content-Length: ")
    return data[position:]


def random_chunks(data: bytes, rng: random.Random) -> Iterator[bytes]:
    """Pieces from 1 byte to 16 KiB: frames split mid-header and mid-body, and several frames per write."""
    position = 0
    while position < len(data):
        size = rng.choice((1, 7, 100, 1500, 4096, 16384))
        yield data[position : position + size]
        position += size


@pytest.fixture
def fake_fs() -> Iterator[FakeFreeSwitch]:
    server = FakeFreeSwitch().start()
    yield server
    server.stop()


@pytest.mark.parametrize("name", SCENARIOS)
def test_recorded_stream_in_random_chunks_gives_the_exact_core_events(fake_fs: FakeFreeSwitch, name: str) -> None:
    stream = event_stream(f"plain/{name}.raw")
    rng = random.Random(name)

    def replay(connection: FakeConnection) -> None:
        for chunk in random_chunks(stream, rng):
            connection.write(chunk)

    fake_fs.after_subscribe = replay
    expected = translated_events(f"plain/{name}.raw", node="fs1")
    recorder = EventRecorder()
    node = EslNode("fs1", "127.0.0.1", fake_fs.port, "ClueCon", recorder, instance=INSTANCE)
    node.start()
    try:
        events = recorder.wait_for(lambda got: len(got) >= len(expected) + 1, timeout=20)
    finally:
        node.stop()

    assert events[0] == NodeUp(node="fs1", core_uuid="core-1", live_uuids=frozenset(), registered_users=frozenset())
    assert events[1:] == expected
    assert expected, "the scenario must produce events"


def recorded_event(relative: str, event_name: str) -> Frame:
    return next(
        frame for frame in split_frames(fixture_bytes(relative)) if frame.event_headers.get("Event-Name") == event_name
    )


def test_background_job_body_is_the_inner_body_not_part_of_a_header() -> None:
    job = recorded_event("plain/originate_busy.raw", "BACKGROUND_JOB")

    headers, body = parse_plain_event(job.body.decode())

    assert body == "-ERR USER_BUSY\n"
    assert headers["Content-Length"] == "15"
    greenswitch = ESLEvent("")
    greenswitch.parse_data(job.body.decode())
    assert greenswitch.headers["Content-Length"] == "15\n\n-ERR USER_BUSY"  # the bug parse_plain_event avoids


def test_encoded_multi_line_values_stay_one_header() -> None:
    park = recorded_event("plain/abandon.raw", "CHANNEL_PARK")

    headers, body = parse_plain_event(park.body.decode())

    assert headers == park.event_headers
    assert headers["variable_switch_r_sdp"].startswith("v=0\r\no=caller")
    assert body == ""


def test_repeated_header_keeps_its_first_value() -> None:
    headers, _ = parse_plain_event("Hangup-Cause: NO_ANSWER\nUnique-ID: u\nHangup-Cause: OTHER\n\n")
    assert headers == {"Hangup-Cause": "NO_ANSWER", "Unique-ID": "u"}


def test_busy_agent_recorded_stream_gives_originate_failed(fake_fs: FakeFreeSwitch) -> None:
    stream = event_stream("plain/originate_busy.raw")
    fake_fs.after_subscribe = lambda connection: connection.write(stream)
    recorder = EventRecorder()
    node = EslNode("fs1", "127.0.0.1", fake_fs.port, "ClueCon", recorder, instance=INSTANCE)
    node.start()
    try:
        events = recorder.wait_for_count(OriginateFailed, 1)
    finally:
        node.stop()

    assert [e for e in events if isinstance(e, OriginateFailed)] == [
        OriginateFailed(node="fs1", leg_uuid="7c2a3fa6-f9ef-4b7f-ae80-cd4e9cd8652a", cause="USER_BUSY")
    ]


# --- malformed input: counted as fsrouter_esl_events_total{kind="malformed"} ------------------------------------


def wire(frame: Frame, **replaced_headers: str) -> bytes:
    """A recorded frame as it came on the wire, with some outer headers replaced (``Content_Length=...``)."""
    headers = frame.headers | {name.replace("_", "-"): value for name, value in replaced_headers.items()}
    return "".join(f"{name}: {value}\n" for name, value in headers.items()).encode() + b"\n" + frame.body


def corrupted(frame: Frame, header: bytes, damaged: bytes) -> Frame:
    """``frame`` with one header name inside its event body damaged (same length: Content-Length stays right)."""
    assert len(header) == len(damaged) and frame.body.count(header) == 1
    return Frame(headers=frame.headers, body=frame.body.replace(header, damaged))


class CountedNode:
    """A started node whose counted event kinds (the ``count_event`` the daemon wires to the metric) are kept."""

    def __init__(self, fake_fs: FakeFreeSwitch) -> None:
        self.kinds: list[str] = []
        self.recorder = EventRecorder()
        self.node = EslNode(
            "fs1",
            "127.0.0.1",
            fake_fs.port,
            "ClueCon",
            self.recorder,
            instance=INSTANCE,
            backoff_initial=0.01,
            count_event=self.kinds.append,
        )
        self.node.start()


ANSWER = recorded_event("plain/bridge_answered.raw", "CHANNEL_ANSWER")
ANSWERED = translate(ANSWER.event_headers, ANSWER.event_body, "fs1")
FIRST_UP = NodeUp(node="fs1", core_uuid="core-1", live_uuids=frozenset(), registered_users=frozenset())


@pytest.mark.parametrize(
    ("damaged", "logged"),
    [
        (wire(ANSWER, Content_Length=ANSWER.headers["Content-Length"][:-1] + "O"), "Content-Length is not a number"),
        (wire(ANSWER).replace(b"text/event-plain", b"text/\xe9vent-plain"), "header line is not UTF-8"),
    ],
    ids=["content-length", "utf-8"],
)
def test_a_frame_with_an_unreadable_outer_header_is_logged_as_such_counted_malformed_and_the_connection_restarts(
    fake_fs: FakeFreeSwitch, caplog: pytest.LogCaptureFixture, damaged: bytes, logged: str
) -> None:
    assert isinstance(ANSWERED, ChannelAnswered)

    def answer_on_the_next_connection(connection: FakeConnection) -> None:
        if connection.number > 1:
            connection.write(wire(ANSWER))

    fake_fs.after_subscribe = answer_on_the_next_connection
    counted = CountedNode(fake_fs)
    try:
        counted.recorder.wait_for_count(NodeUp, 1)
        fake_fs.connections[0].write(damaged)
        events = counted.recorder.wait_for(lambda got: ANSWERED in got)
    finally:
        counted.node.stop()

    assert events == [FIRST_UP, NodeDown(node="fs1"), FIRST_UP, ANSWERED]
    assert counted.kinds == ["malformed", "translated"]
    [unreadable] = [record.getMessage() for record in caplog.records if "unreadable frame" in record.getMessage()]
    assert logged in unreadable


@pytest.mark.parametrize(
    ("header", "damaged"),
    [
        (b"\nUnique-ID: ", b"\nUnique-lD: "),  # translate rejects it: no channel uuid
        (b"Event-Name: ", b"Event-Nane: "),  # no handler could take it
    ],
)
def test_an_event_with_a_corrupted_header_is_counted_malformed_and_the_next_one_goes_through(
    fake_fs: FakeFreeSwitch, header: bytes, damaged: bytes
) -> None:
    fake_fs.after_subscribe = lambda connection: connection.write(
        wire(corrupted(ANSWER, header, damaged)) + wire(ANSWER)
    )
    counted = CountedNode(fake_fs)
    try:
        events = counted.recorder.wait_for(lambda got: ANSWERED in got)
    finally:
        counted.node.stop()

    assert events == [FIRST_UP, ANSWERED]
    assert counted.kinds == ["malformed", "translated"]
