"""Event windows (issue #14): warm before a class, back to the base after, scheduled in Google
Cloud. The clock is injected (`stx_pulumi.model.events.clock`), never slept on.

- the serving decision at fixed clocks, across a daylight-saving change;
- the program under mocks: jobs, cron, time zone, each job's call to Workflow Executions and
  the workflow's call to the Cloud Run Admin API, both checked against Google's discovery
  documents; the scheduler account's unconditional rights; expired windows make nothing;
- a 400-day simulation of every job the stack creates, each run through the workflow
  (`fake_workflows`): their crons repeat every year, the workflow acts only inside the window
  it is given, so scaling changes only inside the windows the user scheduled;
- each job's run replayed against a local stand-in of the Cloud Run Admin API;
- end to end through the stand-in engine: `event add --up`, a second `up`, an `up` inside the
  window, `event remove --up`, and bad windows refused with nothing written.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import discovery
import fake_workflows
import httpx
import pulumi
import pytest
import yaml
from conftest import PulumiStandIn
from croniter import croniter
from fake_app import serve
from helpers import resources, snapshot, stx, stx_json
from test_program import PROJECT, Recorder

from stx_pulumi.model import events
from stx_pulumi.model.build import build_spec
from stx_pulumi.model.serving import Scaling, decide
from stx_pulumi.model.spec import AppSpec
from stx_pulumi.source import inspect_source

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

SCHED = "serviceAccount:hello-course-dev-sched@course-project-1.iam.gserviceaccount.com"
FLOW = "gcp:workflows/workflow:Workflow"


def _build(spec: AppSpec) -> Any:
    from stx_pulumi.program import StreamtexApp

    app = StreamtexApp(spec.service_name, spec)
    return pulumi.Output.all(*[r.urn for r in app.scheduled], app.service.urn)


def _job_request(job: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What a Scheduler job sends, checked against Google's contract (Workflow Executions'
    `executions.create`), and the workflow argument it carries."""
    target = job["httpTarget"]
    body = base64.b64decode(target["body"])
    method = discovery.check_url(target["uri"], target["httpMethod"], body,
                                 target["headers"]["Content-Type"])
    return method, json.loads(json.loads(body)["argument"])


def _patch(call: dict[str, Any]) -> str:
    """A workflow's http.patch, checked against Google's contract (Cloud Run Admin API v2)."""
    url = f"{call['url']}?{urlencode(call['query'])}"
    return discovery.check_url(url, "PATCH", json.dumps(call["body"]).encode())


@pulumi.runtime.test
def test_each_window_gets_a_warm_and_an_end_job_starting_the_apps_workflow(
        mocks: Recorder) -> Any:
    def check(_: Any) -> None:
        jobs = {r.name: r.inputs for r in mocks.of_type(JOB)}
        assert set(jobs) == {"hello-course-dev-w1-warm", "hello-course-dev-w1-end"}
        warm, end = jobs["hello-course-dev-w1-warm"], jobs["hello-course-dev-w1-end"]
        assert (warm["schedule"], end["schedule"]) == ("45 7 1 12 *", "0 10 1 12 *")
        assert warm["timeZone"] == end["timeZone"] == PARIS
        span = {"since": int(datetime(2026, 12, 1, 6, 40, tzinfo=UTC).timestamp()),
                "until": int(datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp())}
        for job, scaling in ((warm, (13, 13)), (end, (0, 10))):
            method, argument = _job_request(job)
            assert method == "workflowexecutions.projects.locations.workflows.executions.create"
            assert job["httpTarget"]["uri"] == (
                "https://workflowexecutions.googleapis.com/v1/projects/course-project-1/"
                "locations/europe-west1/workflows/hello-course-dev-events/executions")
            assert argument == {"window": "w1", "service": "hello-course-dev",
                                "min": scaling[0], "max": scaling[1], **span}
            assert job["httpTarget"]["oauthToken"]["serviceAccountEmail"] == SCHED.split(":")[1]
            assert job["retryConfig"]["retryCount"] == events.RETRY_COUNT
        flow = mocks.one(FLOW)
        assert flow["name"] == "hello-course-dev-events" and flow["region"] == "europe-west1"
        assert flow["serviceAccount"] == SCHED.split(":")[1]
        assert flow["deletionProtection"] is False  # the provider's default would block destroy
        # every binding is unconditional: none goes through the provider's conditional IAM
        assert not any(r.inputs.get("condition") for r in mocks.resources)
        rights = {(r.typ, r.inputs["role"], r.inputs.get("name", r.inputs.get("project")))
                  for r in mocks.resources if r.inputs.get("member") == SCHED}
        assert rights == {
            (MEMBER, "roles/run.developer", "hello-course-dev"),
            ("gcp:projects/iAMMember:IAMMember", "roles/workflows.invoker", "course-project-1"),
            ("gcp:serviceaccount/iAMMember:IAMMember", "roles/iam.serviceAccountUser", None)}

    return _build(spec_with({"w1": CLASS})).apply(check)


