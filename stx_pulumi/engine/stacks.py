"""The engine: the only code that touches `pulumi.automation`.

It finds the Pulumi CLI, sets up the workspace's backend and secrets, runs preview, up, refresh
and destroy with the program as an inline closure, and turns automation's errors into StxErrors.
Progress goes to an `on_event` callback; nothing here prints.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from stx_pulumi.errors import (
    EngineError,
    InputError,
    PrerequisiteError,
    StackLockedError,
    StxError,
)
from stx_pulumi.model import releases
from stx_pulumi.model.names import secret_member_name, split_stack_name
from stx_pulumi.model.spec import AppSpec, Build, Migration
from stx_pulumi.model.team import TEAM_STACK, TeamSpec
from stx_pulumi.ops.status import url_text
from stx_pulumi.workspace import PROJECT_NAME, Workspace, create_workspace, home_dir

# Inline refresh and destroy need 3.181; release records keep their verification in stack
# tags, which the file (DIY) backend has from 3.211 (pulumi/pulumi#21203, CHANGELOG 3.211.0;
# older CLIs answer "stack tags not supported in --local mode").
MIN_CLI_VERSION = "3.211.0"
CHANGE_KINDS = ("create", "update", "replace", "delete", "same")
COMPONENT = "stx:index:StreamtexApp"
SERVICE_TYPE = "gcp:cloudrunv2/service:Service"
SECRET_MEMBER_TYPE = "gcp:secretmanager/secretIamMember:SecretIamMember"
IMAGE_TYPE = "docker:index/image:Image"
BUILD_BASE_TYPES = ("gcp:artifactregistry/repository:Repository", "gcp:storage/bucket:Bucket",
                    "gcp:serviceaccount/account:Account",
                    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
                    "gcp:storage/bucketIAMMember:BucketIAMMember",
                    "gcp:projects/iAMMember:IAMMember")
INSTALL_HINT = ("install it from https://www.pulumi.com/docs/iac/download-install/ "
                "or run `stx-pulumi install-cli` (needs internet)")

OnEvent = Callable[[auto.EngineEvent], None]


@dataclass
class OperationResult:
    """What one engine operation did, ready for rendering."""

    stack: str
    operation: str
    result: str
    changes: dict[str, int]
    outputs: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    backend: str = ""
    notices: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "operation": self.operation, "result": self.result,
                "changes": self.changes, "outputs": self.outputs,
                "duration_s": round(self.duration_s, 1)}


@dataclass(frozen=True)
class Deployed:
    """What a stack's state records: the image tag, the container port, the services."""

    image_tag: str | None = None
    port: int | None = None
    services: tuple[str, ...] = ()
    served_image: str | None = None  # the image the (first) service runs
    last_release: Mapping[str, Any] | None = None
    resources: frozenset[str] = frozenset()  # logical names
    ceilings: Mapping[str, int | None] = field(default_factory=dict)  # revision max, by service

    def built(self, tag: str) -> str | None:
        """The image of `tag` a cloud build made and the services run: no new build."""
        release = self.last_release or {}
        digest = release.get("digest")
        return str(digest) if release.get("tag") == tag and digest and (
            digest == self.served_image) else None


@dataclass
class StackInfo:
    """One stack of the backend, for `stx-pulumi stacks`."""

    stack: str
    app: str
    env: str
    last_update: str | None
    result: str | None
    message: str | None
    resource_count: int | None
    url: str | None
    update_in_progress: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # why its state could not be read (the others still are)


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


