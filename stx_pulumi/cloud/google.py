"""One client for every call stx-pulumi makes to Google, with the user's own credentials and no
gcloud subprocess.

- Where: one endpoint table (`ENDPOINTS`), each entry Google's base URL and the variable that
  replaces it (tests point them at local fakes; the live suite leaves them unset).
- Who: `connect` loads the credentials in use (GOOGLE_APPLICATION_CREDENTIALS, else gcloud's
  application default credentials; any kind google-auth reads) and gets a token; the client
  refreshes it before it expires, so a `logs --follow` longer than a token's life keeps going.
  STX_OAUTH_TOKEN_ENDPOINT replaces the token endpoint of user credentials (google-auth sends
  those to Google's; service-account and workload-identity files name their own).
- How: one httpx client, a timeout on every call, and one error: `GoogleError` (in the
  `StxError` tree) carries the HTTP status (None when no answer came). Errors are mapped here
  and nowhere else; callers test `err.status`, never the text.

What it asks, by API: Service Usage (enabled APIs, enabling them), Cloud Storage (bucket
permissions, the cloud build's upload), Cloud KMS and Resource Manager (permissions), Cloud
Billing, Cloud Quotas (Cloud Run's regional quota), Cloud Run Admin v2 (revisions, IAM
policies), IAM (service-account policies), Cloud Scheduler (jobs), Workflows (the event
windows' workflow), Cloud Logging, Artifact Registry (tags; its Docker registry API for
`promote`) and Cloud Build.
"""

from __future__ import annotations

import configparser
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from stx_pulumi.errors import GoogleError, PrerequisiteError

if TYPE_CHECKING:
    import httpx

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
LOGIN = "gcloud auth application-default login"
TIMEOUT_S = 10.0
# api → (Google's base URL, the environment variable that replaces it)
ENDPOINTS: dict[str, tuple[str, str]] = {
    "artifactregistry": ("https://artifactregistry.googleapis.com",
                         "STX_ARTIFACTREGISTRY_ENDPOINT"),
    "cloudbilling": ("https://cloudbilling.googleapis.com", "STX_BILLING_ENDPOINT"),
    "cloudbuild": ("https://cloudbuild.googleapis.com", "STX_CLOUDBUILD_ENDPOINT"),
    "cloudkms": ("https://cloudkms.googleapis.com", "STX_CLOUDKMS_ENDPOINT"),
    "cloudquotas": ("https://cloudquotas.googleapis.com", "STX_QUOTAS_ENDPOINT"),
    "cloudresourcemanager": ("https://cloudresourcemanager.googleapis.com",
                             "STX_RESOURCEMANAGER_ENDPOINT"),
    "cloudscheduler": ("https://cloudscheduler.googleapis.com", "STX_SCHEDULER_ENDPOINT"),
    "iam": ("https://iam.googleapis.com", "STX_IAM_ENDPOINT"),
    "logging": ("https://logging.googleapis.com", "STX_LOGGING_ENDPOINT"),
    "monitoring": ("https://monitoring.googleapis.com", "STX_MONITORING_ENDPOINT"),
    "containeranalysis": ("https://containeranalysis.googleapis.com", "STX_ANALYSIS_ENDPOINT"),
    "run": ("https://run.googleapis.com", "STX_RUN_ENDPOINT"),
    "serviceusage": ("https://serviceusage.googleapis.com", "STX_SERVICEUSAGE_ENDPOINT"),
    # as Google's own storage clients honour it (a host, or a URL)
    "storage": ("https://storage.googleapis.com", "STORAGE_EMULATOR_HOST"),
    "workflows": ("https://workflows.googleapis.com", "STX_WORKFLOWS_ENDPOINT"),
    # Artifact Registry's Docker registry API: `https://<region>-docker.pkg.dev`
    "registry": ("https://{host}", "STX_REGISTRY_ENDPOINT"),
}
INSTANCE_COUNT = "run.googleapis.com/container/instance_count"
KEY_PERMISSIONS = ("cloudkms.cryptoKeyVersions.useToEncrypt",
                   "cloudkms.cryptoKeyVersions.useToDecrypt")
