"""The offline plan, as a tree for people or as data for --json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.tree import Tree

from stx_pulumi.render.console import (
    UNKNOWN,
    label,
    ordered_outputs,
    safe,
    stdout,
)

if TYPE_CHECKING:
    from stx_pulumi.engine.plan import Plan, PlannedResource


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as data: every resource below the stack, outputs, warnings."""
    spec = plan.spec
    return {
        "stack": spec.stack,
        "app": spec.app,
        "env": spec.env,
        "project": spec.project,
        "region": spec.region,
        "image_tag": spec.image_tag,
        "resources": [
            {"type": r.type, "name": r.name, "parent": r.parent, "inputs": r.inputs}
            for r in plan.resources
        ],
        "outputs": ordered_outputs(plan.outputs),
        "warnings": plan.warnings,
    }


def plan_tree(plan: Plan) -> None:
    """The desired state as a tree, then the warnings, then what the plan did not touch."""
    spec = plan.spec
    console = stdout()
    project = spec.project + (" (placeholder)" if spec.project_is_placeholder else "")
    tree = Tree(f"[bold]{spec.stack}[/]  project {safe(project)}, region {spec.region}")
    for resource in _in_order(plan.resources):
        if resource.custom:
            _resource_node(tree, resource)
    console.print(tree)
    outputs = {k: v for k, v in ordered_outputs(plan.outputs).items()
               if k not in ("dns_records", "books")}
    console.print("[bold]Outputs[/]  " + ", ".join(
        f"{k}={UNKNOWN if v is None else v}" for k, v in outputs.items()))
    for book, values in sorted((plan.outputs.get("books") or {}).items()):
        console.print(f"  book {safe(book)}: service {safe(values.get('service'))}, FOLDER "
                      f"{safe(values.get('folder'))}, instances {values.get('min_instances')}"
                      f"–{values.get('max_instances')}")
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {safe(warning)}")
    console.print("[dim]Offline plan: nothing in the cloud was read or changed. "
                  "`stx-pulumi up` deploys it.[/]")


WATCH_ORDER = ("gcp:monitoring/notificationChannel:NotificationChannel",
               "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig",
               "gcp:monitoring/alertPolicy:AlertPolicy", "gcp:monitoring/dashboard:Dashboard",
               "gcp:billing/budget:Budget", "gcp:pubsub/topic:Topic")


def _is_watch(r: PlannedResource) -> bool:
    return r.type in WATCH_ORDER or "-guard" in r.name or r.type.startswith("gcp:eventarc/")


def _in_order(resources: list[PlannedResource]) -> list[PlannedResource]:
    """The app's resources as the program registered them, then what watches it, in a fixed
    order (they register from many callbacks at once: their order would vary)."""
    watch = sorted((r for r in resources if _is_watch(r)), key=lambda r: (
        WATCH_ORDER.index(r.type) if r.type in WATCH_ORDER else len(WATCH_ORDER), r.name))
    return [r for r in resources if not _is_watch(r)] + watch


def _resource_node(tree: Tree, r: PlannedResource) -> None:
    node = tree.add(f"[cyan]{label(r.type, r.name)}[/] {safe(r.name)}")
    for line in _details(r):
        node.add(safe(line))


