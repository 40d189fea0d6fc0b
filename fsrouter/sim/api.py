"""The `api`/`bgapi` commands the simulator understands, with FreeSWITCH's exact reply strings."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import gevent.event

from fsrouter.sim.events import Channel, uptime_text
from fsrouter.sim.model import CallModel

ApiHandler = Callable[[CallModel, list[str]], str]

VERSION = "FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n"
ORIGINATE_USAGE = (
    "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] "
    "[<cid_num>] [<timeout_sec>]\n"
)
NO_SUCH_CHANNEL = "-ERR No such channel!\n"


def _originate(model: CallModel, args: list[str]) -> str:
    if not args:
        return ORIGINATE_USAGE
    result: gevent.event.AsyncResult[str] = gevent.event.AsyncResult()
    model.originate(args[0], result.set)
    return str(result.get())


def _answering(answer: Callable[[CallModel, Channel], None]) -> ApiHandler:
    """uuid_answer / uuid_pre_answer: both reply `-ERROR` (not `-ERR ...`) for an unknown channel."""

    def handler(model: CallModel, args: list[str]) -> str:
        channel = model.channels.get(args[0]) if args else None
        if channel is None:
            return "-ERROR\n"
        answer(model, channel)
        return "+OK\n"

    return handler


_uuid_answer = _answering(CallModel._answer_caller)
_uuid_pre_answer = _answering(CallModel._pre_answer)


def _uuid_bridge(model: CallModel, args: list[str]) -> str:
    if len(args) < 2 or args[0] not in model.channels or args[1] not in model.channels:
        return "-ERR Invalid uuid\n"
    model.timers.spawn(model.bridge, model.channels[args[0]], model.channels[args[1]])
    return f"+OK {args[1]}\n"


def _uuid_kill(model: CallModel, args: list[str]) -> str:
    channel = model.channels.get(args[0]) if args else None
    if channel is None:
        return NO_SUCH_CHANNEL
    model.timers.spawn(model.hangup, channel, args[1] if len(args) > 1 else "NORMAL_CLEARING")
    return "+OK\n"


def _uuid_break(model: CallModel, args: list[str]) -> str:
    channel = model.channels.get(args[0]) if args else None
    if channel is None:
        return NO_SUCH_CHANNEL
    playback = channel.variables.pop("sim_playback_uuid", None)
    if playback is not None:
        model._execute_complete(
            channel,
            "playback",
            channel.variables.get("current_application_data", ""),
            playback,
            "FILE PLAYED",
        )
    return "+OK\n"


def _uuid_broadcast(model: CallModel, args: list[str]) -> str:
    channel = model.channels.get(args[0]) if args else None
    if channel is None or len(args) < 2:
        return "-ERR invalid uuid\n"
    channel.variables["sim_playback_uuid"] = model._execute(channel, "playback", args[1])
    return "+OK Message sent\n"


def _uuid_transfer(model: CallModel, args: list[str]) -> str:
    words = [word for word in args if word not in ("-bleg", "-both")]
    channel = model.channels.get(words[0]) if words else None
    if channel is None:
        return NO_SUCH_CHANNEL
    if len(words) < 2:
        return "-ERR\n"
    model.timers.spawn(model.transfer, channel, words[1])
    return "+OK\n"


def _uuid_hold(model: CallModel, args: list[str]) -> str:
    """``uuid_hold [off|toggle] <uuid>``."""
    mode = args[0] if args and args[0] in ("off", "toggle") else "on"
    words = args[1:] if mode != "on" else args
    channel = model.channels.get(words[0]) if words else None
    if channel is None:
        return "-ERR Operation failed\n"
    on = channel.call_state != "HELD" if mode == "toggle" else mode == "on"
    model.hold(channel, on)
    return "+OK Success\n"


def _uuid_getvar(model: CallModel, args: list[str]) -> str:
    channel = model.channels.get(args[0]) if args else None
    if channel is None:
        return NO_SUCH_CHANNEL
    return channel.variables.get(args[1], "_undef_") if len(args) > 1 else "_undef_"


def _uuid_setvar(model: CallModel, args: list[str]) -> str:
    channel = model.channels.get(args[0]) if args else None
    if channel is None:
        return NO_SUCH_CHANNEL
    if len(args) < 2:
        return "-ERR No variable specified\n"
    if len(args) > 2:
        channel.variables[args[1]] = " ".join(args[2:])
    else:
        channel.variables.pop(args[1], None)
    return "+OK\n"


def _uuid_exists(model: CallModel, args: list[str]) -> str:
    return "true" if args and args[0] in model.channels else "false"


def _show(model: CallModel, args: list[str]) -> str:
    """``show channels as json`` (the core db's ``channels`` table) or ``show calls as json`` (its
    ``basic_calls`` view: one row per channel, a bridged pair as one row for its A leg with the B leg's
    columns prefixed ``b_``). No row at all is ``{"row_count": 0}`` and a newline, as FreeSWITCH answers."""
    if args[1:3] != ["as", "json"] or args[0] not in ("channels", "calls"):
        return "-USAGE: show channels as json\n"
    if not model.channels:
        return '{"row_count": 0}\n'
    if args[0] == "channels":
        rows = [_channel_row(model, channel) for channel in model.channels.values()]
    else:
        b_legs = {b_leg.uuid for channel in model.channels.values() if (b_leg := _bridged_to(channel)) is not None}
        rows = [_call_row(model, channel) for channel in model.channels.values() if channel.uuid not in b_legs]
    return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"))


def _bridged_to(channel: Channel) -> Channel | None:
    """The B leg bridged to A leg ``channel``: FreeSWITCH's ``calls`` table gets the pair on CHANNEL_BRIDGE (when
    the bridge time is marked) and loses it on CHANNEL_UNBRIDGE (the simulator then destroys both legs)."""
    if channel.other_type != "originatee" or "Channel-Bridged-Time" not in channel.times:
        return None
    return channel.other


def _call_uuid(channel: Channel) -> str:
    """The ``call_uuid`` column: empty until a bridge, then the A leg's Channel-Call-UUID on both legs."""
    a_leg = channel if _bridged_to(channel) is not None else channel.other
    if a_leg is None or _bridged_to(a_leg) is None:
        return ""
    return a_leg.variables.get("call_uuid", a_leg.uuid)