BUCKET_PERMISSIONS = ("storage.objects.create", "storage.objects.get", "storage.objects.list",
                      "storage.objects.delete")


def endpoint(api: str, environ: Mapping[str, str], host: str = "") -> str:
    """The base URL of `api`: its override when set, else Google's."""
    default, var = ENDPOINTS[api]
    base = (environ.get(var) or default).replace("{host}", host).rstrip("/")
    return base if base.startswith("http") else f"http://{base}"  # STORAGE_EMULATOR_HOST


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
    except (configparser.Error, UnicodeDecodeError):
        return None
    return parser.get("core", "project", fallback=None) or None


def credentials_file(environ: Mapping[str, str]) -> Path | None:
    """The credentials file in use: GOOGLE_APPLICATION_CREDENTIALS, else gcloud's ADC file."""
    if environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return Path(environ["GOOGLE_APPLICATION_CREDENTIALS"])
    adc = gcloud_config_dir(environ) / "application_default_credentials.json"
    return adc if adc.is_file() else None


def connect(environ: Mapping[str, str]) -> Google:
    """A client with fresh credentials; GoogleError (status None) when there are none or
    they cannot get a token."""
    from google.auth.exceptions import GoogleAuthError

    file = credentials_file(environ)
    if file is None:
        raise GoogleError("no application default credentials (no "
                          "GOOGLE_APPLICATION_CREDENTIALS and no gcloud ADC file)")
    try:
        credentials = _from_info(json.loads(file.read_text(encoding="utf-8")))
        if environ.get("STX_OAUTH_TOKEN_ENDPOINT") and hasattr(credentials, "with_token_uri"):
            credentials = credentials.with_token_uri(environ["STX_OAUTH_TOKEN_ENDPOINT"])
        client = Google(credentials, environ, str(file))
        client.token()
    except (GoogleAuthError, OSError, ValueError, KeyError) as err:
        raise GoogleError(f"{file}: {_one_line(err)}") from None
    return client


def required(environ: Mapping[str, str]) -> Google:
    """`connect`, or PrerequisiteError (exit 3) with the login command: for commands that
    cannot go on without Google."""
    try:
        return connect(environ)
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


