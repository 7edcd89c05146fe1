"""Settings + defaults + app-folder facts → one validated, immutable AppSpec (`build_spec`).

Pure, and the only place settings are interpreted. The CLI calls it with the stack config
merged with its options; the Pulumi program (`pulumi_main`) with `pulumi.Config` values. Both
hand it the same kind of mapping, keyed by config key; defaults come from the registry
(`stx_pulumi.model.settings`).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from stx_pulumi.errors import SpecError, shown, whole_number
from stx_pulumi.model import events
from stx_pulumi.model.facts import SourceFacts
from stx_pulumi.model.names import (
    APP_RE,
    LABEL_RE,
    PROJECT_RE,
    REGION_RE,
    SERVICE_NAME_MAX,
    env_problem,
)
from stx_pulumi.model.releases import read_pin
from stx_pulumi.model.rules import (
    check_domain,
    check_folder,
    check_memory,
    check_source,
    check_upload,
    check_zone,
    context_problems,
    context_warnings,
    default_build_region,
    read_env_vars,
    read_secret_env,
    serving,
)
from stx_pulumi.model.settings import (
    BOOK_KEYS,
    DEFAULTS,
    SETTINGS_BY_KEY,
    as_mapping,
    option_label,
)
from stx_pulumi.model.spec import (
    BUILDERS,
    CPU_MEMORY_MIB,
    MAX_INSTANCES,
    PLACEHOLDER_PROJECT,
    PROTECTED_ENV,
    AppSpec,
    SecretEnv,
    ServiceSpec,
)
from stx_pulumi.model.watch import (
    BILLING_ACCOUNT_RE,
    PLACEHOLDER_ACCOUNT,
    Watch,
    emails_problems,
)


def build_spec(
    settings: Mapping[str, Any], *, app: str, env: str, source: SourceFacts,
    now: datetime | None = None, context: str = "", digest: str = "",
) -> AppSpec:
    """Validate `settings` (config key → value) with the app folder's facts into an AppSpec;
    `context`: the app folder as the workspace names it, `digest`: of the settings as stored.

    Raises SpecError listing every problem found, each naming its key or option.
    """
    problems: list[str] = []
    warnings: list[str] = []
    reader = _Reader(settings, problems)
    _check_names(app, env, problems)
    check_source(source, problems)
    project, region = _place(reader, problems)
    serve_mode, port, chosen = _serving(reader, source, problems)
    base, books = _services(reader, settings, app, env, region, source, problems, warnings)
    zone, has_token = _cloudflare(reader, settings, books or [base], problems, warnings)
    context_warnings(source, warnings)
    context_problems(source, problems, warnings)
    env_vars, secret_env = _environment(reader, serve_mode, problems)
    now = now or events.clock()
    windows = _windows(reader, books or [base], now, problems, warnings)
    builder, build_region = _builder(reader, source, region, problems)
    pin = read_pin(settings.get("stx:pin"), problems)
    watch = _watch(reader, is_protected(settings, env), project == PLACEHOLDER_PROJECT, problems)
    if problems or base is None:
        raise SpecError(list(dict.fromkeys(problems)))  # a base problem shows once, not per book
    return AppSpec(
        app=app, env=env, source=source.path, image_tag=source.image_tag or "",
        serve_mode=serve_mode, project=project, region=region, base=base,
        protected=is_protected(settings, env, problems), port=port,
        send_serve_mode=bool(chosen or source.dockerfile_serve_mode),
        cloudflare_zone_id=zone, has_cloudflare_token=has_token, env_vars=env_vars,
        secret_env=secret_env, project_is_placeholder=project == PLACEHOLDER_PROJECT,
        warnings=tuple(dict.fromkeys(warnings)), context=context, books=tuple(books), now=now,
        expired=tuple(w.name for w in windows if w.expired(now)), pin=pin, builder=builder,
        build_region=build_region, windows=tuple(w for w in windows if not w.expired(now)),
        heavy_folders=tuple(f for f, _ in source.heavy_folders), settings_digest=digest,
        watch=watch, scan_block=_scan_block(reader, problems),
    )


def _watch(reader: _Reader, protected: bool, offline: bool, problems: list[str]) -> Watch:
    """Alerts (on by default in protected envs), their addresses and 5xx threshold; the
    budget and its billing account (a placeholder offline, as for the project)."""
    emails, bad = emails_problems(reader.text("stx:alertEmails"), option_label("stx:alertEmails"))
    problems += bad
    ratio = _amount(reader, "stx:alert5xxRatio", problems)
    if ratio is not None and not 0 < ratio <= 1:
        problems.append(f"{option_label('stx:alert5xxRatio')}: must be more than 0 and at most "
                        f"1, got {ratio:g}")
    budget = _amount(reader, "stx:budget", problems) if reader.given("stx:budget") else None
    if budget is not None and budget <= 0:
        problems.append(f"{option_label('stx:budget')}: must be more than 0 (USD a month), "
                        f"got {budget:g}")
    account = reader.text("stx:billingAccount").upper() or None
    if account and not BILLING_ACCOUNT_RE.fullmatch(account):
        problems.append(f"{option_label('stx:billingAccount')}: {shown(account)} is not a "
                        "billing account id such as 012345-6789AB-CDEF01")
    if budget is not None and account is None:
        if not offline:
            problems.append(f"{option_label('stx:budget')}: needs a billing account: pass "
                            f"{option_label('stx:billingAccount')}, or run `stx-pulumi setup` "
                            "(it records the project's)")
        account = PLACEHOLDER_ACCOUNT
    return Watch(alerts=reader.boolean("stx:alerts", protected), emails=emails,
                 error_ratio=ratio or 0.05, budget_usd=budget, billing_account=account)


def _scan_block(reader: _Reader, problems: list[str]) -> str:
    from stx_pulumi.model.scan import SEVERITIES

    level = reader.text("stx:scanBlock").upper()
    if level not in SEVERITIES:
        problems.append(f"{option_label('stx:scanBlock')}: {shown(level)} is not one of "
                        f"{', '.join(reversed(SEVERITIES))}")
        return "CRITICAL"
    return level


def _amount(reader: _Reader, key: str, problems: list[str]) -> float | None:
    text = reader.text(key)
    try:
        value = float(text)
    except ValueError:
        problems.append(f"{reader.label(key)}: {shown(text)} is not a number")
        return None
    return value if value == value and abs(value) != float("inf") else None


def _place(reader: _Reader, problems: list[str]) -> tuple[str, str]:
    """The project (a placeholder when none is known: `plan` runs offline) and region."""
    project = reader.text("gcp:project") or PLACEHOLDER_PROJECT
    if project != PLACEHOLDER_PROJECT and not PROJECT_RE.fullmatch(project):
        problems.append(f"{option_label('gcp:project')}: {shown(project)} is not a project id "
                        "(6-30 lowercase letters, digits or '-', starting with a letter)")
    region = reader.text("gcp:region")
    if not REGION_RE.fullmatch(region):
        problems.append(f"{option_label('gcp:region')}: {shown(region)} is not a region "
                        "such as europe-west1")
    return project, region


def _serving(reader: _Reader, source: SourceFacts, problems: list[str]
             ) -> tuple[str, int, str | None]:
    """The serve mode and container port, and the mode as the user chose it (if they did)."""
    chosen = reader.text("stx:serveMode") or None
    port = reader.integer("stx:port") if reader.given("stx:port") else None
    if port is not None and not 1 <= port <= 65535:  # never silently the mode's default
        problems.append(f"{option_label('stx:port')}: must be between 1 and 65535, got {port}")
        port = None
    mode, port = serving(chosen, port, source, problems)
    return mode, port, chosen


def _services(reader: _Reader, settings: Mapping[str, Any], app: str, env: str, region: str,
              source: SourceFacts, problems: list[str], warnings: list[str]
              ) -> tuple[ServiceSpec | None, list[ServiceSpec]]:
    """The app's own service and, for a repository of books, one per book, each FOLDER
    checked in the build context."""
    folder = reader.text("stx:folder") or None
    base = _service(reader, f"{app}-{env}", None, folder, region, problems, warnings)
    books = _books(reader, settings, app, env, region, problems, warnings)
    if not books:
        check_folder(folder, source, problems, warnings)
    for book in books:
        check_folder(book.folder, source, problems, warnings,
                     f"stx:books.{book.book}.folder (--book {book.book}=FOLDER)")
    return base, books


def _cloudflare(reader: _Reader, settings: Mapping[str, Any],
                served: Sequence[ServiceSpec | None], problems: list[str],
                warnings: list[str]
                ) -> tuple[str | None, bool]:
    zone = reader.text("stx:cloudflareZoneId") or None
    has_token = bool(settings.get("cloudflare:apiToken"))
    domains = [svc.domain for svc in served if svc and svc.domain]
    check_zone(zone, has_token, domains, problems, warnings)
    return zone, has_token


def _environment(reader: _Reader, serve_mode: str, problems: list[str]
                 ) -> tuple[tuple[tuple[str, str], ...], tuple[SecretEnv, ...]]:
    """The env vars and the secret env vars: no name twice, no login screen without Nginx."""
    env_vars = read_env_vars(reader.mapping("stx:envVars"), problems)
    secret_env = read_secret_env(reader.mapping("stx:secretEnv"), problems)
    clash = {k for k, _ in env_vars} & {s.var for s in secret_env}
    if clash:
        problems.append(f"{option_label('stx:secretEnv')}: {', '.join(sorted(clash))} also "
                        f"set by {option_label('stx:envVars')}")
    auth = [n for n in [*dict(env_vars), *(r.var for r in secret_env)]
            if n.startswith("STX_AUTH_")]
    if serve_mode == "streamlit-only" and auth:
        problems.append(f"{option_label('stx:secretEnv')}: STX_AUTH_* asks for StreamTeX's "
                        "login screen, which its Nginx serves: streamlit-only has no Nginx and "
                        "the container would not start; use dual")
    return env_vars, secret_env


def _windows(reader: _Reader, served: Sequence[ServiceSpec | None], now: datetime,
             problems: list[str], warnings: list[str]) -> list[events.Window]:
    """The event windows, each held to what its services and Cloud Scheduler allow; those
    over are said (the next `up` drops them)."""
    windows = events.stored_windows(reader.mapping("stx:events"), problems, now)
    books = {svc.book for svc in served if svc and svc.book}
    for window in windows:
        if window.book and window.book not in books:
            problems.append(f"stx:events.{window.name}.book: {shown(window.book)} is not a book "
                            f"of this stack ({', '.join(sorted(books)) or 'it has none'})")
        for svc in (s for s in served if s and window.covers(s.book)):
            warm = window.scaling(svc.concurrency, svc.max_instances)[0]
            if warm > MAX_INSTANCES:
                problems.append(f"stx:events.{window.name}.users: {window.users} students at "
                                f"concurrency {svc.concurrency} need {warm} instances of "
                                f"{svc.name}; Cloud Run allows at most {MAX_INSTANCES}")
        if window.expired(now):
            warnings.append(f"event {window.name} ended {window.end:%Y-%m-%d %H:%M} "
                            f"{window.tz}: dropped from stx:events")
    return windows


def _builder(reader: _Reader, source: SourceFacts, region: str, problems: list[str]
             ) -> tuple[str, str]:
    builder = reader.text("stx:builder")
    if builder not in BUILDERS:
        problems.append(f"{option_label('stx:builder')}: {shown(builder)} is not one of "
                        f"{', '.join(BUILDERS)}")
    elif builder == "cloud":
        check_upload(tuple(f for f, _ in source.heavy_folders), problems)
    build_region = reader.text("stx:buildRegion") or default_build_region(region)
    if not REGION_RE.fullmatch(build_region):
        problems.append(f"{option_label('stx:buildRegion')}: {shown(build_region)} is not a "
                        "region such as europe-west1")
    return builder, build_region


def _service(reader: _Reader, name: str, book: str | None, folder: str | None, region: str,
             problems: list[str], warnings: list[str]) -> ServiceSpec | None:
    """One service's settings, validated; None when a value is unusable (a problem says why)."""
    label = reader.label
    min_i = reader.integer("stx:minInstances")
    max_i = reader.integer("stx:maxInstances")
    if min_i is not None and min_i < 0:
        problems.append(f"{label('stx:minInstances')}: must be 0 or more, got {min_i}")
    if max_i is not None and not 1 <= max_i <= MAX_INSTANCES:
        problems.append(f"{label('stx:maxInstances')}: must be between 1 and 1000, "
                        f"got {max_i}")
    if min_i is not None and max_i is not None and min_i >= 0 and 1 <= max_i < min_i:
        problems.append(f"{label('stx:minInstances')}: {min_i} is more than "
                        f"{label('stx:maxInstances')} {max_i}")
    cpu = reader.integer("stx:cpu")
    if cpu is not None and cpu not in CPU_MEMORY_MIB:
        problems.append(f"{label('stx:cpu')}: must be one of 1, 2, 4, 6, 8, got {cpu}")
    memory = reader.text("stx:memory")
    check_memory(memory, cpu, label("stx:memory"), problems)
    concurrency = reader.integer("stx:concurrency")
    if concurrency is not None and not 1 <= concurrency <= 1000:
        problems.append(f"{label('stx:concurrency')}: must be between 1 and 1000, "
                        f"got {concurrency}")
    timeout = reader.integer("stx:timeout")
    if timeout is not None and not 1 <= timeout <= 3600:
        problems.append(f"{label('stx:timeout')}: must be between 1 and 3600 seconds, "
                        f"got {timeout}")
    public = reader.boolean("stx:public")
    domain = (reader.text("stx:domain") or "").lower() or None
    check_domain(domain, label("stx:domain"), region, problems, warnings)
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
    out: list[ServiceSpec] = []
    domains: dict[str, str] = {}
    for name, entry in sorted(books.items(), key=lambda item: str(item[0])):
        where = f"stx:books.{name}"
        entry = as_mapping(entry)
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
        """The value as text; the registry's default when unset ("" when it has none)."""
        value = self.settings.get(key)
        if isinstance(value, (list, dict)):  # never stringified into a name or a value
            self.problems.append(f"{self.label(key)}: expected one value, got {shown(value)}")
            return ""
        if value is None or value == "":
            return str(DEFAULTS.get(key) or "")
        return str(value).strip()

    def integer(self, key: str) -> int | None:
        """The value as a whole number (ASCII digits); the registry's default when unset."""
        value = self.settings.get(key)
        if value is None or value == "":
            return int(DEFAULTS.get(key, 0))
        number = whole_number(value)
        if number is None:
            self.problems.append(f"{self.label(key)}: {shown(value)} is not a whole number")
        return number

    def boolean(self, key: str, default: bool | None = None) -> bool:
        """The value as true or false; `default`, else the registry's, when unset."""
        if default is None:
            default = bool(DEFAULTS.get(key))
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
        value = as_mapping(self.settings.get(key))
        if isinstance(value, Mapping):
            return value
        self.problems.append(f"{option_label(key)}: expected a map of NAME: value, got "
                             f"{shown(value)}")
        return {}
