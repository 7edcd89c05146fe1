"""Upgrades: a stack deployed by the previous release upgrades with one `up` of this one, with
no service replaced, the same URL and no IAM binding lost in between.

The previous release is its own code, taken from git history (`git archive`) and run as a
process; both releases drive the same stand-in engine and the same workspace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, PulumiStandIn
from helpers import resources, stx_json

pytestmark = pytest.mark.e2e
PREVIOUS_RELEASE = "5970745"  # the last commit of the release before issues 8 and 9
LAST_RELEASE = "3b844f4"  # the release before books as one stack (issue 10)
ACCOUNT = "serviceAccount:hello-course-dev-run@course-project-1.iam.gserviceaccount.com"


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    """The previous release's `stx_pulumi` package, unpacked from git history."""
    return release(PREVIOUS_RELEASE, tmp_path)


def release(commit: str, tmp_path: Path) -> Path:
    """The `stx_pulumi` package of `commit`, unpacked from git history."""
    done = subprocess.run(["git", "-C", str(REPO), "archive", commit, "stx_pulumi"],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"commit {commit} is not in this clone's history")
    root = tmp_path / f"release-{commit}"
    with tarfile.open(fileobj=BytesIO(done.stdout)) as archive:
        archive.extractall(root, filter="data")
    return root


