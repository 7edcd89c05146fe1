"""A class rehearsal, as numbers: what each simulated student saw (`Event`s), summed into a
`Rehearsal` (latencies, errors by kind, students served or turned away), and the verdict
against the plan. Pure: the load itself is `cloud.session`, the use case `ops.rehearse`."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Error kinds, as the report and --json name them
HTTP = "http_"                   # + the status: the page or a Streamlit endpoint answered it
REFUSED = "websocket_refused"    # the websocket was not opened (its HTTP status in the detail)
CLOSED = "websocket_closed"      # the server closed the websocket during a run
SCRIPT = "script_error"          # the app raised: an exception element, or a compile error
TIMEOUT = "timeout"              # no answer within --timeout
CONNECT = "connection"           # no TCP/TLS connection at all
TURNED_AWAY = (REFUSED, CONNECT)  # with any HTTP status: the student never got a session


@dataclass(frozen=True)
class Event:
    """One thing a student saw: a run that finished (`latency_s`: the first full render
    when `first`, else an interaction), or an error of `kind` with its `detail`."""

    student: int
    at: float                     # seconds since the rehearsal started
    kind: str = "run"             # "run", "connected", "left", or an error kind
    latency_s: float = 0.0
    first: bool = False
    detail: str = ""


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile (q in 0..100) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def spread(values: Sequence[float]) -> dict[str, float | None]:
    return {f"p{q}": _round(percentile(values, q)) for q in (50, 95, 99)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass
class Rehearsal:
    """The sum of a rehearsal's events, as they come (a live snapshot) or at the end."""

    students: int                          # asked for
    events: list[Event] = field(default_factory=list)
    elapsed_s: float = 0.0
    interrupted: bool = False
    server_version: str | None = None      # the Streamlit version the app said it runs
    instances: list[tuple[float, int]] = field(default_factory=list)  # (at, count), Cloud Run
    cost_usd: float | None = None
    started_epoch: float = 0.0             # wall clock (time.time()) at the start
    generator_cpu_s: float = 0.0           # CPU the load generator (this process) used

    def add(self, event: Event) -> None:
        self.events.append(event)

    def latencies(self, first: bool) -> list[float]:
        return [e.latency_s for e in self.events if e.kind == "run" and e.first == first]

    @property
    def runs(self) -> int:
        return sum(1 for e in self.events if e.kind == "run")

    @property
    def errors(self) -> dict[str, int]:
        return dict(sorted(Counter(e.kind for e in self.events if is_error(e.kind)).items()))

    @property
    def error_messages(self) -> list[tuple[str, int]]:
        """The errors' details, most frequent first (a script's exception, a close code)."""
        found = Counter(f"{e.kind}: {e.detail}" for e in self.events
                        if is_error(e.kind) and e.detail)
        return found.most_common(5)

    def _with(self, kinds: Iterable[str]) -> set[int]:
        wanted = set(kinds)
        return {e.student for e in self.events if e.kind in wanted}

    @property
    def connected(self) -> int:
        """Students connected now (a live figure)."""
        return len(self._with(["connected"]) - self._with(["left"]))

    @property
    def failed(self) -> set[int]:
        return {e.student for e in self.events if is_error(e.kind)}

    @property
    def turned_away(self) -> int:
        """Students who never had a session: refused, unreachable, or an HTTP error first."""
        sessions = self._with(["connected"])
        return len({e.student for e in self.events if is_error(e.kind)
                    and (e.kind in TURNED_AWAY or e.kind.startswith(HTTP))} - sessions)

    @property
    def served(self) -> int:
        """Students whose every run finished with no error."""
        return len(self._with(["run"]) - self.failed)

    @property
    def peak_instances(self) -> int | None:
        return max((n for _, n in self.instances), default=None)

    def rate(self, window_s: float = 10.0) -> float:
        """Runs per second over the last `window_s` seconds."""
        since = self.elapsed_s - window_s
        recent = sum(1 for e in self.events if e.kind == "run" and e.at >= since)
        return recent / min(window_s, self.elapsed_s) if self.elapsed_s > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "students": self.students, "served": self.served, "turned_away": self.turned_away,
            "runs": self.runs, "errors": self.errors,
            "error_messages": [{"error": m, "count": n} for m, n in self.error_messages],
            "latency_s": {"first_render": spread(self.latencies(True)),
                          "interaction": spread(self.latencies(False))},
            "elapsed_s": round(self.elapsed_s, 1), "interrupted": self.interrupted,
            "generator_cpu_s": round(self.generator_cpu_s, 2),
        }
        if self.server_version:
            data["server_streamlit"] = self.server_version
        if self.instances:
            data["instances"] = {"peak": self.peak_instances,
                                 "series": [[round(t), n] for t, n in self.instances]}
        if self.cost_usd is not None:
            data["cost_usd"] = round(self.cost_usd, 4)
        return data

    def series(self, step_s: float | None = None
               ) -> list[tuple[float, int, float, float | None, float | None]]:
        """(time, most students connected, runs per second, p50 and p95 latency of the runs
        finished) per step (about 100 over the rehearsal, 1 s at least): what the HTML report
        draws."""
        step = step_s or max(1.0, self.elapsed_s / 100)
        buckets = max(1, math.ceil(self.elapsed_s / step))
        rows = []
        live: set[int] = set()
        ordered = sorted(self.events, key=lambda e: e.at)
        index = 0
        for b in range(buckets):
            end = (b + 1) * step
            done: list[float] = []
            most = len(live)
            while index < len(ordered) and ordered[index].at < end:
                event = ordered[index]
                if event.kind == "connected":
                    live.add(event.student)
                    most = max(most, len(live))
                elif event.kind == "left":
                    live.discard(event.student)
                elif event.kind == "run":
                    done.append(event.latency_s)
                index += 1
            rows.append((end, most, len(done) / step, percentile(done, 50),
                         percentile(done, 95)))
        return rows


