"""Errors a user can act on, each with the exit code the CLI returns for it.

    StxError                 base; exit 1
    ├── EngineError          the Pulumi engine reported a failure (1)
    ├── InputError           bad input or a refusal that needs an explicit flag (2)
    │   └── SpecError        the deployment spec is invalid; holds every problem found
    ├── PrerequisiteError    a tool or credential is missing (3)
    ├── StackLockedError     another update holds the stack's lock (4)
    └── VerificationError    the deployed service failed its post-deploy checks (5)

Nothing below the CLI prints: code raises these, the CLI renders them.
"""

from __future__ import annotations


class StxError(Exception):
    """Base of every error stx-pulumi reports to the user."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class EngineError(StxError):
    """The Pulumi engine reported a failure."""

    exit_code = 1


class InputError(StxError):
    """Bad input, or a refusal that needs an explicit flag."""

    exit_code = 2


class SpecError(InputError):
    """The deployment spec is invalid."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class PrerequisiteError(StxError):
    """A tool, credential or setting needed to go on is missing."""

    exit_code = 3


class StackLockedError(StxError):
    """Another update holds the stack's lock."""

    exit_code = 4


class VerificationError(StxError):
    """The deployed service failed its post-deploy checks."""

    exit_code = 5
