"""The cloud builder: the image built by Cloud Build, with no Docker on this machine.

What is uploaded is exactly the Docker build context (the same .dockerignore reading as the
content tag, the Dockerfile and .dockerignore always, as Docker sends them), as a gzipped tar
in the stack's staging bucket; the build runs `docker build` for linux/amd64 as the stack's
build service account and pushes the same image name and tag a local build would. Called by
`up` before the engine, only when the tag is not deployed yet; the services then run the
built image by digest.

Through the one Google client (`google.py`): the Cloud Storage JSON API's media upload and
Cloud Build's `projects.locations.builds.create`, whose long-running operation is polled.
"""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stx_pulumi.cloud.google import Google
from stx_pulumi.errors import EngineError, GoogleError, pause

if TYPE_CHECKING:
    from stx_pulumi.model.spec import AppSpec

DOCKER_STEP = "gcr.io/cloud-builders/docker"  # Google's Docker builder image
BUILD_TIMEOUT_S = 1800
LAST_LINES = 15


def context_archive(root: Path, files: Sequence[str]) -> bytes:
    """The build context as Docker sends it: `files` (relative paths) in a gzipped tar."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for rel in sorted(files):
            tar.add(root / rel, arcname=rel, recursive=False)
    return buffer.getvalue()


def build_request(spec: AppSpec, bucket: str, name: str) -> dict[str, Any]:
    """The Build: `docker build` of the uploaded context for linux/amd64, the image pushed
    to the stack's registry with its tag, run as the stack's build account."""
    image = spec.image_name
    return {
        "source": {"storageSource": {"bucket": bucket, "object": name}},
        "steps": [{"name": DOCKER_STEP, "args": [
            "build", "--platform", "linux/amd64", "--build-arg",
            f"SOURCE_COMMIT={spec.image_tag}", "-t", image, "-f", "Dockerfile", "."]}],
        "images": [image],
        "serviceAccount": f"projects/{spec.project}/serviceAccounts/"
                          f"{spec.build_account_id}@{spec.project}.iam.gserviceaccount.com",
        # a build account of one's own logs to Cloud Logging only (no default logs bucket)
        "options": {"logging": "CLOUD_LOGGING_ONLY"},
        "timeout": f"{BUILD_TIMEOUT_S}s",
        "tags": ["stx-pulumi", spec.app, spec.env],
    }


def build(client: Google, spec: AppSpec, files: Sequence[str],
          on_progress: Callable[[str], None] = lambda _: None, poll_s: float = 5.0,
          stop: threading.Event | None = None) -> str:
    """Upload the context, build, wait; the pushed image by digest. A failed build is an
    EngineError with the failing step's last log lines and the build's log URL."""
    name = f"{spec.app}-{spec.env}/{spec.image_tag}.tar.gz"
    try:
        client.upload(spec.staging_bucket, name, context_archive(spec.source, files),
                      "application/gzip")
    except GoogleError as err:
        raise EngineError(f"uploading the build context to gs://{spec.staging_bucket} failed: "
                          f"{err}") from None
    parent = f"projects/{spec.project}/locations/{spec.build_region}"
    try:
        operation = client.call("POST", "cloudbuild", f"v1/{parent}/builds",
                                body=build_request(spec, spec.staging_bucket, name))
    except GoogleError as err:
        raise EngineError(f"Cloud Build did not take the build: {err}",
                          hint="the Cloud Build and Storage APIs must be enabled (`stx-pulumi "
                          "setup` enables them once a stack file sets `stx:builder: cloud`); "
                          "you need roles/cloudbuild.builds.editor and to act as the build "
                          "account (`stx-pulumi doctor APP --builder cloud` checks)"
                          ) from None
    found = (operation.get("metadata") or {}).get("build") or {}
    log_url = str(found.get("logUrl") or "")
    on_progress(f"building {spec.image_tag} in Cloud Build: {log_url}")
    start = time.monotonic()
    while not operation.get("done"):
        if time.monotonic() - start > BUILD_TIMEOUT_S + 120:
            raise EngineError(f"the cloud build did not finish within {BUILD_TIMEOUT_S}s",
                              hint=f"build log: {log_url}")
        pause(min(poll_s, 1 + time.monotonic() - start), stop)  # a quick first look
        operation = client.call("GET", "cloudbuild", f"v1/{operation['name']}")
        on_progress(f"building {spec.image_tag} in Cloud Build: "
                    f"{time.monotonic() - start:.0f}s")
    result = operation.get("response") or {}
    if operation.get("error") or result.get("status") != "SUCCESS":
        raise EngineError(_failure(client, spec, result, operation),
                          hint=f"build log: {result.get('logUrl') or log_url}")
    images = [i for i in (result.get("results") or {}).get("images") or []
              if i.get("digest")]
    if not images:
        raise EngineError("the cloud build succeeded but reported no image digest",
                          hint=f"build log: {log_url}")
    return f"{spec.image_name.rsplit(':', 1)[0]}@{images[0]['digest']}"


def _failure(client: Google, spec: AppSpec, result: dict[str, Any],
             operation: dict[str, Any]) -> str:
    """What failed: the build's status, its failing step and that step's last log lines."""
    status = result.get("status") or "FAILURE"
    detail = ((result.get("failureInfo") or {}).get("detail") or result.get("statusDetail")
              or (operation.get("error") or {}).get("message") or "")
    steps = result.get("steps") or []
    failing = next((i for i, s in enumerate(steps) if s.get("status") == "FAILURE"), None)
    where = f" in step {failing} ({steps[failing].get('name')})" if failing is not None else ""
    lines = _last_lines(client, spec.project, str(result.get("id") or ""), failing)
    text = f"the cloud build of {spec.image_tag} failed ({status}){where}"
    if detail:
        text += f": {detail}"
    if lines:
        text += "; last lines:\n  " + "\n  ".join(lines)
    return text


def _last_lines(client: Google, project: str, build_id: str, step: int | None
                ) -> list[str]:
    """The failing step's last log lines from Cloud Logging (nothing when unreadable)."""
    if not build_id:
        return []
    query = (f'logName="projects/{project}/logs/cloudbuild" AND '
             f'resource.labels.build_id="{build_id}"')
    if step is not None:
        query += f' AND labels.build_step="Step #{step}"'
    try:
        entries = list(reversed(client.entries(project, query, "timestamp desc", LAST_LINES)))
    except GoogleError:
        return []
    return [str(e.get("textPayload") or "").rstrip() for e in entries if e.get("textPayload")]
