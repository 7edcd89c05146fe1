"""What an event costs on Cloud Run, and what the app costs at idle, for one AppSpec: per
service (the app's, or each book's, whose students are counted per book).

Gross figures (before the monthly free tier), request-based billing, USD.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta
from typing import Any

from stx_pulumi.model.events import Window
from stx_pulumi.model.names import MEMORY_RE
from stx_pulumi.model.prices import SOURCES, Prices
from stx_pulumi.model.spec import KEEP_IMAGES, AppSpec, ServiceSpec

REQUESTS_PER_USER_HOUR = 30  # page loads and assets; Streamlit then talks over one WebSocket
IMAGE_GB = 0.5  # a StreamTeX image (Python, Streamlit, Nginx) as stored
MONTH_S = 30 * 24 * 3600
SCENARIOS = (("2-hour lab", 2.0), ("8-hour day", 8.0), ("month: 20 days x 4 h", 80.0))
DEFAULT_USERS = 1000


def memory_gib(spec: ServiceSpec) -> float:
    match = MEMORY_RE.fullmatch(spec.memory)
    assert match is not None  # the spec validated it
    return int(match.group(1)) / (1 if match.group(2) == "Gi" else 1024)


def instances_needed(spec: ServiceSpec, users: int) -> int:
    """Instances that serve `users` concurrent sessions: max(min, ⌈users ÷ concurrency⌉)."""
    return max(spec.min_instances, math.ceil(users / spec.concurrency))


def warnings_for(spec: ServiceSpec, users: int) -> list[str]:
    needed = instances_needed(spec, users)
    if needed <= spec.max_instances:
        return []
    option = f"--max {spec.book}={needed}" if spec.book else f"--max {needed}"
    return [f"max {spec.max_instances} instances × concurrency {spec.concurrency} serve "
            f"{spec.max_instances * spec.concurrency} sessions: the service would turn students "
            f"away above that; use {option} for {users} users (the costs assume it)"]


def event_cost(spec: ServiceSpec, users: int, hours: float, prices: Prices) -> dict[str, Any]:
    """The cost of `users` students for `hours` hours, once max allows enough instances."""
    instances = instances_needed(spec, users)
    seconds = instances * hours * 3600
    vcpu = seconds * spec.cpu * prices.vcpu_second
    memory = seconds * memory_gib(spec) * prices.gib_second
    requests = users * hours * REQUESTS_PER_USER_HOUR
    requests_usd = requests / 1e6 * prices.million_requests
    return {
        "users": users, "hours": _whole(hours), "instances": instances,
        "total_usd": round(vcpu + memory + requests_usd, 2),
        "breakdown": {"vcpu_usd": round(vcpu, 4), "memory_usd": round(memory, 4),
                      "requests_usd": round(requests_usd, 4),
                      "instance_seconds": _whole(seconds), "requests": _whole(requests)},
        "warnings": warnings_for(spec, users),
    }


def idle_monthly(spec: AppSpec, prices: Prices) -> dict[str, Any]:
    """A month with no students: every service's min instances at the idle rate, plus the
    kept images (one registry, whatever the number of books)."""
    instances = sum(svc.min_instances * MONTH_S * (
        svc.cpu * prices.idle_vcpu_second + memory_gib(svc) * prices.idle_gib_second)
        for svc in spec.services)
    stored_gb = KEEP_IMAGES * IMAGE_GB
    storage = max(0.0, stored_gb - prices.free_registry_gb) * prices.registry_gb_month
    return {"total_usd": round(instances + storage, 2),
            "min_instances_usd": round(instances, 2), "storage_usd": round(storage, 2),
            "stored_gb": stored_gb}


def estimate(spec: AppSpec, prices: Prices, users: int | None = None,
             hours: float | None = None, overridden: list[str] | None = None) -> dict[str, Any]:
    """One event when users or hours are given, else the scenario table for 1,000 students;
    for a stack of books, under `books`, one per book (`users` students each)."""
    per = {svc.book: service_estimate(svc, prices, users, hours) for svc in spec.services}
    result: dict[str, Any] = {"books": per} if spec.books else dict(per[None])
    result["idle_monthly"] = idle_monthly(spec, prices)
    result["assumptions"] = {
        "billing": "request-based (CPU only while serving), tier-1 region",
        "requests_per_user_hour": REQUESTS_PER_USER_HOUR,
        "image_gb": IMAGE_GB, "kept_images": KEEP_IMAGES,
    }
    if not spec.books:
        result["assumptions"].update({k: result[k] for k in ("vcpu", "memory_gib",
                                                             "concurrency")})
    result["free_tier_monthly"] = {"vcpu_seconds": prices.free_vcpu_seconds,
                                   "gib_seconds": prices.free_gib_seconds,
                                   "requests": prices.free_requests,
                                   "uptime_executions": prices.free_uptime_executions}
    result["price_sources"] = {k: "--prices file" if k in (overridden or []) else v
                               for k, v in SOURCES.items()}
    if spec.windows:
        result["events"] = windows_cost(spec, prices)
    if spec.builder == "cloud":
        result["cloud_builds"] = cloud_builds(prices)
    if spec.watch.alerts:
        result["alerts_monthly"] = watching(spec, prices)
    if spec.protected:  # its repository is scanned: each image pushed there is billed
        result["scanning"] = {"usd_per_image": prices.scan_image}
    if spec.watch.budget_usd is not None:
        result["budget"] = {"budget_usd": spec.watch.budget_usd,
                            "monthly_estimate": monthly_estimate(spec, prices)}
    return result


BUILD_MINUTES = 5  # one build of a StreamTeX app (uv sync, the HTML export) in Cloud Build


def cloud_builds(prices: Prices) -> dict[str, Any]:
    """Cloud Build minutes: free up to the monthly free tier, then per minute."""
    free_builds = int(prices.free_build_minutes // BUILD_MINUTES)
    return {"minutes_per_build": BUILD_MINUTES, "free_builds_monthly": free_builds,
            "usd_per_build_beyond": round(BUILD_MINUTES * prices.build_minute, 3)}


def window_cost(spec: AppSpec, window: Window, prices: Prices) -> dict[str, Any]:
    """One window: the warm instances during the warm-up at the idle rate, then the class
    (its students' event cost with --users; else the warm instances kept, at least), for
    every service it covers; and its two scheduler jobs per service, billed per day until
    the window ends."""
    total, parts = 0.0, []
    hours = window.duration.total_seconds() / 3600
    services = [svc for svc in spec.services if window.covers(svc.book)]
    for svc in services:
        low, high = window.scaling(svc.concurrency, svc.max_instances)
        idle = svc.cpu * prices.idle_vcpu_second + memory_gib(svc) * prices.idle_gib_second
        warm = low * window.warm.total_seconds() * idle
        if window.users:
            during = event_cost(replace(svc, min_instances=low, max_instances=high),
                                window.users, hours, prices)["total_usd"]
        else:
            during = low * hours * 3600 * idle
        total += warm + during
        parts.append(f"{svc.book or svc.name}: {low} warm, max {high}")
    jobs = 2 * len(services)
    days = max(1, math.ceil((window.end.astimezone(spec.now.tzinfo) - spec.now)
                            / timedelta(days=1)))
    scheduler = jobs * prices.scheduler_job_31_days / 31 * days
    return {"name": window.name, "start": window.as_config()["start"], "tz": window.tz,
            "active": window.active(spec.now), "jobs": jobs,
            "total_usd": round(total + scheduler, 2), "scheduler_usd": round(scheduler, 4),
            "detail": "; ".join(parts) + f"; {jobs} scheduler jobs"}


def windows_cost(spec: AppSpec, prices: Prices) -> dict[str, Any]:
    """Every window's cost, and each month's with windows: the idle month plus its windows."""
    windows = [window_cost(spec, w, prices) for w in spec.windows]
    idle = idle_monthly(spec, prices)["total_usd"]
    months: dict[str, float] = {}
    for cost, window in zip(windows, spec.windows, strict=True):
        month = f"{window.start:%Y-%m}"
        months[month] = round(months.get(month, idle) + cost["total_usd"], 2)
    return {"windows": windows, "months_usd": months}


def service_estimate(svc: ServiceSpec, prices: Prices, users: int | None,
                     hours: float | None) -> dict[str, Any]:
    """The event or the scenarios for one service, and the shape of its instances."""
    if users is not None or hours is not None:
        result = event_cost(svc, users or DEFAULT_USERS, hours or 2.0, prices)
    else:
        result = {
            "users": DEFAULT_USERS,
            "instances": instances_needed(svc, DEFAULT_USERS),
            "scenarios": [{"name": name, **_brief(event_cost(svc, DEFAULT_USERS, h, prices))}
                          for name, h in SCENARIOS],
            "warnings": warnings_for(svc, DEFAULT_USERS),
        }
    return {**result, "min_instances": svc.min_instances, "vcpu": svc.cpu,
            "memory": svc.memory, "memory_gib": memory_gib(svc),
            "concurrency": svc.concurrency}


def _brief(cost: dict[str, Any]) -> dict[str, Any]:
    return {k: cost[k] for k in ("hours", "instances", "total_usd", "breakdown")}


def _whole(number: float) -> float | int:
    return int(number) if float(number).is_integer() else number


UPTIME_REGIONS = 6  # an uptime check runs from every checker region unless told (Google's default)


def watching(spec: AppSpec, prices: Prices) -> dict[str, Any]:
    """What the alerts cost a month: each policy condition, and the uptime checks' runs (every
    60 s from each region) beyond the project's free executions."""
    if not spec.watch.alerts:
        return {"total_usd": 0.0, "conditions": 0, "uptime_checks": 0}
    services = len(spec.services)
    checks = services * (2 if spec.serve_mode == "dual" else 1)
    conditions = services * 3 + checks  # 5xx, 429, revision; one per uptime check
    runs = checks * UPTIME_REGIONS * MONTH_S / 60
    uptime = max(0.0, runs - prices.free_uptime_executions) / 1000 * prices.uptime_1000_executions
    total = conditions * prices.alert_condition_month + uptime
    return {"total_usd": round(total, 2), "conditions": conditions, "uptime_checks": checks,
            "uptime_executions": int(runs)}


