"""Event windows (issue #14): warm before a class, back to the base after, scheduled in Google
Cloud. The clock is injected (`stx_pulumi.events.clock`), never slept on.

- the serving decision at fixed clocks, across a daylight-saving change;
- the program under mocks: jobs, cron, time zone, the Admin API call, the scheduler account and
  its time-bound rights; expired windows make nothing;
- a 400-day simulation of every job the stack creates: their crons repeat every year, their
  rights do not, so scaling changes only inside the windows the user scheduled;
- each job's request replayed against a local stand-in of the Cloud Run Admin API;
- end to end through the stand-in engine: `event add --up`, a second `up`, an `up` inside the
  window, `event remove --up`, and bad windows refused with nothing written.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pulumi
import pytest
import yaml
from conftest import PulumiStandIn
from croniter import croniter
from fake_app import serve
from helpers import resources, snapshot, stx, stx_json
from test_program import PROJECT, Recorder

from stx_pulumi import events
from stx_pulumi.serving import Scaling, decide
from stx_pulumi.source import inspect_source
from stx_pulumi.spec import AppSpec, build_spec

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello-course"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PARIS = "Europe/Paris"
JOB = "gcp:cloudscheduler/job:Job"
MEMBER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
CLASS = {"start": "2026-12-01 08:00", "end": "2026-12-01 10:00", "tz": PARIS, "users": "1000"}


def window(name: str = "w1", **values: Any) -> events.Window:
    problems: list[str] = []
    labels = {k: k for k in ("name", "start", "end", "tz", "warm", "users", "min", "max",
                             "book")}
    found = events.read_window(name, {**CLASS, **values}, labels, problems)
    assert found is not None, problems
    return found


def spec_with(windows: dict[str, dict[str, str]], now: datetime = NOW, **settings: Any
              ) -> AppSpec:
    return build_spec({"gcp:project": PROJECT, "stx:events": windows, **settings},
                      app="hello-course", env="dev", source=inspect_source(EXAMPLE), now=now)


# -- the serving decision ---------------------------------------------------------------------

def test_the_window_serves_from_warm_up_to_its_end_and_the_base_otherwise() -> None:
    w = window()  # 08:00-10:00 Paris (UTC+1), warm 15 min, 1000 users at concurrency 80
    base = Scaling(0, 10)

    def at(hour: int, minute: int) -> Scaling:
        return decide(base, 80, [w], datetime(2026, 12, 1, hour, minute, tzinfo=UTC)).scaling

    assert at(6, 44) == base
    assert at(6, 45) == Scaling(13, 13, "event w1")  # 07:45 Paris
    assert at(8, 59) == Scaling(13, 13, "event w1")
    assert at(9, 0) == base  # 10:00 Paris: over
    seven = datetime(2026, 12, 1, 7, tzinfo=UTC)
    assert decide(base, 80, [window(book="intro")], seven).scaling == base
    assert decide(Scaling(0, 50), 80, [w], seven).scaling.max_instances == 50


def test_a_window_across_the_daylight_saving_change_is_timed_in_real_hours() -> None:
    # 2027-03-28 in Paris: 02:00 CET becomes 03:00 CEST
    w = window("dst", start="2027-03-28 01:30", end="2027-03-28 03:30", min="2", users="")
    assert w.duration == timedelta(hours=1)
    assert events.cron(w.warm_at) == "15 1 28 3 *" and events.cron(w.end) == "30 3 28 3 *"
    base = Scaling(0, 10)

    def at(hour: int, minute: int) -> Scaling:
        return decide(base, 80, [w], datetime(2027, 3, 28, hour, minute, tzinfo=UTC)).scaling

    assert at(0, 14) == base
    assert at(0, 15).source == "event dst"
    assert at(1, 29).min_instances == 2
    assert at(1, 30) == base
    problems: list[str] = []
    events.parse_time("2027-03-28 02:30", events.zone(PARIS, "--tz", problems), "--start",
                      problems)
    assert problems == ["--start: 2027-03-28 02:30 does not exist in Europe/Paris (a "
                        "daylight-saving change skips it)"]


def test_expired_windows_leave_the_spec_with_a_notice_and_make_nothing() -> None:
    spec = spec_with({"w1": CLASS}, now=datetime(2026, 12, 2, tzinfo=UTC))
    assert spec.windows == () and spec.expired == ("w1",)
    assert any("event w1 ended 2026-12-01 10:00" in w for w in spec.warnings)


# -- the program under mocks ------------------------------------------------------------------

def _build(spec: AppSpec) -> Any:
    from stx_pulumi.program import StreamtexApp

    app = StreamtexApp(spec.service_name, spec)
    return pulumi.Output.all(*[r.urn for r in app.scheduled], app.service.urn)


@pulumi.runtime.test
def test_each_window_gets_a_warm_and_an_end_job_calling_the_admin_api(mocks: Recorder) -> Any:
    def check(_: Any) -> None:
        jobs = {r.name: r.inputs for r in mocks.of_type(JOB)}
        assert set(jobs) == {"hello-course-dev-w1-warm", "hello-course-dev-w1-end"}
        warm, end = jobs["hello-course-dev-w1-warm"], jobs["hello-course-dev-w1-end"]
        assert (warm["schedule"], end["schedule"]) == ("45 7 1 12 *", "0 10 1 12 *")
        assert warm["timeZone"] == end["timeZone"] == PARIS
        for job, scaling in ((warm, (13, 13)), (end, (0, 10))):
            target = job["httpTarget"]
            assert target["httpMethod"] == "PATCH"
            assert target["uri"] == (
                "https://run.googleapis.com/v2/projects/course-project-1/locations/"
                "europe-west1/services/hello-course-dev?updateMask="
                "scaling.minInstanceCount,scaling.maxInstanceCount")
            assert json.loads(base64.b64decode(target["body"])) == {"scaling": {
                "minInstanceCount": scaling[0], "maxInstanceCount": scaling[1]}}
            assert target["oauthToken"]["serviceAccountEmail"] == (
                "hello-course-dev-sched@course-project-1.iam.gserviceaccount.com")
            assert job["retryConfig"]["retryCount"] == events.RETRY_COUNT
        (right,) = [r.inputs for r in mocks.of_type(MEMBER) if r.name.endswith("-update")]
        assert right["role"] == "roles/run.developer" and right["name"] == "hello-course-dev"
        assert right["member"] == ("serviceAccount:hello-course-dev-sched@course-project-1"
                                   ".iam.gserviceaccount.com")
        assert right["condition"]["expression"] == (
            'request.time >= timestamp("2026-12-01T06:40:00Z") && '
            'request.time < timestamp("2026-12-01T10:00:00Z")')
        act_as = mocks.one("gcp:serviceaccount/iAMMember:IAMMember")
        assert act_as["role"] == "roles/iam.serviceAccountUser"  # on the runtime account
        assert act_as["member"] == right["member"]

    return _build(spec_with({"w1": CLASS})).apply(check)


@pulumi.runtime.test
def test_inside_a_window_the_service_has_its_scaling_and_no_past_job_is_made(
        mocks: Recorder) -> Any:
    spec = spec_with({"w1": CLASS}, now=datetime(2026, 12, 1, 7, 30, tzinfo=UTC))

    def check(_: Any) -> None:
        service = mocks.one("gcp:cloudrunv2/service:Service")
        assert service["scaling"] == {"minInstanceCount": 13, "maxInstanceCount": 13}
        assert [r.name for r in mocks.of_type(JOB)] == ["hello-course-dev-w1-end"]

    return _build(spec).apply(check)


@pulumi.runtime.test
def test_a_stack_without_windows_has_no_scheduler(mocks: Recorder) -> Any:
    spec = spec_with({"w1": CLASS}, now=datetime(2026, 12, 2, tzinfo=UTC))  # over

    def check(_: Any) -> None:
        assert mocks.of_type(JOB) == []
        assert [r.name for r in mocks.of_type("gcp:serviceaccount/account:Account")] == [
            "hello-course-dev-run-sa"]

    return _build(spec).apply(check)


# -- 400 days of jobs -------------------------------------------------------------------------

SPAN = re.compile(r'request\.time >= timestamp\("([^"]+)"\) && request\.time < '
                  r'timestamp\("([^"]+)"\)')


def _allowed(rights: list[dict[str, Any]], when: datetime) -> bool:
    """Whether Google lets the scheduler account update the service at `when`: one of its
    conditional bindings holds then."""
    for right in rights:
        since, until = SPAN.match(right["condition"]["expression"]).groups()  # type: ignore
        if datetime.fromisoformat(since) <= when < datetime.fromisoformat(until):
            return True
    return False


@pulumi.runtime.test
def test_over_400_days_jobs_change_scaling_only_inside_the_scheduled_windows(
        mocks: Recorder) -> Any:
    windows = {"w1": CLASS,
               "w2": {"start": "2027-03-28 01:30", "end": "2027-03-28 03:30", "tz": PARIS,
                      "min": "3", "max": "20", "warm": "1h"},
               "w3": {"start": "2027-06-15 14:00", "end": "2027-06-15 16:00",
                      "tz": "America/New_York", "users": "400"}}
    spec = spec_with(windows)

    def check(_: Any) -> None:
        rights = [r.inputs for r in mocks.of_type(MEMBER) if r.name.endswith("-update")]
        spans = [(w.warm_at - events.EARLY, w.end + events.GRACE) for w in spec.windows]
        effects = []
        for job in (r.inputs for r in mocks.of_type(JOB)):
            fires = croniter(job["schedule"], NOW.astimezone(events.ZoneInfo(job["timeZone"])))
            while (when := fires.get_next(datetime).astimezone(UTC)) < NOW + timedelta(400):
                if _allowed(rights, when):
                    body = json.loads(base64.b64decode(job["httpTarget"]["body"]))
                    effects.append((when, job["name"], body["scaling"]))
                    assert any(a <= when < b for a, b in spans), (job["name"], when)
                else:  # the same job a year later: refused, nothing changes
                    assert when > min(b for _, b in spans)
        # every window warms once and ends once, at the instants the user asked for
        assert sorted((w, n) for w, n, _ in effects) == sorted(
            [(w.warm_at.astimezone(UTC), f"hello-course-dev-{w.name}-warm") for w in spec.windows]
            + [(w.end.astimezone(UTC), f"hello-course-dev-{w.name}-end") for w in spec.windows])
        # and a job fires again a year later (cron repeats), refused
        assert len([r for r in mocks.of_type(JOB)]) == 6

    return _build(spec).apply(check)


# -- replaying each job's request against a stand-in Cloud Run Admin API ----------------------

class AdminAPI:
    """Cloud Run Admin API v2 on 127.0.0.1: `services.patch` with an update mask, applied to
    one service's scaling; everything it received is kept."""

    def __init__(self) -> None:
        self.scaling = {"minInstanceCount": 0, "maxInstanceCount": 10}
        self.requests: list[tuple[str, str, dict[str, str], dict[str, Any]]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_PATCH(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.requests.append(("PATCH", self.path, dict(self.headers), body))
                mask = parse_qs(urlsplit(self.path).query)["updateMask"][0].split(",")
                for field in mask:
                    top, _, key = field.partition(".")
                    api.scaling[key] = body[top][key]
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve(self.server)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pulumi.runtime.test
def test_each_jobs_request_sets_the_intended_scaling_on_the_admin_api(mocks: Recorder) -> Any:
    spec = spec_with({"w1": CLASS})

    def check(_: Any) -> None:
        api = AdminAPI()
        jobs = sorted((r.inputs for r in mocks.of_type(JOB)), key=lambda j: j["name"],
                      reverse=True)  # warm, then end
        seen = []
        with httpx.Client() as client:
            for job in jobs:
                target = job["httpTarget"]
                uri = target["uri"].replace(events.ADMIN_API.rsplit("/", 1)[0], api.url)
                client.request(target["httpMethod"], uri, content=base64.b64decode(
                    target["body"]), headers={**target["headers"],
                                              "Authorization": "Bearer scheduler-token"})
                seen.append(dict(api.scaling))
        api.server.shutdown()
        assert seen == [{"minInstanceCount": 13, "maxInstanceCount": 13},
                        {"minInstanceCount": 0, "maxInstanceCount": 10}]
        _, path, headers, body = api.requests[0]
        assert path.startswith("/v2/projects/course-project-1/locations/europe-west1/"
                               "services/hello-course-dev?updateMask=")
        assert headers["Content-Type"] == "application/json" and set(body) == {"scaling"}

    return _build(spec).apply(check)


# -- end to end -------------------------------------------------------------------------------

@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set the clock every command reads."""
    def set_clock(when: datetime) -> None:
        monkeypatch.setattr(events, "clock", lambda: when)
    set_clock(NOW)
    return set_clock


ADD = ("event", "add", "hello-course", "--start", "2026-12-01 08:00", "--end",
       "2026-12-01 10:00", "--tz", PARIS, "--users", "1000")


def _jobs(workspace: Path) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in resources(workspace, "hello-course.dev").items()
            if r["type"] == JOB}


def test_event_add_up_schedules_the_class_and_a_second_up_changes_nothing(
        workspace: Path, pulumi_cli: PulumiStandIn, at: Any) -> None:
    result = stx(*ADD, "--up", "--yes")
    assert result.exit_code == 0, result.output
    assert "event w20261201-0800: 2026-12-01 08:00–10:00 Europe/Paris" in result.output
    assert set(_jobs(workspace)) == {"hello-course-dev-w20261201-0800-warm",
                                     "hello-course-dev-w20261201-0800-end"}
    config = yaml.safe_load((workspace / "stacks/Pulumi.hello-course.dev.yaml").read_text())
    assert config["config"]["stx:events"] == {"w20261201-0800": {
        "start": "2026-12-01 08:00", "end": "2026-12-01 10:00", "tz": PARIS, "warm": "15m",
        "users": "1000"}}
    data = stx_json("up", "hello-course", "--yes")
    assert data["changes"]["create"] == data["changes"]["update"] == 0
    ups = [c for c in pulumi_cli.calls() if "up" in c[:2]]
    assert ups and all("--refresh" in c for c in ups[1:])  # jobs may have changed the cloud
    listing = stx_json("event", "list", "hello-course")
    assert listing["scaling"]["hello-course-dev"]["source"] == "base"
    assert listing["events"]["windows"][0]["jobs"] == 2


def test_an_up_inside_the_window_deploys_its_scaling_and_one_after_drops_it(
        workspace: Path, pulumi_cli: PulumiStandIn, at: Any) -> None:
    assert stx(*ADD, "--up", "--yes").exit_code == 0
    at(datetime(2026, 12, 1, 7, 30, tzinfo=UTC))  # 08:30 in Paris
    data = stx_json("up", "hello-course", "--yes")
    service = resources(workspace, "hello-course.dev")["hello-course-dev"]["inputs"]
    assert service["scaling"] == {"minInstanceCount": 13, "maxInstanceCount": 13}
    assert data["outputs"]["scaling"] == "event w20261201-0800"
    at(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))  # over
    result = stx("up", "hello-course", "--yes")
    assert result.exit_code == 0, result.output
    assert "event w20261201-0800 ended 2026-12-01 10:00 Europe/Paris" in result.output
    assert _jobs(workspace) == {}
    service = resources(workspace, "hello-course.dev")["hello-course-dev"]["inputs"]
    assert service["scaling"] == {"minInstanceCount": 0, "maxInstanceCount": 10}
    config = yaml.safe_load((workspace / "stacks/Pulumi.hello-course.dev.yaml").read_text())
    assert "stx:events" not in config["config"] or not config["config"]["stx:events"]


def test_event_remove_up_deletes_the_jobs_and_the_scheduler(
        workspace: Path, pulumi_cli: PulumiStandIn, at: Any) -> None:
    assert stx(*ADD, "--up", "--yes").exit_code == 0
    result = stx("event", "remove", "hello-course", "w20261201-0800", "--up", "--yes")
    assert result.exit_code == 0, result.output
    names = set(resources(workspace, "hello-course.dev"))
    assert not any("sched" in n or "w2026" in n for n in names)


def test_event_add_without_up_saves_the_window_for_the_next_up(
        workspace: Path, pulumi_cli: PulumiStandIn, at: Any) -> None:
    assert stx("up", "hello-course", "--yes", "--no-verify").exit_code == 0
    result = stx(*ADD)
    assert result.exit_code == 0, result.output
    assert "`stx-pulumi up` schedules it" in result.output
    assert _jobs(workspace) == {}
    assert stx("up", "hello-course", "--yes", "--no-verify").exit_code == 0
    assert len(_jobs(workspace)) == 2


BAD_WINDOWS = [
    (("--start", "tomorrow"), "--start: 'tomorrow' is not a time"),
    (("--end", "2026-12-01 25:00"), "--end: '2026-12-01 25:00' is not a time"),
    (("--end", "2026-12-01 07:00"), "--end: 2026-12-01 07:00 is not after --start"),
    (("--start", "2026-11-01 08:00", "--end", "2026-11-01 10:00"), "--start: 2026-11-01 08:00 "
     "Europe/Paris is not in the future"),
    (("--tz", "Mars/Olympus"), "--tz: 'Mars/Olympus' is not a known time zone"),
    (("--end", "2026-12-02 09:00"), "more than 24 h: pass --long"),
    (("--users", "0"), "--users: must be 1 or more"),
    (("--users", "", "--min", "5", "--max", "2"), "--max: 2 is less than --min 5"),
    (("--users", "", "--max", "2000"), "--max: must be between 1 and 1000"),
    (("--min", "3"), "--users: give --users or --min, not both"),
    (("--users", ""), "--users: say how many students"),
    (("--warm", "soon"), "--warm: 'soon' is not a duration"),
    (("--warm", "8h"), "--warm: at most 6h"),
    (("--name", "Exam!"), "--name: 'Exam!' must be 1-31 lowercase letters"),
    (("--book", "intro"), "stx:events.w20261201-0800.book: 'intro' is not a book"),
    (("--start", "2027-03-28 02:30", "--end", "2027-03-28 04:00"), "does not exist in "
     "Europe/Paris"),
]


@pytest.mark.parametrize(("args", "named"), BAD_WINDOWS, ids=[n for _, n in BAD_WINDOWS])
def test_a_bad_window_is_refused_and_nothing_is_written(
        workspace: Path, pulumi_cli: PulumiStandIn, at: Any, args: tuple[str, ...],
        named: str) -> None:
    options = list(ADD)
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag in options:
            index = options.index(flag)
            if value:
                options[index + 1] = value
            else:
                del options[index:index + 2]
        elif value:
            options += [flag, value]
    home = Path(__import__("os").environ["STX_PULUMI_HOME"])
    before = snapshot(workspace, home)
    result = stx(*options, "--up", "--yes")
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert snapshot(workspace, home) == before


def test_an_overlapping_or_duplicate_window_is_refused(
        workspace: Path, pulumi_cli: PulumiStandIn, at: Any) -> None:
    assert stx(*ADD, "--up", "--yes").exit_code == 0
    before = snapshot(workspace)
    again = stx(*ADD)
    assert again.exit_code == 2 and "--name: the stack already has a window" in again.output
    overlap = stx(*ADD[:4], "2026-12-01 09:00", "--end", "2026-12-01 11:00", "--tz", PARIS,
                  "--users", "10")
    assert overlap.exit_code == 2, overlap.output
    assert "overlaps the window w20261201-0800" in overlap.output
    assert snapshot(workspace) == before



def test_an_end_job_that_failed_is_corrected_by_the_next_up(
        workspace: Path, pulumi_cli: PulumiStandIn, at: Any) -> None:
    """The warm job ran (the service holds 13 instances) but the end job failed: the state
    still says base, so only `up --refresh` sees that 13 instances are running and paid."""
    assert stx(*ADD, "--up", "--yes").exit_code == 0
    live = workspace / ".pulumi-state/.pulumi/.standin-services.json"
    assert json.loads(live.read_text())["hello-course-dev"] == {
        "minInstanceCount": 0, "maxInstanceCount": 10}
    live.write_text(json.dumps({"hello-course-dev": {"minInstanceCount": 13,
                                                     "maxInstanceCount": 13}}))  # warm job
    at(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))  # after the window; the end job failed
    data = stx_json("up", "hello-course", "--yes")
    assert data["changes"]["update"] >= 1
    assert json.loads(live.read_text())["hello-course-dev"] == {
        "minInstanceCount": 0, "maxInstanceCount": 10}


def google_holds(fake: Any, workspace: Path) -> None:
    """What Google would hold after the deployment: the stack's jobs and IAM members, as the
    stand-in state records them."""
    for res in resources(workspace, "hello-course.dev").values():
        inputs = res["inputs"]
        if res["type"] == JOB:
            fake.jobs[inputs["name"]] = {**inputs, "state": "ENABLED",
                                         "scheduleTime": "2026-12-01T06:45:00Z"}
        elif res["type"] == MEMBER and inputs.get("condition"):
            path = (f"/v2/projects/{inputs['project']}/locations/{inputs['location']}/"
                    f"services/{inputs['name']}")
            fake.policies.setdefault(path, {"bindings": []})["bindings"].append(
                {"role": inputs["role"], "members": [inputs["member"]],
                 "condition": inputs["condition"]})
        elif res["type"] == "gcp:serviceaccount/iAMMember:IAMMember":
            path = f"/v1/{inputs['serviceAccountId']}"
            fake.policies.setdefault(path, {"bindings": []})["bindings"].append(
                {"role": inputs["role"], "members": [inputs["member"]]})


def test_event_test_passes_when_google_holds_the_plan_and_names_what_is_missing(
        workspace: Path, pulumi_cli: PulumiStandIn, google: Any, at: Any) -> None:
    assert stx(*ADD, "--up", "--yes").exit_code == 0
    missing = stx("event", "test", "hello-course")
    assert missing.exit_code == 5
    assert "hello-course-dev-w20261201-0800-warm does not exist in Cloud Scheduler" in (
        missing.output)
    google_holds(google, workspace)
    data = stx_json("event", "test", "hello-course")
    assert data["result"] == "passed"
    assert {c["name"] for c in data["checks"]} == {
        "job warm w20261201-0800", "job end w20261201-0800", "rights w20261201-0800",
        "act as runtime"}
    google.jobs["hello-course-dev-w20261201-0800-end"]["state"] = "PAUSED"
    google.policies.clear()
    result = stx("event", "test", "hello-course")
    assert result.exit_code == 5
    assert "hello-course-dev-w20261201-0800-end is PAUSED" in result.output
    assert "may NOT update hello-course-dev during w20261201-0800" in result.output
    assert "may NOT act as hello-course-dev-run@" in result.output


def test_event_list_shows_each_jobs_last_attempt(
        workspace: Path, pulumi_cli: PulumiStandIn, google: Any, at: Any) -> None:
    assert stx(*ADD, "--up", "--yes").exit_code == 0
    google_holds(google, workspace)
    google.jobs["hello-course-dev-w20261201-0800-warm"].update(
        lastAttemptTime="2026-12-01T06:45:01Z", status={"code": 7, "message": "denied"})
    result = stx("event", "list", "hello-course")
    assert result.exit_code == 0, result.output
    assert ("job hello-course-dev-w20261201-0800-warm: last attempt 2026-12-01T06:45:01Z: "
            "FAILED (code 7: denied)") in result.output
    assert "job hello-course-dev-w20261201-0800-end: no attempt yet" in result.output


def test_doctor_checks_the_scheduler_api_and_the_deployers_permissions(
        workspace: Path, pulumi_cli: PulumiStandIn, google: Any, at: Any) -> None:
    assert stx(*ADD, "--up", "--yes").exit_code == 0
    assert "may create the event jobs" in stx("doctor", "hello-course").output
    google.denied = {"iam.serviceAccounts.actAs"}
    warned = stx("doctor", "hello-course")
    assert warned.exit_code == 0 and "not granted project-wide: iam.serviceAccounts.actAs" in (
        warned.output)
    google.denied = {"cloudscheduler.jobs.create"}
    failed = stx("doctor", "hello-course")
    assert failed.exit_code == 3
    assert "missing on course-project-1: cloudscheduler.jobs.create" in failed.output
    google.denied = set()
    google.disabled = {"cloudscheduler.googleapis.com"}
    disabled = stx("doctor", "hello-course")
    assert disabled.exit_code == 3 and "cloudscheduler.googleapis.com" in disabled.output


def test_a_books_window_covers_the_book_it_names_or_every_book() -> None:
    from stx_pulumi import jobs

    books = {"intro": {"folder": "manuals/intro"}, "advanced": {"folder": "manuals/advanced"}}
    source = inspect_source(EXAMPLE.parent / "course-books", ["manuals/intro",
                                                              "manuals/advanced"])
    spec = build_spec({"gcp:project": PROJECT, "stx:books": books, "stx:events": {
        "intro-exam": {**CLASS, "book": "intro"},
        "all": {**CLASS, "start": "2026-12-02 08:00", "end": "2026-12-02 10:00"}}},
        app="course", env="dev", source=source, now=NOW)
    names = sorted(job.name for job in jobs.planned(spec))
    assert names == ["course-advanced-dev-all-end", "course-advanced-dev-all-warm",
                     "course-intro-dev-all-end", "course-intro-dev-all-warm",
                     "course-intro-dev-intro-exam-end", "course-intro-dev-intro-exam-warm"]
    inside = build_spec({"gcp:project": PROJECT, "stx:books": books, "stx:events": {
        "intro-exam": {**CLASS, "book": "intro"}}}, app="course", env="dev", source=source,
        now=datetime(2026, 12, 1, 7, 30, tzinfo=UTC))
    by_book = {svc.book: inside.scaling(svc) for svc in inside.services}
    assert by_book["intro"].source == "event intro-exam" and by_book["advanced"].source == "base"
