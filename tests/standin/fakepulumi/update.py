"""up / preview / refresh / destroy of one stack: diffs what the program registers against the
state, writes engine events, applies changes to the stand-in cloud, saves state and history."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from .cloud import REPLACE_KEYS, Cloud, computed, conditional_binding_fails
from .common import Fail, is_secret, now, seal, unseal
from .events import Events
from .program import Program

if TYPE_CHECKING:
    from .cli import Cli


class Update:
    """up / preview / refresh / destroy of one stack."""

    def __init__(self, cli: Cli, kind: str) -> None:
        self.cli = cli
        self.kind = kind
        self.stack = cli.stack()
        self.store = cli.store()
        self.preview = kind == "preview"
        self.events = Events(cli.flag("--event-log"))
        self.cloud = Cloud(self.store.root)
        self.targets = set(cli.flags.get("--target", []))
        self.skipped_creates: set[str] = set()
        self.changes: dict[str, int] = {}
        self.failed = False
        self.aliased: set[str] = set()
        self.lock = threading.Lock()
        self.canceled = False

    # The CLI's cancellation scope around an engine operation (pulumi/pulumi, pkg/cmd/pulumi
    # cancellationScopeSource.NewScope): the first SIGINT prints "^C received; cancelling..."
    # as a stdout event and cancels — no new step starts, the steps done are saved, the lock
    # released, the update ends in error; a second SIGINT terminates at once.
    def cancel(self, signum: int, frame: Any) -> None:
        print("^C received; cancelling. If you would like to terminate immediately, press ^C "
              "again.\nNote that terminating immediately may lead to orphaned resources and "
              "other inconsistencies.", flush=True)
        self.canceled = True
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    def run(self) -> int:
        if not self.store.exists(self.stack):
            raise Fail(f"no stack named '{self.stack}' found")
        config, secret_keys = self.config()
        try:
            lock = None if self.preview else self.store.lock(self.stack)
        except Fail:
            self.events.close()  # the real CLI ends its event stream before it exits
            raise
        start = now()
        signal.signal(signal.SIGINT, self.cancel)
        try:
            hold = float(os.environ.get("STANDIN_HOLD_LOCK") or 0)
            if hold and lock:
                time.sleep(hold)
            if os.environ.get("STANDIN_KILL_SELF") and lock:  # as if SIGKILLed mid-update
                os.kill(os.getpid(), 9)
            self.cipher = self.cli.cipher(self.stack)
            self.state = unseal(self.store.load(self.stack), self.cipher)
            self.old = {r["urn"]: r for r in self.state["resources"]}
            if self.kind == "refresh" or "--refresh" in self.cli.flags:  # read the cloud first
                self.old = {urn: self.cloud.refreshed(r) for urn, r in self.old.items()}
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
                    drifted = res is not self.state_of(urn)
                    self.step("refresh", res, res)
                    self.count("update" if drifted else "same")
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
        if self.canceled:
            sys.stderr.write(f"error: {self.kind} canceled\n")
            return 255
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

    def state_of(self, urn: str) -> dict[str, Any] | None:
        return next((r for r in self.state["resources"] if r["urn"] == urn), None)

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
        for alias in res.pop("aliases", []):  # the same resource under an earlier name
            if old is None and alias in self.old:
                old = {**self.old[alias], "urn": urn}
                self.aliased.add(alias)
        if self.targets and not self.targeted(res):
            if old is None:  # a skipped create: nothing made, nothing recorded
                self.skipped_creates.add(urn)
            kept = old or {**res, "outputs": res["inputs"]}
            if old is not None:
                self.new[urn] = kept
            return kept["outputs"]
        if self.targets:
            self.check_skipped(res)
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
            if failing == res["type"] and not self.preview and os.environ.get(
                    "STANDIN_FAIL_STACK", self.stack) == self.stack:
                message = (f"googleapi: Error 403: Permission denied on {res['type']} "
                           f"{res['name']} (injected failure)")
                self.diagnostic(urn, f"{op} failed: {message}")
                meta = {"op": op, "urn": urn, "type": res["type"]}
                self.events.write(resourcePreEvent={"metadata": meta})
                self.events.write(resOpFailedEvent={"metadata": meta, "status": 1, "steps": 1})
                self.failed = True
                raise Fail(message)
            failure = None if self.preview or op not in ("create", "replace") else (
                conditional_binding_fails(res))
            if failure:
                self.diagnostic(urn, failure)
                meta = {"op": op, "urn": urn, "type": res["type"]}
                self.events.write(resourcePreEvent={"metadata": meta})
                self.events.write(resOpFailedEvent={"metadata": meta, "status": 1, "steps": 1})
                self.failed = True
                raise Fail(failure)
            res["outputs"] = computed(res, old, self.preview and op != "same")
            if not self.preview:
                self.operate(op, res)
                self.cloud.apply(op, old, res)
        elif res["custom"]:
            res["outputs"] = old["outputs"]
        if res["type"] != "pulumi:pulumi:Stack":
            self.step(op, old, res)
            self.count(op)
        self.new[urn] = res
        return res["outputs"]

    # Targeting as the real engine does it (pkg/resource/deploy/step_generator.go): only
    # providers and the root stack are implicitly targeted; a new untargeted resource is a
    # "skipped create", and a targeted step whose parent, dependency or provider is a skipped
    # create fails with error 2013 (sdk/go/common/diag/errors.go,
    # GetResourceWillBeCreatedButWasNotSpecifiedInTargetList); `GetAllDependencies` counts
    # the parent as a dependency.
    def targeted(self, res: dict[str, Any]) -> bool:
        return (res["urn"] in self.targets or res["type"] == "pulumi:pulumi:Stack"
                or res["type"].startswith("pulumi:providers:"))

    def check_skipped(self, res: dict[str, Any]) -> None:
        provider = str(res.get("provider") or "").rsplit("::", 1)[0] if res.get(
            "provider") else ""
        for dep in [res.get("parent") or "", *res.get("dependencies", []), provider]:
            if dep and dep in self.skipped_creates:
                message = (f"Resource '{res['urn']}' depends on '{dep}' which was was not "
                           "specified in --target list.")
                self.diagnostic(res["urn"], message)
                sys.stderr.write(f"error: {message}\n")  # as the CLI prints diagnostics
                self.failed = True
                if not self.preview:
                    raise Fail("untargeted create")

    def operate(self, op: str, res: dict[str, Any]) -> None:
        """A resource operation's time in a real cloud (STANDIN_LATENCY seconds, so that fleets
        are I/O-bound as real deploys are), logged to STANDIN_OPS_LOG with its interval."""
        if self.canceled:  # a canceled update starts no new step
            self.failed = True
            raise Fail("update canceled")
        start = time.time()
        time.sleep(float(os.environ.get("STANDIN_LATENCY") or 0))
        if os.environ.get("STANDIN_OPS_LOG"):
            line = json.dumps({"stack": self.stack, "type": res["type"], "name": res["name"],
                               "op": op, "start": start, "end": time.time()})
            with open(os.environ["STANDIN_OPS_LOG"], "a", encoding="utf-8") as log:
                log.write(line + "\n")

    def finish_update(self) -> None:
        if self.failed:  # what was not reached stays as it was
            for urn, res in self.old.items():
                self.new.setdefault(urn, res)
            return
        for urn, res in reversed(list(self.old.items())):
            if urn in self.new or urn in self.aliased:
                continue
            if self.targets and urn not in self.targets:
                self.new[urn] = res
                continue
            self.step("delete", res, None)
            self.count("delete")
            if not self.preview:
                self.operate("delete", res)
                self.cloud.apply("delete", res, None)

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
            self.operate("delete", res)
            self.cloud.apply("delete", res, None)

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
