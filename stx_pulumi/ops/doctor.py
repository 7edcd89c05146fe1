"""Is this machine ready to deploy? The prerequisite checks of `doctor`, also run before `up`.

Google is asked through its APIs with the user's credentials (google.py), never through a
gcloud subprocess. The checks run concurrently, each with a timeout, so the preflight takes
about as long as its slowest check; `up` runs only those its operation needs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from stx_pulumi.cloud.google import Google, connect
from stx_pulumi.errors import GoogleError, InputError, PrerequisiteError, SpecError
from stx_pulumi.model import capacity
from stx_pulumi.model.checks import FAIL, PASS, SKIP, WARN, Check
from stx_pulumi.model.scan import ANALYSIS_API, SCANNING_API
from stx_pulumi.model.spec import DOMAIN_MAPPING_REGIONS, AppSpec
from stx_pulumi.model.team import TEAM_STACK
from stx_pulumi.source import has_uncommitted_changes
from stx_pulumi.workspace import Workspace, default_project

REQUIRED_APIS = ("run.googleapis.com", "artifactregistry.googleapis.com", "iam.googleapis.com")
SECRET_API = "secretmanager.googleapis.com"
SCHEDULER_APIS = ("cloudscheduler.googleapis.com", "workflows.googleapis.com")  # event windows
BUILD_APIS = ("cloudbuild.googleapis.com", "storage.googleapis.com")  # the cloud builder
MONITORING_API = "monitoring.googleapis.com"  # alerts, uptime checks, the dashboard
BUDGET_API = "billingbudgets.googleapis.com"  # the spend guard
GUARD_APIS = ("pubsub.googleapis.com", "eventarc.googleapis.com", "workflows.googleapis.com")
ADC_FIX = ("run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS), "
           "then `stx-pulumi setup`")


def prerequisites(ws: Workspace, spec: AppSpec | None, environ: Mapping[str, str], *,
                  pulumi: Callable[[], Check] | None = None,
                  docker: Callable[[], Check] | None = None) -> list[Check]:
    """Every prerequisite of a deployment, as checks, run concurrently. `pulumi` and `docker`
    replace those two checks (up has found the CLI already, and builds only a new tag)."""
    project = spec.project if spec and not spec.project_is_placeholder else (
        default_project(environ, ws))
    with ThreadPoolExecutor(max_workers=6) as pool:
        cli = pool.submit(pulumi or (lambda: pulumi_check(environ)))
        daemon = pool.submit(docker or (lambda: docker_check(environ)))
        secrets = pool.submit(secrets_check, ws, environ)
        client: Google | None
        try:
            client = connect(environ)
            creds = Check("credentials", PASS, f"usable ({client.source})")
        except GoogleError as err:
            client, creds = None, Check("credentials", FAIL, err.message, ADC_FIX)
        apis = pool.submit(apis_check, client, project, _apis(spec)) if project else None
        backend = pool.submit(backend_check, ws, client, environ)
        key = pool.submit(key_check, ws, client) if (
            ws.secrets_provider() or "").startswith("gcpkms://") else None
        team = pool.submit(team_check, ws, client) if (
            ws.team_files.stack_file(TEAM_STACK).is_file()) else None
        scheduling = pool.submit(scheduler_check, client, project) if (
            spec and spec.windows and project) else None
        quota = pool.submit(project_quota_check, ws, spec, client, environ) if (
            spec and not spec.project_is_placeholder) else None
        building = pool.submit(build_check, client, project) if (
            spec and spec.builder == "cloud" and project) else None
        budget = pool.submit(currency_check, client, spec) if (
            spec and spec.watch.budget_usd is not None
            and not spec.watch.placeholder_account) else None
        install = pool.submit(install_check, ws, environ)
        checks = [cli.result(), daemon.result(), creds]
        checks.append(Check("project", PASS, project) if project else Check(
            "project", FAIL, "no Google Cloud project", "run `stx-pulumi setup` (it lists "
            "your projects), or pass --project"))
        checks += [apis.result()] if apis else []
        checks += [backend.result(), secrets.result()]
        checks += [c.result() for c in (key, team) if c is not None]
        checks += [scheduling.result()] if scheduling else []
        checks += [building.result()] if building else []
        checks += [budget.result()] if budget else []
        checks += [quota.result()] if quota else []
        checks += [c for c in [install.result()] if c is not None]
    return checks + _spec_prerequisites(spec)


# What deploying event windows asks of the deploying identity: the jobs and the workflow, and
# the scheduler account's right to start workflows (project-level only), and the account and
# its other rights (also grantable on single resources, so a gap seen at project level is a
# warning).
SCHEDULER_PERMISSIONS = ("cloudscheduler.jobs.create", "cloudscheduler.jobs.update",
                         "cloudscheduler.jobs.delete", "workflows.workflows.create",
                         "workflows.workflows.update", "workflows.workflows.delete",
                         "resourcemanager.projects.setIamPolicy")
ACCOUNT_PERMISSIONS = ("iam.serviceAccounts.create", "iam.serviceAccounts.actAs",
                       "iam.serviceAccounts.setIamPolicy", "run.services.setIamPolicy")


def scheduler_check(client: Google | None, project: str) -> Check:
    """May the deploying identity create the windows' jobs, account and rights?"""
    if client is None:
        return Check("scheduler", SKIP, "not checked without credentials")
    try:
        missing = client.project_permissions(project,
                                             SCHEDULER_PERMISSIONS + ACCOUNT_PERMISSIONS)
    except GoogleError as err:
        return Check("scheduler", WARN, f"permissions not checked: {err}")
    hard = [p for p in missing if p in SCHEDULER_PERMISSIONS]
    if hard:
        return Check("scheduler", FAIL, f"missing on {project}: {', '.join(hard)}",
                     "grant roles/cloudscheduler.admin, roles/workflows.editor and "
                     "roles/resourcemanager.projectIamAdmin on the project (see docs/events.md, "
                     "the permissions)")
    if missing:
        return Check("scheduler", WARN, f"not granted project-wide: {', '.join(missing)} "
                     "(fine if granted on the accounts and services themselves)")
    return Check("scheduler", PASS, "may create the event jobs, workflow, account and rights")


