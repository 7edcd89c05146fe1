"""What every command that deploys shares (`up`, `event add --up`, `rollback`, `promote`): the
spec loaded and the engine opened, the `up` use case run (`ops.deploy`), its result shown, and
a failed verification turned into exit 5."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stx_pulumi import render
from stx_pulumi.cli.options import DeployOptions, confirm_protected, load_spec_for, open_engine
from stx_pulumi.errors import InputError

if TYPE_CHECKING:
    from stx_pulumi.engine.state import OperationResult
    from stx_pulumi.ops.deploy import UpOutcome
    from stx_pulumi.ops.fleet import Run, Turn
    from stx_pulumi.ops.verify import Verification

AcceptRiskOpt = Annotated[str | None, typer.Option(
    "--accept-risk", metavar="REASON", help="A protected env's image whose vulnerability scan "
    "is not clean goes ahead; the reason is kept in the release history.")]
NoVerifyOpt = Annotated[bool, typer.Option(
    "--no-verify", help="Skip the post-deploy checks (health, /, /html/, Streamlit, revision).")]
WaitOpt = Annotated[float, typer.Option(
    "--wait-timeout", help="Seconds to wait for the service to answer its health check.")]
PollOpt = Annotated[float, typer.Option(
    "--poll-interval", help="Seconds between health checks while waiting.")]


def check_wait(wait_timeout: float, poll_interval: float) -> None:
    if not 1 <= wait_timeout <= 3600:
        raise InputError(f"--wait-timeout: must be between 1 and 3600 seconds, got "
                         f"{wait_timeout:g}")
    if not 1 <= poll_interval <= 300:
        raise InputError(f"--poll-interval: must be between 1 and 300 seconds, got "
                         f"{poll_interval:g}")


def run_up(app_name: str | None, options: DeployOptions, overrides: Mapping[str, Any],
           unset: Sequence[str], *, yes: bool, quiet: bool = False,
           build_turn: Turn | None = None, stop: threading.Event | None = None,
           **request: Any) -> UpOutcome:
    """The spec of APP with these settings on top of the stack's, then `ops.deploy.up`
    (`request`: the rest of its `UpRequest`)."""
    from stx_pulumi.ops.deploy import UpRequest, up

    check_wait(*request.get("wait", (300, 10)))
    spec, ws = load_spec_for(app_name, options, dict(overrides), unset, yes=yes)
    for warning in spec.warnings:
        render.warning(warning)
    if spec.protected:
        confirm_protected(spec.stack, yes, "update")
    engine, progress = open_engine(ws, f"up {spec.stack}", quiet=quiet)
    return up(spec, ws, engine, progress, UpRequest(yes=yes, unset=tuple(unset), **request),
              overrides, render, build_turn=build_turn, stop=stop)


def deploy_app(app_name: str | None, options: DeployOptions, overrides: Mapping[str, Any],
               unset: Sequence[str], *, json_output: bool = False, **request: Any) -> None:
    """`up` of one app, then its result shown."""
    outcome = run_up(app_name, options, overrides, unset, quiet=json_output, **request)
    show(outcome.result, json_output, outcome.verification)


def show(result: OperationResult, json_output: bool,
         verification: Verification | None = None) -> None:
    if json_output:
        data = result.as_json()
        if verification is not None:
            data["verify"] = verification.as_json()
        render.print_json(data)
    else:
        render.operation(result)
    if verification is not None:
        if not json_output:
            render.verification(verification)
        fail_verification(verification, result.outputs)


def fail_verification(verification: Verification, outputs: dict[str, Any]) -> None:
    """Exit 5 with what failed and where the logs are (the JSON, if any, is already out)."""
    from stx_pulumi.errors import VerificationError
    from stx_pulumi.ops.verify import logs_command_for

    if verification.failed:
        failed = [f"verification of {r.stack} failed: {', '.join(c.name for c in r.failed)}"
                  for r in verification.reports.values() if r.failed]
        render.error(VerificationError("; ".join(failed), hint=f"logs: "
                                       f"{logs_command_for(verification, outputs)}"))
        raise typer.Exit(VerificationError.exit_code)


def verified(run: Run, verification: Verification) -> None:
    """A fleet app's verification: kept in its result, exit 5 when a check failed."""
    from stx_pulumi.errors import VerificationError
    from stx_pulumi.ops.verify import logs_command_for

    run.extra["verify"] = verification.as_json()
    failed = [c.name for r in verification.reports.values() for c in r.failed]
    if failed:
        raise VerificationError(f"verification failed: {', '.join(failed)}",
                                hint=f"logs: {logs_command_for(verification, run.outputs)}")
