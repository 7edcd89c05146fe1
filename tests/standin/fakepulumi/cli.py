"""The command line: argv → the stack, config, state and update commands automation runs."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

from .common import Fail, now, project, seal, unseal, unwrap
from .store import Cipher, Store

VALUE_FLAGS = {"--stack", "-s", "--color", "--exec-kind", "--client", "--event-log", "--message",
               "-m", "--target", "--page-size", "--page", "--parallel", "--secrets-provider",
               "--config-file", "--exclude", "--replace", "--policy-pack", "--file"}


def main(argv: list[str]) -> int:
    # Outside an engine operation the real CLI (Go) handles no SIGINT: it just ends, without
    # a word (an update installs its own cancellation: update.Update.cancel).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
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
            from importlib.metadata import version  # 40 ms: only for `pulumi version`

            print("v" + (os.environ.get("STANDIN_VERSION") or version("pulumi")))
            return 0
        if cmd[:1] == ["stack"]:
            return self.stack_cmd(self.positional[1] if len(self.positional) > 1 else "")
        if cmd[:1] == ["config"]:
            return self.config_cmd(self.positional[1:2][0] if len(self.positional) > 1 else "")
        if cmd[:1] in (["up"], ["preview"], ["refresh"], ["destroy"]):
            from .update import Update  # the engine: only for updates

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
        if cmd == ["state", "delete"]:
            return self.state_delete(self.positional[2])
        if cmd[:1] == ["whoami"]:
            import getpass

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
        # read as the top-level key it is (no YAML parser: every call starts faster)
        found = re.search(r"^stackConfigDir:\s*(\S+)", (self.cwd / "Pulumi.yaml").read_text(),
                          re.MULTILINE)
        return self.cwd / (found.group(1) if found else ".") / f"Pulumi.{stack}.yaml"

    def read_stack_file(self, stack: str) -> dict[str, Any]:
        import yaml

        file = self.config_file(stack)
        return (yaml.safe_load(file.read_text()) or {}) if file.is_file() else {}

    def write_stack_file(self, stack: str, data: dict[str, Any]) -> None:
        import yaml

        file = self.config_file(stack)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(yaml.safe_dump(data, sort_keys=False))

    def cipher(self, stack: str) -> Cipher:
        file = self.config_file(stack)
        return Cipher.for_stack(file.read_text() if file.is_file() else "")

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
        if sub == "tag":
            return self.tag_cmd(store)
        if sub == "export" and "--show-secrets" not in self.flags:
            return self.export_sealed(store)
        if sub == "import":
            return self.import_state(store)
        if sub == "change-secrets-provider":
            return self.change_secrets_provider(store, self.positional[2])
        if sub == "export":
            state = self.existing(store)
            resources = [{"urn": r["urn"], "type": r["type"], "custom": r["custom"],
                          "parent": r.get("parent", ""), "inputs": unwrap(r["inputs"]),
                          "outputs": unwrap(r.get("outputs", {}))}
                         for r in unseal(state["resources"], self.cipher(self.stack()))]
            if state["resources"] or state["outputs"]:  # like the real CLI: the root stack
                stack = self.stack()                    # resource holds the stack's outputs
                resources.insert(0, {
                    "urn": f"urn:pulumi:{stack}::{project()}::pulumi:pulumi:Stack::"
                           f"{project()}-{stack}", "type": "pulumi:pulumi:Stack",
                    "custom": False, "parent": "", "inputs": {},
                    "outputs": {k: "[secret]" if k in state["secret_outputs"] else unwrap(v)
                                for k, v in state["outputs"].items()}})
            print(json.dumps({"version": 3, "deployment": {"resources": resources}}))
            return 0
        raise Fail(f"the stand-in does not know `pulumi stack {sub}`")

    def export_sealed(self, store: Store) -> int:
        """`stack export` without --show-secrets: secrets stay ciphertexts, and the deployment
        names the secrets manager that made them (the stand-in's own state rides along)."""
        stack = self.stack()
        state = self.existing(store)
        data = self.read_stack_file(stack)
        provider = data.get("secretsprovider") or "passphrase"
        manager = ({"type": "passphrase", "state": {"salt": data.get("encryptionsalt")}}
                   if provider == "passphrase" else
                   {"type": "cloud", "state": {"url": provider,
                                               "encryptedkey": data.get("encryptedkey")}})
        resources = [{"urn": r["urn"], "type": r["type"], "custom": r["custom"],
                      "inputs": r["inputs"], "outputs": r.get("outputs", {})}
                     for r in state["resources"]]
        print(json.dumps({"version": 3, "deployment": {
            "manifest": {"time": now()}, "secrets_providers": manager,
            "resources": resources, "standin": state}}))
        return 0

    def import_state(self, store: Store) -> int:
        """`stack import --file F`: the deployment's secrets re-encrypted for this stack."""
        stack = self.stack()
        self.existing(store)
        deployment = json.loads(Path(self.flag("--file") or "/dev/stdin").read_text())[
            "deployment"]
        if "standin" not in deployment:
            raise Fail("the stand-in imports only deployments it exported")
        if os.environ.get("STANDIN_FAIL_IMPORT") == stack:
            raise Fail(f"could not import into {stack}: injected failure")
        manager = deployment["secrets_providers"]
        source = (Cipher.from_env(manager["state"]["salt"]) if manager["type"] == "passphrase"
                  else Cipher.kms(manager["state"]["url"], manager["state"]["encryptedkey"]))
        lock = store.lock(stack)
        try:
            store.save(stack, seal(unseal(deployment["standin"], source), self.cipher(stack)))
        finally:
            lock.unlink(missing_ok=True)
        print("Import complete.")
        return 0

    def change_secrets_provider(self, store: Store, provider: str) -> int:
        """Config and state secrets decrypted with the old manager, encrypted with the new."""
        stack = self.stack()
        old = self.cipher(stack)
        state = unseal(self.existing(store), old)
        data = self.read_stack_file(stack)
        config = {k: self.plain(stack, v) for k, v in (data.get("config") or {}).items()}
        data = {k: v for k, v in data.items()
                if k not in ("encryptionsalt", "secretsprovider", "encryptedkey", "config")}
        encrypted_key = base64.b64encode(os.urandom(16)).decode()
        new = Cipher.kms(provider, encrypted_key)
        stored = {k: {"secure": new.encrypt(v)} if secret else self.raw(stack, k)
                  for k, (v, secret) in config.items()}
        data = {"secretsprovider": provider, "encryptedkey": encrypted_key, **data,
                **({"config": stored} if stored else {})}
        store.save(stack, seal(state, new))
        self.write_stack_file(stack, data)
        print("Migrated to new secrets provider")
        return 0

    def raw(self, stack: str, key: str) -> Any:
        return (self.read_stack_file(stack).get("config") or {})[key]

    def state_delete(self, urn: str) -> int:
        """Forget a resource without touching the cloud (`pulumi state delete URN`)."""
        store = self.store()
        stack = self.stack()
        lock = store.lock(stack)
        try:
            state = self.existing(store)
            kept = [r for r in state["resources"] if r["urn"] != urn]
            if len(kept) == len(state["resources"]):
                raise Fail(f"No such resource {urn!r} exists in the current state")
            state["resources"] = kept
            store.save(stack, state)
        finally:
            lock.unlink(missing_ok=True)
        print("Resource deleted")
        return 0

    def tag_cmd(self, store: Store) -> int:
        """`stack tag set|get|rm|ls`: tags kept beside the state, as DIY backends do since
        Pulumi 3.211."""
        from importlib.metadata import version

        from semver import VersionInfo

        running = os.environ.get("STANDIN_VERSION") or version("pulumi")
        if VersionInfo.parse(running) < VersionInfo.parse("3.211.0"):  # pulumi/pulumi#21203
            raise Fail("stack tags not supported in --local mode")
        stack = self.stack()
        self.existing(store)
        file = store.path(stack).with_suffix(".pulumi-tags")  # beside, as real DIY backends
        tags = json.loads(file.read_text()) if file.is_file() else {}
        action, args = self.positional[2], self.positional[3:]
        if action == "set":
            tags[args[0]] = args[1]
        elif action == "rm":
            tags.pop(args[0], None)
        elif action == "get":
            if args[0] not in tags:
                raise Fail(f"stack tag '{args[0]}' not found for stack '{stack}'")
            print(tags[args[0]])
            return 0
        elif action == "ls":
            print(json.dumps({"pulumi:project": project(), **tags}))
            return 0
        file.write_text(json.dumps(tags, indent=1))
        return 0

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
        elif data.get("secretsprovider") != provider:
            encrypted_key = base64.b64encode(os.urandom(16)).decode()
            Cipher.kms(provider, encrypted_key)  # fails without the key, like the real CLI
            data = {"secretsprovider": provider, "encryptedkey": encrypted_key,
                    **{k: v for k, v in data.items() if k != "encryptionsalt"}}
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
            key = self.positional[2]
            if os.environ.get("STANDIN_HANG_CONFIG_SET") == key:  # a CLI that never answers
                time.sleep(3600)
            if len(self.positional) > 3:
                value = self.positional[3]
            elif not sys.stdin.isatty():  # the real CLI reads a piped value from stdin
                value = sys.stdin.read().removesuffix("\n")
            else:
                raise Fail("config value must be specified in non-interactive mode")
            stored: Any = value
            if "--secret" in self.flags:
                stored = {"secure": self.cipher(stack).encrypt(value)}
            if "--path" in self.flags and "." in key.partition(":")[2]:
                *parents, leaf = key.split(".")
                node = config
                for name in parents:  # like the real CLI: maps made on the way
                    if not isinstance(node.get(name), dict):
                        if name in node:
                            raise Fail(f"an object was expected at {name!r}")
                        node[name] = {}
                    node = node[name]
                node[leaf] = stored
            else:
                config[key] = stored
            self.write_stack_file(stack, data)
            return 0
        if sub == "rm":
            key = self.positional[2]
            if "--path" in self.flags and "." in key.partition(":")[2]:
                *parents, leaf = key.split(".")
                node = config
                for name in parents:
                    node = node.get(name) if isinstance(node.get(name), dict) else {}
                node.pop(leaf, None)
            else:
                config.pop(key, None)
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
