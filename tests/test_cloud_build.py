"""The cloud builder (issue #13): the image built by Cloud Build, no Docker on this machine.
What is uploaded is exactly the Docker context; the program runs the built digest; end to end
with stand-ins of Cloud Storage, Cloud Build and Cloud Logging on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pulumi
import pytest
from conftest import PulumiStandIn
from fake_google import FakeGoogle
from helpers import resources, stx
from test_program import Recorder, build, make_spec

from stx_pulumi.cloud.cloudbuild import build_request, context_archive
from stx_pulumi.model.rules import default_build_region
from stx_pulumi.model.spec import Build
from stx_pulumi.source import docker_context

SERVICE = "gcp:cloudrunv2/service:Service"
BUILT = ("europe-west1-docker.pkg.dev/course-project-1/hello-course-dev/hello-course@sha256:"
         + "cd" * 32)


def test_the_upload_is_exactly_the_docker_context(tmp_path: Path) -> None:
    root = tmp_path / "app"
    for rel in ("Dockerfile", "book.py", "blocks/intro.py", "static/logo.png", "notes.log",
                "keep.log", "secrets/.env", "drafts/old.py", "drafts/keep/this.py",
                "__pycache__/book.cpython-311.pyc"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    (root / ".dockerignore").write_text(
        "# Docker's rules\n*.log\n!keep.log\nsecrets\ndrafts/*\n!drafts/keep\n.dockerignore\n")
    files = docker_context(root)
    # what `docker build` sends for this .dockerignore: its exclusions and re-inclusions, and
    # the Dockerfile and .dockerignore always (Docker sends them even when ignored)
    assert files == [".dockerignore", "Dockerfile", "__pycache__/book.cpython-311.pyc",
                     "blocks/intro.py", "book.py", "drafts/keep/this.py", "keep.log",
                     "static/logo.png"]
    with tarfile.open(fileobj=io.BytesIO(context_archive(root, files)), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == files
        assert tar.extractfile("blocks/intro.py").read() == b"blocks/intro.py"  # type: ignore


def test_the_build_runs_docker_for_amd64_as_the_build_account_with_the_local_name() -> None:
    spec = make_spec(**{"stx:builder": "cloud"})
    request = build_request(spec, spec.staging_bucket, "hello-course-dev/sha-abc1234.tar.gz")
    (step,) = request["steps"]
    assert step["name"] == "gcr.io/cloud-builders/docker"
    assert step["args"][:3] == ["build", "--platform", "linux/amd64"]
    assert "SOURCE_COMMIT=sha-abc1234" in step["args"]
    # the same image name and tag a local build pushes
    assert request["images"] == [spec.image_name] == [
        "europe-west1-docker.pkg.dev/course-project-1/hello-course-dev/hello-course:sha-abc1234"]
    assert request["serviceAccount"].endswith(
        "/serviceAccounts/hello-course-dev-build@course-project-1.iam.gserviceaccount.com")
    assert request["options"]["logging"] == "CLOUD_LOGGING_ONLY"
    assert request["source"]["storageSource"]["bucket"] == "course-project-1-hello-course-dev-build"


@pulumi.runtime.test
def test_with_the_cloud_builder_the_service_runs_the_built_digest(mocks: Recorder) -> Any:
    app = build(make_spec(**{"stx:builder": "cloud"}), build=Build("cloud", BUILT))

    def check(_: Any) -> None:
        assert app.outputs["image"] == BUILT
        assert mocks.of_type("docker:index/image:Image") == []
        service = mocks.one(SERVICE)
        assert service["template"]["containers"][0]["image"] == BUILT
        bucket = mocks.one("gcp:storage/bucket:Bucket")
        assert bucket["name"] == "course-project-1-hello-course-dev-build"
        assert bucket["uniformBucketLevelAccess"] is True
        assert bucket["publicAccessPrevention"] == "enforced"
        (rule,) = bucket["lifecycleRules"]
        assert rule == {"action": {"type": "Delete"}, "condition": {"age": 3}}
        accounts = {a.inputs["accountId"] for a in mocks.of_type(
            "gcp:serviceaccount/account:Account")}
        assert accounts == {"hello-course-dev-run", "hello-course-dev-build"}
        build_sa = "serviceAccount:hello-course-dev-build@course-project-1.iam.gserviceaccount.com"
        push = mocks.one("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
        assert (push["role"], push["member"]) == ("roles/artifactregistry.writer", build_sa)
        read = mocks.one("gcp:storage/bucketIAMMember:BucketIAMMember")
        assert (read["role"], read["member"]) == ("roles/storage.objectViewer", build_sa)
        logs = mocks.one("gcp:projects/iAMMember:IAMMember")
        assert (logs["role"], logs["member"]) == ("roles/logging.logWriter", build_sa)

    return pulumi.Output.all(app.service.urn, *(r.urn for r in app.build_base)).apply(check)


@pulumi.runtime.test
def test_the_local_builder_makes_no_build_resources(mocks: Recorder) -> Any:
    app = build(make_spec(**{"stx:builder": "local"}))

    def check(_: Any) -> None:
        assert mocks.of_type("gcp:storage/bucket:Bucket") == []
        assert len(mocks.of_type("docker:index/image:Image")) == 1

    return app.image.image_name.apply(check)


# -- end to end --------------------------------------------------------------------------------

@pytest.fixture
def no_docker(workspace: Path, pulumi_cli: PulumiStandIn,
              monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine with no Docker daemon: the stand-in `docker` is gone from PATH, and any
    real one finds no daemon."""
    (pulumi_cli.root / "bin" / "docker").unlink()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{workspace}/no-docker.sock")
    return workspace


