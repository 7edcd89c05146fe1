"""Shared constants, the CLI's error, and secret wrapping as the real engine stores it."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any

PROJECT = "stx-pulumi"  # the default; `project()` reads the working folder's Pulumi.yaml
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
DATETIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@functools.cache
def project() -> str:
    """The Pulumi project of the working folder (stacks are per project, as in DIY backends)."""
    import re
    from pathlib import Path

    file = Path.cwd() / "Pulumi.yaml"
    found = re.search(r"^name:\s*(\S+)", file.read_text() if file.is_file() else "",
                      re.MULTILINE)
    return found.group(1) if found else PROJECT


class Fail(Exception):
    """An error the real CLI would print before exiting 255."""


def now() -> str:
    return datetime.now(UTC).strftime(DATETIME)


def seal(value: Any, cipher: Any) -> Any:
    """Secret values encrypted, as a real backend stores them."""
    if is_secret(value):
        return {SIG_KEY: SECRET_SIG, "ciphertext": cipher.encrypt(json.dumps(value["value"]))}
    if isinstance(value, dict):
        return {k: seal(v, cipher) for k, v in value.items()}
    if isinstance(value, list):
        return [seal(v, cipher) for v in value]
    return value


def unseal(value: Any, cipher: Any) -> Any:
    if isinstance(value, dict) and "ciphertext" in value and value.get(SIG_KEY) == SECRET_SIG:
        return {SIG_KEY: SECRET_SIG, "value": json.loads(cipher.decrypt(value["ciphertext"]))}
    if isinstance(value, dict):
        return {k: unseal(v, cipher) for k, v in value.items()}
    if isinstance(value, list):
        return [unseal(v, cipher) for v in value]
    return value


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def unwrap(value: Any) -> Any:
    if is_secret(value):
        return unwrap(value.get("value"))
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value
