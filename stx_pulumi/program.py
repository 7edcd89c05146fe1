"""The Pulumi program: a `StreamtexApp` component that puts one AppSpec on Cloud Run.

Imported only when a command needs Pulumi (never by `--help`); `pulumi_cloudflare` is imported
only when the spec asks for a Cloudflare DNS record.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker as docker
from pulumi_gcp import (
    artifactregistry,
    cloudrun,
    cloudrunv2,
    organizations,
    secretmanager,
    serviceaccount,
)

from stx_pulumi.errors import InputError
from stx_pulumi.spec import (
    KEEP_IMAGES,
    SETTINGS,
    AppSpec,
    Migration,
    option_label,
    revision_max_instances,
    secret_member_name,
    split_stack_name,
)
from stx_pulumi.workspace import SECRET, Workspace, find_workspace, with_machine_defaults

COMPONENT_TYPE = "stx:index:StreamtexApp"
CLOUDFLARE_CNAME_TARGET = "ghs.googlehosted.com"
# TCP startup probe: the largest failure_threshold × period_seconds Cloud Run allows (240 s),
# checked every 10 s so a fast app is ready at once; no initial delay, which would hold back
# every new instance during a scale-out.
PROBE_PERIOD_S = 10
PROBE_FAILURES = 24


class StreamtexApp(pulumi.ComponentResource):
    """A StreamTeX app on Cloud Run: registry, image, runtime identity, service, access, domain."""

    def __init__(
        self,
        name: str,
        spec: AppSpec,
        cloudflare_token: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        migration: Migration | None = None,
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, {}, opts)
        self.spec = spec
        child = pulumi.ResourceOptions(parent=self)

        self.repository = artifactregistry.Repository(
            f"{name}-repo",
            repository_id=spec.repository_id,
            format="DOCKER",
            location=spec.region,
            project=spec.project,
            description=f"Images of the StreamTeX app {spec.app} ({spec.env})",
            labels=spec.labels,
            cleanup_policy_dry_run=False,
            cleanup_policies=_cleanup_policies(),
            opts=child,
        )
        migration = migration or Migration()
        self.image = self._image(name, spec, migration.image_context or spec.build_context,
                                 child)
        self.service_account = serviceaccount.Account(
            f"{name}-run-sa",
            account_id=spec.service_account_id,
            display_name=f"StreamTeX {spec.app} ({spec.env}) runtime",
            project=spec.project,
            opts=child,
        )
        self.secret_access = self._secret_access(name, spec, dict(migration.secret_members))
        self.service = self._service(name, spec, child)
        self.public_access = (
            cloudrunv2.ServiceIamMember(
                f"{name}-public",
                name=self.service.name,
                location=spec.region,
                project=spec.project,
                role="roles/run.invoker",
                member="allUsers",
                opts=child,
            )
            if spec.public
            else None
        )
        self.domain_mapping = None
        self.dns_record = None
        self.dns_records: pulumi.Output[Any] | None = None
        if spec.domain:
            self._domain(name, spec, cloudflare_token, child)

        self.outputs: dict[str, Any] = {
            "url": self.service.uri,
            "custom_url": f"https://{spec.domain}" if spec.domain else None,
            "service": self.service.name,
            "image": self.image.repo_digest,
            "image_tag": spec.image_tag,
            "region": spec.region,
            "project": spec.project,
            "min_instances": spec.min_instances,
            "max_instances": spec.max_instances,
            "revision": self.service.latest_created_revision,
            "ready_revision": self.service.latest_ready_revision,
            "traffic": self.service.traffic_statuses.apply(_traffic),
            "serve_mode": spec.serve_mode,
            "port": spec.port,
            "public": spec.public,
            "protected": spec.protected,
        }
        if self.dns_records is not None:
            self.outputs["dns_records"] = self.dns_records
        self.register_outputs(self.outputs)

    def _secret_access(self, name: str, spec: AppSpec,
                       legacy: Mapping[str, str]) -> list[secretmanager.SecretIamMember]:
        """One member per secret; `legacy` names the member an earlier release made for it
        (one per variable), adopted through an alias so the binding never goes away."""
        member = pulumi.Output.concat("serviceAccount:", self.service_account.email)
        return [
            secretmanager.SecretIamMember(
                secret_member_name(name, secret),
                project=spec.project,
                secret_id=secret,
                role="roles/secretmanager.secretAccessor",
                member=member,
                opts=pulumi.ResourceOptions(parent=self, aliases=[
                    pulumi.Alias(name=legacy[secret])] if secret in legacy else None),
            )
            for secret in sorted({ref.secret for ref in spec.secret_env})
        ]

    def _image(self, name: str, spec: AppSpec, context: str,
               child: pulumi.ResourceOptions) -> docker.Image:
        """The image, built from `context` relative to the workspace (the engine's working
        directory under automation and under plain `pulumi`), so state holds no machine path."""
        token = organizations.get_client_config_output(
            opts=pulumi.InvokeOptions(parent=self)
        ).access_token
        return docker.Image(
            f"{name}-image",
            image_name=pulumi.Output.concat(
                spec.registry, "/", spec.project, "/", self.repository.repository_id, "/",
                spec.app, ":", spec.image_tag,
            ),
            build=docker.DockerBuildArgs(
                context=context,
                dockerfile=f"{context}/Dockerfile",
                platform="linux/amd64",
                args={"SOURCE_COMMIT": spec.image_tag},
            ),
            registry=docker.RegistryArgs(
                server=spec.registry,
                username="oauth2accesstoken",
                password=pulumi.Output.secret(token),
            ),
            skip_push=False,
            opts=child,
        )

    def _service(self, name: str, spec: AppSpec, child: pulumi.ResourceOptions) -> Any:
        envs = [cloudrunv2.ServiceTemplateContainerEnvArgs(name=k, value=v)
                for k, v in _plain_env(spec)]
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
        container = cloudrunv2.ServiceTemplateContainerArgs(
            image=self.image.repo_digest,
            ports=cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=spec.port),
            envs=envs,
            resources=cloudrunv2.ServiceTemplateContainerResourcesArgs(
                limits={"cpu": str(spec.cpu), "memory": spec.memory},
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
        return cloudrunv2.Service(
            spec.service_name,
            name=spec.service_name,
            location=spec.region,
            project=spec.project,
            ingress="INGRESS_TRAFFIC_ALL",
            labels=spec.labels,
            deletion_protection=spec.protected,
            scaling=cloudrunv2.ServiceScalingArgs(
                min_instance_count=spec.min_instances,
                max_instance_count=spec.max_instances,
            ),
            template=cloudrunv2.ServiceTemplateArgs(
                containers=[container],
                service_account=self.service_account.email,
                max_instance_request_concurrency=spec.concurrency,
                scaling=_revision_scaling(spec),
                timeout=f"{spec.timeout_s}s",
                session_affinity=True,
                labels=spec.labels,
            ),
            traffics=[cloudrunv2.ServiceTrafficArgs(
                type="TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", percent=100)],
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=list(self.secret_access))
            ),
        )

    def _domain(self, name: str, spec: AppSpec, cloudflare_token: pulumi.Input[str] | None,
                child: pulumi.ResourceOptions) -> None:
        assert spec.domain
        self.domain_mapping = cloudrun.DomainMapping(
            f"{name}-domain",
            name=spec.domain,
            location=spec.region,
            project=spec.project,
            metadata=cloudrun.DomainMappingMetadataArgs(namespace=spec.project,
                                                        labels=spec.labels),
            spec=cloudrun.DomainMappingSpecArgs(route_name=self.service.name,
                                                certificate_mode="AUTOMATIC"),
            opts=child,
        )
        if spec.cloudflare_dns and cloudflare_token is not None:
            import pulumi_cloudflare as cloudflare  # 3.5 s to import: only on this path

            provider = cloudflare.Provider(
                f"{name}-cloudflare",
                api_token=pulumi.Output.secret(cloudflare_token),
                opts=child,
            )
            self.dns_record = cloudflare.DnsRecord(
                f"{name}-dns",
                zone_id=spec.cloudflare_zone_id,
                name=spec.domain,
                type="CNAME",
                content=CLOUDFLARE_CNAME_TARGET,
                proxied=False,
                ttl=1,
                comment=f"Cloud Run domain mapping of {spec.service_name} (stx-pulumi)",
                opts=pulumi.ResourceOptions(parent=self, provider=provider,
                                            depends_on=[self.domain_mapping]),
            )
        else:
            self.dns_records = self.domain_mapping.statuses.apply(_resource_records)


def deploy(spec: AppSpec, cloudflare_token: pulumi.Input[str] | None = None,
           migration: Migration | None = None) -> StreamtexApp:
    """The stack program: one StreamtexApp and the stack outputs. Call inside a Pulumi run."""
    for warning in spec.warnings:
        pulumi.log.warn(warning)
    app = StreamtexApp(spec.service_name, spec, cloudflare_token, migration=migration)
    for key, value in app.outputs.items():
        pulumi.export(key, value)
    return app


def settings_from_config() -> dict[str, Any]:
    """Every stx-pulumi setting present in the stack's `pulumi.Config` (secrets: presence only)."""
    settings: dict[str, Any] = {}
    for setting in SETTINGS:
        namespace, _, key = setting.key.partition(":")
        config = pulumi.Config(namespace)
        value = config.get_secret(key) if setting.secret else config.get(key)
        if value is not None:
            settings[setting.key] = SECRET if setting.secret else value
    return settings


