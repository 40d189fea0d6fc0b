"""Call model of the simulator: callers parked by a dialplan, agent legs from `originate`, bridges.

Theory of operation: every change of a leg goes through a small set of "step" methods (_set_state,
_set_callstate, _emit, ...) that update the Channel and publish the event FreeSWITCH would fire. The
larger flows (arrival, originate, bridge, hangups) are ordered lists of those steps copied from the
1.10.12 captures (tests/fixtures/esl/plain, tests/fixtures/esl-caller/plain). Agent behaviours are a table
of flow functions. Time is real gevent time; every timer greenlet lives in one group so a restart can drop
them all at once.

An originate runs in its own greenlet until its job reports: while the agent leg rings, and for
``job_delay`` seconds after it answers (FreeSWITCH's originate thread reports after the leg's
CHANNEL_ANSWER). A hangup or a ``uuid_bridge`` of the leg wakes it (``_Originate.woken``).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gevent
import gevent.event
import gevent.pool

from fsrouter.sim import profiles
from fsrouter.sim.encoding import Header
from fsrouter.sim.events import CALL_STATES, Boot, Channel, SimEvent, new_uuid, now_us

log = logging.getLogger(__name__)

# cause -> (Q.850 code, SIP status seen in sip_term_status)
HANGUP_CAUSES: dict[str, tuple[str, str]] = {
    "NORMAL_CLEARING": ("16", "200"),
    "USER_BUSY": ("17", "486"),
    "NO_USER_RESPONSE": ("18", "480"),
    "NO_ANSWER": ("19", "487"),
    "SUBSCRIBER_ABSENT": ("20", "480"),
    "CALL_REJECTED": ("21", "603"),
    "DESTINATION_OUT_OF_ORDER": ("27", "502"),
    "ORIGINATOR_CANCEL": ("487", "487"),
    "USER_NOT_REGISTERED": ("606", "404"),
}


@dataclass(slots=True)
class CallerRecord:
    """What happened to one simulated caller (for tests and the demo summary)."""

    uuid: str
    caller_number: str
    destination: str
    created_at: float
    state: str = "parked"  # parked | answered | bridged | transferred | ended | vanished
    hangup_cause: str | None = None
    answered_at: float | None = None
    bridged_at: float | None = None
    bridged_to: str | None = None
    agent: str | None = None
    transferred_to: str | None = None
    ended_at: float | None = None
    violations: list[str] = field(default_factory=list)


@dataclass(slots=True)
class AgentLegRecord:
    uuid: str
    user: str
    variables: dict[str, str]
    created_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    hangup_cause: str | None = None


@dataclass(slots=True)
class Agent:
    user: str
    behaviour: str = "answer"
    answer_after: float = 0.2
    registered: bool = True
    live_legs: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Originate:
    """An originate in progress (until its job reports): where its result goes, how a kill or a bridge wakes it."""

    leg: Channel
    agent: Agent
    timeout: float
    on_result: Callable[[str], None]
    woken: gevent.event.Event = field(default_factory=gevent.event.Event)
    kill_cause: str | None = None


class CallModel:
    def __init__(
        self, publish: Callable[[SimEvent], None], boot: Boot, seed: int | None = None, job_delay: float = 0.0
    ) -> None:
        self._publish = publish
        #: seconds from an agent leg's CHANNEL_ANSWER to its originate's result (bridge_race_ok/_err: 20 ms)
        self.job_delay = job_delay
        #: callers (None: any) of the next ``uuid_bridge`` commands that do nothing after their ``+OK``, oldest first
        self.bridges_to_lose: list[str | None] = []
        self.boot = boot
        self.random = random.Random(seed)
        self.channels: dict[str, Channel] = {}
        self.calls: dict[str, CallerRecord] = {}
        self.agent_legs: dict[str, AgentLegRecord] = {}
        self.agents: dict[str, Agent] = {}
        self.sessions_since_startup = 0
        self._parked: dict[str, str] = {}  # uuid -> Application-UUID of its running park
        self._originating: dict[str, _Originate] = {}  # agent leg uuid -> its originate, while it can be woken
        self._talk_times: dict[str, float] = {}
        self._hold_times: dict[str, float] = {}
        #: the simulated dialplan for ``uuid_transfer``: extension -> its applications (name, data), in order
        self.extensions: dict[str, list[tuple[str, str]]] = {}
        self.timers = gevent.pool.Group()

    def spawn_later(self, seconds: float, function: Callable[..., None], *args: object) -> None:
        """A timer owned by the model, so that a restart can cancel every pending one."""
        greenlet = gevent.Greenlet(function, *args)
        self.timers.add(greenlet)
        greenlet.start_later(seconds)

    # ------------------------------------------------------------------ steps
    def _emit(
        self,
        name: str,
        channel: Channel,
        leading: list[Header] | None = None,
        trailing: list[Header] | None = None,
    ) -> None:
        self._publish(self.boot.channel_event(name, channel, leading, trailing))

    def _set_state(self, channel: Channel, state: str) -> None:
        channel.state = state
        self._emit("CHANNEL_STATE", channel)

    def _set_callstate(self, channel: Channel, call_state: str) -> None:
        original, channel.call_state = channel.call_state, call_state
        leading = [
            ("Original-Channel-Call-State", original),
            ("Channel-Call-State-Number", str(CALL_STATES.index(call_state))),
        ]
        self._emit("CHANNEL_CALLSTATE", channel, leading)

    def _execute(self, channel: Channel, app: str, data: str = "") -> str:
        app_uuid = new_uuid()
        channel.variables["current_application"] = app
        if data:
            channel.variables["current_application_data"] = data
        else:  # as in the captures: an application without data (park) leaves none of the previous one's
            channel.variables.pop("current_application_data", None)
        self._emit("CHANNEL_EXECUTE", channel, trailing=self._app_headers(app, data, app_uuid, None))
        return app_uuid

    def _execute_complete(self, channel: Channel, app: str, data: str, app_uuid: str, response: str = "_none_") -> None:
        self._emit("CHANNEL_EXECUTE_COMPLETE", channel, trailing=self._app_headers(app, data, app_uuid, response))

    @staticmethod
    def _app_headers(app: str, data: str, app_uuid: str, response: str | None) -> list[Header]:
        headers = [("Application", app)]
        if data:
            headers.append(("Application-Data", data))
        if response is not None:
            headers.append(("Application-Response", response))
        return headers + [("Application-UUID", app_uuid)]

    def _park(self, channel: Channel) -> None:
        self._parked[channel.uuid] = self._execute(channel, "park")
        self._emit("CHANNEL_PARK", channel)

    def _unpark(self, channel: Channel) -> None:
        app_uuid = self._parked.pop(channel.uuid, None)
        if app_uuid is None:
            return
        self._emit("CHANNEL_UNPARK", channel)
        self._execute_complete(channel, "park", "", app_uuid)

    def _pre_answer(self, channel: Channel) -> None:
        if channel.has_media:
            return
        channel.has_media = True
        channel.add_variables(profiles.CALLER_VARIABLES["media"])
        channel.mark("Channel-Progress-Media-Time")
        channel.answer_state = "early"
        self._emit("CHANNEL_PROGRESS_MEDIA", channel)
        self._set_callstate(channel, "EARLY")

    def _answer_caller(self, channel: Channel) -> None:
        if channel.answer_state == "answered":
            return
        self._pre_answer(channel)
        self._answer(channel, profiles.CALLER_VARIABLES["answer"])
        record = self.calls.get(channel.uuid)
        if record is not None:
            record.answered_at = time.monotonic()
            record.state = "answered"

    def _answer(self, channel: Channel, variables: dict[str, str]) -> None:
        """CHANNEL_ANSWER with ``variables`` added, then the call state ACTIVE."""
        channel.add_variables(variables)
        channel.mark("Channel-Answered-Time")
        channel.answer_state = "answered"
        self._emit("CHANNEL_ANSWER", channel)
        self._set_callstate(channel, "ACTIVE")

    def _mark_hangup(self, channel: Channel, cause: str) -> None:
        q850, sip_status = HANGUP_CAUSES.get(cause, ("0", "500"))
        channel.hangup_cause = cause
        channel.answer_state = "hangup"
        channel.mark("Channel-Hangup-Time")
        channel.add_variables(self._packs(channel)["hangup"])
        if channel.other is not None:
            channel.add_variables(self._packs(channel)["bridged_hangup"])
        channel.variables.update(
            sip_term_status=sip_status, proto_specific_hangup_cause=f"sip:{sip_status}", sip_term_cause=q850
        )
        self._emit("CHANNEL_HANGUP", channel)

    # A leg's end after its CHANNEL_HANGUP (_mark_hangup) is three steps, _hang_up, _report and _destroy, always
    # in that order for one leg; the flows below only choose how two legs' steps interleave.

    def _hang_up(self, channel: Channel) -> None:
        """CS_HANGUP, then the call state HANGUP."""
        self._set_state(channel, "CS_HANGUP")
        self._set_callstate(channel, "HANGUP")

    def _report(self, channel: Channel) -> None:
        """CS_REPORTING, then CHANNEL_HANGUP_COMPLETE with the CDR variables."""
        self._set_state(channel, "CS_REPORTING")
        self._fill_cdr_variables(channel)
        self._emit("CHANNEL_HANGUP_COMPLETE", channel)

    def _tear_down(self, channel: Channel, on_complete: Callable[[], None] | None = None) -> None:
        """Everything after one leg's CHANNEL_HANGUP: its three steps, with ``on_complete`` (an originate's result)
        run between CHANNEL_HANGUP_COMPLETE and CHANNEL_DESTROY."""
        self._hang_up(channel)
        self._report(channel)
        if on_complete is not None:
            on_complete()
        self._destroy(channel)

    def _destroy(self, channel: Channel) -> None:
        """CHANNEL_DESTROY, then CS_DESTROY; the leg is forgotten."""
        self._emit("CHANNEL_DESTROY", channel)
        self._set_state(channel, "CS_DESTROY")
        self._forget(channel)

    def _fill_cdr_variables(self, channel: Channel) -> None:
        channel.add_variables(self._packs(channel)["hangup_complete"])
        created = channel.times.get("Channel-Created-Time", 0)
        answered = channel.times.get("Channel-Answered-Time", 0)
        ended = channel.times.get("Channel-Hangup-Time", now_us())
        cause = channel.hangup_cause or "NORMAL_CLEARING"
        channel.variables.update(
            hangup_cause=cause,
            hangup_cause_q850=HANGUP_CAUSES.get(cause, ("0", ""))[0],
            start_epoch=str(created // 1_000_000),
            start_uepoch=str(created),
            answer_epoch=str(answered // 1_000_000),
            answer_uepoch=str(answered),
            end_epoch=str(ended // 1_000_000),
            end_uepoch=str(ended),
            duration=str((ended - created) // 1_000_000),
            billsec=str((ended - answered) // 1_000_000 if answered else 0),
        )

    def _forget(self, channel: Channel) -> None:
        self.channels.pop(channel.uuid, None)
        self._talk_times.pop(channel.uuid, None)
        self._hold_times.pop(channel.uuid, None)
        now = time.monotonic()
        caller = self.calls.get(channel.uuid)
        if caller is not None:
            caller.hangup_cause = channel.hangup_cause
            caller.ended_at = now
            if caller.state != "transferred":
                caller.state = "ended"
        leg = self.agent_legs.get(channel.uuid)
        if leg is not None:
            leg.hangup_cause = channel.hangup_cause
            leg.ended_at = now
            agent = self.agents.get(leg.user)
            if agent is not None:
                agent.live_legs.discard(channel.uuid)

    @staticmethod
    def _packs(channel: Channel) -> dict[str, dict[str, str]]:
        return profiles.CALLER_VARIABLES if channel.direction == "inbound" else profiles.AGENT_VARIABLES

    # ---------------------------------------------------------------- callers
    def place_call(
        self,
        caller_number: str,
        destination: str,
        variables: dict[str, str],
        patience: float,
        talk_time: float,
        answer: bool,
        hold_time: float = 0.0,
    ) -> str:
        """An inbound INVITE to a dialplan that sets `variables`, optionally answers, then parks.

        Once bridged the call lasts ``talk_time``, of which the agent's phone holds it ``hold_time``."""
        uuid = new_uuid()
        name = f"sofia/internal/{caller_number}@127.0.0.1:5090"
        channel = Channel(
            uuid=uuid,
            direction="inbound",
            name=name,
            profile={
                "Direction": "inbound",
                "Logical-Direction": "inbound",
                "Username": caller_number,
                "Dialplan": "XML",
                "Caller-ID-Name": f"Caller {caller_number}",
                "Caller-ID-Number": caller_number,
                "Orig-Caller-ID-Name": f"Caller {caller_number}",
                "Orig-Caller-ID-Number": caller_number,
                "Network-Addr": "127.0.0.1",
                "ANI": caller_number,
                "Destination-Number": destination,
                "Unique-ID": uuid,
                "Source": "mod_sofia",
                "Context": "default",
                "Channel-Name": name,
                "Profile-Index": "1",
            },
            placeholders={"uuid": uuid, "caller_number": caller_number, "destination": destination},
        )
        self.channels[uuid] = channel
        self.sessions_since_startup += 1
        self.calls[uuid] = CallerRecord(
            uuid=uuid, caller_number=caller_number, destination=destination, created_at=time.monotonic()
        )
        self._talk_times[uuid] = talk_time
        self._hold_times[uuid] = min(hold_time, talk_time)
        self._emit("CHANNEL_STATE", channel)
        channel.mark("Profile-Created-Time")
        channel.times["Channel-Created-Time"] = channel.times["Profile-Created-Time"]
        channel.state = "CS_INIT"
        self._emit("CHANNEL_STATE", channel)
        channel.add_variables(profiles.CALLER_VARIABLES["create"])
        self._emit("CHANNEL_CREATE", channel)
        channel.state = "CS_ROUTING"
        self._set_callstate(channel, "RINGING")
        self._emit("CHANNEL_STATE", channel)
        self._set_state(channel, "CS_EXECUTE")
        for key, value in variables.items():
            app_uuid = self._execute(channel, "set", f"{key}={value}")
            channel.variables[key] = value
            self._execute_complete(channel, "set", f"{key}={value}", app_uuid)
        if answer:
            app_uuid = self._execute(channel, "answer")
            self._answer_caller(channel)
            self._execute_complete(channel, "answer", "", app_uuid)
        self._park(channel)
        self.spawn_later(patience, self._patience_expired, uuid)
        return uuid

    def _patience_expired(self, uuid: str) -> None:
        channel = self.channels.get(uuid)
        if channel is None or channel.other is not None:
            return
        self.hangup(channel, "NORMAL_CLEARING" if channel.answer_state == "answered" else "ORIGINATOR_CANCEL")

    def _talk_time_over(self, uuid: str, partner: str) -> None:
        """The caller ends its conversation with ``partner`` (not one it was transferred out of since)."""
        channel = self.channels.get(uuid)
        if channel is not None and channel.other is not None and channel.other.uuid == partner:
            self.hangup(channel, "NORMAL_CLEARING")

    # ----------------------------------------------------------------- hangup
    def hangup(self, channel: Channel, cause: str) -> None:
        """Hang a leg up the way FreeSWITCH would given its situation (ringing, parked, bridged)."""
        if channel.uuid not in self.channels or channel.answer_state == "hangup":
            return
        originate = self._originating.get(channel.uuid)
        if originate is not None:
            originate.kill_cause = cause
            originate.woken.set()
        elif channel.other is not None:
            self._hangup_bridged(channel, cause)
        else:
            self._mark_hangup(channel, cause)
            self._unpark(channel)
            self._tear_down(channel)

    def _hangup_bridged(self, hanging: Channel, cause: str) -> None:
        other = hanging.other
        assert other is not None
        a_leg, b_leg = (hanging, other) if hanging.other_type == "originatee" else (other, hanging)
        self._mark_hangup(hanging, cause)
        self._mark_hangup(other, "NORMAL_CLEARING")
        self._end_b_leg(a_leg, b_leg, cause)
        self._tear_down(a_leg)
        b_leg.variables["bridge_hangup_cause"] = cause
        self._destroy(b_leg)

    def _end_b_leg(self, a_leg: Channel, b_leg: Channel, cause: str) -> None:
        """The hung-up B leg of a bridged pair reports, then the A leg's CHANNEL_UNBRIDGE (``cause`` its
        ``bridge_hangup_cause``)."""
        self._hang_up(b_leg)
        self._report(b_leg)
        a_leg.variables.pop("bridge_to", None)
        a_leg.add_variables(profiles.CALLER_VARIABLES["unbridge"])
        a_leg.variables["bridge_hangup_cause"] = cause
        self._emit("CHANNEL_UNBRIDGE", a_leg, leading=self._bridge_headers(a_leg, b_leg))

    # -------------------------------------------------------------- transfer
    def transfer(self, channel: Channel, destination: str) -> None:
        """``uuid_transfer <uuid> <destination> XML default`` after its ``+OK``: the channel runs the simulated
        dialplan's extension ``destination`` (``extensions``). A parked channel leaves park first (CHANNEL_UNPARK
        with the new destination already, captured as ``leave_park``); a bridged one's other leg is hung up at once
        and the channel unbridged (``repark_after_transfer``). An extension the dialplan does not have hangs the
        channel up (recorded ``transferred``)."""
        record = self.calls.get(channel.uuid)
        if record is not None:
            record.transferred_to = destination
        apps = self.extensions.get(destination)
        if apps is None:
            if record is not None:
                record.state = "transferred"
            self.hangup(channel, "NORMAL_CLEARING")
            return
        source = f"{int(time.time())}:{new_uuid()}:bl_xfer:{destination}/default/XML"
        channel.profile["RDNIS"] = channel.profile["Destination-Number"]
        channel.profile["Destination-Number"] = destination
        channel.profile["Transfer-Source"] = source
        history = channel.variables.get("transfer_history")
        channel.variables["transfer_history"] = f"ARRAY::{history}|:{source}" if history else source
        channel.variables["transfer_source"] = source
        channel.variables.setdefault("sip_to_tag", new_uuid()[:13])  # learnt with the SIP answer in a real FS
        channel.variables.setdefault("sip_cseq", "1")
        channel.mark("Channel-Transfer-Time")
        other = channel.other
        if other is not None:
            self._mark_hangup(other, "NORMAL_CLEARING")
            self._end_b_leg(channel, other, "NORMAL_CLEARING")
            channel.other = None
            self._route(channel, "RINGING")
            self._destroy(other)
            other.other = None
        else:
            self._unpark(channel)
            self._route(channel, "RINGING")
        self._route(channel, "ACTIVE")
        self._run_extension(channel, apps)

    def _route(self, channel: Channel, call_state: str) -> None:
        """The dialplan hunt after a transfer: CS_ROUTING with the call state RINGING, then CS_EXECUTE back to
        ACTIVE (``leave_park``)."""
        channel.state = "CS_ROUTING" if call_state == "RINGING" else "CS_EXECUTE"
        self._set_callstate(channel, call_state)
        self._emit("CHANNEL_STATE", channel)

    def _run_extension(self, channel: Channel, apps: list[tuple[str, str]]) -> None:
        """Run the applications of an extension (set, answer, pre_answer, playback, hangup, park) as the
        ``leave_park`` and ``repark_after_transfer`` captures show them."""
        for app, data in apps:
            if app == "park":
                self._park(channel)
                return
            app_uuid = self._execute(channel, app, data)
            if app == "set":
                name, _, value = data.partition("=")
                channel.variables[name] = value
            elif app == "answer":
                self._answer_caller(channel)
            elif app == "pre_answer":
                self._pre_answer(channel)
            elif app == "playback":
                playback = [("Playback-File-Type", "tone_stream"), ("Playback-File-Path", data)]
                self._emit("PLAYBACK_START", channel, trailing=playback)
                channel.variables.update(
                    playback_last_offset_pos="16000", playback_seconds="2", playback_ms="2000", playback_samples="16000"
                )
                self._emit("PLAYBACK_STOP", channel, trailing=[*playback, ("Playback-Status", "done")])
                channel.variables["current_application_response"] = "FILE PLAYED"
                self._execute_complete(channel, app, data, app_uuid, "FILE PLAYED")
                continue
            elif app == "hangup":
                channel.variables["last_arg"] = data
                self._mark_hangup(channel, data or "NORMAL_CLEARING")
                self._execute_complete(channel, app, data, app_uuid)
                self._tear_down(channel)
                return
            self._execute_complete(channel, app, data, app_uuid)

    # ------------------------------------------------------------------ hold
    def hold(self, channel: Channel, on: bool) -> bool:
        """Put a leg on hold or take it off (the agent's phone, or ``uuid_hold``); False if nothing changes.

        Like switch_channel_mark_hold: the call state goes HELD/ACTIVE, Last-Hold and Hold-Accum are kept,
        then CHANNEL_HOLD or CHANNEL_UNHOLD."""
        if channel.uuid not in self.channels or (channel.call_state == "HELD") == on:
            return False
        if on:
            channel.mark("Channel-Last-Hold")
        else:
            held_for = int(time.time() * 1_000_000) - channel.times.get("Channel-Last-Hold", 0)
            channel.times["Channel-Hold-Accum"] = channel.times.get("Channel-Hold-Accum", 0) + held_for
        self._set_callstate(channel, "HELD" if on else "ACTIVE")
        self._emit("CHANNEL_HOLD" if on else "CHANNEL_UNHOLD", channel)
        return True

    def _hold_for(self, uuid: str, seconds: float) -> None:
        """The agent puts the connected caller on hold from their phone for ``seconds``."""
        channel = self.channels.get(uuid)
        if channel is not None and channel.other is not None and self.hold(channel.other, True):
            self.spawn_later(seconds, self._take_off_hold, channel.other.uuid)

    def _take_off_hold(self, uuid: str) -> None:
        channel = self.channels.get(uuid)
        if channel is not None:
            self.hold(channel, False)

    # ---------------------------------------------------------------- bridge
    def bridge(self, a_leg: Channel, b_leg: Channel) -> None:
        """uuid_bridge after its `+OK <b>` reply. An unanswered A leg fails like a real FS does; an agent leg
        answered but not yet parked by its originate bridges all the same (bridge_race_err)."""
        if self._bridge_lost(a_leg, b_leg):
            return
        for leg, other, other_type in ((a_leg, b_leg, "originatee"), (b_leg, a_leg, "originator")):
            leg.placeholders["other_uuid"] = other.uuid
            leg.add_variables(self._packs(leg)["bridge"])
            leg.other, leg.other_type = other, other_type
            leg.profile["Transfer-Source"] = f"{int(time.time())}:{new_uuid()}:uuid_br:{other.uuid}"
            leg.profile["Profile-Index"] = "2"
            leg.variables["uuid_bridge"] = other.uuid
            if leg.direction == "inbound":
                leg.profile["Callee-ID-Name"] = other.profile.get("Caller-ID-Name", "")
                leg.profile["Callee-ID-Number"] = other.profile.get("Caller-ID-Number", "")
        for leg in (a_leg, b_leg):
            self._cancel_originate(leg)
        if a_leg.answer_state == "ringing":
            self._failed_bridge(a_leg, b_leg)
            return
        self._take_for_bridge(b_leg, a_leg)
        for leg in (a_leg, b_leg):
            leg.variables.pop("uuid_bridge", None)
        self._execute(a_leg, "uuid_bridge", b_leg.uuid)
        self._execute(b_leg, "uuid_bridge", a_leg.uuid)
        if a_leg.answer_state == "early":
            self._answer_caller(a_leg)
            self._set_state(b_leg, "CS_CONSUME_MEDIA")
        bridged_at = a_leg.mark("Channel-Bridged-Time")
        b_leg.times["Channel-Bridged-Time"] = bridged_at
        self._emit("CHANNEL_BRIDGE", a_leg, leading=self._bridge_headers(a_leg, b_leg))
        self._set_state(b_leg, "CS_EXCHANGE_MEDIA")
        for caller_leg, agent_leg in ((a_leg, b_leg), (b_leg, a_leg)):
            record = self.calls.get(caller_leg.uuid)
            if record is None:
                continue
            record.state, record.bridged_at, record.bridged_to = "bridged", time.monotonic(), agent_leg.uuid
            agent_record = self.agent_legs.get(agent_leg.uuid)
            record.agent = agent_record.user if agent_record else None
            talk_time = self._talk_times.get(caller_leg.uuid, 0.0)
            self.spawn_later(talk_time, self._talk_time_over, caller_leg.uuid, agent_leg.uuid)
            hold_time = self._hold_times.get(caller_leg.uuid, 0.0)
            if hold_time > 0:  # in the middle of the conversation
                self.spawn_later((talk_time - hold_time) / 2, self._hold_for, caller_leg.uuid, hold_time)

    def _bridge_lost(self, a_leg: Channel, b_leg: Channel) -> bool:
        """Whether this bridge is one of ``bridges_to_lose`` (and consume it): then nothing happens at all."""
        for index, caller in enumerate(self.bridges_to_lose):
            if caller is None or caller in (a_leg.uuid, b_leg.uuid):
                del self.bridges_to_lose[index]
                return True
        return False

    def _take_for_bridge(self, first: Channel, second: Channel) -> None:
        """What ``uuid_bridge`` does to both legs before bridging them: each leaves its application (CS_HIBERNATE,
        CS_RESET), ``first`` first, then each goes to CS_SOFT_EXECUTE, ``second`` first."""
        for leg in (first, second):
            self._unpark(leg)
            self._set_state(leg, "CS_HIBERNATE")
            self._set_state(leg, "CS_RESET")
        for leg in (second, first):
            self._set_state(leg, "CS_SOFT_EXECUTE")

    @staticmethod
    def _bridge_headers(a_leg: Channel, b_leg: Channel) -> list[Header]:
        return [("Bridge-A-Unique-ID", a_leg.uuid), ("Bridge-B-Unique-ID", b_leg.uuid)]

    def _failed_bridge(self, a_leg: Channel, b_leg: Channel) -> None:
        for record_uuid in (a_leg.uuid, b_leg.uuid):
            if record_uuid in self.calls:
                self.calls[record_uuid].violations.append("bridged while unanswered")
        self._take_for_bridge(a_leg, b_leg)
        self._mark_hangup(a_leg, "DESTINATION_OUT_OF_ORDER")
        self._mark_hangup(b_leg, "ORIGINATOR_CANCEL")
        for leg in (b_leg, a_leg):
            self._hang_up(leg)
        for leg in (a_leg, b_leg):
            self._report(leg)
        self._destroy(b_leg)
        self._destroy(a_leg)

    # -------------------------------------------------------------- originate
    def originate(self, dialstring: str, on_result: Callable[[str], None]) -> None:
        """Run `originate {vars}user/X &park()` in this greenlet; report `+OK <uuid>` or `-ERR <CAUSE>`."""
        match = re.match(r"^\s*(?:\{([^}]*)\})?\s*user/([^@\s]+)\S*", dialstring)
        if match is None:
            on_result("-ERR INVALID_GATEWAY\n")
            return
        variables = dict(item.split("=", 1) for item in (match.group(1) or "").split(",") if "=" in item)
        agent = self.agents.get(match.group(2))
        if agent is None:
            on_result("-ERR SUBSCRIBER_ABSENT\n")
            return
        if not agent.registered or agent.behaviour == "unregistered":
            on_result("-ERR USER_NOT_REGISTERED\n")
            return
        leg = self._create_agent_leg(agent, variables)
        originate = _Originate(
            leg=leg, agent=agent, timeout=float(variables.get("originate_timeout", 60)), on_result=on_result
        )
        behaviour = "busy" if any(self._is_answered(u) for u in agent.live_legs - {leg.uuid}) else agent.behaviour
        agent.live_legs.add(leg.uuid)
        AGENT_BEHAVIOURS[behaviour](self, originate)

    def _is_answered(self, uuid: str) -> bool:
        channel = self.channels.get(uuid)
        return channel is not None and channel.answer_state == "answered"

    def _create_agent_leg(self, agent: Agent, variables: dict[str, str]) -> Channel:
        uuid = variables.get("origination_uuid") or new_uuid()
        name = f"sofia/internal/{agent.user}@127.0.0.1:5070"
        caller_number = variables.get("origination_caller_id_number", "0000000000")
        channel = Channel(
            uuid=uuid,
            direction="outbound",
            name=name,
            presence_id=f"{agent.user}@127.0.0.1",
            state="CS_NONE",
            profile={
                "Direction": "outbound",
                "Logical-Direction": "outbound",
                "Caller-ID-Name": variables.get("origination_caller_id_name", caller_number),
                "Caller-ID-Number": caller_number,
                "Orig-Caller-ID-Number": caller_number,
                "Callee-ID-Name": "Outbound Call",
                "Callee-ID-Number": agent.user,
                "Network-Addr": "127.0.0.1",
                "ANI": caller_number,
                "Destination-Number": agent.user,
                "Unique-ID": uuid,
                "Source": "src/switch_ivr_originate.c",
                "Context": "default",
                "Channel-Name": name,
                "Profile-Index": "1",
            },
            placeholders={"uuid": uuid, "user": agent.user, "caller_number": caller_number},
        )
        channel.mark("Profile-Created-Time")
        channel.times["Channel-Created-Time"] = channel.times["Profile-Created-Time"]
        self.channels[uuid] = channel
        self.sessions_since_startup += 1
        self.agent_legs[uuid] = AgentLegRecord(
            uuid=uuid, user=agent.user, variables=dict(variables), created_at=time.monotonic()
        )
        self._emit("CHANNEL_OUTGOING", channel)
        channel.state = "CS_INIT"
        self._emit("CHANNEL_STATE", channel)
        channel.add_variables(profiles.AGENT_VARIABLES["create"])
        channel.variables.update(variables)
        self._emit("CHANNEL_CREATE", channel)
        self._emit("CHANNEL_ORIGINATE", channel)
        self._set_state(channel, "CS_ROUTING")
        self._set_state(channel, "CS_CONSUME_MEDIA")
        return channel

    def _ring(self, originate: _Originate, seconds: float) -> bool:
        """Ring the agent leg; False when the originate ended (timeout or kill) instead of an answer."""
        leg = originate.leg
        leg.add_variables(profiles.AGENT_VARIABLES["progress"])
        leg.mark("Channel-Progress-Time")
        self._emit("CHANNEL_PROGRESS", leg)
        self._set_callstate(leg, "RINGING")
        if self._wait(originate, min(seconds, originate.timeout)) and seconds < originate.timeout:
            return True
        self._fail_originate(originate, originate.kill_cause or "NO_ANSWER", job_after_hangup=True)
        return False

    def _wait(self, originate: _Originate, seconds: float) -> bool:
        """Sleep ``seconds`` where a hangup or a ``uuid_bridge`` of the leg can wake the originate; True if none did."""
        self._originating[originate.leg.uuid] = originate
        try:
            return not originate.woken.wait(timeout=seconds)
        finally:
            self._originating.pop(originate.leg.uuid, None)

    def _fail_originate(self, originate: _Originate, cause: str, job_after_hangup: bool) -> None:
        def report() -> None:
            originate.on_result(f"-ERR {cause}\n")

        self._mark_hangup(originate.leg, cause)
        if job_after_hangup:
            report()
        self._tear_down(originate.leg, None if job_after_hangup else report)

    def _answer_agent(self, originate: _Originate) -> None:
        leg = originate.leg
        leg.has_media = True
        self._answer(leg, profiles.AGENT_VARIABLES["answer"])
        self.agent_legs[leg.uuid].answered_at = time.monotonic()
        if self.job_delay > 0 and not self._wait(originate, self.job_delay):
            if originate.kill_cause is not None:
                self._fail_originate(originate, originate.kill_cause, job_after_hangup=True)
            return  # otherwise a uuid_bridge took the leg and ended the originate (_cancel_originate)
        self._end_originate(originate, f"+OK {leg.uuid}\n")
        self._set_state(leg, "CS_EXECUTE")
        leg.add_variables(profiles.AGENT_VARIABLES["park"])
        self._park(leg)

    def _end_originate(self, originate: _Originate, result: str) -> None:
        """The originate of an answered leg returns: CHANNEL_OUTGOING, then the job's result (bridge_race_*)."""
        leg = originate.leg
        self._emit("CHANNEL_OUTGOING", leg)
        leg.add_variables(profiles.AGENT_VARIABLES["originated"])
        originate.on_result(result)

    def _cancel_originate(self, leg: Channel) -> None:
        """A ``uuid_bridge`` took an answered agent leg whose originate has not returned: it returns at once,
        ``-ERR ORIGINATOR_CANCEL`` (``&park()`` never runs), and the bridge goes on (bridge_race_err). The leg
        already knows its other leg then: the CHANNEL_OUTGOING carries Other-Leg-* and Caller-Transfer-Source."""
        originate = self._originating.get(leg.uuid)
        if originate is None or leg.answer_state != "answered":
            return
        del self._originating[leg.uuid]
        self._end_originate(originate, "-ERR ORIGINATOR_CANCEL\n")
        originate.woken.set()

    # ---------------------------------------------------------- registration
    def registration_event(self, agent: Agent, subclass: str, expires: int = 3600) -> SimEvent:
        """``sofia::register`` (a registration or its refresh, ``expires`` seconds), ``sofia::unregister`` (Expires 0)
        or ``sofia::expire`` (a lapsed registration: ``user``/``host`` instead of ``from-user``/``from-host``,
        ``expires`` an epoch), with the headers of the ``registration`` capture."""
        user = agent.user
        contact = f'"{user}" <sip:{user}@127.0.0.1:5070>'
        network = [("network-ip", "127.0.0.1"), ("network-port", "5070")]
        auth = [("username", user), ("realm", "127.0.0.1")]
        call_id = ("call-id", f"reg-{user}@127.0.0.1")
        if subclass == "sofia::expire":
            fields = [("profile-name", "internal"), call_id, ("user", user), ("username", user), ("host", "127.0.0.1")]
            fields += [("contact", contact), ("expires", str(int(time.time()))), ("user-agent", "fsrouter-sim")]
            return self.boot.custom(subclass, fields + [("realm", "127.0.0.1"), *network])
        directory = [
            ("sip_number_alias", user),
            ("sip_auth_username", user),
            ("sip_auth_realm", "127.0.0.1"),
            ("number_alias", user),
            ("user_name", user),
            ("domain_name", "127.0.0.1"),
            ("user_context", "default"),
            ("effective_caller_id_name", f"Agent {user}"),
            ("effective_caller_id_number", user),
        ]
        sender = [("from-user", user), ("from-host", "127.0.0.1")]
        if subclass == "sofia::unregister":
            fields = [("profile-name", "internal"), ("username", user), *sender, ("contact", contact), call_id]
            fields += [("rpid", "unknown"), ("realm", "127.0.0.1"), *network, ("user-agent", "fsrouter-sim")]
            return self.boot.custom(subclass, fields + [("expires", "0"), *directory])
        fields = [("profile-name", "internal"), *sender, ("presence-hosts", "127.0.0.1"), ("contact", contact)]
        fields += [call_id, ("rpid", "unknown"), ("status", "Registered(UDP)"), ("expires", str(expires))]
        fields += [("to-user", user), ("to-host", "127.0.0.1"), *network, *auth, ("user-agent", "fsrouter-sim")]
        return self.boot.custom(subclass, fields + directory)

    def vanish(self) -> None:
        """A FreeSWITCH restart: every call is gone at once, without any event."""
        self.timers.kill(block=False)
        for originate in list(self._originating.values()):
            originate.kill_cause = "vanished"
        self._originating.clear()
        for channel in list(self.channels.values()):
            self._forget(channel)
            if channel.uuid in self.calls:
                self.calls[channel.uuid].state = "vanished"
        self._parked.clear()


def _answer_flow(model: CallModel, originate: _Originate) -> None:
    if model._ring(originate, originate.agent.answer_after):
        model._answer_agent(originate)


def _ring_out_flow(model: CallModel, originate: _Originate) -> None:
    model._ring(originate, originate.timeout)


def _refuse_flow(cause: str) -> Callable[[CallModel, _Originate], None]:
    def flow(model: CallModel, originate: _Originate) -> None:
        model._fail_originate(originate, cause, job_after_hangup=False)

    return flow


AGENT_BEHAVIOURS: dict[str, Callable[[CallModel, _Originate], None]] = {
    "answer": _answer_flow,
    "no_answer": _ring_out_flow,
    "busy": _refuse_flow("USER_BUSY"),
    "reject": _refuse_flow("CALL_REJECTED"),
}
