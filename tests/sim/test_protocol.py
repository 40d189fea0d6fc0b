"""Protocol conformance: replies of the simulator against the real FreeSWITCH reply frames."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fsrouter.sim import Simulator
from fsrouter.sim.encoding import url_encode
from tests.sim.esl_client import RawEslClient, split_frames

API_FIXTURES = Path(__file__).parent.parent / "fixtures" / "esl" / "api"
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def fixture(name: str) -> bytes:
    return (API_FIXTURES / f"{name}.raw").read_bytes()


def shape(frame: bytes) -> bytes:
    """A reply frame with uuids masked; Content-Length fits because every uuid has the same length."""
    return UUID.sub(b"<uuid>", frame)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("2015-01-28 15:00:44", "2015-01-28%2015%3A00%3A44"),
        ("::1", "%3A%3A1"),
        ("sofia/internal/1001@192.168.56.74", "sofia/internal/1001%40192.168.56.74"),
        ("v=0\r\no=x", "v%3D0%0D%0Ao%3Dx"),
        ("100%41", "100%41"),
        ("50% off", "50%25%20off"),
        ("", "_undef_"),
        ("é", "%C3%A9"),
        ("ARRAY::a|:b", "ARRAY%3A%3Aa%7C%3Ab"),
    ],
)
def test_values_are_url_encoded_with_the_freeswitch_rule(value: str, encoded: str) -> None:
    assert url_encode(value) == encoded


def test_auth_and_event_subscription_replies_are_byte_identical(sim: Simulator) -> None:
    client = RawEslClient(sim.port)
    assert client.read_frame().raw == fixture("auth_request")
    assert client.command("auth ClueCon").raw == fixture("auth_ok")
    assert client.command("event plain ALL").raw == fixture("event_plain_all")
    reply = client.command("event plain BACKGROUND_JOB CUSTOM callcenter::info")
    assert reply.raw == fixture("event_plain_bgjob")
    assert client.command("noevents").raw == fixture("noevents")
    assert client.command("event json ALL").raw == fixture("event_json_all")
    client.send("exit")
    assert client.read_until_closed().startswith(fixture("exit") + b"Content-Type: text/disconnect-notice\n")


def test_wrong_password_gets_the_whole_real_connection_bytes(sim: Simulator) -> None:
    client = RawEslClient(sim.port)
    client.send("auth WrongPassword")
    assert client.read_until_closed() == fixture("auth_bad_password")


def test_commands_before_auth_are_refused_but_the_connection_stays(sim: Simulator) -> None:
    client = RawEslClient(sim.port)
    client.read_frame()
    assert client.command("api status").reply_text == "-ERR command not found"
    assert client.command("auth ClueCon").reply_text == "+OK accepted"
    assert client.command("no_such_thing").reply_text == "-ERR command not found"
    assert client.command("event plain").reply_text == "-ERR no keywords supplied"


def test_api_replies_without_uuids_are_byte_identical(sim: Simulator, client: RawEslClient) -> None:
    sim.add_agent("1001", behaviour="busy")
    sim.add_agent("1010", registered=False)
    dead = "00000000-0000-4000-8000-000000000000"
    assert client.api("no_such_command").raw == fixture("unknown_command")
    assert client.api("version").raw == fixture("version")
    assert client.api("show channels as json").raw == fixture("show_channels_json_empty")
    assert client.api(f"uuid_exists {dead}").raw == fixture("uuid_exists_false")
    assert client.api(f"uuid_answer {dead}").raw == fixture("uuid_answer_bad_uuid")
    assert client.api(f"uuid_bridge {dead} {dead}").raw == fixture("uuid_bridge_bad_uuid")
    assert client.api(f"uuid_kill {dead}").raw == shape(fixture("uuid_kill_bad_uuid"))
    assert client.api(f"uuid_getvar {dead} x").raw == fixture("uuid_getvar_bad_uuid")
    assert client.api("originate user/1010 &park()").raw == fixture("originate_sync_unregistered")
    assert client.api("originate user/1001 &park()").raw == fixture("originate_sync_busy")
    assert client.api("originate user/9999 &park()").raw == fixture("originate_sync_no_such_user")
    status_lines = client.api("status").body.splitlines()
    real_lines = fixture("status").split(b"\n\n", 1)[1].splitlines()
    assert status_lines[0].startswith(b"UP 0 years, 0 days, 0 hours, ") and status_lines[1] == real_lines[1]
    assert len(status_lines) == len(real_lines) and status_lines[-1] == real_lines[-1]


def test_api_replies_on_live_channels_match_the_captures(sim: Simulator, client: RawEslClient) -> None:
    sim.add_agent("1000", answer_after=0.01)
    caller = sim.place_call(variables={"fsrouter_queue": "support", "fsrouter_priority": "5"})
    assert client.api(f"uuid_exists {caller}").raw == fixture("uuid_exists_true")
    assert client.api(f"uuid_getvar {caller} fsrouter_queue").raw == fixture("uuid_getvar_fsrouter_queue")
    assert client.api(f"uuid_getvar {caller} no_such_variable").raw == fixture("uuid_getvar_unset")
    rows = json.loads(client.api("show channels as json").body)
    expected_keys = json.loads(fixture("show_channels_json").split(b"\n\n", 1)[1])["rows"][0].keys()
    assert rows["row_count"] == 1 and rows["rows"][0].keys() == expected_keys
    assert client.api(f"uuid_pre_answer {caller}").raw == fixture("uuid_pre_answer_ok")
    assert client.api(f"uuid_answer {caller}").raw == fixture("uuid_answer_ok")
    reply = client.command("bgapi originate {origination_uuid=" + "1" * 8 + "}user/1000 &park()")
    assert shape(reply.raw) == shape(fixture("bgapi_originate_reply"))
    assert sim.wait_until(lambda: "1" * 8 in sim.agent_legs and sim.agent_legs["1" * 8].answered_at is not None)
    assert client.api(f"uuid_bridge {caller} 11111111").body == b"+OK 11111111\n"
    assert client.api(f"uuid_setvar {caller} color blue").body == b"+OK\n"
    assert client.api(f"uuid_getvar {caller} color").body == b"blue"
    assert client.api(f"uuid_kill {caller}").raw == fixture("uuid_kill_ok")


#: columns that differ from one FreeSWITCH, channel or second to the next
PER_INSTANCE_COLUMNS = {"uuid", "created", "created_epoch", "hostname"}


def listing(client: RawEslClient, what: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = json.loads(client.api(f"show {what} as json").body)["rows"]
    return rows


def captured_row(name: str) -> dict[str, str]:
    row: dict[str, str] = json.loads(fixture(name).split(b"\n\n", 1)[1])["rows"][0]
    return row


def test_listings_of_a_parked_caller_match_the_captures_column_for_column(sim: Simulator, client: RawEslClient) -> None:
    """The captured caller (2000 to 5003, parked, not answered) listed by ``show channels`` and ``show calls``."""
    sim.place_call(caller_number="2000", destination="5003")

    for what, capture in (("channels", "show_channels_json"), ("calls", "show_calls_json")):
        [row] = listing(client, what)
        real = captured_row(capture)
        assert list(row) == list(real), what
        assert {k: v for k, v in row.items() if k not in PER_INSTANCE_COLUMNS} == {
            k: v for k, v in real.items() if k not in PER_INSTANCE_COLUMNS
        }, what


def test_show_calls_lists_a_bridged_pair_as_one_row_for_its_a_leg(sim: Simulator, client: RawEslClient) -> None:
    """The ``basic_calls`` view: one row per channel, except a bridged pair, which is one row for the A leg
    (``uuid_bridge``'s first) with the B leg in the ``b_`` columns; ``show channels`` then gives both legs the
    A leg's call uuid (CHANNEL_BRIDGE's Channel-Call-UUID)."""
    sim.add_agent("1000", answer_after=0.01)
    caller = sim.place_call(answer=True)
    leg = "1" * 8
    client.command("bgapi originate {origination_uuid=" + leg + "}user/1000 &park()")
    assert sim.wait_until(lambda: leg in sim.agent_legs and sim.agent_legs[leg].answered_at is not None)
    apart = listing(client, "calls")
    assert sorted((row["uuid"], row["callstate"], row["b_uuid"], row["call_created_epoch"]) for row in apart) == sorted(
        [(caller, "ACTIVE", "", ""), (leg, "ACTIVE", "", "")]
    )

    assert client.api(f"uuid_bridge {caller} {leg}").body == f"+OK {leg}\n".encode()
    assert sim.wait_until(lambda: sim.calls[caller].bridged_to == leg)

    [pair] = listing(client, "calls")
    assert list(pair) == list(captured_row("show_calls_json"))
    assert (pair["uuid"], pair["b_uuid"], pair["callstate"], pair["b_callstate"]) == (caller, leg, "ACTIVE", "ACTIVE")
    assert pair["call_created_epoch"].isdigit()
    assert {row["uuid"]: row["call_uuid"] for row in listing(client, "channels")} == {caller: caller, leg: caller}


def test_bgapi_uses_the_job_uuid_chosen_by_the_client(sim: Simulator, client: RawEslClient) -> None:
    client.send("bgapi version\nJob-UUID: my-job-1")
    reply = client.read_until("command/reply")
    assert reply.reply_text == "+OK Job-UUID: my-job-1" and dict(reply.headers)["Job-UUID"] == "my-job-1"
    job = client.events_until(lambda frame: frame.event_name == "BACKGROUND_JOB")[-1]
    headers = dict(job.event_headers())
    assert headers["Job-UUID"] == "my-job-1" and headers["Job-Command"] == "version"
    assert job.event_inner_body() == b"FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n"


def test_event_frames_put_content_length_first_and_count_bytes(sim: Simulator, client: RawEslClient) -> None:
    sim.place_call(caller_number="2000", variables={"note": "café"})
    frame = client.events_until(lambda f: f.event_name == "CHANNEL_PARK")[-1]
    assert frame.raw.startswith(b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(frame.body))
    assert frame.body.endswith(b"\n\n") and b"variable_note: caf%C3%A9\n" in frame.body


def test_json_events_are_cjson_objects_with_string_values(sim: Simulator) -> None:
    client = RawEslClient(sim.port)
    client.login(events="json BACKGROUND_JOB CHANNEL_PARK")
    sim.place_call()
    park = client.read_until("text/event-json")
    decoded = json.loads(park.body)
    assert decoded["Event-Name"] == "CHANNEL_PARK" and decoded["variable_fsrouter_queue"] == "support"
    client.send("bgapi version")
    job = [f for f in client.events_until(lambda f: b"BACKGROUND_JOB" in f.body)][-1]
    assert json.loads(job.body)["_body"].startswith("FreeSWITCH Version")


def test_filters_nixevent_and_custom_subclasses(sim: Simulator) -> None:
    sim.add_agent("1000")
    client = RawEslClient(sim.port)
    client.login(events="plain CHANNEL_PARK CHANNEL_CREATE CUSTOM sofia::register")
    assert client.command("nixevent CHANNEL_CREATE").reply_text == "+OK events nixed"
    assert client.command("filter Caller-Caller-ID-Number 2001").reply_text == (
        "+OK filter added. [Caller-Caller-ID-Number]=[2001]"
    )
    assert client.command("filter Event-Name -CHANNEL_CREATE").reply_text.startswith("+OK filter added.")
    assert client.command("filter Event-Subclass /^sofia::/").reply_text.startswith("+OK filter added.")
    sim.place_call(caller_number="2000")
    sim.place_call(caller_number="2001")
    sim.register("1000")
    park = client.read_until("text/event-plain")
    assert park.event_name == "CHANNEL_PARK"
    assert dict(park.event_headers())["Caller-Caller-ID-Number"] == "2001"
    register = client.read_until("text/event-plain")
    assert dict(register.event_headers())["Event-Subclass"] == "sofia::register"
    assert client.command("filter delete all").reply_text == "+OK filter deleted. [all][]"


def test_split_frames_round_trips_the_real_plain_capture() -> None:
    data = (API_FIXTURES.parent / "plain" / "abandon.raw").read_bytes()
    frames, rest = split_frames(data)
    assert rest == b"" and b"".join(frame.raw for frame in frames) == data
