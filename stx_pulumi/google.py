"""What the preflight asks Google, with the user's own credentials and no gcloud subprocess.

- `default_project`: GOOGLE_CLOUD_PROJECT, else gcloud's project read from its configuration
  files (CLOUDSDK_CORE_PROJECT, CLOUDSDK_CONFIG, the active configuration), as gcloud resolves
  it. (`google.auth.default()` would run gcloud to find a project for user credentials.)
- `load_credentials`: GOOGLE_APPLICATION_CREDENTIALS, else gcloud's application default
  credentials file; any kind google-auth reads (user, service account, workload identity).
- `missing_apis` and `bucket_permissions`: the Service Usage and Cloud Storage JSON APIs.
- `projects`, `billing_enabled`, `enable_apis`, `run_quota` for `setup`: Resource Manager,
  Cloud Billing, Service Usage (a long-running operation) and Cloud Quotas.
- `scheduler_job`, `service_policy`, `account_policy`: what Google holds of an event window's
  jobs (Cloud Scheduler) and of its scheduler account's rights (Cloud Run and IAM policies).

Every call has a timeout. Endpoints are overridable so tests run them against local servers:
STX_SERVICEUSAGE_ENDPOINT, STORAGE_EMULATOR_HOST as Google's storage clients honour it,
STX_SCHEDULER_ENDPOINT, STX_RUN_ENDPOINT, STX_IAM_ENDPOINT, STX_RESOURCEMANAGER_ENDPOINT,
STX_BILLING_ENDPOINT, STX_QUOTAS_ENDPOINT, STX_ARTIFACTREGISTRY_ENDPOINT, STX_LOGGING_ENDPOINT,
STX_RUN_ENDPOINT (also for revisions), and STX_OAUTH_TOKEN_ENDPOINT for
user credentials (google-auth always sends those to Google's token endpoint; service-account and
workload-identity files name their own).
"""

from __future__ import annotations

import configparser
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
LOGIN = "gcloud auth application-default login"
TIMEOUT_S = 10.0
SERVICEUSAGE = "https://serviceusage.googleapis.com"
STORAGE = "https://storage.googleapis.com"
SCHEDULER = "https://cloudscheduler.googleapis.com"
RUN = "https://run.googleapis.com"
IAM = "https://iam.googleapis.com"
RESOURCEMANAGER = "https://cloudresourcemanager.googleapis.com"
BILLING = "https://cloudbilling.googleapis.com"
QUOTAS = "https://cloudquotas.googleapis.com"
ARTIFACTREGISTRY = "https://artifactregistry.googleapis.com"
LOGGING = "https://logging.googleapis.com"
CLOUDKMS = "https://cloudkms.googleapis.com"
KEY_PERMISSIONS = ("cloudkms.cryptoKeyVersions.useToEncrypt",
                   "cloudkms.cryptoKeyVersions.useToDecrypt")
BUCKET_PERMISSIONS = ("storage.objects.create", "storage.objects.get", "storage.objects.list",
                      "storage.objects.delete")


class GoogleError(Exception):
    """A Google call that did not give an answer: what happened, in one line."""


def gcloud_config_dir(environ: Mapping[str, str]) -> Path:
    if environ.get("CLOUDSDK_CONFIG"):
        return Path(environ["CLOUDSDK_CONFIG"])
    return Path(environ.get("HOME") or Path.home()) / ".config" / "gcloud"


def default_project(environ: Mapping[str, str]) -> str | None:
    """GOOGLE_CLOUD_PROJECT, else the project of gcloud's active configuration, else None."""
    for var in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"):
        if environ.get(var):
            return environ[var]
    folder = gcloud_config_dir(environ)
    name = environ.get("CLOUDSDK_ACTIVE_CONFIG_NAME")
    if not name:
        try:
            name = (folder / "active_config").read_text(encoding="utf-8").strip()
        except OSError:
            name = "default"
    parser = configparser.ConfigParser()
    try:
        parser.read(folder / "configurations" / f"config_{name or 'default'}", encoding="utf-8")
    except configparser.Error:
        return None
    return parser.get("core", "project", fallback=None) or None


def credentials_file(environ: Mapping[str, str]) -> Path | None:
    """The credentials file in use: GOOGLE_APPLICATION_CREDENTIALS, else gcloud's ADC file."""
    if environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return Path(environ["GOOGLE_APPLICATION_CREDENTIALS"])
    adc = gcloud_config_dir(environ) / "application_default_credentials.json"
    return adc if adc.is_file() else None


