"""A workspace's Pulumi backend as the engine uses it: the environment (backend URL,
passphrase), stacks selected or made with a program, the CLI run for what automation lacks, and
automation's errors turned into the StxError a user can act on. Nothing here prints."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from stx_pulumi.engine.cli import INSTALL_HINT, cli_warning, find_cli
from stx_pulumi.engine.state import OperationResult, changes, plain_outputs
from stx_pulumi.errors import EngineError, InputError, PrerequisiteError, StackLockedError
from stx_pulumi.model.names import split_stack_name
from stx_pulumi.workspace import PROJECT_NAME, Workspace, create_workspace

OnEvent = Callable[[auto.EngineEvent], None]
CONFIG_TIMEOUT_S = 120  # one `pulumi config set`: a local file write, or one backend call


class Backend:
    """The stacks of one Pulumi project in one backend, with the workspace's secrets.

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
        program = program or no_program
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

    def run_cli(self, stack: str, args: list[str]) -> str:
        """The Pulumi CLI run in the project's folder (what automation has no call for); its
        standard output."""
        with self._errors(stack):
            return self.command.run(args, str(self.files.root), self.env_vars).stdout

    def export(self, name: str) -> dict[str, Any]:
        """The stack's state as `stack export` prints it without --show-secrets (secrets
        stay ciphertexts, never in memory in plaintext)."""
        return dict(json.loads(self.run_cli(name, ["stack", "export", "--stack", name])))

    def import_state(self, name: str, data: Mapping[str, Any]) -> None:
        """`stack import` of an exported state (its ciphertexts as they are)."""
        with self._errors(name):
            self._workspace().import_stack(name, auto.Deployment(
                version=data.get("version"), deployment=data.get("deployment")))

    def check_secrets(self, name: str) -> None:
        """Every secret of the stack's settings decrypts (none is shown)."""
        with self._errors(name):
            self._workspace().get_all_config(name)

    def _set_secret(self, stack: str, key: str, value: str) -> None:
        """`pulumi config set KEY --secret` with the value on stdin, never on a command line
        (the CLI reads a piped value: pulumi/pkg/cmd/pulumi/config, `config set`)."""
        argv = [self.command.command, "--non-interactive", "config", "set", key, "--secret",
                "--stack", stack]
        try:
            done = subprocess.run(argv, input=value, text=True, capture_output=True,
                                  check=False, cwd=self.files.root, timeout=CONFIG_TIMEOUT_S,
                                  env={**os.environ, **self.env_vars})
        except subprocess.TimeoutExpired:  # a hung CLI never hangs `up` after its update
            raise EngineError(f"could not store {key} in {stack}: the Pulumi CLI gave no "
                              f"answer within {CONFIG_TIMEOUT_S}s", hint="run `stx-pulumi up` "
                              "again: the update itself is done") from None
        if done.returncode != 0:
            raise EngineError(f"could not store {key} in {stack}: "
                              f"{_first_error(done.stderr)}")

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
            summary = result.change_summary
            outputs: dict[str, Any] = {}
        else:
            summary = result.summary.resource_changes if result.summary else {}
            outputs = plain_outputs(getattr(result, "outputs", None) or {})
        return OperationResult(
            stack=stack, operation=operation, result="succeeded",
            changes=changes(summary), outputs=outputs,
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


def no_program() -> None:
    """Refresh, destroy, outputs and cancel need no program."""


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
