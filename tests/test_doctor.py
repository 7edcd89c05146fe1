"""`stx-pulumi doctor`, and `up` stopping before the engine when a prerequisite is missing.

The checks call `pulumi`, `docker` and `gcloud` found on PATH: the tests stand in for them
(tests/standin) and switch their answers with environment variables.
"""

from __future__ import annotations

import json
import os
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import PulumiStandIn
from fake_google import FakeGoogle
from helpers import stx


def doctor(*args: str) -> tuple[int, dict[str, dict]]:
    result = stx("doctor", *args, "--json")
    data = json.loads(result.stdout)
    return result.exit_code, {c["name"]: c for c in data["checks"]}


def test_ready_machine_passes(workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    code, checks = doctor("hello-course")
    assert code == 0
    for name in ("pulumi", "docker", "credentials", "project", "apis", "backend", "secrets",
                 "spec"):
        assert checks[name]["status"] == "pass", checks[name]
    assert version("pulumi") in checks["pulumi"]["detail"]  # the stand-in reports the SDK's
    assert "hello-course.dev is valid" in checks["spec"]["detail"]


def test_human_output_is_a_table_with_fixes(workspace: Path, pulumi_cli: PulumiStandIn,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_DOCKER_DOWN", "1")
    result = stx("doctor")
    assert result.exit_code == 3
    assert "doctor: failed" in result.output
    assert "fail docker" in result.output and "fix: start Docker" in result.output


def test_docker_daemon_down_exits_3(workspace: Path, pulumi_cli: PulumiStandIn,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_DOCKER_DOWN", "1")
    code, checks = doctor()
    assert code == 3
    assert checks["docker"]["status"] == "fail"
    assert "Cannot connect to the Docker daemon" in checks["docker"]["detail"]


def test_missing_pulumi_exits_3(workspace: Path, pulumi_cli: PulumiStandIn, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    only = tmp_path / "only"
    only.mkdir()
    for tool in ("docker", "gcloud"):
        (only / tool).symlink_to(pulumi_cli.root / "bin" / tool)
    monkeypatch.setenv("PATH", str(only))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    code, checks = doctor()
    assert code == 3
    assert checks["pulumi"]["status"] == "fail" and "install-cli" in checks["pulumi"]["fix"]


def test_no_application_default_credentials_exits_3(workspace: Path, pulumi_cli: PulumiStandIn,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud-login"))
    code, checks = doctor()
    assert code == 3
    assert checks["credentials"]["status"] == "fail"
    assert "gcloud auth application-default login" in checks["credentials"]["fix"]
    assert checks["apis"]["status"] == "skip"


def test_revoked_credentials_exit_3_with_googles_reason(workspace: Path,
                                                        pulumi_cli: PulumiStandIn,
                                                        google: FakeGoogle) -> None:
    google.revoked = True
    code, checks = doctor()
    assert code == 3 and "invalid_grant" in checks["credentials"]["detail"]


def test_service_account_key_file_names_its_own_token_endpoint(
        workspace: Path, pulumi_cli: PulumiStandIn, google: FakeGoogle, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    file = tmp_path / "deployer-key.json"
    file.write_text(json.dumps({
        "type": "service_account", "project_id": "course-project-1", "private_key_id": "k1",
        "private_key": pem, "client_email": "deployer@course-project-1.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": f"{google.url}/token"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(file))
    monkeypatch.delenv("STX_OAUTH_TOKEN_ENDPOINT")
    code, checks = doctor()
    assert code == 0, checks
    assert str(file) in checks["credentials"]["detail"]
    assert ("POST", "/token", "oauth2.token") in google.requests


def test_disabled_apis_are_named_with_the_command_to_enable_them(
        workspace: Path, pulumi_cli: PulumiStandIn, google: FakeGoogle) -> None:
    google.disabled = {"run.googleapis.com", "secretmanager.googleapis.com"}
    code, checks = doctor("hello-course")
    assert code == 3
    assert checks["apis"]["detail"] == "not enabled in course-project-1: run.googleapis.com"
    code, checks = doctor("hello-course", "--secret-env", "PW=pw")
    assert "secretmanager.googleapis.com" in checks["apis"]["detail"]
    assert checks["apis"]["fix"] == (
        "run `stx-pulumi setup --project course-project-1 --yes` (or `gcloud services enable "
        "run.googleapis.com secretmanager.googleapis.com --project course-project-1`)")
    # one batchGet answers for every API (the checks run at once: no order among calls)
    calls = [path for method, path, auth in google.requests if method == "GET"]
    assert "/v1/projects/course-project-1/services:batchGet" in calls
    assert not [c for c in calls if c.startswith("/v1/projects/course-project-1/services/")]


def test_gs_backend_is_checked_through_the_storage_api(workspace: Path,
                                                       pulumi_cli: PulumiStandIn,
                                                       google: FakeGoogle,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", "gs://team-state/stx")
    code, checks = doctor()
    assert checks["backend"]["status"] == "pass", checks["backend"]
    assert checks["secrets"]["status"] == "pass"  # a passphrase the team shares through env
    # a passphrase generated on this machine, with a shared backend: nobody else decrypts
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    code, checks = doctor()
    assert checks["secrets"]["status"] == "warn" and "team setup" in checks["secrets"]["fix"]
    monkeypatch.setenv("PULUMI_BACKEND_URL", "gs://no-such-bucket/stx")
    code, checks = doctor()
    assert code == 3 and "The specified bucket does not exist" in checks["backend"]["detail"]


def test_an_unreachable_api_only_warns(workspace: Path, pulumi_cli: PulumiStandIn,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STX_SERVICEUSAGE_ENDPOINT", "http://127.0.0.1:9")
    code, checks = doctor()
    assert code == 0 and checks["apis"]["status"] == "warn"


def test_domain_reminds_of_verification_and_region(workspace: Path,
                                                   pulumi_cli: PulumiStandIn) -> None:
    code, checks = doctor("hello-course", "--domain", "course.example.org", "--region",
                          "europe-west3")
    assert code == 0
    detail = checks["custom domain"]["detail"]
    assert "verified" in detail and "europe-west3 has NO Cloud Run domain mappings" in detail


def test_only_an_invalid_spec_exits_2(workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    code, checks = doctor("hello-course", "--max", "0")
    assert code == 2
    assert "stx:maxInstances (--max)" in checks["spec"]["detail"]


def test_spec_failure_wins_over_prerequisite_failure(workspace: Path, pulumi_cli: PulumiStandIn,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad input is exit 2 first, as with every command; the checks still all show."""
    monkeypatch.setenv("STANDIN_DOCKER_DOWN", "1")
    code, checks = doctor("hello-course", "--max", "0", "--project", "course-project-2")
    assert code == 2
    assert checks["docker"]["status"] == "fail" and checks["project"]["status"] == "pass"


def test_uncommitted_app_folder_warns(workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    app = workspace / "examples" / "hello-course"
    git = ["git", "-C", str(app), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "course"], check=True)
    code, checks = doctor("hello-course")
    assert code == 0 and checks["spec"]["status"] == "pass"
    (app / "book.py").write_text("# edited\n")
    code, checks = doctor("hello-course")
    assert code == 0
    assert checks["app folder"]["status"] == "warn"
    assert "content hash" in checks["app folder"]["detail"]


def test_up_stops_with_3_before_the_engine(workspace: Path, pulumi_cli: PulumiStandIn,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_DOCKER_DOWN", "1")  # the local builder needs it (auto would
    result = stx("up", "hello-course", "--yes", "--builder", "local")  # build in the cloud)
    assert result.exit_code == 3
    assert "docker: the Docker daemon is not reachable" in result.output
    assert "stack select" not in pulumi_cli.commands()
    assert not (workspace / ".pulumi-state" / ".pulumi").exists()


@pytest.mark.streamtex
def test_real_streamtex_app(streamtex_app: Path, pulumi_cli: PulumiStandIn) -> None:
    code, checks = doctor()  # the current folder is the app
    assert code == 2 and "run `uv lock`" in checks["spec"]["detail"]
    (streamtex_app / "uv.lock").write_text("version = 1\n")
    code, checks = doctor()
    assert code == 0 and checks["spec"]["status"] == "pass"
    (streamtex_app / ".stx-passwords.toml").write_text("[users]\nada = 'secret'\n")
    code, checks = doctor()
    assert code == 2
    assert ".stx-passwords.toml would ship in the image" in checks["spec"]["detail"]
    (streamtex_app / ".dockerignore").write_text(".env\n.stx-deploy.env\n.stx-passwords.toml\n")
    code, _ = doctor()
    assert code == 0


def _wheel(folder: Path, name: str, release: str) -> None:
    """A minimal valid wheel of `name` `release` (metadata only) for a local index."""
    import zipfile

    dist = f"{name.replace('-', '_')}-{release}"
    with zipfile.ZipFile(folder / f"{dist}-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"{dist}.dist-info/METADATA",
                       f"Metadata-Version: 2.1\nName: {name}\nVersion: {release}\n")
        wheel.writestr(f"{dist}.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: tests\n"
                       "Root-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{dist}.dist-info/RECORD", "")


def test_a_workflow_installing_what_pip_cannot_resolve_is_named(
        workspace: Path, pulumi_cli: PulumiStandIn, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`ci github` once wrote `pip install stx-pulumi==0.1.0`, never published: every CI run
    failed at its first step. doctor asks this machine's pip (a local index of one release)."""
    index = tmp_path / "index"
    index.mkdir()
    _wheel(index, "stx-pulumi", "0.0.9")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # this index alone, not the machine's
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    (workspace / ".git").mkdir()  # the repository root holds the workflow
    workflow = workspace / ".github" / "workflows" / "stx-pulumi.yml"
    workflow.parent.mkdir(parents=True)

    def installs(spec: str) -> dict:
        workflow.write_text("on: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n"
                            "    steps:\n      - name: Install\n        env:\n"
                            f"          INSTALL: '{spec}'\n        run: pip install \"$INSTALL\"\n")
        code, checks = doctor("hello-course")
        assert code == 0, checks  # a warning: this machine can still deploy
        return checks["CI install"]

    unpublished = installs("stx-pulumi==0.1.0")
    assert unpublished["status"] == "warn"
    assert "stx-pulumi==0.1.0, which pip cannot resolve on this machine" in unpublished["detail"]
    assert "ci github --install" in unpublished["fix"]
    assert installs("stx-pulumi==0.0.9")["status"] == "pass"
    assert installs("./no-such-folder")["status"] == "warn"
    workflow.unlink()
    assert "CI install" not in doctor("hello-course")[1]  # no workflow, no check
