"""The DIY backend (one JSON state per stack, lock files beside) on a folder (`file://`) or a
stand-in bucket (`gs://`, a folder under $STANDIN_GCS that exists once a team stack created
the bucket), and the secrets ciphers: passphrase, or a stand-in Cloud KMS key (`gcpkms://`, a
key file under $STANDIN_KMS that exists once a team stack created the key)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .common import Fail, now, project


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

    @classmethod
    def for_stack(cls, file_text: str) -> Cipher:
        """The stack file's secrets manager: its KMS key, else its passphrase and salt."""
        import re

        def top(key: str) -> str | None:
            found = re.search(rf"^{key}:\s*(\S+)", file_text, re.MULTILINE)
            return found.group(1) if found else None

        provider = top("secretsprovider")
        if provider and provider != "passphrase":
            return cls.kms(provider, top("encryptedkey") or "")
        return cls.from_env(top("encryptionsalt"))

    @classmethod
    def kms(cls, provider: str, encrypted_key: str) -> Cipher:
        """A stand-in `gcpkms://` secrets manager: the data key is usable only while the
        key's file exists (as only a caller allowed to use the real key can decrypt it)."""
        if not provider.startswith("gcpkms://"):
            raise Fail(f"the stand-in supports passphrase and gcpkms:// secrets, not {provider}")
        name = provider.removeprefix("gcpkms://")
        file = kms_file(name)
        if file is None or not file.is_file():
            raise Fail(f"secrets (code=Unknown): rpc error: code = NotFound desc = "
                       f"CryptoKey {name} not found.")
        return cls(hashlib.sha256(file.read_bytes() + encrypted_key.encode()).digest())

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


def kms_file(name: str) -> Path | None:
    """Where the stand-in keeps the key `projects/.../cryptoKeys/K` ($STANDIN_KMS)."""
    folder = os.environ.get("STANDIN_KMS")
    return Path(folder) / name.replace("/", "_") if folder else None


def bucket_folder(name: str) -> Path | None:
    """Where the stand-in keeps the bucket `name` ($STANDIN_GCS)."""
    folder = os.environ.get("STANDIN_GCS")
    return Path(folder) / name if folder else None


class Store:
    """The DIY backend: one JSON state per stack, lock files beside."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("file://"):
            self.root = Path(url.removeprefix("file://")) / ".pulumi"
        elif url.startswith("gs://"):
            bucket, _, prefix = url.removeprefix("gs://").partition("/")
            folder = bucket_folder(bucket)
            if folder is None or not folder.is_dir():
                raise Fail(f"unable to open bucket {url}: storage: bucket doesn't exist")
            self.root = folder / prefix / ".pulumi"
        else:
            raise Fail(f"the stand-in supports file:// and gs:// backends, not {url!r}")

    def path(self, stack: str) -> Path:
        return self.root / "stacks" / project() / f"{stack}.json"

    def lock_dir(self, stack: str) -> Path:
        return self.root / "locks" / project() / stack

    def exists(self, stack: str) -> bool:
        return self.path(stack).is_file()

    def stacks(self) -> list[str]:
        folder = self.root / "stacks" / project()
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
                f"  {self.url}/.pulumi/locks/{project()}/{stack}/{held[0].name}: created by "
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
