"""The rules the settings are checked against, one function each: the app folder, a FOLDER,
memory for a CPU, a domain, a Cloudflare zone, env vars and secret refs, the serve mode and
port, the build upload. Each appends problems (and warnings) naming the key. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stx_pulumi.errors import shown
from stx_pulumi.model.facts import SourceFacts
from stx_pulumi.model.names import (
    ENV_NAME_RE,
    HOST_LABEL_RE,
    MEMORY_RE,
    SECRET_REF_RE,
    ZONE_RE,
    is_apex,
)
from stx_pulumi.model.settings import OPEN_BUILD_REGIONS, option_label
from stx_pulumi.model.spec import (
    CONTEXT_WARN_BYTES,
    CPU_MEMORY_MIB,
    DOMAIN_MAPPING_REGIONS,
    RESERVED_ENV_PREFIX,
    RESERVED_ENV_VARS,
    SERVE_MODE_PORTS,
    UPLOAD_HEAVY,
    AppSpec,
    SecretEnv,
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


def check_upload(heavy: Sequence[str], problems: list[str]) -> None:
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
    check_upload(spec.heavy_folders, problems)
    return problems[0] if problems else None


def serving(mode: str | None, port: int | None, source: SourceFacts,
            problems: list[str]) -> tuple[str, int]:
    """What serves and on which port: the user's --serve-mode/--port, else the Dockerfile's
    STX_SERVE_MODE, else its EXPOSE and whether it has Nginx (docs/configuring.md's table). An image
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
        mode = mode_from_image(source, port)
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


def mode_from_image(source: SourceFacts, port: int | None) -> str | None:
    exposed = source.exposed_ports
    if port == 8501 or (port is None and exposed == {8501}):
        return "streamlit-only"
    if source.has_nginx and (port == 80 or (port is None and 80 in exposed
                                            and exposed <= {80, 8501})):
        return "dual"
    return None


def check_source(source: SourceFacts, problems: list[str]) -> None:
    where = option_label("stx:path")
    if not source.exists:
        problems.append(f"{where}: app folder {source.path} does not exist")
        return
    if not source.has_dockerfile and source.built_from is not None:
        book = source.path.relative_to(source.built_from).as_posix()
        problems.append(f"{where}: no Dockerfile in {source.path}, but {source.built_from} "
                        "has one: a book of a repository of books builds from the root, "
                        f"`--path {source.built_from} --folder {book}`")
        return
    if not source.has_dockerfile:
        problems.append(f"{where}: no Dockerfile in {source.path} (for a StreamTeX app, "
                        "run `stx deploy docker` there)")
        return
    if source.is_streamtex and source.copies_uv_lock and not source.has_uv_lock:
        get_uv = "" if source.has_uv else (" (uv is not installed: `pip install uv`, or "
                                           "https://docs.astral.sh/uv/getting-started/)")
        problems.append(f"{where}: the Dockerfile copies uv.lock but {source.path} has none: "
                        f"run `uv lock` in {source.path}{get_uv}")
    for name in source.unignored_secret_files:
        line = name if "/" not in name else f"**/{name.rsplit('/', 1)[1]}"
        problems.append(f"{where}: {name} would ship in the image (a secret): add the line "
                        f"`{line}` to {source.path / '.dockerignore'}")


def check_folder(folder: str | None, source: SourceFacts, problems: list[str],
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
    elif not source.copies(folder):
        warnings.append(f"{where}: the Dockerfile in {source.path} copies neither the build "
                        f"context (COPY . DEST) nor a folder holding {folder} into the image: "
                        f"FOLDER={folder} may not exist there")


def context_problems(source: SourceFacts, problems: list[str], warnings: list[str]) -> None:
    """Files Docker cannot send as they are: symlinks out of the context are refused (the
    image would not hold what they point at), special files skipped with a warning."""
    for link, target in source.escaping_links:
        problems.append(f"{option_label('stx:path')}: {link} in {source.path} is a symlink out "
                        f"of the build context (to {shown(target)}): copy the file in, or add "
                        "it to .dockerignore")
    for name in source.special_files:
        warnings.append(f"{name} in {source.path} is not a regular file (a FIFO, socket or "
                        "device): it is left out of the build context")


def context_warnings(source: SourceFacts, warnings: list[str]) -> None:
    for folder, size in source.heavy_folders:
        warnings.append(f"{folder}/ ({megabytes(size)}) is in the build context of "
                        f"{source.path}: add `{folder.rsplit('/', 1)[-1]}/` to its .dockerignore "
                        "(it is left out of the image tag)")
    if source.context_bytes > CONTEXT_WARN_BYTES:
        largest = ", ".join(f"{name} {megabytes(size)}" for name, size in
                            source.largest_folders)
        warnings.append(f"the build context {source.path} holds "
                        f"{megabytes(source.context_bytes)}: every build sends it all "
                        f"(largest: {largest})")


def megabytes(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def check_memory(memory: str, cpu: int | None, where: str, problems: list[str]) -> None:
    match = MEMORY_RE.fullmatch(memory)
    if not match:
        problems.append(f"{where}: {shown(memory)} is not a size such as 512Mi or 2Gi")
        return
    mib = int(match.group(1)) * (1024 if match.group(2) == "Gi" else 1)
    if cpu in CPU_MEMORY_MIB:
        low, high = CPU_MEMORY_MIB[cpu]
        if not low <= mib <= high:
            problems.append(f"{where}: {memory} is outside what {cpu} vCPU "
                            f"allows ({size(low)} to {size(high)})")


def size(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def check_domain(domain: str | None, where: str, region: str, problems: list[str],
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


def check_zone(zone: str | None, has_token: bool, domains: list[str], problems: list[str],
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


def read_env_vars(values: Mapping[str, Any], problems: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for name, value in sorted(values.items()):
        if isinstance(value, (list, dict)):
            problems.append(f"{option_label('stx:envVars')}: {name}: expected one value, got "
                            f"{shown(value)}")
        elif env_name_ok(name):
            out.append((name, "" if value is None else str(value)))
        else:
            reserved = ", ".join(sorted(RESERVED_ENV_VARS))
            problems.append(f"{option_label('stx:envVars')}: {shown(name)} is not an allowed "
                            f"variable name (letters, digits, '_'; not {reserved} or "
                            f"{RESERVED_ENV_PREFIX}*)" + folder_hint(name))
    case_clashes("stx:envVars", [n for n, _ in out], problems)
    return tuple(out)


def env_name_ok(name: str) -> bool:
    return bool(ENV_NAME_RE.fullmatch(name)) and name not in RESERVED_ENV_VARS and not (
        name.startswith(RESERVED_ENV_PREFIX))


def folder_hint(name: str) -> str:
    return "; set FOLDER with --folder (stx:folder)" if name == "FOLDER" else ""


def case_clashes(key: str, names: list[str], problems: list[str]) -> None:
    """Names that differ only by case would give two resources or variables one name."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.lower(), name)
        if other != name:
            problems.append(f"{option_label(key)}: {other} and {name} differ only by case")


def read_secret_env(values: Mapping[str, Any], problems: list[str]) -> tuple[SecretEnv, ...]:
    out = []
    for name, ref in sorted(values.items()):
        match = SECRET_REF_RE.fullmatch(str(ref))
        if not env_name_ok(name) or not match:
            problems.append(f"{option_label('stx:secretEnv')}: {name}={ref} is not "
                            "VAR=SECRET[:VERSION] (VERSION a number or latest; VAR not "
                            f"reserved)" + folder_hint(name))
        else:
            out.append(SecretEnv(name, match.group(1), match.group(2) or "latest"))
    case_clashes("stx:secretEnv", [ref.var for ref in out], problems)
    return tuple(out)
