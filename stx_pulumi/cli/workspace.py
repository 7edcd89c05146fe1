"""The workspace: its stacks, its making (init), the Pulumi CLI it uses, its envs."""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stx_pulumi import render
from stx_pulumi.cli.options import (
    JsonOpt,
    YesOpt,
    app,
    command,
    env_name,
    interactive,
    open_engine,
)
from stx_pulumi.errors import InputError

if TYPE_CHECKING:
    from stx_pulumi.engine.state import StackInfo
    from stx_pulumi.workspace import Workspace


@command()
def stacks(json_output: JsonOpt = False) -> None:
    """List every stack in the backend: app, env, last update, resources, URL."""
    from dataclasses import asdict

    from stx_pulumi.workspace import locate_workspace

    ws = locate_workspace(Path.cwd(), os.environ)
    engine, _ = open_engine(ws, quiet=True)
    infos = engine.stacks()
    if json_output:
        render.print_json({"backend": engine.backend, "stacks": [asdict(i) for i in infos]})
    else:
        render.stacks_table(engine.backend, infos)


@command()
def status(
    app_name: Annotated[str | None, typer.Argument(
        metavar="[APP]", help="Only this app. Default: every app.", show_default=False)] = None,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only this env.")] = None,
    no_check: Annotated[bool, typer.Option(
        "--no-check", help="Skip the live health check of each URL.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Every app and env: URL, scaling in force, image, last update, health, next event."""
    from stx_pulumi.model import events
    from stx_pulumi.ops import status as board
    from stx_pulumi.workspace import locate_workspace

    ws = locate_workspace(Path.cwd(), os.environ)
    engine, _ = open_engine(ws, quiet=True)
    now = events.clock()
    checks = board.HealthChecks()

    def wanted(info: Any) -> bool:
        return (app_name is None or info.app == app_name) and (env is None or info.env == env)

    def probe(info: "StackInfo") -> None:
        if wanted(info):
            checks.start(info.stack, info.outputs)

    infos = engine.stacks(on_each=None if no_check else probe)
    rows = [board.row(info, _config_or_empty(ws, info.stack), now)
            for info in sorted(infos, key=lambda i: (i.app, i.env)) if wanted(info)]
    checks.fill(rows)
    if not no_check:
        board.firing(rows, os.environ)
    if json_output:
        render.print_json({"backend": engine.backend, "stacks": rows})
    else:
        render.status_table(engine.backend, rows)


def _config_or_empty(ws: "Workspace", stack: str) -> dict[str, Any]:
    """A stack's config for its status row; a broken stack file does not hide the board (its
    own commands name it)."""
    try:
        return ws.stack_config(stack) if ws.stack_file(stack).is_file() else {}
    except InputError:
        return {}


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
    fresh_app = (Path.cwd() / "Dockerfile").is_file() and not Path(".dockerignore").exists()
    ws = create_workspace(Path.cwd(), backend)
    if fresh_app:
        render.info("wrote .dockerignore: the app's secrets, environments and caches and this "
                    "workspace's files stay out of the image")
    if secrets_provider:
        ws.save_settings(secretsProvider=secrets_provider)
    render.info(f"workspace {ws.root}: backend {ws.backend_url(os.environ)}, secrets "
                f"{secrets_provider or 'passphrase'}")


@command("install-cli")
def install_cli() -> None:
    """Install the Pulumi CLI matching the Pulumi SDK into stx-pulumi's folder (needs internet)."""
    from stx_pulumi.engine.cli import install_cli as install
    from stx_pulumi.engine.cli import sdk_version

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
            typer.echo(env_name(None, locate_workspace(Path.cwd(), os.environ)))
        except InputError as err:
            render.error(err)
            raise typer.Exit(err.exit_code) from None


@command("use", target=env_app)
def env_use(name: Annotated[str, typer.Argument(help="The env to switch to.")]) -> None:
    """Switch the workspace's current env."""
    from stx_pulumi.model.names import env_problem
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
    engine, _ = open_engine(ws, quiet=True)
    envs = sorted({s.env for s in engine.stacks()} | {ws.current_env()})
    if json_output:
        render.print_json({"current": ws.current_env(), "envs": envs})
    else:
        for name in envs:
            typer.echo(("* " if name == ws.current_env() else "  ") + name)



@command()
def setup(
    project: Annotated[str | None, typer.Option(
        "--project", help="Google Cloud project. Default: GOOGLE_CLOUD_PROJECT, "
        ".stx-deploy.env, the workspace default, gcloud's project, else a list to pick from.")
    ] = None,
    region: Annotated[str | None, typer.Option(
        "--region", help="Cloud Run region. Default: .stx-deploy.env's, the workspace "
        "default, else europe-west1.")] = None,
    yes: YesOpt = False,
    save_env: Annotated[bool, typer.Option(
        "--save-env", help="Also write GCP_PROJECT_ID and GCP_REGION to ./.stx-deploy.env "
        "(read by StreamTeX's tools).")] = False,
    json_output: JsonOpt = False,
) -> None:
    """First-time setup: credentials, project, billing, APIs, quota.

    Idempotent; unattended with --project and --yes."""
    from stx_pulumi.model.checks import FAIL
    from stx_pulumi.ops import setup as first_time
    from stx_pulumi.workspace import locate_workspace

    cwd = Path.cwd()
    result = first_time.run(
        locate_workspace(cwd, os.environ), cwd, os.environ, project=project, region=region,
        save_env=save_env, choose=_choose_project,
        confirm=lambda missing: yes or (interactive() and typer.confirm(
            f"Enable {', '.join(missing)}?", default=True)),
        on_wait=lambda s: render.info(f"enabling APIs: waiting for Google, {s:.0f}s"))
    following = "stx-pulumi up ." if (cwd / "Dockerfile").is_file() else (
        "stx-pulumi up APP_FOLDER (the folder of your course's Dockerfile)")
    failed = [c for c in result.steps if c.status == FAIL]  # a quota the stacks outgrow
    if json_output:
        render.print_json({"project": result.project, "region": result.region,
                           "steps": [c.__dict__ for c in result.steps],
                           "changed": result.changed, "next": following})
    else:
        render.checks_table("setup", result.steps)
        for change in result.changed:
            render.info(f"changed: {change}")
        if not result.changed and not failed:
            render.info("nothing to change: this machine and project are ready")
        render.info(f"next: {following}" if not failed else
                    f"not ready: {failed[0].detail} ({failed[0].fix})")
    if failed:
        raise typer.Exit(3)


def _choose_project(found: list[tuple[str, str]]) -> str:
    """A project picked from a numbered list (interactive only)."""
    if not interactive():
        names = ", ".join(p for p, _ in found[:10]) + (" ..." if len(found) > 10 else "")
        raise InputError(f"--project: no project known on this machine; pass one of: {names}")
    for number, (project, name) in enumerate(found, 1):
        typer.echo(f"  {number}. {project}" + (f" ({name})" if name != project else ""))
    choice: int = typer.prompt("Project number", type=int)
    if not 1 <= choice <= len(found):
        raise InputError(f"project number: {choice} is not between 1 and {len(found)}")
    return found[choice - 1][0]
