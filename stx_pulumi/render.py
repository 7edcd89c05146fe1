"""All printing: plans, results, warnings and errors, for people (rich) or for CI (--json).

Output goes to stdout; errors and progress to stderr. Secrets print as "[secret]".
"""

from __future__ import annotations

import json
import sys
import time
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from stx_pulumi.errors import SpecError, StxError

if TYPE_CHECKING:
    from stx_pulumi.engine.plan import Plan, PlannedResource

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
# The team stack's grants and bucket (of types an app's cloud builder uses too)
TEAM_LABELS = {
    "gcp:storage/bucket:Bucket": "State bucket",
    "gcp:storage/bucketIAMMember:BucketIAMMember": "State bucket access",
    "gcp:projects/iAMMember:IAMMember": "Project role",
}
TEAM_NAMES = ("state", "stx-deployer-", "stx-previewer-", "member-")
UNKNOWN = "(known after deploy)"
# Inside a fleet, the app's run whose operation this thread does: its messages and progress go
# there (one line per app) instead of to the terminal.
REPORTER: ContextVar[Any] = ContextVar("stx_pulumi_reporter", default=None)


def label(type_: str, name: str) -> str:
    """How a resource is named in output; the scheduler's rights on a service are no public
    access, though of the same type."""
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
                "revision", "ready_revision", "traffic", "dns_records")


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


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as data: every resource below the stack, outputs, warnings."""
    spec = plan.spec
    return {
        "stack": spec.stack,
        "app": spec.app,
        "env": spec.env,
        "project": spec.project,
        "region": spec.region,
        "image_tag": spec.image_tag,
        "resources": [
            {"type": r.type, "name": r.name, "parent": r.parent, "inputs": r.inputs}
            for r in plan.resources
        ],
        "outputs": ordered_outputs(plan.outputs),
        "warnings": plan.warnings,
    }


def plan_tree(plan: Plan) -> None:
    """The desired state as a tree, then the warnings, then what the plan did not touch."""
    spec = plan.spec
    console = stdout()
    project = spec.project + (" (placeholder)" if spec.project_is_placeholder else "")
    tree = Tree(f"[bold]{spec.stack}[/]  project {safe(project)}, region {spec.region}")
    for resource in plan.resources:
        if resource.custom:
            _resource_node(tree, resource)
    console.print(tree)
    outputs = {k: v for k, v in ordered_outputs(plan.outputs).items()
               if k not in ("dns_records", "books")}
    console.print("[bold]Outputs[/]  " + ", ".join(
        f"{k}={UNKNOWN if v is None else v}" for k, v in outputs.items()))
    for book, values in sorted((plan.outputs.get("books") or {}).items()):
        console.print(f"  book {safe(book)}: service {safe(values.get('service'))}, FOLDER "
                      f"{safe(values.get('folder'))}, instances {values.get('min_instances')}"
                      f"–{values.get('max_instances')}")
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {safe(warning)}")
    console.print("[dim]Offline plan: nothing in the cloud was read or changed. "
                  "`stx-pulumi up` deploys it.[/]")


def _resource_node(tree: Tree, r: PlannedResource) -> None:
    node = tree.add(f"[cyan]{label(r.type, r.name)}[/] {safe(r.name)}")
    for line in _details(r):
        node.add(safe(line))


def _details(r: PlannedResource) -> list[str]:
    i = r.inputs
    if r.type == "gcp:artifactregistry/repository:Repository":
        keep = [p for p in i.get("cleanupPolicies") or [] if p.get("mostRecentVersions")]
        count = keep[0]["mostRecentVersions"].get("keepCount") if keep else None
        tagged = [t for p in i.get("cleanupPolicies") or [] if p.get("action") == "KEEP"
                  for t in (p.get("condition") or {}).get("tagPrefixes") or []]
        kept = f" and every image tagged {', '.join(t + '*' for t in tagged)}" if tagged else ""
        return [f"{i.get('repositoryId')} in {i.get('location')}, Docker format",
                f"cleanup: keeps the {count} newest images{kept}, deletes older ones"]
    if r.type == "docker:index/image:Image":
        build = i.get("build") or {}
        return [f"{i.get('imageName') or UNKNOWN}",
                f"built for {build.get('platform')} from {_near(build.get('context'))}, pushed"]
    if r.type == "gcp:serviceaccount/account:Account":
        if r.name.endswith("-build-sa"):
            return [f"{i.get('accountId')}: cloud build identity, pushes to this repository "
                    "and writes logs only"]
        role = "event scheduler" if str(i.get("accountId")).endswith("-sched") else "runtime"
        return [f"{i.get('accountId')}: {role} identity, no project-level roles"]
    if r.type == "gcp:storage/bucket:Bucket":
        age = ((i.get("lifecycleRules") or [{}])[0].get("condition") or {}).get("age")
        return [f"gs://{i.get('name')} in {i.get('location')}: build uploads, deleted after "
                f"{age} days"]
    if r.type == "gcp:projects/iAMMember:IAMMember" and r.name.endswith("-sched-invoke"):
        return [f"{i.get('member')} → {i.get('role')} on the project (Workflows has no "
                "narrower scope)"]
    if r.type in ("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
                  "gcp:storage/bucketIAMMember:BucketIAMMember",
                  "gcp:projects/iAMMember:IAMMember"):
        return [f"build account → {i.get('role')}"]
    if r.type == "gcp:workflows/workflow:Workflow":
        return [f"{i.get('name')} in {i.get('region')}, as {i.get('serviceAccount') or UNKNOWN}: "
                "scales a service only inside the window a job gives it"]
    if r.type == "gcp:serviceaccount/iAMMember:IAMMember":
        return [f"{i.get('member')} → {i.get('role')} on the runtime account"]
    if r.type == "gcp:cloudscheduler/job:Job":
        return _job_details(i)
    if r.type == "gcp:secretmanager/secretIamMember:SecretIamMember":
        return [f"{i.get('role')} on secret {i.get('secretId')}"]
    if r.type == "gcp:cloudrunv2/service:Service":
        return _service_details(i)
    if r.type == "gcp:cloudrunv2/serviceIamMember:ServiceIamMember":
        when = (i.get("condition") or {}).get("expression")
        return [f"{i.get('member')} → {i.get('role')}"] + ([f"only if {when}"] if when else [])
    if r.type == "gcp:cloudrun/domainMapping:DomainMapping":
        cert = (i.get("spec") or {}).get("certificateMode")
        return [f"{i.get('name')} → service {(i.get('spec') or {}).get('routeName')}, "
                f"certificate {cert}"]
    if r.type == "cloudflare:index/dnsRecord:DnsRecord":
        proxied = "proxied" if i.get("proxied") else "DNS only"
        return [f"{i.get('name')} {i.get('type')} {i.get('content')} ({proxied}, ttl "
                f"{i.get('ttl')}), zone {i.get('zoneId')}"]
    if r.type == "pulumi:providers:cloudflare":
        return [f"API token {i.get('apiToken')}"]
    return []


def _job_details(i: dict[str, Any]) -> list[str]:
    import base64

    target = i.get("httpTarget") or {}
    try:
        args = json.loads(json.loads(base64.b64decode(target.get("body") or ""))["argument"])
        scaling = (f"{args['service']} to min {args['min']}, max {args['max']}")
    except (ValueError, KeyError, TypeError):
        scaling = "?"
    workflow = str(target.get("uri") or "").removesuffix("/executions").rsplit("/", 1)[-1]
    return [f"cron '{i.get('schedule')}' in {i.get('timeZone')}: starts {workflow or UNKNOWN} "
            f"to scale {scaling} (only inside the window)",
            f"as {(target.get('oauthToken') or {}).get('serviceAccountEmail') or UNKNOWN}"]


def _near(path: str | None) -> str:
    """A path relative to the current folder when it is below it."""
    if not path:
        return UNKNOWN
    here = Path.cwd()
    return str(Path(path).relative_to(here)) if Path(path).is_relative_to(here) else path


def _service_details(i: dict[str, Any]) -> list[str]:
    template = i.get("template") or {}
    container = (template.get("containers") or [{}])[0]
    scaling = i.get("scaling") or {}
    limits = (container.get("resources") or {}).get("limits") or {}
    port = ((container.get("ports") or {}).get("containerPort"))
    envs = container.get("envs") or []
    probe = container.get("startupProbe") or {}
    window = (probe.get("periodSeconds") or 0) * (probe.get("failureThreshold") or 0)
    affinity = "on" if template.get("sessionAffinity") else "off"
    lines = [
        f"region {i.get('location')}, image {container.get('image') or UNKNOWN}",
        f"instances {scaling.get('minInstanceCount')}–{scaling.get('maxInstanceCount')} "
        "(service-level scaling)",
        f"{limits.get('cpu')} vCPU, {limits.get('memory')}, concurrency "
        f"{template.get('maxInstanceRequestConcurrency')}, timeout {template.get('timeout')}, "
        f"session affinity {affinity}, port {port}",
        f"startup probe: TCP on {port}, up to {window}s",
        f"deletion protection {'on' if i.get('deletionProtection') else 'off'}",
    ]
    for env in envs:
        if env.get("valueSource"):
            ref = (env["valueSource"].get("secretKeyRef") or {})
            lines.append(f"env {env.get('name')} ← secret {ref.get('secret')}:{ref.get('version')}")
        else:
            lines.append(f"env {env.get('name')}={env.get('value')}")
    return lines


PAST = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted",
        "same": "unchanged", "refresh": "refreshed", "read": "read",
        "create-replacement": "created (replacement)", "delete-replaced": "deleted (replaced)"}


class _LiveTable:
    """A table redrawn in place on stderr while it is a terminal (`_table` draws it);
    elsewhere the subclass prints plain lines."""

    console: Console
    live: Any = None

    def _live_wanted(self) -> bool:
        return self.console.is_terminal and not self.console.is_dumb_terminal

    def __enter__(self) -> Any:
        if self._live_wanted():
            from rich.live import Live

            self.live = Live(self._table(), console=self.console, refresh_per_second=4)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(None, None, None)

    def _table(self) -> Any:
        raise NotImplementedError


class Progress(_LiveTable):
    """Live view of resource operations, fed by engine events (called from a watcher thread).

    On a terminal: a rich table redrawn in place. Elsewhere (CI, --json, pipes): one plain
    line per finished operation, on stderr.
    """

    def __init__(self, operation: str, diff: bool = False) -> None:
        self.operation = operation
        self.diff = diff
        self.preview = operation.startswith("preview")
        self.console = stderr()
        self.rows: dict[str, dict[str, Any]] = {}
        self.live: Any = None
        self.reporter = REPORTER.get()  # events arrive on automation's thread: keep it now

    def clear(self) -> None:
        """Forget the rows so far: the next operation has its own."""
        self.rows.clear()

    def _live_wanted(self) -> bool:  # inside a fleet the app's line shows the progress
        return self.reporter is None and super()._live_wanted()

    def __call__(self, event: Any) -> None:
        pre = event.resource_pre_event
        done = event.res_outputs_event
        failed = event.res_op_failed_event
        if pre and pre.metadata.type != STACK_TYPE and pre.metadata.op.value != "same":
            meta = pre.metadata
            self.rows[meta.urn] = {"op": meta.op.value, "type": meta.type,
                                   "name": meta.urn.rsplit("::", 1)[-1], "status": "running",
                                   "start": time.monotonic(), "end": None,
                                   "diffs": list(meta.diffs or [])}
            if self.reporter is not None:
                name = meta.urn.rsplit("::", 1)[-1]
                self.reporter.quiet_step(f"{meta.op.value} {label(meta.type, name)} {name}")
        elif done or failed:
            meta = (done or failed).metadata
            row = self.rows.get(meta.urn)
            if row is None:
                return
            row["status"] = "failed" if failed else "planned" if self.preview else "done"
            row["end"] = time.monotonic()
            if self.reporter is not None:
                self.reporter.note(self._line(row, failed=bool(failed)))
            elif self.live is None:
                self.console.print("  " + self._line(row, failed=bool(failed)))
        if self.live is not None:
            self.live.update(self._table())

    def _line(self, row: dict[str, Any], failed: bool = False) -> str:
        if failed:
            verb = f"failed to {row['op']}"
        elif self.preview:
            verb = f"would {row['op']}"
        else:
            verb = PAST.get(row["op"], row["op"])
        kind = label(row["type"], row["name"])
        line = f"{verb:<10} {kind} {safe(row['name'])}"
        if self.diff and row["diffs"]:
            line += f": {', '.join(row['diffs'])} changed"
        return line if self.preview else f"{line} ({row['end'] - row['start']:.1f}s)"

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"{self.operation}", show_edge=False, box=None, padding=(0, 1))
        columns = ("operation", "resource", "name", "status", "time", "changed")
        for column in columns if self.diff else columns[:-1]:
            table.add_column(column)
        for row in self.rows.values():
            elapsed = (row["end"] or time.monotonic()) - row["start"]
            style = {"done": "green", "failed": "red"}.get(row["status"], "yellow")
            cells = [row["op"], label(row["type"], row["name"]), row["name"],
                     f"[{style}]{row['status']}[/]", f"{elapsed:.0f}s"]
            table.add_row(*cells, *([", ".join(row["diffs"])] if self.diff else []))
        return table


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


def operation(result: Any) -> None:
    """The change summary of up, preview, refresh or destroy; the outputs after an up."""
    console = stdout()
    changed = {k: n for k, n in result.changes.items() if n and k != "same"}
    changes = ", ".join(f"{n} {PAST[k] if k != 'same' else 'unchanged'}"
                        for k, n in result.changes.items() if n)
    verb = result.result
    if result.operation == "preview":
        verb = "would change" if changed else "no changes"
    console.print(f"[bold]{result.operation}[/] {result.stack}: {verb} — "
                  f"{changes or 'nothing'} ({result.duration_s:.1f}s)")
    if result.operation == "up":
        outputs_table(ordered_outputs(result.outputs))


def outputs_table(outputs: dict[str, Any], indent: str = "  ") -> None:
    """The URL(s) first, then every output; a stack of books shows each book's in turn."""
    console = stdout()
    if not outputs:
        console.print("no outputs: the stack is not deployed (or was destroyed)")
        return
    for book, values in sorted((outputs.get("books") or {}).items()):
        console.print(f"[bold]book {safe(book)}[/]")
        outputs_table(ordered_outputs(values), indent + "  ")
    if outputs.get("url"):
        console.print(f"{indent[2:]}[bold green]URL[/] {safe(outputs['url'])}")
    if outputs.get("custom_url"):
        console.print(f"{indent[2:]}[bold green]Custom domain[/] {safe(outputs['custom_url'])}")
    for key, value in outputs.items():
        if key in ("url", "custom_url", "traffic", "books"):  # traffic: see `verify`
            continue
        if key == "releases":  # `history` shows them
            if value:
                console.print(f"{indent}release: {safe(value[-1].get('n'))} (`stx-pulumi "
                              "history` lists them)")
        elif isinstance(value, dict) and key != "books":
            console.print(f"{indent}{safe(key)}:")
            for name, item in value.items():
                console.print(f"{indent}  {safe(name)}: {safe(item)}")
        elif key == "dns_records" and value:
            console.print(f"{indent[2:]}[bold]DNS records to create[/] (DNS only, not "
                          "proxied):")
            for record in value:
                console.print(indent + safe(f"{record.get('name')} {record.get('type')} "
                                          f"{record.get('rrdata')}"))
        else:
            console.print(f"{indent}{safe(key)}: {safe(value)}")


