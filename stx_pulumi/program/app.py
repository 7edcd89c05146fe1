"""The `StreamtexApp` component: registry, image, runtime identity and secret access, shared
by the app's service or its books' services (`service.py`).

The program imports only what the spec uses: the cloud builder's, the scheduler's, the
domain's and the secrets' Pulumi modules load only with a spec that needs them (each
`pulumi_gcp` module costs tens of milliseconds, `pulumi_cloudflare` seconds).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pulumi
from pulumi_gcp import artifactregistry, serviceaccount

from stx_pulumi.model.names import secret_member_name
from stx_pulumi.model.releases import RELEASE_TAG, kept
from stx_pulumi.model.spec import KEEP_IMAGES, AppSpec, Build, Migration

if TYPE_CHECKING:
    from stx_pulumi.ops.fleet import Turn
    from stx_pulumi.program.service import Served

COMPONENT_TYPE = "stx:index:StreamtexApp"


class _Component(pulumi.ComponentResource):
    """The component every stack holds (one type and name: the same URNs whatever is made in
    it): the app's image registry first."""

    def __init__(self, name: str, spec: AppSpec, opts: pulumi.ResourceOptions | None) -> None:
        super().__init__(COMPONENT_TYPE, name, {}, opts)
        self.spec = spec
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
            # scanned where the vulnerability gate needs it (each new digest is billed):
            # a protected env's repository follows the project's Container Scanning API
            # (`setup` enables it), every other one is off
            vulnerability_scanning_config=artifactregistry
            .RepositoryVulnerabilityScanningConfigArgs(
                enablement_config="INHERITED" if spec.protected else "DISABLED"),
            opts=pulumi.ResourceOptions(parent=self),
        )


class BuildBase(_Component):
    """The first cloud build's registry and build account, alone (a targeted update before
    the first build, when the services are not touched)."""

    def __init__(self, name: str, spec: AppSpec) -> None:
        from stx_pulumi.program.build import build_base

        super().__init__(name, spec, None)
        self.build_base = build_base(spec, self.repository, self)
        self.register_outputs({})


