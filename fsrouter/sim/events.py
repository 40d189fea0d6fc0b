"""Channels and the events FreeSWITCH builds from them (switch_event_prep_for_delivery + channel data).

Header names and order follow the 1.10.12 captures: standard block, event-specific leading headers,
channel data, caller profile, Other-Leg profile, then `variable_*` only for extended-data event types.
"""

from __future__ import annotations

import itertools
import time
import uuid as uuid_module
from dataclasses import dataclass, field
from email.utils import formatdate
from string import Template

from fsrouter.sim.encoding import Header

CHANNEL_STATES = (
    "CS_NEW CS_INIT CS_ROUTING CS_SOFT_EXECUTE CS_EXECUTE CS_EXCHANGE_MEDIA CS_PARK CS_CONSUME_MEDIA "
    "CS_HIBERNATE CS_RESET CS_HANGUP CS_REPORTING CS_DESTROY CS_NONE"
).split()
CALL_STATES = "DOWN DIALING RINGING EARLY ACTIVE HELD RING_WAIT HANGUP UNHELD".split()

# switch_channel.c: only these event types carry the channel variables.
EXTENDED_DATA_EVENTS = frozenset(
    "CHANNEL_CREATE CHANNEL_ORIGINATE CHANNEL_UUID CHANNEL_ANSWER CHANNEL_PARK CHANNEL_UNPARK CHANNEL_BRIDGE "
    "CHANNEL_UNBRIDGE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE "
    "CHANNEL_DATA CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_DESTROY SESSION_HEARTBEAT API CALL_UPDATE "
    "CUSTOM PLAYBACK_START PLAYBACK_STOP".split()
)

_RUNNING_STATE = ("switch_channel.c", "switch_channel_perform_set_running_state", "2408")
CALLING_SITES: dict[str, tuple[str, str, str]] = {
    "BACKGROUND_JOB": ("mod_event_socket.c", "api_exec", "1572"),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", "3846"),
    "CHANNEL_BRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1689"),
    "CHANNEL_CALLSTATE": ("switch_channel.c", "switch_channel_perform_set_callstate", "301"),
    "CHANNEL_CREATE": ("switch_core_state_machine.c", "switch_core_session_run", "626"),
    "CHANNEL_DESTROY": ("switch_core_session.c", "switch_core_session_perform_destroy", "1584"),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", "2944"),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", "2967"),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", "3445"),
    "CHANNEL_HANGUP_COMPLETE": ("switch_core_state_machine.c", "switch_core_session_reporting_state", "943"),
    "CHANNEL_ORIGINATE": ("switch_core_state_machine.c", "switch_core_session_run", "632"),
    "CHANNEL_OUTGOING": ("switch_core_session.c", "switch_core_session_outgoing_channel", "768"),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", "1002"),
    "CHANNEL_PROGRESS": ("switch_channel.c", "switch_channel_perform_mark_ring_ready_value", "3505"),
    "CHANNEL_PROGRESS_MEDIA": ("switch_channel.c", "switch_channel_perform_mark_pre_answered", "3560"),
    "CHANNEL_STATE": _RUNNING_STATE,
    "CHANNEL_UNBRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1879"),
    "CHANNEL_UNPARK": ("switch_ivr.c", "switch_ivr_park", "1213"),
    "HEARTBEAT": ("switch_core.c", "send_heartbeat", "95"),
    "CUSTOM": ("sofia_reg.c", "sofia_reg_handle_register_token", "2111"),
}

PROFILE_FIELDS = (
    "Direction Logical-Direction Username Dialplan Caller-ID-Name Caller-ID-Number Orig-Caller-ID-Name "
    "Orig-Caller-ID-Number Callee-ID-Name Callee-ID-Number Network-Addr ANI Destination-Number Unique-ID "
    "Source "
    "Transfer-Source Context RDNIS Channel-Name Profile-Index"
).split()
_PROFILE_TIMES = (
    "Profile-Created-Time Channel-Created-Time Channel-Answered-Time Channel-Progress-Time "
    "Channel-Progress-Media-Time Channel-Hangup-Time Channel-Transfer-Time Channel-Resurrect-Time "
    "Channel-Bridged-Time Channel-Last-Hold Channel-Hold-Accum"
).split()


def new_uuid() -> str:
    return str(uuid_module.uuid4())


def uptime_text(seconds: float) -> str:
    """FreeSWITCH's uptime phrase, as in `status` and HEARTBEAT's Up-Time."""
    whole = int(seconds)
    return (
        f"0 years, {whole // 86400} days, {whole // 3600 % 24} hours, {whole // 60 % 60} minutes, "
        f"{whole % 60} seconds, {int(seconds * 1000) % 1000} milliseconds, "
        f"{int(seconds * 1e6) % 1000} microseconds"
    )


def now_us() -> int:
    return int(time.time() * 1_000_000)


@dataclass(frozen=True, slots=True)
class SimEvent:
    name: str
    headers: list[Header]
    body: str | None = None
    subclass: str | None = None


