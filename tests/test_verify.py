"""Post-deploy verification against real HTTP servers on 127.0.0.1: the example app's own
Nginx config served by Debian's nginx, and a Python stand-in of the app for each failure."""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_app import FakeApp
from helpers import stx

from stx_pulumi.ops.verify import Report, revision_check, verify

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello-course"
READY = {"revision": "r2", "ready_revision": "r2",
         "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "revision": "",
                      "percent": 100}]}


def outputs(url: str, **extra: object) -> dict:
    return {"url": url, "service": "hello-course-dev", "region": "europe-west1",
            "project": "course-project-1", "serve_mode": "dual", "public": True, **READY,
            **extra}


def run(url: str, timeout: float = 5, **extra: object) -> Report:
    out = outputs(url, **extra)
    return verify("hello-course.dev", out, serve_mode=str(out["serve_mode"]),
                  public=bool(out["public"]), timeout_s=timeout, interval_s=0.2)


def statuses(report: Report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_healthy_app_passes_every_check() -> None:
    with FakeApp() as app:
        report = run(app.url)
    assert statuses(report) == {"revision": "pass", "health": "pass", "/": "pass",
                                "/html/": "pass", "streamlit": "pass"}
    assert not report.failed


def test_slow_start_passes_after_some_polls() -> None:
    progress: list[str] = []
    with FakeApp("slow", slow_polls=3) as app:
        report = verify("hello-course.dev", outputs(app.url), serve_mode="dual", public=True,
                        timeout_s=10, interval_s=0.1, on_progress=progress.append)
    assert not report.failed
    assert "after 4 attempt(s)" in next(c.detail for c in report.checks if c.name == "health")
    assert len(progress) == 3 and "HTTP 503" in progress[0]


def test_static_export_without_its_header_fails() -> None:
    with FakeApp("no-header") as app:
        report = run(app.url)
    assert statuses(report)["/html/"] == "fail"
    assert "X-Served-By: missing" in next(c.detail for c in report.checks if c.name == "/html/")


def test_streamlit_down_behind_a_healthy_nginx_fails() -> None:
    with FakeApp("streamlit-down") as app:
        report = run(app.url)
    assert statuses(report)["health"] == "pass"
    assert statuses(report)["streamlit"] == "fail"


def test_static_only_mode_does_not_need_streamlit() -> None:
    with FakeApp("streamlit-down") as app:
        report = run(app.url, serve_mode="static-only")
    assert "streamlit" not in statuses(report) and not report.failed


def test_503_fails_after_the_timeout() -> None:
    with FakeApp("503") as app:
        start = time.monotonic()
        report = run(app.url, timeout=1)
    assert time.monotonic() - start < 5
    health = next(c for c in report.checks if c.name == "health")
    assert health.status == "fail" and "HTTP 503" in health.detail


def test_never_answering_fails_within_a_short_timeout() -> None:
    with FakeApp("never") as app:
        start = time.monotonic()
        report = run(app.url, timeout=1)
    assert time.monotonic() - start < 15
    assert statuses(report) == {"revision": "pass", "health": "fail"}


def test_revision_not_ready_names_the_one_still_ready() -> None:
    check = revision_check({"revision": "app-00003", "ready_revision": "app-00002"})
    assert check.status == "fail"
    assert "app-00003 is not ready" in check.detail and "app-00002" in check.detail


def test_traffic_split_names_the_revision_still_serving() -> None:
    check = revision_check({"revision": "app-00003", "ready_revision": "app-00003",
                            "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST",
                                         "revision": "", "percent": 90},
                                        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
                                         "revision": "app-00001", "percent": 10}]})
    assert check.status == "fail"
    assert "90%" in check.detail and "app-00001 10%" in check.detail


def test_all_traffic_on_the_named_latest_revision_passes() -> None:
    check = revision_check({"revision": "app-00003", "ready_revision": "app-00003",
                            "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
                                         "revision": "app-00003", "percent": 100}]})
    assert check.status == "pass"


def test_custom_domain_not_answering_is_a_warning_not_a_failure() -> None:
    with FakeApp() as app, FakeApp("503") as domain:
        report = run(app.url, custom_url=domain.url)
    check = next(c for c in report.checks if c.name == "custom domain")
    assert check.status == "warn" and "24 hours" in (check.fix or "")
    assert not report.failed


