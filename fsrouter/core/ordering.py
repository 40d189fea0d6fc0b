"""Which waiting caller is served first: FIFO, with a bounded head start for priority callers.

Each waiting call gets a score in seconds, the highest served first::

    score = wait_seconds + min(max(priority, 0) × vip_boost, max_boost)

``wait_seconds`` counts from the call's first entry (an overflowed call keeps its place), ``priority`` is
what the rules decided (``fsrouter_priority``, VIP lists, a route's ``priority``) and ``vip_boost`` /
``max_boost`` come from the call's queue. A negative priority counts as 0: it never pushes a caller back,
which would break the bound below. With every priority at 0 this is plain FIFO. Ties go to the
earlier entry, then to the earlier arrival in fsrouter (entry times re-learnt from ``show channels`` have
whole-second resolution, so ties are common after a reconnect), so the order is total and replays are exact.

No starvation: a boost is worth at most ``max_boost`` seconds, so a caller who has waited more than
``max_boost`` seconds longer than another always goes first, whatever their priorities. In particular a
normal caller waiting more than ``max_boost`` seconds is served before a VIP who has just arrived. A VIP
therefore jumps ahead of at most the callers that arrived within the last ``max_boost`` seconds.
"""

from __future__ import annotations

from fsrouter.core.model import Call
from fsrouter.core.rules import QueueConfig


def boost(priority: int, queue: QueueConfig) -> float:
    """The head start, in seconds of waiting, that ``priority`` earns in ``queue``: 0 to max_boost."""
    return min(max(priority, 0) * queue.vip_boost, queue.max_boost)


def queue_score(call: Call, queue: QueueConfig, now: float) -> float:
    """Seconds waited plus the priority boost: the higher, the sooner the call is served."""
    return (now - call.entered_at) + boost(call.priority, queue)


def order_key(call: Call, queue: QueueConfig, now: float) -> tuple[float, float, int]:
    """Sort key putting the call to serve first first (best score, then earliest entry, then first arrived)."""
    return (-queue_score(call, queue, now), call.entered_at, call.arrival)
