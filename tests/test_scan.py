"""The vulnerability gate before prod (issue #27): an image that would serve a protected env
waits for its Artifact Analysis scan and is refused with findings at the blocking severity
that have a fix, unless the risk is accepted with a reason the release keeps; rollback warns
from the record only. Artifact Analysis is the Google fake, held to the Container Analysis
API's discovery document; the engine is the stand-in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import PulumiStandIn
from fake_google import FakeGoogle
from helpers import Said, resources, stx, stx_json

from stx_pulumi.model.scan import judge

CRITICAL = {"effectiveSeverity": "CRITICAL", "severity": "CRITICAL", "fixAvailable": True,
            "shortDescription": "CVE-2026-0001", "packageIssue": [{
                "affectedPackage": "openssl", "fixedVersion": {"name": "3.0.19",
                                                               "fullName": "3.0.19-1"}}]}
NO_FIX = {**CRITICAL, "fixAvailable": False, "shortDescription": "CVE-2026-0002"}
HIGH = {**CRITICAL, "effectiveSeverity": "HIGH", "shortDescription": "CVE-2026-0003"}


def discovery(status: str = "FINISHED_SUCCESS", days_ago: float = 0, **extra: Any) -> list:
    when = datetime(2026, 12, 5, tzinfo=UTC) - timedelta(days=days_ago)
    return [{"discovery": {"analysisStatus": status, "lastScanTime": when.strftime(
        "%Y-%m-%dT%H:%M:%SZ"), **extra}}]


NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


@pytest.mark.parametrize(("found", "vulns", "block", "clean", "reason"), [
    (discovery(), [], "CRITICAL", True, "no finding at CRITICAL or above with a fix"),
    (discovery(), [{"vulnerability": NO_FIX}, {"vulnerability": HIGH}], "CRITICAL", True, ""),
    (discovery(), [{"vulnerability": CRITICAL}], "CRITICAL", False, "1 CRITICAL or worse"),
    (discovery(), [{"vulnerability": HIGH}], "HIGH", False, "1 HIGH or worse with a fix"),
    ([], [], "CRITICAL", False, "no scan data for this image"),
    (discovery("SCANNING"), [], "CRITICAL", False, "its analysis did not finish (SCANNING)"),
    (discovery(days_ago=30), [], "CRITICAL", False, "its scan data is stale"),
    (discovery(archiveTime="2026-11-01T00:00:00Z"), [], "CRITICAL", False, "archived"),
])
def test_the_judgement(found: list, vulns: list, block: str, clean: bool, reason: str) -> None:
    judged = judge(found, vulns, block, NOW)
    assert judged.clean is clean and reason in judged.reason


def test_a_critical_image_cannot_reach_prod_without_a_recorded_reason(
        workspace: Path, pulumi_cli: PulumiStandIn, google: FakeGoogle) -> None:
    assert stx("up", "hello-course", "--env", "prod", "--yes", "--no-verify").exit_code == 0
    first = resources(workspace, "hello-course.prod")["hello-course-prod"]
    assert google.scanned and google.scanned[-1].startswith(
        "https://europe-west1-docker.pkg.dev/course-project-1/hello-course-prod/hello-course@")
    (workspace / "examples" / "hello-course" / "book.py").write_text(
        "import streamlit as st\nst.title('v2 on an old base')\n")
    google.findings = [CRITICAL]
    refused = stx("up", "hello-course", "--env", "prod", "--yes", "--no-verify")
    assert refused.exit_code == 2, refused.output
    assert ("hello-course.prod is protected and its image is not clean: 1 CRITICAL or worse "
            "with a fix: CVE-2026-0001 (CRITICAL) in openssl, fixed in 3.0.19-1"
            in refused.output)
    assert "--accept-risk" in refused.output and "nothing serves the image yet" in refused.output
    served = resources(workspace, "hello-course.prod")["hello-course-prod"]
    assert served["inputs"]["template"] == first["inputs"]["template"]  # still the clean one
    again = stx("up", "hello-course", "--env", "prod", "--yes", "--no-verify")
    assert again.exit_code == 2 and "not clean" in again.output  # pushed is not accepted
    data = stx_json("up", "hello-course", "--env", "prod", "--yes", "--no-verify",
                    "--accept-risk", "exam tomorrow; base image fixed on Monday")
    assert data["result"] == "succeeded"
    releases = json.loads(stx("history", "hello-course", "--env", "prod", "--json").stdout)[
        "releases"]
    assert releases[0]["accepted_risk"] == "exam tomorrow; base image fixed on Monday"
    assert releases[0]["scan"] == "1 CRITICAL or worse with a fix"
    assert releases[1]["scan"] == "clean" and releases[1]["accepted_risk"] is None
    # fixed: release 3 is clean; a rollback to release 2 stays fast: it warns from the
    # record, never scans
    google.findings = []
    (workspace / "examples" / "hello-course" / "book.py").write_text(
        "import streamlit as st\nst.title('v3 on a fixed base')\n")
    assert stx("up", "hello-course", "--env", "prod", "--yes", "--no-verify").exit_code == 0
    asked = len(google.scanned)
    back = stx("rollback", "hello-course", "--env", "prod", "--to", "2", "--yes", "--no-verify")
    assert back.exit_code == 0, back.output
    assert "release 2's image was not clean when deployed: 1 CRITICAL" in back.output
    assert len(google.scanned) == asked


def test_dev_images_are_neither_scanned_nor_gated(
        workspace: Path, pulumi_cli: PulumiStandIn, google: FakeGoogle) -> None:
    google.findings = [CRITICAL]
    assert stx("up", "hello-course", "--yes", "--no-verify").exit_code == 0
    assert google.scanned == []
    repo = resources(workspace, "hello-course.dev")["hello-course-dev-repo"]["inputs"]
    assert repo["vulnerabilityScanningConfig"] == {"enablementConfig": "DISABLED"}


def test_an_image_with_no_scan_is_not_clean(workspace: Path, google: FakeGoogle) -> None:
    """No scan data within the wait counts as not clean (a refusal, said at once here)."""
    from test_program import make_spec

    from stx_pulumi.errors import InputError
    from stx_pulumi.ops.scan import gate

    google.scan_status = ""  # Artifact Analysis has nothing on this image

    said = Said()
    spec = make_spec(env="prod")
    image = "europe-west1-docker.pkg.dev/course-project-1/hello-course-prod/hello-course@sha256:" \
        + "ab" * 32
    with pytest.raises(InputError) as refused:
        gate(spec, image, None, said, wait_s=0.3, poll_s=0.1)
    assert "not clean: no scan data for this image" in refused.value.message
    assert any("waiting for the vulnerability scan" in line for line in said.lines)
    judged = gate(spec, image, "the scanner is down today", said, wait_s=0, poll_s=0.1)
    assert not judged.clean and judged.record == "no scan data for this image"