def _channel_row(model: CallModel, channel: Channel) -> dict[str, str]:
    created = channel.times.get("Channel-Created-Time", 0) // 1_000_000
    profile = channel.profile
    return {
        "uuid": channel.uuid,
        "direction": channel.direction,
        "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created)),
        "created_epoch": str(created),
        "name": channel.name,
        "state": channel.state,
        "cid_name": profile.get("Caller-ID-Name", ""),
        "cid_num": profile.get("Caller-ID-Number", ""),
        "ip_addr": "127.0.0.1",
        "dest": profile.get("Destination-Number", ""),
        "application": channel.variables.get("current_application", ""),
        "application_data": channel.variables.get("current_application_data", ""),
        "dialplan": "XML",
        "context": "default",
        "read_codec": "PCMU" if channel.has_media else "",
        "read_rate": "8000" if channel.has_media else "",
        "read_bit_rate": "64000" if channel.has_media else "",
        "write_codec": "PCMU" if channel.has_media else "",
        "write_rate": "8000" if channel.has_media else "",
        "write_bit_rate": "64000" if channel.has_media else "",
        "secure": "",
        "hostname": model.boot.hostname,
        "presence_id": channel.presence_id or "",
        "presence_data": "",
        "accountcode": "",
        "callstate": channel.call_state,
        "callee_name": "",
        "callee_num": "",
        "callee_direction": "",
        "call_uuid": _call_uuid(channel),
        "sent_callee_name": "",
        "sent_callee_num": "",
        "initial_cid_name": profile.get("Caller-ID-Name", ""),
        "initial_cid_num": profile.get("Caller-ID-Number", ""),
        "initial_ip_addr": "127.0.0.1",
        "initial_dest": profile.get("Destination-Number", ""),
        "initial_dialplan": "XML",
        "initial_context": "default",
    }


#: ``basic_calls`` columns of each leg, in FreeSWITCH's order (the B leg's carry a ``b_`` prefix and no call_uuid
#: or hostname)
_CALL_COLUMNS = (
    "uuid direction created created_epoch name state cid_name cid_num ip_addr dest presence_id presence_data "
    "accountcode callstate callee_name callee_num callee_direction call_uuid hostname sent_callee_name "
    "sent_callee_num"
).split()
_B_LEG_COLUMNS = [column for column in _CALL_COLUMNS if column not in ("call_uuid", "hostname")]


