"""One Cloud Run service of the app (the app's own, or one book's) and what hangs on it:
public access, the custom domain's mapping and its Cloudflare record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_gcp import cloudrun, cloudrunv2

from stx_pulumi.model.capacity import revision_ceiling
from stx_pulumi.model.serving import Scaling
from stx_pulumi.model.spec import AppSpec, ServiceSpec

CLOUDFLARE_CNAME_TARGET = "ghs.googlehosted.com"
# TCP startup probe: the largest failure_threshold × period_seconds Cloud Run allows (240 s),
# checked every 10 s so a fast app is ready at once; no initial delay, which would hold back
# every new instance during a scale-out.
PROBE_PERIOD_S = 10
PROBE_FAILURES = 24


@dataclass
class Served:
    """A service and the resources that expose it."""

    spec: ServiceSpec
    scaling: Scaling  # in force now: the base, or the active event window's
    service: Any
    public_access: Any = None
    domain_mapping: Any = None
    dns_record: Any = None
    dns_records: pulumi.Output[Any] | None = None
    pinned_revision: str | None = None

    def outputs(self) -> dict[str, Any]:
        svc = self.spec
        out: dict[str, Any] = {
            "url": self.service.uri,
            "custom_url": f"https://{svc.domain}" if svc.domain else None,
            "service": self.service.name,
            "min_instances": self.scaling.min_instances,
            "max_instances": self.scaling.max_instances,
            "revision": self.service.latest_created_revision,
            "ready_revision": self.service.latest_ready_revision,
            "traffic": self.service.traffic_statuses.apply(_traffic),
            "public": svc.public,
        }
        if svc.book:
            out["folder"] = svc.folder
        if self.scaling.source != "base":
            out["scaling"] = self.scaling.source
        if self.pinned_revision:
            out["pinned_revision"] = self.pinned_revision
        if self.dns_records is not None:
            out["dns_records"] = self.dns_records
        return out


def serve(svc: ServiceSpec, spec: AppSpec, image: pulumi.Input[str],
          account_email: pulumi.Input[str],
          depends_on: list[pulumi.Resource], provider: Any, parent: pulumi.Resource) -> Served:
    """The service `svc` running the image digest `image`, public if asked, with its domain
    if given; all traffic to the newest revision, or to the one a rollback pinned."""
    child = pulumi.ResourceOptions(parent=parent)
    labels = {**spec.labels, "stx-book": svc.book} if svc.book else spec.labels
    decision = spec.serving(svc)
    scaling = decision.scaling
    traffic = cloudrunv2.ServiceTrafficArgs(
        type="TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", revision=decision.revision,
        percent=100) if decision.revision else cloudrunv2.ServiceTrafficArgs(
        type="TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", percent=100)
    served = Served(svc, scaling, cloudrunv2.Service(
        svc.name,
        name=svc.name,
        location=spec.region,
        project=spec.project,
        ingress="INGRESS_TRAFFIC_ALL",
        labels=labels,
        deletion_protection=spec.protected,
        scaling=cloudrunv2.ServiceScalingArgs(min_instance_count=scaling.min_instances,
                                              max_instance_count=scaling.max_instances),
        template=cloudrunv2.ServiceTemplateArgs(
            containers=[_container(svc, spec, image)],
            service_account=account_email,
            max_instance_request_concurrency=svc.concurrency,
            scaling=_revision_scaling(svc, spec),
            timeout=f"{svc.timeout_s}s",
            session_affinity=True,
            labels=labels,
        ),
        traffics=[traffic],
        opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=depends_on)),
    ))
    served.pinned_revision = decision.revision
    if svc.public:
        served.public_access = cloudrunv2.ServiceIamMember(
            f"{svc.name}-public",
            name=served.service.name,
            location=spec.region,
            project=spec.project,
            role="roles/run.invoker",
            member="allUsers",
            opts=child,
        )
    if svc.domain:
        _domain(served, spec, provider, parent)
    return served


def _container(svc: ServiceSpec, spec: AppSpec,
               image: pulumi.Input[str]) -> cloudrunv2.ServiceTemplateContainerArgs:
    envs = [cloudrunv2.ServiceTemplateContainerEnvArgs(name=k, value=v)
            for k, v in plain_env(spec, svc)]
    envs += [
        cloudrunv2.ServiceTemplateContainerEnvArgs(
            name=ref.var,
            value_source=cloudrunv2.ServiceTemplateContainerEnvValueSourceArgs(
                secret_key_ref=cloudrunv2.ServiceTemplateContainerEnvValueSourceSecretKeyRefArgs(
                    secret=ref.secret, version=ref.version
                )
            ),
        )
        for ref in spec.secret_env
    ]
    return cloudrunv2.ServiceTemplateContainerArgs(
        image=image,
        ports=cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=spec.port),
        envs=envs,
        resources=cloudrunv2.ServiceTemplateContainerResourcesArgs(
            limits={"cpu": str(svc.cpu), "memory": svc.memory},
            cpu_idle=True,
            startup_cpu_boost=True,
        ),
        startup_probe=cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
            tcp_socket=cloudrunv2.ServiceTemplateContainerStartupProbeTcpSocketArgs(
                port=spec.port
            ),
            initial_delay_seconds=0,
            period_seconds=PROBE_PERIOD_S,
            timeout_seconds=PROBE_PERIOD_S,
            failure_threshold=PROBE_FAILURES,
        ),
    )


def _domain(served: Served, spec: AppSpec, provider: Any, parent: pulumi.Resource) -> None:
    svc = served.spec
    assert svc.domain
    served.domain_mapping = cloudrun.DomainMapping(
        f"{svc.name}-domain",
        name=svc.domain,
        location=spec.region,
        project=spec.project,
        metadata=cloudrun.DomainMappingMetadataArgs(namespace=spec.project, labels=spec.labels),
        spec=cloudrun.DomainMappingSpecArgs(route_name=served.service.name,
                                            certificate_mode="AUTOMATIC"),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    if provider is not None and spec.cloudflare_record(svc):
        import pulumi_cloudflare as cloudflare  # 3.5 s to import: only on this path

        served.dns_record = cloudflare.DnsRecord(
            f"{svc.name}-dns",
            zone_id=spec.cloudflare_zone_id,
            name=svc.domain,
            type="CNAME",
            content=CLOUDFLARE_CNAME_TARGET,
            proxied=False,
            ttl=1,
            comment=f"Cloud Run domain mapping of {svc.name} (stx-pulumi)",
            opts=pulumi.ResourceOptions(parent=parent, provider=provider,
                                        depends_on=[served.domain_mapping]),
        )
    else:
        served.dns_records = served.domain_mapping.statuses.apply(_resource_records)


def plain_env(spec: AppSpec, svc: ServiceSpec) -> list[tuple[str, str]]:
    # STX_SERVE_MODE as the user or the image chose it; a mode decided from EXPOSE is not sent
    env = [("STX_SERVE_MODE", spec.serve_mode)] if spec.send_serve_mode else []
    if svc.folder:
        env.append(("FOLDER", svc.folder))
    env += [("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none"),
            ("STREAMLIT_SERVER_RUN_ON_SAVE", "false")]
    return env + list(spec.env_vars)


def _revision_scaling(svc: ServiceSpec,
                      spec: AppSpec) -> cloudrunv2.ServiceTemplateScalingArgs | None:
    """The revision ceiling: the largest max the service will have, windows included, so a
    scheduled job changes the service's scaling only, never the revision's; never more,
    since Cloud Run refuses a ceiling above what the region's quota gives."""
    ceiling = revision_ceiling(spec.peak(svc))
    return None if ceiling is None else cloudrunv2.ServiceTemplateScalingArgs(
        max_instance_count=ceiling)


def _traffic(statuses: Any) -> list[dict[str, Any]]:
    return [{key: _get(s, key) for key in ("type", "revision", "percent")}
            for s in statuses or []]


def _resource_records(statuses: Any) -> list[dict[str, str]]:
    records = []
    for status in statuses or []:
        for record in _get(status, "resource_records") or []:
            records.append({key: _get(record, key) for key in ("name", "type", "rrdata")})
    return records


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        camel = "".join(w.capitalize() if i else w for i, w in enumerate(key.split("_")))
        return obj.get(key, obj.get(camel))
    return getattr(obj, key, None)
