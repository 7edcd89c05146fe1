"""The `StreamtexApp` component: registry, image, runtime identity and secret access, shared
by the app's service or its books' services (`service.py`)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi_gcp import artifactregistry, secretmanager, serviceaccount

from stx_pulumi.model.names import secret_member_name
from stx_pulumi.model.releases import RELEASE_TAG, kept
from stx_pulumi.model.spec import KEEP_IMAGES, AppSpec, Migration
from stx_pulumi.program.build import build_base
from stx_pulumi.program.image import local_image
from stx_pulumi.program.schedule import schedule
from stx_pulumi.program.service import serve

COMPONENT_TYPE = "stx:index:StreamtexApp"


class StreamtexApp(pulumi.ComponentResource):
    """A StreamTeX app on Cloud Run: registry, image, runtime identity, and one service (with
    access and domain) for the app, or one per book."""

    def __init__(
        self,
        name: str,
        spec: AppSpec,
        cloudflare_token: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        migration: Migration | None = None,
        build_turn: Any = None,
        build_base_only: bool = False,
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, {}, opts)
        self.spec = spec
        child = pulumi.ResourceOptions(parent=self)
        migration = migration or Migration()

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
        if build_base_only:  # the first cloud build's registry and build account, alone
            self.build_base = build_base(spec, self.repository, self)
            self.outputs: dict[str, Any] = {}
            self.register_outputs({})
            return
        # Pinned by a rollback: the release's image runs and nothing is built. The image
        # resource stays as it is while the source is the one last built; otherwise it
        # leaves the state (its image stays in the registry: retain_on_delete).
        building = spec.pin is None or migration.deployed_tag == spec.image_tag
        new_tag = migration.deployed_tag != spec.image_tag  # the only case that builds
        self.image = local_image(
            name, spec, migration.image_context or spec.build_context,
            self.repository.repository_id, self, build_turn if new_tag else None
        ) if building and spec.builder != "cloud" else None
        # the cloud builder: its resources, and the image `up` had it build (before the
        # first build they are made alone, when the services are not touched)
        self.build_base = build_base(spec, self.repository, self) if (
            spec.builder == "cloud") else []
        digest = spec.pin.digest if spec.pin else (
            spec.built_image or spec.image_name if spec.builder == "cloud"
            else self.image.repo_digest)  # type: ignore[union-attr]
        self.service_account = serviceaccount.Account(
            f"{name}-run-sa",
            account_id=spec.service_account_id,
            display_name=f"StreamTeX {spec.app} ({spec.env}) runtime",
            project=spec.project,
            opts=child,
        )
        self.secret_access = self._secret_access(name, spec, dict(migration.secret_members))
        provider = _cloudflare(name, spec, cloudflare_token, child)
        self.served = [serve(svc, spec, digest, self.service_account.email,
                             list(self.secret_access), provider, self)
                       for svc in spec.services]
        self.scheduled = schedule(name, spec, self.served, self.service_account, self)
        first = self.served[0]  # the app's service (of books, the first book's)
        self.service, self.public_access = first.service, first.public_access
        self.domain_mapping, self.dns_record = first.domain_mapping, first.dns_record

        self.outputs = {
            "image": digest,
            "image_tag": spec.image_tag,
            "region": spec.region,
            "project": spec.project,
            "serve_mode": spec.serve_mode,
            "port": spec.port,
            "protected": spec.protected,
        }
        if spec.pin:
            self.outputs["pinned_release"] = spec.pin.release
        if migration.record is not None:
            self.outputs["releases"] = _releases(migration, _served_digest(spec, migration,
                                                                           digest), self.served)
        elif migration.releases:  # an update that records none keeps those recorded
            self.outputs["releases"] = list(migration.releases)
        if spec.windows:
            self.outputs["events"] = {w.name: w.describe().partition(": ")[2]
                                      for w in spec.windows}
        if spec.books:
            self.outputs["books"] = {s.spec.book: s.outputs() for s in self.served}
        else:
            self.outputs.update(first.outputs())
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


def deploy(spec: AppSpec, cloudflare_token: pulumi.Input[str] | None = None,
           migration: Migration | None = None, build_turn: Any = None) -> StreamtexApp:
    """The stack program: one StreamtexApp and the stack outputs. Call inside a Pulumi run;
    `build_turn` is a fleet's build slot (see `local_image`)."""
    _load_modules()
    for warning in spec.warnings:
        pulumi.log.warn(warning)
    app = StreamtexApp(spec.service_name, spec, cloudflare_token, migration=migration,
                       build_turn=build_turn)
    for key, value in app.outputs.items():
        pulumi.export(key, value)
    return app