def load_credentials(environ: Mapping[str, str]) -> tuple[Any, str]:
    """Fresh credentials and where they came from; GoogleError when there are none or they
    cannot get a token."""
    from google.auth.exceptions import GoogleAuthError
    from google.auth.transport.requests import Request

    file = credentials_file(environ)
    if file is None:
        raise GoogleError("no application default credentials (no "
                          "GOOGLE_APPLICATION_CREDENTIALS and no gcloud ADC file)")
    try:
        credentials = _from_info(json.loads(file.read_text(encoding="utf-8")))
        if environ.get("STX_OAUTH_TOKEN_ENDPOINT") and hasattr(credentials, "with_token_uri"):
            credentials = credentials.with_token_uri(environ["STX_OAUTH_TOKEN_ENDPOINT"])
        credentials.refresh(_TimedRequest(Request()))
    except (GoogleAuthError, OSError, ValueError, KeyError) as err:
        raise GoogleError(f"{file}: {_one_line(err)}") from None
    return credentials, str(file)


def required_credentials(environ: Mapping[str, str]) -> tuple[Any, str]:
    """`load_credentials`, or PrerequisiteError (exit 3) with the login command: for commands
    that cannot go on without Google."""
    from stx_pulumi.errors import PrerequisiteError

    try:
        return load_credentials(environ)
    except GoogleError as err:
        raise PrerequisiteError(f"credentials: {err}", hint=f"run `{LOGIN}`") from None


def _from_info(info: dict[str, Any]) -> Any:
    """Credentials by the file's `type`, with google-auth's loader for that type (its generic
    loader is deprecated: it would run any executable an external-account file names)."""
    kind = info.get("type")
    if kind == "authorized_user":
        from google.oauth2 import credentials

        return credentials.Credentials.from_authorized_user_info(info, scopes=SCOPES)
    if kind == "service_account":
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
    if kind == "external_account" and "executable" not in (info.get("credential_source")
                                                             or {}):
        from google.auth import aws, identity_pool

        source = info.get("credential_source") or {}
        module = aws if str(source.get("environment_id", "")).startswith("aws") else (
            identity_pool)
        return module.Credentials.from_info(info, scopes=SCOPES)
    if kind == "impersonated_service_account":
        from google.auth import impersonated_credentials
        from google.oauth2 import credentials

        source = credentials.Credentials.from_authorized_user_info(
            info["source_credentials"], scopes=SCOPES)
        return impersonated_credentials.Credentials(
            source, info["service_account_impersonation_url"].rsplit("/", 1)[-1].split(":")[0],
            target_scopes=list(SCOPES), delegates=info.get("delegates") or [])
    raise ValueError(f"credentials of type {kind!r} are not supported here (use a user, "
                     "service-account or workload-identity file)")


def missing_apis(credentials: Any, project: str, apis: tuple[str, ...],
                 environ: Mapping[str, str]) -> list[str]:
    """Which of `apis` are not enabled in `project` (Service Usage `services:batchGet`)."""
    base = environ.get("STX_SERVICEUSAGE_ENDPOINT") or SERVICEUSAGE
    names = [("names", f"projects/{project}/services/{api}") for api in apis]
    data = _get(credentials, f"{base}/v1/projects/{project}/services:batchGet", names)
    enabled = {s.get("config", {}).get("name") or s.get("name", "").rsplit("/", 1)[-1]
               for s in data.get("services", []) if s.get("state") == "ENABLED"}
    return [api for api in apis if api not in enabled]


def bucket_permissions(credentials: Any, bucket: str,
                       environ: Mapping[str, str]) -> list[str]:
    """Which state-backend permissions the caller lacks on `bucket`."""
    host = environ.get("STORAGE_EMULATOR_HOST")
    base = (host if host.startswith("http") else f"http://{host}") if host else STORAGE
    params = [("permissions", p) for p in BUCKET_PERMISSIONS]
    data = _get(credentials, f"{base}/storage/v1/b/{bucket}/iam/testPermissions", params)
    granted = set(data.get("permissions", []))
    return [p for p in BUCKET_PERMISSIONS if p not in granted]


