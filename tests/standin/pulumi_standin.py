"""A stand-in `pulumi` CLI for tests: enough of the real one for `pulumi.automation` to drive.

It keeps stacks in a file backend (PULUMI_BACKEND_URL=file://...), reads and writes the real
stack config files (stackConfigDir of Pulumi.yaml), encrypts secrets with the passphrase, and
for up/preview it runs the caller's inline program through Pulumi's own protocol: it serves a
ResourceMonitor and an Engine over gRPC, calls the language server's Run, diffs what the
program registers against the state, and writes engine events to the --event-log file.

Test knobs (environment): STANDIN_VERSION, STANDIN_LOG (argv of every call, JSON lines),
STANDIN_FAIL_TYPE (a resource type whose create/update fails), STANDIN_HOLD_LOCK (seconds an
update holds the stack lock before it starts).
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from concurrent import futures
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

PROJECT = "stx-pulumi"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
DATETIME = "%Y-%m-%dT%H:%M:%S.%fZ"
VALUE_FLAGS = {"--stack", "-s", "--color", "--exec-kind", "--client", "--event-log", "--message",
               "-m", "--target", "--page-size", "--page", "--parallel", "--secrets-provider",
               "--config-file", "--exclude", "--replace", "--policy-pack"}
# Inputs whose change replaces the resource instead of updating it.
REPLACE_KEYS = {
    "gcp:cloudrunv2/service:Service": ("name", "location", "project"),
    "gcp:artifactregistry/repository:Repository": ("repositoryId", "location", "project"),
    "gcp:serviceaccount/account:Account": ("accountId", "project"),
    "gcp:cloudrun/domainMapping:DomainMapping": ("name", "location"),
    "cloudflare:index/dnsRecord:DnsRecord": ("zoneId",),
}


class Fail(Exception):
    """An error the real CLI would print before exiting 255."""


def main(argv: list[str]) -> int:
    if os.environ.get("STANDIN_LOG"):
        with open(os.environ["STANDIN_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps(argv) + "\n")
    try:
        return Cli(argv).run()
    except Fail as err:
        sys.stderr.write(f"error: {err}\n")
        return 255


class Cli:
    def __init__(self, argv: list[str]) -> None:
        self.positional: list[str] = []
        self.flags: dict[str, list[str]] = {}
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg == "--":
                self.positional += argv[i + 1:]
                break
            if arg.startswith("--client=") or arg.startswith("--color="):
                key, _, value = arg.partition("=")
                self.flags.setdefault(key, []).append(value)
            elif arg in VALUE_FLAGS:
                self.flags.setdefault(arg, []).append(argv[i + 1])
                i += 1
            elif arg.startswith("-"):
                self.flags.setdefault(arg, []).append("true")
            else:
                self.positional.append(arg)
            i += 1
        self.cwd = Path.cwd()

    def flag(self, *names: str) -> str | None:
        for name in names:
            if name in self.flags:
                return self.flags[name][-1]
        return None

    def run(self) -> int:
        cmd = self.positional[:2]
        if cmd[:1] == ["version"]:
            print("v" + os.environ.get("STANDIN_VERSION", "3.190.0"))
            return 0
        if cmd[:1] == ["stack"]:
            return self.stack_cmd(self.positional[1] if len(self.positional) > 1 else "")
        if cmd[:1] == ["config"]:
            return self.config_cmd(self.positional[1:2][0] if len(self.positional) > 1 else "")
        if cmd[:1] in (["up"], ["preview"], ["refresh"], ["destroy"]):
            return Update(self, cmd[0]).run()
        if cmd[:1] == ["cancel"]:
            store = self.store()
            locks = list(store.lock_dir(self.stack()).glob("*.json"))
            if not locks:
                raise Fail("no update is in progress for this stack")
            for lock in locks:
                lock.unlink()
            print("The currently running update for '" + self.stack() + "' has been canceled!")
            return 0
        if cmd[:1] == ["whoami"]:
            print(getpass.getuser())
            return 0
        raise Fail(f"the stand-in does not know `pulumi {' '.join(self.positional)}`")

    # -- helpers ---------------------------------------------------------------------------

    def stack(self) -> str:
        name = self.flag("--stack", "-s")
        if not name:
            raise Fail("no stack selected; please use `pulumi stack select`")
        return name

    def store(self) -> Store:
        return Store(os.environ.get("PULUMI_BACKEND_URL", ""))

    def config_file(self, stack: str) -> Path:
        project = yaml.safe_load((self.cwd / "Pulumi.yaml").read_text())
        return self.cwd / project.get("stackConfigDir", ".") / f"Pulumi.{stack}.yaml"

    def read_stack_file(self, stack: str) -> dict[str, Any]:
        file = self.config_file(stack)
        return (yaml.safe_load(file.read_text()) or {}) if file.is_file() else {}

    def write_stack_file(self, stack: str, data: dict[str, Any]) -> None:
        file = self.config_file(stack)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(yaml.safe_dump(data, sort_keys=False))

    def cipher(self, stack: str) -> Cipher:
        salt = self.read_stack_file(stack).get("encryptionsalt")
        return Cipher.from_env(salt)

    # -- stack ------------------------------------------------------------------------------

    def stack_cmd(self, sub: str) -> int:
        store = self.store()
        if sub == "select":
            stack = self.stack()
            if not store.exists(stack):
                if "--create" not in self.flags:
                    raise Fail(f"no stack named '{stack}' found")
                self.init_stack(stack)
            return 0
        if sub == "init":
            self.init_stack(self.positional[2] if len(self.positional) > 2 else self.stack())
            return 0
        if sub == "ls":
            out = []
            for stack in store.stacks():
                state = store.load(stack)
                entry = {"name": stack, "current": False,
                         "updateInProgress": bool(list(store.lock_dir(stack).glob("*.json"))),
                         "resourceCount": len(state["resources"]),
                         "url": store.url + "/" + stack}
                if state["history"]:
                    entry["lastUpdate"] = state["history"][-1]["endTime"]
                out.append(entry)
            print(json.dumps(out))
            return 0
        if sub == "rm":
            stack = self.positional[2] if len(self.positional) > 2 else self.stack()
            if not store.exists(stack):
                raise Fail(f"no stack named '{stack}' found")
            if store.load(stack)["resources"] and "--force" not in self.flags:
                raise Fail(f"'{stack}' still has resources; removal rejected")
            store.remove(stack)
            if "--preserve-config" not in self.flags:
                self.config_file(stack).unlink(missing_ok=True)
            print(f"Stack '{stack}' has been removed!")
            return 0
        if sub == "output":
            state = self.existing(store)
            show = "--show-secrets" in self.flags
            outputs = unseal(state["outputs"], self.cipher(self.stack())) if show else {}
            out = {k: (unwrap(outputs[k]) if show else
                       "[secret]" if k in state["secret_outputs"] else unwrap(v))
                   for k, v in state["outputs"].items()}
            print(json.dumps(out))
            return 0
        if sub == "history":
            history = list(reversed(self.existing(store)["history"]))
            size = int(self.flag("--page-size") or 0)
            if size:
                page = int(self.flag("--page") or 1)
                history = history[(page - 1) * size: page * size]
            print(json.dumps(history))
            return 0
        raise Fail(f"the stand-in does not know `pulumi stack {sub}`")

    def existing(self, store: Store) -> dict[str, Any]:
        stack = self.stack()
        if not store.exists(stack):
            raise Fail(f"no stack named '{stack}' found")
        return store.load(stack)

    def init_stack(self, stack: str) -> None:
        store = self.store()
        if store.exists(stack):
            raise Fail(f"stack '{stack}' already exists")
        data = self.read_stack_file(stack)
        provider = self.flag("--secrets-provider") or "passphrase"
        if provider == "passphrase":
            if "encryptionsalt" not in data:
                Cipher.from_env(None)  # fails without a passphrase, like the real CLI
                data = {"encryptionsalt": "v1:" + base64.b64encode(os.urandom(8)).decode()
                        + ":v1:check", **data}
                self.write_stack_file(stack, data)
        else:
            data = {"secretsprovider": provider, **data}
            self.write_stack_file(stack, data)
        store.save(stack, {"resources": [], "outputs": {}, "secret_outputs": [], "history": []})

    # -- config -----------------------------------------------------------------------------

    def config_cmd(self, sub: str) -> int:
        stack = self.stack()
        if not self.store().exists(stack):
            raise Fail(f"no stack named '{stack}' found")
        data = self.read_stack_file(stack)
        config = data.setdefault("config", {}) or {}
        data["config"] = config
        if sub == "set":
            key, value = self.positional[2], self.positional[3]
            stored: Any = value
            if "--secret" in self.flags:
                stored = {"secure": self.cipher(stack).encrypt(value)}
            if "--path" in self.flags and "." in key.partition(":")[2]:
                top, _, entry = key.partition(".")
                current = config.get(top) if isinstance(config.get(top), dict) else {}
                config[top] = {**current, entry: stored}
            else:
                config[key] = stored
            self.write_stack_file(stack, data)
            return 0
        if sub == "rm":
            config.pop(self.positional[2], None)
            self.write_stack_file(stack, data)
            return 0
        if sub == "get":
            key = self.positional[2]
            if key not in config:
                raise Fail(f"configuration key '{key}' not found for stack '{stack}'")
            value, secret = self.plain(stack, config[key])
            print(json.dumps({"value": value, "secret": secret}))
            return 0
        if sub in ("", "--show-secrets"):
            out = {}
            for key, raw in config.items():
                value, secret = self.plain(stack, raw)
                out[key] = {"value": value, "secret": secret}
            print(json.dumps(out))
            return 0
        raise Fail(f"the stand-in does not know `pulumi config {sub}`")

    def plain(self, stack: str, raw: Any) -> tuple[str, bool]:
        if isinstance(raw, dict) and "secure" in raw:
            return self.cipher(stack).decrypt(raw["secure"]), True
        if isinstance(raw, dict | list):
            return json.dumps(raw), False
        return str(raw).lower() if isinstance(raw, bool) else str(raw), False


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
        lock = folder / f"{uuid.uuid4()}.json"
        lock.write_text(json.dumps({"pid": os.getpid(), "username": getpass.getuser(),
                                    "hostname": socket.gethostname(),
                                    "timestamp": now()}))
        return lock


def now() -> str:
    return datetime.now(UTC).strftime(DATETIME)


class EventLog:
    def __init__(self, path: str | None) -> None:
        self.file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        self.sequence = 0
        self.lock = threading.Lock()

    def write(self, **event: Any) -> None:
        if not self.file:
            return
        with self.lock:
            self.sequence += 1
            self.file.write(json.dumps({"sequence": self.sequence,
                                        "timestamp": int(time.time()), **event}) + "\n")
            self.file.flush()

    def close(self) -> None:
        if self.file:
            self.write(cancelEvent={})
            self.file.close()


class Update:
    """up / preview / refresh / destroy of one stack."""

    def __init__(self, cli: Cli, kind: str) -> None:
        self.cli = cli
        self.kind = kind
        self.stack = cli.stack()
        self.store = cli.store()
        self.preview = kind == "preview"
        self.events = EventLog(cli.flag("--event-log"))
        self.targets = set(cli.flags.get("--target", []))
        self.changes: dict[str, int] = {}
        self.failed = False
        self.lock = threading.Lock()

    def run(self) -> int:
        if not self.store.exists(self.stack):
            raise Fail(f"no stack named '{self.stack}' found")
        config, secret_keys = self.config()
        lock = None if self.preview else self.store.lock(self.stack)
        start = now()
        try:
            hold = float(os.environ.get("STANDIN_HOLD_LOCK") or 0)
            if hold and lock:
                time.sleep(hold)
            self.cipher = self.cli.cipher(self.stack)
            self.state = unseal(self.store.load(self.stack), self.cipher)
            self.old = {r["urn"]: r for r in self.state["resources"]}
            self.new: dict[str, dict[str, Any]] = {}
            self.events.write(preludeEvent={"config": {k: "[secret]" if k in secret_keys
                                                       else v for k, v in config.items()}})
            if self.kind in ("up", "preview"):
                error = Program(self, config, secret_keys).run()
                if error and not self.failed:  # a program error, not a resource failure
                    self.diagnostic(None, error.splitlines()[0][:300])
                self.failed = self.failed or bool(error)
                self.finish_update()
            elif self.kind == "refresh":
                for urn, res in self.old.items():
                    self.step("refresh", res, res)
                    self.count("same")
                    self.new[urn] = res
            else:
                self.destroy()
            self.events.write(summaryEvent={"maybeCorrupt": False, "durationSeconds": 1,
                                            "resourceChanges": self.changes, "PolicyPacks": {}})
            if not self.preview:
                self.save(start)
        finally:
            self.events.close()
            if lock:
                lock.unlink(missing_ok=True)
        for kind, count in self.changes.items():
            print(f"    {kind}: {count}")
        if self.failed:
            sys.stderr.write(f"error: {self.kind} failed\n")
            return 255
        return 0

    def config(self) -> tuple[dict[str, str], list[str]]:
        data = self.cli.read_stack_file(self.stack).get("config") or {}
        config, secret_keys = {}, []
        for key, raw in data.items():
            value, secret = self.cli.plain(self.stack, raw)
            config[key] = value
            if secret:
                secret_keys.append(key)
        return config, secret_keys

    def count(self, kind: str) -> None:
        with self.lock:
            self.changes[kind] = self.changes.get(kind, 0) + 1

    def step(self, op: str, old: dict | None, new: dict | None) -> None:
        res = new or old or {}
        meta = {"op": op, "urn": res.get("urn"), "type": res.get("type"),
                "provider": res.get("provider", "")}
        if op in ("update", "replace") and old and new:
            keys = sorted(k for k in {*old["inputs"], *new["inputs"]}
                          if old["inputs"].get(k) != new["inputs"].get(k))
            meta["diffs"] = keys
            meta["detailedDiff"] = {k: {"diffKind": "update", "inputDiff": True} for k in keys}
        self.events.write(resourcePreEvent={"metadata": meta, "planning": self.preview})
        self.events.write(resOutputsEvent={"metadata": meta, "planning": self.preview})

    def diagnostic(self, urn: str | None, message: str, severity: str = "error") -> None:
        event = {"message": message + "\n", "color": "never", "severity": severity}
        if urn:
            event["urn"] = urn
        self.events.write(diagnosticEvent=event)

    def register(self, res: dict[str, Any]) -> dict[str, Any]:
        """Diff one registration against the state; returns the resource's outputs."""
        urn = res["urn"]
        old = self.old.get(urn)
        if self.targets and urn not in self.targets and res["type"] != "pulumi:pulumi:Stack":
            kept = old or {**res, "outputs": res["inputs"]}
            self.new[urn] = kept
            return kept["outputs"]
        if res["type"] == "pulumi:pulumi:Stack" or not res["custom"]:
            op = "same" if old else "create"
            res["outputs"] = res["inputs"]
        elif old is None:
            op = "create"
        elif any(old["inputs"].get(k) != res["inputs"].get(k)
                 for k in REPLACE_KEYS.get(res["type"], ())):
            op = "replace"
        elif old["inputs"] != res["inputs"]:
            op = "update"
        else:
            op = "same"
        if res["custom"] and op != "same":
            failing = os.environ.get("STANDIN_FAIL_TYPE")
            if failing == res["type"] and not self.preview:
                message = (f"googleapi: Error 403: Permission denied on {res['type']} "
                           f"{res['name']} (injected failure)")
                self.diagnostic(urn, f"{op} failed: {message}")
                meta = {"op": op, "urn": urn, "type": res["type"]}
                self.events.write(resourcePreEvent={"metadata": meta})
                self.events.write(resOpFailedEvent={"metadata": meta, "status": 1, "steps": 1})
                self.failed = True
                raise Fail(message)
            res["outputs"] = computed(res, old, self.preview and op != "same")
        elif res["custom"]:
            res["outputs"] = old["outputs"]
        if res["type"] != "pulumi:pulumi:Stack":
            self.step(op, old, res)
            self.count(op)
        self.new[urn] = res
        return res["outputs"]

    def finish_update(self) -> None:
        if self.failed:  # what was not reached stays as it was
            for urn, res in self.old.items():
                self.new.setdefault(urn, res)
            return
        for urn, res in reversed(list(self.old.items())):
            if urn in self.new:
                continue
            if self.targets and urn not in self.targets:
                self.new[urn] = res
                continue
            self.step("delete", res, None)
            self.count("delete")

    def destroy(self) -> None:
        for urn, res in reversed(list(self.old.items())):
            inputs = res.get("inputs", {})
            if res["type"] == "gcp:cloudrunv2/service:Service" and inputs.get(
                    "deletionProtection"):
                self.diagnostic(urn, "deleting urn:" + urn + ": cannot destroy service without "
                                "setting deletion_protection=false and running `terraform apply`")
                self.events.write(resOpFailedEvent={"metadata": {"op": "delete", "urn": urn,
                                                                 "type": res["type"]},
                                                    "status": 1, "steps": 1})
                self.failed = True
                self.new = {u: r for u, r in self.old.items()
                            if list(self.old).index(u) <= list(self.old).index(urn)}
                return
            self.step("delete", res, None)
            self.count("delete")

    def save(self, start: str) -> None:
        order = [u for u in self.old if u in self.new] + [u for u in self.new
                                                          if u not in self.old]
        resources = [self.new[u] for u in order if self.new[u]["type"] != "pulumi:pulumi:Stack"]
        if self.kind == "destroy" and not self.failed:
            resources = []
            self.state["outputs"], self.state["secret_outputs"] = {}, []
        if self.kind == "up" and not self.failed:
            stack_res = [r for r in self.new.values() if r["type"] == "pulumi:pulumi:Stack"]
            outputs = stack_res[0].get("stack_outputs", {}) if stack_res else {}
            self.state["secret_outputs"] = [k for k, v in outputs.items() if is_secret(v)]
            self.state["outputs"] = outputs
        self.state["resources"] = resources
        kind = {"up": "update"}.get(self.kind, self.kind)
        self.state["history"].append({
            "version": len(self.state["history"]) + 1, "kind": kind, "startTime": start,
            "endTime": now(), "message": self.cli.flag("--message", "-m") or "",
            "environment": {"exec.kind": "auto.inline"}, "config": {},
            "result": "failed" if self.failed else "succeeded",
            "resourceChanges": self.changes})
        self.store.save(self.stack, seal(self.state, self.cipher))


