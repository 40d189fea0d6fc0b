"""EslNode against a loopback fake FreeSWITCH: commands, errors, timeouts, drops, reconnects and re-learning."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.event
import pytest

from fsrouter.adapters.esl import EslNode
from fsrouter.adapters.esl_translate import SUBSCRIBED_EVENTS
from fsrouter.core.commands import Answer, Bridge, EslCommand, Kill, Originate, PlayMusic
from fsrouter.core.events import CallParked, ChannelHungUp, ChannelsAudited, NodeDown, NodeUp
from fsrouter.errors import CallGone, EslError, EslNotConnected, EslTimeout, UnsafeCommand
from tests.adapters.esl_helpers import (
    DISCONNECT_NOTICE,
    INSTANCE,
    EventRecorder,
    FakeConnection,
    FakeFreeSwitch,
    fixture_bytes,
    plain_event_frame,
    split_frames,
)

FIRST_UP = NodeUp(node="fs1", core_uuid="core-1", live_uuids=frozenset(), registered_users=frozenset())
NO_ROWS = '{"row_count": 0}\n'

NodeFactory = Callable[..., EslNode]


@pytest.fixture
def fake_fs() -> Iterator[FakeFreeSwitch]:
    server = FakeFreeSwitch().start()
    yield server
    server.stop()


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


@pytest.fixture
def make_node(fake_fs: FakeFreeSwitch, recorder: EventRecorder) -> Iterator[NodeFactory]:
    """Builds started nodes with fast test timings; stops them all at the end."""
    nodes: list[EslNode] = []

    def build(password: str = "ClueCon", **options: Any) -> EslNode:
        """``options``: timings (seconds) and callbacks of ``EslNode``."""
        settings = {"command_timeout": 2.0, "connect_timeout": 2.0, "backoff_initial": 0.01, "backoff_max": 0.05}
        node = EslNode("fs1", "127.0.0.1", fake_fs.port, password, recorder, instance=INSTANCE, **(settings | options))
        nodes.append(node)
        node.start()
        return node

    yield build
    for node in nodes:
        node.stop()


def hangup_frame(uuid: str, cause: str = "NORMAL_CLEARING") -> bytes:
    return plain_event_frame({"Event-Name": "CHANNEL_HANGUP", "Unique-ID": uuid, "Hangup-Cause": cause})


# --- connecting and commands -------------------------------------------------------------------------------


def test_connects_authenticates_subscribes_then_announces_node_up(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    node = make_node()

    assert recorder.wait_for_count(NodeUp, 1) == [FIRST_UP]
    assert node.connected
    commands = [fake_fs.next_command()[1] for _ in range(4)]
    assert commands == ["auth ClueCon", SUBSCRIBED_EVENTS, "api global_getvar core_uuid", "api show channels as json"]


def test_bridge_breaks_the_music_then_bridges_and_returns_the_last_reply(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    fake_fs.on_api = lambda _conn, text: "+OK agent-1\n" if text.startswith("uuid_bridge") else None
    node = make_node()
    recorder.wait_for_count(NodeUp, 1)

    reply = node.execute(Bridge(node="fs1", caller_uuid="caller-1", agent_uuid="agent-1"))

    assert reply == "+OK agent-1\n"
    fake_fs.wait_for_command("api uuid_break caller-1 all")
    fake_fs.wait_for_command("api uuid_bridge caller-1 agent-1")


def test_originate_goes_out_as_bgapi_with_the_leg_uuid_as_job_uuid(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    node = make_node()
    recorder.wait_for_count(NodeUp, 1)

    reply = node.execute(Originate(node="fs1", leg_uuid="leg-1", call_uuid="call-1", endpoint="user/1000", timeout=20))

    assert reply == "+OK Job-UUID: leg-1"
    fake_fs.wait_for_command(
        "bgapi originate {origination_uuid=leg-1,originate_timeout=20,ignore_early_media=true,"
        f"fsrouter_leg=agent,fsrouter_instance={INSTANCE},fsrouter_call=call-1}}user/1000 &park()\nJob-UUID: leg-1"
    )


@pytest.mark.parametrize(
    ("command", "reply", "error"),
    [
        (Kill(node="fs1", uuid="gone"), "-ERR No such channel!\n", CallGone),
        (Bridge(node="fs1", caller_uuid="gone", agent_uuid="a"), "-ERR Invalid uuid\n", CallGone),
        (Answer(node="fs1", uuid="gone"), "-ERROR\n", CallGone),
        (Kill(node="fs1", uuid="x"), "-ERR no reply\n", EslError),
    ],
)
def test_refusals_become_typed_errors(
    make_node: NodeFactory,
    fake_fs: FakeFreeSwitch,
    recorder: EventRecorder,
    command: EslCommand,
    reply: str,
    error: type[Exception],
) -> None:
    fake_fs.on_api = lambda _conn, text: reply if text.startswith("uuid_") else None
    node = make_node()
    recorder.wait_for_count(NodeUp, 1)

    with pytest.raises(error) as raised:
        node.execute(command)

    assert raised.type is error  # CallGone is an EslError too: the exact kind matters to the router
    assert reply.strip() in str(raised.value)


def test_raw_api_returns_the_body(make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder) -> None:
    status = split_frames(fixture_bytes("api/status.raw"))[0].body.decode()
    fake_fs.on_api = lambda _conn, text: status if text == "status" else None
    node = make_node()
    recorder.wait_for_count(NodeUp, 1)

    assert node.api("status") == status


def test_commands_before_connecting_raise_not_connected(fake_fs: FakeFreeSwitch, recorder: EventRecorder) -> None:
    node = EslNode("fs1", "127.0.0.1", fake_fs.port, "ClueCon", recorder, instance=INSTANCE)

    with pytest.raises(EslNotConnected):
        node.execute(Answer(node="fs1", uuid="u"))
    assert not node.connected


def test_concurrent_commands_each_get_their_own_reply(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    fake_fs.on_api = lambda _conn, text: text if text.startswith("echo ") else None
    node = make_node()
    recorder.wait_for_count(NodeUp, 1)

    jobs = [gevent.spawn(node.api, f"echo {number} " + "x" * 70_000) for number in range(12)]
    gevent.joinall(jobs, timeout=10, raise_error=True)

    assert [job.value.split(" ")[1] for job in jobs] == [str(number) for number in range(12)]


# --- the command pipeline (EslNode.send) ----------------------------------------------------------------------


class Pipeline:
    """The callbacks of a node's pipeline: what was written, dropped and failed, and the events counted."""

    def __init__(self) -> None:
        self.written = 0
        self.dropped: list[EslCommand] = []
        self.failed: list[tuple[EslCommand, Exception]] = []
        self.event_kinds: list[str] = []

    def options(self) -> dict[str, Any]:
        return {
            "on_command_written": self._written,
            "on_command_dropped": self.dropped.append,
            "on_command_failed": lambda command, error: self.failed.append((command, error)),
            "count_event": self.event_kinds.append,
        }

    def _written(self, seconds: float) -> None:
        assert seconds >= 0
        self.written += 1


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    with gevent.Timeout(timeout, AssertionError("condition never held")):
        while not condition():
            gevent.sleep(0.005)


