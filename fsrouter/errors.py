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
    """The channel no longer exists in FreeSWITCH."""


class UnknownAgent(FsrouterError):
    """An operator named an agent the rules in force do not declare."""


class UnknownCommand(FsrouterError):
    """The control socket received a command the daemon does not know."""


class ReloadNotApplied(FsrouterError):
    """Valid rules were read but the core loop did not take them in time: the old rules may still be in force."""


class StoreError(FsrouterError):
    """The call store could not read or write."""


class ControlError(FsrouterError):
    """The control socket could not be reached or refused the request."""
