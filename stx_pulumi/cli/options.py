"""What every command shares: the Typer app, the deployment options, the command decorator
that turns StxError into an exit code, and the helpers that find the stack and the engine.

Importing the CLI must stay cheap: Pulumi is imported inside the commands that need it.
"""

import functools
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from stx_pulumi import __version__, render
from stx_pulumi.errors import InputError, StxError, shown
from stx_pulumi.model.settings import SETTINGS, Setting

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
    """The deployment options shared by plan, up, preview and cost: --env, and the value of
    each registry setting's option as typed (`given`: setting key → value; unset ones left
    out)."""

    env: str | None = None
    given: Mapping[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path | None:
        value = self.given.get("stx:path")
        return Path(value) if value is not None else None

    @property
    def project(self) -> str | None:
        value = self.given.get("gcp:project")
        return str(value) if value is not None else None

    def overrides(self, cwd: Path) -> dict[str, Any]:
        """The options as stack config keys (unset options are left out); `--max 20` sets
        the app's value, `--max intro=100` book intro's (stx:books.intro.maxInstances)."""
        values: dict[str, Any] = {}
        books: dict[str, dict[str, str]] = {}
        for setting in OPTION_SETTINGS:
            value = self.given.get(setting.key)
            if value is None or value == ():
                continue
            option = str(setting.option)
            if isinstance(value, (str, Path)) and not str(value).strip():
                raise InputError(f"{option}: empty: give a value or leave the option out")
            if setting.key == "stx:path":
                values[setting.key] = str((cwd / value).resolve())
            elif setting.key == "stx:books":
                for name, folder in _pairs(option, str(setting.metavar), value).items():
                    books.setdefault(name, {})["folder"] = folder
            elif setting.repeat:
                values[setting.key] = _pairs(option, str(setting.metavar), value)
            elif setting.listing:
                values[setting.key] = ",".join(dict.fromkeys(v.strip() for v in value))
            elif setting.per_book_option:
                _per_book(setting, value, values, books)
            else:
                values[setting.key] = value
        if books:
            values["stx:books"] = books
        return values


def _per_book(setting: Setting, items: Sequence[str], values: dict[str, Any],
              books: dict[str, dict[str, str]]) -> None:
    """`--max 20` (the app's value) and `--max intro=100` (book intro's), each once."""
    seen: set[str] = set()
    for item in items:
        name, sep, value = item.rpartition("=")
        if sep and not name:
            raise InputError(f"{setting.option}: {shown(item)} is not VALUE or BOOK=VALUE")
        if name in seen:
            raise InputError(f"{setting.option}: given twice for "
                             + (f"book {name}" if name else "the app"))
        seen.add(name)
        if sep:
            books.setdefault(name, {})[str(setting.book)] = value
        else:
            values[setting.key] = value


def _pairs(option: str, form: str, items: Sequence[str]) -> dict[str, str]:
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


# The deployment options, made from the settings registry (model.settings): one per setting
# that has an option, in the registry's order, its help the setting's help and default.
OPTION_SETTINGS = tuple(s for s in SETTINGS if s.option)


def _annotation(setting: Setting) -> Any:
    """The option's Python type: repeatable ones (a map, or `[BOOK=]VALUE`) are lists."""
    if setting.repeat or setting.per_book_option or setting.listing:
        return list[str] | None
    if "/" in str(setting.option):
        return bool | None
    return {"stx:port": int | None, "stx:path": Path | None}.get(setting.key, str | None)


def _deploy_param(setting: Setting) -> inspect.Parameter:
    default = "" if setting.shown in ("none", "") else f" Default: {setting.shown}."
    extra: dict[str, Any] = {"metavar": setting.metavar} if setting.metavar else {}
    if "/" in str(setting.option):
        extra["show_default"] = False
    option = typer.Option(str(setting.option), help=setting.help + default,
                          rich_help_panel=DEPLOY_PANEL, **extra)
    return inspect.Parameter(setting.param, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[_annotation(setting), option])


_ENV_PARAM = inspect.Parameter("env", inspect.Parameter.KEYWORD_ONLY, default=None,
                               annotation=Annotated[str | None, typer.Option(
                                   "--env", "-e", rich_help_panel=DEPLOY_PANEL,
                                   help="Environment (stack <app>.<env>). Default: STX_ENV, "
                                   "else the workspace's current env, else dev.")])
_DEPLOY_PARAMS = [_ENV_PARAM, *(_deploy_param(s) for s in OPTION_SETTINGS)]
_KEYS = {s.param: s.key for s in OPTION_SETTINGS}


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
                env = params.pop("env")
                given = {_KEYS[p.name]: params.pop(p.name) for p in _DEPLOY_PARAMS[1:]}
                params["options"] = DeployOptions(env, {
                    k: tuple(v) if isinstance(v, list) else v for k, v in given.items()
                    if v is not None})
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
                  unset: Sequence[str], placeholder: bool = False, yes: bool = False
                  ) -> tuple["AppSpec", "Workspace"]:
    """The spec of APP; an app folder with no .dockerignore gets a StreamTeX one when the
    user says so (`yes`: --yes; else a confirmation on a terminal; never unasked in CI)."""
    from stx_pulumi.workspace import load_spec

    return load_spec(app_name, env=options.env, overrides=overrides, cwd=Path.cwd(),
                     environ=os.environ, unset=tuple(unset),
                     allow_placeholder_project=placeholder,
                     offer=lambda path, found: _write_dockerignore(path, found, yes))


def _write_dockerignore(path: Path, found: tuple[str, ...], yes: bool) -> bool:
    left_out = ", ".join(found)
    if yes or (interactive() and typer.confirm(
            f"{path} has no .dockerignore: {left_out} would go into every build. Write a "
            "StreamTeX .dockerignore there?", default=True)):
        render.info(f"writing {path / '.dockerignore'}: {left_out} stay out of the image")
        return True
    if not interactive():
        render.info(f"{path} has no .dockerignore: {left_out} go into every build (`up "
                    "--yes`, or a yes on a terminal, writes a StreamTeX one)")
    return False