def stacks_table(backend: str, infos: list[Any]) -> None:
    from rich.table import Table

    console = stdout()
    console.print(f"[dim]backend {safe(backend)}[/]")
    if not infos:
        console.print("no stacks yet: `stx-pulumi up APP` creates one")
        return
    table = Table(box=None, padding=(0, 2))
    for column in ("app", "env", "last update", "result", "message", "resources", "url"):
        table.add_column(column)
    for s in infos:
        table.add_row(safe(s.app), safe(s.env), s.last_update or "-", s.result or "-",
                      safe(s.message or "-"), str(s.resource_count or 0), safe(s.url or "-"))
    console.print(table)


def status_table(backend: str, rows: list[dict[str, Any]]) -> None:
    """`status`: one line per app and env (a line per book under it)."""
    from rich.table import Table

    console = stdout()
    console.print(f"[dim]backend {safe(backend)}[/]")
    if not rows:
        console.print("no stacks yet: `stx-pulumi up APP` creates one")
        return
    table = Table(box=None, padding=(0, 2))
    for column in ("app", "env", "url", "instances", "image", "last update", "health",
                   "next event"):
        table.add_column(column)
    for r in rows:
        if r.get("error"):
            table.add_row(safe(r["app"]), safe(r["env"]), "-", "-", "-", "-",
                          safe(f"unreadable: {r['error']}"[:120]), "-")
            continue
        health = r["health"]
        urls = r["urls"] or {"": None}
        for i, (book, url) in enumerate(urls.items()):
            state = health.get(book) if isinstance(health, dict) else health
            scaling = (f"{r['min_instances']}–{r['max_instances']}" if r["min_instances"]
                       is not None else "per book")
            if r["scaling"] != "base":
                scaling += f" ({r['scaling']})"
            if r["pinned_release"]:
                scaling += f", pinned to release {r['pinned_release']}"
            first = i == 0
            table.add_row(safe(r["app"]) if first else "", safe(r["env"]) if first else "",
                          safe(f"{book} {url}".strip() if url else "-"),
                          scaling if first else "", safe(r["image_tag"] or "-") if first else "",
                          f"{r['last_update'] or '-'} {r['result'] or ''}".strip() if first
                          else "", safe(state or "-"),
                          safe(r["next_event"] or "-") if first else "")
    console.print(table)


