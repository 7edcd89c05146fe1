"""Nothing lost, nothing half-done (issue #8): one test per failure a review reproduced.

Each types the command as a user would, through the real automation API and the stand-in
engine where the engine is involved, and asserts the exit code, the message naming the key or
file, and, for refusals, that no file and no state changed.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml
from conftest import PulumiStandIn
from helpers import resources, snapshot, state, stx, stx_json, stx_process

pytestmark = pytest.mark.e2e
STACK_FILE = "stacks/Pulumi.hello-course.dev.yaml"
TOKEN = "cf-token-0123456789-secret"
ZONE = "0123456789abcdef0123456789abcdef"


def home() -> Path:
    return Path(os.environ["STX_PULUMI_HOME"])


@pytest.fixture
def deployed(workspace: Path, pulumi_cli: PulumiStandIn) -> Path:
    result = stx("up", "hello-course", "--max", "10", "--yes")
    assert result.exit_code == 0, result.output
    return workspace


def edit_config(workspace: Path, stack: str, **values: object) -> None:
    file = workspace / "stacks" / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(file.read_text())
    data["config"].update({k.replace("__", ":"): v for k, v in values.items()})
    file.write_text(yaml.safe_dump(data))


# 1. Protection comes from the state, not the editable stack file ---------------------------

def test_1_protection_is_read_from_the_state(workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    assert stx("up", "hello-course", "--env", "prod", "--yes").exit_code == 0
    edit_config(workspace, "hello-course.prod", stx__protected="false")
    before = snapshot(workspace)
    result = stx("destroy", "hello-course", "--env", "prod", "--yes")
    assert result.exit_code == 2
    assert "protected" in result.output and "--unprotect" in result.output
    assert snapshot(workspace) == before  # nothing touched: the site stays public
    assert "hello-course-prod-public" in resources(workspace, "hello-course.prod")
    result = stx("destroy", "hello-course", "--env", "prod", "--yes", "--unprotect")
    assert result.exit_code == 0, result.output
    assert resources(workspace, "hello-course.prod") == {}


def test_1_stacks_of_the_previous_release_fall_back_to_the_exported_state(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    assert stx("up", "hello-course", "--env", "prod", "--yes").exit_code == 0
    file = workspace / ".pulumi-state/.pulumi/stacks/stx-pulumi/hello-course.prod.json"
    data = json.loads(file.read_text())
    data["outputs"].pop("protected")  # as the previous release left it
    file.write_text(json.dumps(data))
    edit_config(workspace, "hello-course.prod", stx__protected="false")
    result = stx("destroy", "hello-course", "--env", "prod", "--yes")
    assert result.exit_code == 2 and "--unprotect" in result.output


# 2. Settings are kept only when the update succeeded ---------------------------------------

def test_2_lock_refusal_leaves_the_stack_file(deployed: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_HOLD_LOCK", "4")
    first = stx_process("up", "hello-course", "--yes", "--no-verify", cwd=deployed)
    locks = deployed / ".pulumi-state/.pulumi/locks/stx-pulumi/hello-course.dev"
    deadline = time.monotonic() + 30
    while not list(locks.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    monkeypatch.setenv("STANDIN_HOLD_LOCK", "0")
    before = (deployed / STACK_FILE).read_bytes()
    result = stx("up", "hello-course", "--max", "30", "--yes")
    first.communicate(timeout=60)
    assert result.exit_code == 4
    assert (deployed / STACK_FILE).read_bytes() == before


def test_2_engine_failure_leaves_the_stack_file(deployed: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_FAIL_TYPE", "gcp:cloudrunv2/service:Service")
    before = (deployed / STACK_FILE).read_bytes()
    result = stx("up", "hello-course", "--max", "30", "--yes")
    assert result.exit_code == 1 and "Permission denied" in result.output
    assert (deployed / STACK_FILE).read_bytes() == before
    monkeypatch.delenv("STANDIN_FAIL_TYPE")
    assert stx_json("up", "hello-course", "--yes")["outputs"]["max_instances"] == 10


def test_2_decrypt_failure_leaves_the_stack_file(deployed: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "not-the-passphrase")
    before = (deployed / STACK_FILE).read_bytes()
    result = stx("up", "hello-course", "--max", "30", "--yes")
    assert result.exit_code == 1
    assert "PULUMI_CONFIG_PASSPHRASE" in result.output
    assert (deployed / STACK_FILE).read_bytes() == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_2_interrupt_leaves_the_stack_file(deployed: Path, monkeypatch: pytest.MonkeyPatch,
                                           sig: signal.Signals) -> None:
    monkeypatch.setenv("STANDIN_HOLD_LOCK", "20")
    before = (deployed / STACK_FILE).read_bytes()
    proc = stx_process("up", "hello-course", "--max", "40", "--yes", cwd=deployed)
    locks = deployed / ".pulumi-state/.pulumi/locks/stx-pulumi/hello-course.dev"
    deadline = time.monotonic() + 30
    while not list(locks.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)  # the engine got the interrupt too: no 20 s wait
    assert proc.returncode == 1, err
    assert "interrupted" in err and "Traceback" not in err
    assert (deployed / STACK_FILE).read_bytes() == before


def test_2_preview_of_a_new_stack_leaves_no_trace(workspace: Path,
                                                  pulumi_cli: PulumiStandIn) -> None:
    before = snapshot(workspace / "stacks")
    data = stx_json("preview", "hello-course", "--env", "staging")
    assert data["changes"]["create"] == 6
    assert snapshot(workspace / "stacks") == before
    assert not (workspace / ".pulumi-state/.pulumi/stacks/stx-pulumi/hello-course.staging.json"
                ).exists()


# 3. No silent fallback ----------------------------------------------------------------------

def test_3_broken_pulumi_yaml_is_named_with_its_line(workspace: Path,
                                                     pulumi_cli: PulumiStandIn) -> None:
    (workspace / "Pulumi.yaml").write_text("name: stx-pulumi\nruntime: [python\n")
    result = stx("up", "hello-course", "--yes")
    assert result.exit_code == 2
    assert "Pulumi.yaml: not valid YAML at line" in result.output
    assert not home().exists()  # no second copy of the app deployed from ~/.stx-pulumi


def test_3_broken_settings_file_is_an_error(workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    (workspace / ".stx-pulumi.json").write_text("{env: prod")
    result = stx("destroy", "hello-course", "--yes")
    assert result.exit_code == 2 and ".stx-pulumi.json: not valid JSON" in result.output


@pytest.mark.parametrize(("key", "closest"), [("stx:maxInstanse", "stx:maxInstances"),
                                              ("gcp:regoin", "gcp:region")])
def test_3_misspelt_keys_name_the_closest_one(workspace: Path, key: str, closest: str) -> None:
    edit_config(workspace, "hello-course.dev", **{key.replace(":", "__"): "20"})
    result = stx("plan", "hello-course")
    assert result.exit_code == 2
    assert f"{key}: not a setting" in result.output and f"did you mean {closest}" in result.output


def test_3_other_namespaces_pass_through(workspace: Path) -> None:
    edit_config(workspace, "hello-course.dev", mytool__x="1", gcp__zone="europe-west1-b")
    assert stx("plan", "hello-course").exit_code == 0


def test_3_config_that_is_a_list_is_an_error(workspace: Path) -> None:
    (workspace / STACK_FILE).write_text("config:\n  - stx:maxInstances\n")
    result = stx("plan", "hello-course")
    assert result.exit_code == 2 and "`config:` must be a map" in result.output


# 4 to 6: bad options are refused before anything runs --------------------------------------

def test_4_empty_env_is_not_the_current_env(deployed: Path) -> None:
    stx("env", "use", "staging")
    before = snapshot(deployed)
    result = stx("destroy", "hello-course", "--env", "", "--yes")
    assert result.exit_code == 2 and "env (--env) ''" in result.output
    assert snapshot(deployed) == before


# 7. A lost passphrase is never regenerated --------------------------------------------------

def test_7_deleted_passphrase_is_exit_3_and_doctor_fails(workspace: Path,
                                                         pulumi_cli: PulumiStandIn,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    assert stx("up", "hello-course", "--yes").exit_code == 0
    (workspace / ".pulumi-state" / "passphrase").unlink()
    before = snapshot(workspace)
    result = stx("up", "hello-course", "--max", "20", "--yes")
    assert result.exit_code == 3
    assert ".pulumi-state/passphrase does not exist" in result.output
    assert snapshot(workspace) == before
    doctor = json.loads(stx("doctor", "hello-course", "--json").stdout)
    assert {c["name"]: c["status"] for c in doctor["checks"]}["secrets"] == "fail"


# 8. One code and a clear message for each case ----------------------------------------------

def test_8_cancel_without_a_lock_says_so(deployed: Path) -> None:
    result = stx("cancel", "hello-course")
    assert result.exit_code == 0 and "nothing to cancel" in result.output


def test_8_outputs_of_a_broken_stack_file_is_exit_2_naming_it(deployed: Path) -> None:
    (deployed / STACK_FILE).write_text("config: {stx:maxInstances: [\n")
    result = stx("outputs", "hello-course")
    assert result.exit_code == 2 and "Pulumi.hello-course.dev.yaml: not valid YAML" in (
        result.output)


def test_8_preview_and_refresh_print_no_outputs_line(deployed: Path) -> None:
    for command in ("preview", "refresh"):
        result = stx(command, "hello-course")
        assert result.exit_code == 0, result.output
        assert "not deployed" not in result.output
    assert "preview hello-course.dev: no changes — 6 unchanged" in stx(
        "preview", "hello-course").output


@pytest.mark.filterwarnings("ignore:Error in event stream")  # the engine died mid-stream
def test_8_killed_engine_still_says_what_happened(deployed: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_KILL_SELF", "1")
    result = stx("up", "hello-course", "--max", "20", "--yes")
    assert result.exit_code == 1
    assert "the engine failed on hello-course.dev: the Pulumi CLI exited with code -9" in (
        result.output)


# 9. Terminal injection ----------------------------------------------------------------------

def test_9_control_characters_are_escaped(deployed: Path) -> None:
    message = "a\nb\x1b]0;pwned\x07"
    assert stx("up", "hello-course", "--yes", "-m", message).exit_code == 0
    output = stx("stacks").output
    assert "\x1b" not in output and "\x07" not in output
    assert "a\\nb\\x1b]0;pwned\\x07" in output


# 10. No workspace made before the CLI is found ----------------------------------------------

def test_10_missing_cli_outside_a_workspace_creates_nothing(
        tmp_path: Path, app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(app_dir)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    result = stx("up", "--yes")
    assert result.exit_code == 3 and "Pulumi CLI" in result.output
    assert not home().exists()


# 11. Secret access: one member per secret; renaming a variable keeps the binding ------------

def test_11_two_variables_on_one_secret_share_one_member(
        deployed: Path, pulumi_cli: PulumiStandIn) -> None:
    result = stx("up", "hello-course", "--yes", "--secret-env", "STX_AUTH_A=course-auth",
                 "--secret-env", "STX_AUTH_B=course-auth:2")
    assert result.exit_code == 0, result.output
    members = [n for n in resources(deployed, "hello-course.dev") if "-secret-" in n]
    assert members == ["hello-course-dev-secret-course-auth"]
    cloud = deployed / ".pulumi-state" / ".pulumi" / ".standin-cloud.json"
    account = "serviceAccount:hello-course-dev-run@course-project-1.iam.gserviceaccount.com"
    assert json.loads(cloud.read_text()) == {
        "course-auth|roles/secretmanager.secretAccessor": [account]}


# 12. Secrets never on a command line; a rotated token replaces the stored one --------------

def test_12_token_never_on_argv_and_rotation_replaces_it(
        deployed: Path, pulumi_cli: PulumiStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    args = ("up", "hello-course", "--yes", "--no-verify", "--domain", "course.example.org",
            "--cloudflare-zone", ZONE)

    def provider_token() -> object:
        return [r["inputs"]["apiToken"] for r in state(deployed, "hello-course.dev")[
            "resources"] if r["type"] == "pulumi:providers:cloudflare"]

    assert stx(*args).exit_code == 0
    first = provider_token()
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN + "-rotated")
    result = stx(*args)
    assert result.exit_code == 0, result.output
    assert "replaced the stored token" in result.output
    assert provider_token() != first  # the rotated token is the one in use
    assert TOKEN not in json.dumps(pulumi_cli.calls())  # never on a command line
    assert TOKEN not in json.dumps(state(deployed, "hello-course.dev"))
    text = (deployed / STACK_FILE).read_text()
    assert set(yaml.safe_load(text)["config"]["cloudflare:apiToken"]) == {"secure"}
    assert TOKEN not in text


# 13. A region or project change needs --yes -------------------------------------------------

def test_13_region_change_needs_yes_and_says_what_is_replaced(deployed: Path) -> None:
    before = snapshot(deployed)
    result = stx("up", "hello-course", "--region", "us-central1", input="")
    assert result.exit_code == 2
    assert "gcp:region europe-west1 → us-central1 replaces the Cloud Run service" in (
        result.output)
    assert "--yes" in result.output and snapshot(deployed) == before


def test_8_interrupt_during_verification_is_one_message(deployed: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from fake_app import FakeApp

    with FakeApp("slow", slow_polls=1000) as starting:  # health answers 503 for a long time
        monkeypatch.setenv("STANDIN_SERVICE_URL", starting.url)
        assert stx("up", "hello-course", "--max", "12", "--yes", "--no-verify").exit_code == 0
        proc = stx_process("verify", "hello-course", "--wait-timeout", "60",
                           "--poll-interval", "1", cwd=deployed)
        deadline = time.monotonic() + 60
        while not starting.requests and time.monotonic() < deadline:
            time.sleep(0.1)  # until verification is waiting for health
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "interrupted during the verification of hello-course.dev" in err
    assert "Traceback" not in err


def test_8_engine_errors_without_a_stack_name_no_none(workspace: Path, pulumi_cli: PulumiStandIn,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://team-state/stx")  # the stand-in has no s3
    result = stx("stacks")
    assert result.exit_code == 1
    assert "the engine failed: " in result.output and "None" not in result.output
