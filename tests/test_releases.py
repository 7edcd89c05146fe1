"""Releases (issue #12): a record of every `up`, `history`, a rollback in seconds that later
`up`s keep, and the images rollback offers kept by the registry's cleanup.

End to end through the stand-in engine (revisions per service, traffic assignments, stack tags)
and stand-ins of Google's Cloud Run (do the revisions still exist?) and Artifact Registry
(tag the release's image) APIs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PulumiStandIn
from fake_google import FakeGoogle
from helpers import resources, stx, stx_json

from stx_pulumi.model import releases
from stx_pulumi.model.serving import Scaling, decide

SERVICE = "hello-course-dev"
IMAGE = "hello-course-dev-image"


def _service(workspace: Path) -> dict[str, Any]:
    return resources(workspace, "hello-course.dev")[SERVICE]


def _up(workspace: Path, google: FakeGoogle, *args: str) -> dict[str, Any]:
    data = stx_json("up", "hello-course", "--yes", *args)
    google.revisions.add(_service(workspace)["outputs"]["latestReadyRevision"])
    return data


def _edit(workspace: Path) -> None:
    book = workspace / "examples" / "hello-course" / "book.py"
    book.write_text(book.read_text() + "\nst.write('v2')\n")


@pytest.fixture
def two_releases(workspace: Path, pulumi_cli: PulumiStandIn, google: FakeGoogle
                 ) -> dict[str, Any]:
    """v1 and v2 deployed and verified."""
    v1 = _up(workspace, google, "--path", "examples/hello-course", "-m", "v1")
    _edit(workspace)
    v2 = _up(workspace, google, "-m", "v2")
    return {"v1": v1["outputs"], "v2": v2["outputs"]}


def test_every_up_is_recorded_and_history_marks_the_one_serving(
        workspace: Path, two_releases: dict[str, Any], google: FakeGoogle) -> None:
    data = stx_json("history", "hello-course")
    assert [r["n"] for r in data["releases"]] == [2, 1]
    newest, oldest = data["releases"]
    assert newest["serving"] and not oldest["serving"] and data["pinned"] is None
    assert oldest["message"] == "v1" and oldest["verified"] == "passed"
    assert oldest["digest"] == two_releases["v1"]["image"]
    assert oldest["revisions"] == {SERVICE: two_releases["v1"]["ready_revision"]}
    assert newest["tag"] == two_releases["v2"]["image_tag"] != oldest["tag"]
    # each release's image is tagged rel-N in the registry, so its cleanup keeps it
    assert google.image_tags["rel-1"].endswith(two_releases["v1"]["image"].split("@")[1])
    assert set(google.image_tags) == {"rel-1", "rel-2"}


def test_rollback_moves_traffic_to_the_previous_revision_without_a_build_and_up_keeps_it(
        workspace: Path, two_releases: dict[str, Any], google: FakeGoogle) -> None:
    image_before = resources(workspace, "hello-course.dev")[IMAGE]
    revision_before = _service(workspace)["outputs"]["latestCreatedRevision"]
    result = stx("rollback", "hello-course", "--yes", "-m", "broken quiz")
    assert result.exit_code == 0, result.output
    assert "to release 1" in result.output and "--unpin" in result.output
    assert "verify hello-course.dev: passed" in result.output
    state = resources(workspace, "hello-course.dev")
    v1_revision = two_releases["v1"]["ready_revision"]
    assert state[SERVICE]["inputs"]["traffics"] == [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": v1_revision,
         "percent": 100}]
    assert state[IMAGE] == image_before  # no build
    assert state[SERVICE]["outputs"]["latestCreatedRevision"] == revision_before  # no revision
    history = stx_json("history", "hello-course")
    assert history["pinned"] == 1 and history["releases"][0]["kind"] == "rollback"
    # what serves is release 1's image: its tag, not the source's (v2)
    assert history["releases"][0]["tag"] == two_releases["v1"]["image_tag"]
    assert stx_json("outputs", "hello-course")["image_tag"] == two_releases["v1"]["image_tag"]
    assert history["releases"][0]["revisions"] == {SERVICE: v1_revision}  # what serves
    assert history["releases"][0]["digest"] == two_releases["v1"]["image"]
    assert [r["n"] for r in history["releases"] if r["serving"]] == [1]

    _up(workspace, google, "--max", "20")  # a scale-only up keeps the pin
    service = _service(workspace)
    assert service["inputs"]["scaling"]["maxInstanceCount"] == 20
    assert service["inputs"]["traffics"][0]["revision"] == v1_revision

    _up(workspace, google, "--unpin")
    service = _service(workspace)
    assert service["inputs"]["traffics"] == [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]
    config = yaml.safe_load((workspace / "stacks/Pulumi.hello-course.dev.yaml").read_text())
    assert "stx:pin" not in config["config"]


def test_rollback_redeploys_the_digest_when_the_revision_is_gone(
        workspace: Path, two_releases: dict[str, Any], google: FakeGoogle) -> None:
    google.revisions.discard(two_releases["v1"]["ready_revision"])
    image_before = resources(workspace, "hello-course.dev")[IMAGE]
    result = stx("rollback", "hello-course", "--yes")
    assert result.exit_code == 0, result.output
    assert "runs with today's settings and secrets" in result.output
    state = resources(workspace, "hello-course.dev")
    container = state[SERVICE]["inputs"]["template"]["containers"][0]
    assert container["image"] == two_releases["v1"]["image"]
    assert state[SERVICE]["inputs"]["traffics"][0]["type"] == (
        "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST")
    assert state[IMAGE] == image_before  # no build


def test_rollback_needs_a_good_release_before_the_serving_one(
        workspace: Path, pulumi_cli: PulumiStandIn, google: FakeGoogle) -> None:
    _up(workspace, google, "--path", "examples/hello-course")
    result = stx("rollback", "hello-course", "--yes")
    assert result.exit_code == 2
    assert "--to: no good release (deployed and verified) before the one serving now" in (
        result.output)
    assert stx("rollback", "hello-course", "--yes", "--to", "9").exit_code == 2
    assert stx("rollback", "hello-course", "--to", "latest", "--yes").exit_code == 2


def test_a_release_that_failed_verification_is_not_offered(
        workspace: Path, pulumi_cli: PulumiStandIn, google: FakeGoogle,
        deployed_app: Any) -> None:
    _up(workspace, google, "--path", "examples/hello-course", "-m", "v1")
    _edit(workspace)
    deployed_app.mode = "503"
    failed = stx("up", "hello-course", "--yes", "--wait-timeout", "1", "--poll-interval", "1",
                 "-m", "v2")
    assert failed.exit_code == 5
    deployed_app.mode = "healthy"
    _edit(workspace)
    _up(workspace, google, "-m", "v3")
    verified = {r["n"]: r["verified"] for r in stx_json("history", "hello-course")["releases"]}
    assert verified == {3: "passed", 2: "failed", 1: "passed"}
    assert "to release 1" in stx("rollback", "hello-course", "--yes").output


def test_the_serving_decision_puts_the_pin_first() -> None:
    pin = releases.Pin(release=1, digest="europe-west1-docker.pkg.dev/p/r/a@sha256:" + "a" * 64,
                       revisions={"svc": "svc-00001"})
    base = Scaling(0, 10)
    decided = decide(base, 80, [], None, pin=pin, service="svc")  # type: ignore[arg-type]
    assert (decided.digest, decided.revision, decided.scaling) == (
        pin.digest, "svc-00001", base)
    assert decide(base, 80, [], None).digest is None  # type: ignore[arg-type]


def test_records_keep_the_last_ten() -> None:
    previous = [{"n": n} for n in range(1, 12)]
    assert releases.record(previous, "sha-1", None, "up", {"USER": "x"},
                           __import__("datetime").datetime(2026, 1, 1))["n"] == 12
    assert releases.who({"GITHUB_ACTOR": "octo"}) == "octo (GitHub Actions)"


# -- promotion --------------------------------------------------------------------------------

@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Any:
    from fake_registry import FakeRegistry

    fake = FakeRegistry()
    monkeypatch.setenv("STX_REGISTRY_ENDPOINT", fake.endpoint)
    yield fake
    fake.server.shutdown()


def _path(ref: str) -> tuple[str, str]:
    name, _, digest = ref.partition("@")
    return name, digest


@pytest.fixture
def dev_and_prod(workspace: Path, pulumi_cli: PulumiStandIn, google: FakeGoogle) -> dict:
    dev = _up(workspace, google, "--path", "examples/hello-course")["outputs"]
    _edit(workspace)  # prod runs other code than dev until the promotion
    prod = stx_json("up", "hello-course", "--env", "prod", "--yes")["outputs"]
    return {"dev": dev, "prod": prod}


def test_promote_ships_the_exact_image_serving_in_the_source_env(
        workspace: Path, dev_and_prod: dict, registry: Any) -> None:
    source_path, digest = _path(dev_and_prod["dev"]["image"])
    registry.push(source_path, digest)
    before = dict(registry.manifests)
    refused = stx("promote", "hello-course", "--from", "dev", "--to", "prod")
    assert refused.exit_code == 2 and "protected env: pass --yes" in refused.output
    assert registry.manifests == before  # nothing copied
    result = stx("promote", "hello-course", "--from", "dev", "--to", "prod", "--yes")
    assert result.exit_code == 0, result.output
    target = "europe-west1-docker.pkg.dev/course-project-1/hello-course-prod/hello-course"
    assert registry.manifests[(target, digest)] == registry.manifests[(source_path, digest)]
    # tagged rel-2 there, so the target registry's cleanup keeps what prod serves
    assert registry.manifests[(target, "rel-2")] == registry.manifests[(target, digest)]
    assert {d for p, d in registry.blobs if p == target} == {
        d for p, d in registry.blobs if p == source_path}
    assert {a.split(" ")[0] for a in registry.auth} == {"Bearer"}  # as Artifact Registry documents
    prod = resources(workspace, "hello-course.prod")["hello-course-prod"]["inputs"]
    assert prod["template"]["containers"][0]["image"] == f"{target}@{digest}"
    history = stx_json("history", "hello-course", "--env", "prod")
    assert history["releases"][0]["kind"] == "promote" and history["pinned"] == 2
    # the records say what serves: dev's tag, not prod's source; never "by a rollback"
    assert history["releases"][0]["tag"] == dev_and_prod["dev"]["image_tag"]
    assert stx_json("outputs", "hello-course", "--env", "prod")["image_tag"] == (
        dev_and_prod["dev"]["image_tag"])
    assert "release 2 promoted (image src-" in result.output
    assert "by a rollback" not in result.output


def test_promote_refuses_an_arm_image_a_missing_one_or_no_good_release(
        workspace: Path, dev_and_prod: dict, registry: Any) -> None:
    source_path, digest = _path(dev_and_prod["dev"]["image"])
    prod_before = resources(workspace, "hello-course.prod")
    missing = stx("promote", "hello-course", "--from", "dev", "--to", "prod", "--yes")
    assert missing.exit_code == 2 and "is gone from the registry" in missing.output
    registry.push(source_path, digest, arch="arm64")
    arm = stx("promote", "hello-course", "--from", "dev", "--to", "prod", "--yes")
    assert arm.exit_code == 2 and "built for linux/arm64, not linux/amd64" in arm.output
    assert not any(p.endswith("hello-course-prod/hello-course") for p, _ in registry.manifests)
    assert resources(workspace, "hello-course.prod") == prod_before
    none = stx("promote", "hello-course", "--from", "staging", "--to", "prod", "--yes")
    assert none.exit_code == 2


def test_the_registry_keeps_every_release_image_and_the_newest_others() -> None:
    from helpers import stx_json as plan_of

    plan = plan_of("plan", "examples/hello-course")
    (repo,) = [r for r in plan["resources"]
               if r["type"] == "gcp:artifactregistry/repository:Repository"]
    policies = {p["id"]: p for p in repo["inputs"]["cleanupPolicies"]}
    assert policies["keep-releases"]["action"] == "KEEP"
    assert policies["keep-releases"]["condition"] == {"tagState": "TAGGED",
                                                      "tagPrefixes": ["rel-"]}
    assert policies["keep-recent"]["mostRecentVersions"]["keepCount"] == 5
    assert policies["delete-older"]["action"] == "DELETE"


def test_promote_to_another_region_writes_to_that_regions_registry_host(
        workspace: Path, dev_and_prod: dict, registry: Any) -> None:
    source_path, digest = _path(dev_and_prod["dev"]["image"])
    registry.push(source_path, digest)
    qa = stx_json("up", "hello-course", "--env", "qa", "--region", "us-central1", "--yes",
                  "--no-verify")
    assert qa["outputs"]["region"] == "us-central1"
    result = stx("promote", "hello-course", "--from", "dev", "--to", "qa")
    assert result.exit_code == 0, result.output
    target = "us-central1-docker.pkg.dev/course-project-1/hello-course-qa/hello-course"
    assert registry.manifests[(target, digest)] == registry.manifests[(source_path, digest)]
    assert (target, "rel-2") in registry.manifests
    assert ("PUT", f"/us-central1-docker.pkg.dev/v2/course-project-1/hello-course-qa/"
            f"hello-course/manifests/{digest}") in registry.requests


def test_promote_to_an_env_never_deployed_changes_nothing(
        workspace: Path, dev_and_prod: dict, registry: Any) -> None:
    source_path, digest = _path(dev_and_prod["dev"]["image"])
    registry.push(source_path, digest)
    before = dict(registry.manifests)
    result = stx("promote", "hello-course", "--from", "dev", "--to", "qa", "--yes")
    assert result.exit_code == 2, result.output
    assert "--to: hello-course.qa is not deployed" in result.output
    assert registry.manifests == before and registry.requests == []


def test_rollback_in_a_class_can_skip_or_shorten_the_verification(
        workspace: Path, two_releases: dict[str, Any], google: FakeGoogle) -> None:
    """As `up`: --no-verify says at once what serves; a bad --wait-timeout changes nothing."""
    bad = stx("rollback", "hello-course", "--yes", "--wait-timeout", "0")
    assert bad.exit_code == 2 and "--wait-timeout: must be between 1 and 3600" in bad.output
    assert stx_json("history", "hello-course")["pinned"] is None
    result = stx("rollback", "hello-course", "--yes", "--no-verify")
    assert result.exit_code == 0, result.output
    assert "to release 1" in result.output and "verify hello-course" not in result.output
    assert stx_json("history", "hello-course")["pinned"] == 1
