"""What every command shares: the Typer app, the deployment options, the command decorator
that turns StxError into an exit code, and the helpers that find the stack and the engine.

Importing the CLI must stay cheap: Pulumi is imported inside the commands that need it.
"""

import functools
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from stx_pulumi import __version__, render
from stx_pulumi.errors import InputError, StxError, shown

if TYPE_CHECKING:
    from stx_pulumi.engine.stacks import Engine
    from stx_pulumi.model.spec import AppSpec
    from stx_pulumi.workspace import Workspace


class _OneLineErrors(TyperGroup):
    """Usage errors (an unknown option, a value of the wrong type) as one `error:` line and a
    hint, like every other error, instead of a usage block; exit 2."""

    def main(self, *args: Any, standalone_mode: bool = True,
             **kwargs: Any) -> Any:
        try:
            _ascii_numbers(kwargs.get("args", args[0] if args else None))
            code = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
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


def _ascii_numbers(argv: Any) -> None:
    """Numbers only in ASCII digits: Python reads '١٠' as 10 and '²' breaks it, so a value
    made only of other digits is refused (exit 2) before any option is parsed."""
    for word in argv if argv is not None else sys.argv[1:]:
        if isinstance(word, str) and word.isdigit() and not word.isascii():
            raise typer.BadParameter(f"{shown(word)}: write numbers with the digits 0-9")


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
    min: tuple[str, ...] = ()  # the options a book may set for itself: N or BOOK=N
    max: tuple[str, ...] = ()
    cpu: tuple[str, ...] = ()
    memory: tuple[str, ...] = ()
    concurrency: tuple[str, ...] = ()
    timeout: tuple[str, ...] = ()
    domain: tuple[str, ...] = ()
    serve_mode: str | None = None
    port: int | None = None
    public: bool | None = None
    cloudflare_zone: str | None = None
    folder: str | None = None
    book: tuple[str, ...] = ()
    env_var: tuple[str, ...] = ()
    secret_env: tuple[str, ...] = ()
    builder: str | None = None
    build_region: str | None = None

    def overrides(self, cwd: Path) -> dict[str, Any]:
        """The options as stack config keys (unset options are left out); `--max 20` sets
        the app's value, `--max intro=100` book intro's (stx:books.intro.maxInstances)."""
        for field in ("path", "project", "region", "serve_mode", "cloudflare_zone", "folder",
                      "builder", "build_region"):
            if getattr(self, field) is not None and not str(getattr(self, field)).strip():
                raise InputError(f"--{field.replace('_', '-')}: empty: give a value or leave "
                                 "the option out")
        books: dict[str, dict[str, str]] = {}
        for name, folder in _pairs("--book", "NAME=FOLDER", self.book).items():
            books.setdefault(name, {})["folder"] = folder
        values: dict[str, Any] = {
            "stx:path": str((cwd / self.path).resolve()) if self.path else None,
            "gcp:project": self.project,
            "gcp:region": self.region,
            "stx:serveMode": self.serve_mode,
            "stx:port": self.port,
            "stx:public": self.public,
            "stx:cloudflareZoneId": self.cloudflare_zone,
            "stx:builder": self.builder,
            "stx:buildRegion": self.build_region,
            "stx:folder": self.folder,
            "stx:envVars": _pairs("--env-var", "K=V", self.env_var),
            "stx:secretEnv": _pairs("--secret-env", "VAR=SECRET[:VERSION]", self.secret_env),
        }
        for field, (key, book_key) in PER_BOOK.items():
            seen: set[str] = set()
            for item in getattr(self, field):
                name, sep, value = item.rpartition("=")
                if sep and not name:
                    raise InputError(f"--{field}: {shown(item)} is not VALUE or BOOK=VALUE")
                if name in seen:
                    raise InputError(f"--{field}: given twice for "
                                     + (f"book {name}" if name else "the app"))
                seen.add(name)
                if sep:
                    books.setdefault(name, {})[book_key] = value
                else:
                    values[key] = value
        values["stx:books"] = books
        return {k: v for k, v in values.items() if v is not None and v != {}}


