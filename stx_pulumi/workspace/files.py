"""The deploy workspace's files: where it is (a folder with a Pulumi.yaml of project stx-pulumi),
its stack files, its settings, the team's project folder, and YAML read strictly."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stx_pulumi.errors import InputError, shown
from stx_pulumi.model.names import APP_RE, env_problem
from stx_pulumi.model.settings import key_problems
from stx_pulumi.model.team import TEAM_DIR, TEAM_PROJECT, TEAM_STACK
from stx_pulumi.model.watch import BILLING_ACCOUNT_RE

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

    def repository_root(self) -> Path:
        """The git repository holding the workspace (the workspace itself when none): where
        `ci github` writes the workflow."""
        for folder in [self.root, *self.root.parents]:
            if (folder / ".git").exists():
                return folder
        return self.root

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
            config = data.get("config")
            config = config if isinstance(config, dict) else {}
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
        unknown = sorted(set(data) - set(MACHINE_SETTINGS))
        if unknown:
            raise InputError(f"{file}: unknown setting {shown(unknown[0])} (allowed: "
                             f"{', '.join(MACHINE_SETTINGS)})")
        account = data.get("billingAccount")
        if account is not None and not (isinstance(account, str)
                                        and BILLING_ACCOUNT_RE.fullmatch(account)):
            raise InputError(f"{file}: billingAccount {shown(account)} is not a billing account "
                             "id such as 012345-6789AB-CDEF01")
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

    def relative(self, path: Path) -> str:
        """`path` relative to the workspace (with `..` when outside it): state and config
        never hold a machine's absolute path, so another clone sees the same values."""
        return Path(os.path.relpath(path.resolve(), self.root)).as_posix()


YAML_MAX_BYTES = 1_000_000  # a stack file is a few hundred bytes


class _StrictLoader(yaml.SafeLoader):
    """YAML as a settings file needs it: no aliases (a "billion laughs" file would take
    gigabytes), no duplicate keys (the last would win silently), and keys that are plain ASCII
    with no surrounding space (`ѕtx:` with a Cyrillic s, or ` stx:port`, would be ignored)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed",
                                              self.peek_event().start_mark)  # type: ignore[no-untyped-call]
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
# What the machine's settings file (.stx-pulumi.json) may hold: `env use`, `init
# --secrets-provider`, and what `setup` recorded
MACHINE_SETTINGS = ("env", "secretsProvider", "project", "region", "billingAccount")
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
    list_in(root / ".gitignore", MACHINE_FILES)
    if (root / "Dockerfile").is_file():  # a workspace in the app folder: never in the image
        if (root / ".dockerignore").exists():
            list_in(root / ".dockerignore", WORKSPACE_FILES)
        else:  # a fresh app: StreamTeX's entries too (its .venv, .git, secrets)
            from stx_pulumi.source import write_dockerignore

            write_dockerignore(root, WORKSPACE_FILES)
    return Workspace(root.resolve())


# What stays on this machine (never committed): the local state, the machine's settings, a move
MACHINE_FILES = (f"{STATE_DIR}/", SETTINGS_FILE, f"{MOVE_DIR}/")
# A workspace's own files: in an app folder (`cd course && stx-pulumi init`) they would be in
# the build context, move the content tag on every `up` and ship in the image.
WORKSPACE_FILES = (*MACHINE_FILES, "Pulumi.yaml", MAIN_FILE, "stacks/", "team/")


def list_in(file: Path, entries: tuple[str, ...]) -> bool:
    """`entries` appended to an ignore file where missing (the file kept as it was else);
    True when it changed."""
    lines = file.read_text(encoding="utf-8").splitlines() if file.is_file() else []
    missing = [x for x in entries if x not in lines]
    if missing:
        file.write_text("\n".join([*lines, *missing]) + "\n", encoding="utf-8")
    return bool(missing)


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


