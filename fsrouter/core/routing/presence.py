"""Agent presence: every state change of an agent (``lifecycle.AGENT_TRANSITIONS``), the operator's and the phone's
actions (login, logout, break, ready), SIP registration, wrap-up, and the agents a rules load declares or removes.

Registration is not a state, and it is per node: FreeSWITCH rings ``user/1000`` only on the node where that phone
is registered, so an agent is offered a caller only where its phone may be reached (``Agent.registered_on``: its
endpoint does not depend on registration, such as ``sofia/gateway/...`` or ``loopback/...``; or the phone is
registered on the caller's node; or nothing was heard of it there and it is registered nowhere else). What is
heard per node: sofia::register (a registration or its refresh), sofia::unregister and sofia::expire (captured as
``registration``), and an originate there that failed USER_NOT_REGISTERED; one node's news never changes
another's. An agent goes back to work on a node when its phone registers there again.

An operator's action does what ``lifecycle.OPERATOR_ACTIONS`` says in the agent's state (applied now, pending
until the ring or the call ends, or refused) and ends with one ``ActionOutcome``; a break or logout asked while the
agent rings or talks is kept and applied once it is free.
"""

from __future__ import annotations

from fsrouter.core.commands import ActionOutcome, AgentStateRecord, Command, RecordWrapUp, WrapUpRecord
from fsrouter.core.events import AgentAction, AgentControl, AgentRegistration, NodeUp
from fsrouter.core.lifecycle import (
    AGENT_TRANSITIONS,
    OPERATOR_ACTIONS,
    ActionResult,
    ActionRule,
    AgentState,
    AgentTrigger,
    advance,
)
from fsrouter.core.model import Agent, Call
from fsrouter.core.routing.book import Book
from fsrouter.core.routing.records import Records
from fsrouter.core.rules import Rules

#: reason of the ``logged_out`` record of an agent a reload removed: not a presence the operator chose
REMOVED_FROM_RULES = "removed from rules"


