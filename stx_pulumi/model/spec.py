"""The deployment spec: settings + defaults + app-folder facts → one validated, immutable AppSpec.

`build_spec` is pure and is the only place settings are interpreted. The CLI calls it with the
stack config file merged with its options; the Pulumi program (`pulumi_main`) calls it with
`pulumi.Config` values. Both hand it the same kind of mapping, keyed by config key.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from stx_pulumi.errors import SpecError, shown, whole_number
from stx_pulumi.model import events
from stx_pulumi.model.releases import Pin, read_pin
from stx_pulumi.model.serving import Scaling, Serving, decide
from stx_pulumi.source import SourceFacts


@dataclass(frozen=True)
class Setting:
    """One stack config key, the CLI option that sets it, and its meaning."""

    key: str
    option: str | None
    default: str
    help: str
    secret: bool = False


# Where Cloud Build may run for every project: "depending on usage, some projects might be
# restricted to using Cloud Build in the following regions" (cloud.google.com/build/docs/
# locations, "Restricted regions for some projects", 2026-12).
OPEN_BUILD_REGIONS = ("us-central1", "us-west2", "europe-west1", "asia-east1",
                      "australia-southeast1", "southamerica-east1")

SETTINGS: tuple[Setting, ...] = (
    Setting("stx:path", "--path", "(APP when it is a folder)",
            "App folder (the Docker build context), relative to the workspace."),
    Setting("gcp:project", "--project", "GOOGLE_CLOUD_PROJECT, else gcloud's project",
            "Google Cloud project id."),
    Setting("gcp:region", "--region", "europe-west1", "Cloud Run region."),
    Setting("stx:serveMode", "--serve-mode", "the Dockerfile's (see the README's table)",
            "dual | static-only | streamlit-only."),
    Setting("stx:port", "--port", "80 for dual/static-only, 8501 for streamlit-only",
            "The container port Cloud Run sends requests to."),
    Setting("stx:minInstances", "--min", "0", "Minimum instances (0 = scale to zero)."),
    Setting("stx:maxInstances", "--max", "10", "Maximum instances, 1-1000."),
    Setting("stx:cpu", "--cpu", "1", "vCPU per instance: 1, 2, 4, 6 or 8."),
    Setting("stx:memory", "--memory", "512Mi", "Memory per instance, e.g. 512Mi or 2Gi."),
    Setting("stx:concurrency", "--concurrency", "80", "Requests per instance, 1-1000."),
    Setting("stx:timeout", "--timeout", "3600", "Request timeout in seconds, 1-3600."),
    Setting("stx:public", "--public/--private", "true",
            "Public access (allUsers may invoke the service)."),
    Setting("stx:domain", "--domain", "(none)", "Custom domain, e.g. course.example.org."),
    Setting("stx:cloudflareZoneId", "--cloudflare-zone", "(none)",
            "Cloudflare zone id: create the domain's DNS record there."),
    Setting("cloudflare:apiToken", None, "CLOUDFLARE_API_TOKEN",
            "Cloudflare API token (secret), needed with a Cloudflare zone.", secret=True),
    Setting("stx:envVars", "--env-var", "{}", "Extra environment variables, K=V."),
    Setting("stx:secretEnv", "--secret-env", "{}",
            "Env vars read from Secret Manager, VAR=SECRET[:VERSION]."),
    Setting("stx:folder", "--folder", "(none)",
            "FOLDER: the book's folder inside the build context (a repository of books)."),
    Setting("stx:books", "--book", "(none)",
            "Books of one build context, one Cloud Run service each: NAME=FOLDER (see the "
            "README's books section)."),
    Setting("stx:events", None, "(none)",
            "Event windows (set with `stx-pulumi event add`): scaling for a class, scheduled."),
    Setting("stx:pin", None, "(none)",
            "A rollback's pin (set by `stx-pulumi rollback`, removed by `up --unpin`)."),
    Setting("stx:protected", None, "true for env prod",
            "Deletion protection; protected envs need explicit confirmation."),
    Setting("stx:builder", "--builder", "auto",
            "Where the image is built: local (this machine's Docker), cloud (Cloud Build), "
            "auto (local when a Docker daemon answers, else cloud)."),
    Setting("stx:buildRegion", "--build-region",
            "the Cloud Run region when every project may build there, else the nearest of "
            + ", ".join(OPEN_BUILD_REGIONS),
            "Where Cloud Build runs (the image still goes to the Cloud Run region's registry)."),
)
BUILDERS = ("auto", "local", "cloud")
# Folders a cloud build would upload on every build unless dockerignored.
UPLOAD_HEAVY = frozenset({".venv", "venv", ".git", "node_modules"})
SETTINGS_BY_KEY = {s.key: s for s in SETTINGS}

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
# What a book may set for itself (stx:books.NAME.KEY), and the setting it overrides.
BOOK_KEYS = {"minInstances": "stx:minInstances", "maxInstances": "stx:maxInstances",
             "cpu": "stx:cpu", "memory": "stx:memory", "concurrency": "stx:concurrency",
             "timeout": "stx:timeout", "public": "stx:public", "domain": "stx:domain"}
RESERVED_ENV_PREFIX = "K_"  # Cloud Run sets K_SERVICE, K_REVISION, K_CONFIGURATION
# Provider settings the gcp and cloudflare providers read from the stack config
# (pulumi_gcp/config/vars.py, pulumi_cloudflare/config/vars.py; tests/test_validation.py keeps
# these honest); gcp's `<api>CustomEndpoint` keys are accepted by their suffix.
GCP_PROVIDER_KEYS = frozenset({
    "accessToken", "addPulumiAttributionLabel", "batching", "billingProject", "credentials",
    "defaultLabels", "deletionPolicy", "disableGlobalProjectWarning", "disableGooglePartnerName",
    "externalCredentials", "googlePartnerName", "impersonateServiceAccount",
    "impersonateServiceAccountDelegates", "pollInterval", "preferGlobalEndpoints",
    "preferRegionalEndpoints", "project", "pulumiAttributionLabelAdditionStrategy", "region",
    "requestReason", "requestTimeout", "scopes", "skipRegionValidation", "universeDomain",
    "userProjectOverride", "zone",
})
CLOUDFLARE_PROVIDER_KEYS = frozenset({"apiKey", "apiToken", "apiUserServiceKey", "baseUrl",
                                      "email", "userAgentOperatorSuffix"})

APP_RE = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
ENV_RE = re.compile(r"^[a-z][a-z0-9-]*$")
PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
REGION_RE = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
MEMORY_RE = re.compile(r"^([1-9][0-9]*)(Mi|Gi)$")
LABEL_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
HOST_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_REF_RE = re.compile(r"^([A-Za-z0-9_-]{1,255})(?::([1-9][0-9]*|latest))?$")
ZONE_RE = re.compile(r"^[0-9a-f]{32}$")
SERVICE_NAME_MAX = 49
CONTEXT_WARN_BYTES = 500_000_000
MAX_INSTANCES = 1000
REVISION_DEFAULT_MAX = 100
SERVICE_ACCOUNT_ID_MAX = 30


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
    min_instances: int
    max_instances: int
    cpu: int
    memory: str
    concurrency: int
    timeout_s: int
    public: bool
    protected: bool
    port: int = 80
    send_serve_mode: bool = False  # the user's or the image's choice, never a guess
    domain: str | None = None
    cloudflare_zone_id: str | None = None
    has_cloudflare_token: bool = False
    folder: str | None = None
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
    builder: str = "auto"  # auto, local or cloud; `up` decides auto before the engine
    build_region: str = ""  # where Cloud Build runs
    built_image: str | None = None  # a cloud build's image (by digest) the services run
    heavy_folders: tuple[str, ...] = ()  # .venv, .git, node_modules... in the build context
    settings_digest: str = ""  # of the settings it was built from: `up --changed` compares

    def serving(self, service: ServiceSpec) -> Serving:
        """What `service` serves now: the pin's image and revision, its active window's
        scaling, else its own."""
        base = Scaling(service.min_instances, service.max_instances)
        return decide(base, service.concurrency, self.windows, self.now, service.book,
                      self.pin, service.name)

    def scaling(self, service: ServiceSpec) -> Scaling:
        return self.serving(service).scaling

    def peak(self, service: ServiceSpec) -> int:
        """The most instances `service` may have: its base max, or a window's."""
        return max([service.max_instances, *(
            w.scaling(service.concurrency, service.max_instances)[1]
            for w in self.windows if w.covers(service.book))])

    @property
    def services(self) -> tuple[ServiceSpec, ...]:
        """What serves: one service per book, else the app's one service."""
        return self.books or (ServiceSpec(
            name=self.service_name, book=None, folder=self.folder,
            min_instances=self.min_instances, max_instances=self.max_instances, cpu=self.cpu,
            memory=self.memory, concurrency=self.concurrency, timeout_s=self.timeout_s,
            public=self.public, domain=self.domain),)

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


