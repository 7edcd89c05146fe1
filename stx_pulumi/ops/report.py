"""How use cases tell what they do, without printing: the CLI passes its renderer (one line
per message on stderr), a fleet each app's row. Nothing here imports rich or Pulumi."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol


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


class Silent:
    """A reporter that keeps nothing (tests, and work whose messages nobody reads)."""

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass
