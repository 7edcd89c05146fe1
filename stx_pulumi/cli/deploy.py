"""Deploying one app: plan, cost, doctor, up, preview, refresh, destroy, outputs, verify,
cancel. Each command builds the spec, calls the engine (or the offline plan), renders."""

import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stx_pulumi import render
from stx_pulumi.cli.deploying import (
    AcceptRiskOpt,
    NoVerifyOpt,
    PollOpt,
    WaitOpt,
    check_wait,
    deploy_app,
    fail_verification,
    run_up,
    show,
    verified,
)
from stx_pulumi.cli.fleet import (
    AllOpt,
    AppsArg,
    FailFastOpt,
    ParallelOpt,
    fill,
    one,
    refuse_path,
    run_fleet,
    several,
)
from stx_pulumi.cli.options import (
    AppArg,
    DeployOptions,
    EnvOpt,
    JsonOpt,
    MessageOpt,
    YesOpt,
    command,
    interactive,
    load_spec_for,
    open_engine,
    stack_ref,
)
from stx_pulumi.errors import InputError

if TYPE_CHECKING:
    from stx_pulumi.engine.plan import Plan
    from stx_pulumi.engine.state import OperationResult
    from stx_pulumi.ops.fleet import Run
    from stx_pulumi.ops.verify import Verification
    from stx_pulumi.workspace import Workspace

@command(deploy_options=True)
def plan(apps: AppsArg = None, all_apps: AllOpt = False, json_output: JsonOpt = False,
         yes: YesOpt = False, *, options: DeployOptions) -> None:
    """Show the resources `up` would create, offline: no Pulumi CLI, Docker or cloud needed."""
    from stx_pulumi.model.cost import over_budget
    from stx_pulumi.model.prices import Prices

    if several(apps, all_apps):
        refuse_path(options)
        _plans(apps or [], all_apps, options, json_output)
        return
    result, costs = _plan(one(apps), options)
    if json_output:
        render.print_json({**render.plan_json(result), "cost": costs})
    else:
        render.plan_tree(result)
        render.cost(result.spec, costs)
    problem = over_budget(result.spec, Prices())
    if problem and not yes:  # shown, then refused: the plan would bust the budget
        render.error(InputError(problem))
        raise typer.Exit(2)


def _plan(app_name: str | None, options: DeployOptions) -> tuple["Plan", dict[str, Any]]:
    from stx_pulumi.engine.plan import run_plan
    from stx_pulumi.model.cost import estimate
    from stx_pulumi.model.prices import Prices

    spec, _ = load_spec_for(app_name, options, options.overrides(Path.cwd()), (), placeholder=True)
    return run_plan(spec), estimate(spec, Prices())


def _plans(apps: list[str], all_apps: bool, options: DeployOptions, json_output: bool) -> None:
    """The plans of several apps, one after another (offline, CPU-bound: no threads); an app
    whose spec is bad is reported and the others still planned."""
    from stx_pulumi.cli.fleet import selected
    from stx_pulumi.cli.options import env_name
    from stx_pulumi.errors import StxError
    from stx_pulumi.ops.fleet import fleet_exit
    from stx_pulumi.workspace import locate_workspace

    ws = locate_workspace(Path.cwd(), os.environ)
    env = env_name(options.env, ws)
    plans: list[dict[str, Any]] = []
    codes: list[int] = []
    for app, arg in selected(ws, env, apps, all_apps, deployed=False):
        try:
            result, costs = _plan(arg, replace(options, env=env))
        except StxError as err:
            render.error(err)
            codes.append(err.exit_code)
            plans.append({"stack": f"{app}.{env}", "error": err.message})
            continue
        if json_output:
            plans.append({**render.plan_json(result), "cost": costs})
        else:
            render.plan_tree(result)
            render.cost(result.spec, costs)
    if json_output:
        render.print_json({"env": env, "plans": plans})
    if fleet_exit(codes):
        raise typer.Exit(fleet_exit(codes))


