"""`up --changed` (issue #15: CI deploys only the changed apps on a push): an app is changed
when its image tag or its settings differ from its last release's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import PulumiStandIn
from helpers import stx, stx_json

pytestmark = pytest.mark.e2e


def ups(standin: PulumiStandIn) -> int:
    return standin.commands().count("up")


def test_up_changed_skips_what_is_deployed_and_deploys_what_changed(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    assert stx("up", "hello-course", "--max", "10", "--yes").exit_code == 0
    before = ups(pulumi_cli)
    out = stx_json("up", "hello-course", "--changed")
    assert out["result"] == "unchanged" and out["outputs"]["url"]
    assert ups(pulumi_cli) == before  # no update ran

    # a setting changed in the stack file (as a pull request would): deployed
    file = workspace / "stacks" / "Pulumi.hello-course.dev.yaml"
    data = yaml.safe_load(file.read_text())
    data["config"]["stx:maxInstances"] = 12
    file.write_text(yaml.safe_dump(data))
    assert stx_json("up", "hello-course", "--changed")["result"] == "succeeded"
    assert ups(pulumi_cli) == before + 1
    assert stx_json("up", "hello-course", "--changed")["result"] == "unchanged"

    # the app's content changed: a new image tag, deployed
    book = workspace / "examples" / "hello-course" / "book.py"
    book.write_text(book.read_text() + "\n# a new paragraph\n")
    assert stx_json("up", "hello-course", "--changed")["result"] == "succeeded"
    assert ups(pulumi_cli) == before + 2


def test_a_release_without_recorded_settings_counts_as_changed(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    """Stacks deployed by the previous release recorded no settings: their first `up
    --changed` deploys (and records them), the next one skips."""
    import json

    assert stx("up", "hello-course", "--yes").exit_code == 0
    file = workspace / ".pulumi-state/.pulumi/stacks/stx-pulumi/hello-course.dev.json"
    state = json.loads(file.read_text())
    assert state["outputs"]["releases"][-1].pop("settings")
    file.write_text(json.dumps(state))
    assert stx_json("up", "hello-course", "--changed")["result"] == "succeeded"
    assert stx_json("up", "hello-course", "--changed")["result"] == "unchanged"
