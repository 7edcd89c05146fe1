"""The `stx-pulumi` command line: thin commands that build a spec, call one function, render.

Importing this module must stay cheap: Pulumi is imported inside the commands that need it.
"""

import functools
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from stx_pulumi import __version__, render
from stx_pulumi.errors import InputError, StxError


class _OneLineErrors(TyperGroup):
    """Usage errors (an unknown option, a value of the wrong type) as one `error:` line and a
    hint, like every other error, instead of a usage block; exit 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as err:  # typer's (vendored click's) usage errors
            ctx = getattr(err, "ctx", None)
            path = ctx.command_path if ctx else "stx-pulumi"
            message = err.format_message() if hasattr(err, "format_message") else str(err)
            render.error(InputError(message, hint=f"`{path} -h` shows the options"))
            code = getattr(err, "exit_code", 2)
        except typer.Abort:
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    name="stx-pulumi",
    help="Put StreamTeX apps on Google Cloud Run with Pulumi: one command up, one command down.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
DEPLOY_PANEL = "Deployment options (override the stack config for this run)"
_state = {"debug": False}


@dataclass(frozen=True)
class DeployOptions:
    """The deployment options shared by plan, up, preview and cost."""

    env: str | None = None
    path: Path | None = None
    project: str | None = None
    region: str | None = None
    min: int | None = None
    max: int | None = None
    cpu: int | None = None
    memory: str | None = None
    concurrency: int | None = None
    timeout: int | None = None
    serve_mode: str | None = None
    public: bool | None = None
    domain: str | None = None
    cloudflare_zone: str | None = None
    env_var: tuple[str, ...] = ()
    secret_env: tuple[str, ...] = ()

    def overrides(self, cwd: Path) -> dict[str, Any]:
        """The options as stack config keys (unset options are left out)."""
        values = {
            "stx:path": str((cwd / self.path).resolve()) if self.path else None,
            "gcp:project": self.project,
            "gcp:region": self.region,
            "stx:minInstances": self.min,
            "stx:maxInstances": self.max,
            "stx:cpu": self.cpu,
            "stx:memory": self.memory,
            "stx:concurrency": self.concurrency,
            "stx:timeout": self.timeout,
            "stx:serveMode": self.serve_mode,
            "stx:public": self.public,
            "stx:domain": self.domain,
            "stx:cloudflareZoneId": self.cloudflare_zone,
            "stx:envVars": _pairs("--env-var", "K=V", self.env_var),
            "stx:secretEnv": _pairs("--secret-env", "VAR=SECRET[:VERSION]", self.secret_env),
        }
        return {k: v for k, v in values.items() if v is not None and v != {}}


def _pairs(option: str, form: str, items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"{option}: {item!r} is not {form}")
        out[name] = value
    return out


def _opt(*names: str, help: str, **kw: Any) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=DEPLOY_PANEL, **kw)


_DEPLOY_PARAMS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
    for name, ann, default in [
        ("env", Annotated[str | None, _opt(
            "--env", "-e", help="Environment (stack <app>.<env>). Default: STX_ENV, else the "
            "workspace's current env, else dev.")], None),
        ("path", Annotated[Path | None, _opt(
            "--path", help="App folder (Docker build context). Default: APP when it is a "
            "folder, else stx:path.")], None),
        ("project", Annotated[str | None, _opt(
            "--project", help="Google Cloud project. Default: gcp:project, "
            "GOOGLE_CLOUD_PROJECT, then gcloud's project.")], None),
        ("region", Annotated[str | None, _opt(
            "--region", help="Cloud Run region. Default: europe-west1.")], None),
        ("min", Annotated[int | None, _opt(
            "--min", help="Minimum instances; 0 scales to zero. Default: 0.")], None),
        ("max", Annotated[int | None, _opt(
            "--max", help="Maximum instances, 1-1000. Default: 10.")], None),
        ("cpu", Annotated[int | None, _opt(
            "--cpu", help="vCPU per instance: 1, 2, 4, 6, 8. Default: 1.")], None),
        ("memory", Annotated[str | None, _opt(
            "--memory", help="Memory per instance (512Mi, 2Gi...). Default: 512Mi.")], None),
        ("concurrency", Annotated[int | None, _opt(
            "--concurrency", help="Requests per instance, 1-1000. Default: 80.")], None),
        ("timeout", Annotated[int | None, _opt(
            "--timeout", help="Request timeout in seconds, 1-3600. Default: 3600.")], None),
        ("serve_mode", Annotated[str | None, _opt(
            "--serve-mode", help="dual, static-only or streamlit-only. Default: the "
            "Dockerfile's STX_SERVE_MODE, else dual.")], None),
        ("public", Annotated[bool | None, _opt(
            "--public/--private", help="Public access (allUsers → run.invoker). "
            "Default: public.", show_default=False)], None),
        ("domain", Annotated[str | None, _opt(
            "--domain", help="Custom domain (Cloud Run domain mapping).")], None),
        ("cloudflare_zone", Annotated[str | None, _opt(
            "--cloudflare-zone", help="Cloudflare zone id: create the domain's CNAME there "
            "(token: CLOUDFLARE_API_TOKEN).")], None),
        ("env_var", Annotated[list[str] | None, _opt(
            "--env-var", help="Extra environment variable K=V (repeatable).")], None),
        ("secret_env", Annotated[list[str] | None, _opt(
            "--secret-env", help="Env var from Secret Manager, VAR=SECRET[:VERSION] "
            "(repeatable).")], None),
    ]
]


def command(*names: str, deploy_options: bool = False, target: typer.Typer | None = None,
            **kwargs: Any) -> Callable[[Callable], Callable]:
    """Register a command; add the shared deployment options; turn StxError into an exit code
    (and, with --json, into a JSON object on stdout too)."""

    def decorate(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        own = [p for p in sig.parameters.values() if p.name != "options"]

        @functools.wraps(fn)
        def wrapper(**params: Any) -> Any:
            if deploy_options:
                values = {p.name: params.pop(p.name) for p in _DEPLOY_PARAMS}
                values["env_var"] = tuple(values["env_var"] or ())
                values["secret_env"] = tuple(values["secret_env"] or ())
                params["options"] = DeployOptions(**values)
            try:
                return fn(**params)
            except typer.Exit:
                raise
            except KeyboardInterrupt:
                err = StxError(f"interrupted: `{fn.__name__.replace('_', ' ')}` stopped before "
                               "it finished", hint="run it again; `stx-pulumi outputs` shows "
                               "what is deployed")
                render.error(err)
                raise typer.Exit(err.exit_code) from None
            except Exception as err:  # one or two lines, never a traceback unless --debug
                if _state["debug"]:
                    traceback.print_exc()
                if not isinstance(err, StxError):
                    err = StxError(f"unexpected error: {type(err).__name__}: {err}",
                                   hint="rerun with `stx-pulumi --debug ...` for the traceback")
                render.error(err)
                if params.get("json_output"):
                    render.print_json({"result": "failed", "error": err.message,
                                       "exit_code": err.exit_code})
                raise typer.Exit(err.exit_code) from None

        params = own + (_DEPLOY_PARAMS if deploy_options else [])
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        return (target or app).command(*names, **kwargs)(wrapper)

    return decorate


AppArg = Annotated[str | None, typer.Argument(
    metavar="[APP]", help="App name, or path to the app folder. Default: the current folder.",
    show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug
    if version:
        typer.echo(f"stx-pulumi {__version__}")
        raise typer.Exit()


@command(deploy_options=True)
def plan(app_name: AppArg = None, json_output: JsonOpt = False, *,
         options: DeployOptions) -> None:
    """Show the resources `up` would create, offline: no Pulumi CLI, Docker or cloud needed."""
    from stx_pulumi.cost import estimate
    from stx_pulumi.plan import run_plan
    from stx_pulumi.prices import Prices

    spec, _ = _load(app_name, options, options.overrides(Path.cwd()), (), placeholder=True)
    result = run_plan(spec)
    costs = estimate(spec, Prices())
    if json_output:
        render.print_json({**render.plan_json(result), "cost": costs})
    else:
        render.plan_tree(result)
        render.cost(spec, costs)


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
    """Estimate what an event costs, and the idle cost; without --users/--hours, a table for
    1,000 students."""
    from stx_pulumi.cost import estimate
    from stx_pulumi.prices import load_prices

    if users is not None and users < 1:
        raise InputError(f"--users: must be 1 or more, got {users}")
    if hours is not None and not 0 < hours <= 24 * 31:
        raise InputError(f"--hours: must be more than 0 and at most 744, got {hours}")
    spec, _ = _load(app_name, options, options.overrides(Path.cwd()), (), placeholder=True)
    table, overridden = load_prices(prices)
    data = estimate(spec, table, users, hours, overridden)
    if json_output:
        render.print_json(data)
    else:
        render.cost(spec, data)


YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Skip confirmation prompts.")]
EnvOpt = Annotated[str | None, typer.Option(
    "--env", "-e", help="Environment. Default: STX_ENV, else the workspace's current env.")]


def _interactive() -> bool:
    return bool(sys.stdin and sys.stdin.isatty())  # CI may run with no stdin at all


def _confirm_protected(stack: str, yes: bool, action: str) -> None:
    """Protected stacks need --yes, or a yes at the prompt when interactive."""
    if yes:
        return
    if not _interactive():
        raise InputError(f"{stack} is a protected env: pass --yes to {action} it "
                         "non-interactively")
    if not typer.confirm(f"{stack} is a protected env. {action.capitalize()} it?"):
        raise InputError(f"{action} of {stack} cancelled")


def _stack_ref(app_name: str | None, env: str | None) -> tuple[Any, str]:
    """(workspace, stack name) for commands about a stack that must already exist; its
    stack file is checked too, so a broken one is exit 2 naming the file."""
    from stx_pulumi.spec import stack_name
    from stx_pulumi.workspace import locate_workspace, resolve_target

    cwd = Path.cwd()
    ws = locate_workspace(cwd, os.environ)
    env = _env_name(env, ws)
    stack = stack_name(resolve_target(app_name, cwd, ws, env).app, env)
    if not ws.exists:
        raise InputError(f"stack {stack} does not exist: there is no workspace at or above "
                         f"{cwd} nor in {ws.root}; deploy it with `stx-pulumi up` first")
    ws.stack_config(stack)
    return ws, stack


def _env_name(env: str | None, ws: Any) -> str:
    """--env (an empty one is an error, never "the current env"), else STX_ENV, else the
    workspace's current env."""
    from stx_pulumi.spec import env_problem

    env = env if env is not None else os.environ.get("STX_ENV") or ws.current_env()
    if env_problem(env):
        raise InputError(str(env_problem(env)))
    return env