class Engine:
    """Pulumi operations on the stacks of one workspace.

    Nothing is created on disk until the Pulumi CLI has been found: a missing CLI (exit 3)
    leaves no workspace, no state folder and no passphrase behind."""

    def __init__(self, ws: Workspace, environ: Mapping[str, str],
                 on_event: OnEvent | None = None, *, project: str = PROJECT_NAME,
                 files: Workspace | None = None, backend: str | None = None,
                 command: auto.PulumiCommand | None = None) -> None:
        """`project`, `files`: another Pulumi project of the workspace and the folder of its
        Pulumi.yaml and stack files (the team stack's); `backend`: another state backend
        (a migration's target); `command`: the CLI another engine found. Passphrase and
        settings are always the workspace's."""
        self.environ = environ
        self.on_event = on_event
        self.command = command or find_cli(environ)
        self.ws = ws
        self.project = project
        self.files = files or ws
        self.backend = backend or ws.backend_url(environ)
        self.diagnostics: list[str] = []
        self.notices: list[str] = [w for w in [cli_warning(self.command)] if w]
        self.new_passphrase = False
        self._env: dict[str, str] | None = None
        self._state: dict[str, tuple[auto.Stack | None, list[dict[str, Any]]]] = {}

    # -- workspace ---------------------------------------------------------------------------

    @property
    def env_vars(self) -> dict[str, str]:
        """The engine's environment; the first use makes the workspace, the local state folder
        and the passphrase when they do not exist yet."""
        if self._env is None:
            if not self.ws.exists:
                self.ws = create_workspace(self.ws.root)
            self._env = self._env_vars()
        return self._env

    def prepare(self) -> None:
        """Make the workspace, state folder and passphrase now (before progress is shown)."""
        _ = self.env_vars

    def _env_vars(self) -> dict[str, str]:
        env = {"PULUMI_BACKEND_URL": self.backend, "PULUMI_SKIP_UPDATE_CHECK": "true"}
        if self.backend.startswith("file://"):
            Path(self.backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        kms = (self.ws.secrets_provider() or "passphrase") != "passphrase"
        if self.environ.get("PULUMI_CONFIG_PASSPHRASE") is not None:
            env["PULUMI_CONFIG_PASSPHRASE"] = self.environ["PULUMI_CONFIG_PASSPHRASE"]
        elif self.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
            env["PULUMI_CONFIG_PASSPHRASE_FILE"] = self.environ["PULUMI_CONFIG_PASSPHRASE_FILE"]
        elif not kms or self.ws.passphrase_file.is_file():  # with KMS: never made, still read
            env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(self.passphrase_file())
        return env

    def passphrase_file(self) -> Path:
        """The generated passphrase (0600), made once; back it up, never print it.

        Never made again for a workspace whose stacks were encrypted with a lost one."""
        file = self.ws.passphrase_file
        if not file.exists():
            if self.ws.has_encrypted_stacks():
                raise PrerequisiteError(
                    f"the secrets passphrase is missing: {file} does not exist, but stacks in "
                    f"{self.ws.stacks_dir} were encrypted with it",
                    hint="restore the file from your backup, or set PULUMI_CONFIG_PASSPHRASE "
                    "(or PULUMI_CONFIG_PASSPHRASE_FILE) to that passphrase")
            file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32) + "\n")
            self.new_passphrase = True
        return file

    def _options(self, program: Callable[[], None] | None = None) -> auto.LocalWorkspaceOptions:
        # No project_settings: it would rewrite Pulumi.yaml and drop stackConfigDir.
        return auto.LocalWorkspaceOptions(
            work_dir=str(self.files.root),
            pulumi_command=self.command,
            env_vars=self.env_vars,
            secrets_provider=self.ws.secrets_provider(),
            program=program,
        )

    def _stack(self, stack: str, program: Callable[[], None] | None = None, *,
               create: bool = False) -> auto.Stack:
        program = program or _no_program
        with self._errors(stack):
            if create:
                return auto.create_or_select_stack(stack, self.project, program,
                                                   opts=self._options(program))
            try:
                return auto.select_stack(stack, self.project, program,
                                         opts=self._options(program))
            except auto.StackNotFoundError:
                raise InputError(f"stack {stack} does not exist in {self.backend}: "
                                 "deploy it with `stx-pulumi up` first") from None

    def _workspace(self) -> auto.LocalWorkspace:
        with self._errors(None):
            return auto.LocalWorkspace(**self._options().__dict__)

    def exists(self, stack: str) -> bool:
        return stack in self.stack_names()

    def stack_names(self) -> list[str]:
        """Every stack of the backend in this project (`<app>.<env>`)."""
        with self._errors(None):
            return [s.name.rsplit("/", 1)[-1] for s in self._workspace().list_stacks()]

    # -- operations --------------------------------------------------------------------------

    def up(self, spec: AppSpec, build: Build, updates: list[tuple[str, str]],
           unset: list[str], message: str | None = None, cloudflare_token: str | None = None,
           kind: str = "up", build_turn: Any = None) -> OperationResult:
        """Deploy the spec; only when that succeeded, write the settings it was given.

        The program receives the spec itself, so the stack file stays as it was until the
        update succeeded: a refused, failed or interrupted `up` leaves it byte for byte.
        `build_turn`: a fleet's build slot, held by the program while its image builds."""
        carried: dict[str, Migration] = {}
        resources = self._selected(spec.stack)[1]
        stack = self._ready(spec, _program(spec, build, cloudflare_token, carried, build_turn))
        migration = self._migration(resources, spec)
        carried["migration"] = replace(migration, record=releases.record(
            list(migration.releases), spec.image_tag, message, kind, self.environ, spec.now,
            spec.settings_digest))
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
        return OperationResult(spec.stack, "up", "unchanged", _changes({}),
                               _whole(_no_secrets(outputs)), backend=self.backend)

    def prepare_build(self, spec: AppSpec) -> OperationResult:
        """The cloud builder's registry, bucket and build account made alone (a targeted
        update, the services untouched), so the first cloud build has where to push."""
        kept = next(((r.get("outputs") or {}) for r in self._selected(spec.stack)[1]
                     if r.get("type") == "pulumi:pulumi:Stack"), {})
        kept = {k: v for k, v in kept.items() if _no_secrets(v) == v}  # never a ciphertext

        def program() -> None:
            from stx_pulumi import program as p

            p.deploy_build_base(spec, kept)

        stack = self._ready(spec, program)
        # Their parent too: the engine targets only providers and the stack implicitly, and a
        # targeted resource whose parent is an untargeted new one fails (error 2013,
        # pulumi/pulumi pkg/resource/deploy/step_generator.go, validateSteps).
        urns = [f"urn:pulumi:{spec.stack}::{PROJECT_NAME}::{COMPONENT}::{spec.service_name}"]
        urns += [f"urn:pulumi:{spec.stack}::{PROJECT_NAME}::{COMPONENT}${t}::{n}"
                 for t, n in zip(BUILD_BASE_TYPES, spec.build_base_names, strict=True)]
        self._state.pop(spec.stack, None)
        return self._run(spec.stack, "up", lambda: stack.up(
            on_event=self._event, target=urns, message="stx-pulumi: registry and build "
            "account for the first cloud build", color="never"))

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

    def protection(self, stack_name: str) -> bool:
        """Whether a deployed service is protected, from the stack's state (never from the
        editable stack file): the services' deletionProtection in the exported state, which
        stacks of every release record."""
        stack = self._stack(stack_name)
        with self._errors(stack_name):
            resources = stack.export_stack().deployment.get("resources") or []
        return any(r.get("type") == SERVICE_TYPE and
                   (r.get("inputs") or {}).get("deletionProtection") for r in resources)

    def deployed(self, stack_name: str) -> Deployed:
        """What the stack's state records of its image and service (nothing for a stack never
        deployed from here); read once and shared with the update that follows."""
        return _deployed(self._selected(stack_name)[1])

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
                resources = stack.export_stack().deployment.get("resources") or []
            self._state[stack_name] = (stack, resources)
        return self._state[stack_name]

    def unprotect(self, spec: AppSpec) -> OperationResult:
        """Lift deletion protection with an update of the services alone (no image build)."""
        stack = self._stack(spec.stack, _program(spec, Build.of(spec)))
        urns = [f"urn:pulumi:{spec.stack}::{PROJECT_NAME}::{COMPONENT}${SERVICE_TYPE}::{svc.name}"
                for svc in spec.services]
        return self._run(spec.stack, "up", lambda: stack.up(
            on_event=self._event, target=urns, message="stx-pulumi: lift deletion "
            "protection before destroy", color="never"))

    def destroy(self, stack_name: str, remove: bool = False) -> OperationResult:
        stack = self._stack(stack_name)
        result = self._run(stack_name, "destroy", lambda: stack.destroy(
            on_event=self._event, color="never"))
        if remove:
            with self._errors(stack_name):
                stack.workspace.remove_stack(stack_name)
            self.files.stack_file(stack_name).unlink(missing_ok=True)
        return result

    def outputs(self, stack_name: str) -> dict[str, Any]:
        stack = self._stack(stack_name)
        with self._errors(stack_name):
            return _plain_outputs(stack.outputs())

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
            outputs = {}
            if summary.resource_count or summary.resource_count is None:
                resources = workspace.export_stack(summary.name).deployment.get(
                    "resources") or []
                outputs = next((r.get("outputs") or {} for r in resources
                                if r.get("type") == "pulumi:pulumi:Stack"), {})
            done = self.command.run(["stack", "history", "--json", "--page-size", "1",
                                     "--page", "1", "--stack", summary.name],
                                    str(self.files.root), self.env_vars)
        history = json.loads(done.stdout or "[]")
        last = history[0] if history else {}
        when = last.get("endTime") or last.get("startTime")
        return StackInfo(
            stack=name, app=app, env=env,
            last_update=_when(_parse_time(when)) if when else None,
            result=last.get("result"), message=last.get("message"),
            resource_count=summary.resource_count,
            url=url_text(_no_secrets(outputs)),
            update_in_progress=bool(summary.update_in_progress),
            outputs=_whole(_no_secrets(outputs)),
        )

    # -- the team stack, and moving stacks to another backend ---------------------------------

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

    def move(self, name: str, target: Engine, provider: str) -> bool:
        """Stack `name` copied from this backend into `target`'s, then its secrets (config
        and state) re-encrypted with `provider`. Only ciphertexts travel: a plain `stack
        export` (automation's export shows secrets) into `import_stack`. The copy here stays
        as it was, a backup. False when the target had the stack already.
        (`stack init` on a stack file with an encryption salt keeps it; `stack import` keeps
        the deployment's ciphertexts readable through its `secrets_providers`; then
        `stack change-secrets-provider` re-encrypts config and state: Pulumi CLI docs. CLIs
        from 3.255 also have `stack migrate`, which does the same in one command.)"""
        data = self._export(name)
        if not target.exists(name):
            with target._errors(name):
                target.command.run(["stack", "init", name, "--secrets-provider",
                                    self.files.secrets_provider_of(name), "--non-interactive"],
                                   str(target.files.root), target.env_vars)
        copied = bool(_urns(data) - _urns(target._export(name)))  # a copy cut short: again
        if copied:
            with target._errors(name):
                target._workspace().import_stack(name, auto.Deployment(
                    version=data.get("version"), deployment=data.get("deployment")))
        if target.files.secrets_provider_of(name) != provider:
            with target._errors(name):
                target.command.run(["stack", "change-secrets-provider", provider, "--stack",
                                    name, "--non-interactive"], str(target.files.root),
                                   target.env_vars)
        if _urns(data) - _urns(target._export(name)):
            raise EngineError(f"{name}: the copy in {target.backend} lacks resources of "
                              f"{self.backend}")
        with target._errors(name):
            target._workspace().get_all_config(name)  # every secret decrypts; none is shown
        return copied

    def _export(self, name: str) -> dict[str, Any]:
        """The stack's state as `stack export` prints it without --show-secrets (secrets
        stay ciphertexts, never in memory in plaintext)."""
        with self._errors(name):
            done = self.command.run(["stack", "export", "--stack", name],
                                    str(self.files.root), self.env_vars)
        return json.loads(done.stdout)

    # -- secrets -----------------------------------------------------------------------------

    def _stored_token(self, stack: auto.Stack) -> str | None:
        config = stack.get_all_config()  # values arrive on stdout, never on a command line
        value = config.get("cloudflare:apiToken")
        return value.value if value is not None else None

    def _set_secret(self, stack: str, key: str, value: str) -> None:
        """`pulumi config set KEY --secret` with the value on stdin, never on a command line
        (the CLI reads a piped value: pulumi/pkg/cmd/pulumi/config, `config set`)."""
        argv = [self.command.command, "--non-interactive", "config", "set", key, "--secret",
                "--stack", stack]
        done = subprocess.run(argv, input=value, text=True, capture_output=True, check=False,
                              cwd=self.files.root, env={**os.environ, **self.env_vars})
        if done.returncode != 0:
            raise EngineError(f"could not store {key} in {stack}: "
                              f"{_first_error(done.stderr)}")

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
            with self._errors(spec.stack):
                self.command.run(["state", "delete", res["urn"], "--yes", "--stack",
                                  spec.stack], str(self.files.root), self.env_vars)
        previous = next((list((r.get("outputs") or {}).get("releases") or [])
                         for r in resources if r.get("type") == "pulumi:pulumi:Stack"), [])
        return Migration(tuple(sorted(aliases.items())), context, tuple(previous),
                         deployed_tag=_deployed(resources).image_tag)

    # -- plumbing ----------------------------------------------------------------------------

    def _event(self, event: auto.EngineEvent) -> None:
        diag = event.diagnostic_event
        if diag and diag.severity == "error" and not diag.ephemeral:
            where = f"{diag.urn.rsplit('::', 1)[-1]}: " if diag.urn else ""
            text = " ".join(diag.message.split("Traceback")[0].split())[:400]
            if text:
                self.diagnostics.append(where + text)
        if self.on_event:
            self.on_event(event)

    def _run(self, stack: str, operation: str, call: Callable[[], Any]) -> OperationResult:
        start = time.monotonic()
        self.diagnostics = []
        with self._errors(stack):
            result = call()
        if operation == "preview":
            changes = result.change_summary
            outputs: dict[str, Any] = {}
        else:
            changes = result.summary.resource_changes if result.summary else {}
            outputs = _plain_outputs(getattr(result, "outputs", None) or {})
        return OperationResult(
            stack=stack, operation=operation, result="succeeded",
            changes=_changes(changes), outputs=outputs,
            duration_s=time.monotonic() - start, backend=self.backend)

    @contextmanager
    def _errors(self, stack: str | None) -> Iterator[None]:
        """Turn automation's errors into the StxError a user can act on."""
        try:
            yield
        except auto.ConcurrentUpdateError as err:
            holder = _lock_holder(str(err))
            raise StackLockedError(
                f"stack {stack} is locked by another update" + (f" ({holder})" if holder else ""),
                hint=f"wait for it to finish; if it was interrupted, run `stx-pulumi cancel "
                f"{_app_arg(stack)}` to remove the stale lock") from None
        except auto.CommandError as err:
            raise EngineError(self._failure(err, stack), hint=_hint(err)) from None
        except KeyboardInterrupt:
            raise EngineError(
                f"interrupted: the operation on {stack} was stopped part-way",
                hint=f"run `stx-pulumi refresh {_app_arg(stack)}` to reconcile the state with "
                "the cloud (and `stx-pulumi cancel` if the stack stays locked)") from None
        except FileNotFoundError as err:
            raise PrerequisiteError(f"the Pulumi CLI could not be run: {err}",
                                    hint=INSTALL_HINT) from None
        except RuntimeError as err:  # automation's own, e.g. "summary event never found"
            raise EngineError(f"the engine ended without a result for {stack}: {err}") from None

    def _failure(self, err: auto.CommandError, stack: str | None) -> str:
        where = f"the engine failed on {stack}: " if stack else "the engine failed: "
        if self.diagnostics:
            return where + "; ".join(dict.fromkeys(self.diagnostics))
        text = _first_error(str(err).partition("stderr:")[2])
        code = re.search(r"code: (-?\d+)", str(err))
        return where + (text or "the Pulumi CLI exited" + (
            f" with code {code.group(1)}" if code else "") + " without a message")


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


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a secret value


