"""Cloud Run, Artifact Registry, Cloud Scheduler and Cloud Build prices, in USD, with where each
comes from.

Tier 1 regions, request-based billing (the program sets `cpu_idle`), checked 2026-11.
`stx-pulumi cost --prices FILE` overrides any of them with a JSON object of the same keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path

from stx_pulumi.errors import InputError

GOOGLE = "cloud.google.com/run/pricing"
SECONDARY = "secondary sources, not Google's page"
CHECKED = "2026-11"


@dataclass(frozen=True)
class Prices:
    """Unit prices (USD) and the free tier of one billing account per month."""

    vcpu_second: float = 0.000024
    gib_second: float = 0.0000025
    million_requests: float = 0.40
    idle_vcpu_second: float = 0.0000025
    idle_gib_second: float = 0.0000025
    registry_gb_month: float = 0.10
    free_vcpu_seconds: float = 180_000
    free_gib_seconds: float = 360_000
    free_requests: float = 2_000_000
    free_registry_gb: float = 0.5
    scheduler_job_31_days: float = 0.10  # billed per day; 3 free jobs per billing account
    build_minute: float = 0.006  # Cloud Build's default pool, e2-standard-2
    free_build_minutes: float = 2_500  # per billing account per month (promotional)
    alert_condition_month: float = 0.10  # each condition of an alerting policy, a month
    uptime_1000_executions: float = 0.30
    free_uptime_executions: float = 1_000_000  # per project per month
    scan_image: float = 0.26  # Artifact Analysis: each new digest in a scanned repository


SOURCES = {
    "vcpu_second": GOOGLE,
    "gib_second": SECONDARY,
    "million_requests": SECONDARY,
    "idle_vcpu_second": SECONDARY,
    "idle_gib_second": SECONDARY,
    "registry_gb_month": "cloud.google.com/artifact-registry/pricing",
    "free_vcpu_seconds": GOOGLE,
    "free_gib_seconds": SECONDARY,
    "free_requests": SECONDARY,
    "free_registry_gb": "cloud.google.com/artifact-registry/pricing",
    "scheduler_job_31_days": "cloud.google.com/scheduler/pricing",
    "build_minute": "cloud.google.com/build/pricing",
    "free_build_minutes": "cloud.google.com/build/pricing",
    "alert_condition_month": SECONDARY,  # cloud.google.com/stackdriver/pricing: not read here
    "uptime_1000_executions": SECONDARY,
    "free_uptime_executions": SECONDARY,
    "scan_image": SECONDARY,  # cloud.google.com/artifact-analysis/pricing: not read here
}


def load_prices(file: Path | None) -> tuple[Prices, list[str]]:
    """The built-in prices, overridden by `file` (JSON); and which keys were overridden."""
    if file is None:
        return Prices(), []
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"--prices: cannot read {file}: {err}") from None
    known = {f.name for f in fields(Prices)}
    if not isinstance(data, dict) or set(data) - known:
        unknown = sorted(set(data) - known) if isinstance(data, dict) else data
        raise InputError(f"--prices: {file} must be a JSON object with keys among "
                         f"{', '.join(sorted(known))}; unknown: {unknown}")
    try:
        values = {k: float(v) for k, v in data.items()}
    except (TypeError, ValueError):
        raise InputError(f"--prices: every price in {file} must be a number") from None
    negative = sorted(k for k, v in values.items() if not v >= 0)  # NaN is refused too
    if negative:
        raise InputError(f"--prices: {negative[0]} in {file} must be 0 or more")
    return replace(Prices(), **values), sorted(values)
