"""Shared fixtures: temp copies of the example app and workspace, and a clean environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_app import FakeApp
from fake_google import FakeGoogle

from stx_pulumi.cloud.google import ENDPOINTS

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "hello-course"
PROJECT = "course-project-1"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No user settings leak in: a fixed project, no token, no env choice, a temp home."""
    for var in ("STX_ENV", "CLOUDFLARE_API_TOKEN", "PULUMI_BACKEND_URL",
                "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE",
                "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CORE_PROJECT",
                "CLOUDSDK_ACTIVE_CONFIG_NAME", "STX_SERVICEUSAGE_ENDPOINT",
                "STX_OAUTH_TOKEN_ENDPOINT", *(var for _, var in ENDPOINTS.values()),
                "STX_GITHUB_API", "STANDIN_GCS", "STANDIN_KMS", "GITHUB_TOKEN", "GH_TOKEN",
                "STX_PULUMI_NOW", "GITHUB_ACTOR"):
        monkeypatch.delenv(var, raising=False)
    # gcloud's configuration of the machine (project, credentials) never leaks in
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path_factory.mktemp("gcloud-config")))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("STX_PULUMI_HOME", str(tmp_path_factory.mktemp("home") / ".stx-pulumi"))


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A copy of examples/hello-course outside any git repository or workspace."""
    target = tmp_path / "apps" / "hello-course"
    shutil.copytree(EXAMPLE, target)
    return target


@pytest.fixture
def workspace(tmp_path: Path, app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp deploy workspace holding a copy of the repo's Pulumi.yaml and stack files, with
    the example app's copy at the path the stack file names; the current folder."""
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copy(REPO / "__main__.py", root / "__main__.py")
    shutil.copytree(REPO / "stacks", root / "stacks")
    (root / "examples").mkdir()
    shutil.copytree(app_dir, root / "examples" / "hello-course")
    monkeypatch.chdir(root)
    return root


STANDIN = Path(__file__).resolve().parent / "standin" / "pulumi_standin.py"


class PulumiStandIn:
    """The stand-in `pulumi` on PATH, and the argv of every call it received."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log = root / "calls.jsonl"

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def commands(self) -> list[str]:
        """Each call's command words (`stack select`, `config set`, `up`...)."""
        out = []
        for argv in self.calls():
            words = [a for a in argv if not a.startswith("-")][:2]
            out.append(" ".join(w for w in words if w in COMMAND_WORDS))
        return out


COMMAND_WORDS = {"version", "stack", "select", "init", "ls", "rm", "output", "history", "config",
                 "set", "get", "up", "preview", "refresh", "destroy", "cancel", "set-all"}


@pytest.fixture
def mocks() -> Any:
    """Pulumi's mocks for stack hello-course.dev, recording every registration (the program
    tests; test_books has its own for course.dev)."""
    import pulumi
    from test_program import Recorder

    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="stx-pulumi", stack="hello-course.dev",
                             preview=False)
    return recorder


@pytest.fixture
def deployed_app() -> Iterator[FakeApp]:
    """A healthy local stand-in of the deployed app: the URL the stand-in engine reports."""
    with FakeApp() as app:
        yield app


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGoogle]:
    """Google's token, Service Usage and Storage endpoints on 127.0.0.1, and gcloud's ADC
    file naming that token endpoint: a machine logged in to Google."""
    with FakeGoogle() as fake:
        fake.write_adc(Path(os.environ["CLOUDSDK_CONFIG"]))
        for var, value in fake.environ().items():
            monkeypatch.setenv(var, value)
        yield fake
    # a request off Google's published contract fails the test that made it
    assert fake.violations == [], "requests off Google's contract:\n" + "\n".join(
        fake.violations)


@pytest.fixture
def pulumi_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               deployed_app: FakeApp, google: FakeGoogle) -> PulumiStandIn:
    """A stand-in Pulumi CLI first on PATH (see tests/standin/pulumi_standin.py), with stand-in
    `docker` and `gcloud` beside it; the services it "deploys" answer at a local healthy app,
    so `up` checks its prerequisites and verifies for real."""
    root = tmp_path / "pulumi-cli"
    (root / "bin").mkdir(parents=True)
    for tool in ("docker", "gcloud"):
        shutil.copy(STANDIN.parent / tool, root / "bin" / tool)
    script = root / "bin" / "pulumi"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
    script.chmod(0o755)
    standin = PulumiStandIn(root)
    monkeypatch.setenv("STANDIN_LOG", str(standin.log))
    monkeypatch.setenv("PATH", f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-passphrase")
    monkeypatch.setenv("STANDIN_SERVICE_URL", deployed_app.url)
    return standin


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The lanes: a test that runs the stand-in engine (the `pulumi_cli` fixture) or the CLI
    as a process is end to end (`e2e`), whatever its module; `pytest` alone runs the fast
    lane (pyproject's addopts), `pytest -m "not live"` every lane (what CI runs)."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "pulumi_cli" in names:
            item.add_marker(pytest.mark.e2e)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """`pytest -m live` reads only the live suite: a machine without a project skips it at
    once, without importing the rest."""
    if config.getoption("markexpr") == "live" and collection_path.suffix == ".py" and (
            collection_path.name.startswith("test_")):
        return collection_path.name != "test_live.py"
    return None


@pytest.fixture
def streamtex_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    stx_cli = shutil.which("stx") or str(Path(sys.executable).parent / "stx")
    if not os.path.exists(stx_cli):
        pytest.skip("the streamtex package is not installed (pip install -e '.[streamtex]')")
    subprocess.run([stx_cli, "project", "new", "demo", "--no-git", "--no-sync", "--no-claude"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=120)
    monkeypatch.chdir(tmp_path / "demo")
    return tmp_path / "demo"
