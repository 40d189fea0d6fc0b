"""Translation of FreeSWITCH events to core events (on recorded bytes) and of core commands to ESL lines."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fsrouter.adapters.esl_translate import (
    ADAPTER_EVENTS,
    SUBSCRIBED_EVENTS,
    SUBSCRIBED_NAMES,
    Malformed,
    dialstring_value,
    encode,
    registered_users,
    reply_error,
    sofia_profiles,
    switch_true,
    translate,
    translate_or_malformed,
)
from fsrouter.core.commands import Answer, Bridge, EslCommand, Kill, Originate, PlayMusic, Transfer
from fsrouter.core.events import (
    AgentControl,
    AgentRegistration,
    CallLeftPark,
    CallParked,
    ChannelAnswered,
    ChannelBridged,
    ChannelHungUp,
    Event,
    HoldChanged,
    OriginateFailed,
    OriginateSucceeded,
)
from fsrouter.errors import UnsafeCommand
from tests.adapters.esl_helpers import (
    INSTANCE,
    fixture_bytes,
    scenario,
    scenario_value,
    split_frames,
    translated_events,
)

NODE = "fs1"


def untimed(events: list[Event]) -> list[Event]:
    """``events`` with FreeSWITCH's hang-up times left out (``test_a_hang_up_carries_freeswitch_s_hang_up_time``
    checks them)."""
    return [replace(event, hung_up_at=None) if isinstance(event, ChannelHungUp) else event for event in events]


def hung_up_twice(uuid: str, cause: str) -> list[ChannelHungUp]:
    """CHANNEL_HANGUP then CHANNEL_HANGUP_COMPLETE: the router sees both and must treat them as one."""
    return [ChannelHungUp(node=NODE, uuid=uuid, cause=cause)] * 2


# --- the recorded scenarios -------------------------------------------------------------------------------


def test_abandoned_caller_is_parked_for_its_queue_then_hangs_up() -> None:
    caller = scenario_value("abandon", "caller_uuid")

    events = translated_events("plain/abandon.raw")

    parked = events[0]
    assert isinstance(parked, CallParked)
    assert (parked.uuid, parked.caller_number, parked.caller_name, parked.destination) == (
        caller,
        "2000",
        "Caller 2000",
        "5003",
    )
    assert parked.answered is False
    assert parked.variables["fsrouter_queue"] == "support"
    assert parked.variables["fsrouter_priority"] == "5"
    assert untimed(events[1:]) == hung_up_twice(caller, "ORIGINATOR_CANCEL")


def test_parked_burst_gives_one_call_parked_per_caller() -> None:
    show_channels = scenario_value("parked_burst", "reply")
    events = translated_events("plain/parked_burst.raw")

    parked = [event for event in events if isinstance(event, CallParked)]
    assert [event.uuid for event in parked] == [
        "97f130ff-1c45-4430-abe9-8a6e4f49558f",
        "9b034a2f-4d8c-4eb4-81ca-658b58cdd502",
        "6a514631-6d63-499b-9bf6-e2c10bcd6335",
    ]
    assert all(event.uuid in show_channels for event in parked)
    assert {event.variables["fsrouter_queue"] for event in parked} == {"support"}
    hangups = untimed([event for event in events if isinstance(event, ChannelHungUp)])
    assert sorted(hangups, key=lambda e: e.uuid) == sorted(
        [hangup for event in parked for hangup in hung_up_twice(event.uuid, "ORIGINATOR_CANCEL")],
        key=lambda e: e.uuid,
    )


def test_bridged_call_answers_both_legs_bridges_and_clears() -> None:
    caller = scenario_value("bridge_answered", "caller_uuid")
    agent = scenario_value("bridge_answered", "agent_uuid")

    events = translated_events("plain/bridge_answered.raw")

    # Caller dialled 5000, which is not marked for fsrouter: no CallParked; the job's +OK follows the leg's answer.
    assert untimed(events) == [
        ChannelAnswered(node=NODE, uuid=caller),
        ChannelAnswered(node=NODE, uuid=agent),
        OriginateSucceeded(node=NODE, leg_uuid=agent),
        ChannelBridged(node=NODE, uuid=caller, other_uuid=agent),
        ChannelHungUp(node=NODE, uuid=caller, cause="NORMAL_CLEARING"),
        ChannelHungUp(node=NODE, uuid=agent, cause="NORMAL_CLEARING"),
        ChannelHungUp(node=NODE, uuid=agent, cause="NORMAL_CLEARING"),
        ChannelHungUp(node=NODE, uuid=caller, cause="NORMAL_CLEARING"),
    ]


@pytest.mark.parametrize(
    ("name", "cause", "leg_hangups"),
    [
        ("originate_busy", "USER_BUSY", 2),
        ("originate_no_answer", "NO_ANSWER", 2),
        ("originate_unregistered", "USER_NOT_REGISTERED", 0),
    ],
)
def test_failed_originate_names_the_leg_and_the_cause(name: str, cause: str, leg_hangups: int) -> None:
    leg = scenario(name)["steps"][0]["send"].split("origination_uuid=")[1].split(",")[0].split("}")[0]

    events = translated_events(f"plain/{name}.raw")

    assert [e for e in events if isinstance(e, OriginateFailed)] == [
        OriginateFailed(node=NODE, leg_uuid=leg, cause=cause)
    ]
    assert untimed([e for e in events if isinstance(e, ChannelHungUp)]) == [
        ChannelHungUp(node=NODE, uuid=leg, cause=cause)
    ] * leg_hangups


def test_successful_originate_job_names_the_leg() -> None:
    job = next(
        frame
        for frame in split_frames(fixture_bytes("plain/bridge_answered.raw"))
        if frame.event_headers.get("Event-Name") == "BACKGROUND_JOB"
    )
    assert job.event_body.startswith("+OK ")
    leg = scenario_value("bridge_answered", "agent_uuid")
    assert translate(job.event_headers, job.event_body, NODE) == OriginateSucceeded(node=NODE, leg_uuid=leg)


# --- rules on synthetic headers ----------------------------------------------------------------------------


def park_headers(**variables: str) -> dict[str, str]:
    headers = {
        "Event-Name": "CHANNEL_PARK",
        "Unique-ID": "u-1",
        "Answer-State": "ringing",
        "Caller-Caller-ID-Number": "2000",
    }
    headers.update({f"variable_{name}": value for name, value in variables.items()})
    return headers


@pytest.mark.parametrize("flag", ["true", "yes", "on", "1", "TRUE", "t", "enabled"])
def test_park_marked_with_a_true_fsrouter_flag_is_a_caller(flag: str) -> None:
    event = translate(park_headers(fsrouter=flag), "", NODE)
    assert isinstance(event, CallParked)
    assert event.variables == {"fsrouter": flag}


@pytest.mark.parametrize("flag", ["false", "no", "0", "", "maybe"])
def test_park_with_a_false_fsrouter_flag_is_not_ours(flag: str) -> None:
    assert translate(park_headers(fsrouter=flag), "", NODE) is None


def test_park_of_our_own_agent_leg_is_never_a_caller() -> None:
    headers = park_headers(fsrouter_queue="support", fsrouter_leg="agent", fsrouter_call="c-1")
    assert translate(headers, "", NODE) is None


@pytest.mark.parametrize(("state", "answered"), [("answered", True), ("early", True), ("ringing", False)])
def test_park_tells_whether_the_caller_was_already_answered(state: str, answered: bool) -> None:
    headers = park_headers(fsrouter_queue="sales") | {"Answer-State": state}
    event = translate(headers, "", NODE)
    assert isinstance(event, CallParked)
    assert event.answered is answered


def test_control_characters_in_what_the_caller_sends_are_dropped_at_translation() -> None:
    headers = park_headers(fsrouter_queue="sales") | {
        "Caller-Caller-ID-Number": "20\x0000\x7f",
        "Caller-Caller-ID-Name": "Zo\u00eb\x1b[2J\u0085 Smith\t",
        "Caller-Destination-Number": "5003\r\n",
    }
    event = translate(headers, "", NODE)
    assert isinstance(event, CallParked)
    assert (event.caller_number, event.caller_name, event.destination) == ("2000", "Zo\u00eb[2J Smith", "5003")


@pytest.mark.parametrize(("name", "held"), [("CHANNEL_HOLD", True), ("CHANNEL_UNHOLD", False)])
def test_hold_and_unhold_of_a_leg(name: str, held: bool) -> None:
    headers = {"Event-Name": name, "Unique-ID": "leg-1", "Channel-Call-State": "HELD" if held else "ACTIVE"}
    assert translate(headers, "", NODE) == HoldChanged(node=NODE, uuid="leg-1", held=held)


def test_hangup_cause_falls_back_to_the_channel_variable() -> None:
    headers = {
        "Event-Name": "CHANNEL_HANGUP_COMPLETE",
        "Unique-ID": "u-1",
        "variable_hangup_cause": "NO_ANSWER",
    }
    assert translate(headers, "", NODE) == ChannelHungUp(node=NODE, uuid="u-1", cause="NO_ANSWER")


def test_originate_job_without_origination_uuid_uses_the_job_uuid() -> None:
    headers = {"Event-Name": "BACKGROUND_JOB", "Job-Command": "originate", "Job-UUID": "leg-9"}
    assert translate(headers, "-ERR CALL_REJECTED\n", NODE) == OriginateFailed(
        node=NODE, leg_uuid="leg-9", cause="CALL_REJECTED"
    )


def test_non_originate_jobs_are_ignored() -> None:
    headers = {"Event-Name": "BACKGROUND_JOB", "Job-Command": "status", "Job-UUID": "j"}
    assert translate(headers, "-ERR nope\n", NODE) is None


@pytest.mark.parametrize(
    ("subclass", "user_headers", "registered"),
    [
        ("sofia::register", {"from-user": "1000", "username": "ignored"}, True),
        ("sofia::register", {"username": "1001"}, True),
        ("sofia::unregister", {"from-user": "1000"}, False),
    ],
)
def test_sofia_registration_tracks_the_agent_phone(
    subclass: str, user_headers: dict[str, str], registered: bool
) -> None:
    headers = {"Event-Name": "CUSTOM", "Event-Subclass": subclass, **user_headers}
    expected_user = user_headers.get("from-user") or user_headers["username"]
    assert translate(headers, "", NODE) == AgentRegistration(node=NODE, user=expected_user, registered=registered)


def test_phone_feature_code_event_controls_the_agent() -> None:
    headers = {
        "Event-Name": "CUSTOM",
        "Event-Subclass": "fsrouter::agent",
        "Agent": "agent-1000",
        "Action": "Break",
    }
    assert translate(headers, "", NODE) == AgentControl(agent_id="agent-1000", action="break", source="phone")


NOT_FOR_US = [
    {},
    {"Event-Name": "HEARTBEAT", "Core-UUID": "c"},
    {"Event-Name": "CUSTOM", "Event-Subclass": "fsrouter::agent", "Agent": "a", "Action": "dance"},
    {"Event-Name": "CUSTOM", "Event-Subclass": "callcenter::info"},
    {"Event-Name": "BACKGROUND_JOB", "Job-Command": "originate"},
    {"Event-Name": "CHANNEL_CREATE", "Unique-ID": "leg-1"},  # the ESL adapter's own (ADAPTER_EVENTS)
]
MALFORMED = [
    {"Event-Name": "CHANNEL_PARK", "variable_fsrouter_queue": "support"},  # no Unique-ID
    {"Event-Name": "CHANNEL_ANSWER"},
    {"Event-Name": "CHANNEL_BRIDGE", "Unique-ID": "a"},  # no other leg
    {"Event-Name": "CHANNEL_HOLD"},
    {"Event-Name": "CUSTOM", "Event-Subclass": "fsrouter::agent"},
    {"Event-Name": "CUSTOM", "Event-Subclass": "sofia::register"},
]


@pytest.mark.parametrize("headers", NOT_FOR_US + MALFORMED)
def test_unknown_or_malformed_events_give_none_without_raising(headers: dict[str, str]) -> None:
    assert translate(headers, "-ERR X", NODE) is None


@pytest.mark.parametrize("headers", NOT_FOR_US)
def test_events_the_router_has_no_use_for_are_not_malformed(headers: dict[str, str]) -> None:
    assert translate_or_malformed(headers, "-ERR X", NODE) is None


@pytest.mark.parametrize("headers", MALFORMED)
def test_events_missing_a_header_the_router_needs_are_malformed(headers: dict[str, str]) -> None:
    assert isinstance(translate_or_malformed(headers, "-ERR X", NODE), Malformed)


def test_a_recorded_event_with_its_channel_uuid_header_corrupted_is_malformed() -> None:
    answer = next(
        frame
        for frame in split_frames(fixture_bytes("plain/bridge_answered.raw"))
        if frame.event_headers.get("Event-Name") == "CHANNEL_ANSWER"
    )
    headers = {name.replace("Unique-ID", "Unique-lD"): value for name, value in answer.event_headers.items()}

    assert translate_or_malformed(headers, answer.event_body, NODE) == Malformed("no 'Unique-ID' header")
    assert translate(headers, answer.event_body, NODE) is None


def test_subscription_lists_every_event_the_translator_handles_and_those_the_adapter_tracks() -> None:
    assert SUBSCRIBED_EVENTS.startswith("event plain ")
    assert ADAPTER_EVENTS <= set(SUBSCRIBED_NAMES)
    assert set(SUBSCRIBED_NAMES) == {
        "CHANNEL_CREATE",
        "CHANNEL_PARK",
        "CHANNEL_UNPARK",
        "CHANNEL_ANSWER",
        "CHANNEL_BRIDGE",
        "CHANNEL_HOLD",
        "CHANNEL_UNHOLD",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
        "BACKGROUND_JOB",
        "HEARTBEAT",
        "sofia::register",
        "sofia::unregister",
        "sofia::expire",
        "fsrouter::agent",
    }


# --- encoding commands -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "lines"),
    [
        (Answer(node=NODE, uuid="c"), ["api uuid_answer c"]),
        (
            PlayMusic(node=NODE, uuid="c", source="local_stream://moh"),
            ["api uuid_broadcast c local_stream://moh aleg"],
        ),
        (Bridge(node=NODE, caller_uuid="c", agent_uuid="a"), ["api uuid_break c all", "api uuid_bridge c a"]),
        (Kill(node=NODE, uuid="a", cause="ORIGINATOR_CANCEL"), ["api uuid_kill a ORIGINATOR_CANCEL"]),
        (
            Transfer(node=NODE, uuid="c", destination="6000", context="overflow"),
            ["api uuid_transfer c 6000 XML overflow"],
        ),
    ],
)
def test_simple_commands_are_one_api_line_each(command: Answer, lines: list[str]) -> None:
    assert encode(command, instance=INSTANCE) == lines


def test_originate_tags_the_agent_leg_and_uses_the_leg_uuid_as_job_uuid() -> None:
    command = Originate(
        node=NODE,
        leg_uuid="leg-1",
        call_uuid="call-1",
        endpoint="user/1000",
        timeout=19.2,
        caller_number="2000",
        caller_name="Caller 2000",
        variables={"fsrouter_queue": "support"},
    )

    (line,) = encode(command, instance=INSTANCE)

    assert line == (
        "bgapi originate {origination_uuid=leg-1,originate_timeout=20,ignore_early_media=true,"
        f"fsrouter_leg=agent,fsrouter_instance={INSTANCE},fsrouter_call=call-1,origination_caller_id_number=2000,"
        "origination_caller_id_name=Caller\\s2000,fsrouter_queue=support}user/1000 &park()\n"
        "Job-UUID: leg-1"
    )


def test_originate_extra_variables_cannot_override_the_tags() -> None:
    command = Originate(
        node=NODE,
        leg_uuid="leg-1",
        call_uuid="c",
        endpoint="user/1",
        timeout=5,
        variables={"fsrouter_leg": "x", "fsrouter_instance": "someone-else"},
    )
    (line,) = encode(command, instance=INSTANCE)
    assert f"fsrouter_leg=agent,fsrouter_instance={INSTANCE}," in line
    assert "fsrouter_leg=x" not in line and "someone-else" not in line


def test_originate_rejects_a_variable_name_that_would_break_the_command() -> None:
    command = Originate(
        node=NODE, leg_uuid="l", call_uuid="c", endpoint="user/1", timeout=5, variables={"a,b": "1"}
    )
    with pytest.raises(UnsafeCommand, match="variable name"):
        encode(command, instance=INSTANCE)


INJECTION = "user/1001 &park()\n\napi fsctl shutdown"


@pytest.mark.parametrize(
    "command",
    [
        Originate(node=NODE, leg_uuid="l", call_uuid="c", endpoint=INJECTION, timeout=5),
        Originate(node=NODE, leg_uuid="l\n\napi fsctl shutdown", call_uuid="c", endpoint="user/1", timeout=5),
        Originate(node=NODE, leg_uuid="l", call_uuid="c", endpoint="{origination_uuid=x}user/1", timeout=5),
        Originate(node=NODE, leg_uuid="l", call_uuid="c", endpoint="[origination_uuid=x]user/1", timeout=5),
        Originate(node=NODE, leg_uuid="l", call_uuid="c", endpoint="user/1,user/2", timeout=5),
        Originate(node=NODE, leg_uuid="l", call_uuid="c", endpoint="user/1", timeout=float("inf")),
        Originate(node=NODE, leg_uuid="l", call_uuid="c", endpoint="user/1", timeout=5, variables={"a\n": "1"}),
        PlayMusic(node=NODE, uuid="c", source="local_stream://moh\n\napi fsctl shutdown"),
        PlayMusic(node=NODE, uuid="c", source="/sounds/my music.wav"),
        Transfer(node=NODE, uuid="c", destination="5000\n\napi fsctl shutdown"),
        Transfer(node=NODE, uuid="c", destination="5000 inline"),
        Transfer(node=NODE, uuid="c", destination="-both"),
        Transfer(node=NODE, uuid="c", destination=""),
        Kill(node=NODE, uuid="c\x00", cause="NORMAL_CLEARING"),
        Answer(node=NODE, uuid="c\rapi fsctl shutdown"),
        Bridge(node=NODE, caller_uuid="c", agent_uuid="a b"),
    ],
    ids=lambda command: type(command).__name__,
)
def test_encode_refuses_a_command_that_freeswitch_would_misread(command: EslCommand) -> None:
    """Whatever put it in the command (rules, FreeSWITCH, a bug): never written, reported as a failed command."""
    with pytest.raises(UnsafeCommand, match="refused to send"):
        encode(command, instance=INSTANCE)


def test_encode_keeps_dial_strings_and_sources_freeswitch_reads_as_written() -> None:
    originate = Originate(
        node=NODE, leg_uuid="l", call_uuid="c", endpoint="sofia/gateway/gw1/+33612345678@10.0.0.1:5060", timeout=5
    )
    line = encode(originate, instance=INSTANCE)[0]
    assert line.split("}", 1)[1].startswith("sofia/gateway/gw1/+33612345678@10.0.0.1:5060 &park()")
    assert encode(PlayMusic(node=NODE, uuid="c", source="tone_stream://%(250,250,480)"), instance=INSTANCE) == [
        "api uuid_broadcast c tone_stream://%(250,250,480) aleg"
    ]


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain", "plain"),
        ("Doe, John", "Doe\\,\\sJohn"),
        ("a,b,c", "a\\,b\\,c"),
        ("  padded  ", "padded"),
        ("O'Brien {x} ${evil}\n", "OBrien\\sx\\sevil"),
        ("x=y", "x=y"),
    ],
)
def test_dialstring_values_survive_freeswitch_splitting(value: str, escaped: str) -> None:
    assert dialstring_value(value) == escaped


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("+OK\n", None),
        ("+OK 333eedbb\n", None),
        ("support", None),
        ("_undef_", None),
        ("true", None),
        ('{"row_count": 0}\n', None),
        ("-ERR No such channel!\n", "-ERR No such channel!"),
        ("-ERR Invalid uuid\n", "-ERR Invalid uuid"),
        ("-ERROR\n", "-ERROR"),
        ("-USAGE: <uuid>\n", "-USAGE: <uuid>"),
        ("-ERR no reply\n", "-ERR no reply"),
    ],
)
def test_reply_error_finds_failures_in_api_and_bgapi_replies(reply: str, error: str | None) -> None:
    assert reply_error(reply) == error


def test_reply_error_on_every_recorded_api_reply() -> None:
    failing = {
        "uuid_bridge_bad_uuid",
        "uuid_bridge_bad_peer_uuid",
        "uuid_answer_bad_uuid",
        "uuid_kill_bad_uuid",
        "uuid_getvar_bad_uuid",
        "originate_sync_unregistered",
        "originate_sync_busy",
        "originate_sync_no_such_user",
        "unknown_command",
    }
    succeeding = {"uuid_answer_ok", "uuid_bridge_ok", "uuid_exists_false", "show_channels_json_empty"}
    for name in failing | succeeding:
        (frame,) = split_frames(fixture_bytes(f"api/{name}.raw"))
        assert (reply_error(frame.body.decode()) is not None) == (name in failing), name


@pytest.mark.parametrize(("value", "expected"), [("Yes", True), ("2", True), ("off", False), (None, False)])
def test_switch_true_reads_booleans_like_freeswitch(value: str | None, expected: bool) -> None:
    assert switch_true(value) is expected


# --- hang-up times and registrations ---------------------------------------------------------------------


def test_a_hang_up_carries_freeswitch_s_hang_up_time() -> None:
    """The record of a hang-up learnt late ends when the caller left (``ChannelHungUp.hung_up_at``): the
    recorded CHANNEL_HANGUP has no Caller-Channel-Hangup-Time yet (0) and gives its event date, the same instant
    HANGUP_COMPLETE gives as the hang-up time."""
    frames = {
        frame.event_headers["Event-Name"]: frame
        for frame in split_frames(fixture_bytes("plain/abandon.raw"))
        if frame.event_headers.get("Event-Name", "").startswith("CHANNEL_HANGUP")
    }
    hangup, complete = (frames[name].event_headers for name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"))

    assert (hangup["Caller-Channel-Hangup-Time"], complete["Caller-Channel-Hangup-Time"]) == (
        "0",
        hangup["Event-Date-Timestamp"],
    )
    assert [translate(headers, "", NODE) for headers in (hangup, complete)] == [
        ChannelHungUp(
            node=NODE,
            uuid=hangup["Unique-ID"],
            cause="ORIGINATOR_CANCEL",
            hung_up_at=int(hangup["Event-Date-Timestamp"]) / 1_000_000,
        )
    ] * 2


def test_without_a_hang_up_time_the_event_date_is_the_hang_up_time_and_without_either_none() -> None:
    headers = {"Event-Name": "CHANNEL_HANGUP", "Unique-ID": "u-1", "Caller-Channel-Hangup-Time": "0"}

    assert translate({**headers, "Event-Date-Timestamp": "1795430871370444"}, "", NODE) == ChannelHungUp(
        node=NODE, uuid="u-1", hung_up_at=1795430871.370444
    )
    assert translate(headers, "", NODE) == ChannelHungUp(node=NODE, uuid="u-1")


def test_registrations_are_read_from_sofia_status_profile_reg() -> None:
    """Three users registered; ``show registrations`` (the core table, written asynchronously) missed 1001."""
    reply = fixture_bytes("../esl-caller/api/sofia_status_profile_reg.raw").decode().split("\n\n", 1)[1]

    assert registered_users(reply) == frozenset({"1000", "1001", "1002"})
    assert registered_users("\nRegistrations:\n" + "=" * 97 + "\nTotal items returned: 0\n") == frozenset()


def test_sofia_status_lists_the_profiles_not_gateways_nor_aliases() -> None:
    rule = "=" * 97
    reply = (
        f"                     Name\t   Type\t                                       Data\tState\n{rule}\n"
        "            external\tprofile\t         sip:mod_sofia@192.168.1.10:5080\tRUNNING (0)\n"
        "external::example.com\tgateway\t                 sip:joeuser@example.com\tNOREG\n"
        "        192.168.1.10\t  alias\t                                internal\tALIASED\n"
        "            internal\tprofile\t         sip:mod_sofia@192.168.1.10:5060\tRUNNING (0)\n"
        f"{rule}\n2 profiles 1 alias\n"
    )

    assert sofia_profiles(reply) == ["external", "internal"]

# --- leaving park and registration per node (tests/fixtures/esl-caller/plain) -------------------------------------


def caller_capture(name: str) -> list[dict[str, str]]:
    path = Path(__file__).parent.parent / "fixtures" / "esl-caller" / "plain" / f"{name}.raw"
    return [frame.event_headers for frame in split_frames(path.read_bytes()) if frame.event_headers]


def test_a_caller_leaving_park_is_translated_and_the_unparks_of_bridges_and_hang_ups_are_not() -> None:
    left = [translate(h, "", NODE) for h in caller_capture("leave_park") if h.get("Event-Name") == "CHANNEL_UNPARK"]
    assert left == [CallLeftPark(node=NODE, uuid=left[0].uuid, destination="5005")]  # type: ignore[union-attr]
    reparked = [translate(h, "", NODE) for h in caller_capture("repark_after_transfer")]
    unparks = [event for event in reparked if isinstance(event, CallLeftPark)]
    assert (
        len(unparks) == 1
    )  # the caller's at the bridge (the router knows it sent it); not the agent leg's, not a hang-up's


def test_register_unregister_and_expire_are_registrations_on_the_node() -> None:
    events = [translate(h, "", NODE) for h in caller_capture("registration") if h.get("Event-Name") == "CUSTOM"]
    assert [event for event in events if event is not None] == [
        AgentRegistration(node=NODE, user="1001", registered=registered)
        for registered in (True, True, False, True, False)
    ]
