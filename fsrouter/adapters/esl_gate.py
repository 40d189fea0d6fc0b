"""Whether an ESL command may go out now, from what one node's events told about its channels (pure: no I/O).

Two facts of FreeSWITCH make a command written blindly either useless or lost:

- a channel whose hang-up was seen (CHANNEL_HANGUP / CHANNEL_HANGUP_COMPLETE) is gone for good: ``uuid_answer``,
  ``uuid_broadcast``, ``uuid_break``, ``uuid_bridge``, ``uuid_kill`` on it only earn ``-ERR No such channel!``
  (mod_commands.c, ``switch_core_session_locate`` failing), and an originate for a caller who left rings an
  agent for nobody;
- ``bgapi`` runs its command in a thread of its own (mod_event_socket.c, ``api_exec`` launched by the ``bgapi``
  branch of ``parse_command``) while the socket thread goes on with the next command, so a ``uuid_kill`` written
  right after the ``bgapi originate`` of its leg may run before ``switch_ivr_originate`` created the leg: it fails
  with ``-ERR No such channel!`` and the leg goes on ringing. Such a kill is held until the leg exists (its
  CHANNEL_CREATE, any other event of it, or its job's ``+OK``), and dropped when the job reports ``-ERR`` (the
  leg never existed, or is gone) or the leg's hang-up arrives.

Usage (``adapters/esl.py`` does this for every command and every event of a node)::

    gate = ChannelGate()
    if gate.admit(command) is Verdict.SEND:
        write(command)
    released = gate.observe(headers, body)   # a held Kill to write now, or None
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from fsrouter.adapters.esl_translate import originate_job_result
from fsrouter.core.commands import Answer, Bridge, EslCommand, Kill, Originate, PlayMusic, Transfer

REMEMBERED_CHANNELS = 10_000
"""How many gone channels (and originates in flight) a node remembers; the oldest are forgotten first. At 40
calls/s with two legs each this covers two minutes, far more than a command waits in fsrouter."""

_Value = TypeVar("_Value")

HANGUP_EVENTS = frozenset({"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"})


class Verdict(enum.Enum):
    """What to do with a command now."""

    SEND = "send"
    HOLD = "hold"  # a kill of a leg not created yet: the gate keeps it and ``observe``/``reset`` hand it back
    DROP = "drop"  # its channel is gone (or was never created): sending it would do nothing


class ChannelGate:
    """One node's bookkeeping: channels known gone, originates written whose leg is not known to exist yet
    (with the kill held for each), and kills that got no reply."""

    def __init__(self, remember: int = REMEMBERED_CHANNELS) -> None:
        self._remember = remember
        #: channels whose hang-up was seen, or legs that will never exist (insertion-ordered, bounded)
        self._gone: dict[str, None] = {}
        #: leg uuid -> the kill held for it (None while none is) for every originate written whose leg may not
        #: exist yet (insertion-ordered, bounded)
        self._originating: dict[str, Kill | None] = {}
        #: kills written that got no reply (connection lost, timeout): sent again on the next connection
        self._unconfirmed: dict[str, Kill] = {}

    def admit(self, command: EslCommand) -> Verdict:
        """Decide on ``command``, about to be written; an admitted Originate counts as in flight from now."""
        match command:
            case Kill(uuid=uuid):
                if uuid in self._gone:
                    return Verdict.DROP
                if uuid in self._originating:
                    self._originating[uuid] = command
                    return Verdict.HOLD
                return Verdict.SEND
            case Originate(call_uuid=caller, leg_uuid=leg):
                if caller in self._gone:
                    _remember(self._gone, leg, None, self._remember)  # so a later Kill of this leg is a no-op
                    return Verdict.DROP
                _remember(self._originating, leg, None, self._remember)
                return Verdict.SEND
            case Bridge(caller_uuid=caller, agent_uuid=agent):
                return Verdict.DROP if caller in self._gone or agent in self._gone else Verdict.SEND
            case Answer(uuid=uuid) | PlayMusic(uuid=uuid) | Transfer(uuid=uuid):
                return Verdict.DROP if uuid in self._gone else Verdict.SEND
        raise TypeError(f"not an ESL command: {command!r}")

    def observe(self, headers: Mapping[str, str], body: str) -> Kill | None:
        """Learn from one event of the node; returns the kill held for a leg that now exists, to write now."""
        job = originate_job_result(headers, body)
        if job is not None:
            leg, error = job
            if error is None:
                return self.exists(leg)
            self.gone(leg)  # the leg never existed, or is gone already
            return None
        uuid = headers.get("Unique-ID")
        if not uuid:
            return None
        if headers.get("Event-Name") in HANGUP_EVENTS:
            self.gone(uuid)
            return None
        return self.exists(uuid)

    def exists(self, uuid: str) -> Kill | None:
        """Channel ``uuid`` exists: it is no longer an originate in flight; returns the kill held for it."""
        return self._originating.pop(uuid, None)

    def gone(self, uuid: str) -> None:
        """Channel ``uuid`` hung up, or will never exist (its originate failed): commands for it are dropped from
        now on, a kill held for it too."""
        self._originating.pop(uuid, None)
        self._unconfirmed.pop(uuid, None)
        _remember(self._gone, uuid, None, self._remember)

    def unconfirmed(self, kill: Kill) -> None:
        """``kill`` got no reply (not connected, connection lost, timeout): FreeSWITCH may not have run it."""
        if kill.uuid not in self._gone:
            _remember(self._unconfirmed, kill.uuid, kill, self._remember)

    def reset(self) -> list[Kill]:
        """A new connection: the events that would have settled the originates in flight may have been lost with
        the old one. Returns the kills to write again (held or unconfirmed); a kill of a channel that is gone
        after all only earns ``-ERR No such channel!``."""
        kills = [kill for kill in self._originating.values() if kill is not None] + list(self._unconfirmed.values())
        self._originating.clear()
        self._unconfirmed.clear()
        return kills

    def unresolved(self) -> frozenset[str]:
        """Legs fsrouter may have left in FreeSWITCH: originates in flight (a held kill among them) and kills
        without a reply."""
        return frozenset(self._originating) | frozenset(self._unconfirmed)


def _remember(remembered: dict[str, _Value], uuid: str, value: _Value, limit: int) -> None:
    """Put ``uuid`` last in ``remembered``, forgetting the oldest entry beyond ``limit``."""
    remembered.pop(uuid, None)
    remembered[uuid] = value
    if len(remembered) > limit:
        del remembered[next(iter(remembered))]
