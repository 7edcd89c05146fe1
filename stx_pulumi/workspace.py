"""The deploy workspace: where it is, its stack config files, its current env, and the spec of a
stack as the workspace, the machine and the command line describe it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stx_pulumi.errors import InputError
from stx_pulumi.source import inspect_source
from stx_pulumi.spec import (
    APP_RE,
    AppSpec,
    build_spec,
    env_problem,
    merge_settings,
    option_label,
    stack_name,
)

PROJECT_NAME = "stx-pulumi"
SECRET = "[secret]"
SETTINGS_FILE = ".stx-pulumi.json"
DEFAULT_ENV = "dev"


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
        """The stack file's config; `secure:` values become SECRET (never decrypted here)."""
        file = self.stack_file(stack)
        if not file.is_file():
            return {}
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        config = data.get("config") or {}
        return {k: SECRET if isinstance(v, dict) and "secure" in v else v
                for k, v in config.items()}

    def current_env(self) -> str:
        file = self.root / SETTINGS_FILE
        if file.is_file():
            try:
                return str(json.loads(file.read_text(encoding="utf-8")).get("env") or DEFAULT_ENV)
            except (json.JSONDecodeError, AttributeError):
                pass
        return DEFAULT_ENV

    def relative(self, path: Path) -> str:
        """`path` relative to the workspace when inside it, else absolute."""
        path = path.resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def find_workspace(start: Path) -> Workspace | None:
    """The nearest folder at or above `start` whose Pulumi.yaml names project stx-pulumi."""
    for folder in [start.resolve(), *start.resolve().parents]:
        file = folder / "Pulumi.yaml"
        if file.is_file():
            try:
                data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError:
                continue
            if isinstance(data, dict) and data.get("name") == PROJECT_NAME:
                return Workspace(folder)
    return None


def default_project(environ: Mapping[str, str]) -> str | None:
    """GOOGLE_CLOUD_PROJECT, else the project gcloud is configured with, else None."""
    if environ.get("GOOGLE_CLOUD_PROJECT"):
        return environ["GOOGLE_CLOUD_PROJECT"]
    gcloud = shutil.which("gcloud", path=environ.get("PATH"))
    if not gcloud:
        return None
    try:
        result = subprocess.run([gcloud, "config", "get-value", "project"], capture_output=True,
                                text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = result.stdout.strip()
    return value if result.returncode == 0 and value and value != "(unset)" else None


def with_machine_defaults(settings: Mapping[str, Any],
                          environ: Mapping[str, str]) -> dict[str, Any]:
    """Fill what the machine knows: the default project, a Cloudflare token in the environment."""
    out = dict(settings)
    if environ.get("CLOUDFLARE_API_TOKEN") and not out.get("cloudflare:apiToken"):
        out["cloudflare:apiToken"] = SECRET
    if not out.get("gcp:project"):
        out["gcp:project"] = default_project(environ)
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


def load_spec(
    app_arg: str | None,
    *,
    env: str | None,
    overrides: Mapping[str, Any],
    cwd: Path,
    environ: Mapping[str, str],
    allow_placeholder_project: bool = False,
) -> tuple[AppSpec, Workspace | None]:
    """The spec of `<app>.<env>`: the stack config, then `overrides`, then defaults.

    Raises InputError/SpecError (exit 2) before anything else happens.
    """
    ws = find_workspace(cwd)
    env = env or environ.get("STX_ENV") or (ws.current_env() if ws else DEFAULT_ENV)
    if env_problem(env):
        raise InputError(str(env_problem(env)))
    target = resolve_target(app_arg, cwd, ws, env)
    if target.named_by_folder and not APP_RE.match(target.app):
        raise InputError(f"APP: the folder name {target.app!r} is not a valid app name "
                         "(lowercase letters, digits, '-'): give the name as APP and the "
                         "folder as --path")
    config = ws.stack_config(stack_name(target.app, env)) if ws else {}
    settings = merge_settings(config, overrides)
    if target.path is not None and "stx:path" not in overrides:
        settings["stx:path"] = str(target.path)
    if not settings.get("stx:path"):
        raise InputError(f"{option_label('stx:path')}: no app folder known for "
                         f"{stack_name(target.app, env)}: give APP as a folder or --path")
    base = ws.root if ws else cwd
    source_path = (base / str(settings["stx:path"])).resolve()  # config paths: workspace-relative
    spec = build_spec(with_machine_defaults(settings, environ), app=target.app, env=env,
                      source=inspect_source(source_path))
    if spec.project_is_placeholder and not allow_placeholder_project:
        raise InputError(f"{option_label('gcp:project')}: no Google Cloud project: pass "
                         "--project, set GOOGLE_CLOUD_PROJECT, or run `gcloud config set "
                         "project ID`")
    return spec, ws