def key_permissions(credentials: Any, key: str, environ: Mapping[str, str]) -> list[str]:
    """Which of encrypt and decrypt the caller lacks on the Cloud KMS key `projects/.../
    cryptoKeys/K` (`cryptoKeys.testIamPermissions`); GoogleError when it does not exist."""
    base = environ.get("STX_CLOUDKMS_ENDPOINT") or CLOUDKMS
    data = _get(credentials, f"{base}/v1/{key}:testIamPermissions", [],
                post={"permissions": list(KEY_PERMISSIONS)})
    granted = set(data.get("permissions", []))
    return [p for p in KEY_PERMISSIONS if p not in granted]


def project_permissions(credentials: Any, project: str, permissions: tuple[str, ...],
                        environ: Mapping[str, str]) -> list[str]:
    """Which of `permissions` the caller lacks on the project (Resource Manager
    `projects.testIamPermissions`; grants on single resources are not seen)."""
    base = environ.get("STX_RESOURCEMANAGER_ENDPOINT") or RESOURCEMANAGER
    data = _get(credentials, f"{base}/v1/projects/{project}:testIamPermissions", [],
                post={"permissions": list(permissions)})
    granted = set(data.get("permissions", []))
    return [p for p in permissions if p not in granted]


def projects(credentials: Any, environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """(project id, name) of every active project the account can see."""
    base = environ.get("STX_RESOURCEMANAGER_ENDPOINT") or RESOURCEMANAGER
    found, token = [], ""
    while True:
        params = [("filter", "lifecycleState:ACTIVE")] + ([("pageToken", token)] if token else [])
        data = _get(credentials, f"{base}/v1/projects", params)
        found += [(p["projectId"], p.get("name") or p["projectId"])
                  for p in data.get("projects", [])]
        token = data.get("nextPageToken") or ""
        if not token:
            return sorted(found)


def billing_enabled(credentials: Any, project: str, environ: Mapping[str, str]) -> bool:
    """Whether the project is linked to an open billing account (Cloud Billing API)."""
    base = environ.get("STX_BILLING_ENDPOINT") or BILLING
    return bool(_get(credentials, f"{base}/v1/projects/{project}/billingInfo", []).get(
        "billingEnabled"))


def enable_apis(credentials: Any, project: str, apis: list[str], environ: Mapping[str, str],
                on_wait: Any = lambda _: None, poll_s: float = 2.0,
                timeout_s: float = 300.0) -> None:
    """Enable `apis` (Service Usage `services:batchEnable`) and wait for the operation."""
    import time

    base = environ.get("STX_SERVICEUSAGE_ENDPOINT") or SERVICEUSAGE
    operation = _get(credentials, f"{base}/v1/projects/{project}/services:batchEnable", [],
                     post={"serviceIds": apis})
    start = time.monotonic()
    while not operation.get("done"):
        if time.monotonic() - start > timeout_s:
            raise GoogleError(f"enabling {', '.join(apis)} did not finish within "
                              f"{timeout_s:g}s (operation {operation.get('name')})")
        on_wait(time.monotonic() - start)
        time.sleep(poll_s)
        operation = _get(credentials, f"{base}/v1/{operation['name']}", [])
    if operation.get("error"):
        raise GoogleError(f"enabling {', '.join(apis)} failed: "
                          f"{_one_line(operation['error'].get('message', ''))}")


def run_quota(credentials: Any, project: str, region: str,
              environ: Mapping[str, str]) -> tuple[float, float] | None:
    """The region's Cloud Run CPU (vCPU) and memory (GiB) allocation quotas (Cloud Quotas
    API: CpuAllocPerProjectRegion in milli-vCPU, MemAllocPerProjectRegion in bytes)."""
    base = environ.get("STX_QUOTAS_ENDPOINT") or QUOTAS
    values = []
    for quota, unit in (("CpuAllocPerProjectRegion", 1000), ("MemAllocPerProjectRegion", 2**30)):
        info = _get(credentials, f"{base}/v1/projects/{project}/locations/global/services/"
                    f"run.googleapis.com/quotaInfos/{quota}", [])
        entries = info.get("dimensionsInfos") or []
        mine = [e for e in entries if (e.get("dimensions") or {}).get("region") == region] or [
            e for e in entries if not (e.get("dimensions") or {}).get("region")]
        if not mine:
            return None
        values.append(float((mine[0].get("details") or {}).get("value", 0)) / unit)
    return values[0], values[1]


def log_entries(credentials: Any, project: str, services: list[str], since: str,
                environ: Mapping[str, str], limit: int = 1000) -> list[dict[str, Any]]:
    """Cloud Run log entries of `services` from `since` (RFC 3339), oldest first (Cloud
    Logging `entries:list`)."""
    base = environ.get("STX_LOGGING_ENDPOINT") or LOGGING
    names = " OR ".join(f'resource.labels.service_name="{s}"' for s in services)
    query = (f'resource.type="cloud_run_revision" AND ({names}) AND timestamp>="{since}"')
    data = _get(credentials, f"{base}/v2/entries:list", [], post={
        "resourceNames": [f"projects/{project}"], "filter": query,
        "orderBy": "timestamp asc", "pageSize": limit})
    return list(data.get("entries") or [])


def tag_image(credentials: Any, digest: str, tag: str, environ: Mapping[str, str]) -> None:
    """Tag the image `digest` (`R-docker.pkg.dev/P/REPO/PKG@sha256:…`) as `tag` through the
    Artifact Registry API (no Docker needed)."""
    from urllib.parse import quote

    host, project, repo, rest = digest.split("/", 3)
    package, _, version = rest.partition("@")
    region = host.removesuffix("-docker.pkg.dev")
    parent = (f"projects/{project}/locations/{region}/repositories/{repo}/packages/"
              f"{quote(package, safe='')}")
    base = environ.get("STX_ARTIFACTREGISTRY_ENDPOINT") or ARTIFACTREGISTRY
    _get(credentials, f"{base}/v1/{parent}/tags", [("tagId", tag)],
         post={"name": f"{parent}/tags/{tag}", "version": f"{parent}/versions/{version}"})


def revision_exists(credentials: Any, project: str, region: str, service: str,
                    revision: str, environ: Mapping[str, str]) -> bool:
    """Whether a Cloud Run revision still exists (Admin API v2)."""
    base = environ.get("STX_RUN_ENDPOINT") or RUN
    try:
        _get(credentials, f"{base}/v2/projects/{project}/locations/{region}/services/"
             f"{service}/revisions/{revision}", [])
    except GoogleError as err:
        if str(err).startswith("HTTP 404"):
            return False
        raise
    return True


def scheduler_job(credentials: Any, project: str, region: str, name: str,
                  environ: Mapping[str, str]) -> dict[str, Any] | None:
    """A Cloud Scheduler job as Google holds it (state, schedule, last attempt), or None."""
    base = environ.get("STX_SCHEDULER_ENDPOINT") or SCHEDULER
    try:
        return _get(credentials, f"{base}/v1/projects/{project}/locations/{region}/jobs/{name}",
                    [])
    except GoogleError as err:
        if str(err).startswith("HTTP 404"):
            return None
        raise


def service_policy(credentials: Any, project: str, region: str, service: str,
                   environ: Mapping[str, str]) -> dict[str, Any]:
    """A Cloud Run service's IAM policy, conditions included (policy version 3)."""
    base = environ.get("STX_RUN_ENDPOINT") or RUN
    return _get(credentials, f"{base}/v2/projects/{project}/locations/{region}/services/"
                f"{service}:getIamPolicy", [("options.requestedPolicyVersion", "3")])


def account_policy(credentials: Any, project: str, email: str,
                   environ: Mapping[str, str]) -> dict[str, Any]:
    """A service account's IAM policy (who may act as it)."""
    base = environ.get("STX_IAM_ENDPOINT") or IAM
    return _get(credentials, f"{base}/v1/projects/{project}/serviceAccounts/{email}"
                ":getIamPolicy", [], post={"options": {"requestedPolicyVersion": 3}})


def _get(credentials: Any, url: str, params: list[tuple[str, str]],
         post: dict[str, Any] | None = None) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {credentials.token}"}
    try:
        if post is None:
            response = httpx.get(url, params=params, timeout=TIMEOUT_S, headers=headers)
        else:
            response = httpx.post(url, params=params, json=post, timeout=TIMEOUT_S,
                                  headers=headers)
    except httpx.HTTPError as err:
        raise GoogleError(f"{url.split('/v1/')[0].split('/storage/')[0]}: "
                          f"{_one_line(err) or type(err).__name__}") from None
    if response.status_code != 200:
        try:
            message = response.json().get("error", {}).get("message", "")
        except ValueError:
            message = response.text[:200]
        raise GoogleError(f"HTTP {response.status_code}: {_one_line(message)}")
    return response.json()


class _TimedRequest:
    """google-auth's transport with a timeout on every token request."""

    def __init__(self, request: Any) -> None:
        self.request = request

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", TIMEOUT_S)
        return self.request(*args, **kwargs)


def _one_line(err: object) -> str:
    text = " ".join(str(err).split())
    return text[:300]
