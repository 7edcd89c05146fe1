"""The program as `Pulumi.yaml`'s `main` runs it (plain `pulumi up` in a workspace): the
spec comes from the stack's config."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi

from stx_pulumi.errors import InputError
from stx_pulumi.model.names import split_stack_name
from stx_pulumi.model.settings import SETTINGS, option_label
from stx_pulumi.program.app import StreamtexApp, deploy
from stx_pulumi.workspace import (
    SECRET,
    Workspace,
    find_workspace,
    with_machine_defaults,
    workspace_spec,
)


def settings_from_config() -> dict[str, Any]:
    """Every stx-pulumi setting present in the stack's `pulumi.Config` (secrets: presence only)."""
    settings: dict[str, Any] = {}
    for setting in SETTINGS:
        namespace, _, key = setting.key.partition(":")
        config = pulumi.Config(namespace)
        value = config.get_secret(key) if setting.secret else config.get(key)
        if value is not None:
            settings[setting.key] = SECRET if setting.secret else value
    return settings


def deploy_from_config(environ: Mapping[str, str] = os.environ) -> StreamtexApp:
    """The program as Pulumi.yaml's `main` runs it: the spec comes from the stack's config,
    paths relative to the workspace wherever the program's working directory is."""
    app, env = split_stack_name(pulumi.get_stack())
    root = workspace_root()
    settings = with_machine_defaults(settings_from_config(), environ, Workspace(root))
    if not settings.get("stx:path"):
        raise InputError(f"{option_label('stx:path')}: not set in stack {pulumi.get_stack()}")
    spec = workspace_spec(Workspace(root), settings, app, env)
    if spec.project_is_placeholder:
        raise InputError(f"{option_label('gcp:project')}: not set in stack {pulumi.get_stack()}")
    return deploy(spec, cloudflare_token=cloudflare_token(None, environ))


def workspace_root() -> Path:
    """The workspace: Pulumi's root directory (the folder of Pulumi.yaml) when the CLI set it,
    else the nearest folder at or above the working directory holding the stx-pulumi
    Pulumi.yaml (inline programs and mocks have no root directory)."""
    root = pulumi.get_root_directory()
    if root and (Path(root) / "Pulumi.yaml").is_file():
        return Path(root).resolve()
    found = find_workspace(Path.cwd())
    if found is None:
        raise InputError(f"no stx-pulumi Pulumi.yaml at or above {Path.cwd()}")
    return found.root


def cloudflare_token(given: str | None = None,
                     environ: Mapping[str, str] = os.environ) -> pulumi.Output[str] | None:
    """The token given (or CLOUDFLARE_API_TOKEN: a rotated token wins), else the stack's
    secret `cloudflare:apiToken`, as a secret."""
    given = given or environ.get("CLOUDFLARE_API_TOKEN")
    if given:
        return pulumi.Output.secret(given)
    return pulumi.Config("cloudflare").get_secret("apiToken")
