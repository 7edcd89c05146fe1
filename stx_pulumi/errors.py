"""Errors a user can act on, each with the exit code the CLI returns for it.

    StxError                 base; exit 1
    ├── EngineError          the Pulumi engine reported a failure (1)
    ├── GoogleError          a Google API refused a call or gave no answer; its HTTP status (1)
    ├── InputError           bad input or a refusal that needs an explicit flag (2)
    │   └── SpecError        the deployment spec is invalid; holds every problem found
    ├── PrerequisiteError    a tool or credential is missing (3)
    ├── StackLockedError     another update holds the stack's lock (4)
    └── VerificationError    the deployed service failed its post-deploy checks (5)

Nothing below the CLI prints: code raises these, the CLI renders them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

# Every exit code stx-pulumi returns and what it means: docs/reference/exit-codes.md is made
# from this mapping (docs/gen.py) and each class below names its code from it.
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "the Pulumi engine reported a failure (the failing resource and message are shown), "
       "or the command was interrupted (Ctrl-C, SIGTERM: the engine is stopped too)",
    2: "bad input or a refusal that needs an explicit flag (`--yes`, `--unprotect`): an "
       "option, config key or file named with what is allowed; nothing was changed",
    3: "a prerequisite is missing: Pulumi CLI (or one older than 3.211), Docker daemon when an "
       "image is built, credentials, project, APIs, backend, passphrase (`doctor` lists them)",
    4: "the stack is locked by another update (who holds it is shown; `cancel` removes a "
       "stale lock)",
    5: "post-deploy verification failed (what failed and the logs command are shown)",
}


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


class GoogleError(StxError):
    """A Google API refused a call (`status`: its HTTP status) or did not answer (None)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, status: int | None = None
                 ) -> None:
        super().__init__(message, hint)
        self.status = status


class InputError(StxError):
    """Bad input, or a refusal that needs an explicit flag."""

    exit_code = 2


class SpecError(InputError):
    """The deployment spec is invalid."""

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        super().__init__("; ".join(problems), hint=hint)
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


WHOLE_RE = re.compile(r"-?[0-9]{1,12}(?:\.0+)?")  # ASCII digits only: never '²' or '١'


def whole_number(value: object) -> int | None:
    """`value` as a whole number when it is one written in ASCII digits (a YAML int or float
    counts); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 1e12 else None
    text = str(value).strip()
    return int(float(text)) if WHOLE_RE.fullmatch(text) else None


def shown(value: object, limit: int = 80) -> str:
    """A value as messages show it: its repr, cut to `limit` characters (a 10 MB value is
    never printed back whole)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"



def pause(seconds: float, stop: threading.Event | None = None) -> None:
    """Wait `seconds`. A set `stop` (the fleet this work runs in was interrupted) ends the wait
    with KeyboardInterrupt at once, as Ctrl-C ends it in a single command."""
    if stop is None:
        import time

        time.sleep(seconds)
    elif stop.wait(seconds):
        raise KeyboardInterrupt
