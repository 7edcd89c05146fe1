"""The deploy workspace: where it is, its stack config files, its current env, and the spec of a
stack as the workspace, the machine and the command line describe it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from stx_pulumi.errors import InputError, SpecError, shown
from stx_pulumi.source import inspect_source
from stx_pulumi.spec import (
    APP_RE,
    SETTINGS,
    AppSpec,
    build_spec,
    env_problem,
    key_problems,
    merge_settings,
    option_label,
    setting_key,
    stack_name,
)
from stx_pulumi.team import TEAM_DIR, TEAM_PROJECT, TEAM_STACK

PROJECT_NAME = "stx-pulumi"
SECRET = "[secret]"
SETTINGS_FILE = ".stx-pulumi.json"
STATE_DIR = ".pulumi-state"
MOVE_DIR = ".stx-pulumi-move"  # team setup's copies of the stack files, until its switch
DEFAULT_ENV = "dev"
DEFAULT_REGION = "europe-west1"


@dataclass(frozen=True)
class Workspace:
    """A folder with a `Pulumi.yaml` of project stx-pulumi and its `stacks/` folder."""

    root: Path

    @property
    def stacks_dir(self) -> Path:
        return self.root / "stacks"

    def stack_file(self, stack: str) -> Path:
        return self.stacks_dir / f"Pulumi.{stack}.yaml"

    def stack_config(self, stack: str) -> dict[str, Any]:
        """The stack file's config; `secure:` values become SECRET (never decrypted here).

        Raises InputError naming the file for bad YAML, a `config:` that is not a map, or an
        unknown key in a namespace stx-pulumi reads."""
        file = self.stack_file(stack)
        data = load_yaml(file) if file.is_file() else {}
        config = data.get("config") or {}
        if not isinstance(config, dict):
            raise InputError(f"{file}: `config:` must be a map of key: value, not "
                             f"{type(config).__name__}")
        problems = key_problems(config)
        if problems:
            raise InputError(f"{file}: {problems[0]}" + (
                f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        return {k: SECRET if isinstance(v, dict) and "secure" in v else v
                for k, v in config.items()}

    def stack_initialized(self, stack: str) -> bool:
        """True when Pulumi has made the stack: its file has an encryption salt or a secrets
        provider (a hand-written stack file has neither)."""
        file = self.stack_file(stack)
        data = load_yaml(file) if file.is_file() else {}
        return "encryptionsalt" in data or "secretsprovider" in data

    def secrets_provider_of(self, stack: str) -> str:
        """The secrets provider the stack file records (passphrase when none)."""
        file = self.stack_file(stack)
        found = load_yaml(file).get("secretsprovider") if file.is_file() else None
        return str(found or "passphrase")

    def stack_names(self) -> list[str]:
        """The stacks with a file in stacks/, sorted. A file whose name is no
        `Pulumi.<app>.<env>.yaml` of valid names is exit 2 naming it: names reach resource
        names, the CI workflow and the CI identity's conditions."""
        out = []
        for file in sorted(self.stacks_dir.glob("Pulumi.*.yaml")) if (
                self.stacks_dir.is_dir()) else []:
            stack = file.name[len("Pulumi."):-len(".yaml")]
            app, _, env = stack.partition(".")
            if not (APP_RE.fullmatch(app) and len(app) <= 40) or env_problem(env):
                raise InputError(f"{shown(str(file))}: not a stack file name; use "
                                 "Pulumi.<app>.<env>.yaml, app and env of lowercase letters, "
                                 "digits and '-'")
            out.append(stack)
        return out

    def has_encrypted_stacks(self) -> bool:
        """True when a stack file holds an encryption salt or encrypted values."""
        for file in self.stacks_dir.glob("Pulumi.*.yaml"):
            data = load_yaml(file)
            config = data.get("config") if isinstance(data.get("config"), dict) else {}
            if "encryptionsalt" in data or any(
                    isinstance(v, dict) and "secure" in v for v in config.values()):
                return True
        return False

    @property
    def state_dir(self) -> Path:
        """The default local file backend (and the generated passphrase)."""
        return self.root / STATE_DIR

    @property
    def passphrase_file(self) -> Path:
        """Where the generated secrets passphrase is kept when none is given."""
        return self.state_dir / "passphrase"

    def settings(self) -> dict[str, Any]:
        """The workspace's git-ignored settings: current env, secrets provider.

        Raises InputError naming the file when it is not a JSON object of known settings."""
        file = self.root / SETTINGS_FILE
        if not file.is_file():
            return {}
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputError(f"{file}: not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise InputError(f"{file}: must be a JSON object such as {{\"env\": \"dev\"}}")
        unknown = sorted(set(data) - {"env", "secretsProvider", "project", "region"})
        if unknown:
            raise InputError(f"{file}: unknown setting {shown(unknown[0])} (allowed: env, "
                             "secretsProvider, project, region)")
        env = data.get("env")
        if env is not None and (not isinstance(env, str) or env_problem(env)):
            raise InputError(f"{file}: env {shown(env)} is not an env name (1-12 lowercase "
                             "letters, digits or '-', starting with a letter)")
        provider = data.get("secretsProvider")
        if provider is not None and secrets_provider_problem(str(provider)):
            raise InputError(f"{file}: {secrets_provider_problem(str(provider))}")
        return data

    def secrets_provider(self) -> str | None:
        """The secrets provider of new stacks: this machine's setting (`init
        --secrets-provider`), else the team's (the committed team stack file's, once `team
        setup` moved it to Cloud KMS), else None (passphrase)."""
        mine = self.settings().get("secretsProvider")
        if mine:
            return str(mine)
        team = self.team_files.secrets_provider_of(TEAM_STACK)
        return team if team != "passphrase" else None

    @property
    def team_files(self) -> Workspace:
        """The team stack's Pulumi project folder (its own Pulumi.yaml and stacks/)."""
        return Workspace(self.root / TEAM_DIR)

    def save_settings(self, **values: Any) -> None:
        data = {**self.settings(), **values}
        (self.root / SETTINGS_FILE).write_text(json.dumps(data, indent=2) + "\n",
                                               encoding="utf-8")

    @property
    def exists(self) -> bool:
        return (self.root / "Pulumi.yaml").is_file()

    def current_env(self) -> str:
        return str(self.settings().get("env") or DEFAULT_ENV)

    def project_config(self) -> dict[str, Any]:
        """Settings for every stack of the workspace: Pulumi.yaml's project-level `config:`
        (Pulumi applies it to each stack, below the stack's own), as `key: value` or
        `key: {value: ...}`. An unknown key is exit 2 naming the file."""
        file = self.root / "Pulumi.yaml"
        config = (load_yaml(file) if file.is_file() else {}).get("config") or {}
        if not isinstance(config, dict):
            raise InputError(f"{file}: `config:` must be a map of key: value")
        problems = key_problems(config)
        if problems:
            raise InputError(f"{file}: {problems[0]}")
        return {k: (v.get("value", v.get("default")) if isinstance(v, dict)
                    and ({"value", "default"} & set(v)) else v) for k, v in config.items()}

    def project_backend(self) -> str | None:
        """`backend.url` of the workspace's Pulumi.yaml, if any."""
        file = self.root / "Pulumi.yaml"
        data = load_yaml(file) if file.is_file() else {}
        backend = data.get("backend")
        return backend.get("url") if isinstance(backend, dict) else None

    def backend_url(self, environ: Mapping[str, str]) -> str:
        """PULUMI_BACKEND_URL, else Pulumi.yaml's backend.url, else the local file backend; a
        relative `file://` URL is resolved against the workspace (the Pulumi CLI resolves it
        against its working directory, which stx-pulumi sets to the workspace)."""
        url = environ.get("PULUMI_BACKEND_URL") or self.project_backend() or DEFAULT_BACKEND
        path = url.removeprefix("file://")
        if url.startswith("file://") and not path.startswith(("/", "~")):
            return (self.root / path).resolve().as_uri()
        return url

    def app_path(self, app: str) -> str | None:
        """The app folder the app's other stacks agree on, for its first stack in a new env."""
        paths = {str(self.stack_config(f.name[len("Pulumi."):-len(".yaml")]).get("stx:path"))
                 for f in self.stacks_dir.glob(f"Pulumi.{app}.*.yaml")}
        paths.discard("None")
        return paths.pop() if len(paths) == 1 else None

    def spec(self, settings: Mapping[str, Any], app: str, env: str,
             project: Mapping[str, Any] | None = None) -> AppSpec:
        """The validated spec of `settings`, whose paths are relative to this workspace: the
        app folder is read (FOLDER inside it too) and the image builds from it, relative.
        `project`: Pulumi.yaml's own settings, checked even where the stack file overrides
        them (a bad value there would break the next stack that does not)."""
        source = inspect_source((self.root / str(settings["stx:path"])).resolve(),
                                _folders(settings))
        if project:
            try:
                build_spec(merge_settings(settings, project), app=app, env=env, source=source)
            except SpecError as err:
                mine = [p for p in err.problems if p.startswith(tuple(project))]
                if mine:
                    raise SpecError([f"{self.root / 'Pulumi.yaml'}: {p}" for p in mine]
                                    ) from None
        spec = build_spec(settings, app=app, env=env, source=source)
        return replace(spec, context=self.relative(spec.source),
                       settings_digest=settings_digest(settings))

    def relative(self, path: Path) -> str:
        """`path` relative to the workspace (with `..` when outside it): state and config
        never hold a machine's absolute path, so another clone sees the same values."""
        return Path(os.path.relpath(path.resolve(), self.root)).as_posix()


def settings_digest(settings: Mapping[str, Any]) -> str:
    """A digest of the settings as stored (every value as text, JSON maps read), the app
    folder left out (the image tag covers its content): equal for the settings an `up` was
    given and the stack file it wrote them to."""
    import hashlib

    def text(value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("{"):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return value
        if isinstance(value, Mapping):
            return {str(k): text(v) for k, v in value.items()}
        return None if value is None else _text(value)

    kept = {k: text(v) for k, v in settings.items() if k != "stx:path" and v is not None}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def _folders(settings: Mapping[str, Any]) -> list[str]:
    """The FOLDERs the settings name: stx:folder and each book's (malformed ones are left to
    the spec to report)."""
    books = settings.get("stx:books")
    books = json.loads(books) if isinstance(books, str) and books.strip() else books
    folders = [str(settings.get("stx:folder") or "").strip()]
    if isinstance(books, Mapping):
        folders += [str(b.get("folder") or "").strip() for b in books.values()
                    if isinstance(b, Mapping)]
    return [f for f in folders if f]


YAML_MAX_BYTES = 1_000_000  # a stack file is a few hundred bytes


class _StrictLoader(yaml.SafeLoader):
    """YAML as a settings file needs it: no aliases (a "billion laughs" file would take
    gigabytes), no duplicate keys (the last would win silently), and keys that are plain ASCII
    with no surrounding space (`ѕtx:` with a Cyrillic s, or ` stx:port`, would be ignored)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            where = key_node.start_mark
            if isinstance(key, str) and (not key.isascii() or key != key.strip()):
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {shown(key)} is not plain ASCII without spaces", where)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {shown(key)} is given twice", where)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(file: Path) -> dict[str, Any]:
    """A YAML file that must hold a map; InputError naming the file (and line) otherwise."""
    try:
        if file.stat().st_size > YAML_MAX_BYTES:
            raise InputError(f"{file}: {file.stat().st_size:,} bytes, more than a settings file "
                             f"holds ({YAML_MAX_BYTES:,} at most)")
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except UnicodeDecodeError as err:
        raise InputError(f"{file}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise InputError(f"{file}: cannot be read ({err.strerror})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise InputError(f"{file}: not valid YAML{where} ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{file}: must hold a map of key: value, not {type(data).__name__}")
    return data


def find_workspace(start: Path) -> Workspace | None:
    """The nearest folder at or above `start` whose Pulumi.yaml names project stx-pulumi.

    A Pulumi.yaml that cannot be read is an error (exit 2), never silently passed over."""
    for folder in [start.resolve(), *start.resolve().parents]:
        file = folder / "Pulumi.yaml"
        if file.is_file() and load_yaml(file).get("name") == PROJECT_NAME:
            return Workspace(folder)
    return None


def home_dir(environ: Mapping[str, str]) -> Path:
    """The fallback workspace: $STX_PULUMI_HOME, else ~/.stx-pulumi."""
    return Path(environ.get("STX_PULUMI_HOME") or Path.home() / ".stx-pulumi")


def locate_workspace(cwd: Path, environ: Mapping[str, str]) -> Workspace:
    """The nearest workspace at or above `cwd`, else the home one ($STX_PULUMI_HOME or
    ~/.stx-pulumi), which is only made on disk when the engine first needs it."""
    return find_workspace(cwd) or Workspace(home_dir(environ).resolve())


SCHEMES = ("file://", "gs://", "s3://", "azblob://", "https://")
SECRETS_SCHEMES = ("gcpkms://", "awskms://", "azurekeyvault://", "hashivault://")


def backend_problem(url: str) -> str | None:
    """Why `url` cannot be a state backend, or None."""
    if url.startswith(SCHEMES) and len(url) > len(url.partition("://")[0]) + 3:
        return None
    return (f"--backend: {shown(url)} is not a backend URL; use one of "
            f"{', '.join(s + '...' for s in SCHEMES)}")


def secrets_provider_problem(provider: str) -> str | None:
    """Why `provider` cannot be a secrets provider, or None."""
    if provider == "passphrase" or (provider.startswith(SECRETS_SCHEMES) and
                                    len(provider) > len(provider.partition("://")[0]) + 3):
        return None
    return (f"--secrets-provider: {shown(provider)} is not a secrets provider; use passphrase or "
            f"one of {', '.join(s + '...' for s in SECRETS_SCHEMES)}")


MAIN_FILE = "__main__.py"
DEFAULT_BACKEND = "file://.pulumi-state"  # relative: resolved against the workspace


def create_workspace(root: Path, backend: str | None = None) -> Workspace:
    """Make `root` a workspace: Pulumi.yaml (kept if present) naming the backend and a
    `__main__.py` program at the root, stacks/, .gitignore entries. Nothing written holds an
    absolute path, so the folder works from any clone and any Python environment."""
    root.mkdir(parents=True, exist_ok=True)
    project = root / "Pulumi.yaml"
    exists = project.is_file()
    data = load_yaml(project) if exists else {
        "name": PROJECT_NAME,
        "description": "StreamTeX apps on Google Cloud Run (stx-pulumi workspace)",
        "runtime": "python",
        "main": MAIN_FILE,
        "stackConfigDir": "stacks",
        "backend": {"url": DEFAULT_BACKEND},
    }
    if backend:
        data["backend"] = {"url": backend}
    if backend or not exists:
        project.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    main = root / MAIN_FILE
    if data.get("main") == MAIN_FILE and not main.exists():
        main.write_text(MAIN_PROGRAM, encoding="utf-8")
    (root / "stacks").mkdir(exist_ok=True)
    ignore = root / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else []
    missing = [x for x in (f"{STATE_DIR}/", SETTINGS_FILE, f"{MOVE_DIR}/") if x not in lines]
    if missing:
        ignore.write_text("\n".join([*lines, *missing]) + "\n", encoding="utf-8")
    return Workspace(root.resolve())


def create_team_files(ws: Workspace) -> Workspace:
    """The team stack's project folder (committed with the workspace): a Pulumi.yaml of
    project stx-pulumi-team, its stack file in stacks/. The program is inline."""
    files = ws.team_files
    (files.root / "stacks").mkdir(parents=True, exist_ok=True)
    project = files.root / "Pulumi.yaml"
    if not project.is_file():
        project.write_text(yaml.safe_dump({
            "name": TEAM_PROJECT, "runtime": "python", "stackConfigDir": "stacks",
            "description": "The team's state bucket, secrets key and CI identity (stx-pulumi "
                           "team setup)"}, sort_keys=False), encoding="utf-8")
    return files


def set_backend(ws: Workspace, url: str) -> None:
    """Record `url` as the workspace's state backend (Pulumi.yaml's backend.url, committed)."""
    project = ws.root / "Pulumi.yaml"
    data = load_yaml(project)
    data["backend"] = {"url": url}
    project.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


MAIN_PROGRAM = """\
# The stx-pulumi program, for plain `pulumi` commands in this workspace (Pulumi.yaml's `main`):
#   PULUMI_CONFIG_PASSPHRASE_FILE=.pulumi-state/passphrase pulumi preview -s <app>.<env>
# It deploys what `stx-pulumi up` deploys, from the stack's config. Written by `stx-pulumi init`.
from stx_pulumi.pulumi_main import main

main()
"""


DEPLOY_ENV = ".stx-deploy.env"  # StreamTeX's deploy settings beside an app


# The Google keys of StreamTeX's .stx-deploy.env (its other keys are for its other targets:
# Coolify, Hetzner...), and what each must hold.
DEPLOY_ENV_KEYS = {"GCP_PROJECT_ID": "project", "GCP_REGION": "region", "GCP_REGISTRY": None}


def deploy_env(folders: Sequence[Path | None]) -> dict[str, str]:
    """StreamTeX's deploy settings (GCP_PROJECT_ID, GCP_REGION, GCP_REGISTRY) from the first
    `.stx-deploy.env` among `folders` (the app folder, then the workspace), read as StreamTeX
    reads it (python-dotenv). A line that is no KEY=VALUE, a GCP_ key that is none of these,
    a bad project or region, or bytes that are not UTF-8 are exit 2 naming the file and line."""
    for folder in folders:
        file = folder / DEPLOY_ENV if folder else None
        if file and file.is_file():
            return _read_deploy_env(file)
    return {}


def _read_deploy_env(file: Path) -> dict[str, str]:
    import difflib
    import io

    from dotenv.parser import parse_stream

    from stx_pulumi.spec import PROJECT_RE, REGION_RE

    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{file}: not UTF-8 text (byte {err.start})") from None
    out = {}
    for binding in parse_stream(io.StringIO(text)):
        where = f"{file}:{binding.original.line}"
        if binding.error:
            raise InputError(f"{where}: {shown(binding.original.string.strip())} is not "
                             "KEY=VALUE")
        key, value = binding.key, binding.value or ""
        if key is None:
            continue
        if key.startswith("GCP_") and key not in DEPLOY_ENV_KEYS:
            close = difflib.get_close_matches(key, list(DEPLOY_ENV_KEYS), n=1)
            raise InputError(f"{where}: {shown(key)} is not a setting stx-pulumi reads"
                             + (f"; did you mean {close[0]}?" if close else ""))
        rule = {"project": PROJECT_RE, "region": REGION_RE}.get(DEPLOY_ENV_KEYS.get(key) or "")
        if value and rule is not None and not rule.fullmatch(value):
            raise InputError(f"{where}: {key}: {shown(value)} is not a Google Cloud "
                             f"{DEPLOY_ENV_KEYS[key]}")
        if value:
            out[key] = value
    return out


def stack_configs(ws: Workspace) -> list[tuple[str, dict[str, Any]]]:
    """(stack, config) of every stack file of the workspace (a broken one is left out: its
    own commands name it)."""
    out = []
    for stack in ws.stack_names() if ws.exists else []:
        try:
            out.append((stack, ws.stack_config(stack)))
        except InputError:
            continue
    return out


def located(ws: Workspace, config: Mapping[str, Any], environ: Mapping[str, str]
            ) -> tuple[str | None, str]:
    """(project, region) a stack file deploys to, its own settings first."""
    return (str(config.get("gcp:project") or default_project(environ, ws) or "") or None,
            str(config.get("gcp:region") or local_defaults(ws, None).get("region")
                or DEFAULT_REGION))


def local_defaults(ws: Workspace | None, app_folder: Path | None) -> dict[str, str]:
    """Project and region this machine knows for an app: `.stx-deploy.env` (the app's, then
    the workspace's), then the workspace default `setup` recorded."""
    saved = ws.settings() if ws is not None and ws.exists else {}
    found = deploy_env([app_folder, ws.root if ws is not None else None])
    return {k: v for k, v in {
        "project": found.get("GCP_PROJECT_ID") or saved.get("project"),
        "region": found.get("GCP_REGION") or saved.get("region")}.items() if v}


def default_project(environ: Mapping[str, str], ws: Workspace | None = None,
                    app_folder: Path | None = None) -> str | None:
    """The project when neither an option nor the stack config names one: GOOGLE_CLOUD_PROJECT,
    else `local_defaults`, else gcloud's configured project (read from its configuration
    files: no subprocess, so `plan` starts none)."""
    from stx_pulumi.google import default_project as from_gcloud_config

    if environ.get("GOOGLE_CLOUD_PROJECT"):
        return environ["GOOGLE_CLOUD_PROJECT"]
    return local_defaults(ws, app_folder).get("project") or from_gcloud_config(environ)


def with_machine_defaults(settings: Mapping[str, Any], environ: Mapping[str, str],
                          ws: Workspace | None = None) -> dict[str, Any]:
    """Fill what the machine knows: the default project and region, a Cloudflare token in
    the environment."""
    out = dict(settings)
    if environ.get("CLOUDFLARE_API_TOKEN") and not out.get("cloudflare:apiToken"):
        out["cloudflare:apiToken"] = SECRET
    app_folder = (ws.root / str(out["stx:path"])).resolve() if ws and out.get("stx:path") else (
        None)
    local_defaults(ws, app_folder)  # a broken .stx-deploy.env is exit 2, read or not
    if not out.get("gcp:project"):
        out["gcp:project"] = default_project(environ, ws, app_folder)
    if not out.get("gcp:region"):
        out["gcp:region"] = local_defaults(ws, app_folder).get("region")
    return out


@dataclass(frozen=True)
class Target:
    """The app a command is about and where its folder is, if known from the arguments."""

    app: str
    path: Path | None
    named_by_folder: bool = False


def resolve_target(app_arg: str | None, cwd: Path, ws: Workspace | None,
                   env: str) -> Target:
    """APP is an app name or a path to the app folder; without it, the current folder."""
    if app_arg is None:
        if (cwd / "Dockerfile").is_file():
            return Target(cwd.resolve().name, cwd.resolve(), named_by_folder=True)
        raise InputError("APP: give an app name or an app folder (the current folder has no "
                         "Dockerfile)")
    looks_like_path = "/" in app_arg or os.sep in app_arg or app_arg in (".", "..")
    named_stack = ws is not None and ws.stack_file(stack_name(app_arg, env)).is_file()
    if looks_like_path or (not named_stack and (cwd / app_arg).is_dir()):
        path = (cwd / app_arg).resolve()
        if not path.is_dir():
            raise InputError(f"APP: folder {app_arg} does not exist")
        return Target(path.name, path, named_by_folder=True)
    return Target(app_arg, None)


def unset_keys(names: Sequence[str]) -> list[str]:
    """The config keys named by `--unset` values; exit 2 on an unknown one."""
    keys = []
    for name in names:
        group, _, entry = name.removeprefix("stx:").partition(".")
        if group in ("books", "events") and APP_RE.fullmatch(entry):
            keys.append(f"stx:{group}.{entry}")  # one book (its service) or one event window
            continue
        key = setting_key(name)
        if key is None or key == "stx:path":
            allowed = ", ".join(s.key.partition(":")[2] for s in SETTINGS if s.key != "stx:path")
            raise InputError(f"--unset: {shown(name)} is not a setting that can be removed; "
                             "one of: "
                             f"{allowed}, or books.NAME / events.NAME for one book or event")
        keys.append(key)
    return keys


def load_spec(
    app_arg: str | None,
    *,
    env: str | None,
    overrides: Mapping[str, Any],
    cwd: Path,
    environ: Mapping[str, str],
    unset: Sequence[str] = (),
    allow_placeholder_project: bool = False,
) -> tuple[AppSpec, Workspace]:
    """The spec of `<app>.<env>`: the stack config, then `overrides`, then defaults.

    Raises InputError/SpecError (exit 2) before anything else happens; creates nothing."""
    ws = locate_workspace(cwd, environ)
    env = env if env is not None else environ.get("STX_ENV") or ws.current_env()
    if env_problem(env):
        raise InputError(str(env_problem(env)))
    target = resolve_target(app_arg, cwd, ws, env)
    if target.named_by_folder and not APP_RE.fullmatch(target.app):
        raise InputError(f"APP: the folder name {shown(target.app)} is not a valid app name "
                         "(lowercase letters, digits, '-'): give the name as APP and the "
                         "folder as --path")
    config = ws.stack_config(stack_name(target.app, env))
    for key in unset_keys(unset):
        if not drop_setting(config, key) and "." in key:  # a book or window it does not have
            group, _, entry = key.removeprefix("stx:").partition(".")
            held = sorted(config.get(f"stx:{group}") or {})
            raise InputError(f"--unset: {group}.{entry}: {stack_name(target.app, env)} has no "
                             f"{group[:-1]} {shown(entry)}" + (f" ({group}: {', '.join(held)})"
                                                           if held else ""))
    # command line > stack file > the workspace's Pulumi.yaml > what the machine knows
    project = ws.project_config()
    settings = merge_settings(merge_settings(project, config), overrides)
    if target.path is not None and "stx:path" not in overrides:
        settings["stx:path"] = str(target.path)
    if not settings.get("stx:path"):
        settings["stx:path"] = ws.app_path(target.app)
    if not settings.get("stx:path"):
        raise InputError(f"{option_label('stx:path')}: no app folder known for "
                         f"{stack_name(target.app, env)}: give APP as a folder or --path")
    spec = ws.spec(with_machine_defaults(settings, environ, ws), target.app, env, project)
    if spec.project_is_placeholder and not allow_placeholder_project:
        raise InputError(f"{option_label('gcp:project')}: no Google Cloud project: pass "
                         "--project, set GOOGLE_CLOUD_PROJECT, or run `gcloud config set "
                         "project ID`")
    return spec, ws


def drop_setting(config: dict[str, Any], key: str) -> bool:
    """Remove `key` (or one book, `stx:books.NAME`) from `config`; True when it was there."""
    top, _, book = key.partition(".")
    if not book:
        return config.pop(key, None) is not None
    books = config.get(top)
    if not isinstance(books, dict) or book not in books:
        return False
    config[top] = {k: v for k, v in books.items() if k != book}
    return True


def config_updates(spec: AppSpec, overrides: Mapping[str, Any], config: Mapping[str, Any],
                   ws: Workspace) -> tuple[list[tuple[str, str]], list[str]]:
    """What a successful `up` writes into the stack config, as (key, value), and notices:
    the options given, the project and region when not yet pinned, and the app folder
    (relative to the workspace) when it differs from the recorded one, so that a later `up`
    without them changes nothing. Map entries use a `key.entry` path."""
    values: dict[str, Any] = {k: v for k, v in overrides.items() if k != "stx:path"}
    for key, pinned in (("gcp:project", spec.project), ("gcp:region", spec.region)):
        if key in overrides or key not in config:
            values[key] = pinned
    notices = []
    folder = ws.relative(spec.source)
    recorded = config.get("stx:path")
    if recorded is None or (ws.root / str(recorded)).resolve() != spec.source:
        values["stx:path"] = folder
        if recorded is not None:
            notices.append(f"stx:path: the app folder changes from {recorded} to {folder}")
    updates = []
    for key, value in values.items():
        if isinstance(value, Mapping):
            updates += _paths(key, value)
        elif _text(config.get(key)) != _text(value):
            updates.append((key, _text(value)))
    return updates, notices


def _paths(prefix: str, value: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A map as `key.entry[.entry]` path updates, one per leaf."""
    out = []
    for key, item in value.items():
        if isinstance(item, Mapping):
            out += _paths(f"{prefix}.{key}", item)
        else:
            out.append((f"{prefix}.{key}", _text(item)))
    return out


def moved_settings(spec: AppSpec, config: Mapping[str, Any]) -> str | None:
    """What a project or region change of a deployed stack replaces, or None."""
    moves = [f"{key} {config[key]} → {new}"
             for key, new in (("gcp:project", spec.project), ("gcp:region", spec.region))
             if config.get(key) and str(config[key]) != new]
    if not moves:
        return None
    return (f"{' and '.join(moves)} replaces the Cloud Run service (a new URL), its image "
            "registry, runtime account" + (" and domain mapping" if spec.domains else "")
            + " of the deployed stack")


def _text(value: Any) -> str:
    """A config value as Pulumi stores it (a string; booleans lowercase)."""
    return str(value).lower() if isinstance(value, bool) else str(value)
