"""Shared fixtures: temp copies of the example app and workspace, and a clean environment."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "hello-course"
PROJECT = "course-project-1"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No user settings leak in: a fixed project, no token, no env choice."""
    for var in ("STX_ENV", "CLOUDFLARE_API_TOKEN", "PULUMI_BACKEND_URL",
                "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "STX_PULUMI_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("NO_COLOR", "1")


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
    shutil.copytree(REPO / "stacks", root / "stacks")
    (root / "examples").mkdir()
    shutil.copytree(app_dir, root / "examples" / "hello-course")
    monkeypatch.chdir(root)
    return root
