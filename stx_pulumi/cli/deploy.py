"""Deploying one app: plan, cost, doctor, up, preview, refresh, destroy, outputs, verify,
cancel. Each command builds the spec, calls the engine (or the offline plan), renders."""

import os
import re
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from stx_pulumi import render
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
    confirm_protected,
    interactive,
    load_spec_for,
    open_engine,
    stack_ref,
)
from stx_pulumi.errors import InputError, shown
from stx_pulumi.model.spec import Build

LOGS_DAYS = 30  # the _Default log bucket's retention (Cloud Logging docs, "Routing and storage")


@command(deploy_options=True)
def plan(apps: AppsArg = None, all_apps: AllOpt = False, json_output: JsonOpt = False, *,
         options: DeployOptions) -> None:
    """Show the resources `up` would create, offline: no Pulumi CLI, Docker or cloud needed."""
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


def _plan(app_name: str | None, options: DeployOptions) -> tuple[Any, dict[str, Any]]:
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
    plans, codes = [], []
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




def _refusals(spec: Any, deployed: Any, yes: bool) -> None:
    """What a deployed stack makes an `up` refuse without --yes: another container port, or
    services it would delete."""
    if deployed.port and deployed.port != spec.port and not yes:
        raise InputError(f"the container port changes from {deployed.port} to {spec.port} "
                         f"({spec.serve_mode}, as the Dockerfile or --serve-mode/--port now "
                         "say): the service would be served on the new port; pass --yes to "
                         "go ahead")
    gone = sorted(set(deployed.services) - {svc.name for svc in spec.services})
    if gone and not yes:
        raise InputError(f"this update deletes the service(s) {', '.join(gone)} (no longer in "
                         "the stack's books or app): their URLs stop answering; pass --yes to "
                         "go ahead")


def _preflight(engine: Any, spec: Any, reading: Any, resolved: Any) -> None:
    """The checks this `up` needs, concurrently, while the state is read (`reading`): no
    Docker when the tag is already deployed (a scale-only change builds nothing) or Cloud
    Build builds it (`resolved`: the spec with its builder decided)."""
    from stx_pulumi.model.checks import PASS, SKIP, Check
    from stx_pulumi.ops.doctor import docker_check, require

    def docker() -> Check:
        if resolved.result().builder == "cloud":
            return Check("docker", SKIP, "the cloud builder needs no Docker")
        if reading.result().image_tag == spec.image_tag:
            return Check("docker", SKIP, f"nothing to build: {spec.image_tag} is deployed")
        return docker_check(os.environ)

    require(engine.ws, spec, os.environ, docker=docker, pulumi=lambda: Check(
        "pulumi", PASS, f"Pulumi CLI {engine.command.version}"))


def _builder(spec: Any, deployed: Any) -> Build:
    """`auto` decided: the builder of what is deployed when nothing is to be built (a
    scale-only change or a pin), else local when a Docker daemon answers, else cloud."""
    from stx_pulumi.model.checks import PASS
    from stx_pulumi.model.rules import upload_problem
    from stx_pulumi.ops.doctor import docker_check

    if spec.builder != "auto":
        return Build.of(spec)
    if spec.pin is not None or deployed.built(spec.image_tag):
        cloud_made = set(spec.build_base_names) <= deployed.resources
        return Build("cloud" if cloud_made else "local")
    if deployed.image_tag == spec.image_tag or docker_check(os.environ).status == PASS:
        return Build("local")
    problem = upload_problem(spec)
    if problem:
        raise InputError(f"{problem} (no Docker daemon answers, so the image would be built "
                         "in Cloud Build)")
    render.info("no Docker daemon answers: the image is built in Cloud Build (`--builder "
                "local` insists on Docker)")
    return Build("cloud")


def _cloud_build(engine: Any, spec: Any, deployed: Any, progress: Any) -> Build:
    """The build of the image Cloud Build made of the spec's tag: built now (the registry and build
    account made first on the first build), or the one already built and serving."""
    from stx_pulumi.cloud import cloudbuild, google
    from stx_pulumi.source import docker_context

    built = deployed.built(spec.image_tag)
    if built:
        render.info(f"{spec.image_tag} was built in Cloud Build already: nothing to build")
        return Build("cloud", built)
    if not set(spec.build_base_names) <= deployed.resources:
        render.info("first cloud build: the registry, staging bucket and build account are "
                    "made first")
        with progress:
            engine.prepare_build(spec)
        progress.rows.clear()  # the update that follows has its own
    client = google.required(os.environ)
    files = docker_context(spec.source)
    render.info(f"uploading {spec.context or spec.source} ({len(files)} files) to "
                f"gs://{spec.staging_bucket}")
    return Build("cloud", cloudbuild.build(client, spec, files, on_progress=render.info))


