"""The `stx-pulumi` command line: thin commands that build a spec, call one function, render.

    options    the Typer app, the shared deployment options, the command decorator, helpers
    deploy     plan, cost, doctor, up, preview, refresh, destroy, outputs, verify, cancel
    workspace  stacks, init, install-cli, env
    events     event add, event list, event test, event remove
    releases   history, rollback
    rehearse   rehearse (a class of simulated students)
    team       team setup, ci github

Importing this package must stay cheap: Pulumi is imported inside the commands that need it.
"""

import os
import sys
import traceback
from pathlib import Path
from typing import Any

from stx_pulumi.cli import (  # noqa: F401  (registers the commands)
    deploy,
    events,
    rehearse,
    releases,
    team,
    workspace,
)
from stx_pulumi.cli.options import _state, app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point. SIGTERM is an interrupt like Ctrl-C, and both reach the
    Pulumi CLI still running under us (so it stops cleanly), even when no terminal sent them
    to the whole process group, as in CI."""
    import signal
    import threading

    # gRPC's C core (automation's event and language servers) logs at INFO to stderr, e.g.
    # "Got goaway" when the engine closes a stream: keep only its errors out of our output.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

    def interrupt(signum: int, frame: Any) -> None:
        _forward_to_children()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    threading.excepthook = _thread_exception
    sys.unraisablehook = _unraisable
    app(prog_name="stx-pulumi")


def _forward_to_children() -> None:
    """SIGINT to our child processes (the Pulumi CLI): it stops an update cleanly on it."""
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


def _unraisable(args: Any) -> None:
    """Nor does a program coroutine the interrupted engine left behind (Pulumi's SDK closes
    its event loop under it) unless --debug."""
    if _state["debug"]:
        sys.__unraisablehook__(args)


def _thread_exception(args: Any) -> None:
    """A background thread (event stream, log reader) stopped by an interrupt says nothing
    unless --debug."""
    if _state["debug"]:
        traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback)

