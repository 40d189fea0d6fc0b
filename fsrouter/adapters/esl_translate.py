"""Pure translation between FreeSWITCH Event Socket text and fsrouter's core events and commands.

No sockets and no greenswitch here, so every rule can be tested on the recorded fixture bytes. The transport
(``adapters/esl.py``) hands ``translate`` the already URL-decoded headers of one event and its inner body, and
sends the lines ``encode`` returns.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fsrouter.core.commands import Answer, Bridge, EslCommand, Kill, Originate, PlayMusic, Transfer
from fsrouter.core.esl_safety import Slot, unsafe_reason
from fsrouter.core.events import (
    AGENT_ACTIONS,
    AgentAction,
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

AGENT_CONTROL_SUBCLASS = "fsrouter::agent"
"""CUSTOM subclass a dialplan feature code fires (``Agent``, ``Action`` headers) to log an agent in/out."""

REGISTRATION_SUBCLASSES = {"sofia::register": True, "sofia::unregister": False, "sofia::expire": False}
"""The CUSTOM subclasses of a phone's registration on a node, and whether each means registered (``registration``
capture: sofia::register for a registration and each refresh, sofia::unregister for Expires 0, sofia::expire when
a registration lapsed)."""

SUBSCRIBED_EVENTS = (
    "event plain CHANNEL_CREATE CHANNEL_PARK CHANNEL_UNPARK CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_HOLD CHANNEL_UNHOLD "
    "CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB HEARTBEAT "
    f"CUSTOM {' '.join(REGISTRATION_SUBCLASSES)} {AGENT_CONTROL_SUBCLASS}"
)
"""The one subscription command fsrouter sends: only what the router acts on, because every event costs parse
time in our process. CHANNEL_PROGRESS (agent phone ringing) is left out until the router has a use for it.
CHANNEL_CREATE is for the adapter alone (``ADAPTER_EVENTS``).

A caller leaving park is heard from CHANNEL_UNPARK alone (two per connected call: the caller's and the agent leg's
at the bridge). The ``leave_park`` capture shows it first whenever a parked channel leaves ``park``, before the
park's CHANNEL_EXECUTE_COMPLETE and whatever the channel runs next, so CHANNEL_EXECUTE (one per dialplan
application, music included) is not subscribed: it would cost far more events and tell nothing sooner."""

ADAPTER_EVENTS = frozenset({"CHANNEL_CREATE"})
"""Events subscribed for the ESL adapter's own bookkeeping (``esl_gate.py``: a kill of an agent leg is held until
the leg exists), which ``translate`` never turns into a core event."""

SUBSCRIBED_NAMES = tuple(word for word in SUBSCRIBED_EVENTS.split()[2:] if word != "CUSTOM")
"""Event names (and CUSTOM subclasses) from ``SUBSCRIBED_EVENTS``: the keys handlers are registered under."""

AGENT_LEG_TAG = ("fsrouter_leg", "agent")
"""Variable fsrouter puts on the agent legs it originates, so their own CHANNEL_PARK is not a caller."""

INSTANCE_VARIABLE = "fsrouter_instance"
"""Variable naming the fsrouter instance (``--instance``) that originated an agent leg, so that a daemon never
kills or offers on another daemon's legs (``EslNode.audit``); on a caller, set by the dialplan, it names the only
instance that may take the call."""

_TRUE_WORDS = frozenset({"yes", "on", "true", "t", "enabled", "active", "allow"})
_ORIGINATION_UUID = re.compile(r"origination_uuid=([^,}\s]+)")
_VARIABLE_NAME = re.compile(r"[A-Za-z0-9_]+")
_UNSAFE_IN_VALUE = re.compile(r"[\x00-\x1f\x7f'\\{}$]")
_ERROR_PREFIXES = ("-ERR", "-USAGE")
#: C0 and C1 control characters (NUL, newline, ESC, ...), which no caller number, name or number dialled needs
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def switch_true(value: str | None) -> bool:
    """Read a channel variable as a boolean exactly like FreeSWITCH's ``switch_true``."""
    if value is None:
        return False
    word = value.strip().lower()
    if word in _TRUE_WORDS:
        return True
    try:
        return int(word) != 0
    except ValueError:
        return False


