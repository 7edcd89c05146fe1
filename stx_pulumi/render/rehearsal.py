"""A rehearsal shown: its live line while it runs, the report at the end, and the report as a
self-contained HTML page (inline SVG charts: no network, no JavaScript)."""

from __future__ import annotations

import html
import time
from typing import Any

from stx_pulumi.model.rehearsal import Rehearsal, Verdict, percentile, spread
from stx_pulumi.render.console import safe, stderr, stdout

PLAIN_EVERY_S = 10.0


class RehearsalLive:
    """Students connected, runs per second, p95 and errors, redrawn in place on a terminal;
    elsewhere a plain line every 10 s (on stderr, so --json keeps stdout to itself)."""

    def __init__(self, url: str, duration_s: float) -> None:
        self.url, self.duration_s = url, duration_s
        self.console = stderr()
        self.live: Any = None
        self.last_plain = -PLAIN_EVERY_S

    def __enter__(self) -> RehearsalLive:
        if self.console.is_terminal and not self.console.is_dumb_terminal:
            from rich.live import Live

            self.live = Live("", console=self.console, refresh_per_second=4, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def __call__(self, report: Rehearsal) -> None:
        line = live_line(report, self.duration_s)
        if self.live is not None:
            self.live.update(line)
        elif time.monotonic() - self.last_plain >= PLAIN_EVERY_S:
            self.last_plain = time.monotonic()
            self.console.print(safe(line), highlight=False)


def live_line(report: Rehearsal, duration_s: float) -> str:
    recent = [e.latency_s for e in report.events[-500:] if e.kind == "run"]
    p95 = percentile(recent, 95)
    errors = sum(report.errors.values())
    return (f"rehearsal {report.elapsed_s:4.0f}s/{duration_s:g}s  students "
            f"{report.connected}/{report.students} connected  runs {report.runs} "
            f"({report.rate():.1f}/s)  p95 {'-' if p95 is None else f'{p95:.2f}s'}  "
            f"errors {errors}")


def rehearsal(report: Rehearsal, verdict: Verdict, url: str, notes: list[str]) -> None:
    from rich.table import Table

    out = stdout()
    state = "interrupted: partial report" if report.interrupted else "done"
    out.print(f"rehearsal of {safe(url)}: {state} after {report.elapsed_s:.0f}s")
    table = Table(box=None, show_header=True, pad_edge=False)
    for column in ("", "p50", "p95", "p99"):
        table.add_column(column, justify="left" if not column else "right")
    for name, first in (("first full render", True), ("interaction", False)):
        numbers = spread(report.latencies(first))
        table.add_row(name, *(_seconds(numbers[k]) for k in ("p50", "p95", "p99")))
    out.print(table)
    out.print(f"students: {report.students} asked, {report.served} served, "
              f"{report.turned_away} turned away; {report.runs} script runs")
    if report.errors:
        out.print("errors: " + ", ".join(f"{k} {n}" for k, n in report.errors.items()))
        for message, count in report.error_messages:
            out.print(f"  {count}× {safe(message)}")
    if report.instances:
        out.print(f"instances: peak {report.peak_instances} (Cloud Monitoring)")
    if report.cost_usd is not None:
        out.print(f"cost of the rehearsal: ${report.cost_usd:.4f}")
    for note in notes:
        out.print(f"note: {safe(note)}")
    mark = "[green]ready[/]" if verdict.ok else "[red]not ready[/]"
    out.print(f"verdict: {mark}")
    for line in verdict.lines:
        out.print(f"  {safe(line)}")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def html_report(report: Rehearsal, verdict: Verdict, url: str, label: str) -> str:
    """The report as one HTML page: the numbers, and a chart each of students connected,
    interactions per second, p50/p95 latency and (on Cloud Run) instances, as inline SVG."""
    rows = report.series()
    charts: list[tuple[str, dict[str, list[tuple[float, float]]]]] = [
        ("Students connected", {"students": [(t, float(n)) for t, n, _, _, _ in rows]}),
        ("Interactions per second", {"runs/s": [(t, r) for t, _, r, _, _ in rows]}),
        ("Latency of script runs (s)", {
            "p50": [(t, p) for t, _, _, p, _ in rows if p is not None],
            "p95": [(t, p) for t, _, _, _, p in rows if p is not None]}),
    ]
    if report.instances:
        charts.append(("Cloud Run instances (Cloud Monitoring)",
                       {"instances": [(t, float(n)) for t, n in report.instances]}))
    data = report.as_json()
    latency = data["latency_s"]
    cells = "".join(
        f"<tr><th>{name}</th>" + "".join(f"<td>{_seconds(latency[key][q])}</td>"
                                        for q in ("p50", "p95", "p99")) + "</tr>"
        for name, key in (("first full render", "first_render"),
                          ("interaction", "interaction")))
    errors = "".join(f"<li>{html.escape(k)}: {n}</li>" for k, n in report.errors.items()) \
        or "<li>none</li>"
    verdict_lines = "".join(f"<li>{html.escape(line)}</li>" for line in verdict.lines)
    svg = "".join(_chart(title, lines) for title, lines in charts)
    verdict_title = "Ready" if verdict.ok else "Not ready"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Rehearsal of {html.escape(url)}</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }}
