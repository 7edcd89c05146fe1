"""The one registry of settings: each stack config key, the CLI option that sets it, its typed
default, whether a book may set it for itself, and what it means and allows.

Everything else is made from it: the deployment options of `plan`, `preview`, `up` and `cost`
(`stx_pulumi.cli.options`), the map from those options to config keys, the per-book keys
(`BOOK_KEYS`), the defaults the spec falls back to (`DEFAULTS`), the names messages use
(`option_label`), and the settings table of the docs (`docs/gen.py`). Adding a setting is one
`Setting(...)` here, and its reading in `stx_pulumi.model.build`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Where Cloud Build may run for every project: "depending on usage, some projects might be
# restricted to using Cloud Build in the following regions" (cloud.google.com/build/docs/
# locations, "Restricted regions for some projects", 2026-12).
OPEN_BUILD_REGIONS = ("us-central1", "us-west2", "europe-west1", "asia-east1",
                      "australia-southeast1", "southamerica-east1")


@dataclass(frozen=True)
class Setting:
    """One stack config key and everything said about it."""

    key: str  # stx:maxInstances
    option: str | None  # --max; "--public/--private" for a flag pair; None: config only
    default: Any  # the typed value when nothing sets it; None: derived, or none
    shown: str  # the default as --help and the docs say it
    help: str  # one sentence: --help and the docs
    allowed: str = ""  # what is allowed (the docs' table)
    book: str | None = None  # the key a book may set for itself: stx:books.NAME.<book>
    metavar: str | None = None  # N, SIZE...: "[BOOK=]N" when a book may set it
    repeat: bool = False  # K=V options given once per entry (a map setting)
    listing: bool = False  # values given once each, kept comma-separated (a list setting)
    secret: bool = False

    @property
    def param(self) -> str:
        """The option's parameter name in Python (`--serve-mode` → `serve_mode`)."""
        return str(self.option).split("/")[0].removeprefix("--").replace("-", "_")

    @property
    def per_book_option(self) -> bool:
        """Whether the option takes `[BOOK=]VALUE` (a flag pair does not)."""
        return self.book is not None and "/" not in str(self.option)


