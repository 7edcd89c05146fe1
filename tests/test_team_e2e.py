"""`team setup` and `ci github` end to end (issue #15): through the real automation API and the
stand-in engine, whose `gs://` backend is a folder that exists once the team stack made the
bucket, and whose `gcpkms://` secrets work only while the key the team stack made exists."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT, STANDIN, PulumiStandIn
from fake_github import FakeGitHub
from helpers import snapshot, stx, stx_json, stx_process, validate_github

pytestmark = pytest.mark.e2e
TOKEN = "cf-token-0123456789-secret"
BUCKET = f"{PROJECT}-stx-state"
KEY = (f"gcpkms://projects/{PROJECT}/locations/europe-west1/keyRings/stx-pulumi/cryptoKeys/"
       "state-secrets")


@pytest.fixture
def team_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Stand-in buckets and KMS keys, and a local GitHub API."""
    monkeypatch.setenv("STANDIN_GCS", str(tmp_path / "gcs"))
    monkeypatch.setenv("STANDIN_KMS", str(tmp_path / "kms"))
    with FakeGitHub() as github:
        monkeypatch.setenv("STX_GITHUB_API", github.url)
        yield tmp_path


def pulumi(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """The stand-in CLI itself, as a user would run `pulumi` in the workspace."""
    done = subprocess.run([sys.executable, str(STANDIN), *args], cwd=cwd, text=True,
                          capture_output=True, env={**os.environ, **(env or {})}, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def with_secret(workspace: Path, pulumi_cli: PulumiStandIn) -> Path:
    """hello-course.dev deployed, with a secret in its stack config."""
    assert stx("up", "hello-course", "--yes").exit_code == 0
    subprocess.run([sys.executable, str(STANDIN), "config", "set", "cloudflare:apiToken",
                    "--secret", "--stack", "hello-course.dev"], input=TOKEN, text=True,
                   cwd=workspace, check=True,
                   env={**os.environ, "PULUMI_BACKEND_URL": (workspace / ".pulumi-state")
                        .as_uri()})
    return workspace


def test_team_setup_moves_every_stack_into_the_bucket_with_secrets_kept(
        with_secret: Path, team_cloud: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """...and afterwards nobody needs the passphrase, and doctor checks the team's things."""
    ws = with_secret
    out = stx_json("team", "setup", "--project", PROJECT, "--github", "my-school/courses",
                   "--member", "user:ana@example.com")
    assert out["switched"] and out["changed"]
    assert out["moved"] == ["team (stx-pulumi-team)", "hello-course.dev"]
    assert out["outputs"]["deployer"] == f"stx-deployer@{PROJECT}.iam.gserviceaccount.com"
    assert out["outputs"]["workloadIdentityProvider"].endswith(
        "/workloadIdentityPools/stx-github/providers/github")
    assert yaml.safe_load((ws / "Pulumi.yaml").read_text())["backend"] == {
        "url": f"gs://{BUCKET}"}
    team = yaml.safe_load((ws / "team" / "stacks" / "Pulumi.team.yaml").read_text())
    assert team["secretsprovider"] == KEY
    assert team["config"]["team:githubId"] == "123456"
    app = yaml.safe_load((ws / "stacks" / "Pulumi.hello-course.dev.yaml").read_text())
    assert app["secretsprovider"] == KEY and "encryptionsalt" not in app
    assert TOKEN not in (ws / "stacks" / "Pulumi.hello-course.dev.yaml").read_text()
    # the old backend keeps its copy, a backup
    assert (ws / ".pulumi-state/.pulumi/stacks/stx-pulumi/hello-course.dev.json").is_file()
    moved = (team_cloud / "gcs" / BUCKET / ".pulumi/stacks/stx-pulumi/hello-course.dev.json"
             ).read_text()
    assert '"ciphertext"' in moved and "ya29." not in moved  # state secrets moved, sealed

    # no passphrase any more: the KMS key decrypts config and state
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    got = json.loads(pulumi("config", "get", "cloudflare:apiToken", "--stack",
                            "hello-course.dev", cwd=ws,
                            env={"PULUMI_BACKEND_URL": f"gs://{BUCKET}"}))
    assert got == {"value": TOKEN, "secret": True}
    outputs = stx_json("outputs", "hello-course")
    assert outputs["url"]
    again = stx_json("up", "hello-course", "--yes")
    assert again["changes"]["create"] == again["changes"]["replace"] == 0

    # doctor checks the team's bucket, key and CI accounts
    code, checks = doctor()
    assert code == 0, checks
    assert checks["backend"]["status"] == "pass" and BUCKET in checks["backend"]["detail"]
    assert checks["secrets key"]["status"] == "pass"
    assert checks["team"]["status"] == "pass" and "my-school/courses" in checks["team"]["detail"]
    for key in (team_cloud / "kms").iterdir():  # the key is gone (or never made)
        key.unlink()
    code, checks = doctor()
    assert code == 3 and checks["secrets key"]["status"] == "fail"
    assert "team setup" in checks["secrets key"]["fix"]


def doctor() -> tuple[int, dict[str, dict]]:
    result = stx("doctor", "hello-course", "--json")
    return result.exit_code, {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def test_a_teammates_fresh_clone_changes_nothing(
        with_secret: Path, team_cloud: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert stx("team", "setup", "--project", PROJECT, "--github",
               "my-school/courses").exit_code == 0
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("Pulumi.yaml", "__main__.py", "team", "stacks", "examples"):
        source = with_secret / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, clone / name)
    monkeypatch.chdir(clone)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")  # a teammate never had it
    monkeypatch.setenv("STX_GITHUB_API", "http://127.0.0.1:9")  # no need to ask GitHub
    before = snapshot(clone)
    out = stx_json("team", "setup")
    assert not out["changed"] and not out["moved"] and not out["switched"]
    assert set(out["team_changes"]) >= {"same"} and sum(
        n for k, n in out["team_changes"].items() if k != "same") == 0
    assert snapshot(clone) == before
    assert not (clone / ".pulumi-state").exists()  # no passphrase made for KMS stacks
    result = stx("team", "setup", "--region", "us-central1")  # another key: never by accident
    assert result.exit_code == 2 and "--region" in result.output
    assert snapshot(clone) == before
    # a new stack from the clone: in the bucket, its secrets on the team's key
    assert stx("up", "hello-course", "--env", "staging", "--yes").exit_code == 0
    made = yaml.safe_load((clone / "stacks" / "Pulumi.hello-course.staging.yaml").read_text())
    assert made["secretsprovider"] == KEY and "encryptionsalt" not in made
    assert (team_cloud / "gcs" / BUCKET / ".pulumi/stacks/stx-pulumi/hello-course.staging.json"
            ).is_file()


def test_a_move_cut_short_leaves_the_workspace_and_a_rerun_finishes_it(
        with_secret: Path, team_cloud: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = ("Pulumi.yaml", "stacks/Pulumi.hello-course.dev.yaml")
    before = {f: (with_secret / f).read_bytes() for f in files}
    monkeypatch.setenv("STANDIN_FAIL_IMPORT", "hello-course.dev")
    result = stx("team", "setup", "--project", PROJECT)
    assert result.exit_code == 1, result.output
    assert "injected failure" in result.output and "team setup` again" in result.output
    assert {f: (with_secret / f).read_bytes() for f in files} == before  # still the old ones
    assert stx_json("outputs", "hello-course")["url"]  # and they work as before
    monkeypatch.delenv("STANDIN_FAIL_IMPORT")
    out = stx_json("team", "setup")
    assert out["moved"] == ["hello-course.dev"] and out["already"] == [] and out["switched"]
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    assert stx_json("outputs", "hello-course")["url"]


def test_dry_run_shows_the_move_and_changes_nothing(
        with_secret: Path, team_cloud: Path) -> None:
    before = snapshot(with_secret)
    result = stx("team", "setup", "--project", PROJECT, "--github", "my-school/courses",
                 "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would move" in result.stdout and "hello-course.dev" in result.stdout
    assert f"would switch to gs://{BUCKET}" in result.stdout
    # each resource is said to be what the run would do: nothing is "created"
    assert "would create" in result.output and "created " not in result.output
    assert snapshot(with_secret) == before
    assert not (team_cloud / "gcs").exists()


def test_bad_team_input_changes_nothing(workspace: Path, pulumi_cli: PulumiStandIn,
                                        team_cloud: Path) -> None:
    before = snapshot(workspace)
    for args, named in ((("--project", "Bad_Project"), "--project"),
                        (("--project", PROJECT, "--region", "Europe"), "--region"),
                        (("--project", PROJECT, "--github", "nope"), "--github"),
                        (("--project", PROJECT, "--github", "my-school/missing"), "--github"),
                        (("--project", PROJECT, "--member", "ana"), "--member")):
        result = stx("team", "setup", *args)
        assert result.exit_code == 2, result.output
        assert named in result.output
    assert snapshot(workspace) == before


def test_a_dry_run_outside_a_workspace_makes_none(tmp_path: Path, pulumi_cli: PulumiStandIn,
                                                  team_cloud: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = stx("team", "setup", "--project", PROJECT, "--dry-run")
    assert result.exit_code == 2 and "--dry-run" in result.output
    assert not Path(os.environ["STX_PULUMI_HOME"]).exists() and not any(elsewhere.iterdir())


def test_ci_github_writes_a_valid_pinned_workflow_and_keeps_user_edits(
        workspace: Path, pulumi_cli: PulumiStandIn, team_cloud: Path) -> None:
    ws = workspace
    result = stx("ci", "github")
    assert result.exit_code == 3 and "team setup" in result.output  # no team stack yet
    assert stx("team", "setup", "--project", PROJECT, "--github",
               "my-school/courses").exit_code == 0
    assert stx("ci", "github").exit_code == 0
    file = ws / ".github" / "workflows" / "stx-pulumi.yml"
    text = file.read_text()
    assert 'service_account: "stx-deployer@' in text and "stx-previewer@" in text
    assert 'STX_ENV: "dev"' in text and 'APPS: "--all"' in text
    assert 'up $APPS --changed --env "$STX_ENV"' in text and 'options: ["prod"]' in text
    validate_github(ws)
    # lines outside the block are kept; a re-run changes nothing
    file.write_text("# our note\n" + text + "  lint:\n    runs-on: ubuntu-24.04\n"
                    "    permissions: {}\n    steps:\n      - run: echo ok\n")
    edited = file.read_text()
    assert stx("ci", "github").exit_code == 0
    assert file.read_text() == edited
    # an edit inside the block is refused with the diff, unless --force
    file.write_text(edited.replace("cancel-in-progress: false", "cancel-in-progress: true", 1))
    result = stx("ci", "github")
    assert result.exit_code == 2 and "edited by hand" in result.output
    assert "-      cancel-in-progress: true" in result.output
    assert stx("ci", "github", "--force").exit_code == 0
    assert file.read_text() == edited
    # what CI installs: this exact version by default, or what --install names
    assert 'INSTALL: "stx-pulumi==0.1.0"' in edited
    bad = stx("ci", "github", "--install", "stx-pulumi; rm -rf /")
    assert bad.exit_code == 2 and "--install:" in bad.output and file.read_text() == edited
    spec = "git+https://github.com/my-school/stx-pulumi@v0.2.0"
    file.unlink()  # the generated file alone, validated as GitHub and zizmor read it
    assert stx("ci", "github", "--install", spec).exit_code == 0
    assert f'INSTALL: "{spec}"' in file.read_text()
    validate_github(ws)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
@pytest.mark.parametrize("after", ["team stack in", "moving team", "moving hello-course.dev"])
def test_an_interrupted_team_setup_leaves_every_stack_readable_where_it_was(
        with_secret: Path, team_cloud: Path, monkeypatch: pytest.MonkeyPatch,
        sig: signal.Signals, after: str) -> None:
    """Nothing of the old backend changes until the new one is proven: the move writes its
    stack files apart, so a run stopped at any step leaves the workspace on its old backend,
    every stack (and its secret) readable; the next run finishes the move."""
    ws = with_secret
    stack_file = ws / "stacks" / "Pulumi.hello-course.dev.yaml"
    before = stack_file.read_bytes()
    monkeypatch.setenv("STANDIN_LATENCY", "0.3")  # each resource operation takes a while
    proc = stx_process("team", "setup", "--project", PROJECT, cwd=ws)
    assert proc.stderr is not None
    while after not in (line := proc.stderr.readline()):
        assert line, "the setup ended before the step"
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    monkeypatch.delenv("STANDIN_LATENCY")
    assert stack_file.read_bytes() == before
    assert yaml.safe_load((ws / "Pulumi.yaml").read_text())["backend"]["url"] == (
        "file://.pulumi-state")  # not switched
    assert stx_json("outputs", "hello-course")["url"]
    got = json.loads(pulumi("config", "get", "cloudflare:apiToken", "--stack",
                            "hello-course.dev", cwd=ws,
                            env={"PULUMI_BACKEND_URL": (ws / ".pulumi-state").as_uri()}))
    assert got == {"value": TOKEN, "secret": True}
    if sig == signal.SIGKILL:  # a lock the killed run held is removed as the hint says
        for lock in (team_cloud / "gcs").rglob("locks/**/*.json"):
            lock.unlink()
    done = stx_json("team", "setup", "--project", PROJECT)
    assert done["switched"]
    assert yaml.safe_load(stack_file.read_text())["secretsprovider"] == KEY
    assert not (ws / ".stx-pulumi-move").exists()
    assert stx_json("outputs", "hello-course")["url"]
