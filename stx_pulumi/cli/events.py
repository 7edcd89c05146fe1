"""Event windows: `event add`, `event list`, `event remove`. A window is kept in the stack config
(`stx:events`) and scheduled in Google Cloud by the next `up` (or at once with `--up`)."""

from typing import TYPE_CHECKING, Annotated, Any

import typer

from stx_pulumi import render
from stx_pulumi.cli.deploying import deploy_app
from stx_pulumi.cli.options import (
    AppArg,
    DeployOptions,
    EnvOpt,
    JsonOpt,
    YesOpt,
    app,
    command,
    load_spec_for,
    open_engine,
    stack_of,
    stack_ref,
)
from stx_pulumi.errors import InputError, shown

if TYPE_CHECKING:
    from stx_pulumi.model.events import Window
    from stx_pulumi.model.spec import AppSpec
    from stx_pulumi.workspace import Workspace

event_app = typer.Typer(
    help="Event windows: warm before a class, back to the base scaling after, scheduled in "
         "Google Cloud (Cloud Scheduler), with nobody at the keyboard.",
    no_args_is_help=True)
app.add_typer(event_app, name="event")
UpOpt = Annotated[bool, typer.Option(
    "--up", help="Deploy now (the change is kept only if the update succeeds); else the next "
    "`up` applies it.")]


@command("add", target=event_app)
def add(
    app_name: AppArg = None,
    start: Annotated[str, typer.Option("--start", help="When the class starts, e.g. "
                                       "'2026-12-01 08:00' (in --tz).")] = "",
    end: Annotated[str, typer.Option("--end", help="When it ends (at most 24 h after "
                                     "--start unless --long).")] = "",
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone of --start/--end, e.g. "
                                    "Europe/Paris.")] = "UTC",
    users: Annotated[int | None, typer.Option(
        "--users", help="Students at once: warm ⌈users ÷ concurrency⌉ instances.")] = None,
    min_instances: Annotated[int | None, typer.Option(
        "--min", help="Instances to keep warm (instead of --users).")] = None,
    max_instances: Annotated[int | None, typer.Option(
        "--max", help="Maximum instances in the window. Default: the larger of the base "
        "max and the warm instances.")] = None,
    warm: Annotated[str, typer.Option("--warm", help="How long before --start to warm up "
                                      "(e.g. 15m, 1h).")] = "15m",
    book: Annotated[str | None, typer.Option(
        "--book", help="Only this book's service (a stack of books). Default: every service.")
    ] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="The window's name. Default: w<YYYYMMDD>-<HHMM> of --start.")] = None,
    long: Annotated[bool, typer.Option("--long", help="Allow a window over 24 h.")] = False,
    up: UpOpt = False,
    yes: YesOpt = False,
    env: EnvOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Schedule a class: its scaling from --start minus --warm until --end."""
    from stx_pulumi.model.cost import over_budget
    from stx_pulumi.model.events import clock
    from stx_pulumi.model.prices import Prices
    from stx_pulumi.ops import events

    window = events.new_window(name, {
        "start": start, "end": end, "tz": tz, "warm": warm, "users": users,
        "min": min_instances, "max": max_instances, "book": book}, long, clock())
    ws, stack = stack_of(app_name, env)
    events.place(ws, stack, window)
    options = DeployOptions(env=env)
    overrides = {"stx:events": {window.name: window.as_config()}}
    spec, _ = load_spec_for(app_name, options, overrides, (), placeholder=not up)
    if not up and not ws.stack_initialized(spec.stack):
        raise InputError(f"{spec.stack} is not deployed yet: pass --up to deploy it with the "
                         "window")
    budget = over_budget(spec, Prices())
    if budget and not yes:
        raise InputError(budget)
    suggested = events.rehearsed(ws, spec, window, render) if max_instances is None else None
    cost = _show_window(spec, window, json_output and up)
    if up:  # the update's preflight checks the capacity
        deploy_app(app_name, options, overrides, (), yes=yes,
                   message=f"event add {window.name}", json_output=json_output)
        return
    events.check_capacity(ws, spec, window, render, quiet=json_output)
    _write(ws, spec.stack, [(f"stx:events.{window.name}.{k}", v)
                            for k, v in window.as_config().items()], [])
    if json_output:
        render.print_json({"stack": spec.stack, "event": window.name,
                           "window": window.as_config(), "cost": cost, "result": "saved",
                           "rehearsed_max": suggested})
    else:
        render.info(f"event {window.name} saved in {spec.stack}: `stx-pulumi up` schedules it")


@command("list", target=event_app)
def list_(app_name: AppArg = None, env: EnvOpt = None, json_output: JsonOpt = False) -> None:
    """The stack's windows, the scaling in force now, and what each window costs."""
    from stx_pulumi.model.cost import windows_cost
    from stx_pulumi.model.prices import Prices
    from stx_pulumi.ops.events import job_states

    stack_ref(app_name, env)  # the stack must exist
    spec, _ = load_spec_for(app_name, DeployOptions(env=env), {}, (), placeholder=True)
    data = {"stack": spec.stack, "now": spec.now.isoformat(timespec="minutes"),
            "scaling": {svc.book or svc.name: spec.scaling(svc).__dict__
                        for svc in spec.services},
            "events": windows_cost(spec, Prices()), "expired": list(spec.expired),
            "jobs": job_states(spec)}
    if json_output:
        render.print_json(data)
    else:
        render.windows(spec, data)


