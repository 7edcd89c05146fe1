"""The app watched while a class runs (`stx_pulumi.model.watch` says what and why): an email
channel per address, per service an uptime check and four alert policies, one dashboard; and
the spend guard, a Cloud Billing budget on the app's labels alerting at 50/90/100 %.

Loaded only when the spec has alerts or a budget (the program imports what the spec uses).
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

import pulumi
from pulumi_gcp import monitoring

from stx_pulumi.model.spec import AppSpec
from stx_pulumi.model.watch import (
    BUDGET_THRESHOLDS,
    HEALTH_PATH,
    dashboard_json,
    dashboard_url,
    revision_log_filter,
    service_filter,
    uptime_filter,
)
from stx_pulumi.program.service import Served

DURATION_0 = "0s"
FIVE_MINUTES = "300s"


def watch(name: str, spec: AppSpec, served: list[Served], parent: pulumi.Resource
          ) -> tuple[dict[str, Any], list[pulumi.Resource]]:
    """The channels, checks, policies and dashboard (with alerts), the budget (with one);
    the outputs they add to the stack's, and the resources."""
    child = pulumi.ResourceOptions(parent=parent)
    channels = [monitoring.NotificationChannel(
        f"{name}-email-{hashlib.sha256(email.lower().encode()).hexdigest()[:8]}",
        display_name=f"StreamTeX {spec.app} ({spec.env}): {email}", type="email",
        labels={"email_address": email}, project=spec.project, user_labels=spec.labels,
        opts=child) for email in spec.watch.emails]
    outputs: dict[str, Any] = {}
    made: list[pulumi.Resource] = list(channels)
    if spec.watch.alerts:
        for one in served:
            made += _alerts(one, spec, channels, child)
        board = monitoring.Dashboard(
            f"{name}-dashboard", project=spec.project, opts=child,
            dashboard_json=dashboard_json(f"StreamTeX {spec.app} ({spec.env})",
                                          [s.spec.name for s in served],
                                          max(spec.peak(s.spec) for s in served)))
        made.append(board)
        outputs["dashboard_url"] = board.id.apply(lambda i: dashboard_url(i, spec.project))
        outputs["alerts"] = sorted(f"{s.spec.name}: {kind}" for s in served
                                   for kind in ("uptime", "5xx", "429", "revision"))
    if spec.watch.budget_usd is not None:
        guard = _guard(name, spec, served, parent, child)
        made += [*guard, _budget(name, spec, channels, guard[0], child)]
        outputs["budget_usd"] = spec.watch.budget_usd
    return outputs, made