@command(deploy_options=True)
def cost(
    app_name: AppArg = None,
    users: Annotated[int | None, typer.Option(
        "--users", help="Students at once (default for a single estimate: 1000).")] = None,
    hours: Annotated[float | None, typer.Option(
        "--hours", help="Length of the event in hours (default for a single estimate: 2).")
    ] = None,
    prices: Annotated[Path | None, typer.Option(
        "--prices", help="JSON file overriding prices (keys as in `--json` price_sources).")
    ] = None,
    json_output: JsonOpt = False,
    *,
    options: DeployOptions,
) -> None:
    """Estimate what an event costs, and the idle cost (without --users/--hours: 1,000 students)."""
    from stx_pulumi.model.cost import estimate
    from stx_pulumi.model.prices import load_prices

    if users is not None and users < 1:
        raise InputError(f"--users: must be 1 or more, got {users}")
    if hours is not None and not 0 < hours <= 24 * 31:
        raise InputError(f"--hours: must be more than 0 and at most 744, got {hours}")
    spec, _ = load_spec_for(app_name, options, options.overrides(Path.cwd()), (), placeholder=True)
    table, overridden = load_prices(prices)
    data = estimate(spec, table, users, hours, overridden)
    if json_output:
        render.print_json(data)
    else:
        render.cost(spec, data)




@command(deploy_options=True)
def up(
    apps: AppsArg = None,
    all_apps: AllOpt = False,
    yes: YesOpt = False,
    message: MessageOpt = None,
    accept_risk: AcceptRiskOpt = None,
    unset: Annotated[list[str] | None, typer.Option(
        "--unset", help="Remove a setting from the stack config (e.g. domain); repeatable.")
    ] = None,
    no_verify: NoVerifyOpt = False,
    unpin: Annotated[bool, typer.Option(
        "--unpin", help="End a rollback: deploy the current source again, all traffic to it.")
    ] = False,
    skip_checks: Annotated[bool, typer.Option(
        "--skip-checks", help="Skip the preflight (credentials, APIs, backend, Docker), e.g. "
        "in CI where it was checked once.")] = False,
    wait_timeout: WaitOpt = 300,
    poll_interval: PollOpt = 10,
    changed: Annotated[bool, typer.Option(
        "--changed", help="Skip an app whose image tag and settings are those of its last "
        "release (CI on every push).")] = False,
    parallel: ParallelOpt = 4,
    fail_fast: FailFastOpt = False,
    json_output: JsonOpt = False,
    *,
    options: DeployOptions,
) -> None:
    """Deploy the app(s); the options given are saved to each stack config once it succeeded."""
    overrides = options.overrides(Path.cwd())
    unsets = (*(unset or ()), *(("pin",) if unpin else ()))
    settings: dict[str, Any] = {
        "yes": yes, "message": message, "verify": not no_verify, "skip_checks": skip_checks,
        "wait": (wait_timeout, poll_interval), "changed_only": changed,
        "accept_risk": accept_risk}
    if not several(apps, all_apps):
        deploy_app(one(apps), options, overrides, unsets, json_output=json_output, **settings)
        return
    from stx_pulumi.ops.fleet import BuildSlot, local_docker

    refuse_path(options)
    check_wait(wait_timeout, poll_interval)
    slot = BuildSlot() if local_docker(os.environ) else None

    def work(run: "Run") -> None:
        outcome = run_up(run.arg, replace(options, env=run.env), overrides, unsets, quiet=True,
                         build_turn=slot.take() if slot else None, stop=run.stopping,
                         **settings)
        fill(run, outcome.result)
        if outcome.verification is not None:
            verified(run, outcome.verification)

    run_fleet("up", apps, all_apps, options.env, work, parallel=parallel,
              fail_fast=fail_fast, json_output=json_output, again=" --yes" if yes else "",
              check=lambda run: load_spec_for(run.arg, replace(options, env=run.env),
                                              overrides, unsets))