def _details(r: PlannedResource) -> list[str]:
    i = r.inputs
    if "-guard" in r.name or r.type.startswith(("gcp:monitoring/", "gcp:billing/",
                                                 "gcp:pubsub/", "gcp:eventarc/")):
        return _watch_details(r)
    if r.type == "gcp:artifactregistry/repository:Repository":
        keep = [p for p in i.get("cleanupPolicies") or [] if p.get("mostRecentVersions")]
        count = keep[0]["mostRecentVersions"].get("keepCount") if keep else None
        tagged = [t for p in i.get("cleanupPolicies") or [] if p.get("action") == "KEEP"
                  for t in (p.get("condition") or {}).get("tagPrefixes") or []]
        kept = f" and every image tagged {', '.join(t + '*' for t in tagged)}" if tagged else ""
        scanned = (i.get("vulnerabilityScanningConfig") or {}).get("enablementConfig")
        return [f"{i.get('repositoryId')} in {i.get('location')}, Docker format",
                f"cleanup: keeps the {count} newest images{kept}, deletes older ones",
                "vulnerability scanning on (the project's): the gate before prod" if
                scanned == "INHERITED" else "vulnerability scanning off"]
    if r.type == "docker:index/image:Image":
        build = i.get("build") or {}
        return [f"{i.get('imageName') or UNKNOWN}",
                f"built for {build.get('platform')} from {_near(build.get('context'))}, pushed"]
    if r.type == "gcp:serviceaccount/account:Account":
        if r.name.endswith("-build-sa"):
            return [f"{i.get('accountId')}: cloud build identity, pushes to this repository "
                    "and writes logs only"]
        role = "event scheduler" if str(i.get("accountId")).endswith("-sched") else "runtime"
        return [f"{i.get('accountId')}: {role} identity, no project-level roles"]
    if r.type == "gcp:storage/bucket:Bucket":
        age = ((i.get("lifecycleRules") or [{}])[0].get("condition") or {}).get("age")
        return [f"gs://{i.get('name')} in {i.get('location')}: build uploads, deleted after "
                f"{age} days"]
    if r.type == "gcp:projects/iAMMember:IAMMember" and r.name.endswith("-sched-invoke"):
        return [f"{i.get('member')} → {i.get('role')} on the project (Workflows has no "
                "narrower scope)"]
    if r.type in ("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
                  "gcp:storage/bucketIAMMember:BucketIAMMember",
                  "gcp:projects/iAMMember:IAMMember"):
        return [f"build account → {i.get('role')}"]
    if r.type == "gcp:workflows/workflow:Workflow":
        return [f"{i.get('name')} in {i.get('region')}, as {i.get('serviceAccount') or UNKNOWN}: "
                "scales a service only inside the window a job gives it"]
    if r.type == "gcp:serviceaccount/iAMMember:IAMMember":
        return [f"{i.get('member')} → {i.get('role')} on the runtime account"]
    if r.type == "gcp:cloudscheduler/job:Job":
        return _job_details(i)
    if r.type == "gcp:secretmanager/secretIamMember:SecretIamMember":
        return [f"{i.get('role')} on secret {i.get('secretId')}"]
    if r.type == "gcp:cloudrunv2/service:Service":
        return _service_details(i)
    if r.type == "gcp:cloudrunv2/serviceIamMember:ServiceIamMember":
        when = (i.get("condition") or {}).get("expression")
        return [f"{i.get('member')} → {i.get('role')}"] + ([f"only if {when}"] if when else [])
    if r.type == "gcp:cloudrun/domainMapping:DomainMapping":
        cert = (i.get("spec") or {}).get("certificateMode")
        return [f"{i.get('name')} → service {(i.get('spec') or {}).get('routeName')}, "
                f"certificate {cert}"]
    if r.type == "cloudflare:index/dnsRecord:DnsRecord":
        proxied = "proxied" if i.get("proxied") else "DNS only"
        return [f"{i.get('name')} {i.get('type')} {i.get('content')} ({proxied}, ttl "
                f"{i.get('ttl')}), zone {i.get('zoneId')}"]
    if r.type == "pulumi:providers:cloudflare":
        return [f"API token {i.get('apiToken')}"]
    return []


