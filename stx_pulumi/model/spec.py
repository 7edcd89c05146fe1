"""The deployment spec: one validated, immutable AppSpec of one app in one env, and the
ServiceSpec of each service it serves (the app's own, or one per book). `build_spec`
(`stx_pulumi.model.build`) makes it; nothing patches it after."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from stx_pulumi.model import events
from stx_pulumi.model.names import is_apex, service_account_id, stack_name
from stx_pulumi.model.releases import Pin
from stx_pulumi.model.serving import Scaling, Serving, decide
from stx_pulumi.model.watch import Watch

BUILDERS = ("auto", "local", "cloud")


# Folders a cloud build would upload on every build unless dockerignored.
UPLOAD_HEAVY = frozenset({".venv", "venv", ".git", "node_modules"})


SERVE_MODE_PORTS = {"dual": 80, "static-only": 80, "streamlit-only": 8501}


CPU_MEMORY_MIB = {1: (512, 4096), 2: (512, 8192), 4: (2048, 16384), 6: (4096, 24576),
                  8: (4096, 32768)}


# Regions with Cloud Run domain mappings (docs, 2026-04).
DOMAIN_MAPPING_REGIONS = frozenset({
    "asia-east1", "asia-northeast1", "asia-southeast1", "europe-north1", "europe-west1",
    "europe-west4", "us-central1", "us-east1", "us-east4", "us-west1",
})


PLACEHOLDER_PROJECT = "your-gcp-project"


PROTECTED_ENV = "prod"


KEEP_IMAGES = 5  # images the registry's cleanup policy keeps


RESERVED_ENV_VARS = frozenset({"PORT", "STX_SERVE_MODE", "FOLDER"})


RESERVED_ENV_PREFIX = "K_"  # Cloud Run sets K_SERVICE, K_REVISION, K_CONFIGURATION


CONTEXT_WARN_BYTES = 500_000_000


MAX_INSTANCES = 1000


REVISION_DEFAULT_MAX = 100


@dataclass(frozen=True)
class SecretEnv:
    """An env var whose value Cloud Run reads from Secret Manager."""

    var: str
    secret: str
    version: str = "latest"


@dataclass(frozen=True)
class ServiceSpec:
    """One Cloud Run service: the app's own, or one book's (its FOLDER in the shared image)."""

    name: str
    book: str | None
    folder: str | None
    min_instances: int
    max_instances: int
    cpu: int
    memory: str
    concurrency: int
    timeout_s: int
    public: bool
    domain: str | None = None


@dataclass(frozen=True)
class AppSpec:
    """Everything needed to deploy one app to one environment, validated."""

    app: str
    env: str
    source: Path
    image_tag: str
    serve_mode: str
    project: str
    region: str
    base: ServiceSpec  # the app's own service; for books, the settings they start from
    protected: bool
    port: int = 80
    send_serve_mode: bool = False  # the user's or the image's choice, never a guess
    cloudflare_zone_id: str | None = None
    has_cloudflare_token: bool = False
    env_vars: tuple[tuple[str, str], ...] = ()
    secret_env: tuple[SecretEnv, ...] = ()
    project_is_placeholder: bool = False
    warnings: tuple[str, ...] = ()
    context: str = ""  # the app folder relative to the workspace: what the image build gets
    books: tuple[ServiceSpec, ...] = ()  # a repository of books: one service each
    windows: tuple[events.Window, ...] = ()  # event windows not yet over
    expired: tuple[str, ...] = ()  # windows over: dropped from stx:events by the next up
    now: datetime = field(default_factory=events.clock)  # the clock every decision reads

    pin: Pin | None = None  # a rollback's: the image and revisions every up keeps
    builder: str = "auto"  # auto, local or cloud, as set; `up` decides auto (`Build`)
    build_region: str = ""  # where Cloud Build runs
    heavy_folders: tuple[str, ...] = ()  # .venv, .git, node_modules... in the build context
    settings_digest: str = ""  # of the settings it was built from: `up --changed` compares
    watch: Watch = field(default_factory=Watch)  # alerts, dashboard, budget
    scan_block: str = "CRITICAL"  # the vulnerability gate of protected envs

    def serving(self, service: ServiceSpec) -> Serving:
        """What `service` serves now: the pin's image and revision, its active window's
        scaling, else its own."""
        base = Scaling(service.min_instances, service.max_instances)
        return decide(base, service.concurrency, self.windows, self.now, service.book,
                      self.pin, service.name)

    def scaling(self, service: ServiceSpec) -> Scaling:
        return self.serving(service).scaling

    def peak(self, service: ServiceSpec, windows: tuple[events.Window, ...] | None = None
             ) -> int:
        """The most instances `service` may have: its base max, or a window's (of `windows`,
        by default the spec's)."""
        return max([service.max_instances, *(
            w.scaling(service.concurrency, service.max_instances)[1]
            for w in (self.windows if windows is None else windows) if w.covers(service.book))])

    @property
    def services(self) -> tuple[ServiceSpec, ...]:
        """What serves: one service per book, else the app's one service."""
        return self.books or (self.base,)

    @property
    def build_context(self) -> str:
        return self.context or str(self.source)

    @property
    def stack(self) -> str:
        return stack_name(self.app, self.env)

    @property
    def service_name(self) -> str:
        """The app's service, and the name its shared resources (registry, image, runtime
        account) are made under, books or not."""
        return f"{self.app}-{self.env}"

    @property
    def repository_id(self) -> str:
        return f"{self.app}-{self.env}"

    @property
    def service_account_id(self) -> str:
        return service_account_id(self.app, self.env)

    @property
    def build_account_id(self) -> str:
        return service_account_id(self.app, self.env, "build")

    @property
    def build_base_names(self) -> tuple[str, ...]:
        """The cloud builder's resources, as the program names them: the registry, staging
        bucket, build account and its push, read and log rights."""
        return tuple(f"{self.service_name}-{part}" for part in (
            "repo", "build-bucket", "build-sa", "build-push", "build-read", "build-logs"))

    @property
    def staging_bucket(self) -> str:
        """The cloud builder's upload bucket: per stack (destroy leaves nothing), ≤ 63
        characters."""
        name = f"{self.project}-{self.app}-{self.env}-build"
        if len(name) <= 63:
            return name
        return f"{self.project}-{hashlib.sha256(name.encode()).hexdigest()[:12]}-build"

    @property
    def registry(self) -> str:
        return f"{self.region}-docker.pkg.dev"

    @property
    def image_name(self) -> str:
        return f"{self.registry}/{self.project}/{self.repository_id}/{self.app}:{self.image_tag}"

    @property
    def labels(self) -> dict[str, str]:
        return {"managed-by": "streamtex", "stx-app": self.app, "stx-env": self.env}

    @property
    def cloudflare_dns(self) -> bool:
        """True when stx-pulumi creates a DNS record in Cloudflare itself."""
        return any(self.cloudflare_record(svc) for svc in self.services)

    def cloudflare_record(self, service: ServiceSpec) -> bool:
        """True when stx-pulumi creates this service's domain record in Cloudflare."""
        return bool(service.domain and self.cloudflare_zone_id and not is_apex(service.domain))

    @property
    def domains(self) -> list[str]:
        return [svc.domain for svc in self.services if svc.domain]


@dataclass(frozen=True)
class Build:
    """Where this update's image comes from, decided by `up` (never a patch of the spec):
    "local" (this machine's Docker) or "cloud" (Cloud Build), and the digest a cloud build
    made (None: the registry's tagged image, or the local build's)."""

    builder: str = "local"
    image: str | None = None

    @staticmethod
    def of(spec: AppSpec) -> Build:
        """As the settings say, `auto` read as local (what `plan` and `preview` assume)."""
        return Build("cloud" if spec.builder == "cloud" else "local")


@dataclass(frozen=True)
class Migration:
    """What an update carries over from a stack deployed by an earlier release, so that the
    upgrade replaces nothing: the secret access member each secret adopts (by its old name),
    and the image build context recorded as an absolute path (kept while the tag is the same,
    so the image is not rebuilt for a path spelling)."""

    secret_members: tuple[tuple[str, str], ...] = ()
    image_context: str | None = None
    releases: tuple[Any, ...] = ()  # the records the last deployment kept
    record: Mapping[str, Any] | None = None  # this update's, but for its digest and revisions
    deployed_tag: str | None = None  # the image tag the stack last built
