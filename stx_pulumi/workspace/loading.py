"""A stack's spec as the workspace, the machine and the command line describe it: the stack
file, then the options, then the defaults (precedence), and what a successful `up` writes
back into the stack file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stx_pulumi.errors import InputError, SpecError, shown
from stx_pulumi.model.build import build_spec
from stx_pulumi.model.names import APP_RE, env_problem, stack_name
from stx_pulumi.model.settings import SETTINGS, merge_settings, option_label, setting_key
from stx_pulumi.model.spec import AppSpec
from stx_pulumi.source import inspect_source
from stx_pulumi.workspace.files import Workspace, locate_workspace
from stx_pulumi.workspace.machine import with_machine_defaults


def workspace_spec(ws: Workspace, settings: Mapping[str, Any], app: str, env: str,
                   project: Mapping[str, Any] | None = None,
                   offer: DockerignoreOffer | None = None) -> AppSpec:
    """The validated spec of `settings`, whose paths are relative to this workspace: the
    app folder is read (FOLDER inside it too) and the image builds from it, relative.
    `project`: Pulumi.yaml's own settings, checked even where the stack file overrides
    them (a bad value there would break the next stack that does not). `offer`: asked
    whether to write a StreamTeX .dockerignore into an app folder that has none."""
    path = (ws.root / str(settings["stx:path"])).resolve()
    if offer is not None:
        _offer_dockerignore(ws, path, offer)
    source = inspect_source(path, _folders(settings))
    _check_not_shipped(ws, source.path)
    if project:
        try:
            build_spec(merge_settings(settings, project), app=app, env=env, source=source)
        except SpecError as err:
            mine = [p for p in err.problems if p.startswith(tuple(project))]
            if mine:
                raise SpecError([f"{ws.root / 'Pulumi.yaml'}: {p}" for p in mine]
                                ) from None
    return build_spec(settings, app=app, env=env, source=source,
                      context=ws.relative(source.path), digest=settings_digest(settings))

# Asked (app folder, what a StreamTeX .dockerignore would leave out) whether to write one;
# answers True to write it. The CLI's answer: --yes, or a confirmation on a terminal.
DockerignoreOffer = Callable[[Path, tuple[str, ...]], bool]


def _offer_dockerignore(ws: Workspace, path: Path, offer: DockerignoreOffer) -> None:
    from stx_pulumi.source import missing_dockerignore, write_dockerignore

    found = missing_dockerignore(path)
    if found and offer(path, found):
        write_dockerignore(path, list(_workspace_entries(ws, path)))


def _workspace_entries(ws: Workspace, context: Path) -> dict[str, str]:
    """The workspace's own files as paths of the build context `context` (entry → path), when
    the workspace is inside it; else none."""
    from stx_pulumi.workspace.files import WORKSPACE_FILES

    if ws.root != context and context not in ws.root.parents:
        return {}
    prefix = ws.root.relative_to(context).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    return {prefix + f: f for f in WORKSPACE_FILES}


def _check_not_shipped(ws: Workspace, context: Path) -> None:
    """A workspace inside the build context must be left out of it by .dockerignore: else its
    state, stack files and passphrase ship in the image, and every `up` builds anew (they
    move the content tag)."""
    from stx_pulumi.source import dockerignore_spec

    entries = _workspace_entries(ws, context)
    if not entries:
        return
    ignore = dockerignore_spec(context)
    shipped = [f for entry, f in entries.items() if (ws.root / f.rstrip("/")).exists()
               and not ignore.match_file(entry)]
    if shipped:
        raise InputError(f"{context / '.dockerignore'}: the workspace {ws.root} is inside the "
                         f"build context and its {', '.join(shipped)} would ship in the image "
                         "(and change its tag on every up)", hint="run `stx-pulumi init` "
                         "there again (it adds them to .dockerignore), or add them yourself")


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
    offer: DockerignoreOffer | None = None,
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
    spec = workspace_spec(ws, with_machine_defaults(settings, environ, ws), target.app,
                          env, project, offer)
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
