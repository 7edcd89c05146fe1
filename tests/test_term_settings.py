"""Settings for a whole term (issue #11): Pulumi.yaml's project-level `config:` applies to every
stack of the workspace, below each stack file and the command line; maps merge by entry."""

from __future__ import annotations

from pathlib import Path

import yaml
from helpers import stx, stx_json

SERVICE = "gcp:cloudrunv2/service:Service"


def _term(workspace: Path, config: dict) -> None:
    file = workspace / "Pulumi.yaml"
    data = yaml.safe_load(file.read_text())
    data["config"] = config
    file.write_text(yaml.safe_dump(data))


def _service(*args: str) -> dict:
    plan = stx_json("plan", "hello-course", *args)
    (service,) = [r for r in plan["resources"] if r["type"] == SERVICE]
    return service["inputs"]


def test_term_settings_apply_below_the_stack_file_and_the_command_line(
        workspace: Path) -> None:
    _term(workspace, {"stx:concurrency": 40, "stx:memory": {"value": "1Gi"},
                      "stx:envVars": {"TERM_NAME": "fall-2026", "GREETING": "term"}})
    stack = workspace / "stacks" / "Pulumi.hello-course.dev.yaml"
    data = yaml.safe_load(stack.read_text())
    data["config"]["stx:envVars"] = {"GREETING": "course"}
    stack.write_text(yaml.safe_dump(data))
    service = _service()
    container = service["template"]["containers"][0]
    assert service["template"]["maxInstanceRequestConcurrency"] == 40  # from the term
    assert container["resources"]["limits"]["memory"] == "1Gi"
    envs = {e["name"]: e.get("value") for e in container["envs"]}
    assert envs["TERM_NAME"] == "fall-2026" and envs["GREETING"] == "course"  # stack wins
    assert _service("--concurrency", "60")["template"]["maxInstanceRequestConcurrency"] == 60


def test_an_unknown_term_setting_names_pulumi_yaml(workspace: Path) -> None:
    _term(workspace, {"stx:maxInstance": 20})
    result = stx("plan", "hello-course")
    assert result.exit_code == 2
    assert "Pulumi.yaml: stx:maxInstance: not a setting" in result.output
    assert "did you mean stx:maxInstances?" in result.output
