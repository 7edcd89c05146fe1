"""`rehearse`: N simulated students on the deployed app (or a local `streamlit run`), ramped
up, thinking and interacting until the duration ends; what they saw, summed, and the verdict.

The load runs on one asyncio loop in this thread (`cloud.session` holds one student); it is
bounded in students and time (the duration, then each run's --timeout at most) and stops
early, with a partial report, when `stop` is set (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from stx_pulumi.errors import InputError
from stx_pulumi.model.prices import Prices
from stx_pulumi.model.rehearsal import Rehearsal, Verdict
from stx_pulumi.ops.report import Reporter

TICK_S = 1.0


@dataclass(frozen=True)
class RehearseRequest:
    students: int = 50
    ramp_s: float = 60.0
    duration_s: float = 300.0
    think_s: float = 10.0
    timeout_s: float = 30.0
    p95_max_s: float = 3.0


def check_request(request: RehearseRequest) -> None:
    """Bounds a rehearsal keeps: one-line errors naming the option."""
    bounds = (("--users", request.students, 1, 5000), ("--ramp", request.ramp_s, 0, 3600),
              ("--duration", request.duration_s, 1, 4 * 3600),
              ("--think", request.think_s, 0.1, 3600), ("--timeout", request.timeout_s, 1, 600),
              ("--p95-max", request.p95_max_s, 0.01, 600))
    for option, value, low, high in bounds:
        if not low <= value <= high:
            raise InputError(f"{option}: must be between {low:g} and {high:g}, got {value:g}")
    if request.ramp_s >= request.duration_s:
        raise InputError(f"--ramp: {request.ramp_s:g}s must be shorter than --duration "
                         f"({request.duration_s:g}s)")


def check_url(url: str) -> str:
    """An http(s) URL with a host and no credentials, as given to --url."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username \
            or parts.password or parts.fragment:
        raise InputError(f"--url: {url!r} is not an http(s) URL such as "
                         "http://127.0.0.1:8501 (no user, password or #fragment)")
    return url


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def same_site(url: str, known: Mapping[str, Any]) -> bool:
    """Whether `url` is on a host one of `known` (book → URL) answers on."""
    hosts = {urlsplit(str(u)).netloc for u in known.values() if u}
    return urlsplit(url).netloc in hosts


@dataclass(frozen=True)
class Target:
    """What is rehearsed: its URL and, for a deployed stack, its service and scaling."""

    url: str
    stack: str | None = None
    service: str | None = None      # the Cloud Run service
    project: str | None = None
    region: str | None = None
    max_instances: int | None = None
    concurrency: int | None = None
    cpu: int = 1
    gib: float = 0.5
    protected: bool = False
    known: bool = True              # loopback, or where the stack answers


def target(stack: str, config: Mapping[str, Any], outputs: Mapping[str, Any],
           book: str | None, url: str | None) -> Target:
    """The deployed stack's service (its book's, with --book) and where it answers; `url`
    (--url) replaces the address, and is known when the stack answers there or on loopback."""
    from stx_pulumi.model import capacity
    from stx_pulumi.model.events import clock

    served = outputs.get("books") if isinstance(outputs.get("books"), Mapping) else None
    if served:
        if book is None and len(served) > 1:
            raise InputError(f"--book: {stack} serves {', '.join(sorted(served))}: name one")
        book = book or next(iter(served))
        if book not in served:
            raise InputError(f"--book: {stack} has no book {book!r} (books: "
                             f"{', '.join(sorted(served))})")
        own: Mapping[str, Any] = served[book]
    elif book is not None:
        raise InputError(f"--book: {stack} serves no books")
    else:
        own = outputs
    addresses = {k: own.get(k) for k in ("url", "custom_url") if own.get(k)}
    if not addresses and url is None:
        raise InputError(f"{stack} has no URL: deploy it with `stx-pulumi up` first, or pass "
                         "--url")
    demand = next((d for d in capacity.of_config(stack, config, clock()) if d.book == book), None)
    chosen = url or str(addresses.get("custom_url") or addresses["url"])
    return Target(
        url=chosen, stack=stack, service=str(own.get("service") or "") or None,
        project=outputs.get("project"), region=outputs.get("region"),
        max_instances=demand.at(clock()) if demand else own.get("max_instances"),
        concurrency=demand.concurrency if demand else None,
        cpu=demand.cpu if demand else 1, gib=demand.gib if demand else 0.5,
        protected=bool(outputs.get("protected")),
        known=url is None or is_loopback(url) or same_site(url, addresses))


