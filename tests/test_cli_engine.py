"""The CLI over the engine, through the real pulumi.automation and the stand-in `pulumi`:
the CLI calls each command makes, what lands in the stack files, secrets, envs, exit codes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from conftest import PulumiStandIn
from fake_app import FakeApp
from helpers import on_terminal, resources, state, stx, stx_json

ZONE = "0123456789abcdef0123456789abcdef"


def stack_config(workspace: Path, stack: str = "hello-course.dev") -> dict:
    return yaml.safe_load((workspace / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]


def test_up_makes_the_expected_cli_calls(workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    assert stx("up", "hello-course", "--max", "100", "--yes").exit_code == 0
    commands = pulumi_cli.commands()
    first = commands.index("stack select")
    # prerequisites, and for a new service the backend's stacks (its name must be free)
    assert first >= 1 and set(commands[:first]) == {"version", "stack ls"}
    assert commands[first:first + 2] == ["stack select", "stack init"]
    assert "config set" in commands
    # settings are written only once the update succeeded
    assert commands.index("up") < min(i for i, c in enumerate(commands) if c == "config set")
    up_argv = next(a for a in pulumi_cli.calls() if "up" in a)
    assert "--client" in " ".join(up_argv) and "--event-log" in up_argv
    assert up_argv[up_argv.index("--stack") + 1] == "hello-course.dev"
    assert commands[-2:] == ["stack output", "stack output"] or "stack history" in commands


def test_preview_refresh_outputs_cancel_call_only_what_they_need(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    assert stx("up", "hello-course", "--yes").exit_code == 0
    for args, command in ((["preview", "hello-course", "--max", "3"], "preview"),
                          (["refresh", "hello-course"], "refresh"),
                          (["outputs", "hello-course"], "stack output")):
        pulumi_cli.log.unlink()
        result = stx(*args)
        assert result.exit_code == 0, result.output
        commands = pulumi_cli.commands()
        assert command in commands
        assert "config set" not in commands and "up" not in commands


def test_building_is_said_only_when_an_image_is_built(workspace: Path,
                                                     pulumi_cli: PulumiStandIn) -> None:
    first = stx("up", "hello-course", "--yes", "--no-verify")
    assert first.exit_code == 0 and "building examples/hello-course as src-" in first.output
    for args in (["up", "hello-course", "--max", "7", "--yes", "--no-verify"],
                 ["preview", "hello-course", "--max", "8"]):
        again = stx(*args)  # the tag is deployed: a scale-only change builds nothing
        assert again.exit_code == 0, again.output
        assert "building " not in again.output, args
        assert args[0] == "preview" or "is deployed already: nothing to build" in again.output


def test_options_land_in_the_stack_file(workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    result = stx("up", "hello-course", "--max", "100", "--min", "1", "--cpu", "2", "--memory",
                 "1Gi", "--concurrency", "50", "--timeout", "1800", "--region", "us-central1",
                 "--env-var", "GREETING=hi", "--secret-env", "PW=course-pw:2", "--private",
                 "--domain", "course.example.org", "--yes")
    assert result.exit_code == 0, result.output
    config = stack_config(workspace)
    assert {k: config[k] for k in ("stx:maxInstances", "stx:minInstances", "stx:cpu",
                                   "stx:memory", "stx:concurrency", "stx:timeout",
                                   "gcp:region", "stx:public", "stx:domain")} == {
        "stx:maxInstances": "100", "stx:minInstances": "1", "stx:cpu": "2",
        "stx:memory": "1Gi", "stx:concurrency": "50", "stx:timeout": "1800",
        "gcp:region": "us-central1", "stx:public": "false", "stx:domain": "course.example.org"}
    assert config["stx:envVars"] == {"GREETING": "hi"}
    assert config["stx:secretEnv"] == {"PW": "course-pw:2"}
    assert config["gcp:project"] == "course-project-1"  # pinned on the first up
    assert config["stx:path"] == "examples/hello-course"
    service = resources(workspace, "hello-course.dev")["hello-course-dev"]["inputs"]
    assert service["location"] == "us-central1"
    assert "hello-course-dev-public" not in resources(workspace, "hello-course.dev")


def test_pinned_project_survives_a_later_up_without_it(workspace: Path,
                                                       pulumi_cli: PulumiStandIn,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert stx("up", "hello-course", "--yes").exit_code == 0
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "another-project")
    data = stx_json("up", "hello-course", "--yes")
    assert data["changes"]["replace"] == 0 and data["changes"]["delete"] == 0
    assert data["outputs"]["project"] == "course-project-1"


def test_unset_removes_a_setting(workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    assert stx("up", "hello-course", "--domain", "course.example.org", "--yes").exit_code == 0
    assert "hello-course-dev-domain" in resources(workspace, "hello-course.dev")
    data = stx_json("up", "hello-course", "--unset", "domain", "--yes")
    assert "stx:domain" not in stack_config(workspace)
    assert data["changes"]["delete"] == 1
    bad = stx("up", "hello-course", "--unset", "colour", "--yes")
    assert bad.exit_code == 2 and "--unset: 'colour'" in bad.output


def test_token_is_stored_with_secret_and_never_printed(
        workspace: Path, pulumi_cli: PulumiStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "cf-secret-token-1234567"
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", token)
    result = stx("--debug", "up", "hello-course", "--domain", "course.example.org",
                 "--cloudflare-zone", ZONE, "--yes")
    assert result.exit_code == 0, result.output
    assert token not in result.output
    set_token = [a for a in pulumi_cli.calls() if "cloudflare:apiToken" in a]
    assert set_token and "--secret" in set_token[0] and "--plaintext" not in set_token[0]
    assert token not in (workspace / "stacks" / "Pulumi.hello-course.dev.yaml").read_text()
    assert list(stack_config(workspace)["cloudflare:apiToken"]) == ["secure"]


def test_a_hung_config_set_is_an_error_not_a_hang(
        workspace: Path, pulumi_cli: PulumiStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "cf-secret-token-1234567")
    monkeypatch.setenv("STANDIN_HANG_CONFIG_SET", "cloudflare:apiToken")
    monkeypatch.setattr("stx_pulumi.engine.backend.CONFIG_TIMEOUT_S", 2)  # not 120 s here
    result = stx("up", "hello-course", "--domain", "course.example.org", "--cloudflare-zone",
                 ZONE, "--yes", "--no-verify")
    assert result.exit_code == 1
    assert "the Pulumi CLI gave no answer within 2s" in result.output
    assert "cf-secret-token-1234567" not in result.output


def test_env_switching_uses_another_stack_and_file(workspace: Path,
                                                   pulumi_cli: PulumiStandIn,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert stx("up", "hello-course", "--yes").exit_code == 0
    assert stx("up", "hello-course", "--env", "staging", "--max", "3", "--yes").exit_code == 0
    assert stack_config(workspace, "hello-course.staging")["stx:maxInstances"] == "3"
    assert stack_config(workspace)["stx:maxInstances"] in (10, "10")
    monkeypatch.setenv("STX_ENV", "staging")
    assert stx_json("outputs", "hello-course")["max_instances"] == 3
    monkeypatch.delenv("STX_ENV")
    assert stx("env", "use", "staging").exit_code == 0
    assert json.loads((workspace / ".stx-pulumi.json").read_text())["env"] == "staging"
    assert stx_json("outputs", "hello-course")["max_instances"] == 3
    listed = stx("env", "list")
    assert listed.exit_code == 0 and "* staging" in listed.stdout and "  dev" in listed.stdout
    assert stx("env", "use", "Bad Env").exit_code == 2


def test_bad_input_exits_2_before_any_cli_call_or_file_change(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    before = {p: p.read_bytes() for p in workspace.rglob("*") if p.is_file()}
    result = stx("up", "hello-course", "--max", "0", "--yes")
    assert result.exit_code == 2 and "stx:maxInstances (--max)" in result.output
    assert pulumi_cli.calls() == []
    after = {p: p.read_bytes() for p in workspace.rglob("*") if p.is_file()}
    assert after == before


def test_up_needs_a_real_project(workspace: Path, pulumi_cli: PulumiStandIn,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    monkeypatch.setenv("PATH", str(pulumi_cli.root / "bin"))  # and no gcloud
    result = stx("up", "hello-course", "--yes")
    assert result.exit_code == 2 and "gcp:project (--project)" in result.output
    assert pulumi_cli.calls() == []


def test_missing_cli_exits_3_with_install_hint(workspace: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    result = stx("up", "hello-course", "--yes")
    assert result.exit_code == 3
    assert "Pulumi CLI (`pulumi`) was not found" in result.output
    assert "stx-pulumi install-cli" in result.output
    assert "Traceback" not in result.output


def test_old_cli_exits_3_naming_the_minimum(workspace: Path, pulumi_cli: PulumiStandIn,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # 3.210 has inline refresh and destroy but no stack tags on the file backend, where
    # releases keep their verification: refused before anything runs, never a lost record
    monkeypatch.setenv("STANDIN_VERSION", "3.210.0")
    result = stx("up", "hello-course", "--yes")
    assert result.exit_code == 3
    assert "3.210.0" in result.output and "3.211.0" in result.output
    assert pulumi_cli.commands() == ["version"]


def test_locked_stack_exits_4_and_cancel_removes_the_lock(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    assert stx("up", "hello-course", "--yes").exit_code == 0
    locks = workspace / ".pulumi-state" / ".pulumi" / "locks" / "stx-pulumi" / "hello-course.dev"
    locks.mkdir(parents=True, exist_ok=True)
    (locks / "stale.json").write_text(json.dumps({"pid": 4242, "username": "ada",
                                                  "hostname": "laptop",
                                                  "timestamp": "2026-11-23T08:00:00Z"}))
    result = stx("up", "hello-course", "--yes")
    assert result.exit_code == 4
    assert "ada@laptop (pid 4242)" in result.output
    assert "stx-pulumi cancel hello-course --env dev" in result.output
    assert stx("cancel", "hello-course").exit_code == 0
    assert not list(locks.glob("*.json"))
    assert stx("up", "hello-course", "--yes").exit_code == 0


def test_protected_env_needs_yes_when_not_interactive(workspace: Path,
                                                      pulumi_cli: PulumiStandIn) -> None:
    result = stx("up", "hello-course", "--env", "prod", "--path", "examples/hello-course")
    assert result.exit_code == 2 and "pass --yes" in result.output
    assert pulumi_cli.calls() == []


def test_destroy_asks_for_the_stack_name(workspace: Path, pulumi_cli: PulumiStandIn,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert stx("up", "hello-course", "--yes").exit_code == 0
    refused = stx("destroy", "hello-course")
    assert refused.exit_code == 2 and "pass --yes" in refused.output
    monkeypatch.setattr("stx_pulumi.cli.deploy.interactive", lambda: True)
    wrong = stx("destroy", "hello-course", input="hello-course.prod\n")
    assert wrong.exit_code == 2 and "did not match" in wrong.output
    assert len(resources(workspace, "hello-course.dev")) == 5
    right = stx("destroy", "hello-course", input="hello-course.dev\n")
    assert right.exit_code == 0, right.output
    assert resources(workspace, "hello-course.dev") == {}


def test_destroy_remove_deletes_the_stack_and_its_file(workspace: Path,
                                                       pulumi_cli: PulumiStandIn) -> None:
    assert stx("up", "hello-course", "--env", "staging", "--yes").exit_code == 0
    result = stx("destroy", "hello-course", "--env", "staging", "--yes", "--remove")
    assert result.exit_code == 0, result.output
    assert not (workspace / "stacks" / "Pulumi.hello-course.staging.yaml").exists()
    assert "hello-course.staging" not in [s["stack"] for s in stx_json("stacks")["stacks"]]


def test_destroy_keeps_its_reason_in_the_stack_history(workspace: Path,
                                                      pulumi_cli: PulumiStandIn) -> None:
    assert stx("up", "hello-course", "--yes", "--no-verify").exit_code == 0
    result = stx("destroy", "hello-course", "--yes", "-m", "end of term")
    assert result.exit_code == 0, result.output
    (info,) = [s for s in stx_json("stacks")["stacks"] if s["stack"] == "hello-course.dev"]
    assert info["message"] == "end of term" and info["resource_count"] in (0, None)


def test_message_is_recorded_and_stacks_lists_it(workspace: Path, pulumi_cli: PulumiStandIn,
                                                 deployed_app: FakeApp) -> None:
    assert stx("up", "hello-course", "--yes", "-m", "lab 3 for 1000 students").exit_code == 0
    assert state(workspace, "hello-course.dev")["history"][-1]["message"] == (
        "lab 3 for 1000 students")
    listing = stx("stacks")
    assert listing.exit_code == 0
    for text in ("hello-course", "dev", "succeeded", "lab 3 for 1000 students",
                 deployed_app.url, "backend file://"):
        assert text in listing.output


def test_generated_passphrase_is_private_and_never_printed(
        workspace: Path, pulumi_cli: PulumiStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    first = stx("up", "hello-course", "--yes")
    assert first.exit_code == 0, first.output
    file = workspace / ".pulumi-state" / "passphrase"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert "back it up" in first.output
    assert file.read_text().strip() not in first.output
    second = stx("up", "hello-course", "--yes")
    assert second.exit_code == 0 and "back it up" not in second.output


def test_init_records_the_backend_and_keeps_stack_config_dir(
        tmp_path: Path, app_dir: Path, pulumi_cli: PulumiStandIn,
        monkeypatch: pytest.MonkeyPatch) -> None:
    team = tmp_path / "team"
    team.mkdir()
    monkeypatch.chdir(team)
    shared = tmp_path / "shared-state"
    assert stx("init", "--backend", shared.as_uri()).exit_code == 0
    project = yaml.safe_load((team / "Pulumi.yaml").read_text())
    assert project["backend"] == {"url": shared.as_uri()}
    assert project["stackConfigDir"] == "stacks" and project["name"] == "stx-pulumi"
    assert ".pulumi-state/" in (team / ".gitignore").read_text()
    result = stx("up", "hello-course", "--path", str(app_dir), "--yes")
    assert result.exit_code == 0, result.output
    assert f"backend {shared.as_uri()}" in result.output
    assert (shared / ".pulumi" / "stacks" / "stx-pulumi" / "hello-course.dev.json").is_file()
    assert (team / "stacks" / "Pulumi.hello-course.dev.yaml").is_file()
    assert yaml.safe_load((team / "Pulumi.yaml").read_text()) == project


def test_a_workspace_inside_the_app_folder_never_ships_and_a_second_up_changes_nothing(
        app_dir: Path, pulumi_cli: PulumiStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cd course && stx-pulumi init && stx-pulumi up .`, as StreamTeX authors do: the
    workspace's files are left out of the build context, so they never reach the image nor
    move its tag."""
    monkeypatch.chdir(app_dir)
    (app_dir / ".dockerignore").unlink(missing_ok=True)
    init = stx("init")
    assert init.exit_code == 0 and "wrote .dockerignore" in init.output
    ignored = (app_dir / ".dockerignore").read_text().splitlines()
    assert {".pulumi-state/", "stacks/", "Pulumi.yaml", "__main__.py"} <= set(ignored)
    # a fresh app's .dockerignore is StreamTeX's: its environment and secrets stay out too
    assert {".venv", ".git", ".stx-deploy.env", "**/__pycache__"} <= set(ignored)
    first = stx_json("up", ".", "--yes", "--no-verify")
    second = stx_json("up", ".", "--yes", "--no-verify")
    assert first["changes"]["create"] > 0
    assert {k: n for k, n in second["changes"].items() if n and k != "same"} == {}
    from stx_pulumi.source import docker_context

    sent = docker_context(app_dir)
    assert not [f for f in sent if f.startswith((".pulumi-state/", "stacks/", "Pulumi.yaml"))]
    # a workspace made before this release: refused with the fix, nothing changed
    (app_dir / ".dockerignore").write_text("__pycache__/\n")
    refused = stx("up", ".", "--yes", "--no-verify")
    assert refused.exit_code == 2 and "would ship in the image" in refused.output
    assert "run `stx-pulumi init` there again" in refused.output