def _alerts(one: Served, spec: AppSpec, channels: list[Any],
            child: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """One service's uptime checks and its policies: each check failing, the 5xx share, any
    429, a failed operation (a revision not ready)."""
    svc = one.spec.name
    notify = [c.name for c in channels]
    made: list[pulumi.Resource] = []
    for path in [HEALTH_PATH, "/"] if spec.serve_mode == "dual" else [HEALTH_PATH]:
        suffix = "health" if path == HEALTH_PATH else "root"
        check = _uptime_check(f"{svc}-uptime-{suffix}", f"{svc} {path}", path, one, spec,
                              child)
        made += [check, _policy(f"{svc}-alert-uptime-{suffix}",
                                f"{svc}: {path} fails its uptime check", spec, notify, child,
                                _uptime_failing(check))]
    ratio = spec.watch.error_ratio
    made.append(_policy(f"{svc}-alert-5xx", f"{svc}: more than {ratio:.0%} of answers are 5xx "
                        "over 5 minutes", spec, notify, child, _error_share(svc, ratio)))
    made.append(_policy(f"{svc}-alert-429", f"{svc}: students turned away (429: no instance "
                        "free)", spec, notify, child, _turned_away(svc)))
    made.append(monitoring.AlertPolicy(
        f"{svc}-alert-revision", display_name=f"{svc}: a revision does not become ready",
        combiner="OR", project=spec.project, notification_channels=notify,
        user_labels=spec.labels, opts=child,
        conditions=[monitoring.AlertPolicyConditionArgs(
            display_name="Cloud Run operation failed",
            condition_matched_log=monitoring.AlertPolicyConditionConditionMatchedLogArgs(
                filter=revision_log_filter(svc)))],
        # a log-based condition needs a notification rate limit (AlertPolicy's API reference)
        alert_strategy=monitoring.AlertPolicyAlertStrategyArgs(
            notification_rate_limit=monitoring.AlertPolicyAlertStrategyNotificationRateLimitArgs(
                period="300s"), auto_close="1800s")))
    return made


def _uptime_check(name: str, title: str, path: str, one: Served, spec: AppSpec,
                  child: pulumi.ResourceOptions) -> Any:
    host = one.service.uri.apply(lambda u: urlsplit(str(u)).hostname or "")
    return monitoring.UptimeCheckConfig(
        name, project=spec.project, opts=child, display_name=title, period="60s",
        timeout="10s", user_labels=spec.labels,
        http_check=monitoring.UptimeCheckConfigHttpCheckArgs(
            path=path, port=443, use_ssl=True, validate_ssl=True),
        monitored_resource=monitoring.UptimeCheckConfigMonitoredResourceArgs(
            type="uptime_url", labels={"project_id": spec.project, "host": host}))


Threshold = monitoring.AlertPolicyConditionConditionThresholdArgs
Aggregation = monitoring.AlertPolicyConditionConditionThresholdAggregationArgs


def _uptime_failing(check: Any) -> Threshold:
    """Google's uptime-check alert: checker regions failing, counted over 20 minutes."""
    return Threshold(
        filter=check.uptime_check_id.apply(uptime_filter), comparison="COMPARISON_GT",
        threshold_value=1, duration="60s", aggregations=[Aggregation(
            alignment_period="1200s", per_series_aligner="ALIGN_NEXT_OLDER",
            cross_series_reducer="REDUCE_COUNT_FALSE", group_by_fields=["resource.label.*"])])


def _error_share(svc: str, ratio: float) -> Threshold:
    """5xx answers over all answers, each summed over 5 minutes (a ratio condition)."""
    return Threshold(
        filter=service_filter(svc, 'metric.label.response_code_class="5xx"'),
        denominator_filter=service_filter(svc), comparison="COMPARISON_GT",
        threshold_value=ratio, duration=DURATION_0,
        aggregations=[Aggregation(alignment_period=FIVE_MINUTES, per_series_aligner="ALIGN_RATE",
                                  cross_series_reducer="REDUCE_SUM")],
        denominator_aggregations=[
            monitoring.AlertPolicyConditionConditionThresholdDenominatorAggregationArgs(
                alignment_period=FIVE_MINUTES, per_series_aligner="ALIGN_RATE",
                cross_series_reducer="REDUCE_SUM")])


def _turned_away(svc: str) -> Threshold:
    """Any 429 in a minute: no instance was free for a student."""
    return Threshold(
        filter=service_filter(svc, 'metric.label.response_code="429"'),
        comparison="COMPARISON_GT", threshold_value=0, duration=DURATION_0,
        aggregations=[Aggregation(alignment_period="60s", per_series_aligner="ALIGN_DELTA",
                                  cross_series_reducer="REDUCE_SUM")])


def _policy(name: str, title: str, spec: AppSpec, notify: list[Any],
            child: pulumi.ResourceOptions, threshold: Threshold) -> Any:
    return monitoring.AlertPolicy(
        name, display_name=title, combiner="OR", project=spec.project,
        notification_channels=notify, user_labels=spec.labels, opts=child,
        conditions=[monitoring.AlertPolicyConditionArgs(display_name=title,
                                                        condition_threshold=threshold)])


def _guard(name: str, spec: AppSpec, served: list[Served], parent: Any,
           child: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """The spend guard's automatic step (model.watch): a topic the budget publishes to, an
    Eventarc trigger on it starting a workflow that sets each service back to its base
    scaling, and the account both run as, with only the rights that needs: update the app's
    services, act as its runtime account, receive events and start workflows."""
    from pulumi_gcp import cloudrunv2, eventarc, projects, pubsub, serviceaccount, workflows

    from stx_pulumi.model.jobs import ACT_AS_ROLE, INVOKER_ROLE, UPDATE_ROLE
    from stx_pulumi.model.names import service_account_id
    from stx_pulumi.model.watch import EVENT_TYPE, RECEIVER_ROLE, guard_source

    topic = pubsub.Topic(f"{name}-budget-topic", name=f"{spec.service_name}-budget",
                         project=spec.project, labels=spec.labels, opts=child)
    account = serviceaccount.Account(
        f"{name}-guard-sa", account_id=service_account_id(spec.app, spec.env, "guard"),
        display_name=f"StreamTeX {spec.app} ({spec.env}) spend guard", project=spec.project,
        opts=child)
    member = pulumi.Output.concat("serviceAccount:", account.email)
    rights: list[pulumi.Resource] = [serviceaccount.IAMMember(
        f"{name}-guard-act-as", service_account_id=parent.service_account.name,
        role=ACT_AS_ROLE, member=member, opts=child)]
    rights += [projects.IAMMember(f"{name}-guard-{role.rsplit('.', 1)[-1].lower()}",
                                  project=spec.project, role=role, member=member, opts=child)
               for role in (INVOKER_ROLE, RECEIVER_ROLE)]
    rights += [cloudrunv2.ServiceIamMember(
        f"{s.spec.name}-guard-update", name=s.service.name, location=spec.region,
        project=spec.project, role=UPDATE_ROLE, member=member, opts=child) for s in served]
    flow = workflows.Workflow(
        f"{name}-guard", name=f"{spec.service_name}-guard", project=spec.project,
        region=spec.region, description=f"stx-pulumi: the spend guard of {spec.app} "
        f"({spec.env})", service_account=account.email, labels=spec.labels,
        source_contents=guard_source(spec.project, spec.region, [
            (s.spec.name, s.spec.min_instances, s.spec.max_instances) for s in served]),
        call_log_level="LOG_ERRORS_ONLY", deletion_protection=False, opts=child)
    trigger = eventarc.Trigger(
        f"{name}-guard-trigger", name=f"{spec.service_name}-guard", location=spec.region,
        project=spec.project, service_account=account.email, labels=spec.labels,
        matching_criterias=[eventarc.TriggerMatchingCriteriaArgs(attribute="type",
                                                                value=EVENT_TYPE)],
        transport=eventarc.TriggerTransportArgs(
            pubsub=eventarc.TriggerTransportPubsubArgs(topic=topic.id)),
        destination=eventarc.TriggerDestinationArgs(workflow=flow.id),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=rights))
    return [topic, account, *rights, flow, trigger]


def _budget(name: str, spec: AppSpec, channels: list[Any], topic: Any,
            child: pulumi.ResourceOptions) -> Any:
    """A budget on what the app's labelled resources cost a month, in USD (the account's
    currency is checked before `up`), its alerts to the app's channels."""
    from pulumi_gcp import billing, organizations

    # the Budget API filters projects by number: "projects/{project_number}"
    number = organizations.get_project_output(project_id=spec.project).number
    return billing.Budget(
        f"{name}-budget", billing_account=str(spec.watch.billing_account),
        display_name=f"stx {spec.app} {spec.env}"[:60], opts=child,
        budget_filter=billing.BudgetBudgetFilterArgs(
            projects=[number.apply(lambda n: f"projects/{n}")], labels={"stx-app": spec.app},
            calendar_period="MONTH"),
        amount=billing.BudgetAmountArgs(specified_amount=billing.BudgetAmountSpecifiedAmountArgs(
            currency_code="USD", units=str(int(spec.watch.budget_usd or 0)),
            nanos=round(((spec.watch.budget_usd or 0) % 1) * 1e9))),
        threshold_rules=[billing.BudgetThresholdRuleArgs(threshold_percent=t)
                         for t in BUDGET_THRESHOLDS],
        # every notification also goes to the guard's topic (its publishing right is the
        # Budget API's to grant: the caller needs pubsub.topics.setIamPolicy on it)
        all_updates_rule=billing.BudgetAllUpdatesRuleArgs(
            monitoring_notification_channels=[c.name for c in channels],
            disable_default_iam_recipients=bool(channels), pubsub_topic=topic.id,
            schema_version="1.0"))
