"""First-time setup (issue #16), against local stand-ins of Google's Resource Manager, Cloud
Billing, Service Usage (with its long-running operation) and Cloud Quotas APIs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from fake_google import FakeGoogle
from helpers import on_terminal, snapshot, stx, stx_json

from stx_pulumi.model.capacity import limit


@pytest.fixture
def ready(workspace: Path, google: FakeGoogle) -> FakeGoogle:
    return google


def _home() -> Path:
    return Path(os.environ["STX_PULUMI_HOME"])


def test_a_ready_project_is_recorded_once_and_a_second_run_changes_nothing(
        workspace: Path, ready: FakeGoogle) -> None:
    data = stx_json("setup")
    assert data["project"] == "course-project-1" and data["region"] == "europe-west1"
    steps = {s["name"]: s for s in data["steps"]}
    assert steps["project"]["detail"] == "course-project-1 (from GOOGLE_CLOUD_PROJECT)"
    assert steps["billing"]["status"] == steps["apis"]["status"] == "pass"
    assert data["changed"] == ["recorded course-project-1 in europe-west1 as the workspace "
                               "default"]
    before = snapshot(workspace, _home())
    again = stx("setup")
    assert again.exit_code == 0, again.output
    assert "nothing to change: this machine and project are ready" in again.output
    assert "next: stx-pulumi up APP_FOLDER (the folder of your course's Dockerfile)" in again.output
    assert snapshot(workspace, _home()) == before
    assert ready.enabled_now == []


def test_missing_apis_are_enabled_only_after_confirmation(
        workspace: Path, ready: FakeGoogle) -> None:
    ready.disabled = {"iam.googleapis.com", "artifactregistry.googleapis.com"}
    before = snapshot(workspace, _home())
    refused = stx("setup")  # no terminal, no --yes
    assert refused.exit_code == 2
    assert "--yes: artifactregistry.googleapis.com, iam.googleapis.com must be enabled" in (
        refused.output)
    assert ready.enabled_now == [] and snapshot(workspace, _home()) == before
    data = stx_json("setup", "--yes")
    assert ready.enabled_now == ["artifactregistry.googleapis.com", "iam.googleapis.com"]
    assert "enabled artifactregistry.googleapis.com, iam.googleapis.com" in data["changed"]
    assert stx_json("setup", "--yes")["changed"] == []  # idempotent


def test_billing_off_stops_before_anything_is_enabled(workspace: Path,
                                                      ready: FakeGoogle) -> None:
    ready.billing = False
    ready.disabled = {"run.googleapis.com"}
    before = snapshot(workspace, _home())
    result = stx("setup", "--yes")
    assert result.exit_code == 3
    assert "billing is not enabled on course-project-1" in result.output
    assert "console.cloud.google.com/billing/linkedaccount?project=course-project-1" in (
        result.output)
    assert ready.enabled_now == [] and snapshot(workspace, _home()) == before


def test_no_credentials_names_the_login_command(workspace: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    result = stx("setup")
    assert result.exit_code == 3
    assert "gcloud auth application-default login" in result.output


def test_the_quota_fails_when_a_max_does_not_fit_the_region(
        workspace: Path, ready: FakeGoogle) -> None:
    stack = workspace / "stacks" / "Pulumi.hello-course.dev.yaml"
    data = yaml.safe_load(stack.read_text())
    data["config"].update({"stx:maxInstances": 800, "stx:cpu": 4, "stx:memory": "2Gi"})
    stack.write_text(yaml.safe_dump(data))
    ready.quota = (1_000_000, 4000 * 2**30)  # 1,000 vCPU: 250 instances of 4 vCPU
    result = stx("setup", "--json")
    assert result.exit_code == 3  # `up` would be refused: the project is not ready
    steps = {s["name"]: s for s in json.loads(result.stdout)["steps"]}
    assert steps["quota"]["status"] == "fail"
    assert steps["quota"]["detail"] == (
        "hello-course-dev: asks up to 800 instances of 4 vCPU/2 GiB; the europe-west1 quota "
        "(1000 vCPU, 4000 GiB) allows 250")
    assert "iam-admin/quotas?project=course-project-1" in steps["quota"]["fix"]
    assert limit((1000, 2000), 2, 4) == 500  # the docs' example


def test_stx_deploy_env_comes_after_options_and_stack_config_before_gcloud(
        workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    gcloud = Path(os.environ["CLOUDSDK_CONFIG"])
    (gcloud / "configurations").mkdir(parents=True, exist_ok=True)
    (gcloud / "configurations" / "config_default").write_text(
        "[core]\nproject = gcloud-project-1\n")
    app = workspace / "examples" / "hello-course"
    stack = workspace / "stacks" / "Pulumi.hello-course.dev.yaml"
    data = yaml.safe_load(stack.read_text())
    del data["config"]["gcp:region"]  # the example pins it: a stack setting wins
    stack.write_text(yaml.safe_dump(data))

    def project(*args: str) -> str:
        return stx_json("plan", "hello-course", *args)["project"]

    assert project() == "gcloud-project-1"
    (app / ".stx-deploy.env").write_text("GCP_PROJECT_ID=deploy-env-project\n"
                                         "GCP_REGION=europe-west4\n")
    assert project() == "deploy-env-project"
    assert stx_json("plan", "hello-course")["region"] == "europe-west4"
    data = yaml.safe_load(stack.read_text())
    data["config"]["gcp:project"] = "stack-project-1"
    stack.write_text(yaml.safe_dump(data))
    assert project() == "stack-project-1"
    assert project("--project", "option-project-1") == "option-project-1"


def test_save_env_writes_the_choice_for_streamtex(workspace: Path, ready: FakeGoogle) -> None:
    (workspace / ".stx-deploy.env").write_text("# StreamTeX\nGCP_REGISTRY=europe-docker\n")
    data = stx_json("setup", "--region", "europe-west4", "--save-env")
    text = (workspace / ".stx-deploy.env").read_text()
    assert "GCP_REGISTRY=europe-docker" in text and "# StreamTeX" in text
    assert "GCP_PROJECT_ID=course-project-1" in text and "GCP_REGION=europe-west4" in text
    assert "wrote GCP_REGION=europe-west4 to .stx-deploy.env" in data["changed"]
    assert not (workspace / ".gitignore").exists() or ".stx-deploy.env" not in (
        workspace / ".gitignore").read_text()  # no git here: nothing to ignore it from
    assert data["next"].startswith("stx-pulumi up APP_FOLDER")  # never a folder not there


def test_save_env_in_a_git_tree_ignores_the_file(workspace: Path, ready: FakeGoogle) -> None:
    (workspace / ".git").mkdir()
    (workspace / ".gitignore").write_text("__pycache__/")  # no final newline
    data = stx_json("setup", "--save-env")
    assert (workspace / ".gitignore").read_text() == "__pycache__/\n.stx-deploy.env\n"
    assert any(".gitignore" in change for change in data["changed"])
    again = stx_json("setup", "--save-env")  # once only
    assert not any(".gitignore" in change for change in again["changed"])


def test_the_project_is_picked_from_a_list_at_a_real_terminal(
        workspace: Path, ready: FakeGoogle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    refused = stx("setup")  # no terminal: the list is the error
    assert refused.exit_code == 2
    assert "--project: no project known on this machine; pass one of: course-project-1, " \
           "other-project-2" in refused.output
    code, text = on_terminal(["setup", "--json"], workspace, {b"Project number": b"2\n"},
                             {"COLUMNS": "100"})
    assert code == 0, text
    assert "1. course-project-1 (Course project)" in text and "2. other-project-2" in text
    assert json.loads((workspace / ".stx-pulumi.json").read_text())["project"] == (
        "other-project-2")


def test_a_protected_env_gets_scanning_and_monitoring_enabled(
        workspace: Path, ready: FakeGoogle) -> None:
    """The vulnerability gate and the alerts of a protected env need Container Scanning,
    Container Analysis and Monitoring; a workspace of dev stacks only does not enable them
    (each scanned image is billed)."""
    ready.disabled = {"containerscanning.googleapis.com", "containeranalysis.googleapis.com",
                      "monitoring.googleapis.com"}
    assert stx_json("setup", "--yes")["changed"] == [
        "recorded course-project-1 in europe-west1 as the workspace default"]
    assert ready.enabled_now == []  # dev stacks only
    (workspace / "stacks" / "Pulumi.hello-course.prod.yaml").write_text(
        "config:\n  stx:path: examples/hello-course\n")
    stx_json("setup", "--yes")
    assert ready.enabled_now == ["containerscanning.googleapis.com",
                                 "containeranalysis.googleapis.com",
                                 "monitoring.googleapis.com"]
