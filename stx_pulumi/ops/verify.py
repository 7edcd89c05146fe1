"""Post-deploy verification: is the service up, serving what was just deployed?

Waits for `/_stcore/health`, then smoke-tests `/`, the static export under `/html/`, Streamlit
itself (Nginx answers the health path even when Streamlit is down), the custom domain, and that
the newest revision is ready and takes all traffic. Nothing here prints: progress goes to a
callback, results come back as a Report.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stx_pulumi.errors import pause
from stx_pulumi.model.checks import FAIL, PASS, SKIP, WARN, Check

if TYPE_CHECKING:
    import httpx

HEALTH_PATH = "/_stcore/health"
STREAMLIT_PATH = "/_stcore/host-config"  # answered by Streamlit only, proxied through `/`


@dataclass
class Report:
    """Every check of one verification run."""

    stack: str
    url: str | None
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def as_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "url": self.url,
                "result": "failed" if self.failed else "passed",
                "checks": [c.__dict__ for c in self.checks]}


@dataclass
class Verification:
    """The reports of one verification: the app's service, or each book's."""

    reports: dict[str | None, Report]

    @property
    def failed(self) -> list[Check]:
        return [c for r in self.reports.values() for c in r.failed]

    def as_json(self) -> dict[str, Any]:
        if None in self.reports:
            return self.reports[None].as_json()
        return {"result": "failed" if self.failed else "passed",
                "books": {book: r.as_json() for book, r in self.reports.items()}}


def verify_stack(stack: str, outputs: Mapping[str, Any], **options: Any) -> Verification:
    """Verify every service of the stack: the app's, or each book's in turn."""
    books = outputs.get("books") or {}
    targets: dict[str | None, Mapping[str, Any]] = {
        book: {**outputs, **values} for book, values in sorted(books.items())} or {None: outputs}
    return Verification({book: verify(stack if book is None else f"{stack} book {book}", out,
                                      serve_mode=str(outputs.get("serve_mode") or "dual"),
                                      public=out.get("public") is not False, **options)
                         for book, out in targets.items()})


def logs_command_for(verification: Verification, outputs: Mapping[str, Any]) -> str:
    """The logs command of the first service whose checks failed."""
    books = outputs.get("books") or {}
    for book, report in verification.reports.items():
        if report.failed and book is not None:
            return logs_command({**outputs, **books.get(book, {})}, report.stack.split()[0])
    stack = next(iter(verification.reports.values())).stack if verification.reports else ""
    return logs_command(outputs, stack)


def verify(
    stack: str,
    outputs: Mapping[str, Any],
    *,
    serve_mode: str,
    public: bool,
    timeout_s: float = 300,
    interval_s: float = 10,
    environ: Mapping[str, str] | None = None,
    on_progress: Callable[[str], None] = lambda _: None,
    stop: threading.Event | None = None,
) -> Report:
    """Check the deployed service described by the stack `outputs`."""
    import httpx

    url = (outputs.get("url") or "").rstrip("/") or None
    report = Report(stack=stack, url=url)
    report.checks.append(revision_check(outputs))
    if not url:
        report.checks.append(Check("service URL", FAIL, "the stack has no url output",
                                   "run `stx-pulumi up` first"))
        return report
    headers: dict[str, str] = {}
    if not public:
        token = identity_token(environ or {})
        if token is None:
            report.checks.append(Check(
                "HTTP checks", SKIP, "the service is private and no identity token could be "
                "had from `gcloud auth print-identity-token`", "log in with gcloud, or deploy "
                "with --public"))
            return report
        headers["Authorization"] = f"Bearer {token}"
    per_request = min(10.0, timeout_s)
    with httpx.Client(headers=headers, follow_redirects=False,
                      timeout=httpx.Timeout(per_request, connect=min(5.0, per_request))) as client:
        health = wait_healthy(client, url, timeout_s, interval_s, on_progress, stop)
        report.checks.append(health)
        if health.status == FAIL:
            return report
        report.checks += smoke_checks(client, url, serve_mode)
        if outputs.get("custom_url"):
            report.checks.append(domain_check(client, str(outputs["custom_url"])))
    return report


def wait_healthy(client: httpx.Client, url: str, timeout_s: float, interval_s: float,
                 on_progress: Callable[[str], None], stop: threading.Event | None = None
                 ) -> Check:
    """Poll the health path until it answers 200, or the timeout passes (or `stop` is set:
    KeyboardInterrupt)."""
    start = time.monotonic()
    attempt, last = 0, "no answer yet"
    while True:
        attempt += 1
        try:
            response = client.get(url + HEALTH_PATH)
            if response.status_code == 200:
                return Check("health", PASS, f"{HEALTH_PATH} answered 200 after {attempt} "
                             f"attempt(s), {time.monotonic() - start:.0f}s")
            last = f"HTTP {response.status_code}"
        except Exception as err:  # httpx raises many kinds; each means "not yet"
            last = type(err).__name__
        elapsed = time.monotonic() - start
        if elapsed + interval_s > timeout_s:
            return Check("health", FAIL, f"{HEALTH_PATH} did not answer 200 within "
                         f"{timeout_s:g}s (last: {last})",
                         "a large course exports its HTML before the port opens: look at the "
                         "logs, or wait longer with --wait-timeout")
        on_progress(f"waiting for {url}{HEALTH_PATH}: {last}, {elapsed:.0f}s of {timeout_s:g}s")
        pause(interval_s, stop)


def smoke_checks(client: httpx.Client, url: str, serve_mode: str) -> list[Check]:
    """`/`, `/html/` (static export) and Streamlit itself, as the serve mode has them."""
    checks = [_root_check(client, url)]
    if serve_mode in ("dual", "static-only"):
        checks.append(_static_check(client, url))
    if serve_mode == "dual":
        checks.append(_streamlit_check(client, url))
    return checks


def _root_check(client: httpx.Client, url: str) -> Check:
    try:
        response = client.get(url + "/")
    except Exception as err:
        return Check("/", FAIL, f"no answer: {type(err).__name__}")
    if response.status_code == 200 or 300 <= response.status_code < 400:
        return Check("/", PASS, f"HTTP {response.status_code}")
    return Check("/", FAIL, f"HTTP {response.status_code}")


def _static_check(client: httpx.Client, url: str) -> Check:
    try:
        response = client.get(url + "/html/", follow_redirects=True)
    except Exception as err:
        return Check("/html/", FAIL, f"no answer: {type(err).__name__}")
    served_by = response.headers.get("x-served-by")
    if response.status_code == 200 and served_by == "static":
        return Check("/html/", PASS, "HTTP 200, X-Served-By: static")
    return Check("/html/", FAIL, f"HTTP {response.status_code}, X-Served-By: "
                 f"{served_by or 'missing'}: the static export is not served by Nginx",
                 "check STX_SERVE_MODE and the image's nginx.conf")


def _streamlit_check(client: httpx.Client, url: str) -> Check:
    try:
        response = client.get(url + STREAMLIT_PATH)
        response.json()
        ok = response.status_code == 200
    except Exception:
        ok = False
    if ok:
        return Check("streamlit", PASS, f"Streamlit answered {STREAMLIT_PATH} through /")
    return Check("streamlit", FAIL, f"Streamlit did not answer {STREAMLIT_PATH} through / "
                 "(Nginx's health answer alone does not prove Streamlit is up)",
                 "look for a Streamlit start-up error in the logs")


def domain_check(client: httpx.Client, custom_url: str) -> Check:
    try:
        response = client.get(custom_url.rstrip("/") + "/")
        if response.status_code < 400:
            return Check("custom domain", PASS, f"{custom_url} answered HTTP "
                         f"{response.status_code}")
        detail = f"HTTP {response.status_code}"
    except Exception as err:
        detail = type(err).__name__
    return Check("custom domain", WARN, f"{custom_url} does not answer yet ({detail})",
                 "Google's certificate usually takes ~15 minutes, up to 24 hours; the DNS "
                 "record must be DNS-only (not proxied)")


def revision_check(outputs: Mapping[str, Any]) -> Check:
    """The newest revision is ready and takes 100 % of the traffic; under a rollback pin, the
    pinned revision takes it."""
    pinned = outputs.get("pinned_revision")
    if pinned:
        share = sum(t.get("percent") or 0 for t in outputs.get("traffic") or []
                    if t.get("revision") == pinned)
        if share >= 100:
            return Check("revision", PASS, f"{pinned} (pinned by a rollback) takes 100% of "
                         "traffic")
        return Check("revision", FAIL, f"{pinned} (pinned by a rollback) takes {share}% of "
                     "traffic", "run `stx-pulumi up` again")
    latest, ready = outputs.get("revision"), outputs.get("ready_revision")
    if not latest:
        return Check("revision", WARN, "the stack outputs name no revision (deployed by an "
                     "older stx-pulumi?)", "run `stx-pulumi up` again")
    if ready != latest:
        return Check("revision", FAIL, f"the newest revision {latest} is not ready; "
                     f"{ready or 'no revision'} is the last ready one",
                     "look at the new revision's logs for a start-up failure")
    serving = [t for t in outputs.get("traffic") or [] if (t.get("percent") or 0) > 0]

    def is_latest(entry: Mapping[str, Any]) -> bool:
        return "LATEST" in str(entry.get("type")) or entry.get("revision") == latest

    on_latest = sum(t.get("percent") or 0 for t in serving if is_latest(t))
    if on_latest >= 100:
        return Check("revision", PASS, f"{latest} is ready and takes 100% of traffic")
    others = ", ".join(f"{t.get('revision')} {t.get('percent')}%" for t in serving
                       if not is_latest(t))
    return Check("revision", FAIL, f"{latest} takes {on_latest}% of traffic; still serving: "
                 f"{others or 'unknown'}", "route all traffic to the latest revision")


def identity_token(environ: Mapping[str, str]) -> str | None:
    """An identity token from gcloud, for a private service; None when gcloud cannot give one."""
    gcloud = shutil.which("gcloud", path=environ.get("PATH"))
    if not gcloud:
        return None
    try:
        result = subprocess.run([gcloud, "auth", "print-identity-token"], capture_output=True,
                                text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    token = result.stdout.strip()
    return token if result.returncode == 0 and token else None


def logs_command(outputs: Mapping[str, Any], stack: str = "") -> str:
    """How to read the failing service's logs: `stx-pulumi logs` (no gcloud needed)."""
    app, _, env = stack.partition(".")
    target = f"{app} --env {env}" if app else str(outputs.get("service"))
    return (f"stx-pulumi logs {target} (service {outputs.get('service')}, "
            f"{outputs.get('region')})")
