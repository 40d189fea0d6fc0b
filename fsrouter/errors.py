"""One small typed error hierarchy.

Local faults (our configuration, our bug) are kept apart from remote ones (FreeSWITCH misbehaved or went
away). Library exceptions are translated into these at the adapter boundary and never leak past it.
"""

from __future__ import annotations


class FsrouterError(Exception):
    """Base of every error fsrouter raises on purpose."""


class ConfigError(FsrouterError):
    """A settings or rules problem; carries the file and line when known."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        return f"{self.path}:{self.line or 1}: error: {self.message}"


class RuleError(ConfigError):
    """A routing-rules file that does not validate."""

    def __init__(self, problems: list[ConfigError]) -> None:
        first = problems[0]
        super().__init__(first.message, path=first.path, line=first.line)
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class InvalidTransition(FsrouterError):
    """A lifecycle transition the table does not allow; the state is left unchanged."""


class EslError(FsrouterError):
    """Something went wrong talking to FreeSWITCH (remote fault)."""


class EslNotConnected(EslError):
    """The node is not connected (or the connection dropped while a command was pending)."""


class EslTimeout(EslError):
    """FreeSWITCH did not reply to a command in time."""


class EslAuthError(EslError):
    """FreeSWITCH refused the password."""


class UnsafeCommand(EslError):
    """A command holding text FreeSWITCH would misread (a line break, a space inside one argument, a variable
    block; ``core/esl_safety.py``): refused by the ESL adapter, never written. A local fault (our rules or our
    bug) reported like a refused command, so the router treats it as one."""


class CallGone(EslError):
    """The channel no longer exists in FreeSWITCH; ``uuid`` is that channel, when the reply tells which."""

    def __init__(self, message: str, *, uuid: str | None = None) -> None:
        super().__init__(message)
        self.uuid = uuid


class UnknownCommand(FsrouterError):
    """The control socket received a command the daemon does not know."""


class CoreNotAnswering(FsrouterError):
    """The core loop did not answer a control request in time: what was asked may still be done later."""


class ActionRefused(FsrouterError):
    """The core refused an operator's action in the agent's state (``lifecycle.OPERATOR_ACTIONS``)."""


class ReloadNotApplied(FsrouterError):
    """Valid rules were read but the core loop did not take them in time: the old rules may still be in force."""


class StoreError(FsrouterError):
    """The call store could not read or write; as such (not ``StoreUnavailable``), it refused what it was asked
    (a record missing a field, say), and asking again would fail again."""


class StoreUnavailable(StoreError):
    """The call store cannot be used for now (locked by another process, disk full, file unreadable or gone):
    the same request may succeed later."""


class CoreLoopDied(FsrouterError):
    """The greenlet that routes every call ended while the daemon was running: the daemon stops (exit status 1)."""


class InstanceLocked(FsrouterError):
    """Another fsrouter process holds the store (``adapters/instance_lock.py``): this one must not route on it.

    ``pid`` is the holder's process id, None when it could not be read (it is written just after the lock is
    taken)."""

    def __init__(self, store: str, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"the store {store} is in use by another fsrouter process ({holder}); not starting")
        self.store = store
        self.pid = pid


class ControlError(FsrouterError):
    """The control socket could not be reached or refused the request."""


class BadRequest(ControlError):
    """A control request the daemon cannot act on: not a JSON object, nested too deeply, or without an argument
    its command needs. Answered as an error; the connection stays usable."""
