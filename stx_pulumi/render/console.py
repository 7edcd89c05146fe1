"""The consoles and the one-line messages: info and warnings on stderr, errors with their
hint, JSON on stdout; text from users or the engine escaped; resource types named."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from stx_pulumi.errors import SpecError, StxError
from stx_pulumi.ops.report import REPORTER  # inside a fleet: the app's Run

TYPE_LABELS = {
    "stx:index:StreamtexApp": "StreamTeX app",
    "gcp:artifactregistry/repository:Repository": "Artifact Registry repository",
    "docker:index/image:Image": "Image",
    "gcp:serviceaccount/account:Account": "Service account",
    "gcp:secretmanager/secretIamMember:SecretIamMember": "Secret access",
    "gcp:cloudrunv2/service:Service": "Cloud Run service",
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": "Public access",
    "gcp:serviceaccount/iAMMember:IAMMember": "Service account access",
    "gcp:cloudscheduler/job:Job": "Scheduler job",
    "gcp:storage/bucket:Bucket": "Staging bucket",
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": "Build push access",
    "gcp:storage/bucketIAMMember:BucketIAMMember": "Build upload access",
    "gcp:projects/iAMMember:IAMMember": "Build log access",
    "gcp:workflows/workflow:Workflow": "Event workflow",
    "gcp:monitoring/notificationChannel:NotificationChannel": "Alert email",
    "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig": "Uptime check",
    "gcp:monitoring/alertPolicy:AlertPolicy": "Alert policy",
    "gcp:monitoring/dashboard:Dashboard": "Dashboard",
    "gcp:billing/budget:Budget": "Budget",
    "gcp:pubsub/topic:Topic": "Budget topic",
    "gcp:eventarc/trigger:Trigger": "Spend guard trigger",
    "gcp:cloudrun/domainMapping:DomainMapping": "Domain mapping",
    "pulumi:providers:cloudflare": "Cloudflare provider",
    "cloudflare:index/dnsRecord:DnsRecord": "Cloudflare DNS record",
    "gcp:projects/service:Service": "API",
    "gcp:kms/keyRing:KeyRing": "KMS key ring",
    "gcp:kms/cryptoKey:CryptoKey": "KMS key",
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember": "Key access",
    "gcp:iam/workloadIdentityPool:WorkloadIdentityPool": "Workload Identity pool",
    "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider": "GitHub OIDC provider",
}


# The spend guard's account, rights and workflow (of types the event windows use too)
GUARD_LABELS = {
    "gcp:serviceaccount/account:Account": "Service account",
    "gcp:workflows/workflow:Workflow": "Spend guard workflow",
}


# The team stack's grants and bucket (of types an app's cloud builder uses too)
TEAM_LABELS = {
    "gcp:storage/bucket:Bucket": "State bucket",
    "gcp:storage/bucketIAMMember:BucketIAMMember": "State bucket access",
    "gcp:projects/iAMMember:IAMMember": "Project role",
}


TEAM_NAMES = ("state", "stx-deployer-", "stx-previewer-", "member-")


UNKNOWN = "(known after deploy)"




def label(type_: str, name: str) -> str:
    """How a resource is named in output; the scheduler's rights on a service are no public
    access, though of the same type."""
    if "-guard" in name and type_ != "gcp:eventarc/trigger:Trigger":
        return GUARD_LABELS.get(type_, "Spend guard")
    if type_ == "gcp:cloudrunv2/serviceIamMember:ServiceIamMember" and name.endswith("-update"):
        return "Scheduler rights"
    if type_ == "gcp:projects/iAMMember:IAMMember" and name.endswith("-sched-invoke"):
        return "Scheduler rights"
    if type_ in TEAM_LABELS and name.startswith(TEAM_NAMES):
        return TEAM_LABELS[type_]
    return TYPE_LABELS.get(type_, type_)


# Control characters (escape sequences, newlines, bells) in text from users or the engine are
# shown as escapes, never sent to the terminal.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL.update({0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r"})


OUTPUT_ORDER = ("url", "custom_url", "service", "image", "image_tag", "region", "project",
                "min_instances", "max_instances", "serve_mode", "port", "public", "protected",
                "revision", "ready_revision", "traffic", "dns_records", "dashboard_url",
                "alerts", "budget_usd")


def _console(**kwargs: Any) -> Console:
    console = Console(highlight=False, soft_wrap=True, **kwargs)
    if not console.is_terminal:
        console.width = 160  # logs and pipes: don't cut resource names at 80 columns
    return console


def stdout() -> Console:
    return _console()


def stderr() -> Console:
    return _console(stderr=True)


def ordered_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    """Stack outputs in a fixed, readable order."""
    known = {k: outputs[k] for k in OUTPUT_ORDER if k in outputs}
    return {**known, **{k: outputs[k] for k in sorted(outputs) if k not in known}}


def safe(text: Any) -> str:
    """Text from users or the engine as plain text: rich markup and control characters
    escaped."""
    return escape(str(text).translate(_CONTROL))


def print_json(data: Any) -> None:
    """Exactly one JSON object on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def error(err: StxError) -> None:
    """A red one-liner per problem, then the hint."""
    console = stderr()
    problems = err.problems if isinstance(err, SpecError) else [err.message]
    for problem in problems:
        console.print(f"[bold red]error:[/] {safe(_cut(problem))}")
    if err.hint:
        console.print(f"[dim]hint:[/] {safe(_cut(err.hint))}")


MESSAGE_MAX = 2000  # a message quoting a 10 MB value is never printed back whole


def _cut(text: str) -> str:
    return text if len(text) <= MESSAGE_MAX else text[:MESSAGE_MAX - 1] + "…"


PAST = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted",
        "same": "unchanged", "refresh": "refreshed", "read": "read",
        "create-replacement": "created (replacement)", "delete-replaced": "deleted (replaced)"}


STACK_TYPE = "pulumi:pulumi:Stack"


def info(message: str) -> None:
    """A progress or context line on stderr (inside a fleet: the app's current step)."""
    if (reporter := REPORTER.get()) is not None:
        reporter.note(message)
        return
    stderr().print(f"[dim]{safe(message)}[/]")


def warning(message: str) -> None:
    if (reporter := REPORTER.get()) is not None:
        reporter.note(f"warning: {message}")
        return
    stderr().print(f"[yellow]warning:[/] {safe(message)}")