class Google:
    """Google's REST APIs with one identity: `call` for JSON methods, `request` for the rest
    (uploads, the registry). Thread-safe: the fleet's workers share one."""

    def __init__(self, credentials: Any, environ: Mapping[str, str], source: str = "") -> None:
        self.credentials = credentials
        self.environ = environ
        self.source = source  # where the credentials came from
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None

    # -- plumbing ----------------------------------------------------------------------------

    def token(self) -> str:
        """A valid access token: refreshed when it expires within google-auth's margin."""
        with self._lock:
            if not self.credentials.valid:
                from google.auth.transport.requests import Request

                self.credentials.refresh(_TimedRequest(Request()))
            return str(self.credentials.token)

    def url(self, api: str, path: str, host: str = "") -> str:
        return f"{endpoint(api, self.environ, host)}/{path.lstrip('/')}"

    def request(self, method: str, url: str, *, params: Iterable[tuple[str, str]] = (),
                body: Any = None, content: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeout: float = TIMEOUT_S,
                ok: Callable[[int], bool] = lambda status: status < 300) -> httpx.Response:
        """One HTTP call with a fresh token; GoogleError unless `ok(status)`."""
        import httpx
        from google.auth.exceptions import GoogleAuthError

        try:
            auth = {"Authorization": f"Bearer {self.token()}"}
        except GoogleAuthError as err:
            raise GoogleError(f"{self.source or 'credentials'}: {_one_line(err)}") from None
        if self._http is None:
            self._http = httpx.Client(follow_redirects=True)
        try:
            response = self._http.request(method, url, params=list(params) or None, json=body,
                                          content=content, headers={**auth, **(headers or {})},
                                          timeout=timeout)
        except httpx.HTTPError as err:
            raise GoogleError(f"{_host(url)}: {_one_line(err) or type(err).__name__}") from None
        if not ok(response.status_code):
            raise GoogleError(f"HTTP {response.status_code}: {_message(response)}",
                              status=response.status_code)
        return response

    def call(self, method: str, api: str, path: str, params: Iterable[tuple[str, str]] = (),
             body: Any = None, host: str = "") -> dict[str, Any]:
        """A JSON method of `api` (`path` after the base URL); its answer."""
        response = self.request(method, self.url(api, path, host), params=params, body=body)
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError:
            raise GoogleError(f"{_host(response.request.url)}: an answer that is not JSON",
                              status=response.status_code) from None
        return data if isinstance(data, dict) else {"value": data}

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    # -- Service Usage, Storage, KMS, Resource Manager, Billing, Quotas ---------------------

    def missing_apis(self, project: str, apis: tuple[str, ...]) -> list[str]:
        """Which of `apis` are not enabled in `project` (Service Usage `services:batchGet`)."""
        names = [("names", f"projects/{project}/services/{api}") for api in apis]
        data = self.call("GET", "serviceusage", f"v1/projects/{project}/services:batchGet",
                         names)
        enabled = {s.get("config", {}).get("name") or s.get("name", "").rsplit("/", 1)[-1]
                   for s in data.get("services", []) if s.get("state") == "ENABLED"}
        return [api for api in apis if api not in enabled]

    def enable_apis(self, project: str, apis: list[str],
                    on_wait: Callable[[float], None] = lambda _: None, poll_s: float = 2.0,
                    timeout_s: float = 300.0) -> None:
        """Enable `apis` (Service Usage `services:batchEnable`) and wait for the operation."""
        operation = self.call("POST", "serviceusage",
                              f"v1/projects/{project}/services:batchEnable",
                              body={"serviceIds": apis})
        self.wait(operation, "serviceusage", f"enabling {', '.join(apis)}", on_wait, poll_s,
                  timeout_s)

    def wait(self, operation: dict[str, Any], api: str, what: str,
             on_wait: Callable[[float], None] = lambda _: None, poll_s: float = 2.0,
             timeout_s: float = 300.0) -> dict[str, Any]:
        """A long-running operation polled until done; GoogleError when it failed."""
        import time

        start = time.monotonic()
        while not operation.get("done"):
            if time.monotonic() - start > timeout_s:
                raise GoogleError(f"{what} did not finish within {timeout_s:g}s (operation "
                                  f"{operation.get('name')})")
            on_wait(time.monotonic() - start)
            time.sleep(poll_s)
            operation = self.call("GET", api, f"v1/{operation['name']}")
        if operation.get("error"):
            raise GoogleError(f"{what} failed: "
                              f"{_one_line(operation['error'].get('message', ''))}")
        return operation

    def bucket_permissions(self, bucket: str) -> list[str]:
        """Which state-backend permissions the caller lacks on `bucket`."""
        params = [("permissions", p) for p in BUCKET_PERMISSIONS]
        data = self.call("GET", "storage", f"storage/v1/b/{bucket}/iam/testPermissions",
                         params)
        granted = set(data.get("permissions", []))
        return [p for p in BUCKET_PERMISSIONS if p not in granted]

    def upload(self, bucket: str, name: str, data: bytes, media: str) -> None:
        """One object into `bucket` (the Storage JSON API's media upload, `objects.insert`)."""
        self.request("POST", self.url("storage", f"upload/storage/v1/b/{bucket}/o"),
                     params=[("uploadType", "media"), ("name", name)], content=data,
                     headers={"Content-Type": media}, timeout=max(TIMEOUT_S, len(data) / 1e6))

    def key_permissions(self, key: str) -> list[str]:
        """Which of encrypt and decrypt the caller lacks on the Cloud KMS key `projects/.../
        cryptoKeys/K` (`cryptoKeys.testIamPermissions`); GoogleError when it does not exist."""
        data = self.call("POST", "cloudkms", f"v1/{key}:testIamPermissions",
                         body={"permissions": list(KEY_PERMISSIONS)})
        granted = set(data.get("permissions", []))
        return [p for p in KEY_PERMISSIONS if p not in granted]

    def project_permissions(self, project: str, permissions: tuple[str, ...]) -> list[str]:
        """Which of `permissions` the caller lacks on the project (Resource Manager
        `projects.testIamPermissions`; grants on single resources are not seen)."""
        data = self.call("POST", "cloudresourcemanager",
                         f"v1/projects/{project}:testIamPermissions",
                         body={"permissions": list(permissions)})
        granted = set(data.get("permissions", []))
        return [p for p in permissions if p not in granted]

    def project_policy(self, project: str) -> dict[str, Any]:
        """The project's IAM policy (Resource Manager `projects.getIamPolicy`)."""
        return self.call("POST", "cloudresourcemanager", f"v1/projects/{project}:getIamPolicy",
                         body={"options": {"requestedPolicyVersion": 3}})

    def projects(self) -> list[tuple[str, str]]:
        """(project id, name) of every active project the account can see."""
        found, token = [], ""
        while True:
            params = [("filter", "lifecycleState:ACTIVE")] + (
                [("pageToken", token)] if token else [])
            data = self.call("GET", "cloudresourcemanager", "v1/projects", params)
            found += [(p["projectId"], p.get("name") or p["projectId"])
                      for p in data.get("projects", [])]
            token = data.get("nextPageToken") or ""
            if not token:
                return sorted(found)

    def billing_enabled(self, project: str) -> bool:
        """Whether the project is linked to an open billing account (Cloud Billing API)."""
        return bool(self.call("GET", "cloudbilling", f"v1/projects/{project}/billingInfo")
                    .get("billingEnabled"))

    def billing_account(self, project: str) -> str | None:
        """The project's billing account id (`XXXXXX-XXXXXX-XXXXXX`), None without one."""
        name = self.call("GET", "cloudbilling", f"v1/projects/{project}/billingInfo").get(
            "billingAccountName")
        return str(name).rsplit("/", 1)[-1] if name else None

    def billing_currency(self, account: str) -> str:
        """The currency a billing account bills in (billingAccounts.get's currencyCode)."""
        return str(self.call("GET", "cloudbilling", f"v1/billingAccounts/{account}").get(
            "currencyCode") or "")

    def run_quota(self, project: str, region: str) -> tuple[float, float] | None:
        """The region's Cloud Run CPU (vCPU) and memory (GiB) allocation quotas (Cloud Quotas
        API: CpuAllocPerProjectRegion in milli-vCPU, MemAllocPerProjectRegion in bytes).
        Cloud Quotas has no discovery document in google-api-python-client: its fake follows
        cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.services.quotaInfos."""
        values = []
        for quota, unit in (("CpuAllocPerProjectRegion", 1000),
                            ("MemAllocPerProjectRegion", 2**30)):
            info = self.call("GET", "cloudquotas", f"v1/projects/{project}/locations/global/"
                             f"services/run.googleapis.com/quotaInfos/{quota}")
            entries = info.get("dimensionsInfos") or []
            mine = [e for e in entries if (e.get("dimensions") or {}).get("region") == region]
            mine = mine or [e for e in entries if not (e.get("dimensions") or {}).get("region")]
            if not mine:
                return None
            values.append(float((mine[0].get("details") or {}).get("value", 0)) / unit)
        return values[0], values[1]

    # -- Cloud Run, IAM, Scheduler, Workflows, Logging, Artifact Registry --------------------

    def revision_exists(self, project: str, region: str, service: str, revision: str) -> bool:
        """Whether a Cloud Run revision still exists (Admin API v2)."""
        return self._found("GET", "run", f"v2/projects/{project}/locations/{region}/services/"
                           f"{service}/revisions/{revision}") is not None

    def service_policy(self, project: str, region: str, service: str) -> dict[str, Any]:
        """A Cloud Run service's IAM policy, conditions included (policy version 3: a GET with
        `options.requestedPolicyVersion` as a query parameter, run.v2 discovery)."""
        return self.call("GET", "run", f"v2/projects/{project}/locations/{region}/services/"
                         f"{service}:getIamPolicy", [("options.requestedPolicyVersion", "3")])

    def set_service_policy(self, project: str, region: str, service: str,
                           policy: dict[str, Any]) -> dict[str, Any]:
        """Write a Cloud Run service's IAM policy (version 3, with the etag it was read with:
        a concurrent change makes Google refuse it rather than lose it)."""
        return self.call("POST", "run", f"v2/projects/{project}/locations/{region}/services/"
                         f"{service}:setIamPolicy", body={"policy": policy})

    def account_policy(self, project: str, email: str) -> dict[str, Any]:
        """A service account's IAM policy (who may act as it): a POST with no body, the
        policy version a query parameter (iam.v1 discovery,
        `projects.serviceAccounts.getIamPolicy`)."""
        return self.call("POST", "iam", f"v1/projects/{project}/serviceAccounts/{email}"
                         ":getIamPolicy", [("options.requestedPolicyVersion", "3")])

    def scheduler_job(self, project: str, region: str, name: str) -> dict[str, Any] | None:
        """A Cloud Scheduler job as Google holds it (state, schedule, last attempt), or None."""
        return self._found("GET", "cloudscheduler",
                           f"v1/projects/{project}/locations/{region}/jobs/{name}")

    def workflow(self, project: str, region: str, name: str) -> dict[str, Any] | None:
        """A Cloud Workflows workflow (state, service account, revision), or None."""
        return self._found("GET", "workflows",
                           f"v1/projects/{project}/locations/{region}/workflows/{name}")

    def log_entries(self, project: str, services: list[str], since: str,
                    limit: int = 1000) -> list[dict[str, Any]]:
        """Cloud Run log entries of `services` from `since` (RFC 3339), oldest first (Cloud
        Logging `entries:list`)."""
        names = " OR ".join(f'resource.labels.service_name="{s}"' for s in services)
        query = f'resource.type="cloud_run_revision" AND ({names}) AND timestamp>="{since}"'
        return self.entries(project, query, "timestamp asc", limit)

    def entries(self, project: str, query: str, order: str, limit: int
                ) -> list[dict[str, Any]]:
        data = self.call("POST", "logging", "v2/entries:list", body={
            "resourceNames": [f"projects/{project}"], "filter": query, "orderBy": order,
            "pageSize": limit})
        return list(data.get("entries") or [])

    # -- Cloud Monitoring ----------------------------------------------------------------------

    def ingest_delay(self, project: str, metric: str) -> float | None:
        """Seconds after sampling before a point of `metric` is visible (its descriptor's
        `metadata.ingestDelay`), None when Google does not say."""
        data = self.call("GET", "monitoring", f"v3/projects/{project}/metricDescriptors/"
                         f"{metric}")
        delay = str((data.get("metadata") or {}).get("ingestDelay") or "")
        try:
            return float(delay.removesuffix("s")) if delay.endswith("s") else None
        except ValueError:
            return None

    def occurrences(self, project: str, kind: str, resource_url: str
                    ) -> list[dict[str, Any]]:
        """Artifact Analysis occurrences of `kind` (DISCOVERY, VULNERABILITY) for one image
        (Container Analysis API occurrences.list), every page."""
        query = f'kind="{kind}" AND resourceUrl="{resource_url}"'
        found: list[dict[str, Any]] = []
        token = ""
        for _ in range(50):
            data = self.call("GET", "containeranalysis", f"v1/projects/{project}/occurrences",
                             [("filter", query), ("pageSize", "1000")]
                             + ([("pageToken", token)] if token else []))
            found += [o for o in data.get("occurrences") or [] if isinstance(o, dict)]
            token = str(data.get("nextPageToken") or "")
            if not token:
                break
        return found

    def open_alerts(self, project: str) -> list[dict[str, Any]]:
        """The project's alerts open now (Cloud Monitoring's alerts.list, `state = "OPEN"`),
        each with its policy's display name and user labels."""
        data = self.call("GET", "monitoring", f"v3/projects/{project}/alerts",
                         [("filter", 'state = "OPEN"'), ("pageSize", "100")])
        return [a for a in data.get("alerts") or [] if isinstance(a, dict)]

    def instance_counts(self, project: str, region: str, service: str, start: str, end: str
                        ) -> list[tuple[str, int]]:
        """(end of minute, instances) of a Cloud Run service between `start` and `end`
        (RFC 3339): `run.googleapis.com/container/instance_count`, every revision and state
        summed, the highest sample of each minute (timeSeries.list), oldest first."""
        query = (f'metric.type="{INSTANCE_COUNT}" AND resource.type="cloud_run_revision" '
                 f'AND resource.labels.service_name="{service}" '
                 f'AND resource.labels.location="{region}"')
        params = [("filter", query), ("interval.startTime", start), ("interval.endTime", end),
                  ("aggregation.alignmentPeriod", "60s"),
                  ("aggregation.perSeriesAligner", "ALIGN_MAX"),
                  ("aggregation.crossSeriesReducer", "REDUCE_SUM"), ("view", "FULL")]
        points: dict[str, int] = {}
        token = ""
        for _ in range(20):  # pages; a rehearsal's hours of minutes fit in one or two
            data = self.call("GET", "monitoring", f"v3/projects/{project}/timeSeries",
                             params + ([("pageToken", token)] if token else []))
            for series in data.get("timeSeries") or []:
                for point in series.get("points") or []:
                    value = point.get("value") or {}
                    count = value.get("int64Value", value.get("doubleValue", 0))
                    when = str((point.get("interval") or {}).get("endTime"))
                    points[when] = points.get(when, 0) + round(float(count))
            token = str(data.get("nextPageToken") or "")
            if not token:
                break
        return sorted(points.items())

    def tag_image(self, digest: str, tag: str) -> None:
        """Tag the image `digest` (`R-docker.pkg.dev/P/REPO/PKG@sha256:…`) as `tag` through the
        Artifact Registry API (no Docker needed); a tag that exists is moved to it."""
        host, project, repo, rest = digest.split("/", 3)
        package, _, version = rest.partition("@")
        region = host.removesuffix("-docker.pkg.dev")
        parent = (f"projects/{project}/locations/{region}/repositories/{repo}/packages/"
                  f"{quote(package, safe='')}")
        body = {"name": f"{parent}/tags/{tag}", "version": f"{parent}/versions/{version}"}
        try:
            self.call("POST", "artifactregistry", f"v1/{parent}/tags", [("tagId", tag)], body)
        except GoogleError as err:
            if err.status != 409:
                raise
            self.call("PATCH", "artifactregistry", f"v1/{parent}/tags/{tag}",
                      [("updateMask", "version")], body)

    def _found(self, method: str, api: str, path: str) -> dict[str, Any] | None:
        """A resource, or None when Google says it does not exist (404)."""
        try:
            return self.call(method, api, path)
        except GoogleError as err:
            if err.status == 404:
                return None
            raise


class _TimedRequest:
    """google-auth's transport with a timeout on every token request."""

    def __init__(self, request: Any) -> None:
        self.request = request

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", TIMEOUT_S)
        return self.request(*args, **kwargs)


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
        error = data.get("error") if isinstance(data, dict) else None
        message = (error.get("message") if isinstance(error, dict) else
                   data.get("error_description") or error or "")
        if not message and isinstance(data, dict) and data.get("errors"):  # a registry's
            message = json.dumps(data["errors"])[:200]
    except ValueError:
        message = response.text[:200]
    return _one_line(message)


def _host(url: object) -> str:
    text = str(url)
    return text.split("://", 1)[-1].split("/", 1)[0]


def _one_line(err: object) -> str:
    text = " ".join(str(err).split())
    return text[:300]
