"""The routing core's facade: ``Router.handle(event, now) -> list[Command]``.

The router is a pure state machine in the style of h11: the daemon feeds it events (translated from ESL frames,
plus ticks and operator actions) with the current time, and executes the commands it returns, in order. It never
reads a clock, a socket or a file, so every behaviour can be replayed in a test with a fake clock, and faster
than real time in a what-if simulation.

One call flows like this (``design.md``, "How a call flows"), each step in the module named after it:

1. ``CallParked`` of a marked caller (``callers.py``): classified by the rules (queue, priority, skills, or a
   closed/transfer/reject action), answered if the dialplan did not, music on hold, queued.
2. After every event, ``dispatch.py`` offers waiting calls to the best eligible agent of their queue, and
   ``offers.py`` rings them with ``Originate`` on the caller's node, only agents whose phone may be reached there
   (``presence.py``, registration per node).
3. ``offers.py`` follows the agent leg: its answer and the originate job's result, then ``Bridge`` once the caller
   is answered too ("The originate/bridge race" there), then ``ChannelBridged`` (TALKING). An offer that fails
   puts the agent in the matching retry delay and the call back in the queue.
4. Either side hanging up ends the call (``callers.py``) with exactly one ``RecordCall`` (``records.py``). The
   agent goes to wrap-up, then back to AVAILABLE on a ``Tick`` (``presence.py``). A waiting caller whose channel
   leaves park (``CallLeftPark``) ends ``left``; one that parks again after its stay starts a new stay.

What the router knows is in one ``Book`` (``book.py``); ``reconcile.py`` keeps it in step with what FreeSWITCH
really has. Every call that enters ends with exactly one record; every agent that rings ends the ring.
"""

from __future__ import annotations

import uuid as uuidlib
from collections import Counter
from collections.abc import Callable
from typing import assert_never

from fsrouter.core.causes import CHANNEL_GONE
from fsrouter.core.commands import Command
from fsrouter.core.events import (
    AgentControl,
    AgentRegistration,
    CallLeftPark,
    CallParked,
    CallsRestored,
    ChannelAnswered,
    ChannelBridged,
    ChannelGone,
    ChannelHungUp,
    ChannelsAudited,
    CommandFailed,
    Event,
    FailedCommand,
    Failure,
    HoldChanged,
    NodeDown,
    NodeUp,
    OriginateFailed,
    OriginateSucceeded,
    ReleaseAgentLegs,
    StopTakingCalls,
    Tick,
)
from fsrouter.core.explain import Trace
from fsrouter.core.lifecycle import RING_CANCELLING, AgentState, AgentTrigger, CallState
from fsrouter.core.model import Agent, Call
from fsrouter.core.routing.book import Book, Heal, Options
from fsrouter.core.routing.callers import Callers
from fsrouter.core.routing.dispatch import Dispatcher
from fsrouter.core.routing.offers import DEFAULT_BRIDGE_TIMEOUT, Offers
from fsrouter.core.routing.presence import Presence
from fsrouter.core.routing.reconcile import Reconciler
from fsrouter.core.routing.records import REHOMED, Records
from fsrouter.core.rules import Rules
from fsrouter.core.snapshot import Snapshot


def _new_uuid() -> str:
    return str(uuidlib.uuid4())