@dataclass(slots=True)
class Channel:
    """One FreeSWITCH leg as the event builder sees it."""

    uuid: str
    direction: str  # inbound (caller) | outbound (agent leg)
    name: str
    profile: dict[str, str]  # caller-profile fields without the "Caller-" prefix, in FS order
    presence_id: str | None = None
    state: str = "CS_NEW"
    call_state: str = "DOWN"
    answer_state: str = "ringing"
    hangup_cause: str | None = None
    has_media: bool = False
    other: Channel | None = None
    other_type: str | None = None
    times: dict[str, int] = field(default_factory=dict)  # profile time name -> epoch µs
    variables: dict[str, str] = field(default_factory=dict)
    placeholders: dict[str, str] = field(default_factory=dict)

    def add_variables(self, pack: dict[str, str]) -> None:
        for name, value in pack.items():
            self.variables[name] = Template(value).safe_substitute(self.placeholders)

    def mark(self, time_name: str) -> int:
        stamp = now_us()
        self.times[time_name] = stamp
        return stamp

    def channel_data(self) -> list[Header]:
        headers = [
            ("Channel-State", self.state),
            ("Channel-Call-State", self.call_state),
            ("Channel-State-Number", str(CHANNEL_STATES.index(self.state))),
            ("Channel-Name", self.name),
            ("Unique-ID", self.uuid),
            ("Call-Direction", self.direction),
            ("Presence-Call-Direction", self.direction),
            ("Channel-HIT-Dialplan", "true" if self.direction == "inbound" else "false"),
        ]
        if self.presence_id:
            headers.append(("Channel-Presence-ID", self.presence_id))
        headers += [("Channel-Call-UUID", self.variables.get("call_uuid", self.uuid))]
        headers.append(("Answer-State", self.answer_state))
        if self.hangup_cause:
            headers.append(("Hangup-Cause", self.hangup_cause))
        if self.has_media:
            for direction in ("Read", "Write"):
                headers += [
                    (f"Channel-{direction}-Codec-Name", "PCMU"),
                    (f"Channel-{direction}-Codec-Rate", "8000"),
                    (f"Channel-{direction}-Codec-Bit-Rate", "64000"),
                ]
        return headers

    def profile_headers(self, prefix: str) -> list[Header]:
        headers = [(f"{prefix}-{name}", self.profile[name]) for name in PROFILE_FIELDS if name in self.profile]
        headers += [(f"{prefix}-{name}", str(self.times.get(name, 0))) for name in _PROFILE_TIMES]
        tail = ("Screen-Bit", "true"), ("Privacy-Hide-Name", "false"), ("Privacy-Hide-Number", "false")
        return headers + [(f"{prefix}-{name}", value) for name, value in tail]


@dataclass(slots=True)
class Boot:
    """One FreeSWITCH process lifetime: Core-UUID and the Event-Sequence counter."""

    hostname: str
    core_uuid: str = field(default_factory=new_uuid)
    started_at: float = field(default_factory=time.time)
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def standard_headers(self, name: str, site_key: str) -> list[Header]:
        stamp = now_us()
        seconds = stamp / 1_000_000
        calling_file, function, line = CALLING_SITES.get(site_key, CALLING_SITES["CUSTOM"])
        return [
            ("Event-Name", name),
            ("Core-UUID", self.core_uuid),
            ("FreeSWITCH-Hostname", self.hostname),
            ("FreeSWITCH-Switchname", self.hostname),
            ("FreeSWITCH-IPv4", "127.0.0.1"),
            ("FreeSWITCH-IPv6", "::1"),
            ("Event-Date-Local", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))),
            ("Event-Date-GMT", formatdate(seconds, usegmt=True)),
            ("Event-Date-Timestamp", str(stamp)),
            ("Event-Calling-File", calling_file),
            ("Event-Calling-Function", function),
            ("Event-Calling-Line-Number", line),
            ("Event-Sequence", str(next(self._sequence))),
        ]

    def channel_event(
        self,
        name: str,
        channel: Channel,
        leading: list[Header] | None = None,
        trailing: list[Header] | None = None,
    ) -> SimEvent:
        headers = self.standard_headers(name, name)
        if name == "CHANNEL_HANGUP_COMPLETE":
            headers.append(("Hangup-Cause", channel.hangup_cause or "NORMAL_CLEARING"))
        headers += leading or []
        headers += channel.channel_data()
        if channel.state != "CS_NEW":
            headers += channel.profile_headers("Caller")
        if channel.other is not None:
            headers.append(("Other-Type", channel.other_type or "originator"))
            headers += channel.other.profile_headers("Other-Leg")
        if name in EXTENDED_DATA_EVENTS:
            headers += [(f"variable_{key}", value) for key, value in channel.variables.items()]
        headers += trailing or []
        return SimEvent(name=name, headers=headers)

    def background_job(self, job_uuid: str, command: str, argument: str, result: str) -> SimEvent:
        headers = self.standard_headers("BACKGROUND_JOB", "BACKGROUND_JOB")
        headers += [("Job-UUID", job_uuid), ("Job-Command", command)]
        if argument:
            headers.append(("Job-Command-Arg", argument))
        return SimEvent(name="BACKGROUND_JOB", headers=headers, body=result)

    def custom(self, subclass: str, fields: list[Header]) -> SimEvent:
        headers = self.standard_headers("CUSTOM", "CUSTOM") + [("Event-Subclass", subclass)] + fields
        return SimEvent(name="CUSTOM", headers=headers, subclass=subclass)

    def heartbeat(self, session_count: int, sessions_since_startup: int) -> SimEvent:
        uptime = time.time() - self.started_at
        headers = self.standard_headers("HEARTBEAT", "HEARTBEAT") + [
            ("Event-Info", "System Ready"),
            ("Up-Time", uptime_text(uptime)),
            ("FreeSWITCH-Version", "1.10.12-release~64bit"),
            ("Uptime-msec", str(int(uptime * 1000))),
            ("Session-Count", str(session_count)),
            ("Max-Sessions", "1000"),
            ("Session-Per-Sec", "30"),
            ("Session-Per-Sec-Last", "0"),
            ("Session-Per-Sec-Max", "0"),
            ("Session-Per-Sec-FiveMin", "0"),
            ("Session-Since-Startup", str(sessions_since_startup)),
            ("Session-Peak-Max", "0"),
            ("Session-Peak-FiveMin", "0"),
            ("Idle-CPU", "98.000000"),
        ]
        return SimEvent(name="HEARTBEAT", headers=headers)
