"""A check's outcome, shared by `doctor` and post-deploy verification."""

from __future__ import annotations

from dataclasses import dataclass

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"


@dataclass(frozen=True)
class Check:
    """One check: what was looked at, what was found, and the fix when it did not pass."""

    name: str
    status: str
    detail: str
    fix: str | None = None
