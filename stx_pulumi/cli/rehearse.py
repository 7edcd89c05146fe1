"""`rehearse`: a class of simulated students on the app, the night before."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stx_pulumi import render
from stx_pulumi.cli.options import (
    AppArg,
    EnvOpt,
    JsonOpt,
    YesOpt,
    command,
    confirm_protected,
    interactive,
    open_engine,
    stack_ref,
)
from stx_pulumi.errors import InputError

if TYPE_CHECKING:
    from stx_pulumi.model.rehearsal import Rehearsal, Verdict
    from stx_pulumi.ops.rehearse import Target

Duration = Annotated[str, typer.Option(help="90s, 5m, 1h (seconds without a unit).")]


@command()
def rehearse(
    app_name: AppArg = None,
    users: Annotated[int, typer.Option("--users", help="Simulated students.")] = 50,
    ramp: Annotated[str, typer.Option(help="Time over which the students arrive.")] = "60s",
    duration: Annotated[str, typer.Option(help="Length of the rehearsal, ramp included.")
                        ] = "5m",
    think: Annotated[str, typer.Option(help="A student's pause between two interactions "
                                       "(±50 %).")] = "10s",
    timeout: Annotated[str, typer.Option(help="Longest wait for a page or a script run.")
                       ] = "30s",
    p95_max: Annotated[str, typer.Option("--p95-max", help="Slowest p95 latency that "
                                         "passes.")] = "3s",
    book: Annotated[str | None, typer.Option(help="The book to rehearse (a repository of "
                                             "books).")] = None,
    env: EnvOpt = None,
    url: Annotated[str | None, typer.Option(help="Rehearse this address instead: a local "
                                            "`streamlit run` (loopback) or one of the "
                                            "workspace's stacks.")] = None,
    report_file: Annotated[Path | None, typer.Option("--report", help="Also write the report "
                                                     "as a self-contained HTML page.")] = None,
    yes: YesOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Rehearse a class: simulated students open real Streamlit sessions on the app and
    interact until the duration ends; latencies, errors, instances, cost and a verdict."""
    from stx_pulumi.model.rehearsal import seconds
    from stx_pulumi.ops import rehearse as ops
    from stx_pulumi.render.rehearsal import RehearsalLive

    request = ops.RehearseRequest(users, seconds("--ramp", ramp), seconds("--duration", duration),
                                  seconds("--think", think), seconds("--timeout", timeout),
                                  seconds("--p95-max", p95_max))
    ops.check_request(request)
    goal, keep = _target(app_name, env, book, url and ops.check_url(url))
    if goal.protected and goal.stack:
        confirm_protected(goal.stack, yes, "rehearse")
    if not goal.known:
        _confirm_address(goal.url)
    for note in ops.before(goal, request):
        render.warning(note)
    with RehearsalLive(goal.url, request.duration_s) as live:
        report = ops.run(goal.url, request, live)
    verdict, notes = ops.after(report, goal, request, render, keep)
    _show(report, verdict, goal, notes, report_file, json_output)
    if report.interrupted:
        raise typer.Exit(1)
    if not verdict.ok:
        raise typer.Exit(5)


def _target(app_name: str | None, env: str | None, book: str | None, url: str | None
            ) -> tuple["Target", Callable[[str], None] | None]:
    """A loopback --url alone needs no workspace; else the stack of APP (and env), and how it
    keeps the rehearsal's summary (a stack tag)."""
    from stx_pulumi.ops.rehearse import REHEARSAL_TAG, Target, is_loopback, target, whose
    from stx_pulumi.workspace import locate_workspace

    if url and app_name is None:
        if is_loopback(url):
            return Target(url), None
        ws = locate_workspace(Path.cwd(), os.environ)
        engine, _ = open_engine(ws, quiet=True)
        stack = whose(url, engine, ws.stack_names()) if ws.exists else None
        if stack is None:
            return Target(url, known=False), None
    else:
        ws, stack = stack_ref(app_name, env)
        engine, _ = open_engine(ws, quiet=True)
    goal = target(stack, ws.stack_config(stack), engine.outputs(stack), book, url)
    return goal, lambda summary: engine.set_tag(stack, REHEARSAL_TAG, summary)


def _confirm_address(url: str) -> None:
    """rehearse is not a general load tool: an address that is neither loopback nor one the
    stack answers on is rehearsed only when its host is typed at a terminal."""
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    where = (f"--url: {url} is neither loopback nor an address of this stack (rehearse is "
             "not a general load tool)")
    if not interactive():
        raise InputError(f"{where}: confirm it on a terminal")
    if typer.prompt(f"{where}. Type its host ({host}) to rehearse it anyway") != host:
        raise InputError("rehearse cancelled: the host typed differs")


def _show(report: "Rehearsal", verdict: "Verdict", goal: "Target", notes: list[str],
          report_file: Path | None, json_output: bool) -> None:
    from stx_pulumi.render.rehearsal import html_report, rehearsal

    if report_file is not None:
        label = ("rehearsal on loopback (a local streamlit run)" if goal.stack is None
                 else f"rehearsal of {goal.stack}")
        report_file.write_text(html_report(report, verdict, goal.url, label),
                               encoding="utf-8")
        render.info(f"report written to {report_file}")
    if json_output:
        render.print_json({**report.as_json(), "url": goal.url, "stack": goal.stack,
                           "verdict": {"ok": verdict.ok, "lines": list(verdict.lines),
                                       "suggested_max": verdict.suggested_max},
                           "notes": notes, "result": "passed" if verdict.ok else "failed"})
    else:
        rehearsal(report, verdict, goal.url, notes)

