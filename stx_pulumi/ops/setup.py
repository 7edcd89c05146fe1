"""First-time setup: from a Google login to a project ready for `up`, one checked step at a
time. Each step reads first and acts only when something is missing, so a second run changes
nothing. No printing and no prompting here: the CLI passes `choose` and `confirm`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stx_pulumi.cloud import google
from stx_pulumi.errors import GoogleError, InputError, PrerequisiteError
from stx_pulumi.model.build import is_protected
from stx_pulumi.model.checks import PASS, WARN, Check
from stx_pulumi.model.names import PROJECT_RE, REGION_RE, split_stack_name
from stx_pulumi.model.scan import ANALYSIS_API, SCANNING_API
from stx_pulumi.workspace import (
    DEFAULT_REGION,
    DEPLOY_ENV,
    Workspace,
    deploy_env,
    stack_configs,
)

BASE_APIS = ("run.googleapis.com", "artifactregistry.googleapis.com", "iam.googleapis.com")
BILLING_URL = "https://console.cloud.google.com/billing/linkedaccount?project={project}"


@dataclass
class Setup:
    """What setup found and did, step by step."""

    project: str = ""
    region: str = DEFAULT_REGION
    billing_account: str | None = None  # the project's: a budget's default
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
    if not PROJECT_RE.fullmatch(project):
        raise InputError(f"--project: {project!r} is not a project id (6-30 lowercase letters, "
                         "digits or '-', starting with a letter)")
    out.steps.append(Check("project", PASS, f"{project} (from {source})"))
    return project


def _region(ws: Workspace, cwd: Path, given: str | None, out: Setup) -> str:
    saved = ws.settings() if ws.exists else {}
    region = (given or deploy_env([cwd, ws.root]).get("GCP_REGION") or saved.get("region")
              or DEFAULT_REGION)
    if not REGION_RE.fullmatch(region):
        raise InputError(f"--region: {region!r} is not a region such as europe-west1")
    out.steps.append(Check("region", PASS, region))
    return region


def _billing(client: google.Google, out: Setup) -> None:
    try:
        enabled = client.billing_enabled(out.project)
        out.billing_account = client.billing_account(out.project) if enabled else None
    except GoogleError as err:
        raise PrerequisiteError(f"billing: cannot read the billing of {out.project}: {err}",
                                hint="enable the Cloud Billing API, or check your access "
                                "to the project") from None
    if not enabled:
        raise PrerequisiteError(
            f"billing is not enabled on {out.project}: Cloud Run needs a billing account",
            hint=f"link one at {BILLING_URL.format(project=out.project)}; Cloud Run bills by "
            "use (`stx-pulumi cost` shows the idle cost: near zero)")
    out.steps.append(Check("billing", PASS, f"enabled (account {out.billing_account})"
                           if out.billing_account else "enabled"))


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
    for _, config in stack_configs(ws):
        for api in ("cloudbuild.googleapis.com", "storage.googleapis.com"):
            if config.get("stx:builder") == "cloud" and api not in apis:
                apis.append(api)
        if config.get("stx:secretEnv") and "secretmanager.googleapis.com" not in apis:
            apis.append("secretmanager.googleapis.com")
        for api in ("cloudscheduler.googleapis.com", "workflows.googleapis.com"):
            if config.get("stx:events") and api not in apis:
                apis.append(api)
    if any(is_protected(config, split_stack_name(stack)[1]) for stack, config in
           stack_configs(ws)):  # the vulnerability gate: scans of protected envs' images
        apis += [a for a in (SCANNING_API, ANALYSIS_API, "monitoring.googleapis.com")
                 if a not in apis]
    return apis


def _quota(client: google.Google, ws: Workspace, out: Setup) -> None:
    """Every stack of the workspace in this project and region against the region's Cloud
    Run quota: a service asking more than it allows would be refused at deploy time."""
    from stx_pulumi.model import capacity
    from stx_pulumi.model.events import clock
    from stx_pulumi.ops.doctor import quota_check
    from stx_pulumi.workspace import located

    now = clock()
    demands = [d for stack, config in stack_configs(ws)
               if located(ws, config, client.environ) == (out.project, out.region)
               for d in capacity.of_config(stack, config, now)]
    if not demands:
        out.steps.append(Check("quota", PASS, "no stack yet: checked on your first `up`"))
        return
    try:
        quota = client.run_quota(out.project, out.region)
    except GoogleError as err:
        out.steps.append(Check("quota", WARN, f"not checked: {err}"))
        return
    if quota is None:
        out.steps.append(Check("quota", WARN, f"no Cloud Run quota found for {out.region}"))
        return
    out.steps.append(quota_check(demands, quota, out.project, out.region))


def _record(ws: Workspace, cwd: Path, save_env: bool, out: Setup) -> None:
    """The project and region as the workspace default (and in .stx-deploy.env if asked),
    written only when they differ."""
    from stx_pulumi.workspace import create_workspace

    saved = ws.settings() if ws.exists else {}
    known = (saved.get("project"), saved.get("region"), saved.get("billingAccount"))
    if known != (out.project, out.region, out.billing_account):
        (ws if ws.exists else create_workspace(ws.root)).save_settings(
            project=out.project, region=out.region, billingAccount=out.billing_account)
        out.changed.append(f"recorded {out.project} in {out.region} as the workspace default")
    if save_env:
        from dotenv import set_key

        file = cwd / DEPLOY_ENV
        current = deploy_env([cwd])
        for key, value in (("GCP_PROJECT_ID", out.project), ("GCP_REGION", out.region)):
            if current.get(key) != value:
                set_key(str(file), key, value, quote_mode="never")
                out.changed.append(f"wrote {key}={value} to {file.name}")
        _ignore_in_git(cwd, out)


def _ignore_in_git(cwd: Path, out: Setup) -> None:
    """In a git work tree, .stx-deploy.env is listed in the folder's .gitignore: it holds
    deploy settings (and, for StreamTeX, may hold secrets) that never belong in a commit."""
    from stx_pulumi.source import in_git_work_tree
    from stx_pulumi.workspace.files import list_in

    if in_git_work_tree(cwd.resolve()) and list_in(cwd / ".gitignore", (DEPLOY_ENV,)):
        out.changed.append(f"added {DEPLOY_ENV} to .gitignore (it never belongs in a commit)")