# What the cloud builder asks of the deploying identity: create builds, upload the context,
# run the build as the stack's build account (and create that account and its bindings).
BUILD_PERMISSIONS = ("cloudbuild.builds.create", "cloudbuild.builds.get",
                     "storage.objects.create", "iam.serviceAccounts.actAs",
                     "iam.serviceAccounts.create", "storage.buckets.create",
                     "resourcemanager.projects.setIamPolicy")


def build_check(client: Google | None, project: str) -> Check:
    """May the deploying identity build in Cloud Build as the stack's build account?"""
    if client is None:
        return Check("cloud build", SKIP, "not checked without credentials")
    try:
        missing = client.project_permissions(project, BUILD_PERMISSIONS)
    except GoogleError as err:
        return Check("cloud build", WARN, f"permissions not checked: {err}")
    if missing:
        return Check("cloud build", FAIL, f"missing on {project}: {', '.join(missing)}",
                     "grant roles/cloudbuild.builds.editor, roles/storage.admin, "
                     "roles/iam.serviceAccountUser and roles/iam.serviceAccountAdmin (see "
                     "docs/building.md)")
    return Check("cloud build", PASS, "may build in Cloud Build as the stack's build account")


def quota_check(demands: list[capacity.Demand], quota: tuple[float, float], project: str,
                region: str) -> Check:
    """The check of `demands` against the quota: FAIL for a service Google would refuse, WARN
    when together they ask more than the quota, else PASS with the headroom."""
    hard, soft = capacity.problems(demands, quota, region)
    fix = "ask for more at " + capacity.QUOTA_URL.format(project=project)
    if hard:
        return Check("quota", FAIL, "; ".join(hard), fix + ", or lower the maximum")
    if soft:
        return Check("quota", WARN, "; ".join(soft), fix)
    peak = max(demands, key=lambda d: d.peak * d.cpu)
    return Check("quota", PASS, f"{region}: {quota[0]:g} vCPU, {quota[1]:g} GiB → at most "
                 f"{capacity.limit(quota, peak.cpu, peak.gib)} instances of {peak.cpu} "
                 f"vCPU/{peak.gib:g} GiB; {peak.stack} asks up to {peak.peak}")