def cost(spec: Any, data: dict[str, Any]) -> None:
    """The event cost, or the scenario table (per book for books), then idle cost, warnings
    and assumptions."""
    console = stdout()
    for book, part in (data.get("books") or {None: data}).items():
        name = spec.stack + (f" book {book}" if book else "")
        _cost_table(console, name, part)
    for window in (data.get("events") or {}).get("windows", []):
        console.print(f"  event {safe(window['name'])} ({window['start']} {window['tz']}): "
                      f"${window['total_usd']:.2f} ({safe(window['detail'])})")
    for month, total in (data.get("events") or {}).get("months_usd", {}).items():
        console.print(f"  {month} with its events and the idle month: ${total:.2f}")
    if builds := data.get("cloud_builds"):
        console.print(f"  cloud builds: about {builds['free_builds_monthly']:,} a month free "
                      f"({builds['minutes_per_build']} min each), then "
                      f"${builds['usd_per_build_beyond']:.3f} per build")
    idle = data["idle_monthly"]
    console.print(f"  idle, per month: ${idle['total_usd']:.2f} (min instances "
                  f"${idle['min_instances_usd']:.2f}, {idle['stored_gb']:g} GB of images "
                  f"${idle['storage_usd']:.2f})")
    a = data["assumptions"]
    free = data["free_tier_monthly"]
    console.print(f"[dim]Gross USD, {a['billing']}. Free each month per billing account: "
                  f"{free['vcpu_seconds']:,.0f} vCPU-s, {free['gib_seconds']:,.0f} GiB-s, "
                  f"{free['requests']:,.0f} requests. Assumes {a['requests_per_user_hour']} "
                  f"requests per student-hour, {a['image_gb']} GB per image, "
                  f"{a['kept_images']} images kept.[/]")
    others = sorted(k for k, v in data["price_sources"].items() if "secondary" in v)
    if others:
        console.print(f"[dim]Not from Google's own page (secondary sources): "
                      f"{', '.join(others)}.[/]")


