"""Event windows: a class at a time, warm before it, back to the base scaling after it.

Pure (no Pulumi, no I/O): a window read from the command line or from `stx:events`, checked,
and what the schedule does with it. A window is active over [start − warm, end). Times are
wall-clock times in the window's time zone (IANA name).

How a window acts with nobody at the keyboard: a Cloud Scheduler job per instant (warm, end)
starts the app's Cloud Workflows workflow (`workflow_source`) with the window's bounds, and the
workflow PATCHes the service's scaling only when `sys.now()` lies inside them. A cron of Cloud
Scheduler repeats every year, so the same job fires again a year later: the workflow then logs
that the window is not now and changes nothing. Every IAM binding is unconditional: the
provider cannot manage conditional bindings on Cloud Run services (magic-modules
mmv1/products/cloudrunv2/Service.yaml sets no `iam_conditions_request_type`, so its reads
never ask for policy version 3; hashicorp/terraform-provider-google#11127 is the same bug
class), and Cloud Tasks cannot schedule more than 30 days ahead.
(Scheduler → Workflows: cloud.google.com/workflows/docs/schedule-workflow; `sys.now`, `switch`
with `steps`, `http.patch` with `query` and `auth: {type: OAuth2}`: the Workflows syntax and
standard library references.)
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from stx_pulumi.errors import InputError, shown, whole_number

DEFAULT_TZ = "UTC"
DEFAULT_WARM = timedelta(minutes=15)
MAX_WINDOW = timedelta(hours=24)
# With --long: at most a month. A window's jobs repeat every year, so it must stay far shorter
# than a year (its end job must never fire inside the window's own next repeat), and a class
# that lasts longer is a new base scaling, not a window.
MAX_LONG_WINDOW = timedelta(days=31)
MAX_AHEAD = timedelta(days=365)  # a bounded future: the jobs' crons repeat yearly
MAX_INSTANCES = 1000  # Cloud Run's maximum instances per service (and the region's quota)
MAX_CONCURRENCY = 1000
MAX_WARM = timedelta(hours=6)
# How long after the end a window's jobs may still act: Cloud Scheduler retries a failed
# attempt (RETRY_COUNT times, backing off up to MAX_BACKOFF_S) within this grace.
GRACE = timedelta(hours=1)
EARLY = timedelta(minutes=5)  # a job may fire a little early: the workflow acts from then
RETRY_COUNT = 3
MAX_BACKOFF_S = 600
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M")
DURATION_RE = re.compile(r"^([0-9]{1,6})\s*(m|min|h)?$")
ADMIN_API = "https://run.googleapis.com/v2"
WORKFLOWS_API = "https://workflowexecutions.googleapis.com/v1"
UPDATE_MASK = "scaling.minInstanceCount,scaling.maxInstanceCount"


def clock() -> datetime:
    """Now, as an aware UTC time; STX_PULUMI_NOW (ISO 8601, e.g. 2026-11-30T07:00Z) sets
    another, to see what an `up` or a cost would be then (tests replace this function too:
    never sleep to reach a window)."""
    fixed = os.environ.get("STX_PULUMI_NOW")
    if fixed:
        try:
            when = datetime.fromisoformat(fixed.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"STX_PULUMI_NOW: {shown(fixed)} is not an ISO 8601 time such as "
                             "2026-11-30T07:00Z") from None
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    return datetime.now(UTC)


@dataclass(frozen=True)
class Window:
    """One scheduled event: its scaling applies over [start − warm, end)."""

    name: str
    start: datetime  # aware, in tz
    end: datetime
    tz: str
    warm: timedelta = DEFAULT_WARM
    users: int | None = None
    min: int | None = None
    max: int | None = None
    book: str | None = None

    # Arithmetic in UTC: Python subtracts two times of one zone by their wall clocks, which
    # is an hour off across a daylight-saving change.
    @property
    def warm_at(self) -> datetime:
        """When the warm-up starts, in the window's zone."""
        return (self.start.astimezone(UTC) - self.warm).astimezone(self.start.tzinfo)

    @property
    def duration(self) -> timedelta:
        return self.end.astimezone(UTC) - self.start.astimezone(UTC)

    def active(self, now: datetime) -> bool:
        return self.warm_at.astimezone(UTC) <= now.astimezone(UTC) < self.end.astimezone(UTC)

    def expired(self, now: datetime) -> bool:
        return now.astimezone(UTC) >= self.end.astimezone(UTC)

    def covers(self, book: str | None) -> bool:
        """Whether the window applies to this service (all of them unless it names a book)."""
        return self.book is None or self.book == book

    def scaling(self, concurrency: int, base_max: int) -> tuple[int, int]:
        """(min, max) in the window: min = the warm instances, ⌈users ÷ concurrency⌉ unless
        given; max = the window's, else the larger of the base max and min."""
        warm = self.min if self.min is not None else math.ceil((self.users or 0) / concurrency)
        return warm, self.max if self.max is not None else max(base_max, warm)

    def as_config(self) -> dict[str, str]:
        """The window as stored in `stx:events.<name>` (strings, as Pulumi stores them)."""
        out = {"start": _local(self.start), "end": _local(self.end), "tz": self.tz,
               "warm": f"{int(self.warm.total_seconds() // 60)}m"}
        for key in ("users", "min", "max", "book"):
            value = getattr(self, key)
            if value is not None:
                out[key] = str(value)
        return out

    def describe(self) -> str:
        who = f"{self.users} users" if self.users else f"min {self.min}, max {self.max}"
        book = f", book {self.book}" if self.book else ""
        return (f"{self.name}: {_local(self.start)}–{self.end.strftime('%H:%M')} {self.tz} "
                f"({who}, warm from {self.warm_at.strftime('%H:%M')}{book})")