def deploy_from_config(environ: Mapping[str, str] = os.environ) -> StreamtexApp:
    """The program as Pulumi.yaml's `main` runs it: the spec comes from the stack's config,
    paths relative to the workspace wherever the program's working directory is."""
    app, env = split_stack_name(pulumi.get_stack())
    settings = with_machine_defaults(settings_from_config(), environ)
    if not settings.get("stx:path"):
        raise InputError(f"{option_label('stx:path')}: not set in stack {pulumi.get_stack()}")
    spec = Workspace(workspace_root()).spec(settings, app, env)
    if spec.project_is_placeholder:
        raise InputError(f"{option_label('gcp:project')}: not set in stack {pulumi.get_stack()}")
    return deploy(spec, cloudflare_token(None, environ))


def workspace_root() -> Path:
    """The workspace: Pulumi's root directory (the folder of Pulumi.yaml) when the CLI set it,
    else the nearest folder at or above the working directory holding the stx-pulumi
    Pulumi.yaml (inline programs and mocks have no root directory)."""
    root = pulumi.get_root_directory()
    if root and (Path(root) / "Pulumi.yaml").is_file():
        return Path(root).resolve()
    found = find_workspace(Path.cwd())
    if found is None:
        raise InputError(f"no stx-pulumi Pulumi.yaml at or above {Path.cwd()}")
    return found.root