def _check_wait(wait_timeout: float, poll_interval: float) -> None:
    if not 1 <= wait_timeout <= 3600:
        raise InputError(f"--wait-timeout: must be between 1 and 3600 seconds, got "
                         f"{wait_timeout:g}")
    if not 1 <= poll_interval <= 300:
        raise InputError(f"--poll-interval: must be between 1 and 300 seconds, got "
                         f"{poll_interval:g}")


def _passphrase_notice(engine: Any) -> None:
    if engine.new_passphrase:
        render.info(f"generated a secrets passphrase in {engine.passphrase_file()}: back it "
                    "up; without it this workspace's secrets cannot be decrypted")


def _show(result: Any, json_output: bool, report: Any = None) -> None:
    if json_output:
        data = result.as_json()
        if report is not None:
            data["verify"] = report.as_json()
        render.print_json(data)
    else:
        render.operation(result)
    if report is not None:
        if not json_output:
            render.verification(report)
        _fail_verification(report, result.outputs)


def _fail_verification(report: Any, outputs: dict[str, Any]) -> None:
    """Exit 5 with what failed and where the logs are (the JSON, if any, is already out)."""
    from stx_pulumi.errors import VerificationError
    from stx_pulumi.ops.verify import logs_command_for

    if report.failed:
        failed = [f"verification of {r.stack} failed: {', '.join(c.name for c in r.failed)}"
                  for r in report.reports.values() if r.failed]
        render.error(VerificationError("; ".join(failed),
                                       hint=f"logs: {logs_command_for(report, outputs)}"))
        raise typer.Exit(VerificationError.exit_code)


def _verify(stack: str, outputs: dict[str, Any], wait_timeout: float,
            poll_interval: float) -> Any:
    from stx_pulumi.errors import StxError
    from stx_pulumi.ops.verify import verify_stack

    try:
        return verify_stack(stack, outputs, timeout_s=wait_timeout, interval_s=poll_interval,
                            environ=os.environ, on_progress=render.info)
    except KeyboardInterrupt:
        raise StxError(f"interrupted during the verification of {stack}: the deployment "
                       "itself is done", hint=f"check it later with `stx-pulumi verify "
                       f"{_app_env(stack)}`") from None


def _app_env(stack: str) -> str:
    from stx_pulumi.model.names import split_stack_name

    app, env = split_stack_name(stack)
    return f"{app} --env {env}"


NoVerifyOpt = Annotated[bool, typer.Option(
    "--no-verify", help="Skip the post-deploy checks (health, /, /html/, Streamlit, revision).")]
WaitOpt = Annotated[float, typer.Option(
    "--wait-timeout", help="Seconds to wait for the service to answer its health check.")]
PollOpt = Annotated[float, typer.Option(
    "--poll-interval", help="Seconds between health checks while waiting.")]