def _call_row(model: CallModel, channel: Channel) -> dict[str, str]:
    a_row = _channel_row(model, channel)
    row = {column: a_row[column] for column in _CALL_COLUMNS}
    b_leg = _bridged_to(channel)
    b_row = _channel_row(model, b_leg) if b_leg is not None else {}
    row.update({f"b_{column}": b_row.get(column, "") for column in _B_LEG_COLUMNS})
    bridged_at = channel.times.get("Channel-Bridged-Time", 0) // 1_000_000
    row["call_created_epoch"] = str(bridged_at) if b_leg is not None else ""
    return row


def _status(model: CallModel, args: list[str]) -> str:
    return (
        f"UP {uptime_text(time.time() - model.boot.started_at)}\n"
        "FreeSWITCH (Version 1.10.12-release  64bit) is ready\n"
        f"{model.sessions_since_startup} session(s) since startup\n"
        f"{len(model.channels)} session(s) - peak 0, last 5min 0 \n"
        "0 session(s) per Sec out of max 50, peak 0, last 5min 0 \n"
        "200 session(s) max\nmin idle cpu 0.00/98.67\nCurrent Stack Size/Max 240K/8192K\n"
    )


#: the one SIP profile the simulator has, as ``sofia status`` lists it
SOFIA_PROFILE = "internal"
_SOFIA_RULE = "=" * 97 + "\n"


def _sofia(model: CallModel, args: list[str]) -> str:
    """``sofia status`` (one profile, ``internal``) and ``sofia status profile internal reg`` (the agents
    registered now), laid out as mod_sofia lays them out (``sofia_status_profile_reg.raw``)."""
    if args == ["status"]:
        return (
            f"{'Name':>21}\t{'Type':>7}\t{'Data':>42}\tState\n{_SOFIA_RULE}"
            f"{SOFIA_PROFILE:>21}\t{'profile':>7}\t{'sip:mod_sofia@127.0.0.1:5060':>42}\tRUNNING (0)\n"
            f"{_SOFIA_RULE}1 profile 0 aliases\n"
        )
    if args != ["status", "profile", SOFIA_PROFILE, "reg"]:
        return f"-ERR Usage: sofia status [profile <name> reg] (got {' '.join(args)!r})\n"
    registered = [agent for agent in model.agents.values() if agent.registered and agent.behaviour != "unregistered"]
    rows = "".join(
        f"Call-ID:    \treg-{agent.user}@127.0.0.1\n"
        f"User:       \t{agent.user}@127.0.0.1\n"
        f'Contact:    \t"{agent.user}" <sip:{agent.user}@127.0.0.1:5070>\n'
        "Agent:      \tfsrouter-sim\n"
        "Status:     \tRegistered(UDP)(unknown) EXP(2036-01-01 00:00:00) EXPSECS(3600)\n"
        "Ping-Status:\tReachable\nPing-Time:\t0.00\n"
        f"Host:       \t{model.boot.hostname}\nIP:         \t127.0.0.1\nPort:       \t5070\n"
        f"Auth-User:  \t{agent.user}\nAuth-Realm: \t127.0.0.1\nMWI-Account:\t{agent.user}@127.0.0.1\n\n"
        for agent in registered
    )
    return f"\nRegistrations:\n{_SOFIA_RULE}{rows}Total items returned: {len(registered)}\n{_SOFIA_RULE}"


def _global_getvar(model: CallModel, args: list[str]) -> str:
    """Only the globals a client asks for on connect; FreeSWITCH answers an unset one with an empty body."""
    known = {"core_uuid": model.boot.core_uuid, "hostname": model.boot.hostname}
    return known.get(args[0], "") if args else ""


API_COMMANDS: dict[str, ApiHandler] = {
    "global_getvar": _global_getvar,
    "originate": _originate,
    "uuid_answer": _uuid_answer,
    "uuid_pre_answer": _uuid_pre_answer,
    "uuid_bridge": _uuid_bridge,
    "uuid_kill": _uuid_kill,
    "uuid_break": _uuid_break,
    "uuid_broadcast": _uuid_broadcast,
    "uuid_transfer": _uuid_transfer,
    "uuid_hold": _uuid_hold,
    "uuid_getvar": _uuid_getvar,
    "uuid_setvar": _uuid_setvar,
    "uuid_exists": _uuid_exists,
    "show": _show,
    "sofia": _sofia,
    "status": _status,
    "version": lambda model, args: VERSION,
}


def run_api(model: CallModel, command_line: str) -> str:
    """Run one api command line; blocks the calling greenlet like FS blocks the socket thread."""
    command, *args = command_line.split()
    handler = API_COMMANDS.get(command)
    if handler is None:
        return f"-ERR {command} Command not found!\n"
    return handler(model, args) or "-ERR no reply\n"