def test_without_a_workspace_the_home_one_is_made(tmp_path: Path, app_dir: Path,
                                                  pulumi_cli: PulumiStandIn,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(app_dir)
    result = stx("up", "--yes")  # the current folder is the app
    assert result.exit_code == 0, result.output
    home = Path(os.environ["STX_PULUMI_HOME"])
    assert (home / "Pulumi.yaml").is_file()
    config = stack_config(home)
    assert not Path(config["stx:path"]).is_absolute()  # never a machine path in a workspace
    assert (home / config["stx:path"]).resolve() == app_dir.resolve()


def test_json_failure_is_one_object_too(workspace: Path, pulumi_cli: PulumiStandIn,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_FAIL_TYPE", "docker:index/image:Image")
    result = stx("up", "hello-course", "--yes", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["result"] == "failed" and data["exit_code"] == 1
    assert "Permission denied" in data["error"]


def test_a_fresh_app_gets_a_streamtex_dockerignore_when_asked_and_never_unasked(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    """A `stx project new` app has no .dockerignore: its .venv goes into every build and a
    .stx-deploy.env would ship. With no terminal and no --yes nothing is written (the refusal
    stays and says how); `up --yes` writes StreamTeX's and deploys."""
    app = workspace / "examples" / "hello-course"
    (app / ".dockerignore").unlink()
    (app / ".venv" / "lib").mkdir(parents=True)
    (app / ".venv" / "lib" / "big.so").write_bytes(b"x" * 1000)
    (app / ".stx-deploy.env").write_text("COOLIFY_TOKEN=not-for-the-image\n")
    refused = stx("plan", "hello-course")
    assert refused.exit_code == 2, refused.output
    assert ".stx-deploy.env would ship in the image" in refused.output
    assert "has no .dockerignore: .stx-deploy.env, .venv go into every build" in refused.output
    assert "`up --yes`" in refused.output
    assert not (app / ".dockerignore").exists()  # never written unasked
    result = stx("up", "hello-course", "--yes", "--no-verify")
    assert result.exit_code == 0, result.output
    assert "writing" in result.output and ".stx-deploy.env, .venv stay out" in result.output
    ignored = (app / ".dockerignore").read_text().splitlines()
    assert {".venv", ".git", ".stx-deploy.env", ".env", ".stx-passwords.toml"} <= set(ignored)
    from stx_pulumi.source import docker_context

    sent = docker_context(app)
    assert "book.py" in sent and "uv.lock" in sent and "nginx.conf" in sent
    assert not [f for f in sent if f.startswith((".venv/", ".stx-deploy.env"))]
    # an app that has a .dockerignore is never rewritten: a secret it lets through is refused
    (app / ".dockerignore").write_text(".venv\n")
    again = stx("up", "hello-course", "--yes", "--no-verify")
    assert again.exit_code == 2 and ".stx-deploy.env would ship" in again.output
    assert (app / ".dockerignore").read_text() == ".venv\n"


def test_on_a_terminal_plan_offers_to_write_the_dockerignore(workspace: Path) -> None:
    """On a real terminal (a pty), the author is asked; a yes writes it and the plan goes on."""
    app = workspace / "examples" / "hello-course"
    (app / ".dockerignore").unlink()
    (app / ".venv").mkdir()
    code, shown = on_terminal(["plan", "hello-course"], workspace,
                              {b"Write a StreamTeX .dockerignore there?": b"y\n"})
    assert code == 0, shown
    assert "Write a StreamTeX .dockerignore there?" in shown
    assert ".venv" in (app / ".dockerignore").read_text().splitlines()
