"""Fleets: one operation over several apps of an env, in parallel and isolated.

Each app's operation runs in a worker thread with its own engine, progress and messages (the
`ops.report.REPORTER` context variable routes them to the app's `Run`); one app's failure never
stops another (`fail_fast` only stops starting new ones). An interrupt stops every running
engine (the CLI forwards it to each Pulumi process) and lets each finish its cleanup.
No Pulumi here: the work function given to `run` does the operation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from stx_pulumi.errors import InputError, StxError
from stx_pulumi.ops.report import REPORTER

# A fleet's exit code: the first of these that occurred (a locked stack is the most urgent,
# then an engine failure, a failed verification, a missing prerequisite, bad input), else 0.
EXIT_ORDER = (4, 1, 5, 3, 2)
MAX_PARALLEL = 16


def fleet_exit(codes: Iterable[int]) -> int:
    found = set(codes)
    return next((code for code in EXIT_ORDER if code in found), 0)


@dataclass
class Run:
    """One app's operation in a fleet: its state as it goes, then its result."""

    app: str
    env: str
    state: str = "waiting"  # waiting, running, then succeeded, failed, interrupted, not started
    step: str = ""
    started: float | None = None
    ended: float | None = None
    exit_code: int = 0
    error: str | None = None
    hint: str | None = None
    changes: dict[str, int] = field(default_factory=dict)
    url: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    arg: str = ""  # APP as given (a name or a folder)
    on_change: Callable[[Run, str | None], None] | None = None
    stopping: threading.Event | None = None

    @property
    def stack(self) -> str:
        return f"{self.app}.{self.env}"

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or time.monotonic()) - self.started

    # the FleetReporter interface render uses inside a fleet (ops.report.REPORTER)
    def note(self, text: str) -> None:
        """A message of the operation: the current step, and a line of its log."""
        self.say(text)

    def say(self, text: str) -> None:
        self.step = text
        if self.on_change:
            self.on_change(self, text)

    def quiet_step(self, text: str) -> None:
        """What is running now, not worth a line of its own."""
        self.step = text
        if self.on_change:
            self.on_change(self, None)

    def as_json(self) -> dict[str, Any]:
        data = {"app": self.app, "env": self.env, "stack": self.stack, "result": self.state,
                "exit_code": self.exit_code, "changes": self.changes, "url": self.url,
                "duration_s": round(self.elapsed, 1), "outputs": self.outputs, **self.extra}
        if self.error:
            data["error"] = self.error
        return data


class Fleet:
    """Runs `work(run)` for every run, `parallel` at a time."""

    def __init__(self, runs: list[Run], parallel: int, fail_fast: bool = False) -> None:
        self.runs = runs
        self.parallel = parallel
        self.fail_fast = fail_fast
        self.stop = threading.Event()  # no new operation starts
        self.interrupting = threading.Event()  # running operations stop waiting
        self.interrupted = False

    def run(self, work: Callable[[Run], None], tick: Callable[[], None] = lambda: None) -> None:
        pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="fleet")
        pending = {pool.submit(self._one, run, work) for run in self.runs}
        try:
            while pending:
                try:
                    _, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:  # the CLI forwarded it to every engine already
                    self.interrupted = True
                    self.stop.set()
                    self.interrupting.set()
                tick()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _one(self, run: Run, work: Callable[[Run], None]) -> None:
        if self.stop.is_set():
            run.state = "not started"
            return
        token = REPORTER.set(run)
        run.state, run.started = "running", time.monotonic()
        run.stopping = self.interrupting
        run.say("started")
        try:
            work(run)
            run.state = "succeeded"
        except StxError as err:
            self._failed(run, err.exit_code, err.message, err.hint)
        except KeyboardInterrupt:  # a wait given `run.stopping` once the fleet is interrupted
            self._failed(run, 1, "", None)
        except Exception as err:  # one app's bug never takes the others down
            self._failed(run, 1, f"unexpected error: {type(err).__name__}: {err}", None)
        finally:
            run.ended = time.monotonic()
            REPORTER.reset(token)
            run.say(run.state if not run.error else f"{run.state}: {run.error}")

    def _failed(self, run: Run, code: int, message: str, hint: str | None) -> None:
        run.state = "interrupted" if self.interrupted else "failed"
        if self.interrupted:  # what the engine said of its interrupted run is no news
            message = "stopped part-way by the interrupt"
            hint = (f"`stx-pulumi refresh {run.app} --env {run.env}` reconciles its state "
                    "with the cloud (`stx-pulumi cancel` removes a stale lock)")
        run.exit_code, run.error, run.hint = code, message, hint
        if self.fail_fast:
            self.stop.set()

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 1
        return fleet_exit(r.exit_code for r in self.runs)

    @property
    def result(self) -> str:
        if self.interrupted:
            return "interrupted"
        return "succeeded" if not any(r.exit_code for r in self.runs) else "failed"


def check_parallel(parallel: int) -> None:
    if not 1 <= parallel <= MAX_PARALLEL:
        raise InputError(f"--parallel: must be between 1 and {MAX_PARALLEL}, got {parallel}")


def select(apps: list[str], all_apps: bool, candidates: Iterable[str]) -> list[str]:
    """The apps a command is about: those named, or with --all every candidate (an app with a
    stack in the env), sorted; exit 2 for both or for --all that finds none."""
    if all_apps and apps:
        raise InputError("APP: name apps or pass --all, not both")
    if not all_apps:
        return list(dict.fromkeys(apps))
    found = sorted(set(candidates))
    if not found:
        raise InputError("--all: no app has a stack in this env yet (stack files "
                         "stacks/Pulumi.<app>.<env>.yaml, or stacks in the backend)")
    return found


def stack_file_apps(stack_files: Iterable[str], env: str) -> list[str]:
    """Apps with a stack file `Pulumi.<app>.<env>.yaml` for the env."""
    suffix = f".{env}.yaml"
    return [name[len("Pulumi."):-len(suffix)] for name in stack_files
            if name.startswith("Pulumi.") and name.endswith(suffix)
            and "." not in name[len("Pulumi."):-len(suffix)]]


def local_docker(environ: Mapping[str, str]) -> bool:
    """Whether image builds run on this machine's Docker daemon (and so compete for its CPU):
    DOCKER_HOST unset, a socket, or this host."""
    host = environ.get("DOCKER_HOST", "")
    return not host or host.startswith(("unix://", "npipe://")) or any(
        local in host for local in ("://localhost", "://127.0.0.1", "://[::1]"))


class BuildSlot:
    """At most one image build at a time (the program takes a turn before its image and gives
    it back once the image is pushed, or when its update ends)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def take(self) -> Turn:
        return Turn(self._lock)


class Turn:
    """One app's turn at the build slot: `try_take` until it holds it, `give_back` (once)."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._held = False
        self._guard = threading.Lock()

    def try_take(self) -> bool:
        with self._guard:
            if not self._held:
                self._held = self._lock.acquire(blocking=False)
            return self._held

    def give_back(self) -> None:
        with self._guard:
            if self._held:
                self._held = False
                self._lock.release()
