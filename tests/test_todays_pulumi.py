"""Today's Pulumi (issue #9): portable state across clones, the current CLI found as users
install it, both event transports, and --max up to 1000 without new revisions."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import STANDIN, PulumiStandIn
from helpers import resources, snapshot, stx, stx_json

pytestmark = pytest.mark.e2e
SERVICE = "hello-course-dev"


def test_state_holds_no_machine_path_and_a_clone_elsewhere_previews_no_change(
        workspace: Path, pulumi_cli: PulumiStandIn, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert stx("up", "hello-course", "--yes", "--no-verify").exit_code == 0
    state_dir = workspace / ".pulumi-state" / ".pulumi"
    for file in state_dir.rglob("*.json"):
        assert str(workspace) not in file.read_text(), file
    config = yaml.safe_load((workspace / "stacks/Pulumi.hello-course.dev.yaml").read_text())
    assert config["config"]["stx:path"] == "examples/hello-course"
    clone = tmp_path / "teammate" / "clone"
    shutil.copytree(workspace, clone)  # another checkout, its state shared as a bucket would be
    monkeypatch.chdir(clone)
    data = stx_json("preview", "hello-course")
    assert data["changes"] == {"create": 0, "update": 0, "replace": 0, "delete": 0, "same": 6}


def test_up_from_another_folder_updates_the_recorded_one_and_says_so(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    assert stx("up", "hello-course", "--yes", "--no-verify").exit_code == 0
    moved = workspace / "courses" / "hello-course"
    shutil.copytree(workspace / "examples" / "hello-course", moved)
    result = stx("up", "./courses/hello-course", "--yes", "--no-verify")
    assert result.exit_code == 0, result.output
    assert ("stx:path: the app folder changes from examples/hello-course to "
            "courses/hello-course") in result.output
    assert "building courses/hello-course as src-" in result.output
    config = yaml.safe_load((workspace / "stacks/Pulumi.hello-course.dev.yaml").read_text())
    assert config["config"]["stx:path"] == "courses/hello-course"
    # a later scale-only up keeps what was recorded last, not the first folder: nothing built
    later = stx("up", "hello-course", "--max", "12", "--yes", "--no-verify")
    assert later.exit_code == 0 and "is deployed already: nothing to build" in later.output
    image = next(r for r in resources(workspace, "hello-course.dev").values()
                 if r["type"] == "docker:index/image:Image")
    assert image["inputs"]["build"]["context"].endswith("courses/hello-course")


def test_the_revision_ceiling_is_the_peak_and_raising_it_says_it_makes_a_revision(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    """Above Cloud Run's revision default of 100, the ceiling is the most the service asks
    (base and windows), never 1000: Cloud Run refuses a ceiling the region's quota cannot
    give. A scale change below the ceiling makes no revision; raising it does, and says so."""
    assert stx("up", "hello-course", "--max", "150", "--yes", "--no-verify").exit_code == 0
    first = resources(workspace, "hello-course.dev")[SERVICE]
    assert first["inputs"]["template"]["scaling"]["maxInstanceCount"] == 150
    lower = stx_json("up", "hello-course", "--max", "120", "--yes", "--no-verify")
    assert lower["changes"]["update"] == 1
    second = resources(workspace, "hello-course.dev")[SERVICE]
    assert second["inputs"]["template"]["scaling"]["maxInstanceCount"] == 120
    raised = stx("up", "hello-course", "--max", "200", "--yes", "--no-verify")
    assert ("hello-course-dev: the revision ceiling goes from 120 to 200 (the most its base and "
            "windows ask): this up makes a new revision") in raised.output
    third = resources(workspace, "hello-course.dev")[SERVICE]
    assert third["outputs"]["latestCreatedRevision"] != second["outputs"][
        "latestCreatedRevision"]
    same = stx_json("up", "hello-course", "--max", "200", "--yes", "--no-verify")
    assert same["changes"]["update"] == 0


def test_a_max_the_regions_quota_cannot_give_is_refused_before_anything_changes(
        workspace: Path, pulumi_cli: PulumiStandIn, google: Any) -> None:
    google.quota = (1_000_000, 4000 * 2**30)  # 1,000 vCPU: 250 instances of 4 vCPU
    home = Path(__import__("os").environ["STX_PULUMI_HOME"])
    before = snapshot(workspace, home)
    result = stx("up", "hello-course", "--max", "300", "--cpu", "4", "--memory", "2Gi",
                 "--yes", "--no-verify")
    assert result.exit_code == 2, result.output
    assert ("hello-course-dev: asks up to 300 instances of 4 vCPU/2 GiB; the europe-west1 "
            "quota (1000 vCPU, 4000 GiB) allows 250") in result.output
    assert snapshot(workspace, home) == before
    assert "up" not in pulumi_cli.commands()


def test_a_version_manager_shim_on_path_is_found(workspace: Path, tmp_path: Path,
                                                 pulumi_cli: PulumiStandIn,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """asdf or mise put a `pulumi` script in a shims folder with no ../bin layout."""
    shims = tmp_path / "asdf" / "shims"
    shims.mkdir(parents=True)
    (shims / "pulumi").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
    (shims / "pulumi").chmod(0o755)
    for tool in ("docker", "gcloud"):
        shutil.copy(pulumi_cli.root / "bin" / tool, shims / tool)
    monkeypatch.setenv("PATH", f"{shims}:/usr/bin:/bin")
    result = stx("up", "hello-course", "--yes", "--no-verify")
    assert result.exit_code == 0, result.output


def test_a_cli_whose_version_command_fails_is_exit_3(workspace: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pulumi").write_text("#!/bin/sh\necho 'pulumi: corrupt install' >&2\nexit 2\n")
    (broken / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{broken}:/usr/bin:/bin")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    result = stx("outputs", "hello-course")
    assert result.exit_code == 3
    assert "failed to run `pulumi version`" in result.output and "Traceback" not in (
        result.output)


def test_init_writes_a_portable_workspace(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert stx("init").exit_code == 0
    project = yaml.safe_load((tmp_path / "Pulumi.yaml").read_text())
    assert project["main"] == "__main__.py" and project["backend"] == {
        "url": "file://.pulumi-state"}
    assert "from stx_pulumi.pulumi_main import main" in (tmp_path / "__main__.py").read_text()
    text = json.dumps(project) + (tmp_path / "__main__.py").read_text()
    assert str(tmp_path) not in text and "site-packages" not in text


def test_a_scale_only_up_needs_no_docker_and_skip_checks_skips_all(
        workspace: Path, pulumi_cli: PulumiStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    assert stx("up", "hello-course", "--yes", "--no-verify").exit_code == 0
    monkeypatch.setenv("STANDIN_DOCKER_DOWN", "1")
    result = stx("up", "hello-course", "--max", "14", "--yes", "--no-verify")
    assert result.exit_code == 0, result.output  # the tag is deployed: nothing to build
    (workspace / "examples" / "hello-course" / "book.py").write_text("# edited\n")
    # a new tag to build: the local builder needs the daemon (auto would build in the cloud)
    result = stx("up", "hello-course", "--yes", "--no-verify", "--builder", "local")
    assert result.exit_code == 3 and "docker: the Docker daemon is not reachable" in (
        result.output)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(workspace / "nobody-logged-in"))
    result = stx("up", "hello-course", "--yes", "--no-verify", "--skip-checks", "--builder",
                 "local")
    assert result.exit_code == 0, result.output  # CI: checked once with doctor


def test_a_targeted_create_under_an_untargeted_new_parent_fails_as_the_engine_says(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    """The stand-in targets as the real engine does (pkg/resource/deploy/step_generator.go):
    only providers and the stack are implicitly targeted, so a new component left out of
    --target is a skipped create and its targeted child fails with error 2013."""
    from pulumi import automation as auto

    def program() -> None:
        import pulumi
        from pulumi_gcp import serviceaccount

        parent = pulumi.ComponentResource("stx:index:StreamtexApp", "app", None)
        serviceaccount.Account("acct", account_id="acct-1",
                               opts=pulumi.ResourceOptions(parent=parent))

    backend = workspace / ".pulumi-state"
    backend.mkdir(exist_ok=True)
    stack = auto.create_or_select_stack("t.dev", "stx-pulumi", program, opts=auto.
                                        LocalWorkspaceOptions(work_dir=str(workspace), env_vars={
                                            "PULUMI_BACKEND_URL": f"file://{backend}"}))
    prefix = "urn:pulumi:t.dev::stx-pulumi::stx:index:StreamtexApp"
    child = f"{prefix}$gcp:serviceaccount/account:Account::acct"
    with pytest.raises(auto.CommandError, match=(
            f"Resource '{re.escape(child)}' depends on '{re.escape(prefix)}::app' which was "
            "was not specified in --target list")):
        stack.up(target=[child])
    assert stack.export_stack().deployment.get("resources") in (None, [])  # nothing made
    assert stack.up(target=[f"{prefix}::app", child]).summary.result == "succeeded"


def test_the_first_cloud_build_of_a_new_stack_makes_its_build_base_alone(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    """`prepare_build` targets the build base and its parent component: with the stand-in
    refusing what the engine refuses, it works on a stack that has nothing yet."""
    from stx_pulumi.engine.stacks import Engine
    from stx_pulumi.workspace import load_spec

    spec, ws = load_spec("hello-course", env="dev", overrides={"stx:builder": "cloud"},
                         cwd=workspace, environ=__import__("os").environ)
    result = Engine(ws, __import__("os").environ).prepare_build(spec)
    assert result.changes["create"] == 7  # the component and the six resources of the base
    assert set(resources(workspace, "hello-course.dev")) == set(spec.build_base_names)