def stack_name(app: str, env: str) -> str:
    """The Pulumi stack of an app in an environment."""
    return f"{app}.{env}"


def split_stack_name(stack: str) -> tuple[str, str]:
    """`hello-course.dev` → (`hello-course`, `dev`)."""
    app, _, env = stack.partition(".")
    return app, env


def claimed_names(app: str, env: str, books: Iterable[str] = ()) -> dict[str, str]:
    """The Cloud Run service names a stack makes (each also the stem of its registry and
    accounts), with what makes them: `<app>-<env>`, and `<app>-<book>-<env>` per book. App,
    env and book names may hold '-', so two stacks can claim one name: `up` checks."""
    names = {f"{app}-{env}": stack_name(app, env)}
    names.update({f"{app}-{book}-{env}": f"book {book} of {stack_name(app, env)}"
                  for book in books})
    return names


def service_account_id(app: str, env: str, role: str = "run") -> str:
    """`<app>-<env>-<role>`, shortened with a hash suffix to fit 6-30 characters."""
    full = f"{app}-{env}-{role}"
    if len(full) <= SERVICE_ACCOUNT_ID_MAX:
        return full
    suffix = hashlib.sha256(full.encode()).hexdigest()[:6]
    head = full[: SERVICE_ACCOUNT_ID_MAX - len(suffix) - 1].rstrip("-")
    return f"{head}-{suffix}"


