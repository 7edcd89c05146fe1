"""What serves a service now: the one place the rules live (pure; used by the program, `plan`,
`cost` and `event list`).

Precedence: a rollback pin (issue #12: not there yet, so always None) > the active event window
> the base settings. An `up` inside a window deploys the window's scaling and one outside it the
base, so an `up` and the scheduler's jobs never undo each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from stx_pulumi.events import Window


@dataclass(frozen=True)
class Scaling:
    """Instances in force and why: "base", or "event NAME"."""

    min_instances: int
    max_instances: int
    source: str = "base"


def decide(base: Scaling, concurrency: int, windows: Iterable[Window], now: datetime,
           book: str | None = None) -> Scaling:
    """The scaling in force at `now` for the service of `book` (None: the app's service)."""
    for window in windows:
        if window.covers(book) and window.active(now):
            low, high = window.scaling(concurrency, base.max_instances)
            return Scaling(low, high, f"event {window.name}")
    return base


def next_window(windows: Iterable[Window], now: datetime, book: str | None = None
                ) -> Window | None:
    """The next window to start (or the one in progress) for this service."""
    ahead = [w for w in windows if w.covers(book) and not w.expired(now)]
    return min(ahead, key=lambda w: w.warm_at, default=None)
