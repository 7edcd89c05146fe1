"""The offline plan: the real program run under Pulumi's mock engine.

No Pulumi CLI, Docker, network or credentials: the program registers its resources with an
in-process mock monitor, which records them. Values only the cloud could know stay unknown
(None), secrets stay secret ("[secret]").
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from stx_pulumi.model.settings import option_label
from stx_pulumi.model.spec import PLACEHOLDER_PROJECT, AppSpec

SECRET_TEXT = "[secret]"
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class PlannedResource:
    """One resource as the cloud would receive it: wire (camelCase) input names."""

    type: str
    name: str
    parent: str | None
    inputs: dict[str, Any]
    custom: bool = True


@dataclass
class Plan:
    """What `up` would create for a spec, as read from the program under mocks."""

    spec: AppSpec
    resources: list[PlannedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_]


class _Mocks(pulumi_mocks.Mocks):
    """Returns the inputs as state, plus the computed values that can be known offline."""

    def __init__(self, project: str) -> None:
        self.project = project

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "gcp:serviceaccount/account:Account":
            state["email"] = f"{args.inputs['accountId']}@{self.project}.iam.gserviceaccount.com"
        return f"{args.name}-id", state

    def call(self, args: pulumi_mocks.MockCallArgs
             ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "gcp:organizations/getClientConfig:getClientConfig":
            return {"accessToken": "offline-plan", "project": self.project}, []
        return {}, []


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also remembers each registration's parent and outputs."""

    def __init__(self, mocks: _Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[tuple[Any, dict[str, Any]]] = []
        self.outputs: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request: Any) -> Any:
        if request.type != STACK_TYPE:
            self.registrations.append((request, rpc.deserialize_properties(request.object)))
        return super().RegisterResource(request)

    def RegisterResourceOutputs(self, request: Any) -> Any:
        self.outputs[request.urn] = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)


def run_plan(spec: AppSpec) -> Plan:
    """Run the stack program for `spec` under mocks and return what it registered."""
    from stx_pulumi import program  # imports pulumi_gcp and pulumi_docker

    mocks = _Mocks(spec.project)
    monitor = _RecordingMonitor(mocks)
    quiet = logging.getLogger("stx_pulumi.engine.plan.engine")  # the plan reports warnings itself
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    pulumi.runtime.set_mocks(mocks, project="stx-pulumi", stack=spec.stack, preview=True,
                             monitor=monitor, logger=quiet)
    token = pulumi.Output.secret(SECRET_TEXT) if spec.cloudflare_dns else None
    holder: dict[str, Any] = {}

    def build() -> Any:
        holder["app"] = program.deploy(spec, cloudflare_token=token)
        return holder["app"].urn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pulumi.runtime.test(build)()

    plan = Plan(spec=spec, warnings=list(spec.warnings))
    if spec.project_is_placeholder:
        plan.warnings.insert(0, f"{option_label('gcp:project')} is not set: the plan uses the "
                                f"placeholder {PLACEHOLDER_PROJECT!r}")
    component_urn = ""
    for request, inputs in monitor.registrations:
        plan.resources.append(PlannedResource(
            type=request.type,
            name=request.name,
            parent=_urn_type(request.parent) if request.parent else None,
            inputs=wire_value(inputs),
            custom=request.custom,
        ))
        if request.type == program.COMPONENT_TYPE:
            component_urn = monitor.make_urn(request.parent, request.type, request.name)
    plan.outputs = wire_value(monitor.outputs.get(component_urn, {}))
    return plan


def wire_value(value: Any) -> Any:
    """Plain JSON-able data: secrets → "[secret]", unknowns → None, 100.0 → 100."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return SECRET_TEXT
        return {k: wire_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [wire_value(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is rpc.UNKNOWN or value == rpc.UNKNOWN:
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return None  # resource references and other engine values the cloud resolves


def _urn_type(urn: str) -> str:
    """The resource type in a URN: `urn:pulumi:s::p::a$b::name` → `b`."""
    return urn.split("::")[2].split("$")[-1]