@command(deploy_options=True)
def up(
    apps: AppsArg = None,
    all_apps: AllOpt = False,
    yes: YesOpt = False,
    message: MessageOpt = None,
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
    settings = {"yes": yes, "message": message, "verify": not no_verify,
                "skip_checks": skip_checks, "wait": (wait_timeout, poll_interval),
                "changed_only": changed}
    if not several(apps, all_apps):
        deploy_app(one(apps), options, overrides, unsets, json_output=json_output, **settings)
        return
    from stx_pulumi.ops.fleet import BuildSlot, local_docker

    refuse_path(options)
    _check_wait(wait_timeout, poll_interval)
    slot = BuildSlot() if local_docker(os.environ) else None

    def work(run: Any) -> None:
        _, result, report = run_up(run.arg, replace(options, env=run.env), overrides, unsets,
                                   quiet=True, build_turn=slot.take() if slot else None,
                                   **settings)
        fill(run, result)
        if report is not None:
            _verified(run, report)

    run_fleet("up", apps, all_apps, options.env, work, parallel=parallel,
              fail_fast=fail_fast, json_output=json_output, again=" --yes" if yes else "",
              check=lambda run: load_spec_for(run.arg, replace(options, env=run.env),
                                              overrides, unsets))


def deploy_app(app_name: str | None, options: DeployOptions, overrides: dict[str, Any],
               unset: Any, *, json_output: bool = False, **settings: Any) -> None:
    """`up` of one app with these settings on top of the stack's, then its result shown
    (also `event add --up`, `rollback`, `promote`)."""
    _, result, report = run_up(app_name, options, overrides, unset, quiet=json_output,
                               **settings)
    _show(result, json_output, report)


def run_up(app_name: str | None, options: DeployOptions, overrides: dict[str, Any],
           unset: Any, *, yes: bool, message: str | None = None, verify: bool = True,
           skip_checks: bool = False, wait: tuple[float, float] = (300, 10),
           quiet: bool = False, kind: str = "up", build_turn: Any = None,
           changed_only: bool = False) -> tuple[Any, Any, Any]:
    """Checks, the update, then the settings written, then verification: (spec, result,
    verification or None). `changed_only`: nothing done when the last release deployed this
    image tag with these settings."""
    from stx_pulumi.model.jobs import needs_cleaning
    from stx_pulumi.workspace import config_updates, drop_setting, moved_settings, unset_keys

    _check_wait(*wait)
    spec, ws = load_spec_for(app_name, options, overrides, unset)
    for warning in spec.warnings:
        render.warning(warning)
    config = ws.stack_config(spec.stack)
    if spec.protected:
        confirm_protected(spec.stack, yes, "update")
    moved = moved_settings(spec, config)
    if moved and not yes:
        raise InputError(f"{moved}: pass --yes to go ahead")
    updates, notices = config_updates(spec, overrides, config, ws)
    engine, progress = open_engine(ws, f"up {spec.stack}", quiet=quiet)
    with ThreadPoolExecutor(max_workers=2) as pool:  # the state read and the checks at once
        reading = pool.submit(engine.deployed, spec.stack)
        resolved: Future[Build] = Future()
        checking = None if skip_checks else pool.submit(_preflight, engine, spec, reading,
                                                        resolved)
        build = Build.of(spec)
        try:  # the checks wait for the builder: it is decided whatever happens here
            deployed = reading.result()
            _refusals(spec, deployed, yes)
            build = _builder(spec, deployed)
        finally:
            resolved.set_result(build)
        if checking is not None:  # exit 3 before the engine starts: nothing half-created
            checking.result()
    skipped = engine.unchanged(spec) if changed_only and not updates else None
    if skipped is not None:
        if build_turn is not None:
            build_turn.give_back()
        render.info(f"{spec.stack}: unchanged (image {spec.image_tag} and settings as "
                    "deployed): nothing to do")
        return spec, skipped, None
    _check_names(engine, ws, spec, deployed)
    for notice in ceiling_changes(spec, deployed.ceilings):
        render.info(notice)
    if needs_cleaning(spec, deployed.resources):
        _clean_rights(spec, deployed)
    engine.prepare()
    _passphrase_notice(engine)
    for notice in notices:
        render.info(notice)
    if spec.pin is not None:
        render.info(f"pinned to release {spec.pin.release} by a rollback: the source is not "
                    "built (`up --unpin` deploys it)")
    elif build.builder == "cloud":
        build = _cloud_build(engine, spec, deployed, progress)
    else:
        render.info(f"building {ws.relative(spec.source)} as {spec.image_tag}")
    token = os.environ.get("CLOUDFLARE_API_TOKEN") if spec.cloudflare_dns else None
    removed = [k for k in unset_keys(unset) if drop_setting(dict(config), k)]
    removed += [f"stx:events.{name}" for name in spec.expired]  # windows over
    with progress:
        result = engine.up(spec, build, updates, removed, message, token, kind, build_turn)
    for notice in result.notices:
        render.info(notice)
    report = _verify(spec.stack, result.outputs, *wait) if verify else None
    if report is not None:
        _record(engine, spec, result.outputs, report)
    return spec, result, report


def _check_names(engine: Any, ws: Any, spec: Any, deployed: Any) -> None:
    """Before a service is made: no other stack of the backend (or stack file of the
    workspace) claims its name. `up course-intro` would otherwise take over book intro of
    app course, and `--env course-dev` of app hello app hello-course's dev service."""
    from stx_pulumi.model.names import claimed_names, split_stack_name

    mine = claimed_names(spec.app, spec.env, [svc.book for svc in spec.books])
    new = set(mine) - set(deployed.services)
    if not new:
        return
    for stack in sorted({*ws.stack_names(), *engine.stack_names()} - {spec.stack}):
        app, env = split_stack_name(stack)
        books = (ws.stack_config(stack).get("stx:books") or {}) if (
            ws.stack_file(stack).is_file()) else {}
        for name, owner in claimed_names(app, env, books if isinstance(books, dict) else {}
                                         ).items():
            if name in new:
                raise InputError(f"the Cloud Run service {name} of {spec.stack} would also be "
                                 f"{owner}: names must be unique in the backend; choose "
                                 "another app, book or env name")


def ceiling_changes(spec: Any, ceilings: Mapping[str, int | None]) -> list[str]:
    """Where this update moves a deployed service's revision ceiling (the peak of its base and
    windows above Cloud Run's default of 100): that makes a new revision, so say so."""
    from stx_pulumi.model.capacity import revision_ceiling

    notes = []
    for svc in spec.services:
        if svc.name not in ceilings:
            continue
        old, new = ceilings[svc.name], revision_ceiling(spec.peak(svc))
        if old != new:
            notes.append(f"{svc.name}: the revision ceiling goes from {old or 'the default 100'}"
                         f" to {new or 'the default 100'} (the most its base and windows ask):"
                         " this up makes a new revision")
    return notes


def _clean_rights(spec: Any, deployed: Any) -> None:
    """An earlier release's event windows left conditional bindings on the services that
    nothing tracks (its create failed after writing them): removed before the update, so the
    provider's later policy changes on these services work again."""
    from stx_pulumi.cloud import google
    from stx_pulumi.errors import GoogleError
    from stx_pulumi.model import jobs

    services = {*deployed.services, *(svc.name for svc in spec.services)}
    try:
        cleaned = jobs.clean(spec, google.connect(os.environ), services)
    except GoogleError as err:
        render.warning(f"could not look for the conditional rights an earlier release left on "
                       f"{', '.join(sorted(services))} ({err}): `stx-pulumi event test` "
                       "shows them")
        return
    for service in cleaned:
        render.info(f"{service}: removed the conditional scheduler rights an earlier release "
                    "left on it")


def _record(engine: Any, spec: Any, outputs: dict[str, Any], report: Any) -> None:
    """Keep whether this release verified (a good release is deployed and verified), and tag
    its image rel-<n> so the registry's cleanup keeps what rollback offers."""
    from stx_pulumi.cloud import google
    from stx_pulumi.errors import GoogleError, StxError

    records = outputs.get("releases") or []
    if not records:
        return
    latest = records[-1]
    try:
        engine.record_verification(spec.stack, int(latest["n"]), not report.failed,
                                   {int(r["n"]) for r in records if "n" in r})
    except StxError as err:
        render.warning(f"release {latest['n']}: verification not recorded: {err.message}")
    if spec.pin is not None or not latest.get("digest"):
        return  # a rollback's image is tagged already, a promoted one by its copy
    try:
        google.connect(os.environ).tag_image(str(latest["digest"]), f"rel-{latest['n']}")
    except GoogleError as err:
        render.warning(f"release {latest['n']}: image not tagged rel-{latest['n']} ({err}); "
                       "the registry's cleanup may delete it")


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
        _show(_preview(one(apps), options, overrides, diff, quiet=json_output), json_output)
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
    build = Build.of(spec)
    if spec.builder != "local":  # what is built where depends on what is deployed
        deployed = engine.deployed(spec.stack)
        build = _builder(spec, deployed)
        if build.builder == "cloud":
            build = Build("cloud", deployed.built(spec.image_tag))
    if spec.pin is None and not build.image:
        where = " in Cloud Build" if build.builder == "cloud" else ""
        render.info(f"building {ws.relative(spec.source)} as {spec.image_tag}{where}")
    with progress:
        return engine.preview(spec, build, diff=diff)


@command()
def refresh(apps: AppsArg = None, all_apps: AllOpt = False, env: EnvOpt = None,
            parallel: ParallelOpt = 4, json_output: JsonOpt = False) -> None:
    """Read the real state of the stack's resources from the cloud into the stack state."""
    if not several(apps, all_apps):
        _show(_refresh(*stack_ref(one(apps), env), quiet=json_output), json_output)
        return
    run_fleet("refresh", apps, all_apps, env, lambda run: fill(run, _refresh(
        *stack_ref(run.arg, run.env), quiet=True)), parallel=parallel,
        json_output=json_output, deployed=True)


def _refresh(ws: Any, stack: str, quiet: bool) -> Any:
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
    parallel: ParallelOpt = 4,
    fail_fast: FailFastOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Delete every cloud resource of the stack(s): nothing left running, nothing paid."""
    if not several(apps, all_apps):
        ws, stack = stack_ref(one(apps), env)
        if not yes and not interactive():
            raise InputError(f"destroy of {stack} needs confirmation: pass --yes")
        _show(_destroy(ws, stack, unprotect, remove, json_output, confirm=not yes),
              json_output)
        return
    if not yes:
        raise InputError("destroy of several apps needs --yes (each one's resources are "
                         "deleted, nothing asks again)")
    run_fleet("destroy", apps, all_apps, env, lambda run: fill(run, _destroy(
        *stack_ref(run.arg, run.env), unprotect, remove, quiet=True, confirm=False)),
        parallel=parallel, fail_fast=fail_fast, json_output=json_output, deployed=True,
        again=" --yes" + (" --unprotect" if unprotect else "") + (" --remove" if remove
                                                                   else ""))


def _destroy(ws: Any, stack: str, unprotect: bool, remove: bool, quiet: bool,
             confirm: bool) -> Any:
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
        return engine.destroy(stack, remove=remove)


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
    _check_wait(wait_timeout, poll_interval)
    if not several(apps, all_apps):
        outputs, report = _verify_deployed(*stack_ref(one(apps), env), wait_timeout,
                                           poll_interval)
        if json_output:
            render.print_json(report.as_json())
        else:
            render.verification(report)
        _fail_verification(report, outputs)
        return

    def work(run: Any) -> None:
        from stx_pulumi.model.outputs import url_text

        run.outputs, report = _verify_deployed(*stack_ref(run.arg, run.env), wait_timeout,
                                               poll_interval)
        run.url = url_text(run.outputs)
        _verified(run, report)

    run_fleet("verify", apps, all_apps, env, work, parallel=parallel,
              json_output=json_output, deployed=True)


def _verified(run: Any, report: Any) -> None:
    """A fleet app's verification: kept in its result, exit 5 when a check failed."""
    from stx_pulumi.errors import VerificationError
    from stx_pulumi.ops.verify import logs_command_for

    run.extra["verify"] = report.as_json()
    failed = [c.name for r in report.reports.values() for c in r.failed]
    if failed:
        raise VerificationError(f"verification failed: {', '.join(failed)}",
                                hint=f"logs: {logs_command_for(report, run.outputs)}")


def _verify_deployed(ws: Any, stack: str, wait_timeout: float,
                     poll_interval: float) -> tuple[dict[str, Any], Any]:
    engine, _ = open_engine(ws, quiet=True)
    outputs = engine.outputs(stack)
    return outputs, _verify(stack, outputs, wait_timeout, poll_interval)


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
    import time
    from datetime import timedelta

    from stx_pulumi.cloud import google
    from stx_pulumi.errors import GoogleError, PrerequisiteError
    from stx_pulumi.model.events import clock

    match = re.fullmatch(r"([0-9]{1,6})\s*([mhd])", since.strip())
    if not match or int(match.group(1)) == 0:
        raise InputError(f"--since: {shown(since)} is not a duration such as 30m, 1h or 2d")
    unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    if timedelta(**{unit: int(match.group(1))}) > timedelta(days=LOGS_DAYS):
        raise InputError(f"--since: at most {LOGS_DAYS}d (Cloud Logging keeps a service's "
                         f"logs {LOGS_DAYS} days by default), got {since.strip()}")
    ws, stack = stack_ref(app_name, env)
    engine, _ = open_engine(ws, quiet=True)
    outputs = engine.outputs(stack)
    services = [v["service"] for v in (outputs.get("books") or {}).values()] or [
        outputs.get("service")]
    if not outputs.get("project") or not all(services):
        raise InputError(f"{stack} is not deployed: no service to read logs of")
    client = google.required(os.environ)
    start = clock() - timedelta(**{unit: int(match.group(1))})
    cursor = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    seen: set[str] = set()
    while True:
        try:
            entries = client.log_entries(str(outputs["project"]), services, cursor)
        except GoogleError as err:
            raise PrerequisiteError(f"Cloud Logging: {err}", hint="enable the Cloud Logging "
                                    "API; you need roles/logging.viewer") from None
        fresh = [e for e in entries if e.get("insertId") not in seen]
        seen.update(str(e.get("insertId")) for e in fresh)
        if json_output:
            for entry in fresh:
                render.print_json(entry)
        else:
            render.log_lines(fresh, several=len(services) > 1)
        if not follow:
            return
        cursor = max([cursor, *(str(e.get("timestamp")) for e in fresh)])
        time.sleep(5)


@command()
def cancel(app_name: AppArg = None, env: EnvOpt = None) -> None:
    """Remove a stale lock left by an interrupted update of the stack."""
    ws, stack = stack_ref(app_name, env)
    engine, _ = open_engine(ws, quiet=True)
    if engine.cancel(stack):
        render.info(f"{stack}: lock removed; run `stx-pulumi refresh` to reconcile the state")
    else:
        render.info(f"{stack}: no update is in progress, nothing to cancel")

