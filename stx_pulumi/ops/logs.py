"""The `logs` use case: a stack's services' log lines from Cloud Logging, once or as they come.
No gcloud: the one Google client reads them."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from stx_pulumi.errors import GoogleError, InputError, PrerequisiteError, shown

if TYPE_CHECKING:
    from stx_pulumi.cloud.google import Google

LOGS_DAYS = 30  # the _Default log bucket's retention (Cloud Logging docs, "Routing and storage")
FOLLOW_S = 5  # between two reads under --follow


def since(text: str) -> timedelta:
    """`--since` read: 30m, 1h, 2d; at most what Cloud Logging keeps by default."""
    match = re.fullmatch(r"([0-9]{1,6})\s*([mhd])", text.strip())
    if not match or int(match.group(1)) == 0:
        raise InputError(f"--since: {shown(text)} is not a duration such as 30m, 1h or 2d")
    unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    delta = timedelta(**{unit: int(match.group(1))})
    if delta > timedelta(days=LOGS_DAYS):
        raise InputError(f"--since: at most {LOGS_DAYS}d (Cloud Logging keeps a service's "
                         f"logs {LOGS_DAYS} days by default), got {text.strip()}")
    return delta


def services(stack: str, outputs: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The project and the services a deployed stack's outputs name (every book's)."""
    books = outputs.get("books") or {}
    names = [str(v.get("service") or "") for v in books.values()] or [
        str(outputs.get("service") or "")]
    if not outputs.get("project") or not all(names):
        raise InputError(f"{stack} is not deployed: no service to read logs of")
    return str(outputs["project"]), names


def read(client: Google, project: str, names: list[str], start: datetime,
         follow: bool = False) -> Iterator[list[dict[str, Any]]]:
    """Batches of new entries since `start`: one, or (following) one every FOLLOW_S seconds
    until the caller stops."""
    cursor = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    seen: set[str] = set()
    while True:
        try:
            entries = client.log_entries(project, names, cursor)
        except GoogleError as err:
            raise PrerequisiteError(f"Cloud Logging: {err}", hint="enable the Cloud Logging "
                                    "API; you need roles/logging.viewer") from None
        fresh = [e for e in entries if e.get("insertId") not in seen]
        seen.update(str(e.get("insertId")) for e in fresh)
        yield fresh
        if not follow:
            return
        cursor = max([cursor, *(str(e.get("timestamp")) for e in fresh)])
        time.sleep(FOLLOW_S)