def run_previous(root: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-m", "stx_pulumi", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=120)


def bindings(workspace: Path) -> dict[str, list[str]]:
    return json.loads((workspace / ".pulumi-state/.pulumi/.standin-cloud.json").read_text())


def test_previous_release_upgrades_with_one_up(workspace: Path, pulumi_cli: PulumiStandIn,
                                               previous: Path) -> None:
    old = run_previous(previous, workspace, "up", "hello-course", "--yes", "--no-verify",
                       "--max", "100", "--secret-env", "STX_AUTH_A=course-auth",
                       "--secret-env", "STX_AUTH_B=course-auth")
    assert old.returncode == 0, old.stderr
    before = resources(workspace, "hello-course.dev")
    assert {"hello-course-dev-secret-stx-auth-a", "hello-course-dev-secret-stx-auth-b"} <= set(
        before)
    url = before["hello-course-dev"]["outputs"]["uri"]

    data = stx_json("up", "hello-course", "--yes", "--no-verify")

    assert data["changes"]["replace"] == 0 and data["changes"]["delete"] == 0
    after = resources(workspace, "hello-course.dev")
    assert after["hello-course-dev"]["outputs"]["uri"] == url == data["outputs"]["url"]
    image = "hello-course-dev-image"
    assert after[image]["inputs"] == before[image]["inputs"]  # no rebuild: the tag is the same
    assert after["hello-course-dev"]["outputs"]["latestCreatedRevision"] == before[
        "hello-course-dev"]["outputs"]["latestCreatedRevision"]  # no new revision
    assert [n for n in after if "-secret-" in n] == ["hello-course-dev-secret-course-auth"]
    # the binding was never dropped: the member is still there, once
    assert bindings(workspace) == {"course-auth|roles/secretmanager.secretAccessor": [ACCOUNT]}
    assert data["outputs"]["protected"] is False
    # and a second up of this release changes nothing
    assert stx_json("up", "hello-course", "--yes", "--no-verify")["changes"]["same"] == len(
        after) + 1


def test_renaming_a_variable_keeps_the_secret_binding(workspace: Path,
                                                      pulumi_cli: PulumiStandIn,
                                                      previous: Path) -> None:
    """The failure the review found: renaming one of two variables on one secret deleted the
    binding the other still needed."""
    old = run_previous(previous, workspace, "up", "hello-course", "--yes", "--no-verify",
                       "--secret-env", "STX_AUTH_A=course-auth",
                       "--secret-env", "STX_AUTH_B=course-auth")
    assert old.returncode == 0, old.stderr
    stx_json("up", "hello-course", "--yes", "--no-verify", "--unset", "secretEnv",
             "--secret-env", "STX_AUTH_LIVE=course-auth", "--secret-env",
             "STX_AUTH_B=course-auth")
    assert bindings(workspace) == {"course-auth|roles/secretmanager.secretAccessor": [ACCOUNT]}


@pytest.mark.parametrize("app", [
    ("hello-course", "--max", "100"),
    ("course", "--path", "examples/course-books", "--folder", "manuals/intro"),
], ids=["hello-course", "one-book-folder"])
def test_a_stack_of_the_last_release_upgrades_changing_only_the_registrys_cleanup(
        workspace: Path, pulumi_cli: PulumiStandIn, tmp_path: Path, app: tuple[str, ...]) -> None:
    """Books came with a new layout of the program (one service per book): an app with one
    service, FOLDER or not, keeps every name and input. Releases add one cleanup rule to the
    registry (keep the images tagged rel-N): its only update."""
    shutil.copytree(REPO / "examples" / "course-books", workspace / "examples" / "course-books")
    old = run_previous(release(LAST_RELEASE, tmp_path), workspace, "up", *app, "--yes",
                       "--no-verify")
    assert old.returncode == 0, old.stderr
    before = resources(workspace, f"{app[0]}.dev")

    data = stx_json("up", app[0], "--yes", "--no-verify")

    assert data["changes"] == {"create": 0, "update": 1, "replace": 0, "delete": 0,
                               "same": len(before)}
    after = resources(workspace, f"{app[0]}.dev")
    service = f"{app[0]}-dev"
    assert {n for n in after if after[n]["inputs"] != before[n]["inputs"]} == {
        f"{service}-repo"}
    assert after[service]["outputs"]["latestCreatedRevision"] == before[service]["outputs"][
        "latestCreatedRevision"]
    assert after[service]["outputs"]["uri"] == before[service]["outputs"]["uri"]
    assert data["outputs"]["url"] == before[service]["outputs"]["uri"]


REPOSITORY = "hello-course-dev-repo"
WINDOWS_RELEASE = "693b669"  # the last release before windows started a workflow (issue 22)
NOW = "2026-11-23T12:00Z"
CLASS = ("--start", "2026-12-01 08:00", "--end", "2026-12-01 10:00", "--tz", "Europe/Paris",
         "--users", "1000")


def test_a_window_the_last_release_failed_to_schedule_upgrades_with_one_up(
        workspace: Path, pulumi_cli: PulumiStandIn, google: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """That release gave the scheduler a conditional binding through the provider: on real
    Google the create writes it, then fails (the provider cannot read it back), so every `up`
    with a window failed and left a binding nothing tracks. This release's `up` removes it and
    schedules the window through the workflow, replacing nothing."""
    monkeypatch.setenv("STX_PULUMI_NOW", NOW)
    previous = release(WINDOWS_RELEASE, tmp_path)
    assert run_previous(previous, workspace, "up", "hello-course", "--yes",
                        "--no-verify").returncode == 0
    failed = run_previous(previous, workspace, "event", "add", "hello-course", *CLASS, "--up",
                          "--yes")
    assert failed.returncode == 1, failed.stderr
    assert "Root resource was present, but now absent" in failed.stderr
    service = "projects/course-project-1/locations/europe-west1/services/hello-course-dev"
    assert [b["condition"]["title"] for b in google.policies[service]["bindings"]
            if b.get("condition")] == ["stx event w20261201-0800"]
    before = resources(workspace, "hello-course.dev")

    data = stx_json("event", "add", "hello-course", *CLASS, "--up", "--yes")

    assert data["changes"]["replace"] == 0 and data["changes"]["delete"] == 0
    assert not any(b.get("condition") for b in google.policies[service]["bindings"])
    after = resources(workspace, "hello-course.dev")
    assert after["hello-course-dev"]["outputs"]["latestCreatedRevision"] == before[
        "hello-course-dev"]["outputs"]["latestCreatedRevision"]
    assert {n for n in before if n in after and after[n]["inputs"] != before[n]["inputs"]} <= {
        "hello-course-dev", REPOSITORY}  # the window's scaling is not in force yet: the service
    # is as it was; the repository's scanning is said off (issue 27)
    assert {"hello-course-dev-events", "hello-course-dev-sched-update",
            "hello-course-dev-w20261201-0800-warm"} <= set(after)
    assert stx_json("up", "hello-course", "--yes", "--no-verify")["changes"]["update"] == 0


def test_a_stack_of_the_last_release_upgrades_with_nothing_changed(
        workspace: Path, pulumi_cli: PulumiStandIn, tmp_path: Path) -> None:
    old = run_previous(release(WINDOWS_RELEASE, tmp_path), workspace, "up", "hello-course",
                       "--yes", "--no-verify", "--max", "50")
    assert old.returncode == 0, old.stderr
    before = resources(workspace, "hello-course.dev")
    data = stx_json("up", "hello-course", "--yes", "--no-verify")
    # one in-place update since: the dev repository's scanning is said off (issue 27: every
    # scanned digest is billed, and only protected envs' images are gated)
    assert data["changes"] == {"create": 0, "update": 1, "replace": 0, "delete": 0,
                               "same": len(before)}
    after = resources(workspace, "hello-course.dev")
    assert {n for n in before if after[n]["inputs"] != before[n]["inputs"]} == {REPOSITORY}
    assert after[REPOSITORY]["inputs"]["vulnerabilityScanningConfig"] == {
        "enablementConfig": "DISABLED"}
    again = stx_json("up", "hello-course", "--yes", "--no-verify")
    assert {k: n for k, n in again["changes"].items() if n and k != "same"} == {}


WATCH_RELEASE = "e0ed235"  # the last release before alerts, dashboards and budgets (issue 27)


def test_a_protected_stack_of_the_last_release_gains_alerts_with_one_up(
        workspace: Path, pulumi_cli: PulumiStandIn, tmp_path: Path) -> None:
    """Its policies, uptime checks and dashboard are created and its repository's scanning
    turned on; nothing is replaced or deleted. A dev stack of that release gains no alert (on
    by default in protected envs only): its repository's scanning is said off, nothing else."""
    previous = release(WATCH_RELEASE, tmp_path)
    for env in ("prod", "dev"):
        old = run_previous(previous, workspace, "up", "hello-course", "--env", env, "--yes",
                           "--no-verify")
        assert old.returncode == 0, old.stderr
    before = resources(workspace, "hello-course.prod")
    data = stx_json("up", "hello-course", "--env", "prod", "--yes", "--no-verify")
    assert data["changes"]["replace"] == 0 and data["changes"]["delete"] == 0
    after = resources(workspace, "hello-course.prod")
    added = {r["type"].rsplit(":", 1)[1] for name, r in after.items() if name not in before}
    assert added == {"UptimeCheckConfig", "AlertPolicy", "Dashboard"}
    changed = {n for n in before if after[n]["inputs"] != before[n]["inputs"]}
    assert changed == {"hello-course-prod-repo"}  # its scanning on, for the gate
    assert set(before) <= set(after)  # every resource of the last release is still there
    dev = stx_json("up", "hello-course", "--yes", "--no-verify")
    assert {k: n for k, n in dev["changes"].items() if n and k != "same"} == {"update": 1}
