"""The vulnerability gate before prod: wait for Artifact Analysis to scan the image that would
serve a protected env, and refuse it when it has findings at the blocking severity with a fix
(`model.scan` judges), unless the user accepts the risk with a reason the release keeps."""

from __future__ import annotations

import os
import threading
import time

from stx_pulumi.errors import InputError
from stx_pulumi.model.scan import WAITING, Judgement, analysis, judge, resource_url
from stx_pulumi.model.spec import AppSpec
from stx_pulumi.ops.report import Reporter

SCAN_WAIT_S = 600.0  # a scan usually lands within minutes of the push
POLL_S = 10.0


def gate(spec: AppSpec, image: str, accept_risk: str | None, report: Reporter,
         stop: threading.Event | None = None, wait_s: float = SCAN_WAIT_S,
         poll_s: float = POLL_S) -> Judgement:
    """The judgement on `image` (a digest reference) once its scan finished, or `wait_s`
    passed; InputError (exit 2: nothing serves it yet) when it is not clean and no risk was
    accepted."""
    from stx_pulumi.cloud.google import required
    from stx_pulumi.model.events import clock

    client = required(os.environ)
    url = resource_url(image)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            discovery = client.occurrences(spec.project, "DISCOVERY", url)
            if analysis(discovery) not in WAITING or time.monotonic() >= deadline:
                break
            report.info(f"waiting for the vulnerability scan of {image.rsplit('/', 1)[-1]}")
            if (stop or threading.Event()).wait(poll_s):
                raise KeyboardInterrupt
        findings = client.occurrences(spec.project, "VULNERABILITY", url) if discovery else []
    finally:
        client.close()
    judged = judge(discovery, findings, spec.scan_block, clock())
    if judged.clean:
        report.info(f"vulnerability scan: {judged.reason}")
        return judged
    top = "; ".join(f.line() for f in judged.blocking[:5])
    more = f" (and {len(judged.blocking) - 5} more)" if len(judged.blocking) > 5 else ""
    if accept_risk:
        report.warning(f"vulnerability scan of {spec.stack}'s image: {judged.reason}"
                       + (f": {top}{more}" if top else "") + f"; going ahead, as accepted: "
                       f"{accept_risk}")
        return judged
    raise InputError(f"{spec.stack} is protected and its image is not clean: {judged.reason}"
                     + (f": {top}{more}" if top else ""),
                     hint="rebuild on a fixed base image (or update the packages named), or "
                     "pass --accept-risk \"REASON\" to go ahead (kept in the release history); "
                     "nothing serves the image yet")


def noted(judged: Judgement | None, accept_risk: str | None) -> dict[str, str]:
    """What the release record keeps of the gate."""
    if judged is None:
        return {}
    out = {"scan": judged.record}
    if accept_risk and not judged.clean:
        out["accepted_risk"] = accept_risk
    return out
