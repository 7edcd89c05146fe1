"""The scheduler jobs and the workflow a spec's event windows need, and whether Google holds
them as planned.

`planned` is pure and shared by the program (which creates the jobs) and by `event list` and
`event test` (which read them back). `check` compares Google's answers with the plan: each job
exists, is enabled, fires when planned, starts the app's workflow with its window's argument
and runs as the scheduler account; the workflow exists and runs as that account; the account
may update each service (unconditionally: the workflow refuses outside the window), start
workflows, and act as the runtime account.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stx_pulumi.model.checks import FAIL, PASS, WARN, Check
from stx_pulumi.model.events import (
    CONDITION_TITLE,
    Window,
    cron,
    execution_body,
    execution_uri,
    job_argument,
)
from stx_pulumi.model.names import service_account_id
from stx_pulumi.model.spec import AppSpec, ServiceSpec

if TYPE_CHECKING:
    from stx_pulumi.cloud.google import Google

UPDATE_ROLE = "roles/run.developer"
ACT_AS_ROLE = "roles/iam.serviceAccountUser"
# Workflows roles are granted on the project only (Workflows has no per-workflow IAM policy).
INVOKER_ROLE = "roles/workflows.invoker"


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

    @property
    def argument(self) -> dict[str, Any]:
        return job_argument(self.window, self.service.name, self.low, self.high)


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


def workflow_name(spec: AppSpec) -> str:
    return f"{spec.service_name}-events"


def scheduler_email(spec: AppSpec) -> str:
    account = service_account_id(spec.app, spec.env, "sched")
    return f"{account}@{spec.project}.iam.gserviceaccount.com"


def runtime_email(spec: AppSpec) -> str:
    return f"{spec.service_account_id}@{spec.project}.iam.gserviceaccount.com"


def scheduled_services(spec: AppSpec) -> list[ServiceSpec]:
    """The services some window covers."""
    return [svc for svc in spec.services if any(w.covers(svc.book) for w in spec.windows)]


def check(spec: AppSpec, client: Google) -> list[Check]:
    """Google's jobs, workflow and policies against the plan (GoogleError when Google cannot
    be asked)."""
    member = f"serviceAccount:{scheduler_email(spec)}"
    checks = [_job_check(spec, job, client.scheduler_job(spec.project, spec.region, job.name))
              for job in planned(spec)]
    checks.append(_workflow_check(spec, client.workflow(spec.project, spec.region,
                                                        workflow_name(spec))))
    for svc in scheduled_services(spec):
        bindings = client.service_policy(spec.project, spec.region, svc.name).get(
            "bindings") or []
        checks.append(_right(f"rights {svc.name}", bindings, UPDATE_ROLE, member,
                             f"update {svc.name} (the workflow acts only inside a window)"))
        if any(_member(b, member) and b.get("condition") for b in bindings):
            checks.append(Check(f"old rights {svc.name}", WARN, "a conditional binding of an "
                                "earlier release is still on the service",
                                "run `stx-pulumi up` (it removes it)"))
    project = client.project_policy(spec.project).get("bindings") or []
    checks.append(_right("start workflow", project, INVOKER_ROLE, member,
                         f"start {workflow_name(spec)}"))
    account = client.account_policy(spec.project, runtime_email(spec)).get("bindings") or []
    checks.append(_right("act as runtime", account, ACT_AS_ROLE, member,
                         f"act as {runtime_email(spec)}"))
    return checks


def _member(binding: Mapping[str, Any], member: str) -> bool:
    return member in (binding.get("members") or [])


def _right(name: str, bindings: list[Any], role: str, member: str, what: str) -> Check:
    held = any(b.get("role") == role and _member(b, member) and not b.get("condition")
               for b in bindings)
    return Check(name, PASS if held else FAIL,
                 f"{member} {'may' if held else 'may NOT'} {what} ({role})",
                 None if held else "run `stx-pulumi up` (it grants it)")


def _workflow_check(spec: AppSpec, got: Mapping[str, Any] | None) -> Check:
    name, fix = workflow_name(spec), "run `stx-pulumi up` (it recreates the workflow)"
    if got is None:
        return Check("workflow", FAIL, f"{name} does not exist in Cloud Workflows", fix)
    runs_as = str(got.get("serviceAccount") or "").rsplit("/", 1)[-1]
    if got.get("state") != "ACTIVE" or runs_as != scheduler_email(spec):
        return Check("workflow", FAIL, f"{name} is {got.get('state')}, runs as {runs_as}", fix)
    return Check("workflow", PASS, f"{name}: active, runs as {runs_as}, revision "
                 f"{got.get('revisionId', '?')}")


def _job_check(spec: AppSpec, job: Job, got: Mapping[str, Any] | None) -> Check:
    name = f"job {job.kind} {job.window.name}"
    fix = "run `stx-pulumi up` (it recreates the job)"
    if got is None:
        return Check(name, FAIL, f"{job.name} does not exist in Cloud Scheduler", fix)
    target = got.get("httpTarget") or {}
    runs_as = (target.get("oauthToken") or {}).get("serviceAccountEmail")
    problems = [] if got.get("state") == "ENABLED" else [f"is {got.get('state')}"]
    if got.get("schedule") != job.cron or got.get("timeZone") != job.window.tz:
        problems.append(f"fires '{got.get('schedule')}' in {got.get('timeZone')}, not "
                        f"'{job.cron}' in {job.window.tz}")
    if runs_as != scheduler_email(spec):
        problems.append(f"runs as {runs_as}, not {scheduler_email(spec)}")
    if (target.get("uri") != execution_uri(spec.project, spec.region, workflow_name(spec))
            or _argument(target.get("body")) != job.argument):
        problems.append(f"does not start {workflow_name(spec)} with this window's scaling")
    if problems:
        return Check(name, FAIL, f"{job.name} {'; '.join(problems)}", fix)
    return Check(name, PASS, f"{job.name}: enabled, next run {got.get('scheduleTime', '?')}, "
                 f"{last_attempt(got)}")


def _argument(body: Any) -> Any:
    """The workflow argument a job's base64 body carries (None when unreadable)."""
    try:
        return json.loads(json.loads(base64.b64decode(str(body or "")))["argument"])
    except (ValueError, KeyError, TypeError):
        return None