def test_up_builds_in_the_cloud_with_no_docker_then_only_when_the_source_changes(
        no_docker: Path, google: FakeGoogle) -> None:
    result = stx("up", "hello-course", "--builder", "cloud", "--yes")
    assert result.exit_code == 0, result.output
    assert "building src-" in result.output and "in Cloud Build" in result.output
    assert "https://console.cloud.google.com/cloud-build/builds/build-1" in result.output
    ((name, data),) = google.uploads.items()
    assert name.startswith("course-project-1-hello-course-dev-build/hello-course-dev/")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == docker_context(
            no_docker / "examples" / "hello-course")
    (request,) = google.builds
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    services = [r for r in resources(no_docker, "hello-course.dev").values()
                if r["type"] == SERVICE]
    image = services[0]["inputs"]["template"]["containers"][0]["image"]
    assert image == request["images"][0].rsplit(":", 1)[0] + "@" + digest
    assert not any(r["type"] == "docker:index/image:Image"
                   for r in resources(no_docker, "hello-course.dev").values())

    again = stx("up", "hello-course", "--yes", "--json")  # the builder is kept in the stack
    assert again.exit_code == 0, again.output
    assert len(google.builds) == 1 and "nothing to build" in again.output
    changes = json.loads(again.stdout)["changes"]
    assert changes["create"] == changes["update"] == changes["replace"] == 0

    preview = stx("preview", "hello-course")
    assert "in Cloud Build" not in preview.output and "no changes" in preview.output

    book = no_docker / "examples" / "hello-course" / "book.py"
    book.write_text(book.read_text() + "\n# quiz 2\n")
    stack_file = no_docker / "stacks" / "Pulumi.hello-course.dev.yaml"
    before = stack_file.read_bytes()
    google.build_fails = True
    failed = stx("up", "hello-course", "--yes", "--max", "30")
    assert failed.exit_code == 1, failed.output
    assert "the cloud build of src-" in failed.output and "failed (FAILURE)" in failed.output
    assert "error: the lockfile needs to be updated" in failed.output
    assert "build log: https://console.cloud.google.com/cloud-build/builds/build-2" in (
        failed.output)
    assert stack_file.read_bytes() == before  # nothing written: the update never ran
    service = next(r for r in resources(no_docker, "hello-course.dev").values()
                   if r["type"] == SERVICE)
    assert service["inputs"]["template"]["containers"][0]["image"] == image


