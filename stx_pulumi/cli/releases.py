"""Releases: `history` and `rollback` (and `up --unpin` to end one)."""

import os
from typing import TYPE_CHECKING, Annotated

import typer

from stx_pulumi import render
from stx_pulumi.cli.deploying import (
    AcceptRiskOpt,
    NoVerifyOpt,
    PollOpt,
    WaitOpt,
    check_wait,
    deploy_app,
)
from stx_pulumi.cli.options import (
    AppArg,
    DeployOptions,
    EnvOpt,
    JsonOpt,
    MessageOpt,
    YesOpt,
    command,
    interactive,
    load_spec_for,
    open_engine,
    stack_ref,
)
from stx_pulumi.errors import InputError

if TYPE_CHECKING:
    from stx_pulumi.engine.stacks import Engine
    from stx_pulumi.model.releases import Release
    from stx_pulumi.model.spec import AppSpec


def _releases(app_name: str | None, env: str | None
              ) -> tuple["AppSpec", "Engine", list["Release"], "Release | None"]:
    """(spec, engine, releases oldest first, the release serving now)."""
    from stx_pulumi.model import releases

    ws, stack = stack_ref(app_name, env)
    spec, _ = load_spec_for(app_name, DeployOptions(env=env), {}, (), placeholder=True)
    engine, _ = open_engine(ws, quiet=True)
    found = releases.history(engine.outputs(stack), engine.tags(stack))
    return spec, engine, found, releases.serving(found, spec.pin)


@command()
def history(app_name: AppArg = None, env: EnvOpt = None, json_output: JsonOpt = False) -> None:
    """The app's releases, newest first, marking the one serving now."""
    import json

    from stx_pulumi.ops.rehearse import REHEARSAL_TAG

    spec, engine, found, now = _releases(app_name, env)
    rows = [{**release.__dict__, "revisions": dict(release.revisions),
             "serving": now is not None and release.n == now.n}
            for release in reversed(found)]
    kept = engine.tags(spec.stack).get(REHEARSAL_TAG)
    rehearsal = json.loads(kept) if kept else None
    if json_output:
        render.print_json({"stack": spec.stack, "pinned": spec.pin.release if spec.pin else None,
                           "releases": rows, "rehearsal": rehearsal})
    else:
        render.history(spec.stack, rows, spec.pin, rehearsal)


@command()
def rollback(
    app_name: AppArg = None,
    to: Annotated[str | None, typer.Option(
        "--to", help="Release number, image tag (rel-N, sha-…) or revision; `latest` ends the "
        "rollback. Default: the previous good (deployed and verified) release.")] = None,
    message: MessageOpt = None,
    yes: YesOpt = False,
    env: EnvOpt = None,
    no_verify: NoVerifyOpt = False,
    wait_timeout: WaitOpt = 300,
    poll_interval: PollOpt = 10,
    json_output: JsonOpt = False,
) -> None:
    """Serve an earlier release again in seconds, with no build.

    Its revisions take all traffic, or its image is deployed again; every later `up` keeps it
    until `up --unpin`."""
    from stx_pulumi.model import releases

    check_wait(wait_timeout, poll_interval)
    checks = {"verify": not no_verify, "wait": (wait_timeout, poll_interval)}
    spec, _, found, now = _releases(app_name, env)
    options = DeployOptions(env=env)
    if to == "latest":
        if spec.pin is None:
            raise InputError("--to latest: no rollback is in force (nothing pinned)")
        deploy_app(app_name, options, {}, ("pin",), yes=yes, message=message or "end rollback",
                   json_output=json_output, **checks)
        return
    target = releases.target(found, spec.pin, to)
    fast = _revisions_exist(spec, target)
    # fast: the revisions run the image they were made with; the template stays as deployed
    digest = (now.digest if now and spec.pin is None else spec.pin.digest if spec.pin
              else target.digest) if fast else target.digest
    pin = {"release": target.n, "digest": digest, "tag": target.tag,
           "revisions": dict(target.revisions) if fast else {}}
    how = (f"all traffic to its revision(s) {', '.join(target.revisions.values())}" if fast
           else f"its image {target.digest.rsplit('@', 1)[-1][:19]}… deployed again (its "
           "revision is gone): it runs with today's settings and secrets")
    if not json_output:
        render.info(f"rollback of {spec.stack} to release {target.n} ({target.tag}, "
                    f"{target.time}): {how}")
    if spec.protected and (warning := scan_warning(target)):
        render.warning(warning)  # from the release's record: a rollback never waits on a scan
    if not yes:
        if not interactive():
            raise InputError(f"rollback of {spec.stack} needs confirmation: pass --yes")
        if not typer.confirm(f"Roll {spec.stack} back to release {target.n}?"):
            raise InputError(f"rollback of {spec.stack} cancelled")
    deploy_app(app_name, options, {"stx:pin": pin}, ("pin",), yes=True,
               message=message or f"rollback to release {target.n}", json_output=json_output,
               kind="rollback", **checks)
    if not json_output:
        render.info(f"back to the latest source: `stx-pulumi up {spec.app} --env {spec.env} "
                    "--unpin` (or `rollback --to latest`)")


