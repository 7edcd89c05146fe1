"""`stx-pulumi rehearse`: simulated students on real Streamlit sessions.

Against a real `streamlit run` of a real app (the example, and a `stx project new` StreamTeX
app), whose own count of sessions and script runs the report must match; against servers
that misbehave on purpose, each failure counted as its kind and the run ending on time; the
deployed path (a stack's URL, Cloud Monitoring's instances, the cost, the stack's tag)
through the stand-in engine and the Google fake checked against Google's discovery document.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PulumiStandIn
from fake_google import FakeGoogle
from helpers import Said, on_terminal, stx
from streamlit_servers import Misbehaving, StreamlitRun

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello-course"
QUICK = ("--ramp", "1s", "--duration", "4s", "--think", "0.5s", "--timeout", "3s")


def rehearse(*args: str) -> tuple[int, dict]:
    result = stx("rehearse", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.e2e
def test_fifty_students_on_a_real_streamlit_app_match_what_the_server_served(
        tmp_path: Path) -> None:
    with StreamlitRun(EXAMPLE, tmp_path / "sessions.log") as server:
        code, report = rehearse("--url", server.url, "--users", "50", "--ramp", "3s",
                                "--duration", "10s", "--think", "1s")
        served_runs, served_sessions = server.runs, server.sessions
    assert code == 0, report
    assert report["students"] == 50 and report["served"] == 50 and report["errors"] == {}
    assert served_sessions == 50  # one real session per student, counted by the server
    assert report["runs"] == served_runs > 50  # every run the server started, finished
    for kind in ("first_render", "interaction"):
        spread = report["latency_s"][kind]
        assert 0 < spread["p50"] <= spread["p95"] <= spread["p99"] < 10
    assert report["server_streamlit"]  # the version the app said it runs
    assert report["verdict"]["ok"] and report["result"] == "passed"


@pytest.mark.streamtex
def test_a_real_streamtex_app_rehearses_with_no_error(streamtex_app: Path,
                                                      tmp_path: Path) -> None:
    with StreamlitRun(streamtex_app, tmp_path / "sessions.log") as server:
        code, report = rehearse("--url", server.url, "--users", "20", *QUICK)
        sessions = server.sessions
    assert code == 0 and report["served"] == 20 == sessions, report


@pytest.mark.parametrize(("mode", "kind"), [
    ("refuse", "websocket_refused"), ("503", "http_503"), ("close", "websocket_closed"),
    ("hang", "timeout"), ("script-error", "script_error")])
def test_each_failure_is_counted_as_its_kind_and_the_run_ends_on_time(
        mode: str, kind: str) -> None:
    with Misbehaving(mode) as server:
        started = time.monotonic()
        code, report = rehearse("--url", server.url, "--users", "4", *QUICK)
        took = time.monotonic() - started
    assert code == 5 and report["result"] == "failed"
    assert report["errors"] == {kind: 4}, report
    assert report["served"] == 0
    assert took < 4 + 3 + 6  # the duration, one timeout, and the hard stop's margin
    if kind in ("websocket_refused", "http_503"):
        assert report["turned_away"] == 4
    if kind == "script_error":
        assert report["error_messages"] == [
            {"error": "script_error: ZeroDivisionError: division by zero", "count": 4}]
    if kind == "websocket_closed":
        assert report["error_messages"][0]["error"] == "websocket_closed: code 1011"


def test_finished_early_for_a_rerun_is_not_a_finish() -> None:
    with Misbehaving("early") as server:
        code, report = rehearse("--url", server.url, "--users", "2", "--ramp", "0s",
                                "--duration", "2s", "--think", "5s")
    assert code == 0, report
    # each student's one run waited past the early finish for the real one
    assert report["runs"] == 2 and report["latency_s"]["first_render"]["p50"] >= 0.2


def test_no_pings_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A browser sends none; a library's keepalive closed whole trials with 1011."""
    import inspect

    from stx_pulumi.cloud import session

    assert "ping_interval=None" in inspect.getsource(session._connect)


