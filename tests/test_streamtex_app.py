"""A real StreamTeX app, made by `stx project new` (extra `streamtex`), planned as it is."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stx_pulumi.cli import app

pytestmark = pytest.mark.streamtex
runner = CliRunner()
SERVICE = "gcp:cloudrunv2/service:Service"


@pytest.fixture(scope="module")
def made_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    stx = shutil.which("stx") or str(Path(sys.executable).parent / "stx")
    if not Path(stx).exists():
        pytest.skip("the streamtex package is not installed (pip install -e '.[streamtex]')")
    where = tmp_path_factory.mktemp("stx")
    subprocess.run([stx, "project", "new", "demo", "--no-git", "--no-sync", "--no-claude"],
                   cwd=where, check=True, capture_output=True, timeout=120)
    return where / "demo"


def container(data: dict) -> dict:
    (service,) = [r for r in data["resources"] if r["type"] == SERVICE]
    return service["inputs"]["template"]["containers"][0]


def test_new_streamtex_app_plans_after_uv_lock(made_app: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    monkeypatch.chdir(made_app.parent)
    (made_app / "uv.lock").unlink(missing_ok=True)
    result = runner.invoke(app, ["plan", "demo"])
    assert result.exit_code == 2
    assert "copies uv.lock" in result.output and "run `uv lock`" in result.output
    no_uv = made_app.parent / "no-uv"  # a PATH without uv: say how to get it
    no_uv.mkdir(exist_ok=True)
    result = runner.invoke(app, ["plan", "demo"], env={"PATH": str(no_uv)})
    assert result.exit_code == 2 and "uv is not installed: `pip install uv`" in result.output

    (made_app / "uv.lock").write_text("version = 1\n")  # what `uv lock` would write
    result = runner.invoke(app, ["plan", "demo", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    types = {r["type"] for r in data["resources"]}
    assert types >= {"stx:index:StreamtexApp", "gcp:artifactregistry/repository:Repository",
                     "docker:index/image:Image", "gcp:serviceaccount/account:Account", SERVICE,
                     "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"}
    c = container(data)
    assert c["ports"]["containerPort"] == 80
    assert {"name": "STX_SERVE_MODE", "value": "dual"} in c["envs"]

    dockerfile = made_app / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace('ENV STX_SERVE_MODE="dual"',
                                                         'ENV STX_SERVE_MODE="streamlit-only"'))
    data = json.loads(runner.invoke(app, ["plan", "demo", "--json"]).stdout)
    assert container(data)["ports"]["containerPort"] == 8501
    assert {"name": "STX_SERVE_MODE", "value": "streamlit-only"} in container(data)["envs"]


def _stx() -> str:
    stx = shutil.which("stx") or str(Path(sys.executable).parent / "stx")
    if not Path(stx).exists():
        pytest.skip("the streamtex package is not installed (pip install -e '.[streamtex]')")
    return stx


def _scaffolds() -> list[list[str]]:
    """Every way `stx project new --help` offers to scaffold a project, read at test time."""
    stx = shutil.which("stx") or str(Path(sys.executable).parent / "stx")
    if not Path(stx).exists():
        return [[]]
    text = subprocess.run([stx, "project", "new", "--help"], capture_output=True, text=True,
                          timeout=60, check=False).stdout
    match = re.search(r"--template \[([\w|-]+)\]", text)
    templates = match.group(1).split("|") if match else []
    return [[], *([["--collection"]] if "--collection" in text else []),
            *[["--template", t] for t in templates]]


@pytest.mark.e2e
@pytest.mark.parametrize("form", _scaffolds(), ids=lambda f: " ".join(f) or "default")
def test_every_scaffold_plans_and_deploys_with_no_edit_but_uv_lock(
        form: list[str], tmp_path: Path, pulumi_cli: object,
        monkeypatch: pytest.MonkeyPatch) -> None:
    done = subprocess.run([_stx(), "project", "new", "course", *form, "--no-git", "--no-sync",
                           "--no-claude"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=180, check=False)
    if done.returncode != 0 and "requires a StreamTeX workspace" in done.stdout + done.stderr:
        pytest.skip(f"`stx project new {' '.join(form)}` needs `stx install` (network)")
    assert done.returncode == 0, done.stdout + done.stderr
    (tmp_path / "course" / "uv.lock").write_text("version = 1\n")  # what `uv lock` writes
    monkeypatch.chdir(tmp_path)
    plan = runner.invoke(app, ["plan", "course"])
    assert plan.exit_code == 0, plan.output
    up = runner.invoke(app, ["up", "course", "--yes", "--no-verify"])
    assert up.exit_code == 0, up.output