@pulumi.runtime.test
def test_the_workflow_patches_the_service_only_inside_the_window_it_is_given(
        mocks: Recorder) -> Any:
    def check(_: Any) -> None:
        source = mocks.one(FLOW)["sourceContents"]
        warm = _job_request(next(j.inputs for j in mocks.of_type(JOB)
                                 if j.name.endswith("-warm")))[1]
        inside = fake_workflows.run(source, warm, warm["since"] + 300)
        (call,) = inside.calls
        assert _patch(call) == "run.projects.locations.services.patch"
        assert call["url"] == ("https://run.googleapis.com/v2/projects/course-project-1/"
                               "locations/europe-west1/services/hello-course-dev")
        assert call["body"] == {"scaling": {"minInstanceCount": 13, "maxInstanceCount": 13}}
        assert call["auth"] == {"type": "OAuth2"} and inside.result == "scaled"
        a_year_later = fake_workflows.run(source, warm, warm["since"] + 365 * 86400)
        assert a_year_later.calls == [] and a_year_later.result == "outside the window"
        assert a_year_later.logs == ["event w1 is not now: hello-course-dev left as it is"]
        other = fake_workflows.run(source, {**warm, "service": "other-app-dev"},
                                   warm["since"] + 300)
        assert other.calls == [] and "not a service of this app" in str(other.error)

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
        assert mocks.of_type(JOB) == [] and mocks.of_type(FLOW) == []
        assert [r.name for r in mocks.of_type("gcp:serviceaccount/account:Account")] == [
            "hello-course-dev-run-sa"]

    return _build(spec).apply(check)


