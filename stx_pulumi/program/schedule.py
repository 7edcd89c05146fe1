"""Event windows in Google Cloud: Cloud Scheduler jobs that warm a service before a class and
bring it back to its base scaling after, with nobody at the keyboard.

Per app: a scheduler account and a Cloud Workflows workflow running as it. Per window and
service: a `warm` job at start − warm and an `end` job at the end, each starting the workflow
with the window's span and scaling (`stx_pulumi.model.events`); the workflow PATCHes the service
only inside that span, so a job's yearly cron firing a year later changes nothing. The
account's rights are all unconditional: update the app's services (`roles/run.developer` on
each), start workflows (`roles/workflows.invoker`: Workflows has project-level IAM only), and
act as the runtime account (updating a service requires it). Jobs whose time has passed are
not (re)created.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_gcp import cloudrunv2, cloudscheduler, projects, serviceaccount, workflows

from stx_pulumi.model import events
from stx_pulumi.model.jobs import (
    ACT_AS_ROLE,
    INVOKER_ROLE,
    UPDATE_ROLE,
    Job,
    job_body,
    planned,
    scheduled_services,
    workflow_name,
)
from stx_pulumi.model.names import service_account_id
from stx_pulumi.model.spec import AppSpec
from stx_pulumi.program.service import Served

SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def schedule(name: str, spec: AppSpec, served: list[Served], runtime_account: Any,
             parent: pulumi.Resource) -> list[Any]:
    """The scheduler account, its rights, the workflow and the jobs of every window not over."""
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
    rights: list[Any] = [serviceaccount.IAMMember(
        f"{name}-sched-act-as", service_account_id=runtime_account.name, role=ACT_AS_ROLE,
        member=member, opts=child)]
    rights.append(projects.IAMMember(
        f"{name}-sched-invoke", project=spec.project, role=INVOKER_ROLE, member=member,
        opts=child))
    scheduled = {svc.name for svc in scheduled_services(spec)}
    rights += [cloudrunv2.ServiceIamMember(
        f"{s.spec.name}-sched-update", name=s.service.name, location=spec.region,
        project=spec.project, role=UPDATE_ROLE, member=member, opts=child)
        for s in served if s.spec.name in scheduled]
    flow = workflows.Workflow(
        f"{name}-events",
        name=workflow_name(spec),
        project=spec.project,
        region=spec.region,
        description=f"stx-pulumi: the event windows of {spec.app} ({spec.env})",
        service_account=account.email,
        source_contents=events.workflow_source(spec.project, spec.region, sorted(scheduled)),
        labels=spec.labels,
        call_log_level="LOG_ERRORS_ONLY",
        deletion_protection=False,  # the provider's default is true: destroy would fail
        opts=child,
    )
    after = pulumi.ResourceOptions(parent=parent, depends_on=[flow, *rights])
    return [account, *rights, flow, *(_job(spec, job, account.email, after)
                                      for job in planned(spec))]


def _job(spec: AppSpec, job: Job, caller: pulumi.Input[str],
         opts: pulumi.ResourceOptions) -> cloudscheduler.Job:
    """One window's job: at its time, it asks the workflow to set one service's scaling."""
    return cloudscheduler.Job(
        job.name,
        name=job.name,
        project=spec.project,
        region=spec.region,
        description=f"stx-pulumi event {job.window.name}: {job.kind} {job.service.name} to "
                    f"min {job.low}, max {job.high}",
        schedule=job.cron,
        time_zone=job.window.tz,
        attempt_deadline="180s",
        retry_config=cloudscheduler.JobRetryConfigArgs(
            retry_count=events.RETRY_COUNT, min_backoff_duration="30s",
            max_backoff_duration=f"{events.MAX_BACKOFF_S}s", max_doublings=3),
        http_target=cloudscheduler.JobHttpTargetArgs(
            uri=events.execution_uri(spec.project, spec.region, workflow_name(spec)),
            http_method="POST",
            body=job_body(job),
            headers={"Content-Type": "application/json"},
            oauth_token=cloudscheduler.JobHttpTargetOauthTokenArgs(
                service_account_email=caller, scope=SCOPE),
        ),
        opts=opts,
    )