def commands_until(fake_fs: FakeFreeSwitch, wanted: str) -> list[str]:
    """The commands FreeSWITCH reads up to ``wanted`` (excluded)."""
    seen: list[str] = []
    while (command := fake_fs.next_command()[1]) != wanted:
        seen.append(command)
    return seen


def answer(uuid: str) -> Answer:
    return Answer(node="fs1", uuid=uuid)


def test_commands_are_written_without_waiting_for_replies_and_each_reply_goes_to_its_own_command(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    release = gevent.event.Event()

    def first_slow_odd_refused(_conn: FakeConnection, text: str) -> str | None:
        if text == "uuid_answer call-0":
            release.wait()  # FreeSWITCH runs api commands one at a time: the others wait in its socket
        number = int(text.rsplit("-", 1)[1]) if text.startswith("uuid_answer call-") else 0
        return f"-ERR refused {number}\n" if number % 2 else None

    fake_fs.on_api = first_slow_odd_refused
    pipeline = Pipeline()
    node = make_node(**pipeline.options())
    recorder.wait_for_count(NodeUp, 1)
    _drain(fake_fs)

    for number in range(6):
        node.send(answer(f"call-{number}"))
    wait_until(lambda: pipeline.written == 6)

    assert fake_fs.next_command()[1] == "api uuid_answer call-0"
    assert fake_fs.commands.empty()  # all six written while FreeSWITCH still runs the first
    assert not node.settled()
    release.set()
    wait_until(node.settled)
    assert [(command, str(error)) for command, error in pipeline.failed] == [
        (answer(f"call-{number}"), f"api uuid_answer call-{number}: -ERR refused {number}") for number in (1, 3, 5)
    ]
    assert all(type(error) is EslError for _, error in pipeline.failed)


def test_a_command_freeswitch_would_misread_is_reported_failed_and_never_written(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    """An endpoint with an ESL command in it that got past the rules check (or came from anywhere else)."""
    pipeline = Pipeline()
    node = make_node(**pipeline.options())
    recorder.wait_for_count(NodeUp, 1)
    _drain(fake_fs)
    injected = Originate(
        node="fs1", leg_uuid="leg-1", call_uuid="call-1", endpoint="user/1001 &park()\n\napi fsctl shutdown", timeout=5
    )

    node.send(injected)
    node.send(answer("call-2"))
    wait_until(node.settled)

    assert [command for _, command in _drain(fake_fs)] == ["api uuid_answer call-2"]
    assert [(command, type(error)) for command, error in pipeline.failed] == [(injected, UnsafeCommand)]
    with pytest.raises(UnsafeCommand):
        node.execute(injected)
    assert fake_fs.commands.empty()


def test_one_calls_commands_go_out_in_order_and_a_bridge_reports_its_first_failing_line(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    replies = {"uuid_break caller-1 all": "-ERR No such channel!\n", "uuid_bridge caller-1 leg-1": "-ERR later\n"}
    fake_fs.on_api = lambda _conn, text: replies.get(text)
    pipeline = Pipeline()
    node = make_node(**pipeline.options())
    recorder.wait_for_count(NodeUp, 1)
    _drain(fake_fs)
    bridge = Bridge(node="fs1", caller_uuid="caller-1", agent_uuid="leg-1")

    for command in (
        answer("caller-1"),
        PlayMusic(node="fs1", uuid="caller-1", source="local_stream://moh"),
        Originate(node="fs1", leg_uuid="leg-1", call_uuid="caller-1", endpoint="user/1000", timeout=20),
        bridge,
        answer("caller-2"),
    ):
        node.send(command)

    sent = [command.split(" ", 2)[:2] for command in commands_until(fake_fs, "api uuid_answer caller-2")]
    assert sent == [
        ["api", "uuid_answer"],
        ["api", "uuid_broadcast"],
        ["bgapi", "originate"],
        ["api", "uuid_break"],
        ["api", "uuid_bridge"],
    ]
    wait_until(lambda: pipeline.failed != [])
    [(failed, error)] = pipeline.failed
    assert failed == bridge and type(error) is CallGone and "uuid_break" in str(error)
    assert error.uuid == "caller-1"


def test_no_command_is_sent_for_a_caller_whose_hangup_was_seen(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    pipeline = Pipeline()
    node = make_node(**pipeline.options())
    recorder.wait_for_count(NodeUp, 1)
    _drain(fake_fs)
    fake_fs.connections[0].write(hangup_frame("caller-1", "ORIGINATOR_CANCEL"))
    recorder.wait_for_count(ChannelHungUp, 1)
    for_the_gone_caller = [
        answer("caller-1"),
        PlayMusic(node="fs1", uuid="caller-1", source="local_stream://moh"),
        Originate(node="fs1", leg_uuid="leg-1", call_uuid="caller-1", endpoint="user/1000", timeout=20),
        Kill(node="fs1", uuid="leg-1", cause="ORIGINATOR_CANCEL"),  # its originate was not sent either
        Bridge(node="fs1", caller_uuid="caller-1", agent_uuid="leg-0"),
    ]

    for command in [*for_the_gone_caller, answer("caller-2")]:
        node.send(command)

    assert commands_until(fake_fs, "api uuid_answer caller-2") == []
    wait_until(node.settled)
    assert pipeline.dropped == for_the_gone_caller
    assert pipeline.failed == []


def test_a_kill_of_a_leg_not_created_yet_is_held_until_its_channel_create(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    pipeline = Pipeline()
    node = make_node(**pipeline.options())
    recorder.wait_for_count(NodeUp, 1)
    _drain(fake_fs)

    node.send(Originate(node="fs1", leg_uuid="leg-1", call_uuid="caller-1", endpoint="user/1000", timeout=20))
    node.send(Kill(node="fs1", uuid="leg-1", cause="ORIGINATOR_CANCEL"))
    node.send(answer("caller-2"))

    [originate] = commands_until(fake_fs, "api uuid_answer caller-2")
    assert originate.startswith("bgapi originate {origination_uuid=leg-1,")
    wait_until(lambda: pipeline.written == 2)
    assert not node.settled() and node.unsettled_legs() == {"leg-1"}

    fake_fs.connections[0].write(plain_event_frame({"Event-Name": "CHANNEL_CREATE", "Unique-ID": "leg-1"}))

    assert fake_fs.next_command()[1] == "api uuid_kill leg-1 ORIGINATOR_CANCEL"
    wait_until(node.settled)
    assert pipeline.event_kinds == ["tracked"]  # CHANNEL_CREATE is the adapter's own, not an ignored event
    assert (pipeline.dropped, pipeline.failed) == ([], [])


def test_a_kill_that_got_no_reply_is_sent_again_on_the_next_connection(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    def drop_on_kill(conn: FakeConnection, text: str) -> str | None:
        if text.startswith("uuid_kill") and conn.number == 1:
            conn.close()
        return None

    fake_fs.on_api = drop_on_kill
    pipeline = Pipeline()
    node = make_node(**pipeline.options())
    recorder.wait_for_count(NodeUp, 1)

    node.send(Kill(node="fs1", uuid="leg-1"))

    assert fake_fs.wait_for_command("api uuid_kill leg-1 NORMAL_CLEARING") == 1
    assert fake_fs.wait_for_command("api uuid_kill leg-1 NORMAL_CLEARING") == 2
    wait_until(node.settled)
    assert [type(error) for _, error in pipeline.failed] == [EslNotConnected]


# --- timeouts and drops ------------------------------------------------------------------------------------


def test_a_command_left_without_a_reply_drops_the_connection_so_the_next_one_gets_its_own_reply(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    stuck = gevent.event.Event()

    def stuck_in_the_first(conn: FakeConnection, text: str) -> str | None:
        if text == "slow" and conn.number == 1:
            stuck.wait(10)  # FreeSWITCH stuck in one api: nothing else is answered on this connection
        return {"slow": "+OK slow\n", "fast": "+OK fast\n"}.get(text)

    fake_fs.on_api = stuck_in_the_first
    node = make_node(command_timeout=0.2)
    recorder.wait_for_count(NodeUp, 1)
    try:
        with pytest.raises(EslTimeout):
            node.api("slow")

        assert recorder.wait_for_count(NodeUp, 2) == [FIRST_UP, NodeDown(node="fs1"), FIRST_UP]  # re-learnt
        assert node.api("fast") == "+OK fast\n"
    finally:
        stuck.set()
    assert "no reply to api slow in 0.2s, dropping the connection" in caplog.text


def test_a_written_command_left_without_a_reply_fails_every_pending_one_as_of_unknown_fate_and_reconnects(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    """The pipeline's deadline, not a heartbeat a minute later, ends a connection FreeSWITCH stopped answering."""
    stuck = gevent.event.Event()

    def stuck_in_the_first_answer(conn: FakeConnection, text: str) -> str | None:
        if text == "uuid_answer caller-1" and conn.number == 1:
            stuck.wait(10)
        return None

    fake_fs.on_api = stuck_in_the_first_answer
    pipeline = Pipeline()
    node = make_node(command_timeout=0.3, heartbeat_timeout=60, **pipeline.options())
    recorder.wait_for_count(NodeUp, 1)
    originate = Originate(node="fs1", leg_uuid="leg-1", call_uuid="caller-2", endpoint="user/1000", timeout=20)
    try:
        node.send(answer("caller-1"))
        node.send(originate)

        assert recorder.wait_for_count(NodeUp, 2, timeout=3) == [FIRST_UP, NodeDown(node="fs1"), FIRST_UP]
        wait_until(node.settled)
    finally:
        stuck.set()
    assert [(command, type(error)) for command, error in pipeline.failed] == [
        (answer("caller-1"), EslTimeout),
        (originate, EslNotConnected),  # written behind it, and FreeSWITCH never read it
    ]


@pytest.mark.parametrize(("caller_exists", "gone"), [("false", "caller-1"), ("true", "leg-1")])
def test_a_bridge_refused_for_a_gone_channel_names_which_one_is_gone(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder, caller_exists: str, gone: str
) -> None:
    """``uuid_bridge`` says ``-ERR Invalid uuid`` for either channel (captured: uuid_bridge_bad_uuid.raw and
    uuid_bridge_bad_peer_uuid.raw); ``uuid_exists`` of the caller tells which. Later commands for it are not sent."""
    invalid = split_frames(fixture_bytes("api/uuid_bridge_bad_peer_uuid.raw"))[0].body.decode()
    replies = {"uuid_bridge caller-1 leg-1": invalid, "uuid_exists caller-1": caller_exists}
    fake_fs.on_api = lambda _conn, text: replies.get(text)
    pipeline = Pipeline()
    node = make_node(**pipeline.options())
    recorder.wait_for_count(NodeUp, 1)
    _drain(fake_fs)

    node.send(Bridge(node="fs1", caller_uuid="caller-1", agent_uuid="leg-1"))
    wait_until(lambda: pipeline.failed != [])
    node.send(Kill(node="fs1", uuid=gone))
    node.send(answer("caller-2"))

    assert commands_until(fake_fs, "api uuid_answer caller-2") == [
        "api uuid_break caller-1 all",
        "api uuid_bridge caller-1 leg-1",
        "api uuid_exists caller-1",
    ]
    [(_, error)] = pipeline.failed
    assert type(error) is CallGone and error.uuid == gone and "Invalid uuid" in str(error)


def test_drop_with_a_command_in_flight_fails_it_promptly_then_reconnects(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    def drop_on_hang(conn: FakeConnection, text: str) -> str | None:
        if text == "hang":
            conn.close()
            return "+OK never delivered\n"
        return None

    fake_fs.on_api = drop_on_hang
    node = make_node(command_timeout=60)
    recorder.wait_for_count(NodeUp, 1)

    with gevent.Timeout(5, AssertionError("the pending command stayed blocked")), pytest.raises(EslNotConnected):
        node.api("hang")

    events = recorder.wait_for_count(NodeUp, 2)
    assert events == [FIRST_UP, NodeDown(node="fs1"), FIRST_UP]


def test_close_in_the_middle_of_a_body_is_a_lost_connection(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    make_node()
    recorder.wait_for_count(NodeUp, 1)
    truncated = hangup_frame("u-1")[:-20]

    fake_fs.connections[0].write(truncated)
    fake_fs.connections[0].close()

    assert recorder.wait_for_count(NodeUp, 2) == [FIRST_UP, NodeDown(node="fs1"), FIRST_UP]


def test_events_read_before_a_drop_arrive_before_node_down(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    make_node()
    recorder.wait_for_count(NodeUp, 1)

    fake_fs.connections[0].write(hangup_frame("u-1") + hangup_frame("u-2", "USER_BUSY"))
    fake_fs.connections[0].close()

    assert recorder.wait_for_count(NodeDown, 1)[:4] == [
        FIRST_UP,
        ChannelHungUp(node="fs1", uuid="u-1", cause="NORMAL_CLEARING"),
        ChannelHungUp(node="fs1", uuid="u-2", cause="USER_BUSY"),
        NodeDown(node="fs1"),
    ]


def test_disconnect_notice_ends_the_connection_even_if_the_socket_stays_open(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    make_node()
    recorder.wait_for_count(NodeUp, 1)

    fake_fs.connections[0].write(DISCONNECT_NOTICE)

    assert recorder.wait_for_count(NodeUp, 2) == [FIRST_UP, NodeDown(node="fs1"), FIRST_UP]


def test_heartbeat_silence_is_treated_as_a_dead_connection(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    make_node(heartbeat_timeout=0.3)

    events = recorder.wait_for_count(NodeUp, 2)

    assert events[:3] == [FIRST_UP, NodeDown(node="fs1"), FIRST_UP]
    assert len(fake_fs.connections) >= 2


def test_stop_closes_without_announcing_node_down(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    node = make_node()
    recorder.wait_for_count(NodeUp, 1)

    node.stop()

    assert not node.connected
    assert recorder.events == [FIRST_UP]
    with pytest.raises(EslNotConnected):
        node.api("status")


# --- reconnecting and re-learning ----------------------------------------------------------------------------


def test_wrong_password_is_logged_and_retried_until_accepted(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    fake_fs.password = "rotated"
    caplog.set_level(logging.ERROR, logger="fsrouter.adapters.esl")
    make_node()

    fake_fs.wait_for_command("auth ClueCon")
    fake_fs.wait_for_command("auth ClueCon")
    assert recorder.events == []
    assert "refused the event socket password" in caplog.text

    fake_fs.password = "ClueCon"
    assert recorder.wait_for_count(NodeUp, 1) == [FIRST_UP]


def test_reconnect_resubscribes_and_relearns_waiting_callers(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    show_channels = split_frames(fixture_bytes("api/show_channels_json_3_parked.raw"))[0].body.decode()
    caller, agent_leg, stale = (
        "97f130ff-1c45-4430-abe9-8a6e4f49558f",
        "9b034a2f-4d8c-4eb4-81ca-658b58cdd502",
        "6a514631-6d63-499b-9bf6-e2c10bcd6335",
    )
    variables = {(caller, "fsrouter_queue"): "support", (caller, "fsrouter_priority"): "5"}
    variables[(agent_leg, "fsrouter_leg")] = "agent"
    variables[(agent_leg, "fsrouter_queue")] = "support"

    def second_life(conn: FakeConnection, text: str) -> str | None:
        if conn.number == 1:
            return None
        words = text.split()
        if text == "show channels as json":
            return show_channels
        if words[0] == "uuid_exists":
            if words[1] == caller:  # the caller hangs up while we re-learn: that event must come last
                conn.write(hangup_frame(caller, "ORIGINATOR_CANCEL"))
            return "false" if words[1] == stale else "true"
        if words[0] == "uuid_getvar":
            return variables.get((words[1], words[2]), "_undef_")
        return None

    fake_fs.on_api = second_life
    make_node()
    recorder.wait_for_count(NodeUp, 1)
    fake_fs.core_uuid = "core-2"

    fake_fs.connections[0].close()
    events = recorder.wait_for(lambda got: any(isinstance(e, ChannelHungUp) for e in got))

    assert events == [
        FIRST_UP,
        NodeDown(node="fs1"),
        NodeUp(node="fs1", core_uuid="core-2", live_uuids=frozenset({caller, agent_leg}), registered_users=frozenset()),
        CallParked(
            node="fs1",
            uuid=caller,
            caller_number="2000",
            caller_name="Caller 2000",
            destination="5003",
            answered=False,
            variables={"fsrouter_queue": "support", "fsrouter_priority": "5"},
            entered_at=1795430874.0,
        ),
        ChannelHungUp(node="fs1", uuid=caller, cause="ORIGINATOR_CANCEL"),
    ]
    second_connection = [command for number, command in _drain(fake_fs) if number == 2]
    assert second_connection[:2] == ["auth ClueCon", SUBSCRIBED_EVENTS]
    assert not any(stale in command for command in second_connection if command.startswith("api uuid_getvar"))


def test_a_caller_parking_while_we_relearn_is_announced_once_by_its_live_event(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    """show channels has whole-second entry times; the live CHANNEL_PARK is exact and keeps arrival order."""
    show_channels = split_frames(fixture_bytes("api/show_channels_json_3_parked.raw"))[0].body.decode()
    caller = "97f130ff-1c45-4430-abe9-8a6e4f49558f"
    park = plain_event_frame(
        {
            "Event-Name": "CHANNEL_PARK",
            "Unique-ID": caller,
            "Caller-Caller-ID-Number": "2000",
            "Caller-Destination-Number": "5003",
            "Answer-State": "ringing",
            "variable_fsrouter_queue": "support",
        }
    )

    def caller_parks_during_relearn(conn: FakeConnection, text: str) -> str | None:
        words = text.split()
        if text == "show channels as json":
            return show_channels
        if words[0] == "uuid_exists":
            return "true" if words[1] == caller else "false"
        if words[0] == "uuid_getvar":
            if words[1] == caller and words[2] == "fsrouter_queue":
                conn.write(park)  # FreeSWITCH parks the caller between our questions
                return "support"
            return "_undef_"
        return None

    fake_fs.on_api = caller_parks_during_relearn
    make_node()
    events = recorder.wait_for(lambda got: any(isinstance(e, CallParked) for e in got))

    parked = [event for event in events if isinstance(event, CallParked)]
    assert parked == [
        CallParked(
            node="fs1",
            uuid=caller,
            caller_number="2000",
            destination="5003",
            answered=False,
            variables={"fsrouter_queue": "support"},
            entered_at=None,  # the router stamps it on arrival, after the callers re-learnt before it
        )
    ]
    assert isinstance(events[0], NodeUp)


def test_another_instances_agent_legs_and_callers_are_never_taken_for_this_instances_callers(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    """Neither at the re-learn after a (re)connect nor live: a parked agent leg of another instance, tagged as an
    agent leg, is nobody's caller; a caller the dialplan gave to another instance (``fsrouter_instance``) is left
    to it."""
    show_channels = split_frames(fixture_bytes("api/show_channels_json_3_parked.raw"))[0].body.decode()
    ours, their_leg, their_caller = (
        "97f130ff-1c45-4430-abe9-8a6e4f49558f",
        "9b034a2f-4d8c-4eb4-81ca-658b58cdd502",
        "6a514631-6d63-499b-9bf6-e2c10bcd6335",
    )
    variables = {
        (ours, "fsrouter_queue"): "support",
        (ours, "fsrouter_instance"): INSTANCE,
        (their_leg, "fsrouter_leg"): "agent",
        (their_leg, "fsrouter_queue"): "support",
        (their_leg, "fsrouter_instance"): "pbx2-0badcafe",
        (their_caller, "fsrouter_queue"): "support",
        (their_caller, "fsrouter_instance"): "pbx2-0badcafe",
    }

    def freeswitch(_conn: FakeConnection, text: str) -> str | None:
        words = text.split()
        if text == "show channels as json":
            return show_channels
        if words[0] == "uuid_exists":
            return "true"
        if words[0] == "uuid_getvar":
            return variables.get((words[1], words[2]), "_undef_")
        return None

    fake_fs.on_api = freeswitch
    make_node()
    recorder.wait_for_count(CallParked, 1)

    def live_park(uuid: str, instance: str) -> bytes:
        headers = {"Event-Name": "CHANNEL_PARK", "Unique-ID": uuid, "variable_fsrouter_queue": "support"}
        return plain_event_frame(headers | {"variable_fsrouter_instance": instance})

    fake_fs.connections[0].write(live_park("their-new-caller", "pbx2-0badcafe") + live_park("our-new-caller", INSTANCE))
    events = recorder.wait_for_count(CallParked, 2)

    assert [event.uuid for event in events if isinstance(event, CallParked)] == [ours, "our-new-caller"]


# --- auditing for the periodic reconciliation ----------------------------------------------------------------


def channel_row(uuid: str, direction: str, application: str) -> dict[str, str]:
    return {"uuid": uuid, "direction": direction, "application": application, "callstate": "RINGING"}


def test_audit_lists_every_channel_and_asks_only_idle_outbound_ones_for_the_agent_leg_tag(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    rows = [
        channel_row("caller", "inbound", "park"),  # a caller: never one of our agent legs
        channel_row("ringing-ours", "outbound", ""),  # originated, still ringing
        channel_row("parked-ours", "outbound", "park"),  # answered, waiting for a bridge that never came
        channel_row("talking-ours", "outbound", "uuid_bridge"),  # in a conversation: never an orphan
        channel_row("parked-foreign", "outbound", "park"),  # someone else's call
        channel_row("just-gone", "outbound", ""),  # hung up since the listing
    ]
    tags = {"ringing-ours": "agent", "parked-ours": "agent", "talking-ours": "agent", "parked-foreign": "_undef_"}
    listing = json.dumps({"row_count": len(rows), "rows": rows})
    asked: list[str] = []

    def freeswitch(_conn: FakeConnection, text: str) -> str | None:
        words = text.split()
        if text == "show channels as json":
            return listing
        if text == "show calls as json":
            return NO_ROWS
        if words[0] == "uuid_getvar" and words[2] == "fsrouter_leg":
            asked.append(words[1])
            return tags.get(words[1], "-ERR No such channel!\n")
        if words[0] == "uuid_getvar" and words[2] == "fsrouter_instance":
            return INSTANCE
        return None

    node = make_node()
    recorder.wait_for_count(NodeUp, 1)
    fake_fs.on_api = freeswitch

    audit = node.audit(clock=lambda: 1234.5)

    assert audit == ChannelsAudited(
        node="fs1",
        taken_at=1234.5,
        live_uuids=frozenset(row["uuid"] for row in rows),
        agent_legs=frozenset({"ringing-ours", "parked-ours"}),
    )
    assert asked == ["ringing-ours", "parked-ours", "parked-foreign", "just-gone"]


def test_audit_reports_only_this_instances_agent_legs_and_logs_each_leg_of_another_instance_once(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    """Another daemon's legs are never reported, so its idle agent legs are never killed as orphans; a leg from
    before instances existed is this instance's, so that an upgrade still cleans up what it left."""
    theirs = "pbx2-0badcafe"
    owners = {"ours": INSTANCE, "legacy": "_undef_", "theirs-ringing": theirs, "theirs-parked": theirs}
    rows = [channel_row(uuid, "outbound", "park" if "parked" in uuid else "") for uuid in owners]
    listings = [json.dumps({"row_count": len(rows), "rows": rows}), json.dumps({"row_count": 1, "rows": rows[:1]})]

    def freeswitch(_conn: FakeConnection, text: str) -> str | None:
        words = text.split()
        if text == "show channels as json":
            return listings[0]
        if text == "show calls as json":
            return NO_ROWS
        if words[0] == "uuid_getvar":
            return "agent" if words[2] == "fsrouter_leg" else owners[words[1]]
        return None

    node = make_node()
    recorder.wait_for_count(NodeUp, 1)
    fake_fs.on_api = freeswitch
    caplog.set_level(logging.ERROR, logger="fsrouter.adapters.esl")

    audits = [node.audit(), node.audit()]
    listings.pop(0)  # their legs are bridged or gone: no longer idle
    audits.append(node.audit())
    listings[0] = json.dumps({"row_count": len(rows), "rows": rows})  # idle again: worth one more line
    audits.append(node.audit())

    assert [audit.agent_legs for audit in audits] == [{"ours", "legacy"}] * 2 + [{"ours"}] + [{"ours", "legacy"}]
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert [re.search(r"its agent leg (\S+)\)", message).group(1) for message in errors] == [  # type: ignore[union-attr]
        "theirs-ringing",
        "theirs-parked",
    ] * 2
    assert errors[0] == (
        "ESL node fs1: another fsrouter instance pbx2-0badcafe is routing on this node (its agent leg theirs-ringing): "
        f"two daemons on one FreeSWITCH fight over its agents; this instance ({INSTANCE}) leaves that leg alone"
    )


def test_audit_reads_the_clock_before_asking_for_the_listing(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    """A channel that appears while the listing is being made must count as newer than the listing."""
    node = make_node()
    recorder.wait_for_count(NodeUp, 1)
    fake_fs.on_api = lambda _conn, text: NO_ROWS if text == "show calls as json" else None
    _drain(fake_fs)
    listings_sent_when_read: list[int] = []

    def clock() -> float:
        listings_sent_when_read.append(sum(command.endswith("show channels as json") for _, command in _drain(fake_fs)))
        return 7.0

    assert node.audit(clock=clock).taken_at == 7.0
    assert listings_sent_when_read == [0]
    fake_fs.wait_for_command("api show channels as json")


def captured_rows(capture: str, changes: list[dict[str, str]]) -> str:
    """A ``show ... as json`` reply of rows like the captured one, each with ``changes`` applied."""
    body = split_frames(fixture_bytes(f"api/{capture}.raw"))[0].body
    captured: dict[str, str] = json.loads(body)["rows"][0]
    return json.dumps({"row_count": len(changes), "rows": [captured | change for change in changes]})


def test_node_up_and_the_audit_take_active_and_held_channels_for_answered_and_early_ones_for_ringing(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    """An agent leg with early media (a gateway's ringback) still rings: taking it for answered would bridge the
    caller to a phone nobody picked up."""
    states = {"ringing": "RINGING", "early": "EARLY", "active": "ACTIVE", "held": "HELD"}
    channels = captured_rows("show_channels_json", [{"uuid": u, "callstate": state} for u, state in states.items()])

    def freeswitch(_conn: FakeConnection, text: str) -> str | None:
        replies = {"show channels as json": channels, "show calls as json": NO_ROWS}
        if text.startswith("uuid_exists"):
            return "true"
        return "_undef_" if text.startswith("uuid_getvar") else replies.get(text)

    fake_fs.on_api = freeswitch
    node = make_node()
    [up] = recorder.wait_for_count(NodeUp, 1)

    assert isinstance(up, NodeUp) and up.answered_uuids == {"active", "held"}
    assert node.audit().answered_uuids == {"active", "held"}


def test_audit_takes_the_bridged_pairs_from_show_calls(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    """``show calls`` lists a bridged pair once, as its A leg's row with the B leg in the ``b_`` columns, and every
    channel not bridged with empty ``b_`` columns (the captured row is one)."""
    pairs = captured_rows(
        "show_calls_json",
        [
            {"uuid": "waiting-caller"},
            {"uuid": "caller", "callstate": "ACTIVE", "b_uuid": "agent-leg", "b_callstate": "ACTIVE"},
            {"uuid": "ringing-leg", "direction": "outbound"},
        ],
    )
    channels = captured_rows("show_channels_json", [{"uuid": u} for u in ("waiting-caller", "caller", "agent-leg")])

    def freeswitch(_conn: FakeConnection, text: str) -> str | None:
        return {"show channels as json": channels, "show calls as json": pairs}.get(text)

    node = make_node()
    recorder.wait_for_count(NodeUp, 1)
    fake_fs.on_api = freeswitch

    assert node.audit().bridged == {frozenset({"caller", "agent-leg"})}


def test_node_up_lists_the_live_bridged_pairs_and_the_agent_on_each_bridged_agent_leg_of_ours(
    make_node: NodeFactory, fake_fs: FakeFreeSwitch, recorder: EventRecorder
) -> None:
    """What a restarted fsrouter needs to re-attach a conversation to its agent (``NodeUp.bridged``,
    ``NodeUp.agents_of_legs``)."""
    pairs = captured_rows(
        "show_calls_json",
        [
            {"uuid": "caller", "callstate": "ACTIVE", "b_uuid": "agent-leg", "b_callstate": "ACTIVE"},
            {"uuid": "other-a", "b_uuid": "other-b"},  # a conversation fsrouter did not connect
            {"uuid": "ended-a", "b_uuid": "ended-b"},  # show calls lags behind hang-ups: uuid_exists says false
        ],
    )
    uuids = ("caller", "agent-leg", "other-a", "other-b", "ended-a", "ended-b")
    channels = captured_rows("show_channels_json", [{"uuid": uuid, "application": "uuid_bridge"} for uuid in uuids])
    variables = {
        ("agent-leg", "fsrouter_leg"): "agent",
        ("agent-leg", "fsrouter_agent"): "agent-1000",
        ("caller", "fsrouter_agent"): "agent-9",  # a caller asking for an agent is no agent leg
    }

    def freeswitch(_conn: FakeConnection, text: str) -> str | None:
        words = text.split()
        if words[0] == "uuid_exists":
            return "false" if words[1].startswith("ended") else "true"
        if words[0] == "uuid_getvar":
            return variables.get((words[1], words[2]), "_undef_")
        return {"show channels as json": channels, "show calls as json": pairs}.get(text)

    fake_fs.on_api = freeswitch
    make_node()

    [up] = recorder.wait_for_count(NodeUp, 1)
    assert isinstance(up, NodeUp)
    assert up.bridged == {frozenset({"caller", "agent-leg"}), frozenset({"other-a", "other-b"})}
    assert up.agents_of_legs == {"agent-leg": "agent-1000"}


def test_audit_of_a_node_not_connected_raises_not_connected(fake_fs: FakeFreeSwitch, recorder: EventRecorder) -> None:
    node = EslNode("fs1", "127.0.0.1", fake_fs.port, "ClueCon", recorder, instance=INSTANCE)

    with pytest.raises(EslNotConnected):
        node.audit()


def _drain(fake_fs: FakeFreeSwitch) -> list[tuple[int, str]]:
    commands: list[tuple[int, str]] = []
    while not fake_fs.commands.empty():
        commands.append(fake_fs.commands.get())
    return commands
