"""A local stand-in for the Google APIs stx-pulumi calls, on 127.0.0.1, held to Google's own
contract: every request is checked against Google's discovery documents (`discovery.py`)
before it is answered; a request off the contract gets Google's 400 and is kept in
`violations`, which the `google` fixture asserts empty when the test ends.

Each API has its own prefix (`<url>/run`, `<url>/iam`...: `environ()` gives the endpoint
variables), so the fake knows which document a request must keep; answers are chosen by the
method's discovery id. Tokens come from `<url>/token` (named as `token_uri` in the credentials
file the tests write) and expire after `token_life` seconds, as Google's do.

Knobs: `disabled` APIs, `revoked` credentials, known `buckets`, `jobs` and `workflows` by name,
`policies` by resource name (`projects/P/locations/L/services/S`,
`projects/P/serviceAccounts/E`, `projects/P`), `denied` project permissions, `quota`, and a
`delay` before every answer (for the preflight benchmark).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

import discovery
from fake_app import LocalServer

from stx_pulumi.cloud.google import ENDPOINTS


class FakeGoogle(LocalServer):
    @staticmethod
    def key_exists(name: str) -> bool:
        """A KMS key the stand-in team stack made ($STANDIN_KMS)."""
        made = os.environ.get("STANDIN_KMS")
        return bool(made) and (Path(made) / name.replace("/", "_")).is_file()

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.token_life = 3600
        self.tokens: dict[str, float] = {}  # access token → when it expires
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self.disabled: set[str] = set()
        self.revoked = False
        self.buckets = {"team-state"}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.workflows: dict[str, dict[str, Any]] = {}
        self.denied: set[str] = set()  # project permissions the caller lacks
        self.projects = [("course-project-1", "Course project"), ("other-project-2", "Other")]
        self.billing = True
        self.quota = (1_000_000, 2000 * 2**30)  # Cloud Run: milli-vCPU, bytes (per region)
        self.enabled_now: list[str] = []  # APIs enabled through batchEnable
        self.image_tags: dict[str, str] = {}  # Artifact Registry: tag → version
        self.revisions: set[str] | None = set()  # Cloud Run revisions that exist (None: all)
        self.log_entries: list[dict[str, Any]] = []  # Cloud Logging: entries:list answers
        # Cloud Monitoring: instance_count's descriptor delay, and each minute's instances
        self.ingest_delay = "0s"
        self.instance_points: list[tuple[str, int]] = []
        self.series_queries: list[dict[str, str]] = []
        self.alerts: list[dict[str, Any]] = []  # Cloud Monitoring: the alerts open now
        # Artifact Analysis: each image's scan as it answers it (default: finished, clean)
        self.scan_status = "FINISHED_SUCCESS"
        self.findings: list[dict[str, Any]] = []  # VULNERABILITY occurrences' `vulnerability`
        self.scanned: list[str] = []  # the resource URLs asked about
        self.currency = "USD"  # Cloud Billing: the billing account's currency
        self.log_queries: list[dict[str, Any]] = []
        self.policies: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, str]] = []  # method, path, discovery id
        self.violations: list[str] = []
        self.uploads: dict[str, bytes] = {}  # Cloud Storage: "bucket/object" → the bytes
        self.builds: list[dict[str, Any]] = []  # Cloud Build: the Build of each create
        self.build_fails = False
        self.build_log = ["Step #0: COPY . /app", "Step #0: RUN uv sync --frozen",
                          "Step #0: error: the lockfile needs to be updated"]

    def environ(self) -> dict[str, str]:
        """The endpoint variables that send every Google call of stx-pulumi here."""
        env = {var: f"{self.url}/{api}" for api, (_, var) in ENDPOINTS.items()
               if api != "registry"}
        env["STX_OAUTH_TOKEN_ENDPOINT"] = f"{self.url}/token"
        return env

    def write_adc(self, folder: Path) -> Path:
        """gcloud's application default credentials file (a user's), in `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / "application_default_credentials.json"
        file.write_text(json.dumps({
            "type": "authorized_user", "client_id": "fake-client.apps.googleusercontent.com",
            "client_secret": "fake-secret", "refresh_token": "fake-refresh-token",
            "token_uri": f"{self.url}/token"}))
        return file

    def issue(self) -> dict[str, Any]:
        """A new access token, valid for `token_life` seconds."""
        with self._lock:
            token = f"ya29.fake-{next(self._numbers)}"
            self.tokens[token] = time.time() + self.token_life
        return {"access_token": token, "expires_in": self.token_life, "token_type": "Bearer"}

    def valid(self, authorization: str) -> bool:
        token = authorization.removeprefix("Bearer ")
        return authorization.startswith("Bearer ") and self.tokens.get(token, 0) > time.time()

    def __enter__(self) -> FakeGoogle:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urlparse(self.path)
                time.sleep(fake.delay)
                if url.path == "/token":
                    fake.requests.append((self.command, url.path, "oauth2.token"))
                    if fake.revoked:
                        self.answer(400, {"error": "invalid_grant", "error_description":
                                          "Token has been expired or revoked."})
                    else:
                        self.answer(200, fake.issue())
                    return
                api, _, rest = url.path.lstrip("/").partition("/")
                query = parse_qsl(url.query, keep_blank_values=True)
                if api not in discovery.DOCUMENTS and api not in discovery.NOT_PUBLISHED:
                    self.answer(404, {"error": {"message": f"no API {api}"}})
                    return
                if not fake.valid(self.headers.get("Authorization", "")):
                    fake.requests.append((self.command, "/" + rest, "unauthenticated"))
                    self.answer(401, {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                                "message": "Request had invalid "
                                                "authentication credentials."}})
                    return
                try:
                    method = "cloudquotas.quotaInfos.get" if api == "cloudquotas" else (
                        discovery.check(api, self.command, "/" + rest, query, body,
                                        self.headers.get("Content-Type", "")))
                except discovery.Violation as err:
                    fake.violations.append(str(err))
                    self.answer(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                                "message": str(err)}})
                    return
                fake.requests.append((self.command, "/" + rest, method))
                status, answer = fake.respond(method, "/" + rest, dict(query), query, body)
                self.answer(status, answer)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = handle_any

        self._start(Handler)
        return self

    # -- answers, by discovery method id -------------------------------------------------------

    def respond(self, method: str, path: str, query: dict[str, str],
                pairs: list[tuple[str, str]], body: bytes) -> tuple[int, dict[str, Any]]:
        data = json.loads(body) if body.strip() and not method.startswith(
            "storage.objects.insert") else {}
        name = path.split("/", 2)[2] if path.count("/") >= 2 else ""  # after /v1/ or /v2/
        if method == "serviceusage.services.batchGet":
            names = [v for k, v in pairs if k == "names"]
            return 200, {"services": [{"name": n, "config": {"name": n.rsplit("/", 1)[-1]},
                                       "state": "DISABLED" if n.rsplit("/", 1)[-1]
                                       in self.disabled else "ENABLED"} for n in names]}
        if method == "serviceusage.services.batchEnable":
            self.enabled_now += data.get("serviceIds", [])
            self.disabled -= set(data.get("serviceIds", []))
            return 200, {"name": "operations/acf.enable-1", "done": False}
        if method == "serviceusage.operations.get":
            return 200, {"name": name, "done": True}
        if method == "storage.buckets.testIamPermissions":
            bucket = path.split("/b/", 1)[1].split("/", 1)[0]
            made = os.environ.get("STANDIN_GCS")  # buckets a team stack made
            if bucket not in self.buckets and not (made and (Path(made) / bucket).is_dir()):
                return 404, {"error": {"message": "The specified bucket does not exist."}}
            return 200, {"permissions": [v for k, v in pairs if k == "permissions"]}
        if method == "storage.objects.insert":
            bucket = path.split("/b/", 1)[1].split("/", 1)[0]
            self.uploads[f"{bucket}/{query['name']}"] = body
            return 200, {"bucket": bucket, "name": query["name"], "size": str(len(body))}
        if method == "cloudbuild.projects.locations.builds.create":
            return self._build(name.removesuffix("/builds"), data)
        if method == "cloudbuild.projects.locations.operations.get":
            return self._built(name)
        if method == "logging.entries.list":
            return self._entries(data)
        if method == "artifactregistry.projects.locations.repositories.packages.tags.create":
            if query["tagId"] in self.image_tags:
                return 409, {"error": {"code": 409, "message": "the tag exists"}}
            self.image_tags[query["tagId"]] = data["version"]
            return 200, data
        if method == "artifactregistry.projects.locations.repositories.packages.tags.patch":
            self.image_tags[name.rsplit("/", 1)[1]] = data["version"]
            return 200, data
        if method == "cloudkms.projects.locations.keyRings.cryptoKeys.testIamPermissions":
            if not self.key_exists(name.removesuffix(":testIamPermissions")):
                return 404, {"error": {"message": "CryptoKey not found."}}
            return 200, {"permissions": data.get("permissions", [])}
        if method == "cloudresourcemanager.projects.testIamPermissions":
            return 200, {"permissions": [p for p in data.get("permissions", [])
                                         if p not in self.denied]}
        if method == "cloudresourcemanager.projects.list":
            return 200, {"projects": [{"projectId": p, "name": n, "lifecycleState": "ACTIVE"}
                                      for p, n in self.projects]}
        if method == "cloudbilling.projects.getBillingInfo":
            return 200, {"billingEnabled": self.billing, "name": f"{name}",
                         **({"billingAccountName": "billingAccounts/012345-6789AB-CDEF01"}
                            if self.billing else {})}
        if method == "cloudquotas.quotaInfos.get":
            value = self.quota[0] if "Cpu" in path else self.quota[1]
            return 200, {"dimensionsInfos": [  # europe-west1's own, and every other region's
                {"dimensions": {"region": "europe-west1"}, "details": {"value": str(value)}},
                {"dimensions": {}, "details": {"value": str(value)}}]}
        if method in ("run.projects.locations.services.getIamPolicy",
                      "iam.projects.serviceAccounts.getIamPolicy",
                      "cloudresourcemanager.projects.getIamPolicy"):
            version = query.get("options.requestedPolicyVersion") or str(
                (data.get("options") or {}).get("requestedPolicyVersion", 1))
            return 200, self.policy(name.removesuffix(":getIamPolicy"), int(version))
        if method == "run.projects.locations.services.setIamPolicy":
            return self.set_policy(name.removesuffix(":setIamPolicy"), data["policy"])
        if method == "run.projects.locations.services.patch" and query.get(
                "validateOnly") == "true":  # checked, nothing changed (the services live in
            return 200, {"name": f"{name.rsplit('/services/', 1)[0]}/operations/v1",  # the
                         "done": True, "response": {"name": name, **data}}  # stand-in engine)
        if method == "run.projects.locations.services.revisions.get":
            revision = name.rsplit("/", 1)[1]
            if self.revisions is None or revision in self.revisions:
                return 200, {"name": name}
            return 404, {"error": {"message": "Revision not found."}}
        if method == "containeranalysis.projects.occurrences.list":
            kind, url = re.fullmatch(r'kind="(\w+)" AND resourceUrl="([^"]+)"',
                                     query["filter"]).groups()  # type: ignore[union-attr]
            self.scanned.append(url)
            if kind == "DISCOVERY":
                found = [{"kind": "DISCOVERY", "resourceUri": url, "discovery": {
                    "analysisStatus": self.scan_status, "continuousAnalysis": "ACTIVE",
                    "lastScanTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}}] if (
                    self.scan_status) else []
            else:
                found = [{"kind": "VULNERABILITY", "resourceUri": url, "vulnerability": v}
                         for v in self.findings]
            return 200, {"occurrences": found}
        if method == "monitoring.projects.alerts.list":
            assert query.get("filter") == 'state = "OPEN"', query
            return 200, {"alerts": self.alerts}
        if method == "cloudbilling.billingAccounts.get":
            return 200, {"name": name, "open": True, "currencyCode": self.currency,
                         "displayName": "School billing"}
        if method == "monitoring.projects.metricDescriptors.get":
            metric = name.split("/metricDescriptors/", 1)[1]
            return 200, {"name": name, "type": metric, "metricKind": "GAUGE",
                         "valueType": "INT64", "metadata": {"samplePeriod": "60s",
                                                            "ingestDelay": self.ingest_delay}}
        if method == "monitoring.projects.timeSeries.list":
            self.series_queries.append(query)
            points = [{"interval": {"startTime": t, "endTime": t},
                       "value": {"int64Value": str(n)}} for t, n in reversed(
                           self.instance_points)]  # newest first, as Google answers
            return 200, {"timeSeries": [{
                "metric": {"type": "run.googleapis.com/container/instance_count"},
                "resource": {"type": "cloud_run_revision"}, "metricKind": "GAUGE",
                "valueType": "INT64", "points": points}] if points else []}
        if method == "cloudscheduler.projects.locations.jobs.get":
            job = self.jobs.get(name.rsplit("/", 1)[1])
            return (200, job) if job else (404, {"error": {"message": "Job not found."}})
        if method == "workflows.projects.locations.workflows.get":
            flow = self.workflows.get(name.rsplit("/", 1)[1])
            return (200, flow) if flow else (404, {"error": {"message": "not found"}})
        return 404, {"error": {"message": f"the fake does not answer {method}"}}

    def policy(self, resource: str, version: int) -> dict[str, Any]:
        """An IAM policy as Google answers it: at version 1 a conditional binding shows as
        `<role>_withcond_<hash>` without its condition (IAM docs, "Policy versions")."""
        stored = self.policies.get(resource) or {"bindings": []}
        conditional = any(b.get("condition") for b in stored.get("bindings", []))
        etag = hashlib.sha256(json.dumps(stored, sort_keys=True).encode()).hexdigest()[:12]
        if version >= 3 or not conditional:
            return {**stored, "version": 3 if conditional else 1, "etag": etag}
        shown = [{"role": f"{b['role']}_withcond_{hashlib.sha1(json.dumps(b['condition']).encode()).hexdigest()[:20]}"  # noqa: E501
                  if b.get("condition") else b["role"], "members": b["members"]}
                 for b in stored["bindings"]]
        return {"bindings": shown, "version": 1, "etag": etag}

    def set_policy(self, resource: str, policy: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """setIamPolicy: a policy with conditions must say version 3, and its etag must be the
        current one (a concurrent change is refused, never lost)."""
        current = self.policy(resource, 3)
        if policy.get("etag") and policy["etag"] != current["etag"]:
            return 409, {"error": {"code": 409, "status": "ABORTED",
                                   "message": "There were concurrent policy changes."}}
        if any(b.get("condition") for b in policy.get("bindings") or []) and int(
                policy.get("version") or 1) < 3:
            return 400, {"error": {"code": 400, "message": "conditions need version 3"}}
        self.policies[resource] = {"bindings": list(policy.get("bindings") or [])}
        return 200, self.policy(resource, 3)

    def _build(self, parent: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.builds.append(request)
        n = len(self.builds)
        return 200, {"name": f"{parent}/operations/build-{n}", "done": False,
                     "metadata": {"build": {"id": f"build-{n}", "logUrl":
                                            f"https://console.cloud.google.com/cloud-build/"
                                            f"builds/build-{n}"}}}

    def _built(self, name: str) -> tuple[int, dict[str, Any]]:
        n = int(name.rsplit("-", 1)[1])
        request = self.builds[n - 1]
        source = request["source"]["storageSource"]
        data = self.uploads[f"{source['bucket']}/{source['object']}"]
        status = "FAILURE" if self.build_fails else "SUCCESS"
        build: dict[str, Any] = {
            "id": f"build-{n}", "status": status,
            "logUrl": f"https://console.cloud.google.com/cloud-build/builds/build-{n}",
            "steps": [{**step, "status": status} for step in request["steps"]],
            "results": {} if self.build_fails else {"images": [
                {"name": request["images"][0],
                 "digest": "sha256:" + hashlib.sha256(data).hexdigest()}]}}
        if self.build_fails:
            build["failureInfo"] = {"type": "USER_BUILD_STEP", "detail":
                                    "Build step failure: build step 0 \"gcr.io/cloud-builders/"
                                    "docker\" failed: step exited with non-zero status: 1"}
        return 200, {"name": name, "done": True, "response": build}

    def _entries(self, query: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "build_id" in query.get("filter", ""):
            return 200, {"entries": [{"textPayload": line}
                                     for line in reversed(self.build_log)]}
        self.log_queries.append(query)
        since = query["filter"].rsplit('timestamp>="', 1)[1].rstrip('"')
        return 200, {"entries": [e for e in self.log_entries if e["timestamp"] >= since]}

