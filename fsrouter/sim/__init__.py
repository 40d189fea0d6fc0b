"""Built-in FreeSWITCH 1.10 simulator: an inbound event-socket server plus a call model.

Example::

    sim = Simulator(password="ClueCon", heartbeat=20.0, seed=1)
    sim.start(port=0)
    sim.add_agent("1000", behaviour="answer", answer_after=0.2)
    uuid = sim.place_call(caller_number="2000", destination="5003", variables={"fsrouter_queue": "support"})
    sim.wait_until(lambda: sim.calls[uuid].state == "ended", timeout=10.0)
    sim.stop()
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable

import gevent

from fsrouter.sim.api import run_api
from fsrouter.sim.encoding import DISCONNECT_SHUTDOWN
from fsrouter.sim.events import Boot, SimEvent
from fsrouter.sim.model import AGENT_BEHAVIOURS, Agent, AgentLegRecord, CallerRecord, CallModel
from fsrouter.sim.server import EslConnection, EslListener

__all__ = ["AgentLegRecord", "CallerRecord", "Simulator"]

AGENT_BEHAVIOUR_NAMES = frozenset(AGENT_BEHAVIOURS) | {"unregistered"}


class Simulator:
    def __init__(
        self,
        password: str = "ClueCon",
        hostname: str = "sim",
        heartbeat: float = 20.0,
        seed: int | None = None,
        chunking: bool = False,
        api_delay: float = 0.0,
        observer: Callable[[str, object], None] | None = None,
        job_delay: float = 0.02,
    ) -> None:
        """``api_delay`` (seconds) is how long each connection takes over every command before it replies: a
        loaded FreeSWITCH, whose event-socket thread per connection handles one command at a time and sends that
        connection's events in between, so events and later commands wait behind a slow command. ``api`` runs
        its command inside that thread (its events wait until the reply); ``bgapi`` replies after the delay and
        runs its job apart. Setting ``sim.api_delay`` later applies to the next command of every connection.

        ``job_delay`` (seconds, also settable later as ``sim.job_delay``) is the time from an agent leg's
        CHANNEL_ANSWER to its originate's result (20 ms in tests/fixtures/esl-caller/plain/bridge_race_*.raw,
        much more under load). In between the leg is answered but not parked, and a ``uuid_bridge`` of it makes
        the job report ``-ERR ORIGINATOR_CANCEL`` while the legs bridge (bridge_race_err). 0 reports at once.

        ``observer``, if given, sees the wire as it happens: ``("event", SimEvent)`` for every event
        published, ``("api", line)`` / ``("bgapi", line)`` for every command received (for latency probes)."""
        self.password = password
        self._observer = observer
        self.hostname = hostname
        self.heartbeat = heartbeat
        self.chunking = chunking
        self.api_delay = api_delay
        self._rng = random.Random(seed)
        self.model = CallModel(self._publish, Boot(hostname), seed, job_delay)
        self._listener = EslListener(self._new_connection)
        self.host = "127.0.0.1"
        self.port = 0
        self._background: list[gevent.Greenlet] = []
        self.down = False
        self._events_lost = False
        #: (event name, channel uuid or None for any channel) of the events still to lose, oldest first
        self._to_lose: list[tuple[str, str | None]] = []

    # ---------------------------------------------------------------- server
    def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start listening (non-blocking); `self.port` is the bound port afterwards."""
        self.host = host
        self.port = self._listener.start(host, port)
        self._background.append(gevent.spawn(self._heartbeats))

    def stop(self) -> None:
        self._listener.stop_listening()
        self.drop_connections()
        self.model.timers.kill(block=False)
        gevent.killall(self._background, block=False)
        self._background.clear()

    def _new_connection(self, sock: socket.socket) -> EslConnection:
        return EslConnection(
            sock,
            self.password,
            self._run_api,
            self._start_bgapi,
            self._rng,
            self.chunking,
            lambda: self.api_delay,
        )

    def _run_api(self, command_line: str) -> str:
        if self._observer is not None:
            self._observer("api", command_line)
        return run_api(self.model, command_line)

    def _publish(self, event: SimEvent) -> None:
        if self._events_lost or self._lost_on_the_way(event):
            return
        if self._observer is not None:
            self._observer("event", event)
        for connection in list(self._listener.connections):
            connection.deliver(event)

    def _start_bgapi(self, command_line: str, job_uuid: str) -> None:
        if self._observer is not None:
            self._observer("bgapi", command_line)
        command, _, argument = command_line.partition(" ")

        def job() -> None:
            result = run_api(self.model, command_line)
            self._publish(self.model.boot.background_job(job_uuid, command, argument, result))

        if command == "originate":
            # the BACKGROUND_JOB must sit at its exact place inside the originate's event sequence
            def report(result: str) -> None:
                self._publish(self.model.boot.background_job(job_uuid, command, argument, result))

            self.model.timers.spawn(self.model.originate, argument.split(" ")[0], report)
        else:
            self.model.timers.spawn(job)

    def _heartbeats(self) -> None:
        while True:
            gevent.sleep(self.heartbeat)
            if not self.down:
                self._publish(self.model.boot.heartbeat(len(self.model.channels), self.model.sessions_since_startup))

    # -------------------------------------------------------------- faults
    def drop_connections(self) -> None:
        """Close every ESL socket without a notice; calls continue."""
        for connection in list(self._listener.connections):
            connection.abort()

    def shutdown_notice(self) -> None:
        """Send `The system is being shut down.` to every listener and close them."""
        for connection in list(self._listener.connections):
            connection.close(DISCONNECT_SHUTDOWN)

    def hangup_unheard(self, uuid: str, cause: str = "NORMAL_CLEARING") -> None:
        """The far end of parked ``uuid`` hangs up and none of its events reach any ESL client (lost on the way):
        only asking FreeSWITCH (``show channels``, ``uuid_exists``) tells that it is gone.

        A parked channel hangs up at once; a ringing or bridged one would go on publishing after this returns."""
        self._events_lost = True
        try:
            self.hangup(uuid, cause)
        finally:
            self._events_lost = False

    def lose_event(self, name: str, channel: str | None = None) -> None:
        """The next ``name`` event of ``channel`` (of any channel when None) reaches no ESL client, as when
        FreeSWITCH drops events for a listener that fell behind. FreeSWITCH itself goes on: its listings
        (``show channels``, ``show calls``) tell what happened."""
        self._to_lose.append((name, channel))

    def lose_bridges(self, count: int = 1, caller: str | None = None) -> None:
        """The next ``count`` ``uuid_bridge`` commands of ``caller`` (either uuid of the pair; any bridge when
        None) reply ``+OK <leg>`` as usual and then do nothing: no event, both legs stay as they were (caller
        parked, agent leg answered and parked). A later ``uuid_bridge`` of the same pair works. Seen on a loaded
        FreeSWITCH (originate job ``+OK``, bridge ``+OK``, never a CHANNEL_BRIDGE), never captured."""
        self.model.bridges_to_lose += [caller] * count

    def _lost_on_the_way(self, event: SimEvent) -> bool:
        for index, (name, channel) in enumerate(self._to_lose):
            if event.name == name and (channel is None or ("Unique-ID", channel) in event.headers):
                del self._to_lose[index]
                return True
        return False

    def restart(self, down_for: float = 0.5) -> None:
        """Crash and come back: calls vanish silently, new Core-UUID, Event-Sequence restarts."""
        self.down = True
        self._listener.stop_listening()
        self.drop_connections()
        self.model.vanish()
        self.model.boot = Boot(self.hostname)
        gevent.sleep(down_for)
        self.port = self._listener.start(self.host, self.port)
        self.down = False

    # --------------------------------------------------------------- calls
    def add_agent(
        self, user: str, behaviour: str = "answer", answer_after: float = 0.2, registered: bool = True
    ) -> None:
        self._check_behaviour(behaviour)
        self.model.agents[user] = Agent(user, behaviour, answer_after, registered)

    def set_agent(self, user: str, behaviour: str | None = None, answer_after: float | None = None) -> None:
        agent = self.model.agents[user]
        if behaviour is not None:
            self._check_behaviour(behaviour)
            agent.behaviour = behaviour
        if answer_after is not None:
            agent.answer_after = answer_after

    @staticmethod
    def _check_behaviour(behaviour: str) -> None:
        if behaviour not in AGENT_BEHAVIOUR_NAMES:
            raise ValueError(f"unknown agent behaviour {behaviour!r}; known: {sorted(AGENT_BEHAVIOUR_NAMES)}")

    def register(self, user: str, expires: int = 3600) -> None:
        """User ``user``'s phone registers (or refreshes its registration) on this node: ``sofia::register``."""
        self._registration(user, "sofia::register", registered=True, expires=expires)

    def unregister(self, user: str) -> None:
        """User ``user``'s phone un-registers (REGISTER with Expires 0): ``sofia::unregister``."""
        self._registration(user, "sofia::unregister", registered=False)

    def expire(self, user: str) -> None:
        """User ``user``'s registration lapsed (sofia's sweep, ~60 s after its expiry): ``sofia::expire``."""
        self._registration(user, "sofia::expire", registered=False)

    def _registration(self, user: str, subclass: str, *, registered: bool, expires: int = 3600) -> None:
        agent = self.model.agents[user]
        agent.registered = registered
        self._publish(self.model.registration_event(agent, subclass, expires))

    def place_call(
        self,
        caller_number: str = "2000",
        destination: str = "5003",
        variables: dict[str, str] | None = None,
        patience: float = 30.0,
        talk_time: float = 2.0,
        answer: bool = False,
        hold_time: float = 0.0,
    ) -> str:
        """An inbound caller whose dialplan sets `variables` then parks; returns the caller uuid.

        Once connected the call lasts ``talk_time`` seconds, ``hold_time`` of them on hold by the agent."""
        if variables is None:
            variables = {"fsrouter_queue": "support", "fsrouter_priority": "5"}
        return self.model.place_call(caller_number, destination, variables, patience, talk_time, answer, hold_time)

    def add_extension(self, number: str, *apps: tuple[str, str]) -> None:
        """Extension ``number`` of the simulated dialplan runs ``apps`` ((name, data), in order) when a channel is
        transferred to it, e.g. ``("set", "fsrouter_queue=sales"), ("pre_answer", ""), ("park", "")``."""
        self.model.extensions[number] = list(apps)

    def transfer(self, uuid: str, destination: str) -> None:
        """Channel ``uuid`` is transferred to extension ``destination`` (an agent's blind transfer of its caller,
        or the dialplan's exit of a waiting caller), as by ``uuid_transfer``."""
        channel = self.model.channels.get(uuid)
        if channel is not None:
            self.model.transfer(channel, destination)

    def hangup(self, uuid: str, cause: str = "NORMAL_CLEARING") -> None:
        """The far end of `uuid` hangs up (caller BYE/CANCEL or agent BYE)."""
        channel = self.model.channels.get(uuid)
        if channel is not None:
            self.model.hangup(channel, cause)

    @property
    def calls(self) -> dict[str, CallerRecord]:
        return self.model.calls

    @property
    def agent_legs(self) -> dict[str, AgentLegRecord]:
        return self.model.agent_legs

    @property
    def job_delay(self) -> float:
        """Seconds from an agent leg's CHANNEL_ANSWER to its originate's result (see ``__init__``)."""
        return self.model.job_delay

    @job_delay.setter
    def job_delay(self, seconds: float) -> None:
        self.model.job_delay = seconds

    @property
    def core_uuid(self) -> str:
        return self.model.boot.core_uuid

    @property
    def command_running(self) -> bool:
        """True while some connection is inside a command (its ``api_delay``, or an `api` command's run)."""
        return any(connection.command_running for connection in self._listener.connections)

    def live_channels(self) -> set[str]:
        return set(self.model.channels)

    @staticmethod
    def wait_until(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
        """Cooperatively wait (gevent) until `condition()` holds; False on timeout."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() >= deadline:
                return False
            gevent.sleep(interval)
        return True
