"""Is this machine ready to deploy? The prerequisite checks of `doctor`, also run before `up`.

Every check calls the real executables found on PATH (`pulumi`, `docker`, `gcloud`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from stx_pulumi.checks import FAIL, PASS, WARN, Check
from stx_pulumi.errors import InputError, PrerequisiteError, SpecError
from stx_pulumi.source import has_uncommitted_changes
from stx_pulumi.spec import DOMAIN_MAPPING_REGIONS, AppSpec
from stx_pulumi.workspace import Workspace, default_project

REQUIRED_APIS = ("run.googleapis.com", "artifactregistry.googleapis.com", "iam.googleapis.com")
SECRET_API = "secretmanager.googleapis.com"


def prerequisites(ws: Workspace, spec: AppSpec | None,
                  environ: Mapping[str, str]) -> list[Check]:
    """Every prerequisite of a deployment, as checks."""
    gcloud = shutil.which("gcloud", path=environ.get("PATH"))
    project = spec.project if spec and not spec.project_is_placeholder else (
        default_project(environ))
    checks = [
        pulumi_check(environ),
        docker_check(environ),
        Check("gcloud", PASS, f"found at {gcloud}") if gcloud else Check(
            "gcloud", WARN, "the Google Cloud CLI is not on PATH: credentials and APIs are "
            "checked less", "install it: https://cloud.google.com/sdk/docs/install"),
        credentials_check(gcloud, environ),
        Check("project", PASS, project) if project else Check(
            "project", FAIL, "no Google Cloud project", "pass --project, set "
            "GOOGLE_CLOUD_PROJECT, or run `gcloud config set project ID`"),
    ]
    if project:
        checks.append(apis_check(gcloud, project, bool(spec and spec.secret_env), environ))
    checks += [backend_check(ws, gcloud, environ), secrets_check(ws, environ)]
    if spec and spec.cloudflare_dns:
        checks.append(Check("cloudflare token", PASS, "configured") if spec.has_cloudflare_token
                      else Check("cloudflare token", FAIL, "a Cloudflare zone is set but no "
                                 "token", "set CLOUDFLARE_API_TOKEN"))
    if spec and spec.domain:
        where = ("supports domain mappings" if spec.region in DOMAIN_MAPPING_REGIONS
                 else "has NO Cloud Run domain mappings")
        checks.append(Check("custom domain", WARN, f"{spec.domain}: Google requires the domain "
                            f"to be verified for your account; region {spec.region} {where}",
                            f"gcloud domains verify {spec.domain}"))
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


def require(ws: Workspace, spec: AppSpec, environ: Mapping[str, str]) -> None:
    """Raise PrerequisiteError (exit 3) naming every failed prerequisite, before `up` starts."""
    failed = [c for c in prerequisites(ws, spec, environ) if c.status == FAIL]
    if failed:
        raise PrerequisiteError("; ".join(f"{c.name}: {c.detail}" for c in failed),
                                hint=" | ".join(c.fix for c in failed if c.fix)
                                + " (`stx-pulumi doctor` shows every check)")


def pulumi_check(environ: Mapping[str, str]) -> Check:
    from stx_pulumi.engine import find_cli  # imports pulumi.automation

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


def credentials_check(gcloud: str | None, environ: Mapping[str, str]) -> Check:
    named = _file_from_env("credentials", "GOOGLE_APPLICATION_CREDENTIALS", environ,
                           "point it at a service account key file")
    if named:
        return named
    if gcloud:
        ok, out = _run([gcloud, "auth", "application-default", "print-access-token"], environ)
        if ok:
            return Check("credentials", PASS, "application default credentials (gcloud)")
        return Check("credentials", FAIL, f"no application default credentials ({_first(out)})",
                     "run `gcloud auth application-default login`")
    return Check("credentials", FAIL, "no GOOGLE_APPLICATION_CREDENTIALS and no gcloud",
                 "run `gcloud auth application-default login`")


def apis_check(gcloud: str | None, project: str, secrets: bool,
               environ: Mapping[str, str]) -> Check:
    needed = (*REQUIRED_APIS, SECRET_API) if secrets else REQUIRED_APIS
    if not gcloud:
        return Check("apis", WARN, f"cannot tell whether {', '.join(needed)} are enabled "
                     "(no gcloud)", f"gcloud services enable {' '.join(needed)}")
    ok, out = _run([gcloud, "services", "list", "--enabled", "--project", project,
                    "--format=value(config.name)"], environ, timeout=60)
    if not ok:
        return Check("apis", WARN, f"gcloud could not list the enabled APIs ({_first(out)})",
                     f"gcloud services enable {' '.join(needed)} --project {project}")
    missing = [api for api in needed if api not in out.split()]
    if missing:
        return Check("apis", FAIL, f"not enabled in {project}: {', '.join(missing)}",
                     f"gcloud services enable {' '.join(missing)} --project {project}")
    return Check("apis", PASS, f"{', '.join(a.split('.')[0] for a in needed)} enabled")


def backend_check(ws: Workspace, gcloud: str | None, environ: Mapping[str, str]) -> Check:
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
    if url.startswith("gs://") and gcloud:
        ok, out = _run([gcloud, "storage", "ls", url], environ, timeout=60)
        if ok:
            return Check("backend", PASS, f"{url} reachable")
        return Check("backend", FAIL, f"{url} is not reachable ({_first(out)})",
                     "create the bucket or grant your account access to it")
    return Check("backend", WARN, f"{url}: cannot check it from here", None)


def secrets_check(ws: Workspace, environ: Mapping[str, str]) -> Check:
    provider = ws.settings().get("secretsProvider")
    if provider and provider != "passphrase":
        return Check("secrets", PASS, f"secrets provider {provider}")
    if environ.get("PULUMI_CONFIG_PASSPHRASE") is not None:
        return Check("secrets", PASS, "passphrase from PULUMI_CONFIG_PASSPHRASE")
    named = _file_from_env("secrets", "PULUMI_CONFIG_PASSPHRASE_FILE", environ,
                           "point it at the passphrase file")
    if named:
        return named
    generated = ws.passphrase_file
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
