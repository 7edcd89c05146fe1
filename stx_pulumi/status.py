"""The status board: one row per app and env from what the engine read (`StackInfo`), the stack
config (event windows) and the clock, plus a live health check per URL. No Pulumi here."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from stx_pulumi import events
from stx_pulumi.serving import Scaling, decide, next_window

HEALTH_PATH = "/_stcore/health"


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
        "urls": {b: v.get("url") for b, v in books.items()} or (
            {"": out["url"]} if out.get("url") else {}),
        "custom_urls": [v["custom_url"] for v in [out, *books.values()] if v.get("custom_url")],
        "min_instances": scaling.min_instances if not books else None,
        "max_instances": scaling.max_instances if not books else None,
        "scaling": scaling.source,
        "image_tag": out.get("image_tag"),
        "pinned_release": out.get("pinned_release"),
        "last_update": info.last_update, "result": info.result, "message": info.message,
        "next_event": upcoming.describe() if upcoming else None,
        "resources": info.resource_count or 0,
        "health": None,
    }


def check_health(rows: list[dict[str, Any]], timeout_s: float = 5.0) -> None:
    """Each URL's health path, all at once with a short timeout; the row's `health` says
    "ok", the HTTP status, or what failed."""
    import httpx

    targets = [(r, name, url) for r in rows for name, url in r["urls"].items() if url]

    def probe(url: str) -> str:
        try:
            response = httpx.get(url.rstrip("/") + HEALTH_PATH, timeout=timeout_s)
        except httpx.HTTPError as err:
            return type(err).__name__
        return "ok" if response.status_code == 200 else f"HTTP {response.status_code}"

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda t: probe(t[2]), targets))
    for (r, name, _), result in zip(targets, results, strict=True):
        r["health"] = result if not name else {**(r["health"] or {}), name: result}
