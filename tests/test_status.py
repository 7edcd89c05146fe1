"""`status` (issue #11, first part): every app and env at a glance, read with one engine call
to list the stacks and two per stack, and a live health check per URL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conftest import PulumiStandIn
from helpers import stx, stx_json

from stx_pulumi.model import events


def test_status_shows_every_app_and_env_and_checks_their_health(
        workspace: Path, pulumi_cli: PulumiStandIn, deployed_app: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(events, "clock", lambda: datetime(2026, 11, 23, 12, tzinfo=UTC))
    assert stx("up", "hello-course", "--yes", "--max", "30", "--no-verify").exit_code == 0
    assert stx("event", "add", "hello-course", "--start", "2026-12-01 08:00", "--end",
               "2026-12-01 10:00", "--users", "400").exit_code == 0
    assert stx("up", "hello-course", "--env", "prod", "--yes", "--no-verify").exit_code == 0
    before = len(pulumi_cli.calls())
    data = stx_json("status")
    calls = [c for c in pulumi_cli.calls()[before:] if "version" not in c]
    assert len(calls) <= 1 + 2 * 2, calls
    rows = {r["stack"]: r for r in data["stacks"]}
    dev, prod = rows["hello-course.dev"], rows["hello-course.prod"]
    outputs = stx_json("outputs", "hello-course")
    assert dev["urls"] == {"": outputs["url"]} and dev["image_tag"] == outputs["image_tag"]
    assert (dev["min_instances"], dev["max_instances"], dev["scaling"]) == (0, 30, "base")
    assert dev["health"] == prod["health"] == "ok"
    assert dev["next_event"].startswith("w20261201-0800: 2026-12-01 08:00–10:00 UTC")
    assert prod["next_event"] is None and dev["result"] == "succeeded"
    only = stx_json("status", "hello-course", "--env", "prod", "--no-check")
    assert [r["stack"] for r in only["stacks"]] == ["hello-course.prod"]
    assert only["stacks"][0]["health"] is None
    text = stx("status").output
    assert "hello-course" in text and "ok" in text and "w20261201-0800" in text


def test_logs_reads_the_services_lines_through_cloud_logging(
        workspace: Path, pulumi_cli: PulumiStandIn, google: Any) -> None:
    assert stx("up", "hello-course", "--yes", "--no-verify").exit_code == 0
    google.log_entries = [
        {"insertId": "a", "timestamp": "2099-01-01T08:00:00Z", "severity": "INFO",
         "textPayload": "You can now view your Streamlit app",
         "resource": {"labels": {"service_name": "hello-course-dev"}}},
        {"insertId": "b", "timestamp": "2099-01-01T08:00:01Z", "severity": "ERROR",
         "textPayload": "ModuleNotFoundError: No module named 'blocks'",
         "resource": {"labels": {"service_name": "hello-course-dev"}}}]
    result = stx("logs", "hello-course", "--since", "2h")
    assert result.exit_code == 0, result.output
    assert "2099-01-01T08:00:01 ERROR    ModuleNotFoundError" in result.output
    (query,) = google.log_queries
    assert query["resourceNames"] == ["projects/course-project-1"]
    assert 'resource.labels.service_name="hello-course-dev"' in query["filter"]
    assert stx("logs", "hello-course", "--since", "soon").exit_code == 2
    google.log_entries = []  # a quiet service is said to be quiet, never an empty answer
    quiet = stx("logs", "hello-course", "--since", "30m")
    assert quiet.exit_code == 0 and "nothing was logged by hello-course-dev since" in quiet.output


def test_status_shows_custom_domains_and_a_destroyed_stack_as_such(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    assert stx("up", "hello-course", "--domain", "course.example.org", "--yes",
               "--no-verify").exit_code == 0
    assert stx("up", "hello-course", "--env", "staging", "--yes", "--no-verify").exit_code == 0
    assert stx("destroy", "hello-course", "--env", "staging", "--yes").exit_code == 0
    text = stx("status", "--no-check").output
    assert "https://course.example.org" in text
    staging = next(line for line in text.splitlines() if " staging " in f" {line} ")
    assert "nothing deployed" in staging and "0–0" not in staging