def cloudflare_token(given: str | None = None,
                     environ: Mapping[str, str] = os.environ) -> pulumi.Output[str] | None:
    """The token given (or CLOUDFLARE_API_TOKEN: a rotated token wins), else the stack's
    secret `cloudflare:apiToken`, as a secret."""
    given = given or environ.get("CLOUDFLARE_API_TOKEN")
    if given:
        return pulumi.Output.secret(given)
    return pulumi.Config("cloudflare").get_secret("apiToken")


def _plain_env(spec: AppSpec) -> list[tuple[str, str]]:
    # STX_SERVE_MODE as the user or the image chose it; a mode decided from EXPOSE is not sent
    env = [("STX_SERVE_MODE", spec.serve_mode)] if spec.send_serve_mode else []
    if spec.folder:
        env.append(("FOLDER", spec.folder))
    env += [("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none"),
            ("STREAMLIT_SERVER_RUN_ON_SAVE", "false")]
    return env + list(spec.env_vars)


def _revision_scaling(spec: AppSpec) -> cloudrunv2.ServiceTemplateScalingArgs | None:
    ceiling = revision_max_instances(spec.max_instances)
    return None if ceiling is None else cloudrunv2.ServiceTemplateScalingArgs(
        max_instance_count=ceiling)


def _cleanup_policies() -> list[artifactregistry.RepositoryCleanupPolicyArgs]:
    """Keep the few newest images, delete the rest: stored images are the only idle cost."""
    return [
        artifactregistry.RepositoryCleanupPolicyArgs(
            id="keep-recent",
            action="KEEP",
            most_recent_versions=artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                keep_count=KEEP_IMAGES
            ),
        ),
        artifactregistry.RepositoryCleanupPolicyArgs(
            id="delete-older",
            action="DELETE",
            condition=artifactregistry.RepositoryCleanupPolicyConditionArgs(
                tag_state="ANY", older_than="86400s"
            ),
        ),
    ]


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