def monthly_estimate(spec: AppSpec, prices: Prices) -> dict[str, Any]:
    """A month as the budget sees it: the month scenario (20 days × 4 h) at the app's own
    scaling (every service at its max), its idle cost, its event windows in their busiest
    month, and the alerts."""
    hours = dict(SCENARIOS)["month: 20 days x 4 h"]
    busy = sum(event_cost(svc, svc.max_instances * svc.concurrency, hours, prices)["total_usd"]
               for svc in spec.services)
    idle = idle_monthly(spec, prices)["total_usd"]
    months = windows_cost(spec, prices)["months_usd"] if spec.windows else {}
    windows = max(months.values(), default=idle)  # a month with windows holds the idle one
    alerts = watching(spec, prices)["total_usd"]
    total = round(busy + windows + alerts, 2)
    return {"total_usd": total, "scenario_usd": round(busy, 2), "windows_usd": windows,
            "idle_usd": idle, "alerts_usd": alerts}


def over_budget(spec: AppSpec, prices: Prices) -> str | None:
    """Why the plan is over the app's budget (USD a month), if it is."""
    budget = spec.watch.budget_usd
    if budget is None:
        return None
    month = monthly_estimate(spec, prices)
    if month["total_usd"] <= budget:
        return None
    return (f"stx:budget (--budget): the monthly estimate ${month['total_usd']:.2f} is over the "
            f"budget ${budget:.2f} by ${month['total_usd'] - budget:.2f} (20 days × 4 h at "
            f"max instances ${month['scenario_usd']:.2f}, windows ${month['windows_usd']:.2f}, "
            f"idle ${month['idle_usd']:.2f}, alerts ${month['alerts_usd']:.2f}): lower --max, "
            "raise --budget, or pass --yes to go ahead")
