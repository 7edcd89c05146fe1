"""The `stx-pulumi` command line: thin commands that build a spec, call one function, render.

Importing this module must stay cheap: Pulumi is imported inside the commands that need it.
"""

import functools
import inspect
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from stx_pulumi import __version__, render
from stx_pulumi.errors import InputError, StxError

app = typer.Typer(
    name="stx-pulumi",
    help="Put StreamTeX apps on Google Cloud Run with Pulumi: one command up, one command down.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
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


def command(*, deploy_options: bool = False, **kwargs: Any) -> Callable[[Callable], Callable]:
    """Register a command; add the shared deployment options; turn StxError into an exit code."""

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
            except StxError as err:
                if _state["debug"]:
                    traceback.print_exc()
                render.error(err)
                raise typer.Exit(err.exit_code) from None

        params = own + (_DEPLOY_PARAMS if deploy_options else [])
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        return app.command(**kwargs)(wrapper)

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
    from stx_pulumi.plan import run_plan
    from stx_pulumi.workspace import load_spec

    cwd = Path.cwd()
    spec, _ = load_spec(app_name, env=options.env, overrides=options.overrides(cwd), cwd=cwd,
                        environ=os.environ, allow_placeholder_project=True)
    result = run_plan(spec)
    if json_output:
        render.print_json(render.plan_json(result))
    else:
        render.plan_tree(result)


def main() -> None:
    """Console-script entry point."""
    app()
