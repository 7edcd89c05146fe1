"""What serves a service now: the one place the rules live (pure; used by the program, `plan`,
`cost`, `history` and `event list`).

Precedence: a rollback pin (which image, which revision) > the active event window (scaling) >
the base settings. An `up` inside a window deploys the window's scaling and one outside it the
base, so an `up` and the scheduler's jobs never undo each other; an `up` while pinned keeps the
pinned image and revision, so a scale-only `up` never moves traffic back to a broken release.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from stx_pulumi.model.events import Window
from stx_pulumi.model.releases import Pin


@dataclass(frozen=True)
class Scaling:
    """Instances in force and why: "base", or "event NAME"."""

    min_instances: int
    max_instances: int
    source: str = "base"


@dataclass(frozen=True)
class Serving:
    """What a service serves: its scaling; the pinned image (None: the image just built) and
    the pinned revision taking all traffic (None: the newest)."""

    scaling: Scaling
    digest: str | None = None
    revision: str | None = None


def decide(base: Scaling, concurrency: int, windows: Iterable[Window], now: datetime,
           book: str | None = None, pin: Pin | None = None,
           service: str | None = None) -> Serving:
    """What the service `service` (of `book`; None: the app's) serves at `now`."""
    scaling = base
    for window in windows:
        if window.covers(book) and window.active(now):
            low, high = window.scaling(concurrency, base.max_instances)
            scaling = Scaling(low, high, f"event {window.name}")
            break
    if pin is None:
        return Serving(scaling)
    return Serving(scaling, pin.digest, pin.revisions.get(service or ""))


def next_window(windows: Iterable[Window], now: datetime, book: str | None = None
                ) -> Window | None:
    """The next window to start (or the one in progress) for this service."""
    ahead = [w for w in windows if w.covers(book) and not w.expired(now)]
    return min(ahead, key=lambda w: w.warm_at, default=None)