def project_quota_check(ws: Workspace, spec: AppSpec, client: Google | None,
                        environ: Mapping[str, str]) -> Check:
    """The spec's services (their peak: base and windows) with every other stack of the
    workspace in its project and region, against the region's Cloud Run quota."""
    from stx_pulumi.workspace import located, stack_configs

    if client is None:
        return Check("quota", SKIP, "not checked without credentials", ADC_FIX)
    demands = capacity.of_spec(spec) + [
        d for stack, config in stack_configs(ws) if stack != spec.stack
        and located(ws, config, environ) == (spec.project, spec.region)
        for d in capacity.of_config(stack, config, spec.now)]
    try:
        quota = client.run_quota(spec.project, spec.region)
    except GoogleError as err:
        return Check("quota", WARN, f"not checked: {err}")
    if quota is None:
        return Check("quota", WARN, f"no Cloud Run quota found for {spec.region}")
    return quota_check(demands, quota, spec.project, spec.region)


def currency_check(client: Google | None, spec: AppSpec) -> Check:
    """The budget compares USD estimates with a USD amount: the billing account must bill in
    USD (its `currencyCode`, Cloud Billing's billingAccounts.get), never a EUR budget read as
    dollars. No conversion: a rate of the day would make a budget that moves by itself."""
    account = str(spec.watch.billing_account)
    if client is None:
        return Check("budget", SKIP, f"billing account {account} not checked without "
                     "credentials")
    try:
        currency = client.billing_currency(account)
    except GoogleError as err:
        return Check("budget", FAIL, f"cannot read billing account {account}: {err}",
                     "grant roles/billing.viewer on the account, or check --billing-account")
    if currency != "USD":
        return Check("budget", FAIL, f"billing account {account} bills in {currency}: stx-pulumi "
                     "compares its USD estimates with USD budgets only",
                     "set the budget in the Cloud Console, and leave --budget unset")
    return Check("budget", PASS, f"${spec.watch.budget_usd:g} a month on billing account "
                 f"{account} (USD)")


def _spec_prerequisites(spec: AppSpec | None) -> list[Check]:
    checks: list[Check] = []
    if spec is None:
        return checks
    if spec.cloudflare_dns:
        checks.append(Check("cloudflare token", PASS, "configured") if spec.has_cloudflare_token
                      else Check("cloudflare token", FAIL, "a Cloudflare zone is set but no "
                                 "token", "set CLOUDFLARE_API_TOKEN"))
    for domain in spec.domains:
        where = ("supports domain mappings" if spec.region in DOMAIN_MAPPING_REGIONS
                 else "has NO Cloud Run domain mappings")
        checks.append(Check("custom domain", WARN, f"{domain}: Google requires the domain "
                            f"to be verified for your account; region {spec.region} {where}",
                            f"gcloud domains verify {domain}"))
    return checks


def app_checks(spec: AppSpec | None, error: InputError | None) -> list[Check]:
    """The app's own checks: its spec is valid, its folder is committed."""
    if error is not None:
        problems = error.problems if isinstance(error, SpecError) else [error.message]
        return [Check("spec", FAIL, problem) for problem in problems]
    if spec is None:
        return []
    checks = [Check("spec", PASS, f"{spec.stack} is valid ({spec.image_tag})")]
    if has_uncommitted_changes(spec.source):
        checks.append(Check("app folder", WARN, f"{spec.source} has uncommitted changes: the "
                            "image tag comes from a content hash, not the commit",
                            "commit the app to deploy a tagged commit"))
    return checks


