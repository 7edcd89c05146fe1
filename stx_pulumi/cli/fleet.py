"""Several apps at once for the deploy commands: `APP...` or `--all`, `--parallel`,
`--fail-fast`. A command given one APP (or none) behaves as it always did; given more, its
one-app operation runs for each through `stx_pulumi.ops.fleet`, with a live line per app and a
summary table (or one JSON object) at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stx_pulumi import render
from stx_pulumi.errors import InputError

if TYPE_CHECKING:
    from stx_pulumi.engine.state import OperationResult
    from stx_pulumi.ops.fleet import Run
    from stx_pulumi.workspace import Workspace

AppsArg = Annotated[list[str] | None, typer.Argument(
    metavar="[APP]...", help="App name(s) or app folder(s). Default: the current folder. "
    "Several apps run side by side.", show_default=False)]
AllOpt = Annotated[bool, typer.Option(
    "--all", help="Every app with a stack in the env.")]
ParallelOpt = Annotated[int, typer.Option(
    "--parallel", help="With several apps: how many run at a time (image builds on a local "
    "Docker daemon take turns).")]
FailFastOpt = Annotated[bool, typer.Option(
    "--fail-fast", help="With several apps: start no new one after a failure.")]


def several(apps: list[str] | None, all_apps: bool) -> bool:
    return all_apps or len(apps or ()) > 1


def one(apps: list[str] | None) -> str | None:
    return apps[0] if apps else None


def run_fleet(operation: str, apps: list[str] | None, all_apps: bool, env: str | None,
              work: Callable[[Any], None], *, parallel: int = 4, fail_fast: bool = False,
              json_output: bool = False, deployed: bool = False, again: str = "",
              check: Callable[[Any], object] | None = None) -> None:
    """`operation` for the selected apps of the env: `work(run)` for each, `parallel` at a
    time; exit with the fleet's code. `deployed`: --all means the stacks in the backend (else
    the stack files); `again`: the options to repeat in the command printed after an
    interrupt; `check(run)`: each app's input, checked before any starts (a bad one is exit 2
    with nothing run)."""
    from stx_pulumi.cli.options import env_name
    from stx_pulumi.ops.fleet import Fleet, Run, check_parallel
    from stx_pulumi.workspace import locate_workspace

    check_parallel(parallel)
    ws = locate_workspace(Path.cwd(), os.environ)
    env = env_name(env, ws)
    runs = [Run(app=app, env=env, arg=arg) for app, arg in selected(ws, env, apps or [],
                                                                     all_apps, deployed)]
    if check is not None:
        _check_all(runs, check)
    fleet = Fleet(runs, parallel, fail_fast)
    if not json_output:
        render.info(f"{operation} of {len(runs)} app(s) in env {env}, {min(parallel, len(runs))} "
                    "at a time")
    with render.FleetBoard(f"{operation} --env {env}", runs) as board:
        fleet.run(work, tick=board.refresh)
    if json_output:
        render.print_json({"operation": operation, "env": env, "result": fleet.result,
                           "exit_code": fleet.exit_code, "apps": [r.as_json() for r in runs]})
    else:
        render.fleet_summary(operation, runs, fleet.interrupted,
                             f"stx-pulumi {operation} {{apps}} --env {env}"
                             f"{repeated_options() or again}")
    if fleet.exit_code:
        raise typer.Exit(fleet.exit_code)


# What the command printed after an interrupt never repeats: the apps (it names the rest), the
# env (it names it), --json and the fleet's own pacing.
NOT_REPEATED = {"apps", "all_apps", "env", "json_output", "parallel", "fail_fast"}


def repeated_options() -> str:
    """The options the user typed (as `--opt value`, shell-quoted), for the command printed
    after an interrupt: following it deploys what they asked, not the stack's old settings."""
    import shlex

    try:  # typer's own copy of click (typer 0.22 and newer), else click itself
        from typer._click.core import ParameterSource
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - older typer
        from click.core import ParameterSource  # type: ignore[assignment]
        from click.globals import get_current_context  # type: ignore[no-redef]

    ctx = get_current_context(silent=True)
    if ctx is None:
        return ""
    words: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        if name in NOT_REPEATED or param.param_type_name != "option" or (
                ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE):
            continue
        value = ctx.params.get(name)
        flag = param.opts[0]
        if getattr(param, "is_flag", False):
            words.append(flag if value else (getattr(param, "secondary_opts", None) or [flag])[0])
        else:
            for item in value if isinstance(value, (list, tuple)) else [value]:
                words += [flag, str(item)]
    return "".join(f" {shlex.quote(w)}" for w in words)


def _check_all(runs: list[Any], check: Callable[[Any], object]) -> None:
    from stx_pulumi.errors import SpecError, StxError

    problems = []
    for run in runs:
        try:
            check(run)
        except StxError as err:
            lines = err.problems if isinstance(err, SpecError) else [err.message]
            problems += [f"{run.stack}: {line}" for line in lines]
    if problems:
        raise SpecError(problems, hint="nothing was run: fix these and run the command again")


def selected(ws: Workspace, env: str, apps: list[str], all_apps: bool,
              deployed: bool) -> list[tuple[str, str]]:
    """(app, APP as given) of each selected app; bad input is exit 2 before anything runs."""
    from stx_pulumi.ops.fleet import select, stack_file_apps
    from stx_pulumi.workspace import resolve_target

    candidates: list[str] = []
    if all_apps and deployed:
        candidates = [name.rsplit(".", 1)[0] for name in _backend_stacks(ws)
                      if name.rsplit(".", 1)[-1] == env]
    elif all_apps and ws.stacks_dir.is_dir():
        candidates = stack_file_apps((f"Pulumi.{s}.yaml" for s in ws.stack_names()), env)
    chosen: dict[str, str] = {}
    for arg in select(apps, all_apps, candidates):
        chosen.setdefault(resolve_target(arg, Path.cwd(), ws, env).app, arg)
    return list(chosen.items())


def _backend_stacks(ws: Workspace) -> list[str]:
    from stx_pulumi.cli.options import open_engine

    if not ws.exists:
        return []
    engine, _ = open_engine(ws, quiet=True)
    names: list[str] = engine.stack_names()
    return names


def fill(run: Run, result: OperationResult) -> None:
    """What an engine operation did, into the app's run."""
    from stx_pulumi.model.outputs import url_text

    run.changes = result.changes
    run.outputs = result.outputs
    run.url = url_text(result.outputs)


def refuse_path(options: Any) -> None:
    if options.path is not None:
        raise InputError("--path: names one app's folder; with several apps give each folder "
                         "as APP")
