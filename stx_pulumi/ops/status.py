"""The status board: one row per app and env from what the engine read (`StackInfo`), the stack
config (event windows) and the clock, plus a live health check per URL. No Pulumi here."""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from stx_pulumi.model import events
from stx_pulumi.model.outputs import urls
from stx_pulumi.model.serving import Scaling, decide, next_window

HEALTH_PATH = "/_stcore/health"
CHECK_TIMEOUT = 5.0  # seconds a URL's health check may take


def row(info: Any, config: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A stack's line: where it answers, the scaling in force now (an active window's, else
    the deployed one), its image, last update and next event window."""
    out = info.outputs
    windows = events.stored_windows(config.get("stx:events") or {}, [])
    base = Scaling(int(out.get("min_instances") or 0), int(out.get("max_instances") or 0))
    concurrency = int(config.get("stx:concurrency") or 80)
    scaling = decide(base, concurrency, windows, now).scaling
    upcoming = next_window(windows, now)
    books = out.get("books") or {}
    return {
        "stack": info.stack, "app": info.app, "env": info.env,
        "urls": urls(out),
        "custom_urls": [v["custom_url"] for v in [out, *books.values()] if v.get("custom_url")],
        "custom": {b: v.get("custom_url") for b, v in books.items() if v.get("custom_url")} or (
            {"": out["custom_url"]} if out.get("custom_url") else {}),
        "deployed": bool(out.get("image") or books),  # a destroyed stack keeps no outputs
        "min_instances": scaling.min_instances if not books else None,
        "max_instances": scaling.max_instances if not books else None,
        "scaling": scaling.source,
        "image_tag": out.get("image_tag"),
        "pinned_release": out.get("pinned_release"),
        "last_update": info.last_update, "result": info.result, "message": info.message,
        "next_event": upcoming.describe() if upcoming else None,
        "resources": info.resource_count or 0,
        "health": None,
        "error": getattr(info, "error", None),
        "project": out.get("project"),
        "watched": bool(out.get("alerts")),  # alert policies deployed
        "alerts": None,  # the open ones, when read (`firing`)
    }


class HealthChecks:
    """Each URL's health path, started as soon as its stack has been read (while the others
    still are), all done within `timeout_s` of the first; a row's `health` says "ok", the
    HTTP status, or what failed (per book for books)."""

    def __init__(self, timeout_s: float = CHECK_TIMEOUT) -> None:
        self.timeout_s = timeout_s
        self.deadline: float | None = None
        self.pool = ThreadPoolExecutor(max_workers=16)
        self.probes: dict[tuple[str, str], Any] = {}

    def start(self, stack: str, outputs: Mapping[str, Any]) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + self.timeout_s
        for name, url in urls(outputs).items():
            if url and url != "[secret]":
                self.probes[(stack, name)] = self.pool.submit(self._probe, str(url))

    def fill(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            for name in r["urls"]:
                if (r["stack"], name) in self.probes:
                    result = self.probes[(r["stack"], name)].result()
                    r["health"] = result if not name else {**(r["health"] or {}), name: result}
        self.pool.shutdown()

    def _probe(self, url: str) -> str:
        import httpx

        left = max(0.5, (self.deadline or 0) - time.monotonic())
        try:
            response = httpx.get(url.rstrip("/") + HEALTH_PATH, timeout=left)
        except httpx.HTTPError as err:
            return type(err).__name__
        return "ok" if response.status_code == 200 else f"HTTP {response.status_code}"




def firing(rows: list[dict[str, Any]], environ: Mapping[str, str]) -> None:
    """Each watched row's alerts open now (its policies carry its stx-app and stx-env labels),
    one Monitoring call per project; `alerts` stays None where they cannot be read."""
    from stx_pulumi.cloud.google import connect
    from stx_pulumi.errors import GoogleError

    watched = [r for r in rows if r.get("watched") and r.get("project")]
    if not watched:
        return
    try:
        client = connect(environ)
    except GoogleError:
        return
    try:
        for project in sorted({r["project"] for r in watched}):
            try:
                open_now = client.open_alerts(project)
            except GoogleError:
                continue
            for r in (r for r in watched if r["project"] == project):
                r["alerts"] = sorted(str((a.get("policy") or {}).get("displayName")) for a in
                                     open_now if ((a.get("policy") or {}).get("userLabels") or {})
                                     .items() >= {"stx-app": r["app"], "stx-env": r["env"]}.items())
    finally:
        client.close()
