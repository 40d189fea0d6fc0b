"""A caller leaving park, a bridged caller transferred back into another queue, and a phone's registrations, against
tests/fixtures/esl-caller/plain/{leave_park,repark_after_transfer,registration}.raw (``scenarios.json`` of the
caller-side capture set tells how each was recorded).

The channel scenarios are compared like test_vs_capture's (same helpers, same ignored events); the
``repark_after_transfer`` capture was trimmed of its CHANNEL_STATE frames, so they are left out of the simulated
stream too. Registration events are CUSTOM, which test_vs_capture ignores: they are compared here by subclass and
header names, sofia::pre_register and sofia::register_attempt (the digest challenge, which fsrouter does not read)
excepted.
"""

from __future__ import annotations

from pathlib import Path

from fsrouter.sim import Simulator
from tests.sim.esl_client import Frame, RawEslClient, split_frames
from tests.sim.test_vs_capture import assert_like_capture, originate, run, wait_destroyed

CAPTURES = Path(__file__).parent.parent / "fixtures" / "esl-caller"
REGISTRATION_SUBCLASSES = ("sofia::register", "sofia::unregister", "sofia::expire")


def test_a_parked_caller_transferred_to_the_dialplan_leaves_park_first(sim: Simulator) -> None:
    sim.add_extension(
        "5005",
        ("set", "fsrouter_left_park=true"),
        ("playback", "tone_stream://%(500,500,440);loops=2"),
        ("hangup", "NORMAL_CLEARING"),
    )

    def scenario(sim: Simulator, control: RawEslClient, listener: RawEslClient) -> None:
        caller = sim.place_call(caller_number="2000", destination="5003")
        assert control.api(f"uuid_answer {caller}").body == b"+OK\n"
        reply = (CAPTURES / "api" / "uuid_transfer_ok.raw").read_bytes()
        assert control.api(f"uuid_transfer {caller} 5005 XML default").raw == reply
        wait_destroyed(listener, caller)
        assert sim.calls[caller].transferred_to == "5005" and sim.calls[caller].hangup_cause == "NORMAL_CLEARING"

    assert_like_capture("leave_park", run(sim, scenario), plain=CAPTURES / "plain")


def test_a_bridged_caller_transferred_into_another_queue_parks_again_on_the_same_channel(sim: Simulator) -> None:
    sim.add_agent("1000", behaviour="answer", answer_after=0.05)
    sim.add_extension("5004", ("set", "fsrouter_queue=sales"), ("pre_answer", ""), ("park", ""))
    agent_leg = "f95cabf6-49dc-4fa5-b970-26b6d36a11e7"

    def scenario(sim: Simulator, control: RawEslClient, listener: RawEslClient) -> None:
        caller = sim.place_call(caller_number="2000", destination="5003", talk_time=30.0)
        assert control.api(f"uuid_answer {caller}").body == b"+OK\n"
        assert originate(control, listener, agent_leg, "1000") == f"+OK {agent_leg}\n".encode()
        assert control.api(f"uuid_bridge {caller} {agent_leg}").body == f"+OK {agent_leg}\n".encode()
        listener.events_until(lambda frame: frame.event_name == "CHANNEL_BRIDGE")
        assert control.api(f"uuid_transfer {caller} 5004 XML default").body == b"+OK\n"
        listener.events_until(
            lambda frame: frame.event_name == "CHANNEL_PARK" and ("Unique-ID", caller) in frame.event_headers()
        )
        getvar = (CAPTURES / "api" / "uuid_getvar_after_transfer.raw").read_bytes()
        assert control.api(f"uuid_getvar {caller} fsrouter_queue").raw == getvar
        assert control.api(f"uuid_exists {agent_leg}").body == b"false"
        assert control.api(f"uuid_kill {caller}").body == b"+OK\n"
        wait_destroyed(listener, caller)

    simulated = [frame for frame in run(sim, scenario) if frame.event_name != "CHANNEL_STATE"]
    assert_like_capture("repark_after_transfer", simulated, plain=CAPTURES / "plain")


def registration_events(frames: list[Frame]) -> list[Frame]:
    return [frame for frame in frames if dict(frame.event_headers()).get("Event-Subclass") in REGISTRATION_SUBCLASSES]


def test_registrations_are_fired_with_the_captured_headers(sim: Simulator) -> None:
    sim.add_agent("1001")
    listener = RawEslClient(sim.port)
    listener.login(events="plain ALL")
    sim.register("1001", expires=60)
    sim.register("1001", expires=60)
    sim.unregister("1001")
    sim.register("1001", expires=5)
    sim.expire("1001")
    simulated = registration_events(listener.events_until(lambda frame: b"sofia%3A%3Aexpire" in frame.body))
    frames, _ = split_frames((CAPTURES / "plain" / "registration.raw").read_bytes())
    real = registration_events(frames)

    def subclass(frame: Frame) -> str:
        return dict(frame.event_headers())["Event-Subclass"]

    assert [subclass(frame) for frame in simulated] == [subclass(frame) for frame in real]
    for real_event, sim_event in zip(real, simulated, strict=True):
        missing = {name for name, _ in real_event.event_headers()} - {name for name, _ in sim_event.event_headers()}
        assert not missing, f"{subclass(real_event)}: headers missing {sorted(missing)}"
    expired = dict(simulated[-1].event_headers())
    assert (expired["user"], float(expired["expires"]) > 1_000_000_000) == ("1001", True)  # an epoch, not seconds