def _engine(ws: Any, operation: str | None = None, quiet: bool = False,
            diff: bool = False) -> tuple[Any, Any]:
    from stx_pulumi.engine import Engine

    progress = render.Progress(operation or "", diff=diff)
    engine = Engine(ws, os.environ, on_event=progress if operation else None)
    if not quiet:
        render.info(f"backend {engine.backend}")
    for notice in engine.notices:
        render.warning(notice)
    return engine, progress


def _preflight(engine: Any, spec: Any) -> None:
    """The checks this `up` needs, concurrently: no Docker when the tag is already deployed
    (a scale-only change builds nothing)."""
    from stx_pulumi.checks import PASS, SKIP, Check
    from stx_pulumi.doctor import docker_check, require

    def docker() -> Check:
        if engine.deployed_image_tag(spec.stack) == spec.image_tag:
            return Check("docker", SKIP, f"nothing to build: {spec.image_tag} is deployed")
        return docker_check(os.environ)

    require(engine.ws, spec, os.environ, docker=docker, pulumi=lambda: Check(
        "pulumi", PASS, f"Pulumi CLI {engine.command.version}"))


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
    from stx_pulumi.verify import logs_command

    if report.failed:
        names = ", ".join(c.name for c in report.failed)
        render.error(VerificationError(f"verification of {report.stack} failed: {names}",
                                       hint=f"logs: {logs_command(outputs)}"))
        raise typer.Exit(VerificationError.exit_code)


