"""End to end: the real pulumi.automation and the real program, against the stand-in engine.

Each scenario types commands as a user would; the stand-in `pulumi` (tests/standin) runs the
inline program through Pulumi's own gRPC protocol and keeps state in a file backend.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from fake_app import FakeApp
from helpers import resources, state, stx, stx_json, stx_process

pytestmark = pytest.mark.e2e
SERVICE = "hello-course-dev"
ZONE = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def deployed(workspace: Path, pulumi_cli: object, app_dir: Path) -> Path:
    """Scenario 1's first up, shared by the later scenarios."""
    result = stx("up", "hello-course", "--path", "examples/hello-course", "--max", "100",
                 "--yes")
    assert result.exit_code == 0, result.output
    return workspace


def test_1_up_creates_every_resource_and_outputs_match(deployed: Path,
                                                       deployed_app: FakeApp) -> None:
    names = set(resources(deployed, "hello-course.dev"))
    assert names == {"hello-course-dev", "hello-course-dev-repo", "hello-course-dev-image",
                     "hello-course-dev-run-sa", "hello-course-dev-public"}
    outputs = stx_json("outputs", "hello-course")
    assert outputs["url"] == deployed_app.url
    assert outputs["max_instances"] == 100 and outputs["service"] == SERVICE
    assert outputs["image"].endswith(outputs["image"].split("@")[1])
    service = resources(deployed, "hello-course.dev")[SERVICE]["inputs"]
    assert service["scaling"]["maxInstanceCount"] == 100
    assert service["template"]["containers"][0]["image"] == outputs["image"]


def test_1_up_prints_the_url_and_verifies_it(workspace: Path, pulumi_cli: object,
                                             deployed_app: FakeApp) -> None:
    result = stx("up", "hello-course", "--max", "100", "--yes")
    assert result.exit_code == 0, result.output
    assert f"URL {deployed_app.url}" in result.stdout
    assert "created" in result.output
    assert "verify hello-course.dev: passed" in result.output
    paths = [p for p, _ in deployed_app.requests]
    assert {"/_stcore/health", "/", "/html/", "/_stcore/host-config"} <= set(paths)


def test_2_second_up_changes_nothing(deployed: Path) -> None:
    tag = stx_json("outputs", "hello-course")["image_tag"]
    data = stx_json("up", "hello-course", "--yes")
    assert data["changes"] == {"create": 0, "update": 0, "replace": 0, "delete": 0, "same": 6}
    assert data["outputs"]["image_tag"] == tag


def test_3_preview_shows_one_update_and_writes_nothing_then_up_applies(deployed: Path) -> None:
    stack_file = deployed / "stacks" / "Pulumi.hello-course.dev.yaml"
    before = stack_file.read_bytes()
    data = stx_json("preview", "hello-course", "--max", "50")
    assert data["changes"]["update"] == 1 and data["changes"]["same"] == 5
    assert stack_file.read_bytes() == before
    assert resources(deployed, "hello-course.dev")[SERVICE]["inputs"]["scaling"][
        "maxInstanceCount"] == 100
    data = stx_json("up", "hello-course", "--max", "50", "--yes")
    assert data["changes"]["update"] == 1
    assert resources(deployed, "hello-course.dev")[SERVICE]["inputs"]["scaling"][
        "maxInstanceCount"] == 50
    assert yaml.safe_load(stack_file.read_text())["config"]["stx:maxInstances"] == "50"


def test_4_edited_source_builds_a_new_tag_and_rolls_the_service(deployed: Path) -> None:
    old = stx_json("outputs", "hello-course")
    book = deployed / "examples" / "hello-course" / "book.py"
    book.write_text(book.read_text() + "\nst.write('one more line')\n")
    data = stx_json("up", "hello-course", "--yes")
    assert data["outputs"]["image_tag"] != old["image_tag"]
    assert data["outputs"]["image"] != old["image"]
    assert data["changes"]["update"] == 2  # the image and the service
    service = resources(deployed, "hello-course.dev")[SERVICE]["inputs"]
    assert service["template"]["containers"][0]["image"] == data["outputs"]["image"]


def test_5_prod_is_a_separate_protected_stack(deployed: Path) -> None:
    assert stx("env", "use", "prod").exit_code == 0
    assert stx("env").stdout.strip() == "prod"
    result = stx("up", "hello-course", "--path", "examples/hello-course", "--yes")
    assert result.exit_code == 0, result.output
    prod_file = deployed / "stacks" / "Pulumi.hello-course.prod.yaml"
    assert prod_file.is_file()
    prod = resources(deployed, "hello-course.prod")
    assert prod["hello-course-prod"]["inputs"]["deletionProtection"] is True
    assert resources(deployed, "hello-course.dev")[SERVICE]["inputs"]["deletionProtection"] is False

    # a protected env is watched: 2 uptime checks, 5 alert policies, a dashboard
    watching = [n for n, r in prod.items() if r["type"].startswith("gcp:monitoring/")]
    assert len(watching) == 8 and len(prod) == 5 + 8
    refused = stx("destroy", "hello-course", "--yes")
    assert refused.exit_code == 2 and "--unprotect" in refused.output
    assert len(resources(deployed, "hello-course.prod")) == 5 + 8

    result = stx("destroy", "hello-course", "--yes", "--unprotect")
    assert result.exit_code == 0, result.output
    history = state(deployed, "hello-course.prod")["history"]
    lift, destroy = history[-2], history[-1]
    assert lift["kind"] == "update" and lift["resourceChanges"] == {"update": 1}
    assert destroy["kind"] == "destroy" and destroy["result"] == "succeeded"
    assert resources(deployed, "hello-course.prod") == {}
    assert len(resources(deployed, "hello-course.dev")) == 5  # dev untouched