@pytest.mark.parametrize(("args", "message"), [
    (("--users", "0"), "--users: must be between 1 and 5000, got 0"),
    (("--ramp", "10m", "--duration", "5m"), "--ramp: 600s must be shorter than --duration"),
    (("--think", "soon"), "--think: 'soon' is not a duration such as 90s, 5m or 1h"),
    (("--url", "ftp://127.0.0.1/"), "--url: 'ftp://127.0.0.1/' is not an http(s) URL"),
])
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = stx("rehearse", "--url", "http://127.0.0.1:9", *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_an_address_of_no_stack_needs_a_typed_confirmation(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    """Not a general load tool: with no terminal, an address that is neither loopback nor
    the stack's is refused before any student starts."""
    result = stx("rehearse", "--url", "https://example.org/")
    assert result.exit_code == 2
    assert "neither loopback nor an address of this stack" in result.output


def test_ctrl_c_stops_cleanly_with_a_partial_report(tmp_path: Path) -> None:
    with Misbehaving("ok") as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stx_pulumi", "rehearse", "--url", server.url, "--users",
             "5", "--ramp", "0s", "--duration", "60s", "--think", "0.5s", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120  # a loaded machine imports slowly
            while server.reruns < 10 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.1)
            assert server.reruns >= 10, proc.stderr.read() if proc.stderr else ""
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        finally:  # never an orphan rehearsal left running after a failure
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 1, err
    report = json.loads(out)
    assert report["interrupted"] is True and report["runs"] >= 5
    assert report["elapsed_s"] < 60  # stopped, not run to its end


def test_the_html_report_carries_the_runs_numbers(tmp_path: Path) -> None:
    """A self-contained page: no script, no network; charts as inline SVG whose peaks are the
    run's. Where Chromium is installed (.ci/run installs it), a real headless browser renders
    it and the DOM it built holds the charts."""
    page = tmp_path / "report.html"
    with Misbehaving("ok") as server:
        code, report = rehearse("--url", server.url, "--users", "6", *QUICK,
                                "--report", str(page))
    assert code == 0
    text = page.read_text()
    assert "<script" not in text and "<link" not in text  # self-contained
    assert "http://" not in text.replace(server.url, "").replace("http://www.w3.org/2000/svg",
                                                                 "")
    assert text.count("<svg") == 3  # students, interactions per second, p95 latency
    assert 'aria-label="Students connected: peak 6"' in text
    assert f"{report['runs']} script runs" in text
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("STX_REQUIRE_CHROMIUM"):
            pytest.fail("Chromium is required here (STX_REQUIRE_CHROMIUM) and missing")
        return
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    assert dom.count("<svg") == 3 and "<polyline" in dom
    assert 'aria-label="Students connected: peak 6"' in dom


def test_a_deployed_stack_is_rehearsed_with_its_instances_cost_and_history(
        workspace: Path, pulumi_cli: PulumiStandIn, google: FakeGoogle,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack's URL (the stand-in's service answers Streamlit's protocol), Cloud Run's
    instance count from Cloud Monitoring (the fake answers as Google's discovery document
    says), the cost at list price, and the summary kept where `history` shows it."""
    from datetime import UTC, datetime, timedelta

    with Misbehaving("ok") as server:
        monkeypatch.setenv("STANDIN_SERVICE_URL", server.url)
        assert stx("up", "hello-course", "--yes", "--no-verify").exit_code == 0
        start = datetime.now(UTC).replace(microsecond=0)
        google.instance_points = [((start + timedelta(seconds=s)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"), n) for s, n in ((0, 1), (60, 2))]
        code, report = rehearse("hello-course", "--users", "3", *QUICK)
    assert code == 0, report
    assert report["url"] == server.url and report["stack"] == "hello-course.dev"
    assert report["instances"]["peak"] == 2
    # 3 instance-minutes of 1 vCPU and 0.5 GiB at list price
    assert report["cost_usd"] == round(3 * 60 * (0.000024 + 0.5 * 0.0000025), 4)
    query = google.series_queries[-1]
    assert 'resource.labels.service_name="hello-course-dev"' in query["filter"]
    assert query["aggregation.perSeriesAligner"] == "ALIGN_MAX"
    assert any("ingest delay" in note for note in report["notes"])
    history = json.loads(stx("history", "hello-course", "--json").stdout)
    assert history["rehearsal"]["students"] == 3 and history["rehearsal"]["ok"] is True


def test_a_protected_env_is_rehearsed_only_with_yes(
        workspace: Path, pulumi_cli: PulumiStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    with Misbehaving("ok") as server:
        monkeypatch.setenv("STANDIN_SERVICE_URL", server.url)
        assert stx("up", "hello-course", "--env", "prod", "--yes",
                   "--no-verify").exit_code == 0
        refused = stx("rehearse", "hello-course", "--env", "prod", "--users", "2", *QUICK)
        assert refused.exit_code == 2 and server.reruns == 0
        assert "protected env: pass --yes to rehearse it" in refused.output
        warned = stx("rehearse", "hello-course", "--env", "prod", "--users", "2000", "--yes",
                     "--ramp", "0s", "--duration", "1s", "--timeout", "2s")
    # the stack's max × concurrency holds fewer: said before any student starts
    assert "2000 students is more than the service holds at once" in warned.output


def test_a_rehearsal_that_turned_students_away_is_offered_at_the_next_event_add(
        workspace: Path, pulumi_cli: PulumiStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    with Misbehaving("refuse") as server:
        monkeypatch.setenv("STANDIN_SERVICE_URL", server.url)
        assert stx("up", "hello-course", "--yes", "--no-verify", "--max", "2").exit_code == 0
        code, report = rehearse("hello-course", "--users", "3", *QUICK)
    assert code == 5 and report["turned_away"] == 3
    assert "for 3 students set `--max 3` (it was 2, 80 sessions each)" in (
        report["verdict"]["lines"])
    added = stx("event", "add", "hello-course", "--start", "2027-01-10 09:00", "--end",
                "2027-01-10 11:00", "--users", "3", "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["rehearsed_max"] == 3
    assert "suggested --max 3; this window allows 2: pass --max 3" in added.output


def test_instances_are_read_once_their_ingest_delay_has_passed(google: FakeGoogle) -> None:
    """Cloud Run's instance count is sampled every 60 s and visible only later: the delay is
    read from the metric's descriptor, waited out, and said."""
    from datetime import UTC, datetime, timedelta

    from stx_pulumi.cloud.google import connect
    from stx_pulumi.ops.rehearse import Target, instances

    google.ingest_delay = "150s"
    ended = datetime.now(UTC).replace(microsecond=0)
    google.instance_points = [(ended.strftime("%Y-%m-%dT%H:%M:%SZ"), 4)]
    waited: list[float] = []
    said = Said()

    goal = Target("https://x.run.app", service="hello-course-dev", project="course-project-1",
                  region="europe-west1")
    series, note = instances(connect(os.environ), goal, ended - timedelta(seconds=60), ended,
                             said, waited.append)
    assert len(waited) == 1 and 140 < waited[0] <= 150
    assert "visible 150s later" in said.lines[0] and "read 150s after the end" in note
    assert series == [(60.0, 4)]


def test_the_verdict_names_the_max_for_the_class() -> None:
    from stx_pulumi.model.rehearsal import Event, Rehearsal, capacity_warning, verdict

    report = Rehearsal(200, elapsed_s=60)
    for n in range(150):
        report.add(Event(n, 1.0, "connected"))
        report.add(Event(n, 2.0, "run", 0.5, first=True))
    for n in range(150, 200):
        report.add(Event(n, 1.0, "websocket_refused", detail="HTTP 429"))
    judged = verdict(report, 3.0, max_instances=2, concurrency=80)
    assert not judged.ok and judged.suggested_max == 3
    assert judged.lines[0] == "50 of 200 students were turned away"
    slow = Rehearsal(10, elapsed_s=60)
    for n in range(10):
        slow.add(Event(n, 1.0, "connected"))
        slow.add(Event(n, 2.0, "run", 5.0, first=True))
    judged = verdict(slow, 3.0, max_instances=2, concurrency=80)
    assert "p95 latency 5.00s is over 3s" in judged.lines
    assert "for 10 students set `--concurrency 40 --max 2`" in judged.lines
    assert capacity_warning(200, 2, 80) is not None and capacity_warning(160, 2, 80) is None


def test_the_target_is_the_stacks_book_and_its_own_address() -> None:
    from stx_pulumi.errors import InputError
    from stx_pulumi.ops.rehearse import target

    books = {"project": "p", "region": "europe-west1", "protected": True, "books": {
        "intro": {"url": "https://course-intro-dev-x.a.run.app", "service": "course-intro-dev",
                  "custom_url": "https://intro.school.edu", "max_instances": 5},
        "advanced": {"url": "https://course-advanced-dev-x.a.run.app",
                     "service": "course-advanced-dev"}}}
    with pytest.raises(InputError, match=r"--book: course\.dev serves advanced, intro: name one"):
        target("course.dev", {}, books, None, None)
    with pytest.raises(InputError, match=r"--book: course\.dev has no book 'exam'"):
        target("course.dev", {}, books, "exam", None)
    intro = target("course.dev", {}, books, "intro", None)
    assert intro.url == "https://intro.school.edu" and intro.service == "course-intro-dev"
    assert intro.protected and intro.known
    assert target("course.dev", {}, books, "intro", "https://course-intro-dev-x.a.run.app/"
                  ).known
    assert not target("course.dev", {}, books, "intro", "https://elsewhere.example/").known
    assert target("course.dev", {}, books, "intro", "http://127.0.0.1:8501").known


def test_on_a_terminal_the_progress_is_redrawn_in_place(tmp_path: Path) -> None:
    """On a real terminal (a pty) the live line (students connected, runs/s, p95, errors)
    is redrawn while the students run, and the report follows."""
    with Misbehaving("ok") as server:
        code, text = on_terminal(["rehearse", "--url", server.url, "--users", "3", "--ramp",
                                  "0s", "--duration", "3s", "--think", "0.5s"],
                                 env={"TERM": "xterm"})
    assert code == 0, text
    assert "students 3/3 connected" in text and "p95" in text and "errors 0" in text
    assert text.count("\r") + text.count("\x1b[") > 2  # redrawn in place, not printed anew
    assert "verdict: ready" in text


def test_an_address_is_the_stack_that_answers_on_its_host() -> None:
    from stx_pulumi.errors import StxError
    from stx_pulumi.ops.rehearse import whose

    class Outputs:
        def outputs(self, stack: str) -> dict:
            if stack == "draft.dev":
                raise StxError("never deployed")
            return {"course.prod": {"url": "https://course-prod-x.a.run.app",
                                    "custom_url": "https://course.school.edu"},
                    "books.dev": {"books": {"intro": {"url": "https://books-intro-dev-x.a.run.app"}}}
                    }[stack]

    stacks = ["draft.dev", "course.prod", "books.dev"]
    assert whose("https://course.school.edu/", Outputs(), stacks) == "course.prod"
    assert whose("https://books-intro-dev-x.a.run.app", Outputs(), stacks) == "books.dev"
    assert whose("https://elsewhere.example", Outputs(), stacks) is None
