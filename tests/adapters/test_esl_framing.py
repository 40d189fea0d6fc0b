"""Framing through the adapter: recorded FreeSWITCH bytes, cut at random offsets, truncated and corrupted, over
loopback.

The expected events come from the pure splitter in esl_helpers, so these tests check that greenswitch's
parsing inside ``EslNode`` (and our body digging) agree with it on real wire data. The property tests draw
their streams from every recorded capture (hypothesis, bounded by ``PROPERTY_SETTINGS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote

import pytest
from greenswitch.esl import ESLEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsrouter.adapters.esl import EslNode, parse_plain_event
from fsrouter.adapters.esl_translate import translate, translate_or_malformed
from fsrouter.core.events import ChannelAnswered, Event, NodeDown, NodeUp, OriginateFailed
from tests.adapters.esl_helpers import (
    INSTANCE,
    EventRecorder,
    FakeConnection,
    FakeFreeSwitch,
    Frame,
    fixture_bytes,
    plain_captures,
    split_frames,
)

#: each example opens a loopback connection or two: few examples, and no deadline (the hub's timing varies)
PROPERTY_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def event_stream(relative: str) -> bytes:
    """The recorded stream without its own handshake (auth/request and two replies): the fake does that."""
    data = fixture_bytes(relative)
    position = 0
    for _ in range(3):
        position = data.index(b"\n\n", position) + 2
    assert data[position:].startswith(b"Content-Length: ")
    return data[position:]


def event_frames(relative: str) -> list[Frame]:
    """The frames of ``event_stream``: only event-plain ones in every capture."""
    frames = split_frames(event_stream(relative))
    assert all(frame.headers["Content-Type"] == "text/event-plain" for frame in frames)
    return frames


CAPTURES = {relative: event_frames(relative) for relative in plain_captures()}


@dataclass(frozen=True, repr=False)
class Excerpt:
    """Consecutive frames of one capture, as the bytes on the wire and the core events they mean."""

    frames: tuple[Frame, ...]

    def __repr__(self) -> str:  # hypothesis prints falsifying examples: event names, not 100 kB of headers
        return f"Excerpt({[frame.event_headers.get('Event-Name') for frame in self.frames]})"

    @property
    def stream(self) -> bytes:
        return b"".join(wire(frame) for frame in self.frames)

    def events(self, count: int | None = None) -> list[Event]:
        """The core events of the first ``count`` frames (all by default), read by the pure splitter."""
        translated = (translate(f.event_headers, f.event_body, "fs1") for f in self.frames[:count])
        return [event for event in translated if event is not None]

    def frames_before(self, offset: int) -> int:
        """How many frames end at or before byte ``offset`` of the stream."""
        end = 0
        for count, frame in enumerate(self.frames):
            end += len(wire(frame))
            if end > offset:
                return count
        return len(self.frames)


@st.composite
def excerpts(draw: st.DrawFn) -> Excerpt:
    frames = CAPTURES[draw(st.sampled_from(sorted(CAPTURES)))]
    first = draw(st.integers(0, len(frames) - 1))
    count = draw(st.integers(1, len(frames) - first))
    return Excerpt(tuple(frames[first : first + count]))


def cut(data: bytes, offsets: list[int]) -> list[bytes]:
    """``data`` in pieces cut at ``offsets``: frames split mid-header and mid-body, or several in one write."""
    bounds = [0, *sorted({offset % (len(data) + 1) for offset in offsets}), len(data)]
    return [data[start:end] for start, end in zip(bounds, bounds[1:], strict=False) if end > start]


@contextmanager
def connected(**node_options: float) -> Iterator[tuple[FakeConnection, EventRecorder]]:
    """A fake FreeSWITCH and a node connected to it, once the node is up (so nothing the test writes can
    interleave with the replies to its re-learning); fresh for each hypothesis example."""
    fake = FakeFreeSwitch().start()
    fake.after_subscribe = lambda connection: connection.write(wire(ANSWER)) if connection.number > 1 else None
    recorder = EventRecorder()
    node = EslNode("fs1", "127.0.0.1", fake.port, "ClueCon", recorder, instance=INSTANCE, **node_options)
    node.start()
    try:
        recorder.wait_for_count(NodeUp, 1)
        yield fake.connections[0], recorder
    finally:
        node.stop()
        fake.stop()


@PROPERTY_SETTINGS
@given(excerpt=excerpts(), offsets=st.lists(st.integers(min_value=0), max_size=40))
def test_a_capture_cut_anywhere_gives_the_exact_core_events(excerpt: Excerpt, offsets: list[int]) -> None:
    expected = excerpt.events()

    with connected() as (connection, recorder):
        for piece in cut(excerpt.stream, offsets):
            connection.write(piece)
        events = recorder.wait_for(lambda got: len(got) >= len(expected) + 1, timeout=20)

    assert events == [FIRST_UP, *expected]


Damage = tuple[int | None, list[tuple[int, int]]]
"""(where the stream is truncated or None, [(offset, byte)] overwritten), offsets taken modulo its length."""


@st.composite
def damages(draw: st.DrawFn) -> Damage:
    truncate_at = draw(st.none() | st.integers(min_value=0))
    overwritten = draw(st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=4))
    return truncate_at, overwritten


def damaged(data: bytes, damage: Damage) -> tuple[bytes, int]:
    """``data`` truncated and overwritten as ``damage`` says, and the offset of its first damaged byte."""
    truncate_at, overwritten = damage
    changed = bytearray(data)
    first = len(data)
    for offset, byte in overwritten:
        position = offset % len(data)
        if changed[position] != byte:
            changed[position] = byte
            first = min(first, position)
    if truncate_at is not None:
        cut_at = truncate_at % len(data)
        del changed[cut_at:]
        first = min(first, cut_at)
    return bytes(changed), first


def replay_damaged(excerpt: Excerpt, damage: Damage, offsets: list[int]) -> tuple[list[Event], list[Event]]:
    """Write ``excerpt`` damaged to a connected node in pieces, close the connection, and wait until the node is
    back and has read the clean event the fake sends on every later connection. Returns (the events received,
    the events of the frames before the first damaged byte)."""
    stream, first_damaged = damaged(excerpt.stream, damage)
    with connected(backoff_initial=0.01) as (connection, recorder):
        for piece in cut(stream, offsets):
            connection.write(piece)
        connection.close()
        events = recorder.wait_for(lambda got: got[-1:] == [ANSWERED], timeout=20)
    return events, excerpt.events(excerpt.frames_before(first_damaged))


@PROPERTY_SETTINGS
@given(excerpt=excerpts(), damage=damages(), offsets=st.lists(st.integers(min_value=0), max_size=10))
def test_a_truncated_or_corrupted_capture_loses_nothing_before_the_damage_and_the_node_recovers(
    excerpt: Excerpt, damage: Damage, offsets: list[int]
) -> None:
    events, intact = replay_damaged(excerpt, damage, offsets)

    assert events[0] == FIRST_UP
    assert events[1 : 1 + len(intact)] == intact
    assert events[-3:] == [NodeDown(node="fs1"), FIRST_UP, ANSWERED]


@settings(max_examples=200, deadline=None)
@given(
    relative=st.sampled_from(sorted(CAPTURES)),
    index=st.integers(min_value=0),
    damage=damages(),
)
def test_parse_plain_event_and_translate_never_raise_on_a_damaged_recorded_body(
    relative: str, index: int, damage: Damage
) -> None:
    frames = CAPTURES[relative]
    body, _ = damaged(frames[index % len(frames)].body, damage)

    headers, inner = parse_plain_event(body.decode("utf-8", errors="replace"))

    assert isinstance(headers, dict) and isinstance(inner, str)
    translate_or_malformed(headers, inner, "fs1")  # documented: never raises


@settings(max_examples=100, deadline=None)
@given(relative=st.sampled_from(sorted(CAPTURES)), index=st.integers(min_value=0))
def test_parse_plain_event_reads_every_recorded_body_like_the_pure_splitter(relative: str, index: int) -> None:
    frames = CAPTURES[relative]
    frame = frames[index % len(frames)]

    headers, inner = parse_plain_event(frame.body.decode())

    assert translate(headers, inner, "fs1") == translate(frame.event_headers, frame.event_body, "fs1")


@pytest.fixture
def fake_fs() -> Iterator[FakeFreeSwitch]:
    server = FakeFreeSwitch().start()
    yield server
    server.stop()


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


#: pieces of an encoded header value: escapes (valid, broken, NUL, newline), backslashes, raw NUL and non-ASCII
_VALUE_PIECES = st.sampled_from(
    ["%", "%0A", "%0a", "%00", "%C3", "%A9", "%e2%82%ac", "%3A%20", "%5C", "%ZZ", "\\", "\\x41", "\\N{DASH}"]
    + ["\0", "\r", "é", "a", "0", "A"]
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.lists(_VALUE_PIECES, max_size=6).map("".join), min_size=1, max_size=6))
def test_parse_plain_event_decodes_each_value_like_unquote_alone(values: list[str]) -> None:
    head = "\n".join(f"h{index}: {value}" for index, value in enumerate(values))

    headers, _ = parse_plain_event(head + "\n\n")

    assert headers == {f"h{index}": unquote(value) for index, value in enumerate(values)}


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