def test_6_destroy_leaves_nothing(deployed: Path) -> None:
    data = stx_json("destroy", "hello-course", "--yes")
    assert data["changes"]["delete"] == 6
    assert resources(deployed, "hello-course.dev") == {}
    listing = stx_json("stacks")
    (entry,) = listing["stacks"]
    assert entry["stack"] == "hello-course.dev" and entry["resource_count"] == 0
    assert entry["url"] is None and entry["result"] == "succeeded"


def test_7_concurrent_ups_one_waits_for_the_lock(deployed: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_HOLD_LOCK", "4")
    first = stx_process("up", "hello-course", "--max", "20", "--yes", cwd=deployed)
    locks = deployed / ".pulumi-state" / ".pulumi" / "locks" / "stx-pulumi" / "hello-course.dev"
    deadline = time.monotonic() + 30
    while not list(locks.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    monkeypatch.setenv("STANDIN_HOLD_LOCK", "0")
    second = stx_process("up", "hello-course", "--max", "30", "--yes", cwd=deployed)
    _, err2 = second.communicate(timeout=60)
    _, err1 = first.communicate(timeout=60)
    assert first.returncode == 0, err1
    assert second.returncode == 4, err2
    assert "locked by another update" in err2 and "stx-pulumi cancel" in err2
    assert "created by" in err2 or "(" in err2


def test_8_failing_resource_exits_1_keeps_what_was_made_and_next_up_finishes(
        workspace: Path, pulumi_cli: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_FAIL_TYPE", "gcp:cloudrunv2/service:Service")
    result = stx("up", "hello-course", "--yes")
    assert result.exit_code == 1
    assert "Permission denied" in result.output and SERVICE in result.output
    assert "Traceback" not in result.output
    made = resources(workspace, "hello-course.dev")
    assert "hello-course-dev-repo" in made and SERVICE not in made
    monkeypatch.delenv("STANDIN_FAIL_TYPE")
    data = stx_json("up", "hello-course", "--yes")
    assert data["changes"]["create"] >= 2
    assert SERVICE in resources(workspace, "hello-course.dev")


def test_9_cloudflare_record_unproxied_and_token_only_as_secure(
        deployed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "cf-token-9f8e7d6c5b4a"
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", token)
    result = stx("up", "hello-course", "--domain", "course.example.org", "--cloudflare-zone", ZONE,
                 "--yes")
    assert result.exit_code == 0, result.output
    made = resources(deployed, "hello-course.dev")
    record = made["hello-course-dev-dns"]["inputs"]
    assert record["proxied"] is False and record["type"] == "CNAME" and record["ttl"] == 1
    assert record["content"] == "ghs.googlehosted.com"
    assert "hello-course-dev-domain" in made
    stack_text = (deployed / "stacks" / "Pulumi.hello-course.dev.yaml").read_text()
    assert token not in stack_text
    assert yaml.safe_load(stack_text)["config"]["cloudflare:apiToken"]["secure"]
    state_text = json.dumps(state(deployed, "hello-course.dev"))
    assert token not in state_text
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    again = stx("up", "hello-course", "--yes")  # the stored token keeps the record
    assert again.exit_code == 0 and token not in again.output
    assert "hello-course-dev-dns" in resources(deployed, "hello-course.dev")
    for args in (["outputs", "hello-course"], ["stacks"], ["preview", "hello-course"]):
        assert token not in stx(*args).output


def test_10_json_changes_match_the_state(workspace: Path, pulumi_cli: object) -> None:
    data = stx_json("up", "hello-course", "--yes")
    assert set(data) == {"stack", "operation", "result", "changes", "outputs", "duration_s",
                         "verify"}
    assert data["verify"]["result"] == "passed"
    assert data["stack"] == "hello-course.dev" and data["operation"] == "up"
    assert data["result"] == "succeeded"
    assert data["changes"]["create"] == len(resources(workspace, "hello-course.dev")) + 1
    assert data["outputs"]["url"].startswith("http://127.0.0.1:")
    assert isinstance(data["duration_s"], float)


def test_moving_region_replaces_the_service_and_repository(deployed: Path) -> None:
    data = stx_json("up", "hello-course", "--region", "us-central1", "--yes")
    assert data["changes"]["replace"] == 2  # the service and the repository (location)
    assert data["changes"]["update"] >= 1  # the image, pushed to the new registry
    made = resources(deployed, "hello-course.dev")
    assert made[SERVICE]["inputs"]["location"] == "us-central1"
    assert made["hello-course-dev-repo"]["inputs"]["location"] == "us-central1"