def require(ws: Workspace, spec: AppSpec, environ: Mapping[str, str], *,
            pulumi: Callable[[], Check] | None = None,
            docker: Callable[[], Check] | None = None) -> None:
    """Raise PrerequisiteError (exit 3) naming every failed prerequisite, before `up` starts."""
    checks = prerequisites(ws, spec, environ, pulumi=pulumi, docker=docker)
    refused = [c for c in checks if c.status == FAIL and c.name == "quota"]
    if refused:  # Cloud Run would refuse it at deploy time: bad input, nothing changed
        raise InputError(f"--max: {refused[0].detail}", hint=refused[0].fix)
    failed = [c for c in checks if c.status == FAIL]
    if failed:
        raise PrerequisiteError("; ".join(f"{c.name}: {c.detail}" for c in failed),
                                hint=" | ".join(c.fix for c in failed if c.fix)
                                + " (`stx-pulumi doctor` shows every check)")


def pulumi_check(environ: Mapping[str, str]) -> Check:
    from stx_pulumi.engine.cli import find_cli  # imports pulumi.automation

    try:
        command = find_cli(environ)
    except PrerequisiteError as err:
        return Check("pulumi", FAIL, err.message, err.hint)
    return Check("pulumi", PASS, f"Pulumi CLI {command.version} at {command.command}")


def docker_check(environ: Mapping[str, str]) -> Check:
    docker = shutil.which("docker", path=environ.get("PATH"))
    if not docker:
        return Check("docker", FAIL, "docker is not on PATH (the image is built locally)",
                     "install Docker: https://docs.docker.com/get-docker/")
    ok, out = _run([docker, "info", "--format", "{{.ServerVersion}}"], environ, timeout=15)
    if ok:
        return Check("docker", PASS, f"Docker daemon {out or 'reachable'}")
    return Check("docker", FAIL, f"the Docker daemon is not reachable ({_first(out)})",
                 "start Docker: `docker info` must work")


def _apis(spec: AppSpec | None) -> tuple[str, ...]:
    """The APIs this deployment uses: always Cloud Run, Artifact Registry and IAM; Secret
    Manager with secret env vars; Cloud Scheduler with event windows."""
    extra = [SECRET_API] if spec and spec.secret_env else []
    extra += list(SCHEDULER_APIS) if spec and spec.windows else []
    extra += list(BUILD_APIS) if spec and spec.builder == "cloud" else []
    extra += [MONITORING_API] if spec and spec.watch.alerts else []
    extra += [SCANNING_API, ANALYSIS_API] if spec and spec.protected else []
    extra += [BUDGET_API, *GUARD_APIS] if spec and spec.watch.budget_usd is not None else []
    return (*REQUIRED_APIS, *extra)


def apis_check(client: Google | None, project: str, needed: tuple[str, ...]) -> Check:
    enable = f"gcloud services enable {' '.join(needed)} --project {project}"
    if client is None:
        return Check("apis", SKIP, "not checked without credentials", enable)
    try:
        missing = client.missing_apis(project, needed)
    except GoogleError as err:
        return Check("apis", WARN, f"could not list the enabled APIs of {project} ({err})",
                     enable)
    if missing:
        return Check("apis", FAIL, f"not enabled in {project}: {', '.join(missing)}",
                     f"run `stx-pulumi setup --project {project} --yes` (or `gcloud services "
                     f"enable {' '.join(missing)} --project {project}`)")
    return Check("apis", PASS, f"{', '.join(a.split('.')[0] for a in needed)} enabled")


