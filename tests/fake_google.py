"""Local stand-ins for the Google endpoints the preflight calls, on 127.0.0.1: the OAuth token
endpoint (named as `token_uri` in the credentials file the tests write), Service Usage's
`services:batchGet` (STX_SERVICEUSAGE_ENDPOINT) and Cloud Storage's `testIamPermissions`
(STORAGE_EMULATOR_HOST), and what Google holds of event windows: Cloud Scheduler jobs
(STX_SCHEDULER_ENDPOINT), Cloud Run and service-account IAM policies (STX_RUN_ENDPOINT,
STX_IAM_ENDPOINT). Knobs: `disabled` APIs, `revoked` credentials, known `buckets`, `jobs` by
name, `policies` by resource path, and a `delay` before every answer (for the preflight
benchmark).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from fake_app import LocalServer

TOKEN = "ya29.fake-google-access-token"


class FakeGoogle(LocalServer):
    @staticmethod
    def key_exists(name: str) -> bool:
        """A KMS key the stand-in team stack made ($STANDIN_KMS)."""
        made = os.environ.get("STANDIN_KMS")
        return bool(made) and (Path(made) / name.replace("/", "_")).is_file()

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.disabled: set[str] = set()
        self.revoked = False
        self.buckets = {"team-state"}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.denied: set[str] = set()  # project permissions the caller lacks
        self.projects = [("course-project-1", "Course project"), ("other-project-2", "Other")]
        self.billing = True
        self.quota = (1_000_000, 2000 * 2**30)  # Cloud Run: milli-vCPU, bytes (per region)
        self.enabled_now: list[str] = []  # APIs enabled through batchEnable
        self.image_tags: dict[str, str] = {}  # Artifact Registry: tag → version
        self.revisions: set[str] | None = set()  # Cloud Run revisions that exist (None: all)
        self.log_entries: list[dict[str, Any]] = []  # Cloud Logging: entries:list answers
        self.log_queries: list[dict[str, Any]] = []
        self.policies: dict[str, dict[str, Any]] = {}  # ".../services/S" or ".../serviceAccounts/E"
        self.requests: list[tuple[str, str, str]] = []  # method, path, authorization
        self.uploads: dict[str, bytes] = {}  # Cloud Storage: "bucket/object" → the bytes
        self.builds: list[dict[str, Any]] = []  # Cloud Build: the Build of each create
        self.build_fails = False
        self.build_log = ["Step #0: COPY . /app", "Step #0: RUN uv sync --frozen",
                          "Step #0: error: the lockfile needs to be updated"]

    def write_adc(self, folder: Path) -> Path:
        """gcloud's application default credentials file (a user's), in `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / "application_default_credentials.json"
        file.write_text(json.dumps({
            "type": "authorized_user", "client_id": "fake-client.apps.googleusercontent.com",
            "client_secret": "fake-secret", "refresh_token": "fake-refresh-token",
            "token_uri": f"{self.url}/token"}))
        return file

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

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.requests.append(("POST", self.path, ""))
                time.sleep(fake.delay)
                path = urlparse(self.path).path
                if path.startswith("/upload/storage/v1/b/"):  # Cloud Storage: media upload
                    bucket = path.split("/b/", 1)[1].split("/", 1)[0]
                    name = parse_qs(urlparse(self.path).query)["name"][0]
                    fake.uploads[f"{bucket}/{name}"] = body
                    self.answer(200, {"bucket": bucket, "name": name, "size": str(len(body))})
                elif path.endswith("/builds"):  # Cloud Build: create, a long operation
                    fake.builds.append(json.loads(body))
                    n = len(fake.builds)
                    parent = path.removeprefix("/v1/").removesuffix("/builds")
                    self.answer(200, {"name": f"{parent}/operations/build-{n}", "done": False,
                                      "metadata": {"build": {"id": f"build-{n}", "logUrl":
                                                   f"https://console.cloud.google.com/"
                                                   f"cloud-build/builds/build-{n}"}}})
                elif path.endswith("/entries:list") and "build_id" in body.decode():
                    self.answer(200, {"entries": [{"textPayload": line}
                                                  for line in reversed(fake.build_log)]})
                elif path.endswith("/entries:list"):  # Cloud Logging
                    query = json.loads(body or b"{}")
                    fake.log_queries.append(query)
                    since = query["filter"].rsplit('timestamp>="', 1)[1].rstrip('"')
                    self.answer(200, {"entries": [e for e in fake.log_entries
                                                  if e["timestamp"] >= since]})
                elif path.endswith("/tags"):  # Artifact Registry: tag a version
                    data = json.loads(body or b"{}")
                    fake.image_tags[data["name"].rsplit("/", 1)[1]] = data["version"]
                    self.answer(200, data)
                elif path.endswith("/services:batchEnable"):  # Service Usage: a long operation
                    ids = json.loads(body or b"{}").get("serviceIds", [])
                    fake.enabled_now += ids
                    fake.disabled -= set(ids)
                    self.answer(200, {"name": "operations/acf.enable-1", "done": False})
                elif "/cryptoKeys/" in path and not fake.key_exists(
                        path.split("/v1/", 1)[1].removesuffix(":testIamPermissions")):
                    self.answer(404, {"error": {"message": "CryptoKey not found."}})
                elif path.endswith(":testIamPermissions"):  # Resource Manager, Cloud KMS
                    asked = json.loads(body or b"{}").get("permissions", [])
                    self.answer(200, {"permissions": [p for p in asked
                                                      if p not in fake.denied]})
                elif path.endswith(":getIamPolicy"):  # IAM: a service account's policy
                    self.answer(200, fake.policies.get(path.removesuffix(":getIamPolicy"), {}))
                elif fake.revoked:
                    self.answer(400, {"error": "invalid_grant",
                                      "error_description": "Token has been expired or revoked."})
                else:
                    self.answer(200, {"access_token": TOKEN, "expires_in": 3600,
                                      "token_type": "Bearer"})

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                fake.requests.append(("GET", url.path, self.headers.get("Authorization", "")))
                time.sleep(fake.delay)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self.answer(401, {"error": {"message": "Request had invalid credentials."}})
                elif url.path.endswith("/services:batchGet"):
                    services = [{"name": n, "config": {"name": n.rsplit("/", 1)[-1]},
                                 "state": "DISABLED" if n.rsplit("/", 1)[-1] in fake.disabled
                                 else "ENABLED"} for n in query.get("names", [])]
                    self.answer(200, {"services": services})
                elif url.path.endswith("/iam/testPermissions"):
                    bucket = url.path.split("/b/", 1)[1].split("/", 1)[0]
                    made = os.environ.get("STANDIN_GCS")  # buckets a team stack made
                    if bucket not in fake.buckets and not (made and (Path(made) / bucket)
                                                           .is_dir()):
                        self.answer(404, {"error": {"message": "The specified bucket does not "
                                                    "exist."}})
                    else:
                        self.answer(200, {"permissions": query.get("permissions", [])})
                elif url.path == "/v1/projects":  # Resource Manager: the visible projects
                    self.answer(200, {"projects": [{"projectId": p, "name": n,
                                                    "lifecycleState": "ACTIVE"}
                                                   for p, n in fake.projects]})
                elif url.path.endswith("/billingInfo"):
                    self.answer(200, {"billingEnabled": fake.billing})
                elif "/operations/build-" in url.path:  # Cloud Build: the build is done
                    n = int(url.path.rsplit("-", 1)[1])
                    request = fake.builds[n - 1]
                    source = request["source"]["storageSource"]
                    data = fake.uploads[f"{source['bucket']}/{source['object']}"]
                    status = "FAILURE" if fake.build_fails else "SUCCESS"
                    build = {"id": f"build-{n}", "status": status,
                             "logUrl": f"https://console.cloud.google.com/cloud-build/builds/"
                                       f"build-{n}",
                             "steps": [{**step, "status": status} for step in request["steps"]],
                             "results": {} if fake.build_fails else {"images": [
                                 {"name": request["images"][0], "digest": "sha256:" +
                                  hashlib.sha256(data).hexdigest()}]}}
                    if fake.build_fails:
                        build["failureInfo"] = {"type": "USER_BUILD_STEP", "detail":
                                                "Build step failure: build step 0 "
                                                '"gcr.io/cloud-builders/docker" failed: step '
                                                "exited with non-zero status: 1"}
                    self.answer(200, {"name": url.path[4:], "done": True, "response": build})
                elif url.path.startswith("/v1/operations/"):
                    self.answer(200, {"name": url.path[4:], "done": True})
                elif "/quotaInfos/" in url.path:
                    value = fake.quota[0] if "Cpu" in url.path else fake.quota[1]
                    self.answer(200, {"dimensionsInfos": [
                        {"dimensions": {"region": "europe-west1"},
                         "details": {"value": str(value)}},
                        {"dimensions": {}, "details": {"value": "1"}}]})
                elif url.path.endswith(":getIamPolicy"):  # Cloud Run: a service's policy
                    self.answer(200, fake.policies.get(url.path.removesuffix(":getIamPolicy"),
                                                       {}))
                elif "/revisions/" in url.path:  # Cloud Run: does a revision exist?
                    name = url.path.rsplit("/", 1)[1]
                    if fake.revisions is None or name in fake.revisions:
                        self.answer(200, {"name": name})
                    else:
                        self.answer(404, {"error": {"message": "Revision not found."}})
                elif "/jobs/" in url.path:
                    job = fake.jobs.get(url.path.rsplit("/", 1)[1])
                    if job is None:
                        self.answer(404, {"error": {"message": "Job not found."}})
                    else:
                        self.answer(200, job)
                else:
                    self.answer(404, {"error": {"message": f"no {url.path}"}})

        self._start(Handler)
        return self
