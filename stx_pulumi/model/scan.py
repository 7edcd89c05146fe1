"""The vulnerability gate before prod: what Artifact Analysis found in an image, judged.

Artifact Registry scans images pushed to a repository whose scanning is on (per repository:
`vulnerabilityScanningConfig.enablementConfig`; every new digest in a scanned repository is
billed, so only protected envs' repositories scan). The results are occurrences (Container
Analysis API `projects.occurrences.list`): one DISCOVERY occurrence per image saying whether its
analysis finished, and one VULNERABILITY occurrence per finding with its `effectiveSeverity`
and whether a fix is available. No scan data, an analysis not finished, or data no longer kept
current (an `archiveTime`, or a last scan older than STALE) is not clean. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
STALE = timedelta(days=7)
SCANNING_API = "containerscanning.googleapis.com"
ANALYSIS_API = "containeranalysis.googleapis.com"
DONE = "FINISHED_SUCCESS"
WAITING = ("PENDING", "SCANNING", "ANALYSIS_STATUS_UNSPECIFIED", "")


@dataclass(frozen=True)
class Finding:
    cve: str
    severity: str
    package: str
    fixed_in: str

    def line(self) -> str:
        fix = f", fixed in {self.fixed_in}" if self.fixed_in else ""
        return f"{self.cve} ({self.severity}) in {self.package}{fix}"


@dataclass(frozen=True)
class Judgement:
    """The gate's answer for one image: clean, or why not (`blocking` findings, or no usable
    scan)."""

    clean: bool
    reason: str
    blocking: tuple[Finding, ...] = ()

    @property
    def record(self) -> str:
        """What a release keeps of it (rollback warns from this, never scanning again)."""
        return "clean" if self.clean else self.reason


def resource_url(image: str) -> str:
    """The resource URL Artifact Analysis files an image's occurrences under."""
    return image if image.startswith("https://") else f"https://{image}"


def analysis(discovery: Sequence[Mapping[str, Any]]) -> str:
    """The analysis status of the image's DISCOVERY occurrence ("" when there is none)."""
    found = [d.get("discovery") or {} for d in discovery]
    return str(found[0].get("analysisStatus") or "") if found else ""


def judge(discovery: Sequence[Mapping[str, Any]], vulnerabilities: Sequence[Mapping[str, Any]],
          block_at: str, now: datetime) -> Judgement:
    """Clean when the analysis finished, is current, and found nothing at `block_at` or above
    that has a fix."""
    if not discovery:
        return Judgement(False, "no scan data for this image")
    info = discovery[0].get("discovery") or {}
    status = str(info.get("analysisStatus") or "")
    if status != DONE:
        return Judgement(False, f"its analysis did not finish ({status or 'no status'})")
    if info.get("archiveTime"):
        return Judgement(False, "its scan data is no longer kept current (archived)")
    last = _time(info.get("lastScanTime"))
    if last is None or now - last > STALE:
        return Judgement(False, "its scan data is stale (last scan "
                         + (f"{last:%Y-%m-%d}" if last else "unknown") + ")")
    level = SEVERITIES.index(block_at)
    blocking = tuple(sorted((f for f in map(_finding, vulnerabilities)
                             if f is not None and SEVERITIES.index(f.severity) >= level),
                            key=lambda f: (-SEVERITIES.index(f.severity), f.cve)))
    if blocking:
        return Judgement(False, f"{len(blocking)} {block_at} or worse with a fix", blocking)
    return Judgement(True, "no finding at " + block_at + " or above with a fix")


def _finding(occurrence: Mapping[str, Any]) -> Finding | None:
    v = occurrence.get("vulnerability") or {}
    severity = str(v.get("effectiveSeverity") or v.get("severity") or "")
    if severity not in SEVERITIES or not v.get("fixAvailable"):
        return None
    issue = (v.get("packageIssue") or [{}])[0]
    fixed = issue.get("fixedVersion") or {}
    return Finding(cve=str(v.get("shortDescription") or occurrence.get("noteName", "?")
                           ).rsplit("/", 1)[-1],
                   severity=severity, package=str(issue.get("affectedPackage") or "?"),
                   fixed_in=str(fixed.get("fullName") or fixed.get("name") or ""))


def _time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