table {{ border-collapse: collapse; }} th, td {{ padding: .2em .8em; text-align: right; }}
th:first-child {{ text-align: left; }} .ok {{ color: #137333; }} .bad {{ color: #b3261e; }}
figure {{ margin: 1.5em 0; }} figcaption {{ font-weight: 600; }}
</style></head><body>
<h1>Rehearsal of {html.escape(url)}</h1>
<p>{html.escape(label)} · {report.students} students asked, {report.served} served,
{report.turned_away} turned away · {report.runs} script runs · {report.elapsed_s:.0f}s
{" · interrupted (partial)" if report.interrupted else ""}</p>
<h2 class="{'ok' if verdict.ok else 'bad'}" id="verdict">{verdict_title}</h2>
<ul>{verdict_lines}</ul>
<h2>Latency</h2>
<table id="latency"><tr><th></th><th>p50</th><th>p95</th><th>p99</th></tr>{cells}</table>
<h2>Errors</h2><ul id="errors">{errors}</ul>
{svg}
</body></html>
"""


def _chart(title: str, lines: dict[str, list[tuple[float, float]]], width: int = 640,
           height: int = 180) -> str:
    """Line charts on one pair of axes as inline SVG, labelled with the range they show."""
    pad = 40
    points = [p for line in lines.values() for p in line]
    if not points:
        return (f'<figure><figcaption>{html.escape(title)}</figcaption><p>no data</p>'
                "</figure>")
    t_max = max(t for t, _ in points) or 1.0
    v_max = max(v for _, v in points) or 1.0
    peak = f"{v_max:.2f}".rstrip("0").rstrip(".")
    drawn = []
    for (name, line), colour in zip(lines.items(), ("#1a73e8", "#d93025"), strict=False):
        xy = " ".join(f"{pad + (t / t_max) * (width - 2 * pad):.1f},"
                      f"{height - pad - (v / v_max) * (height - 2 * pad):.1f}" for t, v in line)
        drawn.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{xy}"><title>{html.escape(name)}</title></polyline>')
    legend = f" ({' · '.join(map(html.escape, lines))})" if len(lines) > 1 else ""
    return f"""<figure><figcaption>{html.escape(title)}{legend}</figcaption>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img"
 aria-label="{html.escape(title)}: peak {peak}" data-peak="{peak}">
<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#888"/>
<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>
<text x="{pad - 4}" y="{pad + 4}" text-anchor="end" font-size="11">{peak}</text>
<text x="{pad - 4}" y="{height - pad}" text-anchor="end" font-size="11">0</text>
<text x="{width - pad}" y="{height - pad + 16}" text-anchor="end" font-size="11">{t_max:.0f}s</text>
{"".join(drawn)}
</svg></figure>
"""