def whose(url: str, engine: Any, stacks: list[str]) -> str | None:
    """The workspace's stack that answers on `url`'s host (a service or custom URL)."""
    from stx_pulumi.errors import StxError

    for stack in stacks:
        try:
            outputs = engine.outputs(stack)
        except StxError:  # never deployed
            continue
        served = outputs.get("books") if isinstance(outputs.get("books"), Mapping) else None
        own = [o for o in (served.values() if served else [outputs]) if isinstance(o, Mapping)]
        if same_site(url, {f"{i}:{k}": o.get(k) for i, o in enumerate(own)
                           for k in ("url", "custom_url")}):
            return stack
    return None


def instances(client: Any, target: Target, started: datetime, ended: datetime,
              report: Reporter, wait: Callable[[float], None] = time.sleep
              ) -> tuple[list[tuple[float, int]], str]:
    """Cloud Run's instance count over the rehearsal, read once its ingest delay has passed
    (the metric is sampled every 60 s and visible only later: its descriptor says how much),
    as (seconds since the start, instances); and the note the report carries about it."""
    from stx_pulumi.cloud.google import INSTANCE_COUNT

    assert target.project and target.region and target.service
    delay = client.ingest_delay(target.project, INSTANCE_COUNT)
    delay = DEFAULT_INGEST_DELAY_S if delay is None else delay
    ready = ended + timedelta(seconds=delay)
    left = (ready - datetime.now(UTC)).total_seconds()
    if left > 0:
        report.info(f"waiting {left:.0f}s for Cloud Monitoring: instance counts are sampled "
                    f"every 60 s and visible {delay:.0f}s later")
        wait(left)
    start = started - timedelta(seconds=60)
    points = client.instance_counts(target.project, target.region, target.service,
                                    _rfc3339(start), _rfc3339(ready))
    series = [((datetime.fromisoformat(t.replace("Z", "+00:00")) - started).total_seconds(), n)
              for t, n in points]
    return series, (f"instances from Cloud Monitoring ({INSTANCE_COUNT}, the highest of each "
                    f"minute, read {delay:.0f}s after the end: its ingest delay)")


def cost(series: list[tuple[float, int]], target: Target, prices: Prices) -> float:
    """What the instances cost over the rehearsal, at list price (before any free tier):
    each minute's instances × 60 s × (vCPU + memory)."""
    seconds = sum(n for _, n in series) * 60
    return seconds * (target.cpu * prices.vcpu_second + target.gib * prices.gib_second)


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# When the descriptor says none: "Sampled every 60 seconds. After sampling, data is not visible
# for up to 180 seconds" (cloud.google.com/monitoring/api/metrics_gcp, run.googleapis.com)
DEFAULT_INGEST_DELAY_S = 180.0


def run(url: str, request: RehearseRequest, on_tick: Callable[[Rehearsal], None],
        stop: threading.Event | None = None) -> Rehearsal:
    """The rehearsal, to its end (or `stop`); `on_tick` sees the live sums every second."""
    from stx_pulumi.cloud.session import protos

    protos()  # a missing extra is exit 3 before anything starts
    report = Rehearsal(request.students, started_epoch=time.time())
    cpu = time.process_time()
    try:
        asyncio.run(_rehearse(url, request, report, on_tick, stop or threading.Event()))
    except KeyboardInterrupt:  # a second Ctrl-C, or one asyncio did not hand to us
        report.interrupted = True
    report.generator_cpu_s = time.process_time() - cpu
    return report


