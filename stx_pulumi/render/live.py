"""Tables redrawn in place while work goes on: an operation's resources, a fleet's apps; plain
lines where stderr is no terminal."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console

from stx_pulumi.ops.report import REPORTER
from stx_pulumi.render.console import (
    PAST,
    STACK_TYPE,
    label,
    safe,
    stderr,
    stdout,
)

if TYPE_CHECKING:
    from stx_pulumi.ops.fleet import Run


class _LiveTable:
    """A table redrawn in place on stderr while it is a terminal (`_table` draws it);
    elsewhere the subclass prints plain lines."""

    console: Console
    live: Any = None

    def _live_wanted(self) -> bool:
        return self.console.is_terminal and not self.console.is_dumb_terminal

    def __enter__(self) -> Any:
        if self._live_wanted():
            from rich.live import Live

            self.live = Live(self._table(), console=self.console, refresh_per_second=4)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(None, None, None)

    def _table(self) -> Any:
        raise NotImplementedError


class Progress(_LiveTable):
    """Live view of resource operations, fed by engine events (called from a watcher thread).

    On a terminal: a rich table redrawn in place. Elsewhere (CI, --json, pipes): one plain
    line per finished operation, on stderr.
    """

    def __init__(self, operation: str, diff: bool = False, preview: bool | None = None
                 ) -> None:
        self.operation = operation
        self.diff = diff
        self.preview = operation.startswith("preview") if preview is None else preview
        self.console = stderr()
        self.rows: dict[str, dict[str, Any]] = {}
        self.live: Any = None
        self.reporter = REPORTER.get()  # events arrive on automation's thread: keep it now

    def clear(self) -> None:
        """Forget the rows so far: the next operation has its own."""
        self.rows.clear()

    def _live_wanted(self) -> bool:  # inside a fleet the app's line shows the progress
        return self.reporter is None and super()._live_wanted()

    def __call__(self, event: Any) -> None:
        pre = event.resource_pre_event
        done = event.res_outputs_event
        failed = event.res_op_failed_event
        if pre and pre.metadata.type != STACK_TYPE and pre.metadata.op.value != "same":
            meta = pre.metadata
            self.rows[meta.urn] = {"op": meta.op.value, "type": meta.type,
                                   "name": meta.urn.rsplit("::", 1)[-1], "status": "running",
                                   "start": time.monotonic(), "end": None,
                                   "diffs": list(meta.diffs or [])}
            if self.reporter is not None:
                name = meta.urn.rsplit("::", 1)[-1]
                self.reporter.quiet_step(f"{meta.op.value} {label(meta.type, name)} {name}")
        elif done or failed:
            meta = (done or failed).metadata
            row = self.rows.get(meta.urn)
            if row is None:
                return
            row["status"] = "failed" if failed else "planned" if self.preview else "done"
            row["end"] = time.monotonic()
            if self.reporter is not None:
                self.reporter.note(self._line(row, failed=bool(failed)))
            elif self.live is None:
                self.console.print("  " + self._line(row, failed=bool(failed)))
        if self.live is not None:
            self.live.update(self._table())

    def _line(self, row: dict[str, Any], failed: bool = False) -> str:
        if failed:
            verb = f"failed to {row['op']}"
        elif self.preview:
            verb = f"would {row['op']}"
        else:
            verb = PAST.get(row["op"], row["op"])
        kind = label(row["type"], row["name"])
        line = f"{verb:<10} {kind} {safe(row['name'])}"
        if self.diff and row["diffs"]:
            line += f": {', '.join(row['diffs'])} changed"
        return line if self.preview else f"{line} ({row['end'] - row['start']:.1f}s)"

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"{self.operation}", show_edge=False, box=None, padding=(0, 1))
        columns = ("operation", "resource", "name", "status", "time", "changed")
        for column in columns if self.diff else columns[:-1]:
            table.add_column(column)
        for row in self.rows.values():
            elapsed = (row["end"] or time.monotonic()) - row["start"]
            style = {"done": "green", "failed": "red"}.get(row["status"], "yellow")
            cells = [row["op"], label(row["type"], row["name"]), row["name"],
                     f"[{style}]{row['status']}[/]", f"{elapsed:.0f}s"]
            table.add_row(*cells, *([", ".join(row["diffs"])] if self.diff else []))
        return table


class FleetBoard(_LiveTable):
    """A fleet's progress on stderr: on a terminal one live line per app (state, current step,
    elapsed); elsewhere (CI, pipes) a plain `stack: message` line per message."""

    def __init__(self, operation: str, runs: list[Any]) -> None:
        import threading

        self.operation = operation
        self.runs = runs
        self.console = stderr()
        self.live: Any = None
        self.lock = threading.Lock()
        for run in runs:
            run.on_change = self.changed

    def changed(self, run: Run, text: str | None) -> None:
        if self.live is None and text is not None:
            with self.lock:
                self.console.print(f"{safe(run.stack)}: {safe(text)}")

    def refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._table())

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=self.operation, show_edge=False, box=None, padding=(0, 1))
        for column in ("app", "env", "state", "step", "time"):
            table.add_column(column, overflow="ellipsis", no_wrap=True)
        for run in self.runs:
            style = FLEET_STYLES.get(run.state, "yellow")
            table.add_row(safe(run.app), safe(run.env), f"[{style}]{run.state}[/]",
                          safe(run.step)[:70], f"{run.elapsed:.0f}s")
        return table


FLEET_STYLES = {"succeeded": "green", "failed": "red", "interrupted": "red",
                "waiting": "dim", "not started": "dim"}


def fleet_summary(operation: str, runs: list[Any], interrupted: bool, again: str) -> None:
    """After a fleet: a table of every app (result, changes, URL, duration), each failure with
    its hint, and after an interrupt what finished and what to run next (`again` is the
    command to run for the rest)."""
    from rich.table import Table

    console = stdout()
    table = Table(title=f"{operation}: {len(runs)} app(s)", box=None, padding=(0, 2),
                  title_justify="left")
    for column in ("app", "env", "result", "changes", "url", "time"):
        table.add_column(column)
    for run in runs:
        style = FLEET_STYLES.get(run.state, "yellow")
        changes = ", ".join(f"{n} {PAST.get(k, k)}" for k, n in run.changes.items()
                            if n and k != "same") or ("no changes" if run.changes else "-")
        table.add_row(safe(run.app), safe(run.env), f"[{style}]{run.state}[/]", changes,
                      safe(run.url or "-"), f"{run.elapsed:.1f}s" if run.started else "-")
    console.print(table)
    for run in runs:
        if run.error:
            console.print(f"[bold red]error:[/] {safe(run.stack)}: {safe(run.error)}")
            if run.hint:
                console.print(f"[dim]hint:[/] {safe(run.hint)}")
    if interrupted:
        groups = {state: [r.app for r in runs if r.state == state]
                  for state in ("succeeded", "failed", "interrupted", "not started")}
        said = {"interrupted": "stopped part-way"}
        console.print("[bold red]interrupted:[/] " + "; ".join(
            f"{said.get(state, state)}: {', '.join(apps)}" for state, apps in groups.items()
            if apps))
        rest = groups["interrupted"] + groups["not started"]
        if rest:
            console.print(f"[dim]next:[/] {safe(again.format(apps=' '.join(rest)))}" + (
                " (an interrupted update may leave its stack locked: `stx-pulumi cancel "
                "APP` removes a stale lock)" if groups["interrupted"] else ""))