def _verify(stack: str, outputs: dict[str, Any], wait_timeout: float,
            poll_interval: float) -> Any:
    from stx_pulumi.errors import StxError
    from stx_pulumi.verify import verify

    try:
        return verify(stack, outputs, serve_mode=str(outputs.get("serve_mode") or "dual"),
                      public=outputs.get("public") is not False, timeout_s=wait_timeout,
                      interval_s=poll_interval, environ=os.environ, on_progress=render.info)
    except KeyboardInterrupt:
        raise StxError(f"interrupted during the verification of {stack}: the deployment "
                       "itself is done", hint=f"check it later with `stx-pulumi verify "
                       f"{_app_env(stack)}`") from None


def _app_env(stack: str) -> str:
    from stx_pulumi.spec import split_stack_name

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
    app_name: AppArg = None,
    yes: YesOpt = False,
    message: Annotated[str | None, typer.Option(
        "--message", "-m", help="Reason recorded in the stack history.")] = None,
    unset: Annotated[list[str] | None, typer.Option(
        "--unset", help="Remove a setting from the stack config (e.g. domain); repeatable.")
    ] = None,
    no_verify: NoVerifyOpt = False,
    skip_checks: Annotated[bool, typer.Option(
        "--skip-checks", help="Skip the preflight (credentials, APIs, backend, Docker), e.g. "
        "in CI where it was checked once.")] = False,
    wait_timeout: WaitOpt = 300,
    poll_interval: PollOpt = 10,
    json_output: JsonOpt = False,
    *,
    options: DeployOptions,
) -> None:
    """Deploy the app; the given options are written into the stack config only when the
    update succeeded."""
    from stx_pulumi.workspace import config_updates, moved_settings, unset_keys

    _check_wait(wait_timeout, poll_interval)
    overrides = options.overrides(Path.cwd())
    spec, ws = _load(app_name, options, overrides, unset or ())
    config = ws.stack_config(spec.stack)
    if spec.protected:
        _confirm_protected(spec.stack, yes, "update")
    moved = moved_settings(spec, config)
    if moved and not yes:
        raise InputError(f"{moved}: pass --yes to go ahead")
    updates, notices = config_updates(spec, overrides, config, ws)
    engine, progress = _engine(ws, f"up {spec.stack}", quiet=json_output)
    if not skip_checks:  # exit 3 before the engine starts: nothing half-created
        _preflight(engine, spec)
    engine.prepare()
    _passphrase_notice(engine)
    for notice in notices:
        render.info(notice)
    render.info(f"building {ws.relative(spec.source)} as {spec.image_tag}")
    token = os.environ.get("CLOUDFLARE_API_TOKEN") if spec.cloudflare_dns else None
    with progress:
        result = engine.up(spec, updates, [k for k in unset_keys(unset or ()) if k in config],
                           message, token)
    for notice in result.notices:
        render.info(notice)
    report = None if no_verify else _verify(spec.stack, result.outputs, wait_timeout,
                                            poll_interval)
    _show(result, json_output, report)