def is_marked_for_fsrouter(variables: Mapping[str, str]) -> bool:
    """A caller is fsrouter's when the dialplan set ``fsrouter_queue`` or a true ``fsrouter``, and it is not
    one of our own agent legs."""
    if variables.get(AGENT_LEG_TAG[0]) == AGENT_LEG_TAG[1]:
        return False
    return bool(variables.get("fsrouter_queue")) or switch_true(variables.get("fsrouter"))


def channel_variables(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``variable_*`` headers of an event, without the prefix."""
    prefix = "variable_"
    return {name[len(prefix) :]: value for name, value in headers.items() if name.startswith(prefix)}


def reply_error(reply_text: str) -> str | None:
    """The error in an api body or command reply (``-ERR ..``, ``-ERROR``, ``-USAGE ..``); None on success."""
    text = reply_text.strip()
    if text.startswith(_ERROR_PREFIXES):
        return text
    return None


@dataclass(frozen=True, slots=True)
class Malformed:
    """An event the router would act on but cannot read: a header it needs is missing or has a bad value."""

    reason: str


def translate(headers: Mapping[str, str], body: str, node: str) -> Event | None:
    """The core event one FreeSWITCH event means, or None when the router has no use for it or it is malformed.

    Never raises. ``translate_or_malformed`` tells the two kinds of None apart.
    """
    translated = translate_or_malformed(headers, body, node)
    return None if isinstance(translated, Malformed) else translated


def translate_or_malformed(headers: Mapping[str, str], body: str, node: str) -> Event | Malformed | None:
    """Like ``translate``, but a malformed event gives ``Malformed`` instead of None."""
    translator = _TRANSLATORS.get(headers.get("Event-Name", ""))
    if translator is None:
        return None
    try:
        return translator(headers, body, node)
    except KeyError as error:
        return Malformed(f"no {error} header")
    except ValueError as error:
        return Malformed(str(error))


def _call_parked(headers: Mapping[str, str], _body: str, node: str) -> Event | None:
    """The caller's number, name and number dialled come from the far end: their control characters are
    dropped here, so the store, the logs and the metrics never see them."""
    variables = channel_variables(headers)
    if not is_marked_for_fsrouter(variables):
        return None
    return CallParked(
        node=node,
        uuid=headers["Unique-ID"],
        caller_number=_CONTROL_CHARACTERS.sub("", headers.get("Caller-Caller-ID-Number", "")),
        caller_name=_CONTROL_CHARACTERS.sub("", headers.get("Caller-Caller-ID-Name", "")),
        destination=_CONTROL_CHARACTERS.sub("", headers.get("Caller-Destination-Number", "")),
        answered=headers.get("Answer-State") in ("answered", "early"),
        variables=variables,
    )


def _left_park(headers: Mapping[str, str], _body: str, node: str) -> Event | None:
    """CHANNEL_UNPARK of a caller marked for fsrouter that is not hanging up (``leave_park``; a hang-up unparks the
    channel after its CHANNEL_HANGUP, ``repark_after_transfer``). Read from a few headers, not the whole variable
    set: most unparks are of connected calls, which the router drops at once."""
    if headers.get("Answer-State") == "hangup" or headers.get(f"variable_{AGENT_LEG_TAG[0]}") == AGENT_LEG_TAG[1]:
        return None
    if not headers.get("variable_fsrouter_queue") and not switch_true(headers.get("variable_fsrouter")):
        return None
    return CallLeftPark(node=node, uuid=headers["Unique-ID"], destination=headers.get("Caller-Destination-Number", ""))


def _channel_answered(headers: Mapping[str, str], _body: str, node: str) -> Event | None:
    return ChannelAnswered(node=node, uuid=headers["Unique-ID"])


def _channel_bridged(headers: Mapping[str, str], _body: str, node: str) -> Event | None:
    uuid = headers.get("Bridge-A-Unique-ID") or headers["Unique-ID"]
    other = headers.get("Bridge-B-Unique-ID") or headers["Other-Leg-Unique-ID"]
    return ChannelBridged(node=node, uuid=uuid, other_uuid=other)


def _hold_changed(headers: Mapping[str, str], _body: str, node: str) -> Event | None:
    return HoldChanged(node=node, uuid=headers["Unique-ID"], held=headers["Event-Name"] == "CHANNEL_HOLD")


def _channel_hung_up(headers: Mapping[str, str], _body: str, node: str) -> Event | None:
    cause = headers.get("Hangup-Cause") or headers.get("variable_hangup_cause") or "NORMAL_CLEARING"
    return ChannelHungUp(node=node, uuid=headers["Unique-ID"], cause=cause, hung_up_at=_hung_up_at(headers))


def _hung_up_at(headers: Mapping[str, str]) -> float | None:
    """When FreeSWITCH hung the channel up, in epoch seconds: ``Caller-Channel-Hangup-Time`` (microseconds, 0
    while unset), else the event's own ``Event-Date-Timestamp``; None when neither is readable."""
    for name in ("Caller-Channel-Hangup-Time", "Event-Date-Timestamp"):
        try:
            microseconds = int(headers.get(name, ""))
        except ValueError:
            continue
        if microseconds > 0:
            return microseconds / 1_000_000
    return None


def sofia_profiles(reply: str) -> list[str]:
    """The SIP profiles in a ``sofia status`` reply (rows ``<name>\tprofile\t<data>\t<state>``), in order."""
    names: list[str] = []
    for line in reply.splitlines():
        columns = [column.strip() for column in line.split("\t")]
        if len(columns) >= 2 and columns[1] == "profile" and columns[0] not in names:
            names.append(columns[0])
    return names


def registered_users(reply: str) -> frozenset[str]:
    """The SIP users (without domain) of a ``sofia status profile <name> reg`` reply: its ``User:`` lines."""
    users = set()
    for line in reply.splitlines():
        label, _, value = line.partition(":")
        if label == "User" and value.strip():
            users.add(value.strip().split("@", 1)[0])
    return frozenset(users)


def originate_job_result(headers: Mapping[str, str], body: str) -> tuple[str, str | None] | None:
    """The leg uuid and the error (None on ``+OK``) of an ``originate`` BACKGROUND_JOB; None for any other event."""
    if headers.get("Event-Name") != "BACKGROUND_JOB" or headers.get("Job-Command") != "originate":
        return None
    found = _ORIGINATION_UUID.search(headers.get("Job-Command-Arg", ""))
    leg_uuid = found.group(1) if found else headers.get("Job-UUID", "")
    if not leg_uuid:
        return None
    return leg_uuid, reply_error(body)


def _background_job(headers: Mapping[str, str], body: str, node: str) -> Event | None:
    job = originate_job_result(headers, body)
    if job is None:
        return None
    leg_uuid, error = job
    if error is None:
        return OriginateSucceeded(node=node, leg_uuid=leg_uuid)
    return OriginateFailed(node=node, leg_uuid=leg_uuid, cause=_failure_cause(error))


def _failure_cause(error: str) -> str:
    """``-ERR USER_BUSY`` -> ``USER_BUSY``; ``-USAGE: ...`` -> ``USAGE``."""
    if error.startswith("-ERR"):
        return error[len("-ERR") :].split("\n", 1)[0].strip() or "UNKNOWN"
    return error.lstrip("-").split(":", 1)[0].split()[0]


def _custom(headers: Mapping[str, str], _body: str, node: str) -> Event | None:
    subclass = headers.get("Event-Subclass", "")
    registered = REGISTRATION_SUBCLASSES.get(subclass)
    if registered is not None:  # sofia::expire names the user ``user``, the others ``from-user``
        user = headers.get("from-user") or headers.get("user") or headers["username"]
        return AgentRegistration(node=node, user=user, registered=registered)
    if subclass == AGENT_CONTROL_SUBCLASS:
        action = headers["Action"].strip().lower()
        if action not in AGENT_ACTIONS:
            return None
        return AgentControl(agent_id=headers["Agent"].strip(), action=AgentAction(action), source="phone")
    return None


_TRANSLATORS: Mapping[str, Callable[[Mapping[str, str], str, str], Event | None]] = {
    "CHANNEL_PARK": _call_parked,
    "CHANNEL_UNPARK": _left_park,
    "CHANNEL_ANSWER": _channel_answered,
    "CHANNEL_BRIDGE": _channel_bridged,
    "CHANNEL_HOLD": _hold_changed,
    "CHANNEL_UNHOLD": _hold_changed,
    "CHANNEL_HANGUP": _channel_hung_up,
    "CHANNEL_HANGUP_COMPLETE": _channel_hung_up,
    "BACKGROUND_JOB": _background_job,
    "CUSTOM": _custom,
}


def encode(command: EslCommand, *, instance: str) -> list[str]:
    """The ESL commands (first line + optional header lines, no trailing blank line) for a core command, sent
    by fsrouter instance ``instance`` (it tags the agent legs it originates).

    Each string is sent and answered on its own, in order. This is the one place where values become command
    text: each one is checked for its slot (``core/esl_safety.py``) or escaped (channel-variable values), and a
    command holding a value FreeSWITCH would misread raises UnsafeCommand, whatever the value's origin.
    """
    match command:
        case Answer(uuid=uuid):
            return [f"api uuid_answer {_argument(uuid)}"]
        case PlayMusic(uuid=uuid, source=source):
            return [f"api uuid_broadcast {_argument(uuid)} {_argument(source)} aleg"]
        case Originate():
            return [_encode_originate(command, instance)]
        case Bridge(caller_uuid=caller, agent_uuid=agent):
            caller, agent = _argument(caller), _argument(agent)
            return [f"api uuid_break {caller} all", f"api uuid_bridge {caller} {agent}"]
        case Kill(uuid=uuid, cause=cause):
            return [f"api uuid_kill {_argument(uuid)} {_argument(cause)}"]
        case Transfer(uuid=uuid, destination=destination, dialplan=dialplan, context=context):
            words = " ".join(_argument(word) for word in (uuid, destination, dialplan, context))
            return [f"api uuid_transfer {words}"]
    raise TypeError(f"not an ESL command: {command!r}")


def _argument(value: str, slot: Slot = Slot.ARGUMENT) -> str:
    """``value``, unchanged, if FreeSWITCH reads it back as one argument in ``slot``; else UnsafeCommand."""
    reason = unsafe_reason(value, slot) if value else "is empty (the arguments after it would shift)"
    if reason is not None:
        raise UnsafeCommand(f"refused to send {value[:80]!r}: it {reason}")
    return value


def _encode_originate(command: Originate, instance: str) -> str:
    """``bgapi originate {vars}<endpoint> &park()`` with ``Job-UUID`` = the leg uuid, so the BACKGROUND_JOB
    and the leg's channel events share one id."""
    leg_uuid = _argument(command.leg_uuid)
    if not math.isfinite(command.timeout):
        raise UnsafeCommand(f"refused to send an originate with a ring timeout of {command.timeout} s")
    variables: dict[str, str] = {
        "origination_uuid": leg_uuid,
        "originate_timeout": str(max(1, math.ceil(command.timeout))),
        "ignore_early_media": "true",
        AGENT_LEG_TAG[0]: AGENT_LEG_TAG[1],
        INSTANCE_VARIABLE: instance,
        "fsrouter_call": command.call_uuid,
    }
    if command.caller_number:
        variables["origination_caller_id_number"] = command.caller_number
    if command.caller_name:
        variables["origination_caller_id_name"] = command.caller_name
    for name, value in command.variables.items():
        variables.setdefault(name, value)
    block = ",".join(f"{_variable_name(name)}={dialstring_value(value)}" for name, value in variables.items())
    endpoint = _argument(command.endpoint, Slot.DIAL_STRING)
    return f"bgapi originate {{{block}}}{endpoint} &park()\nJob-UUID: {leg_uuid}"


def _variable_name(name: str) -> str:
    if not _VARIABLE_NAME.fullmatch(name):
        raise UnsafeCommand(f"refused to send the channel variable name {name[:80]!r}: not letters, digits, _")
    return name


def dialstring_value(value: str) -> str:
    """Escape a channel variable value for the ``{...}`` block of an ``originate`` command line.

    FreeSWITCH splits that line three times (on spaces for the api arguments, on ``,`` between variables,
    on ``=`` inside one), and each pass strips quotes and resolves backslash escapes. So ``'...'`` quoting
    does not survive; what does: ``\\,`` for a comma (kept by the space pass, resolved by the comma pass)
    and ``\\s`` for a space (resolved by the space pass). Characters no pass carries safely (quotes,
    backslashes, braces, ``$`` that would start a variable expansion, control characters) are dropped;
    FreeSWITCH would trim leading/trailing spaces anyway.
    """
    cleaned = _UNSAFE_IN_VALUE.sub("", value).strip()
    return cleaned.replace(",", "\\,").replace(" ", "\\s")
