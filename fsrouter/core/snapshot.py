"""Immutable views of the router's state, published for metrics, status and the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from fsrouter.core.lifecycle import AgentState

UNREGISTERED = "unregistered"
"""The state agents-by-state (``QueueView.agents``) counts an ``available`` agent in when its phone cannot be
reached (``Agent.reachable``: a ``user/`` endpoint not known registered): it cannot take calls, so it is neither
available nor staffed (``docs/kpi.md``). Agents on a call, wrapping up, on break or logged out keep their state."""

AGENT_VIEW_STATES = (*(state.value for state in AgentState), UNREGISTERED)
"""Every state agents-by-state counts, in order: the agent states, then ``unregistered``."""


class HealKind(StrEnum):
    """What the periodic reconciliation heals (``core/routing/reconcile.py``): a caller, a ringing or answered
    agent leg, or the agent leg of a conversation that FreeSWITCH no longer has; a caller or agent leg FreeSWITCH
    answered, a caller and agent leg it bridged, without fsrouter hearing of it; an agent leg fsrouter does not
    know."""

    CALL_GONE = "call_gone"
    OFFER_LEG_GONE = "offer_leg_gone"
    AGENT_LEG_GONE = "agent_leg_gone"
    ANSWER_LOST = "answer_lost"
    BRIDGE_LOST = "bridge_lost"
    ORPHAN_LEG = "orphan_leg"


HEAL_KINDS = tuple(kind.value for kind in HealKind)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueView:
    name: str
    strategy: str
    waiting: int
    offering: int
    talking: int
    oldest_entered_at: float | None
    #: state (``AGENT_VIEW_STATES``) -> number of agents of this queue in it (every state present, zeros included);
    #: an available agent whose phone cannot be reached counts as ``unregistered``
    agents: Mapping[str, int]
    service_level_seconds: float
    service_level_target: float
    #: agents of this queue whose phone cannot be reached, whatever their state (``Agent.reachable``)
    unregistered: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentView:
    id: str
    endpoint: str
    state: str
    since: float
    #: the agent may be rung on some node (``Agent.registered``)
    registered: bool
    #: registered on some node the router knows, or an endpoint that needs no registration (``Agent.reachable``)
    reachable: bool
    queues: tuple[str, ...]
    call_uuid: str | None
    calls_answered: int
    no_answer_count: int
    #: queue -> talk + wrap-up time over logged-in time during that queue's ``occupancy_window`` (the figure
    #: ``least-occupied`` ranks by; ``Agent.occupancy``)
    occupancy: Mapping[str, float] = field(default_factory=dict)
    #: node -> whether the agent's phone is registered there, as last heard (nodes not heard of are left out)
    registrations: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallView:
    uuid: str
    node: str
    queue: str
    state: str
    entered_at: float
    #: seconds in queue: until now, or until an agent was connected
    waited: float
    #: an agent has the caller on hold
    on_hold: bool
    priority: int
    caller_number: str
    agent: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    taken_at: float
    queues: tuple[QueueView, ...]
    agents: tuple[AgentView, ...]
    calls: tuple[CallView, ...]
    #: node name -> connected
    nodes: Mapping[str, bool]
    rules_version: str
    rules_loaded_at: float
    draining: bool
    #: heals by the periodic reconciliation since start, by kind (``HEAL_KINDS``)
    heals: Mapping[str, int] = field(default_factory=dict)
    #: calls overflowed since start, by (queue, target queue or extension); configured paths listed at 0
    overflows: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: stays that followed an earlier stay of the same channel (an agent's transfer back into fsrouter) since
    #: start, by (queue of the earlier stay, queue of the new one)
    transfers: Mapping[tuple[str, str], int] = field(default_factory=dict)