def test_auto_builds_in_the_cloud_without_docker_and_refuses_a_heavy_upload(
        no_docker: Path, google: FakeGoogle) -> None:
    venv = no_docker / "examples" / "hello-course" / ".venv"  # dockerignored: fine
    (venv / "lib").mkdir(parents=True)
    (venv / "lib" / "site.py").write_text("x = 1\n")
    modules = no_docker / "examples" / "hello-course" / "node_modules"  # not: uploaded
    (modules / "katex").mkdir(parents=True)
    (modules / "katex" / "index.js").write_text("x = 1\n")
    refused = stx("up", "hello-course", "--yes")
    assert refused.exit_code == 2, refused.output
    assert "holds node_modules/" in refused.output and ".venv" not in refused.output
    assert ".dockerignore" in refused.output
    explicit = stx("plan", "hello-course", "--builder", "cloud")
    assert explicit.exit_code == 2 and "holds node_modules/" in explicit.output
    assert google.uploads == {} and google.builds == []
    assert not (no_docker / ".pulumi-state" / ".pulumi" / "stacks").exists() or not list(
        (no_docker / ".pulumi-state" / ".pulumi" / "stacks").rglob("*.json"))
    shutil.rmtree(modules)
    result = stx("up", "hello-course", "--yes", "--no-verify")
    assert result.exit_code == 0, result.output
    assert "no Docker daemon answers: the image is built in Cloud Build" in result.output
    assert len(google.builds) == 1


def test_builder_input_cost_and_doctor(workspace: Path, pulumi_cli: PulumiStandIn,
                                       google: FakeGoogle) -> None:
    bad = stx("plan", "hello-course", "--builder", "docker")
    assert bad.exit_code == 2
    assert "stx:builder (--builder): 'docker' is not one of auto, local, cloud" in bad.output
    cost = json.loads(stx("cost", "hello-course", "--builder", "cloud", "--json").stdout)
    assert cost["cloud_builds"] == {"minutes_per_build": 5, "free_builds_monthly": 500,
                                    "usd_per_build_beyond": 0.03}
    assert cost["price_sources"]["build_minute"] == "cloud.google.com/build/pricing"
    assert "cloud_builds" not in json.loads(stx("cost", "hello-course", "--json").stdout)
    google.denied = {"cloudbuild.builds.create", "iam.serviceAccounts.actAs"}
    google.disabled = {"cloudbuild.googleapis.com"}
    result = stx("doctor", "hello-course", "--builder", "cloud", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["cloud build"]["status"] == "fail"
    assert "cloudbuild.builds.create, iam.serviceAccounts.actAs" in checks["cloud build"][
        "detail"]
    assert "cloudbuild.googleapis.com" in checks["apis"]["detail"]
    local = json.loads(stx("doctor", "hello-course", "--json").stdout)
    assert "cloud build" not in {c["name"] for c in local["checks"]}


def test_cloud_build_runs_where_every_project_may_build_and_pushes_to_the_run_region(
        no_docker: Path, google: FakeGoogle) -> None:
    """Some projects may build only in six regions (cloud.google.com/build/docs/locations):
    from europe-west4 the build runs in europe-west1 by default, or where --build-region says;
    the image still goes to the Cloud Run region's registry."""
    result = stx("up", "hello-course", "--builder", "cloud", "--region", "europe-west4",
                 "--yes", "--no-verify")
    assert result.exit_code == 0, result.output
    creates = [path for _, path, method in google.requests
               if method == "cloudbuild.projects.locations.builds.create"]
    assert creates == ["/v1/projects/course-project-1/locations/europe-west1/builds"]
    assert google.builds[0]["images"][0].startswith("europe-west4-docker.pkg.dev/")
    assert default_build_region("us-east4") == "us-central1"
    assert default_build_region("us-west1") == "us-west2"
    assert default_build_region("asia-northeast1") == "asia-east1"
    assert default_build_region("me-central1") == "europe-west1"
    assert default_build_region("southamerica-east1") == "southamerica-east1"
    bad = stx("plan", "hello-course", "--builder", "cloud", "--build-region", "Europe West")
    assert bad.exit_code == 2 and "stx:buildRegion (--build-region)" in bad.output