@command(deploy_options=True)
def preview(
    apps: AppsArg = None,
    all_apps: AllOpt = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show property-level changes.")] = False,
    parallel: ParallelOpt = 4,
    json_output: JsonOpt = False,
    *,
    options: DeployOptions,
) -> None:
    """Show what `up` would change; options apply to this preview only, nothing is written."""
    overrides = options.overrides(Path.cwd())
    if not several(apps, all_apps):
        show(_preview(one(apps), options, overrides, diff, quiet=json_output), json_output)
        return
    refuse_path(options)
    run_fleet("preview", apps, all_apps, options.env, lambda run: fill(run, _preview(
        run.arg, replace(options, env=run.env), overrides, diff, quiet=True)),
        parallel=parallel, json_output=json_output, check=lambda run: load_spec_for(
            run.arg, replace(options, env=run.env), overrides, ()))


def _preview(app_name: str | None, options: DeployOptions, overrides: dict[str, Any],
             diff: bool, quiet: bool) -> Any:
    spec, ws = load_spec_for(app_name, options, overrides, ())
    for warning in spec.warnings:
        render.warning(warning)
    for window in spec.windows:
        render.info(f"event {window.describe()}: pending")
    engine, progress = open_engine(ws, f"preview {spec.stack}", quiet=quiet, diff=diff)
    from stx_pulumi.ops.deploy import preview_build

    build = preview_build(spec, ws, engine, render)
    with progress:
        return engine.preview(spec, build, diff=diff)


@command()
def refresh(apps: AppsArg = None, all_apps: AllOpt = False, env: EnvOpt = None,
            parallel: ParallelOpt = 4, json_output: JsonOpt = False) -> None:
    """Read the real state of the stack's resources from the cloud into the stack state."""
    if not several(apps, all_apps):
        show(_refresh(*stack_ref(one(apps), env), quiet=json_output), json_output)
        return
    run_fleet("refresh", apps, all_apps, env, lambda run: fill(run, _refresh(
        *stack_ref(run.arg, run.env), quiet=True)), parallel=parallel,
        json_output=json_output, deployed=True)


def _refresh(ws: "Workspace", stack: str, quiet: bool) -> "OperationResult":
    engine, progress = open_engine(ws, f"refresh {stack}", quiet=quiet)
    with progress:
        return engine.refresh(stack)


