"""The record of a call fsrouter lost sight of across its own restart.

A call that was in fsrouter when the previous process stopped (a crash, ``kill -9``, a drain cut short) and that
the new process does not take back as a waiting caller either ended while no fsrouter was running, or is still
connected to its agent. Each still gets its one record: at the new process's first look at the node for the
first, at its hang-up for the second. What happened meanwhile is read from the offers the store kept: a call
with an answered offer was answered by that agent at that offer's end; any other was abandoned.
"""

from __future__ import annotations

from collections.abc import Sequence

from fsrouter.core.commands import CallOutcome, CallRecord, OfferRecord

#: hang-up cause of a call that ended while no fsrouter process was watching it (the real cause is lost)
ENDED_WHILE_AWAY = "ENDED_WHILE_FSROUTER_WAS_AWAY"


def record_of_unwatched_call(
    *,
    uuid: str,
    node: str,
    queue: str,
    entered_at: float,
    offers: Sequence[OfferRecord],
    ended_at: float,
    cause: str,
) -> CallRecord:
    """The one record of a call whose end no router saw from its start (``ended_at`` as late as first known)."""
    answered = next((offer for offer in offers if offer.result == "answered"), None)
    return CallRecord(
        uuid=uuid,
        node=node,
        queue=queue,
        outcome=CallOutcome.ANSWERED if answered is not None else CallOutcome.ABANDONED,
        entered_at=entered_at,
        ended_at=max(ended_at, entered_at),
        agent=answered.agent if answered is not None else None,
        answered_at=answered.ended_at if answered is not None else None,
        hangup_cause=cause,
        offers=len(offers),
    )
