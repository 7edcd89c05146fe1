"""The Pulumi CLI: found (on PATH, in ~/.pulumi/bin or the tool's own folder), checked against
the version stx-pulumi needs, or installed. Any failure is a missing prerequisite (exit 3)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from stx_pulumi.errors import PrerequisiteError
from stx_pulumi.workspace import home_dir

# Inline refresh and destroy need 3.181; release records keep their verification in stack
# tags, which the file (DIY) backend has from 3.211 (pulumi/pulumi#21203, CHANGELOG 3.211.0;
# older CLIs answer "stack tags not supported in --local mode").
MIN_CLI_VERSION = "3.211.0"
INSTALL_HINT = ("install it from https://www.pulumi.com/docs/iac/download-install/ "
                "or run `stx-pulumi install-cli` (needs internet)")


def find_cli(environ: Mapping[str, str]) -> auto.PulumiCommand:
    """The Pulumi CLI: `pulumi` on PATH (version-manager shims included), else ~/.pulumi/bin,
    else the tool's own folder; at least MIN_CLI_VERSION. Any failure is exit 3."""
    candidates: list[str | None] = []
    if shutil.which("pulumi", path=environ.get("PATH")):
        candidates.append(None)  # PulumiCommand() runs `pulumi` from PATH
    candidates += [str(root) for root in (Path.home() / ".pulumi", home_dir(environ) / "cli")
                   if (root / "bin" / "pulumi").is_file()]
    if not candidates:
        raise PrerequisiteError("the Pulumi CLI (`pulumi`) was not found on PATH, in "
                                f"~/.pulumi/bin or in {home_dir(environ) / 'cli' / 'bin'}",
                                hint=INSTALL_HINT)
    root = candidates[0]
    where = "`pulumi` on PATH" if root is None else str(Path(root) / "bin" / "pulumi")
    try:
        command = auto.PulumiCommand(root=root, skip_version_check=True)
    except subprocess.CalledProcessError as err:
        raise PrerequisiteError(f"{where} failed to run `pulumi version` (exit "
                                f"{err.returncode})", hint=INSTALL_HINT) from None
    except (OSError, ValueError) as err:
        raise PrerequisiteError(f"{where} does not run ({err})", hint=INSTALL_HINT) from None
    if _version(command) < _parse(MIN_CLI_VERSION):
        raise PrerequisiteError(f"{where} is version {command.version}; stx-pulumi needs "
                                f"{MIN_CLI_VERSION} or newer", hint=INSTALL_HINT)
    return command


def cli_warning(command: auto.PulumiCommand) -> str | None:
    """A notice when the CLI is older than the Pulumi SDK stx-pulumi runs with."""
    sdk = _parse(sdk_version())
    if _version(command) < sdk:
        return (f"the Pulumi CLI is {command.version}, older than the Pulumi SDK {sdk}: "
                "update it (`stx-pulumi install-cli` installs the matching one)")
    return None


def sdk_version() -> str:
    """The installed `pulumi` Python SDK's version: the CLI version install-cli installs."""
    from importlib.metadata import version

    return version("pulumi")


def install_cli(environ: Mapping[str, str]) -> Path:
    """Install the Pulumi CLI matching the SDK into the tool's own folder; needs internet."""
    root = home_dir(environ) / "cli"
    try:
        auto.PulumiCommand.install(root=str(root), version=_parse(sdk_version()))
    except Exception as err:  # the installer raises many kinds; all mean the same to the user
        raise PrerequisiteError(
            f"could not install the Pulumi CLI {sdk_version()} into {root}: {err}",
            hint="the installer downloads from get.pulumi.com: it needs internet access") from None
    return root / "bin" / "pulumi"


def _parse(text: str) -> Any:
    from semver import VersionInfo  # a dependency of pulumi

    return VersionInfo.parse(text)


def _version(command: auto.PulumiCommand) -> Any:
    return command.version or _parse("0.0.0")