def backend_check(ws: Workspace, client: Google | None, environ: Mapping[str, str]) -> Check:
    url = ws.backend_url(environ)
    if url.startswith("file://"):
        folder = Path(url.removeprefix("file://"))
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        try:
            with tempfile.NamedTemporaryFile(dir=existing):
                pass
        except OSError as err:
            return Check("backend", FAIL, f"{url} is not writable ({err.strerror})",
                         "choose another backend with `stx-pulumi init --backend`")
        return Check("backend", PASS, f"{url} (local file backend)")
    if url.startswith("gs://"):
        bucket = url.removeprefix("gs://").split("/", 1)[0]
        return _allowed("backend", url, client,
                        lambda c: c.bucket_permissions(bucket),
                        "create the bucket or grant your account access to it",
                        "grant your account roles/storage.objectAdmin on the bucket",
                        "reachable and writable")
    return Check("backend", WARN, f"{url}: cannot check it from here", None)


def _allowed(name: str, what: str, client: Google | None, lacking: Callable[[Google], list[str]],
             unreachable_fix: str, missing_fix: str, passed: str) -> Check:
    """What this identity may do with one resource (its testIamPermissions): skipped without
    credentials, failed when the resource cannot be read or a permission lacks."""
    if client is None:
        return Check(name, SKIP, f"{what}: not checked without credentials", ADC_FIX)
    try:
        missing = lacking(client)
    except GoogleError as err:
        return Check(name, FAIL, f"{what} is not reachable ({err})", unreachable_fix)
    if missing:
        return Check(name, FAIL, f"{what}: missing {', '.join(missing)}", missing_fix)
    return Check(name, PASS, f"{what} {passed}")


def key_check(ws: Workspace, client: Google | None) -> Check:
    """The team's KMS key exists and this identity may encrypt and decrypt with it."""
    key = str(ws.secrets_provider()).removeprefix("gcpkms://")
    return _allowed("secrets key", key, client,
                    lambda c: c.key_permissions(key),
                    "run `stx-pulumi team setup` (it makes the key), or ask who ran it",
                    "ask a teammate to run `stx-pulumi team setup --member user:YOU@...`",
                    "usable: encrypt and decrypt allowed")


def team_check(ws: Workspace, client: Google | None) -> Check:
    """The team stack's CI accounts exist (when it has a GitHub identity)."""
    from stx_pulumi.model.team import DEPLOYER, PREVIEWER

    config = ws.team_files.stack_config(TEAM_STACK)
    project, repo = config.get("gcp:project"), config.get("team:github")
    if not repo:
        return Check("team", PASS, f"team stack of {project}: state bucket and key (no GitHub)")
    if client is None:
        return Check("team", SKIP, "the CI accounts: not checked without credentials", ADC_FIX)
    missing = []
    for account in (DEPLOYER, PREVIEWER):
        try:
            client.account_policy(str(project), f"{account}@{project}.iam.gserviceaccount.com")
        except GoogleError:
            missing.append(account)
    if missing:
        return Check("team", FAIL, f"{', '.join(missing)} not found in {project}",
                     "run `stx-pulumi team setup` again")
    return Check("team", PASS, f"{repo} deploys as {DEPLOYER}, previews as {PREVIEWER}")


def secrets_check(ws: Workspace, environ: Mapping[str, str]) -> Check:
    provider = ws.secrets_provider()
    if provider and provider != "passphrase":
        return Check("secrets", PASS, f"secrets provider {provider}")
    if environ.get("PULUMI_CONFIG_PASSPHRASE") is not None:
        return Check("secrets", PASS, "passphrase from PULUMI_CONFIG_PASSPHRASE")
    named = _file_from_env("secrets", "PULUMI_CONFIG_PASSPHRASE_FILE", environ,
                           "point it at the passphrase file")
    if named:
        return named
    generated = ws.passphrase_file
    shared = ws.backend_url(environ)
    if not shared.startswith("file://"):  # state others read, secrets only this machine can
        return Check("secrets", WARN, f"the passphrase is generated on this machine, the "
                     f"backend {shared} shared: teammates and CI cannot decrypt its secrets",
                     "run `stx-pulumi team setup` to move them to the team's KMS key")
    if generated.is_file():
        return Check("secrets", PASS, f"generated passphrase in {generated} (back it up)")
    if ws.exists and ws.has_encrypted_stacks():
        return Check("secrets", FAIL, f"{generated} does not exist, but stacks in "
                     f"{ws.stacks_dir} were encrypted with it", "restore it from your backup, "
                     "or set PULUMI_CONFIG_PASSPHRASE (or _FILE) to that passphrase")
    return Check("secrets", PASS, f"a passphrase will be generated into {generated} on first up")