def test_private_service_uses_an_identity_token(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text('#!/bin/sh\n[ "$*" = "auth print-identity-token" ] && echo id-token-42\n')
    gcloud.chmod(0o755)
    with FakeApp() as app:
        report = verify("hello-course.dev", outputs(app.url), serve_mode="dual", public=False,
                        timeout_s=5, interval_s=0.2, environ={"PATH": str(bin_dir)})
    assert not report.failed
    assert all(h.get("Authorization") == "Bearer id-token-42" for _, h in app.requests)


def test_private_service_without_gcloud_skips_the_http_checks() -> None:
    with FakeApp() as app:
        report = verify("hello-course.dev", outputs(app.url), serve_mode="dual", public=False,
                        timeout_s=5, interval_s=0.2, environ={"PATH": "/nonexistent"})
    check = next(c for c in report.checks if c.name == "HTTP checks")
    assert check.status == "skip" and "private" in check.detail
    assert app.requests == [] and not report.failed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nginx_app(tmp_path: Path) -> Iterator[tuple[str, FakeApp]]:
    """The example's own nginx.conf, run by Debian's nginx on a free port, in front of a
    stand-in Streamlit."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not nginx:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx-light)")
    port = free_port()
    static = tmp_path / "static-html"
    shutil.copytree(EXAMPLE / "static-html", static)
    with FakeApp() as streamlit:
        upstream = streamlit.url.removeprefix("http://")
        conf = (EXAMPLE / "nginx.conf").read_text()
        conf = (conf.replace("listen 80;", f"listen 127.0.0.1:{port};")
                .replace("/app/static-html/", f"{static}/")
                .replace("127.0.0.1:8501", upstream)
                .replace("/tmp/nginx", str(tmp_path / "nginx")))
        conf_file = tmp_path / "nginx.conf"
        # workers read the temp folder as its owner (ignored when not run as root)
        conf_file.write_text(f"user {getpass.getuser()};\n{conf}")
        proc = subprocess.Popen([nginx, "-c", str(conf_file), "-e", str(tmp_path / "err.log"),
                                 "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}", streamlit
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_the_example_nginx_config_passes(nginx_app: tuple[str, FakeApp]) -> None:
    url, streamlit = nginx_app
    report = run(url)
    assert statuses(report) == {"revision": "pass", "health": "pass", "/": "pass",
                                "/html/": "pass", "streamlit": "pass"}
    assert "/_stcore/host-config" in [p for p, _ in streamlit.requests]  # proxied through /


def test_the_example_nginx_config_with_streamlit_down_fails(
        nginx_app: tuple[str, FakeApp]) -> None:
    url, streamlit = nginx_app
    streamlit.mode = "503"
    report = run(url, timeout=1)
    assert report.failed


def test_verify_command_exits_5_with_the_logs_command(workspace: Path, pulumi_cli: object,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert stx("up", "hello-course", "--yes").exit_code == 0
    with FakeApp("no-header") as broken:
        monkeypatch.setenv("STANDIN_SERVICE_URL", broken.url)
        assert stx("up", "hello-course", "--max", "12", "--no-verify", "--yes").exit_code == 0
        result = stx("verify", "hello-course", "--wait-timeout", "2", "--poll-interval", "1")
        data = json.loads(stx("verify", "hello-course", "--json", "--wait-timeout", "2").stdout)
    assert result.exit_code == 5
    assert "verification of hello-course.dev failed: /html/" in result.output
    assert ("logs: stx-pulumi logs hello-course --env dev (service hello-course-dev, "
            "europe-west1)") in result.output
    assert data["result"] == "failed"
    assert {c["name"]: c["status"] for c in data["checks"]}["/html/"] == "fail"


def test_up_with_a_traffic_split_exits_5(workspace: Path, pulumi_cli: object,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_TRAFFIC_SPLIT", "1")
    result = stx("up", "hello-course", "--yes", "--json")
    assert result.exit_code == 5
    data = json.loads(result.stdout)
    assert data["result"] == "succeeded" and data["verify"]["result"] == "failed"
    assert "hello-course-dev-00001-old 50%" in result.output


def test_up_with_a_revision_not_ready_exits_5(workspace: Path, pulumi_cli: object,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_REVISION_NOT_READY", "1")
    result = stx("up", "hello-course", "--yes")
    assert result.exit_code == 5
    assert "is not ready" in result.output and "hello-course-dev-00001-old" in result.output
