"""What watches a class while it runs: per app, alert policies that mean something for a
Streamlit app, an uptime check and a dashboard; and a spend guard (a Cloud Billing budget).
Pure: the settings as read, and the filters and dashboard the program creates.

The conditions (Cloud Run's metrics: cloud.google.com/monitoring/api/metrics_gcp, `run`):
- the uptime check on `/_stcore/health` (and `/` in dual mode) fails
  (`monitoring.googleapis.com/uptime_check/check_passed`, the alert Google's uptime-check
  policy example uses: ALIGN_NEXT_OLDER, REDUCE_COUNT_FALSE, more than 1 region failing);
- the share of 5xx answers over 5 minutes passes a threshold (`run.googleapis.com/
  request_count` by `response_code_class`, a ratio condition: numerator and denominator
  filters);
- students turned away: any answer 429 (`response_code="429"`: no instance was free);
- a revision that does not become ready: there is no metric for it, so a log-based condition
  on Cloud Run's audit log of the failed operation (the end entry of a long-running operation
  carries its error status: cloud.google.com/run/docs/audit-logging).
Never on `request_latencies`: a Streamlit session is one websocket request that lasts the
whole session, so its p95 measures session length, not slowness.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
BILLING_ACCOUNT_RE = re.compile(r"[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}")
BUDGET_THRESHOLDS = (0.5, 0.9, 1.0)
PLACEHOLDER_ACCOUNT = "000000-000000-000000"  # plan offline, as for the project
REQUEST_COUNT = "run.googleapis.com/request_count"
UPTIME_PASSED = "monitoring.googleapis.com/uptime_check/check_passed"
INSTANCES = "run.googleapis.com/container/instance_count"
BILLABLE = "run.googleapis.com/container/billable_instance_time"
HEALTH_PATH = "/_stcore/health"
ALERT_KINDS = ("uptime", "5xx", "429", "revision")  # one policy each, per service


@dataclass(frozen=True)
class Watch:
    """Alerts (on by default in protected envs) and the budget, as set."""

    alerts: bool = False
    emails: tuple[str, ...] = ()
    error_ratio: float = 0.05
    budget_usd: float | None = None
    billing_account: str | None = None

    @property
    def placeholder_account(self) -> bool:
        return self.billing_account == PLACEHOLDER_ACCOUNT


def emails_problems(text: str, where: str) -> tuple[tuple[str, ...], list[str]]:
    """`a@x.org,b@y.org` (the option repeated, as stored) → the addresses, and problems."""
    found = tuple(dict.fromkeys(e.strip() for e in text.split(",") if e.strip()))
    bad = [e for e in found if len(e) > 254 or not EMAIL_RE.fullmatch(e)]
    return found, [f"{where}: {e!r} is not an email address" for e in bad]


def service_filter(service: str, extra: str = "") -> str:
    """Cloud Run request counts of one service (validated name: lowercase, digits, '-')."""
    return (f'metric.type="{REQUEST_COUNT}" AND resource.type="cloud_run_revision" AND '
            f'resource.label.service_name="{service}"' + (f" AND {extra}" if extra else ""))


def uptime_filter(check_id: str) -> str:
    return (f'metric.type="{UPTIME_PASSED}" AND resource.type="uptime_url" AND '
            f'metric.label.check_id="{check_id}"')


def revision_log_filter(service: str) -> str:
    """Cloud Run's audit entries of a failed operation on the service (a revision that does
    not become ready ends its operation in error)."""
    return ('protoPayload.serviceName="run.googleapis.com" AND '
            f'protoPayload.resourceName:"services/{service}" AND severity>=ERROR')


def dashboard_json(title: str, services: Sequence[str], max_instances: int) -> str:
    """A Cloud Monitoring dashboard (mosaic layout) of the app's services: requests by class,
    5xx, 429s, active instances against the max in force, billable instance time."""
    names = ", ".join(f'"{s}"' for s in services)
    which = f'resource.type="cloud_run_revision" AND resource.label.service_name=one_of({names})'

    def chart(name: str, metric: str, extra: str = "", by: str = "", aligner: str = "ALIGN_RATE",
              threshold: int | None = None) -> dict[str, object]:
        aggregation: dict[str, object] = {"alignmentPeriod": "60s", "perSeriesAligner": aligner,
                                          "crossSeriesReducer": "REDUCE_SUM"}
        if by:
            aggregation["groupByFields"] = [by]
        query = f'metric.type="{metric}" AND {which}' + (f" AND {extra}" if extra else "")
        widget: dict[str, object] = {"dataSets": [{"timeSeriesQuery": {"timeSeriesFilter": {
            "filter": query, "aggregation": aggregation}}, "plotType": "LINE"}]}
        if threshold is not None:
            widget["thresholds"] = [{"value": threshold, "label": "max instances",
                                     "color": "RED", "direction": "ABOVE"}]
        return {"title": name, "xyChart": widget}

    widgets = [
        chart("Requests by response class", REQUEST_COUNT, by="metric.label.response_code_class"),
        chart("5xx answers", REQUEST_COUNT, 'metric.label.response_code_class="5xx"'),
        chart("Students turned away (429)", REQUEST_COUNT, 'metric.label.response_code="429"'),
        chart("Active instances (the line: max)", INSTANCES, 'metric.label.state="active"',
              aligner="ALIGN_MAX", threshold=max_instances),
        chart("Billable instance time (s/s)", BILLABLE),
    ]
    tiles = [{"xPos": (i % 2) * 24, "yPos": (i // 2) * 16, "width": 24, "height": 16,
              "widget": w} for i, w in enumerate(widgets)]
    return json.dumps({"displayName": title, "mosaicLayout": {"columns": 48, "tiles": tiles}},
                      sort_keys=True)


def dashboard_url(dashboard_id: str, project: str) -> str:
    """The console page of a dashboard (`projects/N/dashboards/ID`)."""
    return (f"https://console.cloud.google.com/monitoring/dashboards/builder/"
            f"{dashboard_id.rsplit('/', 1)[-1]}?project={project}")


# -- the spend guard's automatic step ---------------------------------------------------------
# Budget notifications reach a Pub/Sub topic several times a day whatever the thresholds, with
# `costAmount` and `budgetAmount` (cloud.google.com/billing/docs/how-to/budgets-programmatic-
# notifications, "notification format"); they lag the spend (actual spend "typically takes up
# to 24 hours": the Budget API overview), so a budget is never a cap. Spend-cap budgets pause
# new usage of an eligible service (a stopped class, not a scaled-down one) and are "available
# for limited services" (same page): not used. An Eventarc trigger on the topic starts this
# workflow, which PATCHes each service back to its base scaling once the cost reached the
# budget — no code of ours running.
EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
RECEIVER_ROLE = "roles/eventarc.eventReceiver"


def guard_source(project: str, region: str, services: Sequence[tuple[str, int, int]]) -> str:
    """The guard workflow: decode the budget notification; under the budget, stop; else
    PATCH every service (name, base min, base max) back to its base scaling."""
    import yaml

    from stx_pulumi.model.events import ADMIN_API, UPDATE_MASK

    url = f"{ADMIN_API}/projects/{project}/locations/{region}/services/"
    steps: list[dict[str, object]] = [
        {"decode": {"assign": [
            {"notice": "${json.decode(base64.decode(event.data.message.data))}"}]}},
        {"check": {"switch": [{"condition": "${notice.costAmount < notice.budgetAmount}",
                               "steps": [{"under": {"return": "under the budget"}}]}]}},
        {"over": {"call": "sys.log", "args": {
            "text": "${\"budget reached: \" + notice.budgetDisplayName + \", back to base "
                    "scaling\"}", "severity": "WARNING"}}}]
    for i, (service, low, high) in enumerate(services):
        steps.append({f"base{i}": {"call": "http.patch", "args": {
            "url": url + service, "query": {"updateMask": UPDATE_MASK},
            "auth": {"type": "OAuth2"},
            "body": {"scaling": {"minInstanceCount": low, "maxInstanceCount": high}}}}})
    steps.append({"done": {"return": "back to base scaling"}})
    header = ("# stx-pulumi: the spend guard of one app. Each budget notification starts it "
              "(Eventarc); once\n# the month's cost reached the budget it sets every service "
              "back to its base scaling.\n")
    return header + yaml.safe_dump({"main": {"params": ["event"], "steps": steps}},
                                   sort_keys=False, width=100)