class Presence:
    """Changes agents' states in the ``book``, each change recorded."""

    def __init__(self, book: Book, records: Records) -> None:
        self._book = book
        self._records = records

    def change(self, agent: Agent, trigger: AgentTrigger, now: float, reason: str) -> list[Command]:
        """Move ``agent`` by ``trigger`` (raises InvalidTransition if the table has no such edge) and record it;
        a pending break or logout is applied as soon as the agent is free (one it is already in is dropped)."""
        state = advance(AGENT_TRANSITIONS, agent.state, trigger)
        commands: list[Command] = []
        if agent.state is AgentState.WRAP_UP and state is not AgentState.WRAP_UP:
            commands += _wrapup_over(agent, now)
        agent.enter(state, now)
        self._book.update_routable(agent)
        commands.append(self._records.agent(agent.id, agent.state, now, reason))
        pending = agent.pending_action
        if pending is not None and agent.state in (AgentState.AVAILABLE, AgentState.WRAP_UP, AgentState.BREAK):
            agent.pending_action = None
            if (agent.state, pending) in AGENT_TRANSITIONS:
                commands += self.change(agent, pending, now, f"{pending} after the call")
        return commands

    def call_over(
        self, agent: Agent, call: Call, now: float, *, connected: bool, reason: str = "caller left before bridge"
    ) -> list[Command]:
        """Free ``agent`` from ``call``: to wrap-up after a conversation (the agent's or the queue's ``wrapup``
        seconds), else available at once, saying ``reason``."""
        agent.call_uuid = None
        if not connected:
            agent.idle_since = now
            return self.change(agent, AgentTrigger.CALL_NOT_CONNECTED, now, reason)
        wrapup = agent.config.wrapup
        if wrapup is None:
            wrapup = self._book.queue(call.queue).wrapup
        agent.wrapup_until = now + wrapup
        agent.idle_since = now + wrapup
        agent.wrapup_call = (call.uuid, call.queue)
        commands = self.change(agent, AgentTrigger.CALL_ENDED, now, "call ended")
        if wrapup <= 0 and agent.state is AgentState.WRAP_UP:
            commands += self.change(agent, AgentTrigger.WRAPUP_DONE, now, "no wrap-up")
        return commands

    def reattach(self, call: Call, now: float) -> list[Command]:
        """A restarted fsrouter found ``call``'s agent talking on it: the agent is on call with it, whatever
        presence it came back in. An agent no longer declared, or ringing for another call, is left as it is."""
        agent = self._book.agents.get(call.agent_id or "")
        if agent is None or (agent.state, AgentTrigger.REATTACHED) not in AGENT_TRANSITIONS:
            return []
        agent.call_uuid = call.uuid
        return self.change(agent, AgentTrigger.REATTACHED, now, f"talking on {call.uuid} at restart")

    def wrapups_due(self, now: float) -> list[Command]:
        """Agents whose wrap-up time is over are available again."""
        commands: list[Command] = []
        for agent in self._book.agents.values():
            if agent.state is AgentState.WRAP_UP and agent.wrapup_until <= now:
                commands += self.change(agent, AgentTrigger.WRAPUP_DONE, now, "wrap-up over")
        return commands

    def on_registration(self, event: AgentRegistration) -> list[Command]:
        """A phone registered on ``event.node`` or is no longer registered there (module docstring)."""
        agent_id = self._book.by_sip_user.get(event.user.split("@", 1)[0])
        if agent_id is not None:
            self.note_registration(self._book.agents[agent_id], event.node, registered=event.registered)
        return []

    def on_registrations_listed(self, event: NodeUp) -> list[Command]:
        """A node's registrations listing (``NodeUp.registered_users``): the agents of registration-bound endpoints
        listed are registered on that node, and those not listed are not, unless a register event already told
        about that node (the listing may lag behind it). No listing: nothing is learnt."""
        if event.registered_users is None:
            return []
        for agent in self._book.agents.values():
            if not agent.config.needs_registration:
                continue
            if agent.config.sip_user in event.registered_users:
                self.note_registration(agent, event.node, registered=True)
            elif event.node not in agent.registrations:
                self.note_registration(agent, event.node, registered=False)
        return []

    def note_registration(self, agent: Agent, node: str, *, registered: bool) -> None:
        """Remember whether ``agent``'s phone is registered on ``node``, and whether it may now be rung on some
        node the router knows (``Agent.registered``)."""
        agent.registrations[node] = registered
        nodes = agent.registrations.keys() | self._book.nodes_connected.keys()
        agent.registered = any(agent.registered_on(known) for known in nodes)
        self._book.update_routable(agent)

    def on_control(self, event: AgentControl, now: float) -> list[Command]:
        """An operator's or phone's action, done as ``lifecycle.OPERATOR_ACTIONS`` says for the agent's state; the
        last command is its ``ActionOutcome``. One that moves no state (pending, refused, repeated) is recorded in
        the agent's state history too, with the outcome as its reason."""
        agent = self._book.agents.get(event.agent_id)
        if agent is None:
            return [_outcome(event, ActionRule(ActionResult.REFUSED, "unknown agent"), "")]
        trigger = AgentTrigger(event.action.value)
        rule = OPERATOR_ACTIONS[(agent.state, trigger)]
        commands: list[Command] = []
        if rule.result is ActionResult.PENDING:
            agent.pending_action = trigger
        elif rule.result is ActionResult.APPLIED:
            back_to_work = trigger in (AgentTrigger.LOGIN, AgentTrigger.READY)
            moves = (agent.state, trigger) in AGENT_TRANSITIONS
            if back_to_work:
                rule = _cancel_pending(agent, rule)
            if back_to_work and (moves or trigger is AgentTrigger.READY):  # a retry delay ends, and its count
                agent.ready_at = now
                agent.no_answer_count = 0
            if back_to_work and moves:
                agent.idle_since = now
            if moves:
                commands = self.change(agent, trigger, now, f"{event.action} from {event.source}")
        outcome = _outcome(event, rule, agent.state.value)
        if not commands:
            reason = f"{event.action} from {event.source}: {outcome.describe()}"
            commands.append(self._records.agent(agent.id, agent.state, now, reason))
        return [*commands, outcome]

    def restore(self, last_states: tuple[AgentStateRecord, ...], now: float) -> list[Command]:
        """Agents come back in the presence they last had, not the rules file's starting one.

        Otherwise a restart would offer calls to an agent on break or logged out, and drop one who logged in.
        Each change is an action from ``restart``, recorded like an operator's; an agent already in its last
        presence gets no action and no new record. Every logged-in state counts as logged in: registration is a
        flag, not a state. Agents gone from the rules are skipped; agents whose last record is their removal by
        a reload (added back while fsrouter was down) keep the file's presence."""
        commands: list[Command] = []
        for last in last_states:
            agent = self._book.agents.get(last.agent)
            if agent is None or last.reason == REMOVED_FROM_RULES:
                continue
            was_logged_out = last.state == AgentState.LOGGED_OUT.value
            actions: list[AgentAction] = []
            if was_logged_out != (agent.state is AgentState.LOGGED_OUT):
                actions.append(AgentAction.LOGOUT if was_logged_out else AgentAction.LOGIN)
            if last.state == AgentState.BREAK.value:
                actions.append(AgentAction.BREAK)
            for action in actions:
                commands += self.on_control(AgentControl(agent_id=last.agent, action=action, source="restart"), now)
        return commands

    def take_agents(self, rules: Rules, now: float) -> list[Command]:
        """Adopt the agents ``rules`` declare: new ones start in their declared presence, known ones keep their
        state with the new configuration, removed ones are logged out once idle (their current call is not
        touched)."""
        book = self._book
        commands: list[Command] = []
        declared = {config.id: config for config in rules.agents}
        for position, (agent_id, config) in enumerate(declared.items()):
            agent = book.agents.get(agent_id)
            if agent is None:
                state = AgentState.LOGGED_OUT if config.status == "logged-out" else AgentState.AVAILABLE
                agent = book.agents[agent_id] = Agent(config=config, state=state, since=now, idle_since=now)
                commands.append(self._records.agent(agent_id, state, now, "declared"))
            else:
                agent.config = config
            agent.position = position
        for agent_id, agent in list(book.agents.items()):
            if agent_id not in declared and agent.call_uuid is None:
                del book.agents[agent_id]
                commands.append(self._records.agent(agent_id, AgentState.LOGGED_OUT, now, REMOVED_FROM_RULES))
        book.index_members(declared)
        return commands


def _cancel_pending(agent: Agent, rule: ActionRule) -> ActionRule:
    """A login or ready cancels the break or logout the agent still had pending; the reply says so."""
    if agent.pending_action is None:
        return rule
    cancelled, agent.pending_action = agent.pending_action, None
    reason = f"{rule.reason}; pending {cancelled} cancelled" if rule.reason else f"pending {cancelled} cancelled"
    return ActionRule(rule.result, reason)


def _outcome(event: AgentControl, rule: ActionRule, state: str) -> ActionOutcome:
    return ActionOutcome(
        agent=event.agent_id, action=event.action.value, source=event.source, result=rule.result, reason=rule.reason,
        state=state,
    )


def _wrapup_over(agent: Agent, now: float) -> list[Command]:
    """The wrap-up time of the call the agent leaves wrap-up for (however it ends: over, ready, break...)."""
    if agent.wrapup_call is None:
        return []
    (call_uuid, queue), agent.wrapup_call = agent.wrapup_call, None
    seconds = now - agent.since
    if seconds <= 0:
        return []
    return [
        RecordWrapUp(
            record=WrapUpRecord(call_uuid=call_uuid, agent=agent.id, queue=queue, ended_at=now, seconds=seconds)
        )
    ]
