"""What this machine knows for an app: StreamTeX's `.stx-deploy.env`, the workspace default
`setup` recorded, gcloud's configured project; and the project and region each stack file
deploys to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stx_pulumi.errors import InputError, shown
from stx_pulumi.workspace.files import DEFAULT_REGION, SECRET, Workspace

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

    from stx_pulumi.model.names import PROJECT_RE, REGION_RE

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
    from stx_pulumi.cloud.google import default_project as from_gcloud_config

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
    if out.get("stx:budget") and not out.get("stx:billingAccount"):  # as setup recorded it
        saved = ws.settings() if ws is not None and ws.exists else {}
        if saved.get("billingAccount") and saved.get("project") == out.get("gcp:project"):
            out["stx:billingAccount"] = saved["billingAccount"]
    return out


