"""How an offer to an agent ended, from FreeSWITCH's hang-up cause: one table for the router and the KPIs.

The router penalises the agent by the kind of end (a retry delay for busy, rejected or rang out; a break after
too many no-answers; nothing when the agent is not at fault), and the no-answer rate (K-03, ``docs/kpi.md``)
counts only the offers presented to the agent and not picked up. Both read ``offer_end``. An offer's recorded
result is the cause lower-cased (``OfferRecord.result``: ``user_busy``, ``originator_cancel``, ...), or
``answered``.

Causes are FreeSWITCH's (``switch_channel_cause2str``), as the BACKGROUND_JOB of ``originate`` and CHANNEL_HANGUP
report them; fsrouter adds ``SEND_FAILED``, ``BRIDGE_TIMEOUT``, ``MISSED_HANGUP``, ``LOST_WHILE_DISCONNECTED``,
``UNKNOWN_FATE`` and ``CHANNEL_GONE`` for ends it observed itself. Any cause not in the table (``NO_ANSWER``,
``NO_USER_RESPONSE``, ``NORMAL_TEMPORARY_FAILURE``, ...) means the phone was rung and nobody took the call.
"""

from __future__ import annotations

from enum import StrEnum


class OfferEnd(StrEnum):
    """What an ended offer says about the agent."""

    ANSWERED = "answered"
    #: rang out, or any failure after the phone was presented the call: counts against the agent (K-03)
    NOT_PICKED_UP = "not_picked_up"
    BUSY = "busy"
    REJECTED = "rejected"
    #: the phone is not registered: the call never reached it
    UNREGISTERED = "unregistered"
    #: fsrouter could not send the originate
    NOT_SENT = "not_sent"
    #: fsrouter withdrew the offer (caller left, another agent won, overflow), lost track of the leg or of its
    #: originate, the leg was found gone, or FreeSWITCH never bridged the agent who answered: nothing to hold
    #: against the agent
    WITHDRAWN = "withdrawn"


#: the hang-up cause recorded for a channel an audit found gone without its hang-up event having arrived
MISSED_HANGUP = "MISSED_HANGUP"
#: an offer or call of a node that came back without it (reconnect, restart)
LOST_WHILE_DISCONNECTED = "LOST_WHILE_DISCONNECTED"
#: an originate or bridge the daemon could not send or FreeSWITCH refused
SEND_FAILED = "SEND_FAILED"
#: an originate FreeSWITCH may never have received (no reply, connection lost before its job result), whose leg
#: nothing was heard of until the ring watchdog gave up on it: the agent may never have been rung
UNKNOWN_FATE = "UNKNOWN_FATE"
#: FreeSWITCH answered a command about the channel that it has no such channel (``-ERR No such channel!``,
#: ``-ERR Invalid uuid``...): it hung up and its hang-up event was lost
CHANNEL_GONE = "CHANNEL_GONE"
#: the agent answered and FreeSWITCH never confirmed the bridge (sent twice)
BRIDGE_TIMEOUT = "BRIDGE_TIMEOUT"

_ENDS: dict[str, OfferEnd] = {
    "ANSWERED": OfferEnd.ANSWERED,
    "USER_BUSY": OfferEnd.BUSY,
    "NORMAL_CIRCUIT_CONGESTION": OfferEnd.BUSY,
    "CALL_REJECTED": OfferEnd.REJECTED,
    "USER_NOT_REGISTERED": OfferEnd.UNREGISTERED,
    "SUBSCRIBER_ABSENT": OfferEnd.UNREGISTERED,
    SEND_FAILED: OfferEnd.NOT_SENT,
    "ORIGINATOR_CANCEL": OfferEnd.WITHDRAWN,
    "LOSE_RACE": OfferEnd.WITHDRAWN,
    LOST_WHILE_DISCONNECTED: OfferEnd.WITHDRAWN,
    MISSED_HANGUP: OfferEnd.WITHDRAWN,
    BRIDGE_TIMEOUT: OfferEnd.WITHDRAWN,
    UNKNOWN_FATE: OfferEnd.WITHDRAWN,
    CHANNEL_GONE: OfferEnd.WITHDRAWN,
}

#: ends that count as "presented and not picked up" (K-03)
NO_ANSWER_ENDS = frozenset({OfferEnd.NOT_PICKED_UP, OfferEnd.BUSY, OfferEnd.REJECTED})
#: ends of offers presented to the agent, who could pick up (K-03's denominator)
PRESENTED_ENDS = NO_ANSWER_ENDS | {OfferEnd.ANSWERED}


def offer_end(cause_or_result: str) -> OfferEnd:
    """The kind of end of a hang-up cause (``USER_BUSY``) or of a recorded offer result (``user_busy``)."""
    return _ENDS.get(cause_or_result.upper(), OfferEnd.NOT_PICKED_UP)


def offer_result(cause: str) -> str:
    """The result an offer that ended with ``cause`` is recorded with (``OfferRecord.result``)."""
    return cause.lower()