# Options a book may set for itself (`--max intro=100`): field → (app key, key in the book).
PER_BOOK = {"min": ("stx:minInstances", "minInstances"),
            "max": ("stx:maxInstances", "maxInstances"), "cpu": ("stx:cpu", "cpu"),
            "memory": ("stx:memory", "memory"), "concurrency": ("stx:concurrency", "concurrency"),
            "timeout": ("stx:timeout", "timeout"), "domain": ("stx:domain", "domain")}


def _pairs(option: str, form: str, items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"{option}: {shown(item)} is not {form}")
        if name in out:  # never "the last one wins" without a word
            raise InputError(f"{option}: {shown(name)} is given twice ({shown(out[name])} and "
                             f"{shown(value)})")
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
        ("min", Annotated[list[str] | None, _opt(
            "--min", metavar="[BOOK=]N", help="Minimum instances; 0 scales to zero. "
            "Default: 0.")], None),
        ("max", Annotated[list[str] | None, _opt(
            "--max", metavar="[BOOK=]N", help="Maximum instances, 1-1000. Default: 10.")],
         None),
        ("cpu", Annotated[list[str] | None, _opt(
            "--cpu", metavar="[BOOK=]N", help="vCPU per instance: 1, 2, 4, 6, 8. Default: 1.")],
         None),
        ("memory", Annotated[list[str] | None, _opt(
            "--memory", metavar="[BOOK=]SIZE", help="Memory per instance (512Mi, 2Gi...). "
            "Default: 512Mi.")], None),
        ("concurrency", Annotated[list[str] | None, _opt(
            "--concurrency", metavar="[BOOK=]N", help="Requests per instance, 1-1000. "
            "Default: 80.")], None),
        ("timeout", Annotated[list[str] | None, _opt(
            "--timeout", metavar="[BOOK=]S", help="Request timeout in seconds, 1-3600. "
            "Default: 3600.")], None),
        ("serve_mode", Annotated[str | None, _opt(
            "--serve-mode", help="dual, static-only or streamlit-only. Default: the "
            "Dockerfile's STX_SERVE_MODE, else from its EXPOSE and Nginx.")], None),
        ("port", Annotated[int | None, _opt(
            "--port", help="Container port Cloud Run sends requests to. Default: 80 for "
            "dual/static-only, 8501 for streamlit-only.")], None),
        ("public", Annotated[bool | None, _opt(
            "--public/--private", help="Public access (allUsers → run.invoker). "
            "Default: public.", show_default=False)], None),
        ("domain", Annotated[list[str] | None, _opt(
            "--domain", metavar="[BOOK=]HOST", help="Custom domain (Cloud Run domain "
            "mapping).")], None),
        ("cloudflare_zone", Annotated[str | None, _opt(
            "--cloudflare-zone", help="Cloudflare zone id: create the domain's CNAME there "
            "(token: CLOUDFLARE_API_TOKEN).")], None),
        ("folder", Annotated[str | None, _opt(
            "--folder", help="FOLDER: the book's folder inside the build context, for a "
            "repository of books sharing one Dockerfile.")], None),
        ("book", Annotated[list[str] | None, _opt(
            "--book", metavar="NAME=FOLDER", help="A book of the build context, served by "
            "its own service <app>-NAME-<env> from the one image (repeatable). The options "
            "marked BOOK= set one book's value.")], None),
        ("builder", Annotated[str | None, _opt(
            "--builder", help="Where the image is built: local (this machine's Docker), cloud "
            "(Cloud Build, no Docker needed), auto: local when a Docker daemon answers, else "
            "cloud. Default: auto.")], None),
        ("build_region", Annotated[str | None, _opt(
            "--build-region", help="Where Cloud Build runs. Default: the Cloud Run region when "
            "every project may build there, else the nearest such region (some projects may "
            "build only in us-central1, us-west2, europe-west1, asia-east1, "
            "australia-southeast1, southamerica-east1).")], None),
        ("env_var", Annotated[list[str] | None, _opt(
            "--env-var", help="Extra environment variable K=V (repeatable).")], None),
        ("secret_env", Annotated[list[str] | None, _opt(
            "--secret-env", help="Env var from Secret Manager, VAR=SECRET[:VERSION] "
            "(repeatable).")], None),
    ]
]