def _no_secrets(value: Any) -> Any:
    """Exported values with every secret as "[secret]" (an export shows them in plaintext)."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return "[secret]"
        return {k: _no_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_secrets(v) for v in value]
    return value


def _urns(exported: Mapping[str, Any]) -> set[str]:
    """The resources an exported state holds."""
    return {str(r.get("urn")) for r in (exported.get("deployment") or {}).get(
        "resources") or []}


def _parse_time(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _deployed(resources: list[dict[str, Any]]) -> Deployed:
    """What exported resources record of the image and the services."""
    tag = port = image = None
    services, releases, ceilings = [], [], {}
    for res in resources:
        inputs = res.get("inputs") or {}
        if res.get("type") == IMAGE_TYPE:
            tag = str(inputs.get("imageName", "")).rsplit(":", 1)[-1]
        elif res.get("type") == SERVICE_TYPE:
            containers = (inputs.get("template") or {}).get("containers") or [{}]
            port = ((containers[0].get("ports") or {}).get("containerPort"))
            image = image or containers[0].get("image")
            services.append(str(inputs.get("name")))
            ceiling = ((inputs.get("template") or {}).get("scaling") or {}).get(
                "maxInstanceCount")
            ceilings[str(inputs.get("name"))] = int(ceiling) if ceiling else None
        elif res.get("type") == "pulumi:pulumi:Stack":
            releases = list((res.get("outputs") or {}).get("releases") or [])
    names = frozenset(str(r.get("urn", "")).rsplit("::", 1)[-1] for r in resources)
    return Deployed(tag, int(port) if port else None, tuple(services), image,
                    releases[-1] if releases else None, names, ceilings)


def _no_program() -> None:
    """Refresh, destroy, outputs and cancel need no program."""


def _plain_outputs(outputs: Mapping[str, auto.OutputValue]) -> dict[str, Any]:
    """Output values as JSON data: secrets as "[secret]", whole numbers as ints."""
    return {k: "[secret]" if v.secret else _whole(v.value) for k, v in outputs.items()}


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole(v) for v in value]
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    return value


def _changes(summary: Mapping[str, int] | None) -> dict[str, int]:
    summary = summary or {}
    return {kind: int(summary.get(kind, 0)) for kind in CHANGE_KINDS}


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _first_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith("error")] or lines[-2:]
    return " ".join(errors)[:500]


def _lock_holder(stderr: str) -> str | None:
    match = re.search(r"created by ([^\n]+)", stderr or "")
    return match.group(1).strip() if match else None


def _hint(err: auto.CommandError) -> str | None:
    text = str(err)
    if "passphrase" in text.lower():
        return ("set PULUMI_CONFIG_PASSPHRASE (or _FILE) to the passphrase this stack was "
                "created with")
    if "has not been used in project" in text or "SERVICE_DISABLED" in text:
        return "enable the API named above: gcloud services enable <api> --project <project>"
    if "PERMISSION_DENIED" in text or "403" in text:
        return "check that your Google account has the roles needed in the project"
    return None


def _app_arg(stack: str | None) -> str:
    if not stack:
        return ""
    app, env = split_stack_name(stack)
    return f"{app} --env {env}"