class Router:
    """Routes parked callers to agents; see the module docstring for the flow."""

    def __init__(
        self,
        rules: Rules,
        *,
        now: float,
        new_id: Callable[[], str] = _new_uuid,
        random: Callable[[], float] | None = None,
        emit_traces: bool = False,
        on_heal: Callable[[Heal], None] | None = None,
        bridge_timeout: float = DEFAULT_BRIDGE_TIMEOUT,
        on_unknown_queue: Callable[[str], None] | None = None,
        on_not_taken: Callable[[str], None] | None = None,
    ) -> None:
        """``new_id`` names the agent legs. ``random`` feeds weighted-random; by default each decision draws
        from a source seeded with the call uuid and its offer count, so a replay of the same events makes the
        same choices. ``emit_traces`` adds a ``RecordTrace`` command per routing decision (the daemon stores
        them for ``fsrouter explain``); the last calls' traces are kept in memory either way (``explain``).
        ``on_heal`` is told every heal of the reconciliation (the daemon logs them). ``bridge_timeout``
        (seconds) bounds an unconfirmed bridge and a missing originate job result (``offers.py``).
        ``on_unknown_queue`` is told the ``fsrouter_queue`` of each caller that asked for a queue the rules do not
        have (it goes to the default route; the daemon logs and counts it). ``on_not_taken`` is told the uuid of
        each caller that parks while the router is draining: it is not taken and stays parked (the daemon logs it)."""
        options = Options(
            new_id=new_id,
            random=random,
            emit_traces=emit_traces,
            on_heal=on_heal,
            bridge_timeout=bridge_timeout,
            on_unknown_queue=on_unknown_queue,
            on_not_taken=on_not_taken,
        )
        self._book = book = Book(rules, options)
        self._records = Records(book)
        self._presence = Presence(book, self._records)
        self._offers = Offers(book, self._records, self._presence)
        self._callers = Callers(book, self._records, self._presence, self._offers)
        self._dispatcher = Dispatcher(book, self._records, self._callers, self._offers)
        self._reconciler = Reconciler(book, self._callers, self._offers, self._presence)
        self._take_rules(rules, now)

    # ------------------------------------------------------------------ public API

    def handle(self, event: Event, now: float) -> list[Command]:
        """Apply one event at time ``now`` and return the commands to execute, in order."""
        return self._apply(event, now) + self._dispatcher.dispatch(now)

    def load_rules(self, rules: Rules, now: float) -> list[Command]:
        """Swap in new, already validated rules (hot reload).

        Waiting calls keep their place and entry time. A caller still waiting in a queue the new rules removed is
        classified again by them (``Callers.rehome``): it keeps its entry time and priority in the queue they
        give, or leaves as their closed, transfer or reject action says, with its one record, as ``reload_diff``
        announced. A call an agent already took stays with it, under its queue's last configuration. Agents
        that were removed are logged out once they are idle; their current call is not touched.
        """
        commands = self._take_rules(rules, now)
        for call in [c for c in self._book.calls.values() if c.queue not in rules.queues and c.state in REHOMED]:
            commands += self._callers.rehome(call, now)
        return commands + self._dispatcher.dispatch(now)

    def reload_diff(self, new: Rules, now: float) -> dict[str, object]:
        """What ``load_rules(new, now)`` would change (``records.Records.reload_diff``); nothing is changed."""
        return self._records.reload_diff(new, now)

    def snapshot(self, now: float) -> Snapshot:
        """An immutable picture of queues, agents and calls for metrics and ``fsrouter status``."""
        return self._records.snapshot(now)

    def explain(self, call_uuid: str, now: float | None = None) -> list[Trace]:
        """The routing traces of a recent call, oldest first (``core/explain.py`` describes them).

        With ``now``, a call still waiting also gets a fresh trace of what would be decided at that moment
        (why no agent takes it), marked ``"live": True`` and not kept.
        """
        traces = self._book.traces.get(call_uuid)
        call = self._book.calls.get(call_uuid)
        if now is not None and call is not None and call.state is CallState.WAITING:
            traces.append({**self._dispatcher.decide(call, now)[1], "live": True})
        return traces

    # read-only views of the book for the daemon and tests; changing them from outside the core is a bug

    @property
    def rules(self) -> Rules:
        """The rules in force."""
        return self._book.rules

    @property
    def calls(self) -> dict[str, Call]:
        return self._book.calls

    @property
    def agents(self) -> dict[str, Agent]:
        return self._book.agents

    @property
    def heals(self) -> Counter[str]:
        return self._book.heals

    @property
    def overflows(self) -> Counter[tuple[str, str]]:
        return self._book.overflows

    @property
    def transfers(self) -> Counter[tuple[str, str]]:
        """Stays that followed an earlier stay of the same channel, by (earlier queue, new queue)."""
        return self._book.transfers

    @property
    def draining(self) -> bool:
        return self._book.draining

    @property
    def offering_stopped(self) -> bool:
        """``ReleaseAgentLegs`` was handled: no agent is rung any more."""
        return self._book.offering_stopped

    # ------------------------------------------------------------------ events

    def _apply(self, event: Event, now: float) -> list[Command]:
        match event:
            case CallParked():
                return self._callers.on_parked(event, now)
            case CallLeftPark():
                return self._callers.on_left_park(event, now)
            case ChannelAnswered():
                return self._callers.on_answered(event.uuid, now)
            case OriginateSucceeded():
                return self._offers.on_originate_succeeded(event, now)
            case OriginateFailed():
                return self._offers.on_originate_failed(event, now)
            case ChannelBridged():
                return self._offers.on_bridged(event, now)
            case HoldChanged():
                return self._callers.on_hold_changed(event, now)
            case ChannelHungUp():
                return self._hung_up(event, now)
            case ChannelGone():  # its hang-up event was lost: it ends as that event would have ended it
                return self._hung_up(ChannelHungUp(node=event.node, uuid=event.uuid, cause=CHANNEL_GONE), now)
            case CommandFailed() if event.failure is Failure.UNKNOWN:
                return self._offers.on_fate_unknown(event)
            case CommandFailed() if event.command is FailedCommand.ANSWER:
                return self._callers.on_answer_failed(event, now)
            case CommandFailed():
                return self._offers.on_command_failed(event, now)
            case AgentRegistration():
                return self._presence.on_registration(event)
            case AgentControl():
                return self._agent_control(event, now)
            case NodeUp():
                return self._presence.on_registrations_listed(event) + self._reconciler.on_node_up(event, now)
            case NodeDown():
                return self._reconciler.on_node_down(event, now)
            case ChannelsAudited():
                return self._reconciler.on_audit(event, now)
            case Tick():
                return self._on_tick(now)
            case StopTakingCalls():
                self._book.draining = True
                return []
            case ReleaseAgentLegs():
                self._book.offering_stopped = True
                return self._offers.release_all(now)
            case CallsRestored():
                return self._reconciler.on_calls_restored(event) + self._presence.restore(event.agent_states, now)
            case _:
                assert_never(event)

    def _agent_control(self, event: AgentControl, now: float) -> list[Command]:
        """An operator's action (``presence.Presence.on_control``); with ``cancel_ring``, a break or logout of a
        ringing agent first cancels its ring (its caller waits again, no penalty), so it applies at once."""
        agent = self._book.agents.get(event.agent_id)
        commands: list[Command] = []
        cancels = event.cancel_ring and AgentTrigger(event.action.value) in RING_CANCELLING
        if agent is not None and agent.state is AgentState.RESERVED and cancels:
            for offer in [self._book.legs[leg] for leg in sorted(agent.ringing) if leg in self._book.legs]:
                commands += self._offers.cancel(offer, now, "ORIGINATOR_CANCEL")
        return commands + self._presence.on_control(event, now)

    def _hung_up(self, event: ChannelHungUp, now: float) -> list[Command]:
        return self._callers.on_hangup(event, now) + self._reconciler.on_unwatched_hangup(event, now)

    def _on_tick(self, now: float) -> list[Command]:
        """Timers: wrap-ups over, the ring watchdog, then per call the connection bounds, maximum wait and
        escalation."""
        commands = self._presence.wrapups_due(now)
        commands += self._offers.rings_overdue(now)
        for call in list(self._book.calls.values()):
            commands += self._offers.check_connecting(call, now)
            if call.uuid in self._book.calls:
                commands += self._callers.check_max_wait(call, now)
            if call.uuid in self._book.calls:
                commands += self._callers.escalate(call, now)
        return commands

    def _take_rules(self, rules: Rules, now: float) -> list[Command]:
        self._book.take_queues(rules)
        return self._presence.take_agents(rules, now)
