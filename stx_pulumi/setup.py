"""First-time setup: from a Google login to a project ready for `up`, one checked step at a
time. Each step reads first and acts only when something is missing, so a second run changes
nothing. No printing and no prompting here: the CLI passes `choose` and `confirm`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stx_pulumi import google
from stx_pulumi.checks import PASS, WARN, Check
from stx_pulumi.errors import GoogleError, InputError, PrerequisiteError
from stx_pulumi.spec import CPU_MEMORY_MIB, MEMORY_RE, PROJECT_RE, REGION_RE
from stx_pulumi.workspace import DEPLOY_ENV, Workspace, deploy_env

BASE_APIS = ("run.googleapis.com", "artifactregistry.googleapis.com", "iam.googleapis.com")
BILLING_URL = "https://console.cloud.google.com/billing/linkedaccount?project={project}"
QUOTA_URL = ("https://console.cloud.google.com/iam-admin/quotas?project={project}"
             "&service=run.googleapis.com")
DEFAULT_REGION = "europe-west1"


@dataclass
class Setup:
    """What setup found and did, step by step."""

    project: str = ""
    region: str = DEFAULT_REGION
    steps: list[Check] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


def run(ws: Workspace, cwd: Path, environ: Mapping[str, str], *, project: str | None,
        region: str | None, save_env: bool, choose: Callable[[list[tuple[str, str]]], str],
        confirm: Callable[[list[str]], bool],
        on_wait: Callable[[float], None] = lambda _: None) -> Setup:
    """The six steps; PrerequisiteError (exit 3) or InputError (exit 2) stops at the step that
    cannot go on, having changed nothing after it."""
    out = Setup()
    client = _credentials(environ, out)
    out.project = _project(client, ws, cwd, environ, project, choose, out)
    out.region = _region(ws, cwd, region, out)
    _billing(client, out)
    _apis(client, needed_apis(ws), confirm, on_wait, out)
    _quota(client, ws, out)
    _record(ws, cwd, save_env, out)
    return out


def _credentials(environ: Mapping[str, str], out: Setup) -> google.Google:
    client = google.required(environ)
    out.steps.append(Check("credentials", PASS, f"usable ({client.source})"))
    return client


def _project(client: google.Google, ws: Workspace, cwd: Path, environ: Mapping[str, str],
             given: str | None, choose: Callable[[list[tuple[str, str]]], str],
             out: Setup) -> str:
    """--project, GOOGLE_CLOUD_PROJECT, .stx-deploy.env, the workspace default, gcloud's
    configuration (the precedence every command uses), else a pick from the projects the
    account can see."""
    saved = ws.settings() if ws.exists else {}
    gcloud = {k: v for k, v in environ.items() if k != "GOOGLE_CLOUD_PROJECT"}
    known = [(project, source) for project, source in (
        (given, "--project"),
        (environ.get("GOOGLE_CLOUD_PROJECT"), "GOOGLE_CLOUD_PROJECT"),
        (deploy_env([cwd, ws.root]).get("GCP_PROJECT_ID"), DEPLOY_ENV),
        (saved.get("project"), "the workspace default"),
        (google.default_project(gcloud), "gcloud's configuration")) if project]
    if known:
        project, source = known[0]
    else:
        try:
            found = client.projects()
        except GoogleError as err:
            raise PrerequisiteError(f"project: cannot list your projects: {err}",
                                    hint="pass --project") from None
        if not found:
            raise PrerequisiteError("project: your account sees no project",
                                    hint="create one at https://console.cloud.google.com/"
                                    "projectcreate, then pass --project")
        project, source = choose(found), "your choice"
    if not PROJECT_RE.match(project):
        raise InputError(f"--project: {project!r} is not a project id (6-30 lowercase letters, "
                         "digits or '-', starting with a letter)")
    out.steps.append(Check("project", PASS, f"{project} (from {source})"))
    return project


def _region(ws: Workspace, cwd: Path, given: str | None, out: Setup) -> str:
    saved = ws.settings() if ws.exists else {}
    region = (given or deploy_env([cwd, ws.root]).get("GCP_REGION") or saved.get("region")
              or DEFAULT_REGION)
    if not REGION_RE.match(region):
        raise InputError(f"--region: {region!r} is not a region such as europe-west1")
    out.steps.append(Check("region", PASS, region))
    return region


def _billing(client: google.Google, out: Setup) -> None:
    try:
        enabled = client.billing_enabled(out.project)
    except GoogleError as err:
        raise PrerequisiteError(f"billing: cannot read the billing of {out.project}: {err}",
                                hint="enable the Cloud Billing API, or check your access "
                                "to the project") from None
    if not enabled:
        raise PrerequisiteError(
            f"billing is not enabled on {out.project}: Cloud Run needs a billing account",
            hint=f"link one at {BILLING_URL.format(project=out.project)}; Cloud Run bills by "
            "use (`stx-pulumi cost` shows the idle cost: near zero)")
    out.steps.append(Check("billing", PASS, "enabled"))


def _apis(client: google.Google, needed: list[str], confirm: Callable[[list[str]], bool],
          on_wait: Callable[[float], None], out: Setup) -> None:
    missing = client.missing_apis(out.project, tuple(needed))
    if not missing:
        out.steps.append(Check("apis", PASS, f"enabled: {', '.join(needed)}"))
        return
    if not confirm(missing):
        raise InputError(f"--yes: {', '.join(missing)} must be enabled on {out.project}: pass "
                         "--yes (or answer yes) to enable them; nothing was changed")
    try:
        client.enable_apis(out.project, missing, on_wait=on_wait)
    except GoogleError as err:
        raise PrerequisiteError(f"apis: {err}", hint="you need roles/serviceusage."
                                "serviceUsageAdmin on the project") from None
    out.changed.append(f"enabled {', '.join(missing)}")
    out.steps.append(Check("apis", PASS, f"enabled now: {', '.join(missing)}"))


def needed_apis(ws: Workspace) -> list[str]:
    """The APIs the workspace's stacks use: Cloud Run, Artifact Registry and IAM always;
    Secret Manager with secret env vars, Cloud Scheduler and Workflows with event windows, Cloud
    Build and
    Cloud Storage with the cloud builder (`stx:builder: cloud`)."""
    apis = list(BASE_APIS)
    for config in _stack_configs(ws):
        for api in ("cloudbuild.googleapis.com", "storage.googleapis.com"):
            if config.get("stx:builder") == "cloud" and api not in apis:
                apis.append(api)
        if config.get("stx:secretEnv") and "secretmanager.googleapis.com" not in apis:
            apis.append("secretmanager.googleapis.com")
        for api in ("cloudscheduler.googleapis.com", "workflows.googleapis.com"):
            if config.get("stx:events") and api not in apis:
                apis.append(api)
    return apis


def largest_service(ws: Workspace) -> tuple[int, int, float, str] | None:
    """(max instances, vCPU, GiB, stack) of the service asking the most of the region's
    quota, from every stack file of the workspace (books and event windows included)."""
    worst = None
    for stack, config in _stack_configs(ws, named=True):
        books = config.get("stx:books") if isinstance(config.get("stx:books"), dict) else {}
        events = config.get("stx:events") if isinstance(config.get("stx:events"), dict) else {}
        for own in [{}, *[b for b in books.values() if isinstance(b, dict)]]:
            cpu = _int(own.get("cpu", config.get("stx:cpu")), 1)
            gib = _gib(str(own.get("memory", config.get("stx:memory") or "512Mi")), cpu)
            high = max([_int(own.get("maxInstances", config.get("stx:maxInstances")), 10)]
                       + [_int(w.get("max"), 0) for w in events.values()
                          if isinstance(w, dict)])
            need = max(high * cpu, high * gib / 2)
            if worst is None or need > worst[0]:
                worst = (need, (high, cpu, gib, stack))
    return worst[1] if worst else None


def effective_max(cpu_quota: float, mem_quota_gib: float, cpu: int, gib: float) -> int:
    """Instances one service can have: the region's CPU quota over its vCPU, and its memory
    quota over its GiB ("About maximum instances", Cloud Run docs)."""
    return int(min(cpu_quota / cpu, mem_quota_gib / gib))


def _quota(client: google.Google, ws: Workspace, out: Setup) -> None:
    largest = largest_service(ws)
    if largest is None:
        out.steps.append(Check("quota", PASS, "no stack yet: checked on your first `up`"))
        return
    high, cpu, gib, stack = largest
    try:
        quota = client.run_quota(out.project, out.region)
    except GoogleError as err:
        out.steps.append(Check("quota", WARN, f"not checked: {err}"))
        return
    if quota is None:
        out.steps.append(Check("quota", WARN, f"no Cloud Run quota found for {out.region}"))
        return
    limit = effective_max(quota[0], quota[1], cpu, gib)
    detail = (f"{out.region}: {quota[0]:g} vCPU, {quota[1]:g} GiB → at most {limit} instances "
              f"of {cpu} vCPU/{gib:g} GiB; {stack} asks up to {high}")
    if high > limit:
        out.steps.append(Check("quota", WARN, detail, "ask for more at "
                               + QUOTA_URL.format(project=out.project)))
    else:
        out.steps.append(Check("quota", PASS, detail))


def _record(ws: Workspace, cwd: Path, save_env: bool, out: Setup) -> None:
    """The project and region as the workspace default (and in .stx-deploy.env if asked),
    written only when they differ."""
    from stx_pulumi.workspace import create_workspace

    saved = ws.settings() if ws.exists else {}
    if (saved.get("project"), saved.get("region")) != (out.project, out.region):
        (ws if ws.exists else create_workspace(ws.root)).save_settings(
            project=out.project, region=out.region)
        out.changed.append(f"recorded {out.project} in {out.region} as the workspace default")
    if save_env:
        from dotenv import set_key

        file = cwd / DEPLOY_ENV
        current = deploy_env([cwd])
        for key, value in (("GCP_PROJECT_ID", out.project), ("GCP_REGION", out.region)):
            if current.get(key) != value:
                set_key(str(file), key, value, quote_mode="never")
                out.changed.append(f"wrote {key}={value} to {file.name}")


def _stack_configs(ws: Workspace, named: bool = False) -> list[Any]:
    out = []
    for file in sorted(ws.stacks_dir.glob("Pulumi.*.yaml")) if ws.exists else []:
        stack = file.name.removeprefix("Pulumi.").removesuffix(".yaml")
        config = ws.stack_config(stack)
        out.append((stack, config) if named else config)
    return out


def _int(value: Any, default: int) -> int:
    try:
        return int(float(value)) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _gib(memory: str, cpu: int) -> float:
    match = MEMORY_RE.match(memory)
    if not match:
        return CPU_MEMORY_MIB.get(cpu, (512, 0))[0] / 1024
    return int(match.group(1)) / (1 if match.group(2) == "Gi" else 1024)
