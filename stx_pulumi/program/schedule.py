"""Event windows in Google Cloud: Cloud Scheduler jobs that warm a service before a class and
bring it back to its base scaling after, with nobody at the keyboard.

Per window and service: a `warm` job at start − warm and an `end` job at the end, each a PATCH
of the service's scaling through the Cloud Run Admin API with an OAuth token of a dedicated
scheduler account. That account may update the service only inside the window: its
`roles/run.developer` binding on the service carries the window's time span as an IAM
condition (Cloud Run services accept conditional bindings), so when a job's yearly cron fires
again a year later, Google refuses it and nothing changes. It also needs to act as the runtime
account (updating a service requires it). Jobs whose time has passed are not (re)created.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pulumi
from pulumi_gcp import cloudrunv2, cloudscheduler, serviceaccount

from stx_pulumi import events
from stx_pulumi.jobs import ACT_AS_ROLE, UPDATE_ROLE, planned
from stx_pulumi.program.service import Served
from stx_pulumi.spec import AppSpec, service_account_id

SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def schedule(name: str, spec: AppSpec, served: list[Served], runtime_account: Any,
             parent: pulumi.Resource) -> list[Any]:
    """The scheduler account, its rights and the jobs of every window not yet over."""
    if not spec.windows:
        return []
    child = pulumi.ResourceOptions(parent=parent)
    account = serviceaccount.Account(
        f"{name}-sched-sa",
        account_id=service_account_id(spec.app, spec.env, "sched"),
        display_name=f"StreamTeX {spec.app} ({spec.env}) event scheduler",
        project=spec.project,
        opts=child,
    )
    member = pulumi.Output.concat("serviceAccount:", account.email)
    act_as = serviceaccount.IAMMember(
        f"{name}-sched-act-as",
        service_account_id=runtime_account.name,
        role=ACT_AS_ROLE,
        member=member,
        opts=child,
    )
    made: list[Any] = [account, act_as]
    for window in spec.windows:
        for s in served:
            if window.covers(s.spec.book):
                made += _window_jobs(window, s, spec, account.email, member, act_as, parent)
    return made


def _window_jobs(window: events.Window, served: Served, spec: AppSpec,
                 email: pulumi.Output[str], member: pulumi.Output[str], act_as: Any,
                 parent: pulumi.Resource) -> list[Any]:
    svc = served.spec
    title, expression = events.iam_condition(window)
    right = cloudrunv2.ServiceIamMember(
        f"{svc.name}-{window.name}-update",
        name=served.service.name,
        location=spec.region,
        project=spec.project,
        role=UPDATE_ROLE,
        member=member,
        condition=cloudrunv2.ServiceIamMemberConditionArgs(
            title=title, expression=expression,
            description=f"only during event {window.name}: its jobs repeat every year"),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    made: list[Any] = [right]
    for job in planned(spec):
        if job.window != window or job.service != svc:
            continue
        made.append(cloudscheduler.Job(
            job.name,
            name=job.name,
            project=spec.project,
            region=spec.region,
            description=f"stx-pulumi event {window.name}: {job.kind} {svc.name} to min "
                        f"{job.low}, max {job.high}",
            schedule=job.cron,
            time_zone=window.tz,
            attempt_deadline="180s",
            retry_config=cloudscheduler.JobRetryConfigArgs(
                retry_count=events.RETRY_COUNT, min_backoff_duration="30s",
                max_backoff_duration=f"{events.MAX_BACKOFF_S}s", max_doublings=3),
            http_target=cloudscheduler.JobHttpTargetArgs(
                uri=events.service_uri(spec.project, spec.region, svc.name),
                http_method="PATCH",
                body=base64.b64encode(json.dumps(events.scaling_body(job.low, job.high))
                                      .encode()).decode(),
                headers={"Content-Type": "application/json"},
                oauth_token=cloudscheduler.JobHttpTargetOauthTokenArgs(
                    service_account_email=email, scope=SCOPE),
            ),
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[right, act_as]),
        ))
    return made