def _watch_details(r: PlannedResource) -> list[str]:
    """Alerts, dashboard, budget and the spend guard, as a course author reads them."""
    i = r.inputs
    if r.type == "gcp:monitoring/notificationChannel:NotificationChannel":
        return [f"email to {(i.get('labels') or {}).get('email_address')}"]
    if r.type == "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig":
        return [f"GET {(i.get('httpCheck') or {}).get('path')} every {i.get('period')}"]
    if r.type == "gcp:monitoring/alertPolicy:AlertPolicy":
        notify = len(i.get("notificationChannels") or [])
        return [f"{i.get('displayName')} → {notify} address(es)" if notify
                else f"{i.get('displayName')} (no address: console and status only)"]
    if r.type == "gcp:monitoring/dashboard:Dashboard":
        return ["requests, 5xx, 429s, active instances against the max, billable time"]
    if r.type == "gcp:billing/budget:Budget":
        amount = ((i.get("amount") or {}).get("specifiedAmount") or {})
        rules = ", ".join(f"{r['thresholdPercent']:.0%}" for r in i.get("thresholdRules") or [])
        return [f"${amount.get('units')} {amount.get('currencyCode')} a month on billing "
                f"account {i.get('billingAccount')}, alerts at {rules}"]
    if r.type == "gcp:pubsub/topic:Topic":
        return [f"{i.get('name')}: the budget's notifications"]
    if r.type == "gcp:eventarc/trigger:Trigger":
        return ["on each budget notification, starts the spend guard workflow"]
    if r.type == "gcp:workflows/workflow:Workflow":
        return [f"{i.get('name')}: once the month's cost reached the budget, every service "
                "back to its base scaling"]
    if r.type == "gcp:serviceaccount/account:Account":
        return [f"{i.get('accountId')}: spend guard identity"]
    return [f"{i.get('member')} → {i.get('role')}"] if i.get("role") else []


def _job_details(i: dict[str, Any]) -> list[str]:
    import base64

    target = i.get("httpTarget") or {}
    try:
        args = json.loads(json.loads(base64.b64decode(target.get("body") or ""))["argument"])
        scaling = (f"{args['service']} to min {args['min']}, max {args['max']}")
    except (ValueError, KeyError, TypeError):
        scaling = "?"
    workflow = str(target.get("uri") or "").removesuffix("/executions").rsplit("/", 1)[-1]
    return [f"cron '{i.get('schedule')}' in {i.get('timeZone')}: starts {workflow or UNKNOWN} "
            f"to scale {scaling} (only inside the window)",
            f"as {(target.get('oauthToken') or {}).get('serviceAccountEmail') or UNKNOWN}"]


def _near(path: str | None) -> str:
    """A path relative to the current folder when it is below it."""
    if not path:
        return UNKNOWN
    here = Path.cwd()
    return str(Path(path).relative_to(here)) if Path(path).is_relative_to(here) else path


def _service_details(i: dict[str, Any]) -> list[str]:
    template = i.get("template") or {}
    container = (template.get("containers") or [{}])[0]
    scaling = i.get("scaling") or {}
    limits = (container.get("resources") or {}).get("limits") or {}
    port = ((container.get("ports") or {}).get("containerPort"))
    envs = container.get("envs") or []
    probe = container.get("startupProbe") or {}
    window = (probe.get("periodSeconds") or 0) * (probe.get("failureThreshold") or 0)
    affinity = "on" if template.get("sessionAffinity") else "off"
    lines = [
        f"region {i.get('location')}, image {container.get('image') or UNKNOWN}",
        f"instances {scaling.get('minInstanceCount')}–{scaling.get('maxInstanceCount')} "
        "(service-level scaling)",
        f"{limits.get('cpu')} vCPU, {limits.get('memory')}, concurrency "
        f"{template.get('maxInstanceRequestConcurrency')}, timeout {template.get('timeout')}, "
        f"session affinity {affinity}, port {port}",
        f"startup probe: TCP on {port}, up to {window}s",
        f"deletion protection {'on' if i.get('deletionProtection') else 'off'}",
    ]
    for env in envs:
        if env.get("valueSource"):
            ref = (env["valueSource"].get("secretKeyRef") or {})
            lines.append(f"env {env.get('name')} ← secret {ref.get('secret')}:{ref.get('version')}")
        else:
            lines.append(f"env {env.get('name')}={env.get('value')}")
    return lines
