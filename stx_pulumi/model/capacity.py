"""What the region's Cloud Run quota allows, for one service and for a project's services at once.

Pure: no Google, no Pulumi. Cloud Run refuses a service whose maximum instances exceed
min(regional vCPU quota ÷ its vCPU, regional memory quota ÷ its memory) at deploy time ("Max
instances must be set to 200 or fewer to set the requested total CPU": Cloud Run docs, "About
maximum instances"; jspsych/datapipe#238), and the quota counts every Cloud Run resource of the
project in that region, so windows that overlap across books and apps add up.

A `Demand` is one service's ceiling over time: its base maximum, and each window's maximum
while the window is active. `limit` is the per-service ceiling the quota gives; `problems`
says which services ask more (Google would refuse them: `hard`) and when the services of one
project and region together would ask more than the quota (instances turned away: `soft`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stx_pulumi.model import events
from stx_pulumi.model.names import MEMORY_RE
from stx_pulumi.model.spec import CPU_MEMORY_MIB, REVISION_DEFAULT_MAX, AppSpec

QUOTA_URL = ("https://console.cloud.google.com/iam-admin/quotas?project={project}"
             "&service=run.googleapis.com")


@dataclass(frozen=True)
class Demand:
    """One service's maximum instances over time."""

    stack: str
    service: str
    cpu: int
    gib: float
    base: int
    windows: tuple[tuple[datetime, datetime, int], ...] = ()  # (warm-up, end, max), UTC
    concurrency: int = 80  # sessions an instance takes
    book: str | None = None

    @property
    def peak(self) -> int:
        return max([self.base, *(high for _, _, high in self.windows)])

    def at(self, when: datetime) -> int:
        """The maximum in force at `when`."""
        return next((high for start, end, high in self.windows if start <= when < end),
                    self.base)


def limit(quota: tuple[float, float], cpu: int, gib: float) -> int:
    """Instances one service can have: the region's vCPU quota over its vCPU, and its memory
    quota (GiB) over its memory."""
    return int(min(quota[0] / cpu, quota[1] / gib))


def gib_of(memory: str, cpu: int) -> float:
    match = MEMORY_RE.fullmatch(memory)
    if not match:
        return CPU_MEMORY_MIB.get(cpu, (512, 0))[0] / 1024
    return int(match.group(1)) / (1 if match.group(2) == "Gi" else 1024)


def of_spec(spec: AppSpec) -> list[Demand]:
    """The demands of a validated spec: each service, with the windows that cover it."""
    out = []
    for svc in spec.services:
        spans = tuple((w.warm_at.astimezone(UTC), w.end.astimezone(UTC),
                       w.scaling(svc.concurrency, svc.max_instances)[1])
                      for w in spec.windows if w.covers(svc.book))
        out.append(Demand(spec.stack, svc.name, svc.cpu, gib_of(svc.memory, svc.cpu),
                          svc.max_instances, spans))
    return out


def of_config(stack: str, config: Mapping[str, Any], now: datetime) -> list[Demand]:
    """The demands a stack file asks, read leniently (the stack's own `up` checks it): its
    app's service or each book's, and its windows not over."""
    app, _, env = stack.partition(".")
    windows = [w for w in events.stored_windows(_map(config.get("stx:events")), [])
               if not w.expired(now)]
    books = _map(config.get("stx:books"))
    services: list[tuple[str, str | None, Mapping[str, Any]]] = [
        (f"{app}-{name}-{env}", str(name), _map(own)) for name, own in books.items()]
    out = []
    for name, book, own in services or [(f"{app}-{env}", None, {})]:
        cpu = _int(own.get("cpu", config.get("stx:cpu")), 1)
        base = _int(own.get("maxInstances", config.get("stx:maxInstances")), 10)
        concurrency = _int(own.get("concurrency", config.get("stx:concurrency")), 80)
        memory = str(own.get("memory", config.get("stx:memory")) or "512Mi")
        spans = tuple((w.warm_at.astimezone(UTC), w.end.astimezone(UTC),
                       w.scaling(concurrency, base)[1]) for w in windows if w.covers(book))
        out.append(Demand(stack, name, cpu, gib_of(memory, cpu), base, spans, concurrency,
                          book))
    return out


def problems(demands: Iterable[Demand], quota: tuple[float, float], region: str
             ) -> tuple[list[str], list[str]]:
    """(hard, soft): services asking more than the quota lets one service have; moments when
    the services together ask more than the quota."""
    demands = list(demands)
    where = f"the {region} quota ({quota[0]:g} vCPU, {quota[1]:g} GiB)"
    hard = [f"{d.service}: asks up to {d.peak} instances of {d.cpu} vCPU/{d.gib:g} GiB; "
            f"{where} allows {limit(quota, d.cpu, d.gib)}"
            for d in demands if d.peak > limit(quota, d.cpu, d.gib)]
    soft = []
    moments = sorted({start for d in demands for start, _, _ in d.windows})
    for when in [None, *moments]:
        cpu = sum((d.base if when is None else d.at(when)) * d.cpu for d in demands)
        gib = sum((d.base if when is None else d.at(when)) * d.gib for d in demands)
        if cpu > quota[0] or gib > quota[1]:
            stacks = sorted({d.stack for d in demands})
            at = "at their base scaling" if when is None else f"from {when:%Y-%m-%d %H:%M} UTC"
            soft.append(f"{', '.join(stacks)} together ask up to {cpu:g} vCPU and {gib:g} GiB "
                        f"{at}: more than {where}; instances beyond it are refused")
            break
    return hard, soft


def revision_ceiling(peak: int) -> int | None:
    """The revision-level maximum to set for a service whose highest maximum (base or any
    window) is `peak`: none up to Cloud Run's revision default of 100, else the peak itself,
    never more (a higher ceiling would be refused wherever the quota gives less). Cloud Run
    docs, "Set maximum instances for services": "by default, Cloud Run sets 100 instances per
    revision"; raising it makes a new revision."""
    return None if peak <= REVISION_DEFAULT_MAX else peak


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any, default: int) -> int:
    try:
        return int(float(value)) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default
