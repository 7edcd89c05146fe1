"""Stack operations on a workspace's backend: preview, up, refresh, destroy and the readers of
what a stack deployed, with the program as an inline closure; the team stack. Progress goes to
an `on_event` callback; nothing here prints. (The engine is the only code that touches
`pulumi.automation`.)"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from stx_pulumi.engine.backend import Backend
from stx_pulumi.engine.state import (
    BUILD_BASE_TYPES,
    COMPONENT,
    IMAGE_TYPE,
    SECRET_MEMBER_TYPE,
    SERVICE_TYPE,
    Deployed,
    OperationResult,
    StackInfo,
    changes,
    deployed_of,
    no_secrets,
    parse_time,
    plain_outputs,
    when,
    whole,
)
from stx_pulumi.errors import EngineError, InputError, StxError
from stx_pulumi.model import releases
from stx_pulumi.model.names import secret_member_name, split_stack_name
from stx_pulumi.model.outputs import url_text
from stx_pulumi.model.spec import AppSpec, Build, Migration
from stx_pulumi.model.team import TEAM_STACK, TeamSpec
from stx_pulumi.workspace import PROJECT_NAME


class Engine(Backend):
    """Pulumi operations on the stacks of one workspace."""

    def up(self, spec: AppSpec, build: Build, updates: list[tuple[str, str]],
           unset: list[str], message: str | None = None, cloudflare_token: str | None = None,
           kind: str = "up", build_turn: Any = None,
           noted: Mapping[str, str] | None = None) -> OperationResult:
        """Deploy the spec; only when that succeeded, write the settings it was given.

        The program receives the spec itself, so the stack file stays as it was until the
        update succeeded: a refused, failed or interrupted `up` leaves it byte for byte.
        `build_turn`: a fleet's build slot, held by the program while its image builds."""
        carried: dict[str, Migration] = {}
        resources = self._selected(spec.stack)[1]
        stack = self._ready(spec, _program(spec, build, cloudflare_token, carried, build_turn))
        migration = self._migration(resources, spec)
        served = spec.pin.served_tag(migration.releases, spec.image_tag) if spec.pin else (
            spec.image_tag)
        carried["migration"] = replace(migration, record={**releases.record(
            list(migration.releases), served, message, kind, self.environ, spec.now,
            spec.settings_digest), **(noted or {})})
        self._state.pop(spec.stack, None)  # the update changes it
        # Scheduled jobs change the services' scaling behind Pulumi's back: with event windows,
        # read the cloud first, so a job that failed is corrected rather than hidden.
        refresh = bool(spec.windows or spec.expired) or None
        try:
            result = self._run(spec.stack, "up", lambda: stack.up(
                on_event=self._event, message=message, color="never", refresh=refresh))
        finally:
            if build_turn is not None:  # a failed update never got to push its image
                build_turn.give_back()
        with self._errors(spec.stack):
            for key in unset:
                stack.remove_config(key, path="." in key.partition(":")[2])
            for key, value in updates:
                stack.set_config(key, auto.ConfigValue(value, secret=False),
                                 path="." in key.partition(":")[2])
            stored = self._stored_token(stack) if cloudflare_token else None
            if cloudflare_token and stored != cloudflare_token:
                self._set_secret(spec.stack, "cloudflare:apiToken", cloudflare_token)
                if stored is not None:
                    result.notices.append("cloudflare:apiToken: replaced the stored token "
                                          "with CLOUDFLARE_API_TOKEN")
        return result

    def unchanged(self, spec: AppSpec) -> OperationResult | None:
        """For `up --changed`: the result of an update skipped because the stack serves this
        image tag with these settings already (its last release says so), else None."""
        deployed = self.deployed(spec.stack)
        release = deployed.last_release or {}
        if (spec.windows or spec.expired or spec.pin is not None or not release.get("settings")
                or deployed.image_tag != spec.image_tag
                or release.get("settings") != spec.settings_digest):
            return None
        outputs = next(((r.get("outputs") or {}) for r in self._selected(spec.stack)[1]
                        if r.get("type") == "pulumi:pulumi:Stack"), {})
        return OperationResult(spec.stack, "up", "unchanged", changes({}),
                               whole(no_secrets(outputs)), backend=self.backend)

    def prepare_build(self, spec: AppSpec) -> OperationResult:
        """The cloud builder's registry, bucket and build account made alone (a targeted
        update, the services untouched), so the first cloud build has where to push."""
        kept = next(((r.get("outputs") or {}) for r in self._selected(spec.stack)[1]
                     if r.get("type") == "pulumi:pulumi:Stack"), {})
        kept = {k: v for k, v in kept.items() if no_secrets(v) == v}  # never a ciphertext

        def program() -> None:
            from stx_pulumi import program as p

            p.deploy_build_base(spec, kept)

        stack = self._ready(spec, program)
        # Their parent too: the engine targets only providers and the stack implicitly, and a
        # targeted resource whose parent is an untargeted new one fails (error 2013,
        # pulumi/pulumi pkg/resource/deploy/step_generator.go, validateSteps).
        urns = [_urn(spec), *(_urn(spec, t, n) for t, n in zip(
            BUILD_BASE_TYPES, spec.build_base_names, strict=True))]
        self._state.pop(spec.stack, None)
        return self._run(spec.stack, "up", lambda: stack.up(
            on_event=self._event, target=urns, message="stx-pulumi: registry and build "
            "account for the first cloud build", color="never"))

    def push_image(self, spec: AppSpec, build: Build) -> str:
        """The image built and pushed alone — a targeted update of the component, its
        registry and its image, the services untouched — so it can be scanned before it
        serves (the vulnerability gate of protected envs); its digest."""
        carried: dict[str, Migration] = {}
        resources = self._selected(spec.stack)[1]
        stack = self._ready(spec, _program(spec, build, None, carried))
        carried["migration"] = self._migration(resources, spec)
        urns = [_urn(spec),  # the parent too (error 2013, as above)
                _urn(spec, BUILD_BASE_TYPES[0], f"{spec.service_name}-repo"),
                _urn(spec, "docker:index/image:Image", f"{spec.service_name}-image")]
        self._state.pop(spec.stack, None)
        self._run(spec.stack, "up", lambda: stack.up(
            on_event=self._event, target=urns, message="stx-pulumi: the image, pushed to be "
            "scanned before it serves", color="never"))
        self._state.pop(spec.stack, None)
        image = next((r for r in self._selected(spec.stack)[1]
                      if r.get("type") == "docker:index/image:Image"), {})
        return str((image.get("outputs") or {}).get("repoDigest") or "")

    def _ready(self, spec: AppSpec, program: Callable[[], None]) -> auto.Stack:
        """The stack (made if new) set to run `program`. The settings reach the stack file
        only after success: the default gcp provider gets the project and region from its
        environment meanwhile (a first up has no config; GOOGLE_PROJECT comes first of its
        project variables: Pulumi registry, GCP setup)."""
        stack = self._selected(spec.stack)[0] or self._stack(spec.stack, program, create=True)
        stack.workspace.program = program
        stack.workspace.env_vars = {**stack.workspace.env_vars, "GOOGLE_PROJECT": spec.project,
                                    "GOOGLE_REGION": spec.region}
        return stack

    def write_config(self, stack_name: str, updates: list[tuple[str, str]],
                     removed: list[str]) -> None:
        """Settings written without an update (`event add` without --up): `key.entry` paths."""
        stack = self._stack(stack_name)
        with self._errors(stack_name):
            for key in removed:
                stack.remove_config(key, path="." in key.partition(":")[2])
            for key, value in updates:
                stack.set_config(key, auto.ConfigValue(value, secret=False),
                                 path="." in key.partition(":")[2])

    def preview(self, spec: AppSpec, build: Build | None = None, diff: bool = False
                ) -> OperationResult:
        """What up would change with the given spec; nothing is written. A stack that does not
        exist yet is made for the preview and removed after it, its file left as it was."""
        return self._preview(spec.stack, _program(spec, build or Build.of(spec)), diff)

    def _preview(self, name: str, program: Callable[[], None], diff: bool = False
                 ) -> OperationResult:
        file = self.files.stack_file(name)
        before = file.read_bytes() if file.is_file() else None
        new = not self.exists(name)
        stack = self._stack(name, program, create=True)
        try:
            return self._run(name, "preview", lambda: stack.preview(
                on_event=self._event, diff=diff, color="never"))
        finally:
            if new:
                with self._errors(name):
                    stack.workspace.remove_stack(name)
                if before is None:
                    file.unlink(missing_ok=True)
                else:
                    file.write_bytes(before)

    def refresh(self, stack_name: str) -> OperationResult:
        stack = self._stack(stack_name)
        return self._run(stack_name, "refresh", lambda: stack.refresh(
            on_event=self._event, color="never"))

    def tags(self, stack_name: str) -> dict[str, str]:
        """The stack's tags (releases' verification results among them)."""
        stack = self._stack(stack_name)
        with self._errors(stack_name):
            return dict(stack.list_tags())

    def record_verification(self, stack_name: str, release: int, passed: bool,
                            kept: set[int]) -> None:
        """Keep whether release `release` verified, as a stack tag in the backend; the tags of
        releases no longer `kept` are removed."""
        from stx_pulumi.model.releases import VERIFY_TAG

        stack = self._stack(stack_name)
        with self._errors(stack_name):
            stack.set_tag(f"{VERIFY_TAG}{release}", "passed" if passed else "failed")
            for key in stack.list_tags():
                number = key.removeprefix(VERIFY_TAG)
                if key.startswith(VERIFY_TAG) and number.isascii() and number.isdigit() and (
                        int(number) not in kept | {release}):
                    stack.remove_tag(key)

    def set_tag(self, stack_name: str, key: str, value: str) -> None:
        """Keep `value` as the stack's tag `key` in the backend."""
        stack = self._stack(stack_name)
        with self._errors(stack_name):
            stack.set_tag(key, value)

    def protection(self, stack_name: str) -> bool:
        """Whether a deployed service is protected, from the stack's state (never from the
        editable stack file): the services' deletionProtection in the exported state, which
        stacks of every release record."""
        stack = self._stack(stack_name)
        with self._errors(stack_name):
            resources = (stack.export_stack().deployment or {}).get("resources") or []
        return any(r.get("type") == SERVICE_TYPE and
                   (r.get("inputs") or {}).get("deletionProtection") for r in resources)

    def deployed(self, stack_name: str) -> Deployed:
        """What the stack's state records of its image and service (nothing for a stack never
        deployed from here); read once and shared with the update that follows."""
        return deployed_of(self._selected(stack_name)[1])

    def _selected(self, stack_name: str) -> tuple[auto.Stack | None, list[dict[str, Any]]]:
        """The stack and its exported resources (memory only, never written to a file), read
        once per operation and shared by the preflight and the update; (None, []) for a stack
        Pulumi has not made yet, without making anything."""
        if stack_name not in self._state:
            if not self.files.stack_initialized(stack_name):
                return None, []
            try:
                stack = self._stack(stack_name)
            except InputError:
                return None, []
            with self._errors(stack_name):
                resources = (stack.export_stack().deployment or {}).get("resources") or []
            self._state[stack_name] = (stack, resources)
        return self._state[stack_name]

    def unprotect(self, spec: AppSpec) -> OperationResult:
        """Lift deletion protection with an update of the services alone (no image build)."""
        stack = self._stack(spec.stack, _program(spec, Build.of(spec)))
        urns = [_urn(spec, SERVICE_TYPE, svc.name) for svc in spec.services]
        return self._run(spec.stack, "up", lambda: stack.up(
            on_event=self._event, target=urns, message="stx-pulumi: lift deletion "
            "protection before destroy", color="never"))

    def destroy(self, stack_name: str, remove: bool = False, message: str | None = None
                ) -> OperationResult:
        """Every resource deleted; `message` (why) kept in the stack's update history."""
        stack = self._stack(stack_name)
        result = self._run(stack_name, "destroy", lambda: stack.destroy(
            on_event=self._event, color="never", message=message))
        if remove:
            with self._errors(stack_name):
                stack.workspace.remove_stack(stack_name)
            self.files.stack_file(stack_name).unlink(missing_ok=True)
        return result

    def outputs(self, stack_name: str) -> dict[str, Any]:
        stack = self._stack(stack_name)
        with self._errors(stack_name):
            return plain_outputs(stack.outputs())

    def cancel(self, stack_name: str) -> bool:
        """Remove the stack's lock; False when no update held it."""
        stack = self._stack(stack_name)
        try:
            with self._errors(stack_name):
                stack.cancel()
        except EngineError as err:
            if "no update is in progress" in err.message.lower():
                return False
            raise
        return True

    def stacks(self, on_each: Callable[[StackInfo], Any] | None = None) -> list[StackInfo]:
        """Every stx-pulumi stack in the backend with its last update and outputs: one call
        to list them, then two per stack (state export, last history entry), concurrently;
        `on_each(info)` as each is read."""
        from concurrent.futures import ThreadPoolExecutor

        workspace = self._workspace()
        failed: EngineError | None = None
        try:
            with self._errors(None):
                summaries = workspace.list_stacks()
        except EngineError as err:  # one state the CLI cannot read fails the list: read each
            failed = err
            summaries = [auto.StackSummary(name, False, False, None, None, None)
                         for name in self.files.stack_names()]

        def read(summary: Any) -> StackInfo:
            try:
                info = self._stack_info(workspace, summary)
            except StxError as err:  # one unreadable state never hides the others
                name = summary.name.rsplit("/", 1)[-1]
                app, env = split_stack_name(name)
                return StackInfo(name, app, env, None, "unreadable", None, None, None,
                                 error=err.message)
            if on_each is not None:
                on_each(info)
            return info

        with ThreadPoolExecutor(max_workers=8) as pool:
            infos = list(pool.map(read, summaries))
        if failed is not None and all(info.error for info in infos):
            raise failed  # the backend itself is unusable, not one stack's state
        return infos

    def _stack_info(self, workspace: auto.LocalWorkspace, summary: Any) -> StackInfo:
        name = summary.name.rsplit("/", 1)[-1]
        app, env = split_stack_name(name)
        with self._errors(name):
            outputs: dict[str, Any] = {}
            if summary.resource_count or summary.resource_count is None:
                resources = (workspace.export_stack(summary.name).deployment or {}).get(
                    "resources") or []
                outputs = next((r.get("outputs") or {} for r in resources
                                if r.get("type") == "pulumi:pulumi:Stack"), {})
            history = json.loads(self.run_cli(name, [
                "stack", "history", "--json", "--page-size", "1", "--page", "1", "--stack",
                summary.name]) or "[]")
        last = history[0] if history else {}
        ended = last.get("endTime") or last.get("startTime")
        return StackInfo(
            stack=name, app=app, env=env,
            last_update=when(parse_time(ended)) if ended else None,
            result=last.get("result"), message=last.get("message"),
            resource_count=summary.resource_count,
            url=url_text(no_secrets(outputs)),
            update_in_progress=bool(summary.update_in_progress),
            outputs=whole(no_secrets(outputs)),
        )

    # -- the team stack --------------------------------------------------------------------

    def team_up(self, spec: TeamSpec, config: list[tuple[str, str]],
                preview: bool = False) -> OperationResult:
        """The team stack (made if new) run with `spec`; its settings written only after the
        update succeeded. `preview`: what it would change, nothing written."""
        def program() -> None:
            from stx_pulumi.program.team import deploy_team

            deploy_team(spec)

        if preview:
            return self._preview(TEAM_STACK, program)
        stack = self._selected(TEAM_STACK)[0] or self._stack(TEAM_STACK, program, create=True)
        stack.workspace.program = program
        stack.workspace.env_vars = {**stack.workspace.env_vars, "GOOGLE_PROJECT": spec.project}
        self._state.pop(TEAM_STACK, None)
        result = self._run(TEAM_STACK, "up", lambda: stack.up(
            on_event=self._event, message="stx-pulumi team setup", color="never"))
        with self._errors(TEAM_STACK):
            for key, value in config:
                stack.set_config(key, auto.ConfigValue(value, secret=False))
        return result

    def _stored_token(self, stack: auto.Stack) -> str | None:
        config = stack.get_all_config()  # values arrive on stdout, never on a command line
        value = config.get("cloudflare:apiToken")
        return value.value if value is not None else None

    def _migration(self, resources: list[dict[str, Any]], spec: AppSpec) -> Migration:
        """What this update carries over from an earlier release, read from the exported
        state.

        Secret access members of earlier releases were one per variable: per secret, the
        first becomes the new member's alias and the others leave the state only (their
        non-authoritative member is the one the alias keeps), so the binding never goes
        away. An image context recorded as an absolute path of this same folder is kept
        while the tag is unchanged, so an upgrade does not rebuild for a path spelling."""
        wanted = {ref.secret for ref in spec.secret_env}
        aliases: dict[str, str] = {}
        context = None
        for res in resources:
            inputs = res.get("inputs") or {}
            name = res.get("urn", "").rsplit("::", 1)[-1]
            if res.get("type") == IMAGE_TYPE:
                recorded = (inputs.get("build") or {}).get("context") or ""
                if (Path(recorded).is_absolute() and Path(recorded).resolve() == spec.source
                        and str(inputs.get("imageName", "")).endswith(f":{spec.image_tag}")):
                    context = recorded
            secret = inputs.get("secretId")
            if (res.get("type") != SECRET_MEMBER_TYPE or secret not in wanted
                    or name == secret_member_name(spec.service_name, secret)):
                continue
            if secret not in aliases:
                aliases[secret] = name
                continue
            self.run_cli(spec.stack, ["state", "delete", res["urn"], "--yes", "--stack",
                                      spec.stack])
        previous = next((list((r.get("outputs") or {}).get("releases") or [])
                         for r in resources if r.get("type") == "pulumi:pulumi:Stack"), [])
        return Migration(tuple(sorted(aliases.items())), context, tuple(previous),
                         deployed_tag=deployed_of(resources).image_tag)


def _urn(spec: AppSpec, type_: str = "", name: str = "") -> str:
    """The URN of the app's component, or of a resource `type_` `name` it is the parent of."""
    base = f"urn:pulumi:{spec.stack}::{PROJECT_NAME}::{COMPONENT}"
    return f"{base}${type_}::{name}" if type_ else f"{base}::{spec.service_name}"


def _program(spec: AppSpec, build: Build, cloudflare_token: str | None = None,
             carried: Mapping[str, Migration] | None = None,
             build_turn: Any = None) -> Callable[[], None]:
    """The inline program; `carried` gets the stack's migration once it has been read."""
    def run() -> None:
        from stx_pulumi import program

        program.deploy(spec, build, cloudflare_token=program.cloudflare_token(
            cloudflare_token), migration=(carried or {}).get("migration"),
            build_turn=build_turn)

    return run