_LOADING = threading.Lock()


def deploy_build_base(spec: AppSpec, outputs: Mapping[str, Any]) -> StreamtexApp:
    """The program of the first cloud build's targeted update: the registry and build base
    alone (the same names as in `deploy`), the stack's outputs kept as they were."""
    _load_modules()
    app = StreamtexApp(spec.service_name, spec, build_base_only=True)
    for key, value in outputs.items():
        pulumi.export(key, value)
    return app


def _load_modules() -> None:
    """Load pulumi_gcp's lazily loaded modules one thread at a time: a fleet runs programs in
    threads, and on Python before 3.12.3 a lazily loaded module's attributes can be missing
    for a second thread while the first loads it (CPython gh-114763)."""
    from pulumi_gcp import (
        cloudrun,
        cloudrunv2,
        cloudscheduler,
        organizations,
        projects,
        storage,
        workflows,
    )

    with _LOADING:
        for module, name in ((artifactregistry, "Repository"), (secretmanager, "SecretIamMember"),
                             (serviceaccount, "Account"), (organizations, "get_client_config"),
                             (cloudrun, "DomainMapping"), (cloudrunv2, "Service"),
                             (cloudscheduler, "Job"), (projects, "IAMMember"),
                             (storage, "Bucket"), (workflows, "Workflow")):
            getattr(module, name)


def _served_digest(spec: AppSpec, migration: Migration,
                   digest: pulumi.Input[str]) -> pulumi.Input[str]:
    """The image that serves: under a fast-path pin, the pinned release's (its revisions run
    it), not the one the template names."""
    if spec.pin is None or not spec.pin.revisions:
        return digest
    return next((str(r.get("digest")) for r in migration.releases
                 if isinstance(r, Mapping) and r.get("n") == spec.pin.release), digest)


def _releases(migration: Migration, digest: pulumi.Input[str],
              served: list[Any]) -> pulumi.Output[list[Any]]:
    """The records kept (the last KEEP), this update's completed with what it serves: the
    image, and each service's revision taking the traffic (a pinned one, else the newest)."""
    revisions = pulumi.Output.all(**{s.spec.name: s.pinned_revision or
                                     s.service.latest_ready_revision for s in served})
    return pulumi.Output.all(digest, revisions).apply(lambda done: kept([
        *list(migration.releases),
        {**dict(migration.record or {}), "digest": done[0], "revisions": done[1]}]))


def _cloudflare(name: str, spec: AppSpec, token: pulumi.Input[str] | None,
                child: pulumi.ResourceOptions) -> Any:
    """The Cloudflare provider, when stx-pulumi creates DNS records (one for every book)."""
    if not spec.cloudflare_dns or token is None:
        return None
    import pulumi_cloudflare as cloudflare  # 3.5 s to import: only on this path

    return cloudflare.Provider(f"{name}-cloudflare", api_token=pulumi.Output.secret(token),
                               opts=child)


def _cleanup_policies() -> list[artifactregistry.RepositoryCleanupPolicyArgs]:
    """Keep the few newest images, delete the rest: stored images are the only idle cost."""
    return [
        artifactregistry.RepositoryCleanupPolicyArgs(  # the images rollback offers
            id="keep-releases",
            action="KEEP",
            condition=artifactregistry.RepositoryCleanupPolicyConditionArgs(
                tag_state="TAGGED", tag_prefixes=[RELEASE_TAG]),
        ),
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