def scan_warning(release: "Release") -> str | None:
    """What the release's record says of its vulnerability scan, when it was not clean."""
    if release.scan == "clean":
        return None
    if release.scan is None:
        return (f"release {release.n} has no vulnerability scan on record (deployed before the "
                "gate, or not into a protected env)")
    accepted = f"; accepted: {release.accepted_risk}" if release.accepted_risk else ""
    return f"release {release.n}'s image was not clean when deployed: {release.scan}{accepted}"


def _revisions_exist(spec: "AppSpec", target: "Release") -> bool:
    """The fast path needs every one of the release's revisions still in Cloud Run; when it
    cannot be asked, the image is deployed again (no build either)."""
    from stx_pulumi.cloud import google
    from stx_pulumi.errors import GoogleError

    if not target.revisions:
        return False
    try:
        client = google.connect(os.environ)
        return all(client.revision_exists(spec.project, spec.region, service, revision)
                   for service, revision in target.revisions.items())
    except GoogleError as err:
        render.warning(f"cannot ask Cloud Run whether release {target.n}'s revisions still "
                       f"exist ({err}): its image is deployed again instead")
        return False


@command()
def promote(
    app_name: AppArg = None,
    source: Annotated[str, typer.Option("--from", help="The env whose serving image to ship, "
                                        "e.g. staging.")] = "",
    target_env: Annotated[str, typer.Option("--to", help="The env to deploy it to, e.g. "
                                            "prod.")] = "",
    message: MessageOpt = None,
    yes: YesOpt = False,
    accept_risk: AcceptRiskOpt = None,
    no_verify: NoVerifyOpt = False,
    wait_timeout: WaitOpt = 300,
    poll_interval: PollOpt = 10,
    json_output: JsonOpt = False,
) -> None:
    """Ship to --to exactly the image serving in --from, copied by digest: no build.

    The serving release of --from must be good; its image is copied into --to's registry
    (no Docker), deployed, and kept until `up --unpin`."""
    from stx_pulumi.cli.options import confirm_protected
    from stx_pulumi.cloud import google, registry
    from stx_pulumi.errors import PrerequisiteError
    from stx_pulumi.model import releases
    from stx_pulumi.model.releases import RELEASE_TAG
    from stx_pulumi.ops.scan import gate, noted

    check_wait(wait_timeout, poll_interval)
    if not source or not target_env or source == target_env:
        raise InputError("--from/--to: give two different envs, e.g. --from staging --to prod")
    _, _, _, serving = _releases(app_name, source)
    if serving is None or not serving.good:
        raise InputError(f"--from: {source} has no good release serving (deployed and "
                         "verified): nothing to promote")
    target, _ = load_spec_for(app_name, DeployOptions(env=target_env), {}, (),
                              placeholder=True)
    ws, _ = stack_ref(app_name, target_env)
    engine, _ = open_engine(ws, quiet=True)
    if not engine.exists(target.stack):  # before anything is copied: exit 2 changes nothing
        raise InputError(f"--to: {target.stack} is not deployed: deploy it once with "
                         f"`stx-pulumi up {target.app} --env {target_env}`")
    if target.protected:
        confirm_protected(target.stack, yes, "promote to")
    client = google.required(os.environ)
    record = releases.history(engine.outputs(target.stack), {})
    number = (record[-1].n if record else 0) + 1
    # the target's own registry, on its own host (another region is another host)
    path = f"{target.registry}/{target.project}/{target.repository_id}/{target.app}"
    if not json_output:
        render.info(f"copying release {serving.n} of {app_name or target.app}.{source} "
                    f"({serving.digest.rsplit('@', 1)[1][:19]}…) to {path}")
    try:
        digest = registry.copy(client, serving.digest, path, tag=f"{RELEASE_TAG}{number}")
    except registry.RegistryError as err:
        raise PrerequisiteError(f"the registry refused the copy: {err}") from None
    pin = {"release": number, "digest": digest, "revisions": {}, "tag": serving.tag}
    judged = gate(target, digest, accept_risk, render) if target.protected else None
    deploy_app(app_name, DeployOptions(env=target_env), {"stx:pin": pin}, ("pin",), yes=True,
               message=message or f"promote release {serving.n} from {source}",
               json_output=json_output, kind="promote", verify=not no_verify,
               wait=(wait_timeout, poll_interval), noted=noted(judged, accept_risk))
