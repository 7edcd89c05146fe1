"""Fleets (issue #11): several apps of an env in one command, in parallel and isolated, end to
end through the stand-in engine: a term of 4 apps (one of them two books) in dev and prod."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, PulumiStandIn
from helpers import snapshot, state, stx, stx_json, stx_process

from stx_pulumi.ops.fleet import fleet_exit, local_docker, select, stack_file_apps

APPS = ("algebra", "course", "hello-course", "physics")
SERVICES = {"algebra": ["algebra"], "hello-course": ["hello-course"], "physics": ["physics"],
            "course": ["course-advanced", "course-intro"]}


def stack_files(root: Path) -> None:
    """Each course of the term has a stack file per env, as a repository of courses keeps."""
    for app in ("algebra", "physics"):
        shutil.copytree(root / "examples" / "hello-course", root / "examples" / app)
    shutil.copytree(REPO / "examples" / "course-books", root / "examples" / "course-books")
    for env in ("dev", "prod"):
        for app in ("algebra", "physics", "hello-course"):
            (root / "stacks" / f"Pulumi.{app}.{env}.yaml").write_text(
                f"config:\n  stx:path: examples/{app}\n")
        (root / "stacks" / f"Pulumi.course.{env}.yaml").write_text(
            "config:\n  stx:path: examples/course-books\n  stx:books:\n"
            "    intro: {folder: manuals/intro}\n    advanced: {folder: manuals/advanced}\n")


@pytest.fixture
def term(workspace: Path, pulumi_cli: PulumiStandIn) -> Path:
    stack_files(workspace)
    return workspace


def custom(root: Path, stack: str) -> list[dict[str, Any]]:
    return [r for r in state(root, stack)["resources"] if r["custom"]]


def test_up_all_deploys_every_app_side_by_side_and_nothing_mixes(
        term: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ops = tmp_path / "ops.jsonl"
    monkeypatch.setenv("STANDIN_LATENCY", "0.3")
    monkeypatch.setenv("STANDIN_OPS_LOG", str(ops))
    data = stx_json("up", "--all", "--yes", "--max", "20")
    assert data["result"] == "succeeded" and data["exit_code"] == 0
    results = {r["app"]: r for r in data["apps"]}
    assert sorted(results) == list(APPS)
    for app, result in results.items():
        assert result["result"] == "succeeded" and result["changes"]["create"] >= 6
        assert result["verify"]["result"] == "passed"
        # concurrent programs never mix: every resource, output and setting is the app's own
        resources = custom(term, f"{app}.dev")
        assert all(r["urn"].startswith(f"urn:pulumi:{app}.dev::") for r in resources)
        assert all(r["name"].startswith(f"{app}-") for r in resources)
        services = sorted(r["inputs"]["name"] for r in resources
                          if r["type"] == "gcp:cloudrunv2/service:Service")
        assert services == [f"{s}-dev" for s in SERVICES[app]]
        image = next(r for r in resources if r["type"] == "docker:index/image:Image")
        assert f"/{app}-dev/{app}:" in image["inputs"]["imageName"]
        assert stx_json("outputs", app)["image"].startswith(image["outputs"]["repoDigest"][:40])
        config = yaml.safe_load((term / "stacks" / f"Pulumi.{app}.dev.yaml").read_text())
        assert config["config"]["stx:maxInstances"] == "20"
        folder = "course-books" if app == "course" else app
        assert config["config"]["stx:path"] == f"examples/{folder}"
    # side by side, yet one image build at a time (they share the machine's Docker daemon)
    log = [json.loads(line) for line in ops.read_text().splitlines()]
    builds = sorted((o["start"], o["end"]) for o in log if o["type"] == "docker:index/image:Image")
    assert len(builds) == 4 and all(a[1] <= b[0] for a, b in pairwise(builds))
    assert any(a["stack"] != b["stack"] and a["start"] < b["end"] and b["start"] < a["end"]
               for a in log for b in log), "no two apps ever ran at once"

    again = stx_json("up", "--all", "--yes", "--max", "20", "--no-verify")
    assert all(r["changes"]["create"] == r["changes"]["update"] == 0 for r in again["apps"])
    text = stx("preview", "--all").output
    assert "no changes" in text and "algebra" in text and "physics" in text


def test_one_apps_failure_leaves_the_others_deployed(term: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_FAIL_TYPE", "gcp:cloudrunv2/service:Service")
    monkeypatch.setenv("STANDIN_FAIL_STACK", "algebra.dev")
    stopped = stx("up", "--all", "--yes", "--no-verify", "--parallel", "1", "--fail-fast")
    assert stopped.exit_code == 1, stopped.output
    assert "algebra.dev: the engine failed" in stopped.stdout
    assert stopped.stdout.count("not started") == 3
    assert not (term / ".pulumi-state/.pulumi/stacks/stx-pulumi/physics.dev.json").exists()
    result = stx("up", "--all", "--yes", "--no-verify", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    states = {r["app"]: (r["result"], r["exit_code"]) for r in data["apps"]}
    assert states == {"algebra": ("failed", 1), "course": ("succeeded", 0),
                      "hello-course": ("succeeded", 0), "physics": ("succeeded", 0)}
    assert "Permission denied" in next(r["error"] for r in data["apps"] if r["app"] == "algebra")
    for app in ("course", "hello-course", "physics"):
        assert state(term, f"{app}.dev")["history"][-1]["result"] == "succeeded"


def test_destroy_all_in_dev_leaves_prod_and_protected_prod_needs_unprotect(
        term: Path) -> None:
    assert stx("up", "--all", "--yes", "--no-verify").exit_code == 0
    assert stx("up", "--all", "--env", "prod", "--yes", "--no-verify").exit_code == 0
    prod = {app: len(custom(term, f"{app}.prod")) for app in APPS}
    status = stx_json("status", "--no-check")
    outputs = stx_json("outputs", "--all-envs")["stacks"]
    assert len(status["stacks"]) == len(outputs) == 8
    for row in status["stacks"]:
        out = outputs[row["stack"]]
        books = out.get("books") or {}
        assert row["urls"] == ({b: v["url"] for b, v in books.items()} or {"": out["url"]})
        assert row["image_tag"] == out["image_tag"]

    refused = stx("destroy", "--all")
    assert refused.exit_code == 2 and "--yes" in refused.output
    result = stx("destroy", "--all", "--yes")
    assert result.exit_code == 0, result.output
    assert all(custom(term, f"{app}.dev") == [] for app in APPS)
    assert {app: len(custom(term, f"{app}.prod")) for app in APPS} == prod
    protected = stx("destroy", "--all", "--yes", "--env", "prod", "--json")
    assert protected.exit_code == 2
    assert all("--unprotect" in r["error"] for r in json.loads(protected.stdout)["apps"])
    assert {app: len(custom(term, f"{app}.prod")) for app in APPS} == prod


def test_a_locked_app_exits_4_and_the_others_deploy(term: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_HOLD_LOCK", "20")
    holder = stx_process("up", "physics", "--yes", "--no-verify", "--skip-checks", cwd=term)
    monkeypatch.delenv("STANDIN_HOLD_LOCK")
    locks = term / ".pulumi-state/.pulumi/locks/stx-pulumi/physics.dev"
    deadline = time.monotonic() + 30
    while not list(locks.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        result = stx("up", "--all", "--yes", "--no-verify", "--json")
    finally:
        holder.send_signal(signal.SIGINT)
        holder.communicate(timeout=30)
    assert result.exit_code == 4, result.output
    states = {r["app"]: r["exit_code"] for r in json.loads(result.stdout)["apps"]}
    assert states == {"algebra": 0, "course": 0, "hello-course": 0, "physics": 4}


def test_an_interrupt_stops_every_app_and_says_what_to_run_next(
        term: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_LATENCY", "1")
    proc = stx_process("up", "--all", "--yes", "--no-verify", "--parallel", "2", "--max", "13",
                       cwd=term)
    seen = []
    assert proc.stderr is not None
    while not any(line.endswith(": succeeded\n") for line in seen[-1:]):
        seen.append(proc.stderr.readline())  # the progress lines: one app is done
        assert seen[-1], "".join(seen)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "Traceback" not in out + err
    summary = out[out.index("interrupted:"):]
    assert "succeeded: " in summary
    assert "stopped part-way: " in summary or "not started: " in summary
    # the command to run next repeats the options given: following it deploys --max 13
    assert "next: stx-pulumi up " in summary
    assert "--env dev --yes --no-verify --max 13" in summary


def test_bad_fleet_input_is_exit_2_and_changes_nothing(term: Path) -> None:
    home = Path(os.environ["STX_PULUMI_HOME"])
    before = snapshot(term, home)
    for args, needle in [
        (("up", "algebra", "--all"), "APP: name apps or pass --all"),
        (("up", "--all", "--parallel", "0"), "--parallel: must be between 1 and 16"),
        (("up", "--all", "--path", "examples/algebra"), "--path: names one app's folder"),
        (("up", "--all", "--env", "staging"), "--all: no app has a stack in this env"),
        (("destroy", "algebra", "physics"), "destroy of several apps needs --yes"),
        (("up", "algebra", "physics", "--max", "5000"), "physics.dev: stx:maxInstances"),
    ]:
        result = stx(*args)
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.output, (args, result.output)
    (term / "stacks" / "Pulumi.physics.dev.yaml").write_text("config:\n  stx:cpu: 3\n  "
                                                             "stx:path: examples/physics\n")
    result = stx("up", "--all", "--yes")
    assert result.exit_code == 2 and "physics.dev: " in result.output
    assert "nothing was run" in result.output
    after = snapshot(term, home)
    after.pop(str(term / "stacks" / "Pulumi.physics.dev.yaml"))
    before.pop(str(term / "stacks" / "Pulumi.physics.dev.yaml"))
    assert after == before


def test_plan_all_plans_every_app_offline(term: Path) -> None:
    data = stx_json("plan", "--all", "--env", "prod")
    assert [p["stack"] for p in data["plans"]] == [f"{a}.prod" for a in APPS]
    assert all(p["resources"] for p in data["plans"])


def test_fleet_rules() -> None:
    assert fleet_exit([0, 2, 5, 3]) == 5 and fleet_exit([2, 1, 4]) == 4
    assert fleet_exit([3, 2]) == 3 and fleet_exit([0, 0]) == 0
    assert select([], True, ["b", "a", "b"]) == ["a", "b"]
    assert select(["x", "x", "y"], False, []) == ["x", "y"]
    assert stack_file_apps(["Pulumi.a.dev.yaml", "Pulumi.b.prod.yaml", "Pulumi.yaml",
                            "Pulumi.c.dev.yaml", "notes.txt"], "dev") == ["a", "c"]
    assert local_docker({}) and local_docker({"DOCKER_HOST": "unix:///var/run/docker.sock"})
    assert local_docker({"DOCKER_HOST": "tcp://127.0.0.1:2375"})
    assert not local_docker({"DOCKER_HOST": "ssh://builder.example.org"})