def job_body(job: Job) -> str:
    """The job's HTTP body as Cloud Scheduler takes it: base64 of the executions.create body."""
    return base64.b64encode(json.dumps(execution_body(job.argument)).encode()).decode()


def stale_bindings(policy: Mapping[str, Any], member: str) -> list[Mapping[str, Any]]:
    """The conditional bindings an earlier release left for `member` (its event windows'
    `roles/run.developer` with a time condition)."""
    return [b for b in policy.get("bindings") or [] if _member(b, member)
            and str((b.get("condition") or {}).get("title", "")).startswith(CONDITION_TITLE)]


def needs_cleaning(spec: AppSpec, resources: frozenset[str]) -> bool:
    """Whether an earlier release tried to schedule windows on this stack: its scheduler
    account is in the state but not the workflow every later release makes with it."""
    return (f"{spec.service_name}-sched-sa" in resources
            and f"{spec.service_name}-events" not in resources)


def clean(spec: AppSpec, client: Google, services: Iterable[str]) -> list[str]:
    """Remove the conditional bindings an earlier release left on `services` (its create
    wrote them, then failed: nothing tracks them), with a version-3 read and write of each
    service's policy (its etag guards against a concurrent change). The services cleaned."""
    member = f"serviceAccount:{scheduler_email(spec)}"
    cleaned = []
    for service in sorted(set(services)):
        policy = client.service_policy(spec.project, spec.region, service)
        stale = stale_bindings(policy, member)
        if not stale:
            continue
        kept = [b for b in policy.get("bindings") or [] if b not in stale]
        client.set_service_policy(spec.project, spec.region, service, {
            "bindings": kept, "etag": policy.get("etag"), "version": 3})
        cleaned.append(service)
    return cleaned


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