SETTINGS: tuple[Setting, ...] = (
    Setting("stx:path", "--path", None, "APP when it is a folder, else stx:path",
            "App folder (the Docker build context), relative to the workspace.",
            "an existing folder with a `Dockerfile` (relative paths in the config are relative "
            "to the workspace)"),
    Setting("gcp:project", "--project", None,
            "GOOGLE_CLOUD_PROJECT, .stx-deploy.env, the workspace default, gcloud's project",
            "Google Cloud project.", "a project id (6–30 chars); pinned on the first `up`"),
    Setting("gcp:region", "--region", "europe-west1",
            ".stx-deploy.env, the workspace default, else europe-west1", "Cloud Run region.",
            "a region; pinned on the first `up`"),
    Setting("stx:serveMode", "--serve-mode", None,
            "the Dockerfile's STX_SERVE_MODE, else from its EXPOSE and Nginx",
            "How the image serves: dual, static-only or streamlit-only.",
            "`dual`, `static-only`, `streamlit-only`"),
    Setting("stx:port", "--port", None, "80 for dual/static-only, 8501 for streamlit-only",
            "The container port Cloud Run sends requests to.", "1–65535"),
    Setting("stx:minInstances", "--min", 0, "0 (scale to zero)", "Minimum instances.",
            "≥ 0, ≤ max", book="minInstances", metavar="[BOOK=]N"),
    Setting("stx:maxInstances", "--max", 10, "10", "Maximum instances.",
            "1–1000 (and your regional quota); above 100 the revision's ceiling is the peak of "
            "`--max` and the windows (raising it makes a new revision; below it, changes stay "
            "service-level)", book="maxInstances", metavar="[BOOK=]N"),
    Setting("stx:cpu", "--cpu", 1, "1", "vCPU per instance.", "1, 2, 4, 6, 8", book="cpu",
            metavar="[BOOK=]N"),
    Setting("stx:memory", "--memory", "512Mi", "512Mi", "Memory per instance.",
            "`NNNMi`/`NGi`; 1 vCPU: 512Mi–4Gi, 2: 512Mi–8Gi, 4: 2–16Gi, 6: 4–24Gi, "
            "8: 4–32Gi", book="memory", metavar="[BOOK=]SIZE"),
    Setting("stx:concurrency", "--concurrency", 80, "80", "Requests (sessions) per instance.",
            "1–1000", book="concurrency", metavar="[BOOK=]N"),
    Setting("stx:timeout", "--timeout", 3600, "3600 (s)", "Request timeout in seconds.",
            "1–3600 (a Streamlit session is one request: it ends at the timeout)",
            book="timeout", metavar="[BOOK=]S"),
    Setting("stx:public", "--public/--private", True, "public",
            "Public access (allUsers may invoke the service).", "", book="public"),
    Setting("stx:domain", "--domain", None, "none", "Custom domain (Cloud Run domain "
            "mapping).", "a hostname ≤ 64 chars, no wildcard", book="domain",
            metavar="[BOOK=]HOST"),
    Setting("stx:cloudflareZoneId", "--cloudflare-zone", None, "none",
            "Cloudflare zone id: create the domain's DNS record there (token: "
            "CLOUDFLARE_API_TOKEN).", "32 hex chars; needs `--domain` and a token"),
    Setting("cloudflare:apiToken", None, None, "CLOUDFLARE_API_TOKEN",
            "Cloudflare API token (secret), needed with a Cloudflare zone.",
            "stored as a secret after a successful `up` (through stdin, never a command "
            "line); a different token in the environment replaces it, with a notice",
            secret=True),
    Setting("stx:envVars", "--env-var", None, "none", "Extra environment variable K=V "
            "(repeatable).", "names `[A-Za-z_][A-Za-z0-9_]*`, not `PORT`, `K_*`, "
            "`STX_SERVE_MODE`, `FOLDER` (use `stx:folder`); no two names that differ only by "
            "case", metavar="K=V", repeat=True),
    Setting("stx:secretEnv", "--secret-env", None, "none", "Env var from Secret Manager "
            "(repeatable).", "a Secret Manager secret; version a number or `latest`",
            metavar="VAR=SECRET[:VERSION]", repeat=True),
    Setting("stx:folder", "--folder", None, "none", "FOLDER: the book's folder inside the "
            "build context, for a repository of books sharing one Dockerfile.",
            "a folder holding a `book.py` inside the build context, copied into the image "
            "by the Dockerfile"),
    Setting("stx:books", "--book", None, "none", "A book of the build context, served by its "
            "own service <app>-NAME-<env> from the one image (repeatable); the options marked "
            "BOOK= set one book's value.", "one service `<app>-NAME-<env>` per book; not with "
            "`--folder` or an app-wide `--domain`", metavar="NAME=FOLDER", repeat=True),
    Setting("stx:events", None, None, "none", "Event windows (set with `stx-pulumi event "
            "add`): scaling for a class, scheduled.", "see the event windows page"),
    Setting("stx:pin", None, None, "none", "A rollback's pin (set by `stx-pulumi rollback`, "
            "removed by `up --unpin`).", ""),
    Setting("stx:protected", None, None, "true for env prod", "Deletion protection; "
            "protected envs need explicit confirmation.", "true, false"),
    Setting("stx:alerts", "--alerts/--no-alerts", None, "on in protected envs",
            "Alert policies (uptime, 5xx share, students turned away, a revision not ready), "
            "an uptime check and a dashboard, per service.", "true, false"),
    Setting("stx:alertEmails", "--alert-email", None, "none", "An address alerts and budget "
            "alerts are emailed to (repeatable).", "email addresses (kept comma-separated)",
            metavar="ADDR", listing=True),
    Setting("stx:alert5xxRatio", "--alert-5xx-ratio", 0.05, "0.05 (5 %)",
            "Share of 5xx answers over 5 minutes that alerts.", "more than 0, at most 1"),
    Setting("stx:budget", "--budget", None, "none", "Monthly budget in USD: a Cloud Billing "
            "budget on the app's labels with alerts at 50/90/100 %, and plans estimated over "
            "it refused.", "an amount in USD, more than 0 (the billing account's currency "
            "must be USD)"),
    Setting("stx:billingAccount", "--billing-account", None, "the project's, as `setup` "
            "recorded it", "Cloud Billing account of the budget.", "`XXXXXX-XXXXXX-XXXXXX`"),
    Setting("stx:scanBlock", "--scan-block", "CRITICAL", "CRITICAL", "In protected envs, "
            "the severity of a finding with a fix that keeps an image out (Artifact Registry "
            "scans the protected envs' repositories).", "`CRITICAL`, `HIGH`, `MEDIUM`, `LOW`"),
    Setting("stx:builder", "--builder", "auto", "auto", "Where the image is built: local "
            "(this machine's Docker), cloud (Cloud Build, no Docker needed), auto (local when "
            "a Docker daemon answers, else cloud).", "`local`, `cloud`, `auto`"),
    Setting("stx:buildRegion", "--build-region", None,
            "the Cloud Run region when every project may build there, else the nearest of "
            + ", ".join(OPEN_BUILD_REGIONS),
            "Where Cloud Build runs (the image still goes to the Cloud Run region's "
            "registry).", "a region where Cloud Build runs"),
)
SETTINGS_BY_KEY = {s.key: s for s in SETTINGS}
DEFAULTS = {s.key: s.default for s in SETTINGS if s.default is not None}
# What a book may set for itself (stx:books.NAME.KEY), and the setting it overrides.
BOOK_KEYS = {s.book: s.key for s in SETTINGS if s.book}
MAPS = ("stx:envVars", "stx:secretEnv", "stx:books", "stx:events")  # merged entry by entry

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
        import difflib  # only for an unknown key: off the start-up path

        close = difflib.get_close_matches(str(key), [*ours, *known[namespace]], n=1,
                                          cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        problems.append(f"{key}: not a setting stx-pulumi or the {namespace} provider knows"
                        + hint)
    return problems


def merge_settings(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides win; the map-valued keys (env vars, secret env, books, events) are merged
    entry by entry, a book's settings key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and key in MAPS:
            old = as_mapping(merged.get(key))
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


def as_mapping(value: Any) -> Any:
    """A map setting as given: native (YAML), JSON text (Pulumi's config), or none."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            return value
    return {} if value is None else value