@command()
def destroy(
    apps: AppsArg = None,
    all_apps: AllOpt = False,
    env: EnvOpt = None,
    yes: YesOpt = False,
    unprotect: Annotated[bool, typer.Option(
        "--unprotect", help="Lift deletion protection first (needed for a protected env).")
    ] = False,
    remove: Annotated[bool, typer.Option(
        "--remove", help="Also delete the stack and its config file.")] = False,
    message: MessageOpt = None,
    parallel: ParallelOpt = 4,
    fail_fast: FailFastOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Delete every cloud resource of the stack(s): nothing left running, nothing paid."""
    if not several(apps, all_apps):
        ws, stack = stack_ref(one(apps), env)
        if not yes and not interactive():
            raise InputError(f"destroy of {stack} needs confirmation: pass --yes")
        show(_destroy(ws, stack, unprotect, remove, json_output, confirm=not yes,
                      message=message),
              json_output)
        return
    if not yes:
        raise InputError("destroy of several apps needs --yes (each one's resources are "
                         "deleted, nothing asks again)")
    run_fleet("destroy", apps, all_apps, env, lambda run: fill(run, _destroy(
        *stack_ref(run.arg, run.env), unprotect, remove, quiet=True, confirm=False,
        message=message)),
        parallel=parallel, fail_fast=fail_fast, json_output=json_output, deployed=True,
        again=" --yes" + (" --unprotect" if unprotect else "") + (" --remove" if remove
                                                                   else ""))


def _destroy(ws: "Workspace", stack: str, unprotect: bool, remove: bool, quiet: bool,
             confirm: bool, message: str | None = None) -> "OperationResult":
    """A protected stack (so its deployed state says) only with --unprotect, which lifts the
    protection first; `confirm`: the stack's name typed at the prompt."""
    from stx_pulumi.model.names import split_stack_name

    engine, progress = open_engine(ws, f"destroy {stack}", quiet=quiet)
    protected = engine.protection(stack)  # from the state: the stack file may say otherwise
    if protected and not unprotect:
        raise InputError(f"{stack} is protected (deletion protection on in its deployed "
                         "state): pass --unprotect to lift it and destroy")
    if confirm and typer.prompt(f"Type the stack name ({stack}) to destroy it") != stack:
        raise InputError(f"destroy of {stack} cancelled: the name did not match")
    with progress:
        if protected:
            app_, env_ = split_stack_name(stack)
            spec, _ = load_spec_for(app_, DeployOptions(env=env_), {"stx:protected": False}, ())
            engine.unprotect(spec)
        return engine.destroy(stack, remove=remove, message=message)


@command()
def outputs(
    apps: AppsArg = None,
    all_apps: AllOpt = False,
    env: EnvOpt = None,
    all_envs: Annotated[bool, typer.Option(
        "--all-envs", help="In every env (with APPs: theirs; else every stack).")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Show the stack outputs of the last deployment (URL, image, scaling...)."""
    if not several(apps, all_apps) and not all_envs:
        ws, stack = stack_ref(one(apps), env)
        engine, _ = open_engine(ws, quiet=True)
        values = engine.outputs(stack)
        if json_output:
            render.print_json(values)
        else:
            render.outputs_table(render.ordered_outputs(values))
        return
    _many_outputs(apps or [], all_apps, env, all_envs, json_output)


def _many_outputs(apps: list[str], all_apps: bool, env: str | None, all_envs: bool,
                  json_output: bool) -> None:
    """The outputs of several stacks, one after another (each is one engine call)."""
    from stx_pulumi.cli.options import env_name
    from stx_pulumi.model.names import split_stack_name
    from stx_pulumi.ops.fleet import select
    from stx_pulumi.workspace import locate_workspace

    if all_envs and env is not None:
        raise InputError("--all-envs: not with --env")
    ws = locate_workspace(Path.cwd(), os.environ)
    engine, _ = open_engine(ws, quiet=True)
    names = sorted(engine.stack_names())
    if all_envs:
        wanted = set(select(apps, all_apps or not apps, [split_stack_name(n)[0] for n in names]))
        stacks = [n for n in names if split_stack_name(n)[0] in wanted]
    else:
        env = env_name(env, ws)
        stacks = [f"{app}.{env}" for app in select(
            apps, all_apps, [a for a, e in map(split_stack_name, names) if e == env])]
    values = {stack: engine.outputs(stack) for stack in stacks}
    if json_output:
        render.print_json({"stacks": values})
        return
    for stack, outputs in values.items():
        render.stdout().print(f"[bold]{stack}[/]")
        render.outputs_table(render.ordered_outputs(outputs))


@command(deploy_options=True)
def doctor(app_name: AppArg = None, json_output: JsonOpt = False, *,
           options: DeployOptions) -> None:
    """Is this machine ready to deploy? Tools, credentials, APIs, backend, secrets, the spec."""
    from stx_pulumi.model.checks import FAIL
    from stx_pulumi.ops.doctor import app_checks, prerequisites
    from stx_pulumi.workspace import locate_workspace

    cwd = Path.cwd()
    spec = ws = error = None
    if app_name or (cwd / "Dockerfile").is_file():
        try:
            spec, ws = load_spec_for(app_name, options, options.overrides(cwd), (),
                                     placeholder=True)
        except InputError as err:
            error = err
    ws = ws or locate_workspace(cwd, os.environ)
    env = os.environ if not options.project else {**os.environ,
                                                    "GOOGLE_CLOUD_PROJECT": options.project}
    checks = prerequisites(ws, spec, env)
    failed_prerequisite = any(c.status == FAIL for c in checks)
    spec_checks = app_checks(spec, error)
    checks += spec_checks
    if json_output:
        render.print_json({"checks": [c.__dict__ for c in checks],
                           "result": "failed" if any(c.status == FAIL for c in checks)
                           else "passed"})
    else:
        render.checks_table("doctor", checks)
    if any(c.status == FAIL for c in spec_checks):
        raise typer.Exit(2)
    if failed_prerequisite:
        raise typer.Exit(3)


@command()
def verify(
    apps: AppsArg = None,
    all_apps: AllOpt = False,
    env: EnvOpt = None,
    wait_timeout: WaitOpt = 300,
    poll_interval: PollOpt = 10,
    parallel: ParallelOpt = 4,
    json_output: JsonOpt = False,
) -> None:
    """Check the deployed app(s): health, /, /html/, Streamlit, custom domain, revision."""
    check_wait(wait_timeout, poll_interval)
    if not several(apps, all_apps):
        outputs, report = _verify_deployed(*stack_ref(one(apps), env), wait_timeout,
                                           poll_interval)
        if json_output:
            render.print_json(report.as_json())
        else:
            render.verification(report)
        fail_verification(report, outputs)
        return

    def work(run: "Run") -> None:
        from stx_pulumi.model.outputs import url_text

        run.outputs, report = _verify_deployed(*stack_ref(run.arg, run.env), wait_timeout,
                                               poll_interval, run.stopping)
        run.url = url_text(run.outputs)
        verified(run, report)

    run_fleet("verify", apps, all_apps, env, work, parallel=parallel,
              json_output=json_output, deployed=True)


def _verify_deployed(ws: "Workspace", stack: str, wait_timeout: float, poll_interval: float,
                     stop: threading.Event | None = None
                     ) -> tuple[dict[str, Any], "Verification"]:
    from stx_pulumi.ops.deploy import verify as verify_outputs

    engine, _ = open_engine(ws, quiet=True)
    outputs = engine.outputs(stack)
    return outputs, verify_outputs(stack, outputs, (wait_timeout, poll_interval), render, stop)


@command()
def logs(
    app_name: AppArg = None,
    env: EnvOpt = None,
    since: Annotated[str, typer.Option("--since", help="How far back: 30m, 1h, 2d.")] = "1h",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines "
                                         "until Ctrl-C.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """The service's recent log lines (every book's), errors highlighted; no gcloud needed."""
    from stx_pulumi.cloud import google
    from stx_pulumi.model.events import clock
    from stx_pulumi.ops import logs as use

    start = clock() - use.since(since)
    ws, stack = stack_ref(app_name, env)
    engine, _ = open_engine(ws, quiet=True)
    project, services = use.services(stack, engine.outputs(stack))
    seen = False
    for entries in use.read(google.required(os.environ), project, services, start, follow):
        seen = seen or bool(entries)
        if json_output:
            for entry in entries:
                render.print_json(entry)
        else:
            render.log_lines(entries, several=len(services) > 1)
    if not seen:  # never a silent empty answer
        render.info(f"nothing was logged by {', '.join(services)} since "
                    f"{start:%Y-%m-%d %H:%M} UTC (--since {since.strip()})")


@command()
def cancel(app_name: AppArg = None, env: EnvOpt = None) -> None:
    """Remove a stale lock left by an interrupted update of the stack."""
    ws, stack = stack_ref(app_name, env)
    engine, _ = open_engine(ws, quiet=True)
    if engine.cancel(stack):
        render.info(f"{stack}: lock removed; run `stx-pulumi refresh` to reconcile the state")
    else:
        render.info(f"{stack}: no update is in progress, nothing to cancel")