def seal(value: Any, cipher: Cipher) -> Any:
    """Secret values encrypted, as a real backend stores them."""
    if is_secret(value):
        return {SIG_KEY: SECRET_SIG, "ciphertext": cipher.encrypt(json.dumps(value["value"]))}
    if isinstance(value, dict):
        return {k: seal(v, cipher) for k, v in value.items()}
    if isinstance(value, list):
        return [seal(v, cipher) for v in value]
    return value


def unseal(value: Any, cipher: Cipher) -> Any:
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


def computed(res: dict[str, Any], old: dict | None, unknown: bool) -> dict[str, Any]:
    """Inputs plus the outputs a cloud would compute (unknown during a preview)."""
    inputs = res["inputs"]
    out = dict(inputs)

    def put(key: str, value: Any) -> None:
        out[key] = UNKNOWN if unknown else value

    typ = res["type"]
    if typ == "gcp:cloudrunv2/service:Service":
        put("uri", os.environ.get("STANDIN_SERVICE_URL")
            or "http://127.0.0.1:9")  # never a real address: tests point it at a local app
        revision = f"{inputs.get('name')}-{uuid.uuid4().hex[:5]}"
        put("latestCreatedRevision", revision)
        put("latestReadyRevision", revision)
        traffic = [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100,
                    "revision": ""}]
        if os.environ.get("STANDIN_TRAFFIC_SPLIT"):  # half the traffic on an older revision
            traffic = [{**traffic[0], "percent": 50},
                       {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "percent": 50,
                        "revision": f"{inputs.get('name')}-00001-old"}]
        if os.environ.get("STANDIN_REVISION_NOT_READY"):
            put("latestReadyRevision", f"{inputs.get('name')}-00001-old")
        put("trafficStatuses", traffic)
    elif typ == "docker:index/image:Image":
        name = unwrap(inputs.get("imageName", ""))
        digest = hashlib.sha256(name.encode()).hexdigest()
        put("repoDigest", name.rsplit(":", 1)[0] + "@sha256:" + digest)
    elif typ == "gcp:serviceaccount/account:Account":
        put("email", f"{inputs.get('accountId')}@{inputs.get('project')}.iam.gserviceaccount.com")
    elif typ == "gcp:cloudrun/domainMapping:DomainMapping":
        name = inputs.get("name", "")
        record = {"name": name.split(".")[0], "type": "CNAME", "rrdata": "ghs.googlehosted.com."}
        put("statuses", [{"resourceRecords": [record]}])
    return out