async def _rehearse(url: str, request: RehearseRequest, report: Rehearsal,
                    on_tick: Callable[[Rehearsal], None], stop: threading.Event) -> None:
    import http.cookiejar

    import httpx

    from stx_pulumi.cloud.session import Plan, student

    start = time.monotonic()
    plan = Plan(url, request.duration_s, request.think_s, request.timeout_s, start)
    stopping = asyncio.Event()
    limits = httpx.Limits(max_connections=request.students + 10, max_keepalive_connections=50)
    no_shared_cookies = http.cookiejar.CookieJar(  # each student keeps its own
        http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(limits=limits, cookies=no_shared_cookies,
                                 follow_redirects=True) as client:
        async def arrive(number: int) -> None:
            delay = request.ramp_s * number / request.students
            try:
                await asyncio.wait_for(stopping.wait(), delay)
                return  # stopped before this student arrived
            except TimeoutError:
                pass
            await student(number, plan, client, report.add, stopping)

        tasks = [asyncio.create_task(arrive(n)) for n in range(request.students)]
        hard_end = start + request.duration_s + request.timeout_s + 5
        try:
            while not all(t.done() for t in tasks):
                report.elapsed_s = time.monotonic() - start
                on_tick(report)
                if stop.is_set():
                    report.interrupted = True
                    break
                if time.monotonic() >= hard_end:
                    break
                await asyncio.wait(tasks, timeout=TICK_S)
        except asyncio.CancelledError:  # Ctrl-C: asyncio cancels the main task
            report.interrupted = True
        finally:
            stopping.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            report.elapsed_s = time.monotonic() - start
    versions = {e.detail for e in report.events if e.kind == "run" and e.first and e.detail}
    report.server_version = min(versions) if versions else None


REHEARSAL_TAG = "stx:rehearsal"  # the stack tag that keeps the last rehearsal's summary


def before(goal: Target, request: RehearseRequest) -> list[str]:
    """What to know before the students arrive: more of them than the service holds."""
    from stx_pulumi.model.rehearsal import capacity_warning

    if goal.max_instances and goal.concurrency:
        warning = capacity_warning(request.students, goal.max_instances, goal.concurrency)
        return [warning] if warning else []
    return []


def after(report: Rehearsal, goal: Target, request: RehearseRequest, reporter: Reporter,
          keep: Callable[[str], None] | None = None) -> tuple[Verdict, list[str]]:
    """The verdict and the report's notes: the Streamlit version the app runs against the one
    spoken, and on Cloud Run the instances used and what they cost (Cloud Monitoring, after
    its ingest delay). `keep`: where the stack keeps the summary (a stack tag)."""
    import json

    from stx_pulumi.cloud.session import speaks
    from stx_pulumi.model.rehearsal import generator_note, summary, verdict

    notes = [generator_note(report)]
    if report.server_version and report.server_version != speaks():
        notes.append(f"the app runs Streamlit {report.server_version}; rehearse speaks "
                     f"{speaks()}: messages may differ (pip install 'streamlit=="
                     f"{report.server_version}' next to stx-pulumi to match)")
    if goal.service and goal.project and goal.region and report.started_epoch:
        notes.append(_cloud_run_usage(report, goal, reporter))
    result = verdict(report, request.p95_max_s, goal.max_instances, goal.concurrency)
    if keep is not None and not report.interrupted:
        when = datetime.fromtimestamp(report.started_epoch, UTC).strftime("%Y-%m-%dT%H:%MZ")
        keep(json.dumps(summary(report, result, goal.max_instances, result.suggested_max,
                                when), separators=(",", ":")))
    return result, notes


def _cloud_run_usage(report: Rehearsal, goal: Target, reporter: Reporter) -> str:
    import os

    from stx_pulumi.cloud.google import connect
    from stx_pulumi.errors import GoogleError
    started = datetime.fromtimestamp(report.started_epoch, UTC)
    try:
        client = connect(os.environ)
        try:
            report.instances, note = instances(
                client, goal, started, started + timedelta(seconds=report.elapsed_s),
                reporter)
        finally:
            client.close()
    except GoogleError as err:
        return f"instances not read from Cloud Monitoring: {err.message}"
    report.cost_usd = cost(report.instances, goal, Prices())
    return note + "; cost at list price, before the free tier"