def _local(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M")


# -- reading and checking ---------------------------------------------------------------------

def parse_time(text: str, tz: ZoneInfo, where: str, problems: list[str]) -> datetime | None:
    """`2026-12-01 08:00` in `tz`; a wall time that does not exist there (a daylight-saving
    gap) is a problem, not silently moved."""
    for fmt in TIME_FORMATS:
        try:
            naive = datetime.strptime(str(text).strip(), fmt)
        except ValueError:
            continue
        if not 2000 <= naive.year <= 2999:
            problems.append(f"{where}: {text} is not a date this century")
            return None
        when = naive.replace(tzinfo=tz)
        if when.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
            problems.append(f"{where}: {text} does not exist in {tz.key} (a daylight-saving "
                            "change skips it)")
            return None
        return when
    problems.append(f"{where}: {shown(text)} is not a time such as '2026-12-01 08:00'")
    return None


def parse_duration(text: str, where: str, problems: list[str]) -> timedelta | None:
    """`15m`, `15`, `1h` → a duration; at most MAX_WARM."""
    match = DURATION_RE.fullmatch(str(text).strip().lower())
    if not match:
        problems.append(f"{where}: {shown(text)} is not a duration such as 15m or 1h")
        return None
    amount = int(match.group(1))
    duration = timedelta(hours=amount) if match.group(2) == "h" else timedelta(minutes=amount)
    if duration > MAX_WARM:
        problems.append(f"{where}: at most {int(MAX_WARM.total_seconds() // 3600)}h, got {text}")
        return None
    return duration


def zone(name: str, where: str, problems: list[str]) -> ZoneInfo | None:
    if name not in available_timezones():
        problems.append(f"{where}: {shown(name)} is not a known time zone (an IANA name such as "
                        "Europe/Paris or America/New_York)")
        return None
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:  # pragma: no cover - listed but unreadable
        problems.append(f"{where}: {shown(name)} cannot be read")
        return None


def read_window(name: str, values: Mapping[str, Any], labels: Mapping[str, str],
                problems: list[str], allow_long: bool = False) -> Window | None:
    """A window from its settings (CLI options or a stored `stx:events.<name>` map). `labels`
    names each key the way the user set it (`--start`, or `stx:events.NAME.start`).
    Everything Cloud Run or Cloud Scheduler would refuse later is a problem now."""
    count = len(problems)
    if not NAME_RE.fullmatch(name):
        problems.append(f"{labels['name']}: {shown(name)} must be 1-31 lowercase letters, "
                        "digits or '-', starting with a letter")
    if values.get("tz") is not None and not str(values["tz"]).strip():
        problems.append(f"{labels['tz']}: empty: name a time zone such as Europe/Paris (or "
                        "leave it out for UTC)")
        return None
    tz = zone(str(values.get("tz") or DEFAULT_TZ), labels["tz"], problems)
    if tz is None:
        return None
    start = parse_time(values.get("start") or "", tz, labels["start"], problems)
    end = parse_time(values.get("end") or "", tz, labels["end"], problems)
    warm = parse_duration(values.get("warm") or "15m", labels["warm"], problems)
    users, low, high = (_count(values.get(k), labels[k], problems) for k in ("users", "min", "max"))
    if users is None and low is None and high is None:
        problems.append(f"{labels['users']}: say how many students ({labels['users']}) or the "
                        f"scaling ({labels['min']}/{labels['max']})")
    elif users is not None and low is not None:
        problems.append(f"{labels['users']}: give {labels['users']} or {labels['min']}, not both")
    if low is not None and high is not None and high < low:
        problems.append(f"{labels['max']}: {high} is less than {labels['min']} {low}")
    if high is not None and not 1 <= high <= MAX_INSTANCES:
        problems.append(f"{labels['max']}: must be between 1 and {MAX_INSTANCES} (Cloud Run's "
                        f"maximum instances), got {high}")
    if low is not None and low > MAX_INSTANCES:
        problems.append(f"{labels['min']}: at most {MAX_INSTANCES} (Cloud Run's maximum "
                        f"instances), got {low}")
    if users == 0:
        problems.append(f"{labels['users']}: must be 1 or more")
    elif users is not None and users > MAX_INSTANCES * MAX_CONCURRENCY:
        problems.append(f"{labels['users']}: at most {MAX_INSTANCES * MAX_CONCURRENCY:,} "
                        f"({MAX_INSTANCES} instances × concurrency {MAX_CONCURRENCY}, what one "
                        f"Cloud Run service can hold), got {users:,}")
    if start and end:
        length = end.astimezone(UTC) - start.astimezone(UTC)
        if length <= timedelta(0):
            problems.append(f"{labels['end']}: {_local(end)} is not after {labels['start']} "
                            f"{_local(start)}")
        elif length > MAX_WINDOW and not allow_long:
            problems.append(f"{labels['end']}: the window lasts {_hours(length)}, more than "
                            "24 h: pass --long if that is meant")
        elif length > MAX_LONG_WINDOW:
            problems.append(f"{labels['end']}: the window lasts {_hours(length)}, more than "
                            f"{MAX_LONG_WINDOW.days} days (its jobs repeat every year: a "
                            "longer need is a new base scaling, `--min`/`--max`)")
    if len(problems) > count or start is None or end is None or warm is None:
        return None
    book = str(values.get("book") or "").strip() or None
    return Window(name=name, start=start, end=end, tz=tz.key, warm=warm, users=users, min=low,
                  max=high, book=book)


def _count(value: Any, where: str, problems: list[str]) -> int | None:
    if value is None or value == "":
        return None
    number = whole_number(value)
    if number is None:
        problems.append(f"{where}: {shown(value)} is not a whole number")
        return None
    if number < 0:
        problems.append(f"{where}: must be 0 or more, got {number}")
        return None
    return number


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"


def ahead_problem(window: Window, now: datetime, where: str) -> str | None:
    """A window more than a year ahead: its jobs' crons repeat yearly, so Cloud Scheduler
    would fire them first a year early (and nothing that far ahead is planned yet)."""
    if window.start.astimezone(UTC) - now.astimezone(UTC) <= MAX_AHEAD:
        return None
    return (f"{where}: {_local(window.start)} {window.tz} is more than a year ahead: add it "
            "within the year before the class")


def overlaps(window: Window, others: Iterable[Window]) -> list[Window]:
    """Windows whose active spans meet this one's on a service they share."""
    return [o for o in others if o.name != window.name
            and (window.book is None or o.book is None or window.book == o.book)
            and window.warm_at.astimezone(UTC) < o.end.astimezone(UTC)
            and o.warm_at.astimezone(UTC) < window.end.astimezone(UTC)]


def stored_windows(config: Mapping[str, Any], problems: list[str],
                   now: datetime | None = None) -> list[Window]:
    """The windows of `stx:events` (each checked as on the command line, without the 24 h
    limit, which `event add --long` lifted; with `now`, none more than a year ahead)."""
    out = []
    for name, values in sorted(config.items(), key=lambda item: str(item[0])):
        where = f"stx:events.{name}"
        if not isinstance(values, Mapping):
            problems.append(f"{where}: expected a map with start, end and tz, got {shown(values)}")
            continue
        unknown = set(values) - {"start", "end", "tz", "warm", "users", "min", "max", "book"}
        for key in sorted(unknown):
            problems.append(f"{where}.{key}: not a window setting (start, end, tz, warm, users, "
                            "min, max, book)")
        labels = {k: f"{where}.{k}" for k in ("start", "end", "tz", "warm", "users", "min",
                                                "max", "book")}
        labels["name"] = where
        window = read_window(str(name), values, labels, problems, allow_long=True)
        if window and now is not None:
            problems += [p for p in [ahead_problem(window, now, f"{where}.start")] if p]
        if window:
            out.append(window)
    for window in out:
        for other in overlaps(window, out):
            if other.name > window.name:
                problems.append(f"stx:events.{other.name}: overlaps the window {window.name}")
    return out


# -- what the schedule does -------------------------------------------------------------------

def cron(when: datetime) -> str:
    """The unix-cron of a wall time in its zone: minute hour day month, every year."""
    return f"{when.minute} {when.hour} {when.day} {when.month} *"


CONDITION_TITLE = "stx event "  # the conditional bindings of releases before workflows


def span(window: Window) -> tuple[int, int]:
    """[since, until) in seconds since the epoch, when the window's jobs may act: from just
    before the warm-up to GRACE after the end (retries)."""
    return (int((window.warm_at - EARLY).timestamp()), int((window.end + GRACE).timestamp()))


def job_argument(window: Window, service: str, low: int, high: int) -> dict[str, Any]:
    """What a job passes to the workflow: the service, its scaling, the window's span."""
    since, until = span(window)
    return {"window": window.name, "service": service, "min": low, "max": high,
            "since": since, "until": until}


def execution_uri(project: str, region: str, workflow: str) -> str:
    """The call a job makes: Workflow Executions' `projects.locations.workflows.executions.
    create` (its body: {"argument": "<the argument as a JSON string>"})."""
    return f"{WORKFLOWS_API}/projects/{project}/locations/{region}/workflows/{workflow}/executions"


def execution_body(argument: Mapping[str, Any]) -> dict[str, Any]:
    return {"argument": json.dumps(dict(argument), sort_keys=True)}


def acts(argument: Mapping[str, Any], now: datetime) -> bool:
    """Whether the workflow PATCHes the service when started at `now` with `argument` (the
    condition `workflow_source` writes, in Python)."""
    return int(argument["since"]) <= now.timestamp() < int(argument["until"])


def workflow_source(project: str, region: str, services: Iterable[str]) -> str:
    """The app's workflow: refuse a service that is not the app's, log and stop outside the
    window, else PATCH the service's scaling (Cloud Run Admin API v2 `services.patch` with
    an update mask) as the workflow's own account."""
    import yaml

    names = sorted(services)
    foreign = " and ".join(f"args.service != {json.dumps(n)}" for n in names)
    url = f"{ADMIN_API}/projects/{project}/locations/{region}/services/"
    source = {"main": {"params": ["args"], "steps": [
        {"check": {"switch": [
            {"condition": "${" + foreign + "}", "steps": [
                {"refuse": {"raise": '${"not a service of this app: " + args.service}'}}]},
            {"condition": "${sys.now() < args.since or sys.now() >= args.until}", "steps": [
                {"outside": {"call": "sys.log", "args": {
                    "text": '${"event " + args.window + " is not now: " + args.service'
                            ' + " left as it is"}', "severity": "INFO"}}},
                {"skipped": {"return": "outside the window"}}]}]}},
        {"scale": {"call": "http.patch", "args": {
            "url": '${"' + url + '" + args.service}',
            "query": {"updateMask": UPDATE_MASK},
            "auth": {"type": "OAuth2"},
            "body": {"scaling": {"minInstanceCount": "${args.min}",
                                 "maxInstanceCount": "${args.max}"}}}}},
        {"scaled": {"return": "scaled"}}]}}
    header = ("# stx-pulumi: the event windows of one app. Cloud Scheduler starts it at each "
              "window's warm-up and end;\n# outside the window it was given (a yearly cron "
              "firing a year later) it changes nothing.\n")
    return header + yaml.safe_dump(source, sort_keys=False, width=100)


def default_name(start: datetime) -> str:
    return start.strftime("w%Y%m%d-%H%M")