@command(deploy_options=True)
def preview(
    app_name: AppArg = None,
    diff: Annotated[bool, typer.Option("--diff", help="Show property-level changes.")] = False,
    json_output: JsonOpt = False,
    *,
    options: DeployOptions,
) -> None:
    """Show what `up` would change; options apply to this preview only, nothing is written."""
    spec, ws = _load(app_name, options, options.overrides(Path.cwd()), ())
    engine, progress = _engine(ws, f"preview {spec.stack}", quiet=json_output, diff=diff)
    render.info(f"building {ws.relative(spec.source)} as {spec.image_tag}")
    with progress:
        result = engine.preview(spec, diff=diff)
    _show(result, json_output)


@command()
def refresh(app_name: AppArg = None, env: EnvOpt = None, json_output: JsonOpt = False) -> None:
    """Read the real state of the stack's resources from the cloud into the stack state."""
    ws, stack = _stack_ref(app_name, env)
    engine, progress = _engine(ws, f"refresh {stack}", quiet=json_output)
    with progress:
        result = engine.refresh(stack)
    _show(result, json_output)


@command()
def destroy(
    app_name: AppArg = None,
    env: EnvOpt = None,
    yes: YesOpt = False,
    unprotect: Annotated[bool, typer.Option(
        "--unprotect", help="Lift deletion protection first (needed for a protected env).")
    ] = False,
    remove: Annotated[bool, typer.Option(
        "--remove", help="Also delete the stack and its config file.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Delete every cloud resource of the stack: nothing left running, nothing paid."""
    from stx_pulumi.spec import split_stack_name

    ws, stack = _stack_ref(app_name, env)
    app_, env_ = split_stack_name(stack)
    if not yes and not _interactive():
        raise InputError(f"destroy of {stack} needs confirmation: pass --yes")
    engine, progress = _engine(ws, f"destroy {stack}", quiet=json_output)
    protected = engine.protection(stack)  # from the state: the stack file may say otherwise
    if protected and not unprotect:
        raise InputError(f"{stack} is protected (deletion protection on in its deployed "
                         "state): pass --unprotect to lift it and destroy")
    if not yes and typer.prompt(f"Type the stack name ({stack}) to destroy it") != stack:
        raise InputError(f"destroy of {stack} cancelled: the name did not match")
    with progress:
        if protected:
            spec, _ = _load(app_, DeployOptions(env=env_), {"stx:protected": False}, ())
            engine.unprotect(spec)
        result = engine.destroy(stack, remove=remove)
    _show(result, json_output)


@command()
def outputs(app_name: AppArg = None, env: EnvOpt = None, json_output: JsonOpt = False) -> None:
    """Show the stack outputs of the last deployment (URL, image, scaling...)."""
    ws, stack = _stack_ref(app_name, env)
    engine, _ = _engine(ws, quiet=True)
    values = engine.outputs(stack)
    if json_output:
        render.print_json(values)
    else:
        render.outputs_table(render.ordered_outputs(values))


@command(deploy_options=True)
def doctor(app_name: AppArg = None, json_output: JsonOpt = False, *,
           options: DeployOptions) -> None:
    """Is this machine ready to deploy? Checks tools, credentials, APIs, backend, secrets and,
    with APP, the app's spec. Exit 2 when the spec is invalid, else 3 when a prerequisite
    fails."""
    from stx_pulumi.checks import FAIL
    from stx_pulumi.doctor import app_checks, prerequisites
    from stx_pulumi.workspace import locate_workspace

    cwd = Path.cwd()
    spec = ws = error = None
    if app_name or (cwd / "Dockerfile").is_file():
        try:
            spec, ws = _load(app_name, options, options.overrides(cwd), (), placeholder=True)
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
    app_name: AppArg = None,
    env: EnvOpt = None,
    wait_timeout: WaitOpt = 300,
    poll_interval: PollOpt = 10,
    json_output: JsonOpt = False,
) -> None:
    """Check the deployed app: health, /, /html/, Streamlit, custom domain, revision."""
    _check_wait(wait_timeout, poll_interval)
    ws, stack = _stack_ref(app_name, env)
    engine, _ = _engine(ws, quiet=True)
    outputs = engine.outputs(stack)
    report = _verify(stack, outputs, wait_timeout, poll_interval)
    if json_output:
        render.print_json(report.as_json())
    else:
        render.verification(report)
    _fail_verification(report, outputs)


@command()
def cancel(app_name: AppArg = None, env: EnvOpt = None) -> None:
    """Remove a stale lock left by an interrupted update of the stack."""
    ws, stack = _stack_ref(app_name, env)
    engine, _ = _engine(ws, quiet=True)
    if engine.cancel(stack):
        render.info(f"{stack}: lock removed; run `stx-pulumi refresh` to reconcile the state")
    else:
        render.info(f"{stack}: no update is in progress, nothing to cancel")


@command()
def stacks(json_output: JsonOpt = False) -> None:
    """List every stack in the backend: app, env, last update, resources, URL."""
    from dataclasses import asdict

    from stx_pulumi.workspace import locate_workspace

    ws = locate_workspace(Path.cwd(), os.environ)
    engine, _ = _engine(ws, quiet=True)
    infos = engine.stacks()
    if json_output:
        render.print_json({"backend": engine.backend, "stacks": [asdict(i) for i in infos]})
    else:
        render.stacks_table(engine.backend, infos)


@command()
def init(
    backend: Annotated[str | None, typer.Option(
        "--backend", help="State backend URL, e.g. gs://bucket/prefix (default: a local file "
        "backend in .pulumi-state/).")] = None,
    secrets_provider: Annotated[str | None, typer.Option(
        "--secrets-provider", help="Secrets provider for new stacks, e.g. gcpkms://... "
        "(default: passphrase).")] = None,
) -> None:
    """Make the current folder a deploy workspace (Pulumi.yaml, stacks/)."""
    from stx_pulumi.workspace import backend_problem, create_workspace, secrets_provider_problem

    for problem in (backend is not None and backend_problem(backend),
                    secrets_provider is not None and secrets_provider_problem(secrets_provider)):
        if problem:
            raise InputError(problem)
    ws = create_workspace(Path.cwd(), backend)
    if secrets_provider:
        ws.save_settings(secretsProvider=secrets_provider)
    render.info(f"workspace {ws.root}: backend {ws.backend_url(os.environ)}, secrets "
                f"{secrets_provider or 'passphrase'}")


@command("install-cli")
def install_cli() -> None:
    """Install the Pulumi CLI matching the installed Pulumi SDK into stx-pulumi's own folder
    (needs internet)."""
    from stx_pulumi.engine import install_cli as install
    from stx_pulumi.engine import sdk_version

    render.info(f"installing the Pulumi CLI {sdk_version()}...")
    render.info(f"installed {install(os.environ)}")


env_app = typer.Typer(help="Show or switch the current environment (dev, staging, prod...).",
                      invoke_without_command=True, no_args_is_help=False)
app.add_typer(env_app, name="env")


@env_app.callback()
def env_show(ctx: typer.Context) -> None:
    """Show the current env (used when --env is not given)."""
    if ctx.invoked_subcommand is None:
        from stx_pulumi.workspace import locate_workspace

        try:
            typer.echo(_env_name(None, locate_workspace(Path.cwd(), os.environ)))
        except InputError as err:
            render.error(err)
            raise typer.Exit(err.exit_code) from None


@command("use", target=env_app)
def env_use(name: Annotated[str, typer.Argument(help="The env to switch to.")]) -> None:
    """Switch the workspace's current env."""
    from stx_pulumi.spec import env_problem
    from stx_pulumi.workspace import create_workspace, locate_workspace

    if env_problem(name):
        raise InputError(str(env_problem(name)))
    ws = locate_workspace(Path.cwd(), os.environ)
    ws.settings()  # a broken settings file is exit 2, never overwritten
    (ws if ws.exists else create_workspace(ws.root)).save_settings(env=name)
    render.info(f"current env: {name}")


@command("list", target=env_app)
def env_list(json_output: JsonOpt = False) -> None:
    """List the envs that have stacks."""
    from stx_pulumi.workspace import locate_workspace

    ws = locate_workspace(Path.cwd(), os.environ)
    engine, _ = _engine(ws, quiet=True)
    envs = sorted({s.env for s in engine.stacks()} | {ws.current_env()})
    if json_output:
        render.print_json({"current": ws.current_env(), "envs": envs})
    else:
        for name in envs:
            typer.echo(("* " if name == ws.current_env() else "  ") + name)


def _load(app_name: str | None, options: DeployOptions, overrides: dict[str, Any],
          unset: Any, placeholder: bool = False) -> tuple[Any, Any]:
    from stx_pulumi.workspace import load_spec

    return load_spec(app_name, env=options.env, overrides=overrides, cwd=Path.cwd(),
                     environ=os.environ, unset=tuple(unset),
                     allow_placeholder_project=placeholder)


def main() -> None:
    """Console-script entry point. SIGTERM is an interrupt like Ctrl-C, and both reach the
    Pulumi CLI still running under us (so it stops cleanly), even when no terminal sent them
    to the whole process group, as in CI."""
    import signal
    import threading

    def interrupt(signum: int, frame: Any) -> None:
        _forward_to_children(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    threading.excepthook = _thread_exception
    app()


def _forward_to_children(signum: int) -> None:
    import signal

    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: a terminal's Ctrl-C reaches the children itself
        return
    me = str(os.getpid())
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == me:
                os.kill(int(stat.parent.name), signal.SIGINT)
        except (OSError, IndexError, ValueError):
            continue


def _thread_exception(args: Any) -> None:
    """A background thread (event stream, log reader) stopped by an interrupt says nothing
    unless --debug."""
    if _state["debug"]:
        traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback)