_REPEATED = {"env_var", "secret_env", "book", *PER_BOOK}


def command(*names: str, deploy_options: bool = False, target: typer.Typer | None = None,
            **kwargs: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a command; add the shared deployment options; turn StxError into an exit code
    (and, with --json, into a JSON object on stdout too)."""

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        sig = inspect.signature(fn)
        own = [p for p in sig.parameters.values() if p.name != "options"]

        @functools.wraps(fn)
        def wrapper(**params: Any) -> Any:
            if deploy_options:
                values = {p.name: params.pop(p.name) for p in _DEPLOY_PARAMS}
                for name, value in values.items():
                    if isinstance(value, list) or (value is None and name in _REPEATED):
                        values[name] = tuple(value or ())
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



YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Skip confirmation prompts.")]
MessageOpt = Annotated[str | None, typer.Option(
    "--message", "-m", help="Why: recorded with the release and in the stack history.")]
EnvOpt = Annotated[str | None, typer.Option(
    "--env", "-e", help="Environment. Default: STX_ENV, else the workspace's current env.")]


def interactive() -> bool:
    """Whether a prompt can be answered: never inside a fleet (many apps at once), nor in CI,
    which may run with no stdin at all."""
    return render.REPORTER.get() is None and bool(sys.stdin and sys.stdin.isatty())


def confirm_protected(stack: str, yes: bool, action: str) -> None:
    """Protected stacks need --yes, or a yes at the prompt when interactive."""
    if yes:
        return
    if not interactive():
        raise InputError(f"{stack} is a protected env: pass --yes to {action} it "
                         "non-interactively")
    if not typer.confirm(f"{stack} is a protected env. {action.capitalize()} it?"):
        raise InputError(f"{action} of {stack} cancelled")


def stack_of(app_name: str | None, env: str | None) -> tuple["Workspace", str]:
    """(workspace, stack name) that APP and --env name, whether the stack exists or not."""
    from stx_pulumi.model.names import stack_name
    from stx_pulumi.workspace import locate_workspace, resolve_target

    cwd = Path.cwd()
    ws = locate_workspace(cwd, os.environ)
    env = env_name(env, ws)
    return ws, stack_name(resolve_target(app_name, cwd, ws, env).app, env)


def stack_ref(app_name: str | None, env: str | None) -> tuple["Workspace", str]:
    """(workspace, stack name) for commands about a stack that must already exist; its
    stack file is checked too, so a broken one is exit 2 naming the file."""
    ws, stack = stack_of(app_name, env)
    if not ws.exists:
        raise InputError(f"stack {stack} does not exist: there is no workspace at or above "
                         f"{Path.cwd()} nor in {ws.root}; deploy it with `stx-pulumi up` first")
    ws.stack_config(stack)
    return ws, stack


def env_name(env: str | None, ws: "Workspace") -> str:
    """--env (an empty one is an error, never "the current env"), else STX_ENV, else the
    workspace's current env."""
    from stx_pulumi.model.names import env_problem

    env = env if env is not None else os.environ.get("STX_ENV") or ws.current_env()
    if env_problem(env):
        raise InputError(str(env_problem(env)))
    return env


def open_engine(ws: "Workspace", operation: str | None = None, quiet: bool = False,
                diff: bool = False) -> tuple["Engine", render.Progress]:
    from stx_pulumi.engine.stacks import Engine

    progress = render.Progress(operation or "", diff=diff)
    engine = Engine(ws, os.environ, on_event=progress if operation else None)
    if not quiet:
        render.info(f"backend {engine.backend}")
    for notice in engine.notices:
        render.warning(notice)
    return engine, progress




def load_spec_for(app_name: str | None, options: DeployOptions, overrides: dict[str, Any],
          unset: Sequence[str], placeholder: bool = False
                  ) -> tuple["AppSpec", "Workspace"]:
    from stx_pulumi.workspace import load_spec

    return load_spec(app_name, env=options.env, overrides=overrides, cwd=Path.cwd(),
                     environ=os.environ, unset=tuple(unset),
                     allow_placeholder_project=placeholder)