# -- 400 days of jobs -------------------------------------------------------------------------

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
        source = mocks.one(FLOW)["sourceContents"]
        spans = [(w.warm_at - events.EARLY, w.end + events.GRACE) for w in spec.windows]
        effects, refused = [], 0
        for job in (r.inputs for r in mocks.of_type(JOB)):
            _, argument = _job_request(job)
            fires = croniter(job["schedule"], NOW.astimezone(events.ZoneInfo(job["timeZone"])))
            while (when := fires.get_next(datetime).astimezone(UTC)) < NOW + timedelta(400):
                run = fake_workflows.run(source, argument, when.timestamp())
                if run.calls:
                    effects.append((when, job["name"], run.calls[0]["body"]["scaling"]))
                    assert any(a <= when < b for a, b in spans), (job["name"], when)
                else:  # the same job a year later: a logged no-op
                    refused += 1
                    assert when > min(b for _, b in spans) and run.result == "outside the window"
        # every window warms once and ends once, at the instants the user asked for
        assert sorted((w, n) for w, n, _ in effects) == sorted(
            [(w.warm_at.astimezone(UTC), f"hello-course-dev-{w.name}-warm") for w in spec.windows]
            + [(w.end.astimezone(UTC), f"hello-course-dev-{w.name}-end") for w in spec.windows])
        assert len(mocks.of_type(JOB)) == 6 and refused >= 1  # w1's jobs fire again in 2027

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
def test_each_jobs_run_sets_the_intended_scaling_on_the_admin_api(mocks: Recorder) -> Any:
    spec = spec_with({"w1": CLASS})

    def check(_: Any) -> None:
        api = AdminAPI()
        source = mocks.one(FLOW)["sourceContents"]
        jobs = sorted((r.inputs for r in mocks.of_type(JOB)), key=lambda j: j["name"],
                      reverse=True)  # warm, then end
        seen = []
        with httpx.Client() as client:
            for job in jobs:
                _, argument = _job_request(job)
                fired = croniter(job["schedule"], NOW.astimezone(events.ZoneInfo(
                    job["timeZone"]))).get_next(datetime)
                (call,) = fake_workflows.run(source, argument, fired.timestamp()).calls
                client.patch(call["url"].replace(events.ADMIN_API.rsplit("/", 1)[0], api.url),
                             params=call["query"], json=call["body"],
                             headers={"Authorization": "Bearer workflow-token"})
                seen.append(dict(api.scaling))
        api.server.shutdown()
        assert seen == [{"minInstanceCount": 13, "maxInstanceCount": 13},
                        {"minInstanceCount": 0, "maxInstanceCount": 10}]
        _, path, _, body = api.requests[0]
        assert path.startswith("/v2/projects/course-project-1/locations/europe-west1/"
                               "services/hello-course-dev?updateMask=")
        assert set(body) == {"scaling"}

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
    """What Google would hold after the deployment: the stack's jobs, workflow and IAM
    members, as the stand-in state records them (each in the shape Google's GET answers)."""
    for res in resources(workspace, "hello-course.dev").values():
        inputs = res["inputs"]
        if res["type"] == JOB:
            fake.jobs[inputs["name"]] = {**inputs, "state": "ENABLED",
                                         "scheduleTime": "2026-12-01T06:45:00Z"}
        elif res["type"] == FLOW:
            fake.workflows[inputs["name"]] = {
                "name": f"projects/{inputs['project']}/locations/{inputs['region']}/"
                        f"workflows/{inputs['name']}", "state": "ACTIVE",
                "revisionId": "000001-a1b",
                "serviceAccount": f"projects/{inputs['project']}/serviceAccounts/"
                                  f"{inputs['serviceAccount']}"}
        elif res["type"] in (MEMBER, "gcp:serviceaccount/iAMMember:IAMMember",
                             "gcp:projects/iAMMember:IAMMember"):
            resource = (f"projects/{inputs['project']}/locations/{inputs['location']}/"
                        f"services/{inputs['name']}" if res["type"] == MEMBER else
                        inputs.get("serviceAccountId") or f"projects/{inputs['project']}")
            fake.policies.setdefault(resource, {"bindings": []})["bindings"].append(
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
    assert data["result"] == "passed", data
    assert {c["name"] for c in data["checks"]} == {
        "job warm w20261201-0800", "job end w20261201-0800", "workflow",
        "rights hello-course-dev", "start workflow", "act as runtime"}
    google.jobs["hello-course-dev-w20261201-0800-end"]["state"] = "PAUSED"
    google.jobs["hello-course-dev-w20261201-0800-warm"]["httpTarget"]["uri"] = (
        "https://run.googleapis.com/v2/projects/course-project-1/locations/europe-west1/"
        "services/hello-course-dev")  # an earlier release's direct PATCH
    google.policies.clear()
    result = stx("event", "test", "hello-course")
    assert result.exit_code == 5
    assert "hello-course-dev-w20261201-0800-end is PAUSED" in result.output
    assert "does not start hello-course-dev-events" in result.output
    assert "may NOT update hello-course-dev" in result.output
    assert "may NOT start hello-course-dev-events" in result.output
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
    from stx_pulumi.model import jobs

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


@pulumi.runtime.test
def test_the_program_grants_on_the_project_only_what_team_setup_lets_the_deployer_grant(
        mocks: Recorder) -> Any:
    from stx_pulumi.model.team import PROJECT_GRANTS_ONLY, PROJECT_ROLES_GRANTED

    spec = spec_with({"w1": CLASS}, **{"stx:builder": "cloud", "stx:budget": "1000",  # all
                                        "stx:billingAccount": "012345-6789AB-CDEF01"})

    def check(_: Any) -> None:
        roles = {r.inputs["role"] for r in mocks.of_type("gcp:projects/iAMMember:IAMMember")}
        assert roles == set(PROJECT_ROLES_GRANTED)
        assert all(f"'{role}'" in PROJECT_GRANTS_ONLY for role in roles)

    return _build(spec).apply(check)


def test_a_window_the_regions_quota_cannot_hold_is_refused_and_overlaps_across_apps_warn(
        workspace: Path, pulumi_cli: PulumiStandIn, google: Any, at: Any) -> None:
    """Cloud Run refuses a maximum above what the region's quota gives one service (at warm
    time, a year of planning too late): `event add` refuses it, naming the limit; windows of
    the project's other apps that overlap it add up to a warning."""
    assert stx("up", "hello-course", "--yes", "--no-verify").exit_code == 0
    google.quota = (20_000, 2000 * 2**30)  # 20 vCPU in the region
    before = snapshot(workspace)
    refused = stx(*ADD[:-1], "2000")  # ⌈2000 ÷ 80⌉ = 25 instances of 1 vCPU
    assert refused.exit_code == 2, refused.output
    assert ("hello-course-dev: asks up to 25 instances of 1 vCPU/0.5 GiB; the europe-west1 "
            "quota (20 vCPU, 2000 GiB) allows 20") in refused.output
    assert snapshot(workspace) == before
    other = workspace / "stacks" / "Pulumi.other-course.dev.yaml"
    exam = {"exam": {**CLASS, "users": "960"}}
    other.write_text(yaml.safe_dump({"config": {"stx:path": "examples/hello-course",
                                                "stx:events": exam}}))
    warned = stx(*ADD[:-1], "960")  # 12 + 12 instances at once: 24 vCPU of 20
    assert warned.exit_code == 0, warned.output
    assert ("hello-course.dev, other-course.dev together ask up to 24 vCPU and 12 GiB from "
            "2026-12-01 06:45 UTC") in warned.output