@command("test", target=event_app)
def test(app_name: AppArg = None, env: EnvOpt = None, json_output: JsonOpt = False) -> None:
    """Prove now that the windows will act, from what Google holds.

    Every job exists, enabled and timed as planned; the scheduler account holds its rights on
    each service for each window."""
    from stx_pulumi.errors import VerificationError
    from stx_pulumi.model.checks import FAIL
    from stx_pulumi.ops.events import prove

    stack_ref(app_name, env)
    spec, _ = load_spec_for(app_name, DeployOptions(env=env), {}, (), placeholder=True)
    checks = prove(spec)
    failed = any(c.status == FAIL for c in checks)
    if json_output:
        render.print_json({"stack": spec.stack, "result": "failed" if failed else "passed",
                           "checks": [c.__dict__ for c in checks]})
    else:
        render.checks_table(f"event test {spec.stack}", checks)
    if failed:
        raise typer.Exit(VerificationError.exit_code)


@command("remove", target=event_app)
def remove(
    app_name: AppArg = None,
    name: Annotated[str, typer.Argument(help="The window's name (see `event list`).")] = "",
    up: UpOpt = False,
    yes: YesOpt = False,
    env: EnvOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Remove a window: the next `up` (or --up) deletes its jobs and its scheduler rights."""
    ws, stack = stack_ref(app_name, env)
    names = {str(k) for k in (ws.stack_config(stack).get("stx:events") or {})}
    if name not in names:
        raise InputError(f"NAME: {stack} has no window {shown(name)}"
                         + (f" (windows: {', '.join(sorted(names))})" if names else ""))
    key = f"stx:events.{name}"
    if up:
        deploy_app(app_name, DeployOptions(env=env), {}, (f"events.{name}",), yes=yes,
                   message=f"event remove {name}", json_output=json_output)
        return
    _write(ws, stack, [], [key])
    render.info(f"event {name} removed from {stack}: `stx-pulumi up` deletes its jobs")


def _write(ws: "Workspace", stack: str, updates: list[tuple[str, str]], removed: list[str]) -> None:
    engine, _ = open_engine(ws, quiet=True)
    engine.write_config(stack, updates, removed)


def _show_window(spec: "AppSpec", window: "Window", quiet: bool) -> dict[str, Any]:
    """The window and its cost, before anything is written (`quiet` under --json --up)."""
    from stx_pulumi.model.cost import window_cost
    from stx_pulumi.model.prices import Prices

    cost = window_cost(spec, window, Prices())
    if not quiet:
        render.info(f"event {window.describe()}")
        render.info(f"  estimated ${cost['total_usd']:.2f}: {cost['detail']}")
    return cost