def is_error(kind: str) -> bool:
    return kind not in ("run", "connected", "left")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    lines: tuple[str, ...]
    suggested_max: int | None = None


def verdict(report: Rehearsal, p95_max_s: float, max_instances: int | None,
            concurrency: int | None) -> Verdict:
    """Against the plan: every student served with no error and p95 within `p95_max_s`, or
    what to change: "for N students set --max M" when students were turned away or slow."""
    lines = []
    suggested = None
    p95 = percentile(report.latencies(False) or report.latencies(True), 95)
    slow = p95 is not None and p95 > p95_max_s
    if report.turned_away:
        lines.append(f"{report.turned_away} of {report.students} students were turned away")
    if slow:
        lines.append(f"p95 latency {p95:.2f}s is over {p95_max_s:g}s")
    if report.turned_away and max_instances and concurrency:
        # a Streamlit session holds one request (its websocket) open for its whole length
        needed = suggested = max(math.ceil(report.students / concurrency), max_instances + 1)
        lines.append(f"for {report.students} students set `--max {needed}` (it was "
                     f"{max_instances}, {concurrency} sessions each)")
    elif slow and max_instances and concurrency:
        fewer = max(1, concurrency // 2)  # fewer sessions share an instance's CPU
        suggested = max(math.ceil(report.students / fewer), max_instances)
        lines.append(f"for {report.students} students set `--concurrency {fewer} --max "
                     f"{suggested}`")
    other = {k: n for k, n in report.errors.items()
             if not (k in TURNED_AWAY or k.startswith(HTTP))}
    if other:
        lines.append("errors: " + ", ".join(f"{k} {n}" for k, n in other.items()))
    ok = not report.errors and report.served == report.students and not slow
    if ok:
        lines.append(f"all {report.students} students served, p95 "
                     + (f"{p95:.2f}s" if p95 is not None else "n/a"))
    return Verdict(ok, tuple(lines), suggested)


def capacity_warning(students: int, max_instances: int, concurrency: int) -> str | None:
    """Students beyond what the service can hold at once (`max × concurrency`)."""
    holds = max_instances * concurrency
    if students > holds:
        return (f"{students} students is more than the service holds at once ({max_instances} "
                f"instances × {concurrency} sessions = {holds}): expect students turned away")
    return None


def seconds(option: str, text: str) -> float:
    """`90`, `90s`, `5m`, `1h`, `1.5s` as seconds; InputError naming the option."""
    from stx_pulumi.errors import InputError

    value = str(text).strip().lower()
    unit = {"s": 1, "m": 60, "h": 3600}.get(value[-1:])
    number = value[:-1] if unit else value
    try:
        amount = float(number) * (unit or 1)
    except ValueError:
        amount = math.nan
    if not math.isfinite(amount) or amount < 0:
        raise InputError(f"{option}: {text!r} is not a duration such as 90s, 5m or 1h")
    return amount


def summary(report: Rehearsal, verdict: Verdict, max_instances: int | None,
            suggested: int | None, when: str) -> dict[str, Any]:
    """What the stack keeps of its last rehearsal (a stack tag: short)."""
    p95 = percentile(report.latencies(False) or report.latencies(True), 95)
    return {"at": when, "students": report.students, "served": report.served,
            "p95_s": _round(p95), "max": max_instances, "suggested_max": suggested,
            "ok": verdict.ok}


GENERATOR_BUSY = 0.7  # of one core: past it, the generator may be what slowed the students


def generator_note(report: Rehearsal) -> str:
    """How busy the load generator was, and whether it, not the app, may have been slow."""
    share = report.generator_cpu_s / report.elapsed_s if report.elapsed_s else 0.0
    note = (f"the load generator used {report.generator_cpu_s:.1f}s of CPU in "
            f"{report.elapsed_s:.0f}s ({share:.0%} of one core)")
    if share > GENERATOR_BUSY:
        note += (": it may have been the bottleneck, so latencies are pessimistic (rehearse "
                 "from a bigger machine, or with fewer students)")
    return note