class StreamtexApp(_Component):
    """A StreamTeX app on Cloud Run: registry, image, runtime identity, and one service (with
    access and domain) for the app, or one per book."""

    def __init__(self, name: str, spec: AppSpec, build: Build | None = None, *,
                 cloudflare_token: pulumi.Input[str] | None = None,
                 migration: Migration | None = None, build_turn: Turn | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, spec, opts)
        migration = migration or Migration()
        digest = self._image(name, build or Build.of(spec), migration, build_turn)
        self.service_account = serviceaccount.Account(
            f"{name}-run-sa",
            account_id=spec.service_account_id,
            display_name=f"StreamTeX {spec.app} ({spec.env}) runtime",
            project=spec.project,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.secret_access = self._secret_access(name, spec, dict(migration.secret_members))
        self.served = self._serve(name, spec, digest, cloudflare_token)
        self.scheduled = self._schedule(name, spec)
        self.watched = self._watch(name, spec)
        first = self.served[0]  # the app's service (of books, the first book's)
        self.service, self.public_access = first.service, first.public_access
        self.domain_mapping, self.dns_record = first.domain_mapping, first.dns_record
        self.outputs = self._outputs(spec, digest, migration)
        self.register_outputs(self.outputs)

    def _image(self, name: str, build: Build, migration: Migration,
               build_turn: Turn | None) -> pulumi.Input[str]:
        """The digest the services run. Pinned by a rollback: the release's, nothing built
        (the image resource stays while the source is the one last built; else it leaves
        the state, its image kept in the registry). The cloud builder: the image `up` had
        it build, beside its bucket and account. Else the image built here."""
        spec = self.spec
        self.image: Any = None
        self.build_base: list[pulumi.Resource] = []
        if build.builder == "cloud":
            from stx_pulumi.program.build import build_base

            self.build_base = build_base(spec, self.repository, self)
        elif spec.pin is None or migration.deployed_tag == spec.image_tag:
            from stx_pulumi.program.image import local_image

            new_tag = migration.deployed_tag != spec.image_tag  # the only case that builds
            self.image = local_image(name, spec, migration.image_context or spec.build_context,
                                     self.repository.repository_id, self,
                                     build_turn if new_tag else None)
        if spec.pin:
            return spec.pin.digest
        if build.builder == "cloud":
            return build.image or spec.image_name
        return self.image.repo_digest  # type: ignore[no-any-return]

    def _serve(self, name: str, spec: AppSpec, digest: pulumi.Input[str],
               token: pulumi.Input[str] | None) -> list[Served]:
        from stx_pulumi.program.service import serve

        provider = _cloudflare(name, spec, token, pulumi.ResourceOptions(parent=self))
        return [serve(svc, spec, digest, self.service_account.email, list(self.secret_access),
                      provider, self) for svc in spec.services]

    def _schedule(self, name: str, spec: AppSpec) -> list[Any]:
        if not spec.windows:
            return []
        from stx_pulumi.program.schedule import schedule

        return schedule(name, spec, self.served, self.service_account, self)

    def _watch(self, name: str, spec: AppSpec) -> dict[str, Any]:
        """Alerts, dashboard and budget (`self.monitored`); the outputs they add."""
        self.monitored: list[pulumi.Resource] = []
        if not (spec.watch.alerts or spec.watch.budget_usd is not None):
            return {}
        from stx_pulumi.program.monitoring import watch

        outputs, self.monitored = watch(name, spec, self.served, self)
        return outputs

    def _outputs(self, spec: AppSpec, digest: pulumi.Input[str],
                 migration: Migration) -> dict[str, Any]:
        """The stack's outputs: the image, where and how it serves, the releases kept."""
        tag = spec.pin.served_tag(migration.releases, spec.image_tag) if spec.pin else (
            spec.image_tag)
        outputs: dict[str, Any] = {
            "image": digest, "image_tag": tag, "region": spec.region,
            "project": spec.project, "serve_mode": spec.serve_mode, "port": spec.port,
            "protected": spec.protected}
        if spec.pin:
            outputs["pinned_release"] = spec.pin.release
        if migration.record is not None:
            outputs["releases"] = _releases(migration, _served_digest(spec, migration, digest),
                                            self.served)
        elif migration.releases:  # an update that records none keeps those recorded
            outputs["releases"] = list(migration.releases)
        if spec.windows:
            outputs["events"] = {w.name: w.describe().partition(": ")[2] for w in spec.windows}
        if spec.books:
            outputs["books"] = {s.spec.book: s.outputs() for s in self.served}
        else:
            outputs.update(self.served[0].outputs())
        outputs.update(self.watched)
        return outputs

    def _secret_access(self, name: str, spec: AppSpec, legacy: Mapping[str, str]) -> list[Any]:
        """One member per secret; `legacy` names the member an earlier release made for it
        (one per variable), adopted through an alias so the binding never goes away."""
        if not spec.secret_env:
            return []
        from pulumi_gcp import secretmanager

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


def deploy(spec: AppSpec, build: Build | None = None,
           cloudflare_token: pulumi.Input[str] | None = None,
           migration: Migration | None = None, build_turn: Turn | None = None) -> StreamtexApp:
    """The stack program: one StreamtexApp and the stack outputs. Call inside a Pulumi run;
    `build_turn` is a fleet's build slot (see `local_image`)."""
    build = build or Build.of(spec)
    load_modules(spec, build)
    for warning in spec.warnings:
        pulumi.log.warn(warning)
    app = StreamtexApp(spec.service_name, spec, build, cloudflare_token=cloudflare_token,
                       migration=migration, build_turn=build_turn)
    for key, value in app.outputs.items():
        pulumi.export(key, value)
    return app


_LOADING = threading.Lock()


def deploy_build_base(spec: AppSpec, outputs: Mapping[str, Any]) -> BuildBase:
    """The program of the first cloud build's targeted update: the registry and build base
    alone (the same names as in `deploy`), the stack's outputs kept as they were."""
    load_modules(spec, Build("cloud"))
    app = BuildBase(spec.service_name, spec)
    for key, value in outputs.items():
        pulumi.export(key, value)
    return app


def load_modules(spec: AppSpec, build: Build) -> None:
    """Load the pulumi_gcp modules this spec uses, one thread at a time: a fleet runs programs
    in threads, and on Python before 3.12.3 a lazily loaded module's attributes can be missing
    for a second thread while the first loads it (CPython gh-114763)."""
    import importlib

    wanted = [("artifactregistry", "Repository"), ("serviceaccount", "Account"),
              ("cloudrunv2", "Service")]
    if build.builder == "cloud":
        wanted += [("storage", "Bucket"), ("projects", "IAMMember")]
    else:
        wanted += [("organizations", "get_client_config")]
    if spec.secret_env:
        wanted += [("secretmanager", "SecretIamMember")]
    if spec.domains:
        wanted += [("cloudrun", "DomainMapping")]
    if spec.windows:
        wanted += [("cloudscheduler", "Job"), ("projects", "IAMMember"),
                   ("workflows", "Workflow")]
    if spec.watch.alerts or spec.watch.emails:
        wanted += [("monitoring", "AlertPolicy")]
    if spec.watch.budget_usd is not None:
        wanted += [("billing", "Budget"), ("organizations", "get_project"),
                   ("pubsub", "Topic"), ("eventarc", "Trigger"), ("workflows", "Workflow"),
                   ("projects", "IAMMember"), ("monitoring", "AlertPolicy")]
    with _LOADING:
        for module, name in wanted:
            getattr(importlib.import_module(f"pulumi_gcp.{module}"), name)


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