class Program:
    """Runs the inline program through the language server at --client."""

    def __init__(self, update: Update, config: dict[str, str], secret_keys: list[str]) -> None:
        self.update = update
        self.config = config
        self.secret_keys = secret_keys

    def run(self) -> str | None:
        import grpc
        from google.protobuf import empty_pb2, json_format, struct_pb2
        from pulumi.runtime.proto import (
            engine_pb2,
            engine_pb2_grpc,
            language_pb2,
            language_pb2_grpc,
            provider_pb2,
            resource_pb2,
            resource_pb2_grpc,
        )

        update = self.update
        stack = update.stack
        root: dict[str, str] = {}

        def to_dict(message: Any) -> dict[str, Any]:
            return json_format.MessageToDict(message) if message is not None else {}

        def to_struct(data: dict[str, Any]) -> Any:
            result = struct_pb2.Struct()
            result.update(data)
            return result

        def make_urn(parent: str, typ: str, name: str) -> str:
            prefix = ""
            if parent:
                parent_type = parent.split("::")[2]
                if not parent_type.startswith("pulumi:pulumi:Stack"):
                    prefix = parent_type + "$"
            return f"urn:pulumi:{stack}::{PROJECT}::{prefix}{typ}::{name}"

        class Monitor(resource_pb2_grpc.ResourceMonitorServicer):
            def GetDeploymentInfo(self, request: Any, context: Any) -> Any:
                return resource_pb2.DeploymentInfo(
                    supportedFeatures=[resource_pb2.RESOURCE_MONITOR_FEATURE_SECRETS])

            def SupportsFeature(self, request: Any, context: Any) -> Any:
                return resource_pb2.SupportsFeatureResponse(hasSupport=request.id == "secrets")

            def RegisterResource(self, request: Any, context: Any) -> Any:
                urn = make_urn(request.parent, request.type, request.name)
                res = {"urn": urn, "type": request.type, "name": request.name,
                       "parent": request.parent, "custom": request.custom,
                       "provider": request.provider, "inputs": to_dict(request.object)}
                try:
                    outputs = update.register(res)
                except Fail as err:
                    context.abort(grpc.StatusCode.UNKNOWN, str(err))
                res_id = f"{request.name}-id" if request.custom else ""
                return resource_pb2.RegisterResourceResponse(
                    urn=urn, id=res_id, object=to_struct(outputs))

            def RegisterResourceOutputs(self, request: Any, context: Any) -> Any:
                if "pulumi:pulumi:Stack" in request.urn:
                    res = update.new.get(request.urn)
                    if res is not None:
                        res["stack_outputs"] = to_dict(request.outputs)
                return empty_pb2.Empty()

            def Invoke(self, request: Any, context: Any) -> Any:
                result = {}
                if request.tok == "gcp:organizations/getClientConfig:getClientConfig":
                    result = {"accessToken": "ya29.standin-access-token",
                              "project": self_config.get("gcp:project", ""),
                              "region": self_config.get("gcp:region", ""), "id": "cc"}
                return provider_pb2.InvokeResponse(**{"return": to_struct(result)})

            def ReadResource(self, request: Any, context: Any) -> Any:
                context.abort(grpc.StatusCode.UNIMPLEMENTED, "read is not supported")

            def RegisterPackage(self, request: Any, context: Any) -> Any:
                return resource_pb2.RegisterPackageResponse(ref=f"pkg-{request.name}")

            def SignalAndWaitForShutdown(self, request: Any, context: Any) -> Any:
                return empty_pb2.Empty()

        class Engine(engine_pb2_grpc.EngineServicer):
            def Log(self, request: Any, context: Any) -> Any:
                severity = {engine_pb2.DEBUG: "debug", engine_pb2.INFO: "info",
                            engine_pb2.WARNING: "warning",
                            engine_pb2.ERROR: "error"}[request.severity]
                if severity != "debug":
                    update.diagnostic(request.urn or None, request.message, severity)
                    if severity == "error":
                        update.failed = True
                return empty_pb2.Empty()

            def GetRootResource(self, request: Any, context: Any) -> Any:
                return engine_pb2.GetRootResourceResponse(urn=root.get("urn", ""))

            def SetRootResource(self, request: Any, context: Any) -> Any:
                root["urn"] = request.urn
                return engine_pb2.SetRootResourceResponse()

        self_config = self.config
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        resource_pb2_grpc.add_ResourceMonitorServicer_to_server(Monitor(), server)
        engine_pb2_grpc.add_EngineServicer_to_server(Engine(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            client = update.cli.flag("--client")
            if not client:
                raise Fail("the stand-in runs only inline programs (--client)")
            with grpc.insecure_channel(client) as channel:
                response = language_pb2_grpc.LanguageRuntimeStub(channel).Run(
                    language_pb2.RunRequest(
                        project=PROJECT, stack=stack, pwd=str(update.cli.cwd), program=".",
                        args=[f"127.0.0.1:{port}"], config=self.config,
                        configSecretKeys=self.secret_keys, dryRun=update.preview,
                        parallel=int(update.cli.flag("--parallel") or 4),
                        monitor_address=f"127.0.0.1:{port}", organization="organization"))
            return response.error or None
        finally:
            server.stop(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
