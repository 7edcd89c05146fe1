"""How use cases tell what they do, without printing: the CLI passes its renderer (one line
per message on stderr), a fleet each app's row. Nothing here imports rich or Pulumi."""

from __future__ import annotations

from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any, Protocol


class FleetReporter(Protocol):
    """An app's row in a fleet (ops.fleet.Run): what it is doing now, and its log lines."""

    def note(self, text: str) -> None:
        """A line of the app's log, and its current step."""

    def quiet_step(self, text: str) -> None:
        """What runs now, not worth a line of its own."""


# Inside a fleet, the app's run whose operation this thread does: the renderer sends its
# messages and progress there (one line per app) instead of to the terminal.
REPORTER: ContextVar[FleetReporter | None] = ContextVar("stx_pulumi_reporter", default=None)


class Reporter(Protocol):
    """Messages of a use case as it goes."""

    def info(self, message: str) -> None:
        """A step or context line."""

    def warning(self, message: str) -> None:
        """Something the user should know; the work goes on."""


class Watch(AbstractContextManager[Any], Protocol):
    """The engine's live progress, shown while a use case holds it (`with watch:`)."""

    def clear(self) -> None:
        """Forget the rows shown so far: the next operation has its own."""