def _cost_table(console: Console, name: str, data: dict[str, Any]) -> None:
    from rich.table import Table

    console.print(f"[bold]Cost of {safe(name)}[/] for {data['users']} students: {data['vcpu']} "
                  f"vCPU, {data['memory']}, concurrency {data['concurrency']} → "
                  f"{data['instances']} instances")
    table = Table(box=None, padding=(0, 2))
    for column, justify in (("scenario", "left"), ("hours", "right"), ("instances", "right"),
                            ("USD", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    rows = data.get("scenarios") or [{"name": f"{data['users']} students", **data}]
    for row in rows:
        table.add_row(row["name"], f"{row['hours']:g}", str(row["instances"]),
                      f"{row['total_usd']:.2f}")
    console.print(table)
    for warning in data["warnings"]:
        console.print(f"[yellow]warning:[/] {safe(warning)}")


def windows(spec: Any, data: dict[str, Any]) -> None:
    """`event list`: each window, what it costs, and the scaling in force now."""
    console = stdout()
    if not spec.windows:
        console.print(f"{spec.stack}: no event windows (`stx-pulumi event add` schedules one)")
    for window, cost in zip(spec.windows, data["events"]["windows"], strict=True):
        state = "ACTIVE" if cost["active"] else "upcoming"
        console.print(f"{state:<8} {safe(window.describe())}: ${cost['total_usd']:.2f}")
    for name, state in data["jobs"].items():
        console.print(f"  job {safe(name)}: {safe(state)}")
    for name, scaling in data["scaling"].items():
        console.print(f"now {safe(name)}: min {scaling['min_instances']}, max "
                      f"{scaling['max_instances']} ({safe(scaling['source'])})")
    for month, total in data["events"]["months_usd"].items():
        console.print(f"{month} with its events and the idle month: ${total:.2f}")


def history(stack: str, rows: list[dict[str, Any]], pin: Any) -> None:
    """`history`: the releases, newest first, the serving one marked."""
    from rich.table import Table

    console = stdout()
    if not rows:
        console.print(f"{stack}: no release recorded yet (`stx-pulumi up` records one)")
        return
    table = Table(box=None, padding=(0, 2))
    for column in ("", "n", "when", "who", "kind", "tag", "verified", "message"):
        table.add_column(column)
    for row in rows:
        verified = {"passed": "yes", "failed": "FAILED"}.get(row["verified"] or "", "-")
        table.add_row("▶" if row["serving"] else "", str(row["n"]), row["time"],
                      safe(row["who"]), row["kind"], safe(row["tag"]), verified,
                      safe(row["message"] or "-"))
    console.print(f"[bold]{stack}[/]" + (f": pinned to release {pin.release} by a rollback "
                                          "(`up --unpin` ends it)" if pin else ""))
    console.print(table)


def log_lines(entries: list[dict[str, Any]], several: bool = False) -> None:
    """Log entries as `time severity [service] text`, errors in red."""
    console = stdout()
    for entry in entries:
        severity = str(entry.get("severity") or "DEFAULT")
        text = entry.get("textPayload") or (entry.get("jsonPayload") or {}).get("message") or (
            json.dumps(entry.get("jsonPayload")) if entry.get("jsonPayload") else "")
        if not text and entry.get("httpRequest"):
            request = entry["httpRequest"]
            text = f"{request.get('requestMethod')} {request.get('requestUrl')} " \
                   f"{request.get('status')}"
        service = ((entry.get("resource") or {}).get("labels") or {}).get("service_name", "")
        where = f"{service} " if several else ""
        style = "red" if severity in ("ERROR", "CRITICAL", "ALERT", "EMERGENCY") else (
            "yellow" if severity == "WARNING" else "")
        line = f"{str(entry.get('timestamp', ''))[:19]} {severity:<8} {where}{safe(text)}"
        console.print(f"[{style}]{line}[/]" if style else line)


def verification(verification: Any) -> None:
    """The verification's checks, per book for books (on stderr: stdout may hold the
    deployment's result)."""
    for report in verification.reports.values():
        checks_table(f"verify {report.stack}", report.checks, stderr())


def checks_table(title: str, checks: list[Any], console: Console | None = None) -> None:
    """Each check with its status, and the fix for those that did not pass."""
    console = console or stdout()
    styles = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
    failed = any(c.status == "fail" for c in checks)
    console.print(f"[bold]{title}[/]: {'failed' if failed else 'passed'}")
    for check in checks:
        style = styles.get(check.status, "")
        console.print(f"  [{style}]{check.status:<4}[/] {check.name:<14} {safe(check.detail)}")
        if check.fix and check.status != "pass":
            console.print(f"       [dim]fix: {safe(check.fix)}[/]")


class FleetBoard(_LiveTable):
    """A fleet's progress on stderr: on a terminal one live line per app (state, current step,
    elapsed); elsewhere (CI, pipes) a plain `stack: message` line per message."""

    def __init__(self, operation: str, runs: list[Any]) -> None:
        import threading

        self.operation = operation
        self.runs = runs
        self.console = stderr()
        self.live: Any = None
        self.lock = threading.Lock()
        for run in runs:
            run.on_change = self.changed

    def changed(self, run: Any, text: str | None) -> None:
        if self.live is None and text is not None:
            with self.lock:
                self.console.print(f"{safe(run.stack)}: {safe(text)}")

    def refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._table())

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=self.operation, show_edge=False, box=None, padding=(0, 1))
        for column in ("app", "env", "state", "step", "time"):
            table.add_column(column, overflow="ellipsis", no_wrap=True)
        for run in self.runs:
            style = FLEET_STYLES.get(run.state, "yellow")
            table.add_row(safe(run.app), safe(run.env), f"[{style}]{run.state}[/]",
                          safe(run.step)[:70], f"{run.elapsed:.0f}s")
        return table


