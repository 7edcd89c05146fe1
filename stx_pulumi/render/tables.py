"""Results as tables: an operation's changes and outputs, stacks, status, costs, windows,
releases, logs, checks, the team."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.console import Console

from stx_pulumi.render.console import (
    PAST,
    ordered_outputs,
    safe,
    stderr,
    stdout,
)

if TYPE_CHECKING:
    from stx_pulumi.engine.state import OperationResult
    from stx_pulumi.model.spec import AppSpec
    from stx_pulumi.ops.team import Outcome
    from stx_pulumi.ops.verify import Verification


def operation(result: OperationResult) -> None:
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
    table = _backend_table(backend, bool(infos), ("app", "env", "last update", "result",
                                                  "message", "resources", "url"))
    if table is None:
        return
    for s in infos:
        table.add_row(safe(s.app), safe(s.env), s.last_update or "-", s.result or "-",
                      safe(s.message or "-"), str(s.resource_count or 0), safe(s.url or "-"))
    stdout().print(table)


def _backend_table(backend: str, any_stack: bool, columns: tuple[str, ...]) -> Any:
    """The backend's line, then an empty table of `columns` (None, said so, with no stack)."""
    from rich.table import Table

    console = stdout()
    console.print(f"[dim]backend {safe(backend)}[/]")
    if not any_stack:
        console.print("no stacks yet: `stx-pulumi up APP` creates one")
        return None
    table = Table(box=None, padding=(0, 2))
    for column in columns:
        table.add_column(column)
    return table


def status_table(backend: str, rows: list[dict[str, Any]]) -> None:
    """`status`: one line per app and env (a line per book under it)."""
    table = _backend_table(backend, bool(rows), ("app", "env", "url", "instances", "image",
                                                 "last update", "health", "next event"))
    if table is None:
        return
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
                       is not None else "per book") if r["deployed"] else "nothing deployed"
            custom = r["custom"].get(book)
            if custom:
                url = f"{url} {custom}" if url else custom
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
    stdout().print(table)
    for r in rows:
        for alert in r.get("alerts") or []:
            stdout().print(f"[red]alert firing[/] {safe(r['stack'])}: {safe(alert)}")


def cost(spec: AppSpec, data: dict[str, Any]) -> None:
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
    if alerts := data.get("alerts_monthly"):
        console.print(f"  alerts, per month: ${alerts['total_usd']:.2f} ({alerts['conditions']} "
                      f"alert conditions; {alerts['uptime_checks']} uptime checks, "
                      f"{alerts['uptime_executions']:,} runs, billed past the project's free "
                      f"{data['free_tier_monthly']['uptime_executions']:,.0f})")
    if scanning := data.get("scanning"):
        console.print(f"  vulnerability scans: ${scanning['usd_per_image']:.2f} per image "
                      "pushed to this protected env's registry")
    if budget := data.get("budget"):
        month = budget["monthly_estimate"]
        over = month["total_usd"] > budget["budget_usd"]
        console.print(f"  budget ${budget['budget_usd']:g} a month; estimate "
                      f"${month['total_usd']:.2f} (20 days × 4 h at max instances, windows, "
                      f"idle, alerts){': OVER' if over else ''}")
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


def windows(spec: AppSpec, data: dict[str, Any]) -> None:
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


def history(stack: str, rows: list[dict[str, Any]], pin: Any,
            rehearsal: dict[str, Any] | None = None) -> None:
    """`history`: the releases, newest first, the serving one marked; the last rehearsal."""
    from rich.table import Table

    console = stdout()
    if rehearsal:
        console.print(rehearsal_line(rehearsal))
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
    console.print(f"[bold]{stack}[/]" + (f": pinned to release {pin.release}"
                                          + (f", image {safe(pin.tag)}" if pin.tag else "")
                                          + " (`up --unpin` ends it)" if pin else ""))
    console.print(table)


def rehearsal_line(kept: dict[str, Any]) -> str:
    """The last rehearsal, as the stack keeps it, on one line."""
    verdict = "ready" if kept.get("ok") else "not ready"
    line = (f"last rehearsal {safe(kept.get('at'))}: {kept.get('served')} of "
            f"{kept.get('students')} students served, p95 {kept.get('p95_s')}s at --max "
            f"{kept.get('max')}: {verdict}")
    if kept.get("suggested_max"):
        line += f" (it suggested --max {kept['suggested_max']})"
    return line


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


def verification(verification: Verification) -> None:
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


def team_outcome(outcome: Outcome, dry_run: bool) -> None:
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