def _file_from_env(name: str, var: str, environ: Mapping[str, str], fix: str) -> Check | None:
    """The check of a file an environment variable names; None when it is not set."""
    file = environ.get(var)
    if not file:
        return None
    if Path(file).is_file():
        return Check(name, PASS, f"{var}={file}")
    return Check(name, FAIL, f"{var} names {file}, which does not exist", fix)


def install_check(ws: Workspace, environ: Mapping[str, str]) -> Check | None:
    """Whether the install line of the workflow `ci github` wrote names what pip resolves on
    this machine (an unpublished version fails every CI run at its first step). pip has no
    API: "the only supported way to use pip is via subprocess" (pip's docs, "Using pip from
    your program"), so this is `pip install --dry-run`, bounded in time."""
    from stx_pulumi.model.workflow import WORKFLOW_FILE
    from stx_pulumi.workspace import load_yaml

    root = ws.repository_root()
    file = root / WORKFLOW_FILE
    if not file.is_file():
        return None
    name = "CI install"
    try:
        spec = _install_spec(load_yaml(file))
    except InputError as err:
        return Check(name, WARN, err.message)
    fix = ("publish that version, or run `stx-pulumi ci github --install SPEC` with one that "
           "resolves (a requirement, a git URL or a path in the repository)")
    if spec is None:
        return None
    if spec.startswith((".", "/")):
        found = (root / spec).exists()
        return Check(name, PASS if found else WARN, f"{WORKFLOW_FILE} installs {spec}"
                     + ("" if found else f", which is not in {root}"), None if found else fix)
    if "://" in spec or spec.startswith("git+"):
        return Check(name, SKIP, f"{WORKFLOW_FILE} installs {spec} (a URL: not fetched here)")
    ok, out = _run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps",
                    "--ignore-installed", "--quiet", "--disable-pip-version-check", spec],
                   environ, timeout=60)
    if ok:
        return Check(name, PASS, f"{WORKFLOW_FILE} installs {spec}: pip resolves it here")
    return Check(name, WARN, f"{WORKFLOW_FILE} installs {spec}, which pip cannot resolve on "
                 f"this machine ({_first(out)}): every CI run would fail at its first step", fix)


def _install_spec(data: Mapping[str, object]) -> str | None:
    """The INSTALL env of a workflow's install step."""
    jobs = data.get("jobs")
    for job in jobs.values() if isinstance(jobs, dict) else ():
        steps = job.get("steps") if isinstance(job, dict) else None
        for step in steps if isinstance(steps, list) else ():
            env = step.get("env") if isinstance(step, dict) else None
            if isinstance(env, dict) and isinstance(env.get("INSTALL"), str):
                return str(env["INSTALL"])
    return None


def _run(argv: list[str], environ: Mapping[str, str], timeout: float = 30) -> tuple[bool, str]:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                env=dict(environ), check=False)
    except subprocess.TimeoutExpired:
        return False, f"no answer within {timeout:g}s"
    except OSError as err:
        return False, str(err)
    return result.returncode == 0, (result.stdout if result.returncode == 0
                                    else result.stderr or result.stdout).strip()


def _first(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0][:200] if lines else "no output"
