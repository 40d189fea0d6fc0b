"""The pure bookkeeping behind the command pipeline: what a node's events say about which commands may go out."""

from __future__ import annotations

import pytest

from fsrouter.adapters.esl_gate import ChannelGate, Verdict
from fsrouter.core.commands import Answer, Bridge, EslCommand, Kill, Originate, PlayMusic, Transfer

NODE = "fs1"


def originate(leg: str = "leg-1", call: str = "caller-1") -> Originate:
    return Originate(node=NODE, leg_uuid=leg, call_uuid=call, endpoint="user/1000", timeout=20)


def kill(uuid: str = "leg-1") -> Kill:
    return Kill(node=NODE, uuid=uuid, cause="ORIGINATOR_CANCEL")


def event(name: str, uuid: str) -> dict[str, str]:
    return {"Event-Name": name, "Unique-ID": uuid}


def job(leg: str) -> dict[str, str]:
    return {
        "Event-Name": "BACKGROUND_JOB",
        "Job-UUID": leg,
        "Job-Command": "originate",
        "Job-Command-Arg": f"{{origination_uuid={leg},fsrouter_leg=agent}}user/1000 &park()",
    }


@pytest.mark.parametrize(
    "command",
    [
        Answer(node=NODE, uuid="caller-1"),
        PlayMusic(node=NODE, uuid="caller-1", source="local_stream://moh"),
        Transfer(node=NODE, uuid="caller-1", destination="4000"),
        Bridge(node=NODE, caller_uuid="caller-1", agent_uuid="leg-1"),
        Bridge(node=NODE, caller_uuid="caller-2", agent_uuid="caller-1"),  # to an agent leg that hung up
        kill("caller-1"),
        originate(call="caller-1"),
    ],
)
def test_every_command_for_a_channel_whose_hangup_was_seen_is_dropped(command: EslCommand) -> None:
    gate = ChannelGate()

    gate.observe(event("CHANNEL_HANGUP_COMPLETE", "caller-1"), "")

    assert ChannelGate().admit(command) is Verdict.SEND
    assert gate.admit(command) is Verdict.DROP


def test_a_kill_of_a_leg_originated_but_not_created_is_held_until_its_channel_create() -> None:
    gate = ChannelGate()
    assert gate.admit(originate()) is Verdict.SEND
    assert gate.unresolved() == {"leg-1"}

    assert gate.admit(kill()) is Verdict.HOLD
    assert gate.observe(event("CHANNEL_CREATE", "caller-9"), "") is None  # another channel

    assert gate.observe(event("CHANNEL_CREATE", "leg-1"), "") == kill()
    assert gate.unresolved() == frozenset()
    assert gate.admit(kill()) is Verdict.SEND  # the released kill goes out when written again


@pytest.mark.parametrize(
    ("headers", "body"),
    [(event("CHANNEL_OUTGOING", "leg-1"), ""), (job("leg-1"), "+OK leg-1\n")],
    ids=["any event of the leg", "its job's +OK"],
)
def test_any_sign_of_the_leg_releases_its_held_kill(headers: dict[str, str], body: str) -> None:
    gate = ChannelGate()
    gate.admit(originate())
    gate.admit(kill())

    assert gate.observe(headers, body) == kill()


@pytest.mark.parametrize(
    ("headers", "body"),
    [(job("leg-1"), "-ERR USER_BUSY\n"), (event("CHANNEL_HANGUP", "leg-1"), "")],
    ids=["its job's -ERR", "its hang-up"],
)
def test_a_held_kill_is_dropped_when_the_leg_never_existed_or_is_gone(headers: dict[str, str], body: str) -> None:
    gate = ChannelGate()
    gate.admit(originate())
    gate.admit(kill())

    assert gate.observe(headers, body) is None

    assert gate.unresolved() == frozenset()
    assert gate.observe(event("CHANNEL_CREATE", "leg-1"), "") is None
    assert gate.admit(kill()) is Verdict.DROP


def test_the_kill_of_a_leg_whose_originate_was_dropped_is_a_no_op() -> None:
    gate = ChannelGate()
    gate.observe(event("CHANNEL_HANGUP", "caller-1"), "")

    assert gate.admit(originate()) is Verdict.DROP
    assert gate.admit(kill()) is Verdict.DROP
    assert gate.unresolved() == frozenset()


def test_a_kill_without_a_reply_and_the_held_kills_are_written_again_on_the_next_connection() -> None:
    gate = ChannelGate()
    gate.admit(originate("leg-1"))
    gate.admit(kill("leg-1"))
    gate.admit(originate("leg-2"))  # in flight, nobody asked to kill it
    gate.unconfirmed(kill("leg-3"))
    assert gate.unresolved() == {"leg-1", "leg-2", "leg-3"}

    assert gate.reset() == [kill("leg-1"), kill("leg-3")]
    assert gate.unresolved() == frozenset()
    assert gate.reset() == []


def test_a_kill_without_a_reply_is_settled_by_the_hangup_of_its_leg() -> None:
    gate = ChannelGate()
    gate.unconfirmed(kill())

    gate.observe(event("CHANNEL_HANGUP", "leg-1"), "")

    assert gate.unresolved() == frozenset()
    assert gate.reset() == []


def test_only_the_last_channels_are_remembered() -> None:
    gate = ChannelGate(remember=2)
    for uuid in ("a", "b", "c"):
        gate.observe(event("CHANNEL_HANGUP", uuid), "")
    for leg in ("x", "y", "z"):
        gate.admit(originate(leg))

    assert [gate.admit(kill(uuid)) for uuid in ("a", "b", "c")] == [Verdict.SEND, Verdict.DROP, Verdict.DROP]
    assert gate.unresolved() == {"y", "z"}