def secret_member_name(service: str, secret: str) -> str:
    """The logical name of the runtime account's access to one secret: one per secret, however
    many variables read it (IAM members are non-authoritative: two resources for one member
    share one binding, and deleting either removes it)."""
    return f"{service}-secret-{secret}"


def is_apex(domain: str) -> bool:
    """A bare registered domain (two labels) needs A/AAAA records, not a CNAME."""
    return domain.count(".") == 1


def option_label(key: str) -> str:
    """How a key is named in messages: `stx:maxInstances (--max)`."""
    setting = SETTINGS_BY_KEY.get(key)
    if setting and setting.option:
        return f"{key} ({setting.option})"
    if key == "cloudflare:apiToken":
        return "cloudflare:apiToken (CLOUDFLARE_API_TOKEN)"
    return key


def setting_key(name: str) -> str | None:
    """The config key a user means by `name`: `stx:domain`, `domain`, `--domain` or `max`."""
    bare = name.strip().lstrip("-")
    for setting in SETTINGS:
        options = (setting.option or "").replace("--", "").split("/")
        if bare in (setting.key, setting.key.partition(":")[2], *options):
            return setting.key
    return None


def key_problems(config: Mapping[str, Any]) -> list[str]:
    """Unknown keys in the namespaces stx-pulumi reads (`stx:`, `gcp:`, `cloudflare:`), each
    with the closest known key; other namespaces belong to Pulumi and pass through."""
    ours = [s.key for s in SETTINGS]
    known = {"stx": {k for k in ours if k.startswith("stx:")},
             "gcp": {f"gcp:{k}" for k in GCP_PROVIDER_KEYS},
             "cloudflare": {f"cloudflare:{k}" for k in CLOUDFLARE_PROVIDER_KEYS}}
    problems = []
    for key in config:
        namespace, sep, name = str(key).partition(":")
        if not sep or namespace not in known or key in known[namespace]:
            continue
        if namespace == "gcp" and name.endswith("CustomEndpoint"):
            continue
        close = difflib.get_close_matches(str(key), [*ours, *known[namespace]], n=1,
                                          cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        problems.append(f"{key}: not a setting stx-pulumi or the {namespace} provider knows"
                        + hint)
    return problems


def merge_settings(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides win; the map-valued keys (env vars, secret env, books) are merged entry by
    entry, a book's settings key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and key in ("stx:envVars", "stx:secretEnv", "stx:books",
                                                  "stx:events"):
            old = _as_mapping(merged.get(key))
            merged[key] = _merge_maps(old if isinstance(old, dict) else {}, value)
        else:
            merged[key] = value
    return merged


def _merge_maps(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(old)
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge_maps(out[key], value)
        else:
            out[key] = value
    return out


def build_spec(
    settings: Mapping[str, Any], *, app: str, env: str, source: SourceFacts,
    now: datetime | None = None,
) -> AppSpec:
    """Validate `settings` (config key → value) with the app folder's facts into an AppSpec.

    Raises SpecError listing every problem found, each naming its key or option.
    """
    problems: list[str] = []
    warnings: list[str] = []
    reader = _Reader(settings, problems)

    _check_names(app, env, problems)
    _check_source(source, problems)

    project = reader.text("gcp:project") or PLACEHOLDER_PROJECT
    placeholder = project == PLACEHOLDER_PROJECT
    if not placeholder and not PROJECT_RE.fullmatch(project):
        problems.append(f"{option_label('gcp:project')}: {shown(project)} is not a project id "
                        "(6-30 lowercase letters, digits or '-', starting with a letter)")
    region = reader.text("gcp:region") or "europe-west1"
    if not REGION_RE.fullmatch(region):
        problems.append(f"{option_label('gcp:region')}: {shown(region)} is not a region "
                        "such as europe-west1")

    chosen_mode = reader.text("stx:serveMode") or None
    port = reader.integer("stx:port", 0) if reader.given("stx:port") else None
    if port is not None and not 1 <= port <= 65535:  # never silently the mode's default
        problems.append(f"{option_label('stx:port')}: must be between 1 and 65535, got {port}")
        port = None
    serve_mode, port = serving(chosen_mode, port, source, problems)
    folder = reader.text("stx:folder") or None
    base = _service(reader, f"{app}-{env}", None, folder, region, problems, warnings)
    books = _books(reader, settings, app, env, region, problems, warnings)
    if not books:
        _check_folder(folder, source, problems, warnings)
    for book in books:
        _check_folder(book.folder, source, problems, warnings,
                      f"stx:books.{book.book}.folder (--book {book.book}=FOLDER)")
    protected = is_protected(settings, env, problems)
    zone = reader.text("stx:cloudflareZoneId") or None
    has_token = bool(settings.get("cloudflare:apiToken"))
    domains = [svc.domain for svc in (books or [base]) if svc and svc.domain]
    _check_zone(zone, has_token, domains, problems, warnings)
    _context_warnings(source, warnings)
    _context_problems(source, problems, warnings)
    env_vars = _env_vars(reader.mapping("stx:envVars"), problems)
    secret_env = _secret_env(reader.mapping("stx:secretEnv"), problems)
    clash = {k for k, _ in env_vars} & {s.var for s in secret_env}
    if clash:
        problems.append(f"{option_label('stx:secretEnv')}: {', '.join(sorted(clash))} also "
                        f"set by {option_label('stx:envVars')}")
    auth = [n for n in [*dict(env_vars), *(r.var for r in secret_env)] if n.startswith("STX_AUTH_")]
    if serve_mode == "streamlit-only" and auth:
        problems.append(f"{option_label('stx:secretEnv')}: STX_AUTH_* asks for StreamTeX's "
                        "login screen, which its Nginx serves: streamlit-only has no Nginx and "
                        "the container would not start; use dual")

    now = now or events.clock()
    windows = events.stored_windows(reader.mapping("stx:events"), problems)
    books_by_name = {b.book for b in books}
    for window in windows:
        if window.book and window.book not in books_by_name:
            problems.append(f"stx:events.{window.name}.book: {shown(window.book)} is not a book "
                            f"of this stack ({', '.join(sorted(books_by_name)) or 'it has none'})")
        problems += [p for p in [events.ahead_problem(
            window, now, f"stx:events.{window.name}.start")] if p]
        for svc in (books or [base]) if base else []:
            warm = window.scaling(svc.concurrency, svc.max_instances)[0] if window.covers(
                svc.book) else 0
            if warm > MAX_INSTANCES:
                problems.append(f"stx:events.{window.name}.users: {window.users} students at "
                                f"concurrency {svc.concurrency} need {warm} instances of "
                                f"{svc.name}; Cloud Run allows at most {MAX_INSTANCES}")
    expired = tuple(w.name for w in windows if w.expired(now))
    pin = read_pin(settings.get("stx:pin"), problems)
    builder = reader.text("stx:builder") or "auto"
    if builder not in BUILDERS:
        problems.append(f"{option_label('stx:builder')}: {shown(builder)} is not one of "
                        f"{', '.join(BUILDERS)}")
    elif builder == "cloud":
        _check_upload(tuple(f for f, _ in source.heavy_folders), problems)
    build_region = reader.text("stx:buildRegion") or default_build_region(region)
    if not REGION_RE.fullmatch(build_region):
        problems.append(f"{option_label('stx:buildRegion')}: {shown(build_region)} is not a region "
                        "such as europe-west1")
    for window in windows:
        if window.expired(now):
            warnings.append(f"event {window.name} ended {window.end:%Y-%m-%d %H:%M} "
                            f"{window.tz}: dropped from stx:events")

    if problems or base is None:
        raise SpecError(list(dict.fromkeys(problems)))  # a base problem shows once, not per book
    return AppSpec(
        app=app, env=env, source=source.path, image_tag=source.image_tag or "",
        serve_mode=serve_mode, project=project, region=region,
        min_instances=base.min_instances, max_instances=base.max_instances, cpu=base.cpu,
        memory=base.memory, concurrency=base.concurrency, timeout_s=base.timeout_s,
        public=base.public, protected=protected, port=port,
        send_serve_mode=bool(chosen_mode or source.dockerfile_serve_mode),
        domain=base.domain, cloudflare_zone_id=zone, has_cloudflare_token=has_token,
        folder=folder, env_vars=env_vars, secret_env=secret_env,
        project_is_placeholder=placeholder, warnings=tuple(dict.fromkeys(warnings)),
        books=tuple(books), now=now, expired=expired, pin=pin, builder=builder,
        build_region=build_region,
        windows=tuple(w for w in windows if not w.expired(now)),
        heavy_folders=tuple(f for f, _ in source.heavy_folders),
    )


def default_build_region(region: str) -> str:
    """Where Cloud Build runs unless told: the Cloud Run region when every project may build
    there, else the open build region nearest to it (by continent)."""
    if region in OPEN_BUILD_REGIONS:
        return region
    nearest = {"us-west": "us-west2", "us-": "us-central1", "northamerica-": "us-central1",
               "southamerica-": "southamerica-east1", "asia-": "asia-east1",
               "australia-": "australia-southeast1"}
    for prefix, chosen in nearest.items():
        if region.startswith(prefix):
            return chosen
    return "europe-west1"  # europe-*, me-*, africa-*


def _check_upload(heavy: Sequence[str], problems: list[str]) -> None:
    """The cloud builder uploads the whole build context on every build: no virtualenv,
    git history or node_modules in it unless dockerignored."""
    found = [f for f in heavy if f.rsplit("/", 1)[-1] in UPLOAD_HEAVY]
    if found:
        problems.append(f"{option_label('stx:builder')}: cloud uploads the build context on "
                        f"every build, and it holds {', '.join(f + '/' for f in found)}: add "
                        "them to .dockerignore")


def upload_problem(spec: AppSpec) -> str | None:
    """Why the cloud builder would refuse this spec's build context, if it would."""
    problems: list[str] = []
    _check_upload(spec.heavy_folders, problems)
    return problems[0] if problems else None


def _service(reader: _Reader, name: str, book: str | None, folder: str | None, region: str,
             problems: list[str], warnings: list[str]) -> ServiceSpec | None:
    """One service's settings, validated; None when a value is unusable (a problem says why)."""
    label = reader.label
    min_i = reader.integer("stx:minInstances", 0)
    max_i = reader.integer("stx:maxInstances", 10)
    if min_i is not None and min_i < 0:
        problems.append(f"{label('stx:minInstances')}: must be 0 or more, got {min_i}")
    if max_i is not None and not 1 <= max_i <= MAX_INSTANCES:
        problems.append(f"{label('stx:maxInstances')}: must be between 1 and 1000, "
                        f"got {max_i}")
    if min_i is not None and max_i is not None and min_i >= 0 and 1 <= max_i < min_i:
        problems.append(f"{label('stx:minInstances')}: {min_i} is more than "
                        f"{label('stx:maxInstances')} {max_i}")
    cpu = reader.integer("stx:cpu", 1)
    if cpu is not None and cpu not in CPU_MEMORY_MIB:
        problems.append(f"{label('stx:cpu')}: must be one of 1, 2, 4, 6, 8, got {cpu}")
    memory = reader.text("stx:memory") or "512Mi"
    _check_memory(memory, cpu, label("stx:memory"), problems)
    concurrency = reader.integer("stx:concurrency", 80)
    if concurrency is not None and not 1 <= concurrency <= 1000:
        problems.append(f"{label('stx:concurrency')}: must be between 1 and 1000, "
                        f"got {concurrency}")
    timeout = reader.integer("stx:timeout", 3600)
    if timeout is not None and not 1 <= timeout <= 3600:
        problems.append(f"{label('stx:timeout')}: must be between 1 and 3600 seconds, "
                        f"got {timeout}")
    public = reader.boolean("stx:public", True)
    domain = (reader.text("stx:domain") or "").lower() or None
    _check_domain(domain, label("stx:domain"), region, problems, warnings)
    if not public and domain:
        warnings.append(f"{name} is private: the custom domain {domain} will answer 403 to "
                        "visitors without an identity token")
    if None in (min_i, max_i, cpu, concurrency, timeout):
        return None
    assert min_i is not None and max_i is not None and cpu is not None
    assert concurrency is not None and timeout is not None
    return ServiceSpec(name=name, book=book, folder=folder, min_instances=min_i,
                       max_instances=max_i, cpu=cpu, memory=memory, concurrency=concurrency,
                       timeout_s=timeout, public=public, domain=domain)


def _books(reader: _Reader, settings: Mapping[str, Any], app: str, env: str, region: str,
           problems: list[str], warnings: list[str]) -> list[ServiceSpec]:
    """`stx:books`: NAME → {folder, and any of BOOK_KEYS}; each book's settings are the app's
    with its own on top. Names and folders are checked; one service per book."""
    books = reader.mapping("stx:books")
    if not books:
        return []
    for key, option in (("stx:folder", "--folder"), ("stx:domain", "--domain")):
        if reader.text(key):
            problems.append(f"{option_label(key)}: not with stx:books (--book): give each book "
                            f"its own, e.g. {option} {next(iter(books))}=...")
    out, domains = [], {}
    for name, entry in sorted(books.items(), key=lambda item: str(item[0])):
        where = f"stx:books.{name}"
        entry = _as_mapping(entry)
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: expected a map with a folder, e.g. `folder: "
                            f"manuals/{name}`, got {shown(entry)}")
            continue
        service = f"{app}-{name}-{env}"
        if not (APP_RE.fullmatch(str(name)) and len(service) <= SERVICE_NAME_MAX):
            problems.append(f"{where}: the book name must be lowercase letters, digits or '-', "
                            f"starting with a letter, and keep the service name {shown(service)} "
                            f"within {SERVICE_NAME_MAX} characters")
        for key in entry:
            if key != "folder" and key not in BOOK_KEYS:
                close = difflib.get_close_matches(str(key), ["folder", *BOOK_KEYS], n=1)
                problems.append(f"{where}.{key}: not a book setting (folder, "
                                f"{', '.join(BOOK_KEYS)})"
                                + (f"; did you mean {close[0]}?" if close else ""))
        folder = str(entry.get("folder") or "").strip()
        if not folder:
            problems.append(f"{where}: no folder: add it with --book {name}=FOLDER "
                            f"({where}.folder)")
        own = {setting: entry[key] for key, setting in BOOK_KEYS.items() if key in entry}
        labels = {setting: f"{where}.{key}" + (
            f" ({SETTINGS_BY_KEY[setting].option} {name}=...)" if setting != "stx:public" else "")
            for key, setting in BOOK_KEYS.items() if key in entry}
        book_reader = _Reader({**settings, "stx:domain": None, **own}, problems, labels)
        spec = _service(book_reader, service, str(name), folder or None, region, problems,
                        warnings)
        if spec and spec.domain:
            if spec.domain in domains:
                problems.append(f"{where}.domain: {spec.domain} is also the domain of book "
                                f"{domains[spec.domain]}")
            domains[spec.domain] = name
        if spec and folder:
            out.append(spec)
    return out


def serving(mode: str | None, port: int | None, source: SourceFacts,
            problems: list[str]) -> tuple[str, int]:
    """What serves and on which port: the user's --serve-mode/--port, else the Dockerfile's
    STX_SERVE_MODE, else its EXPOSE and whether it has Nginx (the README's table). An image
    that says neither is a problem naming both options."""
    where = f"the Dockerfile in {source.path}"
    if mode is None and source.dockerfile_serve_mode:
        mode = source.dockerfile_serve_mode
        if mode not in SERVE_MODE_PORTS:
            problems.append(f"{where}: STX_SERVE_MODE {shown(mode)} is not one of "
                            f"{', '.join(SERVE_MODE_PORTS)}")
            return "dual", 80
    elif mode is not None and mode not in SERVE_MODE_PORTS:
        problems.append(f"{option_label('stx:serveMode')}: {shown(mode)} is not one of "
                        f"{', '.join(SERVE_MODE_PORTS)}")
        return "dual", 80
    if mode is None:
        mode = _mode_from_image(source, port)
    if mode is None:
        if source.exists and source.has_dockerfile:
            exposed = ", ".join(map(str, sorted(source.exposed_ports))) or "no port"
            problems.append(f"{where} sets no STX_SERVE_MODE and exposes {exposed}"
                            f"{'' if source.has_nginx else ' with no Nginx'}: say how it serves "
                            f"with {option_label('stx:serveMode')} and/or "
                            f"{option_label('stx:port')}")
        return "dual", 80
    port = port or SERVE_MODE_PORTS[mode]
    if not 1 <= port <= 65535:
        problems.append(f"{option_label('stx:port')}: must be between 1 and 65535, got {port}")
    return mode, port


def _mode_from_image(source: SourceFacts, port: int | None) -> str | None:
    exposed = source.exposed_ports
    if port == 8501 or (port is None and exposed == {8501}):
        return "streamlit-only"
    if source.has_nginx and (port == 80 or (port is None and 80 in exposed
                                            and exposed <= {80, 8501})):
        return "dual"
    return None


def _check_names(app: str, env: str, problems: list[str]) -> None:
    if not (APP_RE.fullmatch(app) and len(app) <= 40):
        problems.append(f"app name {shown(app)}: use 1-40 lowercase letters, digits or '-', "
                        "starting "
                        "with a letter and not ending with '-' (no dots)")
    problem = env_problem(env)
    if problem:
        problems.append(problem)
        return
    service = f"{app}-{env}"
    if len(service) > SERVICE_NAME_MAX:
        problems.append(f"app name {shown(app)} with env {shown(env)}: the Cloud Run service name "
                        f"{shown(service)} has {len(service)} characters, at most "
                        f"{SERVICE_NAME_MAX} are allowed; use a shorter app name")
    for value in (app, env):
        if not LABEL_RE.fullmatch(value):
            problems.append(f"{shown(value)} cannot be a label value (lowercase letters, digits, "
                            "'_' or '-', at most 63)")


def is_protected(settings: Mapping[str, Any], env: str,
                 problems: list[str] | None = None) -> bool:
    """`stx:protected`, by default true for env prod only."""
    return _Reader(settings, [] if problems is None else problems).boolean(
        "stx:protected", env == PROTECTED_ENV)


def env_problem(env: str) -> str | None:
    """Why `env` cannot name an environment, or None."""
    if ENV_RE.fullmatch(env) and len(env) <= 12 and not env.endswith("-"):
        return None
    return (f"env (--env) {shown(env)}: use 1-12 lowercase letters, digits or '-', starting with a "
            "letter")


def _check_source(source: SourceFacts, problems: list[str]) -> None:
    where = option_label("stx:path")
    if not source.exists:
        problems.append(f"{where}: app folder {source.path} does not exist")
        return
    if not source.has_dockerfile:
        problems.append(f"{where}: no Dockerfile in {source.path} (for a StreamTeX app, "
                        "run `stx deploy docker` there)")
        return
    if source.is_streamtex and source.copies_uv_lock and not source.has_uv_lock:
        problems.append(f"{where}: the Dockerfile copies uv.lock but {source.path} has none: "
                        f"run `uv lock` in {source.path}")
    for name in source.unignored_secret_files:
        line = name if "/" not in name else f"**/{name.rsplit('/', 1)[1]}"
        problems.append(f"{where}: {name} would ship in the image (a secret): add the line "
                        f"`{line}` to {source.path / '.dockerignore'}")


def _check_folder(folder: str | None, source: SourceFacts, problems: list[str],
                  warnings: list[str], where: str = option_label("stx:folder")) -> None:
    """FOLDER names a folder with a book.py inside the build context, which the image holds."""
    if not folder or not source.has_dockerfile:
        return
    state = source.folder_state(folder)
    if state == "outside":
        problems.append(f"{where}: {shown(folder)} must be a relative path inside the build "
                        f"context {source.path}")
    elif state == "no-book":
        problems.append(f"{where}: {source.path / folder} is not a folder holding a book.py")
    elif state == "ignored":
        problems.append(f"{where}: {folder}/book.py is excluded by {source.path / '.dockerignore'}"
                        ": the book would not be in the image")
    elif not source.copies_context:
        warnings.append(f"{where}: the Dockerfile in {source.path} does not copy the build "
                        f"context into the image (COPY . DEST): FOLDER={folder} may not exist "
                        "there")


def _context_problems(source: SourceFacts, problems: list[str], warnings: list[str]) -> None:
    """Files Docker cannot send as they are: symlinks out of the context are refused (the
    image would not hold what they point at), special files skipped with a warning."""
    for link, target in source.escaping_links:
        problems.append(f"{option_label('stx:path')}: {link} in {source.path} is a symlink out "
                        f"of the build context (to {shown(target)}): copy the file in, or add "
                        "it to .dockerignore")
    for name in source.special_files:
        warnings.append(f"{name} in {source.path} is not a regular file (a FIFO, socket or "
                        "device): it is left out of the build context")


def _context_warnings(source: SourceFacts, warnings: list[str]) -> None:
    for folder, size in source.heavy_folders:
        warnings.append(f"{folder}/ ({_megabytes(size)}) is in the build context of "
                        f"{source.path}: add `{folder.rsplit('/', 1)[-1]}/` to its .dockerignore "
                        "(it is left out of the image tag)")
    if source.context_bytes > CONTEXT_WARN_BYTES:
        largest = ", ".join(f"{name} {_megabytes(size)}" for name, size in
                            source.largest_folders)
        warnings.append(f"the build context {source.path} holds "
                        f"{_megabytes(source.context_bytes)}: every build sends it all "
                        f"(largest: {largest})")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def _check_memory(memory: str, cpu: int | None, where: str, problems: list[str]) -> None:
    match = MEMORY_RE.fullmatch(memory)
    if not match:
        problems.append(f"{where}: {shown(memory)} is not a size such as 512Mi or 2Gi")
        return
    mib = int(match.group(1)) * (1024 if match.group(2) == "Gi" else 1)
    if cpu in CPU_MEMORY_MIB:
        low, high = CPU_MEMORY_MIB[cpu]
        if not low <= mib <= high:
            problems.append(f"{where}: {memory} is outside what {cpu} vCPU "
                            f"allows ({_size(low)} to {_size(high)})")


def _size(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def _check_domain(domain: str | None, where: str, region: str, problems: list[str],
                  warnings: list[str]) -> None:
    if domain is None:
        return
    labels = domain.split(".")
    if len(domain) > 64 or len(labels) < 2 or not all(HOST_LABEL_RE.fullmatch(x) for x in labels):
        problems.append(f"{where}: {shown(domain)} is not a hostname of at most 64 characters "
                        "such as course.example.org (no wildcards)")
    elif region not in DOMAIN_MAPPING_REGIONS:
        warnings.append(f"region {region} has no Cloud Run domain mappings: the mapping for "
                        f"{domain} will fail; use one of "
                        f"{', '.join(sorted(DOMAIN_MAPPING_REGIONS))}")


def _check_zone(zone: str | None, has_token: bool, domains: list[str], problems: list[str],
                warnings: list[str]) -> None:
    """The Cloudflare zone: a well-formed id, a token, a domain to create records for."""
    if zone is None:
        for domain in domains:
            warnings.append(f"no Cloudflare zone: create the DNS records for {domain} by hand "
                            "(see the dns_records output)")
        return
    if not ZONE_RE.fullmatch(zone):
        problems.append(f"{option_label('stx:cloudflareZoneId')}: {shown(zone)} is not a "
                        "Cloudflare "
                        "zone id (32 hex characters)")
    if not domains:
        problems.append(f"{option_label('stx:cloudflareZoneId')}: needs "
                        f"{option_label('stx:domain')}")
    if not has_token:
        problems.append(f"{option_label('cloudflare:apiToken')}: a Cloudflare zone needs an API "
                        "token: set CLOUDFLARE_API_TOKEN or the secret cloudflare:apiToken")
    for domain in domains:
        if is_apex(domain):
            warnings.append(f"{domain} is an apex domain: create its A/AAAA records in "
                            "Cloudflare by hand from the dns_records output (DNS only, not "
                            "proxied)")


def _env_vars(values: Mapping[str, Any], problems: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for name, value in sorted(values.items()):
        if isinstance(value, (list, dict)):
            problems.append(f"{option_label('stx:envVars')}: {name}: expected one value, got "
                            f"{shown(value)}")
        elif _env_name_ok(name):
            out.append((name, "" if value is None else str(value)))
        else:
            reserved = ", ".join(sorted(RESERVED_ENV_VARS))
            problems.append(f"{option_label('stx:envVars')}: {shown(name)} is not an allowed "
                            f"variable name (letters, digits, '_'; not {reserved} or "
                            f"{RESERVED_ENV_PREFIX}*)" + _folder_hint(name))
    _case_clashes("stx:envVars", [n for n, _ in out], problems)
    return tuple(out)


def _env_name_ok(name: str) -> bool:
    return bool(ENV_NAME_RE.fullmatch(name)) and name not in RESERVED_ENV_VARS and not (
        name.startswith(RESERVED_ENV_PREFIX))


def _folder_hint(name: str) -> str:
    return "; set FOLDER with --folder (stx:folder)" if name == "FOLDER" else ""


def _case_clashes(key: str, names: list[str], problems: list[str]) -> None:
    """Names that differ only by case would give two resources or variables one name."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.lower(), name)
        if other != name:
            problems.append(f"{option_label(key)}: {other} and {name} differ only by case")


def _secret_env(values: Mapping[str, Any], problems: list[str]) -> tuple[SecretEnv, ...]:
    out = []
    for name, ref in sorted(values.items()):
        match = SECRET_REF_RE.fullmatch(str(ref))
        if not _env_name_ok(name) or not match:
            problems.append(f"{option_label('stx:secretEnv')}: {name}={ref} is not "
                            "VAR=SECRET[:VERSION] (VERSION a number or latest; VAR not "
                            f"reserved)" + _folder_hint(name))
        else:
            out.append(SecretEnv(name, match.group(1), match.group(2) or "latest"))
    _case_clashes("stx:secretEnv", [ref.var for ref in out], problems)
    return tuple(out)


def _as_mapping(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            return value
    return {} if value is None else value


class _Reader:
    """Reads typed values from settings whose values are native (YAML) or strings (pulumi)."""

    def __init__(self, settings: Mapping[str, Any], problems: list[str],
                 labels: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.problems = problems
        self.labels = labels or {}

    def label(self, key: str) -> str:
        """How messages name `key`: a book's own key, else the setting and its option."""
        return self.labels.get(key) or option_label(key)

    def given(self, key: str) -> bool:
        """Whether `key` holds a value (not absent, null or empty)."""
        return self.settings.get(key) not in (None, "")

    def text(self, key: str) -> str:
        value = self.settings.get(key)
        if isinstance(value, (list, dict)):  # never stringified into a name or a value
            self.problems.append(f"{self.label(key)}: expected one value, got {shown(value)}")
            return ""
        return "" if value is None else str(value).strip()

    def integer(self, key: str, default: int) -> int | None:
        value = self.settings.get(key)
        if value is None or value == "":
            return default
        number = whole_number(value)
        if number is None:
            self.problems.append(f"{self.label(key)}: {shown(value)} is not a whole number")
        return number

    def boolean(self, key: str, default: bool) -> bool:
        value = self.settings.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1"):
            return True
        if text in ("false", "no", "0"):
            return False
        self.problems.append(f"{self.label(key)}: {shown(value)} is not true or false")
        return default

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = _as_mapping(self.settings.get(key))
        if isinstance(value, Mapping):
            return value
        self.problems.append(f"{option_label(key)}: expected a map of NAME: value, got "
                             f"{shown(value)}")
        return {}