FLEET_STYLES = {"succeeded": "green", "failed": "red", "interrupted": "red",
                "waiting": "dim", "not started": "dim"}


def fleet_summary(operation: str, runs: list[Any], interrupted: bool, again: str) -> None:
    """After a fleet: a table of every app (result, changes, URL, duration), each failure with
    its hint, and after an interrupt what finished and what to run next (`again` is the
    command to run for the rest)."""
    from rich.table import Table

    console = stdout()
    table = Table(title=f"{operation}: {len(runs)} app(s)", box=None, padding=(0, 2),
                  title_justify="left")
    for column in ("app", "env", "result", "changes", "url", "time"):
        table.add_column(column)
    for run in runs:
        style = FLEET_STYLES.get(run.state, "yellow")
        changes = ", ".join(f"{n} {PAST.get(k, k)}" for k, n in run.changes.items()
                            if n and k != "same") or ("no changes" if run.changes else "-")
        table.add_row(safe(run.app), safe(run.env), f"[{style}]{run.state}[/]", changes,
                      safe(run.url or "-"), f"{run.elapsed:.1f}s" if run.started else "-")
    console.print(table)
    for run in runs:
        if run.error:
            console.print(f"[bold red]error:[/] {safe(run.stack)}: {safe(run.error)}")
            if run.hint:
                console.print(f"[dim]hint:[/] {safe(run.hint)}")
    if interrupted:
        groups = {state: [r.app for r in runs if r.state == state]
                  for state in ("succeeded", "failed", "interrupted", "not started")}
        said = {"interrupted": "stopped part-way"}
        console.print("[bold red]interrupted:[/] " + "; ".join(
            f"{said.get(state, state)}: {', '.join(apps)}" for state, apps in groups.items()
            if apps))
        rest = groups["interrupted"] + groups["not started"]
        if rest:
            console.print(f"[dim]next:[/] {safe(again.format(apps=' '.join(rest)))}" + (
                " (an interrupted update may leave its stack locked: `stx-pulumi cancel "
                "APP` removes a stale lock)" if groups["interrupted"] else ""))


def team_outcome(outcome: Any, dry_run: bool) -> None:
    """What `team setup` did, or with --dry-run would do."""
    console = stdout()
    changes = ", ".join(f"{n} {PAST[k]}" for k, n in outcome.team_changes.items()
                        if n and k != "same") or "no change"
    if dry_run:
        changes = f"would be {changes}" if changes != "no change" else changes
    rows = [("team stack", changes), ("state", outcome.backend),
            ("secrets", outcome.secrets_provider)]
    if outcome.moved:
        rows.append(("would move" if dry_run else "moved", ", ".join(outcome.moved)))
    if outcome.already:
        rows.append(("already there", ", ".join(outcome.already)))
    if outcome.switched:
        rows.append(("workspace", ("would switch" if dry_run else "switched") + " to "
                     f"{outcome.backend} (Pulumi.yaml) and the KMS key (team/stacks)"))
    for key in ("workloadIdentityProvider", "deployer", "previewer"):
        if outcome.outputs.get(key):
            rows.append((key, str(outcome.outputs[key])))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        console.print(f"{key:<{width}}  {safe(value)}", highlight=False, soft_wrap=True)
    if not dry_run and not outcome.changed:
        console.print("nothing to change: the team's backend and key are in place",
                      highlight=False)
