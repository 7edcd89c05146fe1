"""The scheduler jobs a spec's event windows need, and whether Google holds them as planned.

`planned` is pure and shared by the program (which creates the jobs) and by `event list` and
`event test` (which read them back). `check` compares Google's answers with the plan: each job
exists, is enabled, fires when planned and runs as the scheduler account; the scheduler account
holds its time-bound right on each service for each window, and may act as the runtime account.

It does not send the jobs' PATCH now: the scheduler account's right is bound to each window's
time span by design, so Google would refuse it outside a window.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stx_pulumi.checks import FAIL, PASS, Check
from stx_pulumi.events import Window, cron, iam_condition
from stx_pulumi.spec import AppSpec, ServiceSpec, service_account_id

UPDATE_ROLE = "roles/run.developer"
ACT_AS_ROLE = "roles/iam.serviceAccountUser"


@dataclass(frozen=True)
class Job:
    """One Cloud Scheduler job: at `when`, set `service`'s scaling to (low, high)."""

    name: str
    service: ServiceSpec
    window: Window
    kind: str  # "warm" or "end"
    when: datetime
    low: int
    high: int

    @property
    def cron(self) -> str:
        return cron(self.when)


def planned(spec: AppSpec) -> list[Job]:
    """Every job of every window not over, for each service it covers; a job whose time has
    passed is not planned (made now, it would next fire in a year)."""
    jobs = []
    for window in spec.windows:
        for svc in spec.services:
            if not window.covers(svc.book):
                continue
            warm = window.scaling(svc.concurrency, svc.max_instances)
            for kind, when, (low, high) in (
                    ("warm", window.warm_at, warm),
                    ("end", window.end, (svc.min_instances, svc.max_instances))):
                if when > spec.now:
                    jobs.append(Job(f"{svc.name}-{window.name}-{kind}", svc, window, kind,
                                    when, low, high))
    return jobs


def scheduler_email(spec: AppSpec) -> str:
    account = service_account_id(spec.app, spec.env, "sched")
    return f"{account}@{spec.project}.iam.gserviceaccount.com"


def runtime_email(spec: AppSpec) -> str:
    return f"{spec.service_account_id}@{spec.project}.iam.gserviceaccount.com"


Fetch = Callable[..., Any]


def check(spec: AppSpec, job_of: Fetch, service_policy_of: Fetch,
          account_policy_of: Fetch) -> list[Check]:
    """Google's jobs and policies against the plan. The fetchers take (name) for a job,
    (service name) for a service policy, (account email) for an account policy."""
    member = f"serviceAccount:{scheduler_email(spec)}"
    checks = [_job_check(job, job_of(job.name), scheduler_email(spec)) for job in planned(spec)]
    for svc in spec.services:
        windows = [w for w in spec.windows if w.covers(svc.book)]
        if not windows:
            continue
        bindings = service_policy_of(svc.name).get("bindings") or []
        for window in windows:
            expression = iam_condition(window)[1]
            held = any(b.get("role") == UPDATE_ROLE and member in (b.get("members") or [])
                       and (b.get("condition") or {}).get("expression") == expression
                       for b in bindings)
            checks.append(Check(
                f"rights {window.name}", PASS if held else FAIL,
                f"{member} {'may' if held else 'may NOT'} update {svc.name} during "
                f"{window.name} ({UPDATE_ROLE} if {expression})",
                None if held else "run `stx-pulumi up` (it grants it)"))
    policy = account_policy_of(runtime_email(spec)).get("bindings") or []
    acts = any(b.get("role") == ACT_AS_ROLE and member in (b.get("members") or [])
               for b in policy)
    checks.append(Check("act as runtime", PASS if acts else FAIL,
                        f"{member} {'may' if acts else 'may NOT'} act as "
                        f"{runtime_email(spec)} ({ACT_AS_ROLE})",
                        None if acts else "run `stx-pulumi up` (it grants it)"))
    return checks


def _job_check(job: Job, got: Mapping[str, Any] | None, email: str) -> Check:
    name = f"job {job.kind} {job.window.name}"
    fix = "run `stx-pulumi up` (it recreates the job)"
    if got is None:
        return Check(name, FAIL, f"{job.name} does not exist in Cloud Scheduler", fix)
    runs_as = ((got.get("httpTarget") or {}).get("oauthToken") or {}).get(
        "serviceAccountEmail")
    problems = [] if got.get("state") == "ENABLED" else [f"is {got.get('state')}"]
    if got.get("schedule") != job.cron or got.get("timeZone") != job.window.tz:
        problems.append(f"fires '{got.get('schedule')}' in {got.get('timeZone')}, not "
                        f"'{job.cron}' in {job.window.tz}")
    if runs_as != email:
        problems.append(f"runs as {runs_as}, not {email}")
    if problems:
        return Check(name, FAIL, f"{job.name} {'; '.join(problems)}", fix)
    return Check(name, PASS, f"{job.name}: enabled, next run {got.get('scheduleTime', '?')}, "
                 f"{last_attempt(got)}")


def last_attempt(got: Mapping[str, Any] | None) -> str:
    """A job's last attempt and its result, as Cloud Scheduler reports them."""
    if not got:
        return "not in Cloud Scheduler"
    when = got.get("lastAttemptTime")
    if not when:
        return "no attempt yet"
    status = got.get("status") or {}
    code = status.get("code") or 0
    result = "succeeded" if code == 0 else f"FAILED (code {code}: {status.get('message', '')})"
    return f"last attempt {when}: {result}"
