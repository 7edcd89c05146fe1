"""A real StreamTeX app, made by `stx project new` (extra `streamtex`), planned as it is."""

from __future__ import annotations

import json
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
