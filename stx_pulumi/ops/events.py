"""Event windows' use cases: a new window read and placed among the stack's, its capacity
checked against the region's quota, the jobs' states and the proof that they will act (from
what Google holds). Nothing here prints: messages go to a `Reporter`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stx_pulumi.errors import GoogleError, InputError, PrerequisiteError, SpecError
from stx_pulumi.model import events

if TYPE_CHECKING:
    from stx_pulumi.model.checks import Check
    from stx_pulumi.model.spec import AppSpec
    from stx_pulumi.ops.report import Reporter
    from stx_pulumi.workspace import Workspace

# What `event add` calls each field of a window, for its errors
OPTIONS = {"name": "--name", "start": "--start", "end": "--end", "tz": "--tz", "warm": "--warm",
           "users": "--users", "min": "--min", "max": "--max", "book": "--book"}


def new_window(name: str | None, values: Mapping[str, Any], long: bool,
               now: datetime) -> events.Window:
    """The window the options describe (named w<YYYYMMDD>-<HHMM> of its start by default):
    in the future and within how far ahead Cloud Scheduler is asked; every problem at once."""
    problems: list[str] = []
    window = events.read_window(name or "w", values, OPTIONS, problems, allow_long=long)
    if window and not name:
        window = events.Window(**{**window.__dict__, "name": events.default_name(window.start)})
    if window and window.start <= now:
        problems.append(f"--start: {window.start:%Y-%m-%d %H:%M} {window.tz} is not in the "
                        "future")
    elif window:
        problems += [p for p in [events.ahead_problem(window, now, "--start")] if p]
    if problems or window is None:
        raise SpecError(problems)
    return window


def place(ws: Workspace, stack: str, window: events.Window) -> None:
    """A new window never merges into a stored one (over or not) nor overlaps one."""
    stored = (ws.stack_config(stack).get("stx:events") or {}) if ws.exists else {}
    if window.name in stored:
        raise InputError(f"--name: the stack already has a window {window.name}: `stx-pulumi "
                         f"event remove` it first, or choose another --name")
    clash = [w.name for w in events.overlaps(window, events.stored_windows(stored, []))]
    if clash:
        raise InputError(f"--start/--end: overlaps the window {clash[0]} of {stack}")


def check_capacity(ws: Workspace, spec: AppSpec, window: events.Window, report: Reporter,
                   quiet: bool = False) -> None:
    """What Cloud Run would refuse at warm time is refused now (exit 2, naming the limit): a
    window whose max the region's quota cannot give. Windows of the project's other stacks
    that overlap it add up (a warning); a peak that raises a revision ceiling is said."""
    from stx_pulumi.cloud import google
    from stx_pulumi.model.capacity import revision_ceiling
    from stx_pulumi.model.checks import FAIL, WARN
    from stx_pulumi.ops.deploy import ceiling_changes
    from stx_pulumi.ops.doctor import project_quota_check

    others = tuple(w for w in spec.windows if w.name != window.name)
    for notice in ceiling_changes(spec, {svc.name: revision_ceiling(spec.peak(svc, others))
                                         for svc in spec.services}):
        report.info(notice.replace("this up makes", "the next up makes"))
    try:
        client = google.connect(os.environ)
    except GoogleError as err:
        report.warning(f"the region's Cloud Run quota was not checked ({err}): `up` checks it")
        return
    check = project_quota_check(ws, spec, client, os.environ)
    if check.status == FAIL:
        raise InputError(f"--max/--users: {check.detail}", hint=check.fix)
    if check.status == WARN and not quiet:
        report.warning(check.detail)


def rehearsed(ws: Workspace, spec: AppSpec, window: events.Window, report: Reporter
              ) -> int | None:
    """The --max the stack's last rehearsal suggested, when this window's is lower (said
    through `report`); None when there is no rehearsal, no suggestion, or no engine here."""
    import json

    from stx_pulumi.engine.stacks import Engine
    from stx_pulumi.errors import StxError
    from stx_pulumi.ops.rehearse import REHEARSAL_TAG

    if not ws.stack_initialized(spec.stack):  # nothing rehearsed (and no engine to make)
        return None
    try:
        kept = Engine(ws, os.environ).tags(spec.stack).get(REHEARSAL_TAG)
        last = json.loads(kept) if kept else {}
    except (StxError, ValueError):
        return None
    suggested = last.get("suggested_max") if isinstance(last, dict) else None
    highest = max(window.scaling(s.concurrency, s.max_instances)[1] for s in spec.services)
    if not isinstance(suggested, int) or suggested <= highest:
        return None
    report.warning(f"the rehearsal of {last.get('at')} ({last.get('students')} students) "
                   f"suggested --max {suggested}; this window allows {highest}: pass "
                   f"--max {suggested} to follow it")
    return suggested


def job_states(spec: AppSpec) -> dict[str, str]:
    """Each planned job's last attempt as Cloud Scheduler reports it; said plainly when it
    cannot be asked (no credentials, or no answer)."""
    from stx_pulumi.cloud import google
    from stx_pulumi.model import jobs

    planned = jobs.planned(spec)
    if not planned:
        return {}
    try:
        client = google.connect(os.environ)
        return {job.name: jobs.last_attempt(client.scheduler_job(
            spec.project, spec.region, job.name)) for job in planned}
    except GoogleError as err:
        return {job.name: f"not checked: {err}" for job in planned}


def prove(spec: AppSpec) -> list[Check]:
    """Every job exists, enabled and timed as planned; the scheduler account holds its rights
    on each service for each window: read from Google now."""
    from stx_pulumi.cloud import google
    from stx_pulumi.model import jobs

    if not spec.windows:
        raise InputError(f"{spec.stack} has no event window to test (`stx-pulumi event add`)")
    client = google.required(os.environ)
    try:
        return jobs.check(spec, client)
    except GoogleError as err:
        raise PrerequisiteError(f"Google refused a read: {err}") from None
