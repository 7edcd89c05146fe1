"""The file backend (one JSON state per stack, lock files beside) and the passphrase cipher."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .common import PROJECT, Fail, now


class Cipher:
    """Reversible, passphrase-keyed obfuscation: enough to keep plaintext out of files."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    @classmethod
    def from_env(cls, salt: str | None) -> Cipher:
        phrase = os.environ.get("PULUMI_CONFIG_PASSPHRASE")
        if phrase is None and os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
            phrase = Path(os.environ["PULUMI_CONFIG_PASSPHRASE_FILE"]).read_text().strip()
        if phrase is None:
            raise Fail("constructing secrets manager of type \"passphrase\": passphrase must be "
                       "set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE "
                       "environment variables")
        return cls(hashlib.sha256(f"{salt}:{phrase}".encode()).digest())

    def _xor(self, data: bytes) -> bytes:
        stream = (self.key * (len(data) // len(self.key) + 1))[: len(data)]
        return bytes(a ^ b for a, b in zip(data, stream, strict=True))

    def encrypt(self, text: str) -> str:
        return "v1:" + base64.b64encode(self._xor(b"ok:" + text.encode())).decode()

    def decrypt(self, blob: str) -> str:
        data = self._xor(base64.b64decode(blob.removeprefix("v1:")))
        if not data.startswith(b"ok:"):
            raise Fail("failed to decrypt: incorrect passphrase, please set "
                       "PULUMI_CONFIG_PASSPHRASE to the correct passphrase")
        return data[3:].decode()


class Store:
    """The file backend: one JSON state per stack, lock files beside."""

    def __init__(self, url: str) -> None:
        if not url.startswith("file://"):
            raise Fail(f"the stand-in supports only file:// backends, not {url!r}")
        self.url = url
        self.root = Path(url.removeprefix("file://")) / ".pulumi"

    def path(self, stack: str) -> Path:
        return self.root / "stacks" / PROJECT / f"{stack}.json"

    def lock_dir(self, stack: str) -> Path:
        return self.root / "locks" / PROJECT / stack

    def exists(self, stack: str) -> bool:
        return self.path(stack).is_file()

    def stacks(self) -> list[str]:
        folder = self.root / "stacks" / PROJECT
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []

    def load(self, stack: str) -> dict[str, Any]:
        return json.loads(self.path(stack).read_text())

    def save(self, stack: str, state: dict[str, Any]) -> None:
        self.path(stack).parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path(stack).with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.path(stack))

    def remove(self, stack: str) -> None:
        self.path(stack).unlink()

    def lock(self, stack: str) -> Path:
        folder = self.lock_dir(stack)
        folder.mkdir(parents=True, exist_ok=True)
        held = sorted(folder.glob("*.json"))
        if held:
            info = json.loads(held[0].read_text())
            raise Fail(
                f"the stack is currently locked by {len(held)} lock(s). Either wait for the "
                "other process(es) to end or delete the lock file with `pulumi cancel`.\n"
                f"  {self.url}/.pulumi/locks/{PROJECT}/{stack}/{held[0].name}: created by "
                f"{info['username']}@{info['hostname']} (pid {info['pid']}) at "
                f"{info['timestamp']}")
        import getpass
        import socket
        import uuid

        lock = folder / f"{uuid.uuid4()}.json"
        lock.write_text(json.dumps({"pid": os.getpid(), "username": getpass.getuser(),
                                    "hostname": socket.gethostname(),
                                    "timestamp": now()}))
        return lock
