"""Class day, watched and guarded (issue #27): the alerts, uptime checks, dashboard and budget
the program creates, under Pulumi's mocks. Every test is `@pulumi.runtime.test` and returns
the Output it asserts on. The filters must name Cloud Run's real metric types and the labels
its monitored resource and metrics have (cloud.google.com/monitoring/api/metrics_gcp, `run`;
the `cloud_run_revision` resource)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest
from conftest import PulumiStandIn
from fake_google import FakeGoogle
from helpers import resources, stx, stx_json
from test_program import PROJECT, Recorder, build, make_spec

# Cloud Run's monitored resource and the metrics the policies and the dashboard read, with
# their labels: a filter naming anything else would match nothing on the real cloud.
RESOURCE_LABELS = {"project_id", "service_name", "revision_name", "location",
                   "configuration_name"}
METRIC_LABELS = {"run.googleapis.com/request_count": {"response_code", "response_code_class",
                                                      "route"},
                 "run.googleapis.com/container/instance_count": {"state"},
                 "run.googleapis.com/container/billable_instance_time": set(),
                 "monitoring.googleapis.com/uptime_check/check_passed": {"check_id",
                                                                        "checker_location"}}
POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"


def assert_real_names(query: str) -> None:
    metric = re.search(r'metric\.type="([^"]+)"', query)
    assert metric and metric.group(1) in METRIC_LABELS, query
    for label in re.findall(r"resource\.labels?\.(\w+)", query):
        assert label in RESOURCE_LABELS or metric.group(1).startswith("monitoring."), query
    for label in re.findall(r"metric\.labels?\.(\w+)", query):
        assert label in METRIC_LABELS[metric.group(1)], query
    assert "request_latencies" not in query  # a Streamlit session is one long request


def made(app: Any) -> Any:
    """Every monitoring resource registered (what the checks read)."""
    return pulumi.Output.all(*[r.urn for r in app.monitored], app.service.urn)


def conditions(mocks: Recorder) -> dict[str, dict[str, Any]]:
    return {r.name: r.inputs["conditions"][0] for r in mocks.of_type(POLICY)}


@pulumi.runtime.test
def test_a_protected_env_is_watched_by_default(mocks: Recorder) -> Any:
    app = build(make_spec(env="prod", **{"stx:alertEmails": "ana@school.edu,ben@school.edu"}))

    def check(_: Any) -> None:
        found = conditions(mocks)
        assert set(found) == {f"hello-course-prod-alert-{k}" for k in (
            "uptime-health", "uptime-root", "5xx", "429", "revision")}
        ratio = found["hello-course-prod-alert-5xx"]["conditionThreshold"]
        assert 'metric.label.response_code_class="5xx"' in ratio["filter"]
        assert "response_code_class" not in ratio["denominatorFilter"]
        assert ratio["thresholdValue"] == 0.05
        assert ratio["aggregations"][0]["alignmentPeriod"] == "300s"
        turned = found["hello-course-prod-alert-429"]["conditionThreshold"]
        assert 'metric.label.response_code="429"' in turned["filter"]
        uptime = found["hello-course-prod-alert-uptime-health"]["conditionThreshold"]
        assert 'metric.label.check_id="hello-course-prod-uptime-health-check"' in (
            uptime["filter"])
        for condition in found.values():
            threshold = condition.get("conditionThreshold")
            if threshold:
                for query in (threshold["filter"], threshold.get("denominatorFilter")):
                    if query:
                        assert_real_names(query)
        log = found["hello-course-prod-alert-revision"]["conditionMatchedLog"]["filter"]
        assert 'protoPayload.resourceName:"services/hello-course-prod"' in log
        revision = next(r for r in mocks.of_type(POLICY) if r.name.endswith("-revision"))
        assert revision.inputs["alertStrategy"]["notificationRateLimit"]["period"] == "300s"
        channels = mocks.of_type("gcp:monitoring/notificationChannel:NotificationChannel")
        assert sorted(c.inputs["labels"]["email_address"] for c in channels) == [
            "ana@school.edu", "ben@school.edu"]
        for policy in mocks.of_type(POLICY):
            assert len(policy.inputs["notificationChannels"]) == 2
        checks = mocks.of_type("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig")
        assert sorted(c.inputs["httpCheck"]["path"] for c in checks) == ["/", "/_stcore/health"]
        host = checks[0].inputs["monitoredResource"]["labels"]["host"]
        assert host == "hello-course-prod-abc123-ew.a.run.app"

    return made(app).apply(check)


@pulumi.runtime.test
def test_the_dashboard_shows_what_a_class_needs_and_its_url_is_an_output(mocks: Recorder
                                                                         ) -> Any:
    app = build(make_spec(env="prod", **{"stx:maxInstances": 13}))

    def check(url: str) -> None:
        board = json.loads(mocks.one("gcp:monitoring/dashboard:Dashboard")["dashboardJson"])
        titles = [t["widget"]["title"] for t in board["mosaicLayout"]["tiles"]]
        assert titles == ["Requests by response class", "5xx answers",
                          "Students turned away (429)", "Active instances (the line: max)",
                          "Billable instance time (s/s)"]
        for tile in board["mosaicLayout"]["tiles"]:
            for data in tile["widget"]["xyChart"]["dataSets"]:
                assert_real_names(data["timeSeriesQuery"]["timeSeriesFilter"]["filter"])
        instances = board["mosaicLayout"]["tiles"][3]["widget"]["xyChart"]
        assert instances["thresholds"][0]["value"] == 13
        assert url == ("https://console.cloud.google.com/monitoring/dashboards/builder/"
                       f"hello-course-prod-dashboard-id?project={PROJECT}")

    return app.outputs["dashboard_url"].apply(check)


@pulumi.runtime.test
def test_a_dev_env_has_no_alerts_unless_asked(mocks: Recorder) -> Any:
    quiet = build(make_spec())

    def check(_: Any) -> None:
        assert not mocks.of_type(POLICY) and "dashboard_url" not in quiet.outputs

    return quiet.service.urn.apply(check)


@pulumi.runtime.test
def test_a_streamlit_only_app_has_one_uptime_check(mocks: Recorder) -> Any:
    app = build(make_spec(serve_mode="streamlit-only", **{"stx:alerts": "true"}))

    def check(_: Any) -> None:
        checks = mocks.of_type("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig")
        assert [c.inputs["httpCheck"]["path"] for c in checks] == ["/_stcore/health"]

    return made(app).apply(check)


@pulumi.runtime.test
def test_the_budget_is_the_apps_in_usd_with_three_alerts(mocks: Recorder) -> Any:
    app = build(make_spec(env="prod", **{"stx:budget": "49.5", "stx:alertEmails": "a@b.org",
                                         "stx:billingAccount": "012345-6789ab-cdef01"}))

    def check(_: Any) -> None:
        budget = mocks.one("gcp:billing/budget:Budget")
        assert budget["billingAccount"] == "012345-6789AB-CDEF01"
        assert budget["amount"]["specifiedAmount"] == {"currencyCode": "USD", "units": "49",
                                                       "nanos": 500000000}
        assert [r["thresholdPercent"] for r in budget["thresholdRules"]] == [0.5, 0.9, 1.0]
        assert budget["budgetFilter"]["labels"] == {"stx-app": "hello-course"}
        assert budget["budgetFilter"]["projects"] == ["projects/123456789012"]
        digest = hashlib.sha256(b"a@b.org").hexdigest()[:8]
        assert budget["allUpdatesRule"]["monitoringNotificationChannels"] == [
            f"projects/{PROJECT}/notificationChannels/hello-course-prod-email-{digest}"]
        assert budget["allUpdatesRule"]["disableDefaultIamRecipients"] is True

    return made(app).apply(check)


@pytest.mark.parametrize(("settings", "message"), [
    ({"stx:alertEmails": "ana@school"},
     "(--alert-email): 'ana@school' is not an email address"),
    ({"stx:alert5xxRatio": "2"}, "(--alert-5xx-ratio): must be more than 0 and at most 1"),
    ({"stx:budget": "-5"}, "(--budget): must be more than 0"),
    ({"stx:budget": "50"}, "(--budget): needs a billing account"),
    ({"stx:budget": "50", "stx:billingAccount": "nope"}, "is not a billing account id"),
])
def test_bad_watch_settings_name_their_option(settings: dict[str, str], message: str) -> None:
    from stx_pulumi.errors import SpecError

    with pytest.raises(SpecError) as refused:
        make_spec(**settings)
    assert message in str(refused.value)


# -- through the CLI -------------------------------------------------------------------------

BUDGET = ("--budget", "50", "--billing-account", "012345-6789AB-CDEF01")


def test_a_plan_over_the_budget_is_refused_with_the_numbers(workspace: Path) -> None:
    refused = stx("plan", "hello-course", *BUDGET)
    assert refused.exit_code == 2
    assert "budget $50 a month; estimate $73.69" in refused.output  # shown, then refused
    assert ("the monthly estimate $73.69 is over the budget $50.00 by $23.69" in
            refused.output)
    assert stx("plan", "hello-course", *BUDGET, "--yes").exit_code == 0
    assert stx("plan", "hello-course", "--budget", "80", "--billing-account",
               "012345-6789AB-CDEF01").exit_code == 0
    # the budget is in the plan's JSON with its estimate
    data = json.loads(stx("plan", "hello-course", "--budget", "80", "--billing-account",
                          "012345-6789AB-CDEF01", "--json").stdout)
    assert data["cost"]["budget"]["monthly_estimate"]["total_usd"] == 73.69


def test_up_and_event_add_over_the_budget_change_nothing(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    before = (workspace / "stacks" / "Pulumi.hello-course.dev.yaml").read_text()
    refused = stx("up", "hello-course", *BUDGET, "--no-verify")
    assert refused.exit_code == 2 and "over the budget $50.00 by $23.69" in refused.output
    assert not [c for c in pulumi_cli.commands() if c in ("up", "config set")]
    assert (workspace / "stacks" / "Pulumi.hello-course.dev.yaml").read_text() == before
    assert stx("up", "hello-course", "--budget", "80", "--billing-account",
               "012345-6789AB-CDEF01", "--no-verify").exit_code == 0
    # a class of 1,000 on top of the month: the window is refused, and said why
    added = stx("event", "add", "hello-course", "--start", "2027-01-10 09:00", "--end",
                "2027-01-10 17:00", "--users", "1000", "--max", "13")
    assert added.exit_code == 2 and "over the budget $80.00" in added.output
    assert "stx:events" not in (workspace / "stacks" / "Pulumi.hello-course.dev.yaml"
                                ).read_text()


def test_a_budget_on_an_account_billing_in_euros_is_refused(
        workspace: Path, pulumi_cli: PulumiStandIn, google: FakeGoogle) -> None:
    google.currency = "EUR"
    code, checks = doctor_json("hello-course", "--budget", "500", "--billing-account",
                               "012345-6789AB-CDEF01")
    assert code == 3
    assert checks["budget"]["detail"] == ("billing account 012345-6789AB-CDEF01 bills in EUR: "
                                          "stx-pulumi compares its USD estimates with USD "
                                          "budgets only")
    google.currency = "USD"
    assert doctor_json("hello-course", "--budget", "500", "--billing-account",
                       "012345-6789AB-CDEF01")[1]["budget"]["status"] == "pass"


def doctor_json(*args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    result = stx("doctor", *args, "--json")
    return result.exit_code, {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def test_a_protected_env_is_watched_and_status_shows_what_fires(
        workspace: Path, pulumi_cli: PulumiStandIn, google: FakeGoogle) -> None:
    google.disabled = {"monitoring.googleapis.com"}  # the preflight asks for it
    blocked = stx("up", "hello-course", "--env", "prod", "--yes", "--no-verify")
    assert blocked.exit_code == 3 and "monitoring.googleapis.com" in blocked.output
    google.disabled = set()
    data = stx_json("up", "hello-course", "--env", "prod", "--yes", "--no-verify",
                    "--alert-email", "ana@school.edu")
    made = {r["type"].rsplit(":", 1)[1] for r in resources(workspace, "hello-course.prod")
            .values()}
    assert {"NotificationChannel", "UptimeCheckConfig", "AlertPolicy", "Dashboard"} <= made
    assert data["outputs"]["dashboard_url"].startswith(
        "https://console.cloud.google.com/monitoring/dashboards/builder/")
    google.alerts = [{"name": "projects/p/alerts/1", "state": "OPEN", "policy": {
        "displayName": "hello-course-prod: students turned away (429: no instance free)",
        "userLabels": {"stx-app": "hello-course", "stx-env": "prod",
                       "managed-by": "streamtex"}}},
        {"name": "projects/p/alerts/2", "state": "OPEN", "policy": {
            "displayName": "someone else's", "userLabels": {"stx-app": "other"}}}]
    shown = stx("status")
    assert ("alert firing hello-course.prod: hello-course-prod: students turned away"
            in shown.output), shown.output
    assert "someone else's" not in shown.output
    rows = json.loads(stx("status", "--json").stdout)["stacks"]
    assert next(r for r in rows if r["env"] == "prod")["alerts"] == [
        "hello-course-prod: students turned away (429: no instance free)"]


def test_setup_records_the_billing_account_a_budget_then_uses(
        workspace: Path, google: FakeGoogle) -> None:
    data = stx_json("setup")
    assert {s["name"]: s for s in data["steps"]}["billing"]["detail"] == (
        "enabled (account 012345-6789AB-CDEF01)")
    plan = json.loads(stx("plan", "hello-course", "--budget", "500", "--json").stdout)
    budget = next(r for r in plan["resources"] if r["type"] == "gcp:billing/budget:Budget")
    assert budget["inputs"]["billingAccount"] == "012345-6789AB-CDEF01"


# -- the spend guard's automatic step ---------------------------------------------------------

def notification(cost: float, budget: float) -> dict[str, Any]:
    """What Eventarc hands the workflow for a budget notification on Pub/Sub (its `data` is
    the notification JSON, base64: Google's "notification format")."""
    import base64

    body = {"budgetDisplayName": "stx hello-course prod", "costAmount": cost,
            "costIntervalStart": "2026-12-01T00:00:00Z", "budgetAmount": budget,
            "budgetAmountType": "SPECIFIED_AMOUNT", "currencyCode": "USD"}
    return {"data": {"message": {"data": base64.b64encode(json.dumps(body).encode()).decode(),
                                 "messageId": "1"}, "subscription": "s"},
            "type": "google.cloud.pubsub.topic.v1.messagePublished"}


@pulumi.runtime.test
def test_the_budget_starts_a_workflow_that_sets_the_services_back_to_base(mocks: Recorder
                                                                         ) -> Any:
    import fake_workflows
    from test_events import _patch

    app = build(make_spec(env="prod", **{"stx:budget": "50", "stx:maxInstances": 4,
                                         "stx:billingAccount": "012345-6789AB-CDEF01"}))

    def check(_: Any) -> None:
        budget = mocks.one("gcp:billing/budget:Budget")
        assert budget["allUpdatesRule"]["pubsubTopic"] == "hello-course-prod-budget-topic-id"
        assert budget["allUpdatesRule"]["schemaVersion"] == "1.0"
        trigger = mocks.one("gcp:eventarc/trigger:Trigger")
        assert trigger["matchingCriterias"] == [
            {"attribute": "type", "value": "google.cloud.pubsub.topic.v1.messagePublished"}]
        assert trigger["transport"]["pubsub"]["topic"] == "hello-course-prod-budget-topic-id"
        assert trigger["destination"]["workflow"] == "hello-course-prod-guard-id"
        source = mocks.one("gcp:workflows/workflow:Workflow")["sourceContents"]
        over = fake_workflows.run(source, notification(50.02, 50.0), 0)
        (call,) = over.calls
        assert _patch(call) == "run.projects.locations.services.patch"
        assert call["url"].endswith("/locations/europe-west1/services/hello-course-prod")
        assert call["body"] == {"scaling": {"minInstanceCount": 0, "maxInstanceCount": 4}}
        assert over.result == "back to base scaling"
        under = fake_workflows.run(source, notification(12.0, 50.0), 0)
        assert under.calls == [] and under.result == "under the budget"
        roles = {r.inputs["role"] for r in mocks.of_type("gcp:projects/iAMMember:IAMMember")}
        assert roles == {"roles/workflows.invoker", "roles/eventarc.eventReceiver"}
        act_as = mocks.one("gcp:serviceaccount/iAMMember:IAMMember")
        assert act_as["role"] == "roles/iam.serviceAccountUser"
        update = [r.inputs for r in mocks.of_type(
            "gcp:cloudrunv2/serviceIamMember:ServiceIamMember") if r.name.endswith("-guard-update")]
        assert [(u["name"], u["role"]) for u in update] == [("hello-course-prod",
                                                             "roles/run.developer")]

    return made(app).apply(check)
