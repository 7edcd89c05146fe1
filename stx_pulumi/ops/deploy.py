"""The `up` use case: refusals, the builder decided, the preflight, the cloud build, the update,
the settings written, verification and the release record. It reports through a `Reporter`
and never prints; the CLI loads the spec and opens the engine."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stx_pulumi.errors import InputError, StxError
from stx_pulumi.model.spec import AppSpec, Build
from stx_pulumi.ops.scan import gate, noted

if TYPE_CHECKING:
    from stx_pulumi.engine.stacks import Engine
    from stx_pulumi.engine.state import Deployed, OperationResult
    from stx_pulumi.model.scan import Judgement
    from stx_pulumi.ops.fleet import Turn
    from stx_pulumi.ops.report import Reporter, Watch
    from stx_pulumi.ops.verify import Verification
    from stx_pulumi.workspace import Workspace


@dataclass(frozen=True)
class UpRequest:
    """What the user asked of an `up` besides the spec: `changed_only` skips an app whose
    last release deployed this image tag with these settings; `kind` is recorded with the
    release (up, rollback, promote)."""

    yes: bool = False
    accept_risk: str | None = None  # a protected env's image that is not clean goes ahead
    noted: Mapping[str, str] | None = None  # kept in the release record (promote's gate)
    message: str | None = None
    verify: bool = True
    skip_checks: bool = False
    wait: tuple[float, float] = (300, 10)
    kind: str = "up"
    changed_only: bool = False
    unset: Sequence[str] = ()


@dataclass
class UpOutcome:
    spec: AppSpec
    result: OperationResult
    verification: Verification | None = None


def up(spec: AppSpec, ws: Workspace, engine: Engine, watch: Watch, request: UpRequest,
       overrides: Mapping[str, Any], report: Reporter, *, build_turn: Turn | None = None,
       stop: threading.Event | None = None) -> UpOutcome:
    """Checks, the update, then the settings written, then verification."""
    from stx_pulumi.model.cost import over_budget
    from stx_pulumi.model.jobs import needs_cleaning
    from stx_pulumi.model.prices import Prices
    from stx_pulumi.workspace import config_updates, moved_settings

    budget = over_budget(spec, Prices())
    if budget and not request.yes:
        raise InputError(budget)
    config = ws.stack_config(spec.stack)
    moved = moved_settings(spec, config)
    if moved and not request.yes:
        raise InputError(f"{moved}: pass --yes to go ahead")
    updates, notices = config_updates(spec, overrides, config, ws)
    deployed, build = _checked(engine, spec, request, report)
    skipped = engine.unchanged(spec) if request.changed_only and not updates else None
    if skipped is not None:
        if build_turn is not None:
            build_turn.give_back()
        report.info(f"{spec.stack}: unchanged (image {spec.image_tag} and settings as "
                    "deployed): nothing to do")
        return UpOutcome(spec, skipped)
    check_names(engine, ws, spec, deployed)
    for notice in ceiling_changes(spec, deployed.ceilings):
        report.info(notice)
    if needs_cleaning(spec, deployed.resources):
        _clean_rights(spec, deployed, report)
    engine.prepare()
    passphrase_notice(engine, report)
    for notice in notices:
        report.info(notice)
    build = _image(engine, ws, spec, deployed, build, watch, report, stop, request.kind)
    judged = _gated(engine, spec, deployed, build, request, watch, report, stop)
    result = _update(engine, spec, build, updates, request, config, watch, build_turn,
                     {**(request.noted or {}), **noted(judged, request.accept_risk)})
    for notice in result.notices:
        report.info(notice)
    if not request.verify:
        return UpOutcome(spec, result)
    verification = verify(spec.stack, result.outputs, request.wait, report, stop)
    _record(engine, spec, result.outputs, verification, report)
    return UpOutcome(spec, result, verification)


def _checked(engine: Engine, spec: AppSpec, request: UpRequest, report: Reporter
             ) -> tuple[Deployed, Build]:
    """The deployed state read and the preflight run at once; the refusals, and the builder
    decided (the checks wait for it: it is decided whatever happens)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        reading = pool.submit(engine.deployed, spec.stack)
        resolved: Future[Build] = Future()
        checking = None if request.skip_checks else pool.submit(
            _preflight, engine, spec, reading, resolved)
        build = Build.of(spec)
        try:
            deployed = reading.result()
            refusals(spec, deployed, request.yes)
            build = builder(spec, deployed, report)
        finally:
            resolved.set_result(build)
        if checking is not None:  # exit 3 before the engine starts: nothing half-created
            checking.result()
    return deployed, build


def _image(engine: Engine, ws: Workspace, spec: AppSpec, deployed: Deployed, build: Build,
           watch: Watch, report: Reporter, stop: threading.Event | None, kind: str = "up"
           ) -> Build:
    """Where the services' image comes from, said before the update; a cloud build done."""
    if spec.pin is not None:
        n = spec.pin.release
        what = {"promote": f"release {n} promoted", "rollback": f"rolled back to release {n}"
                }.get(kind, f"pinned to release {n}")
        image = f" (image {spec.pin.tag})" if spec.pin.tag else ""
        report.info(f"{what}{image}: the source is not built (`up --unpin` deploys it)")
    elif build.builder == "cloud":
        return cloud_build(engine, spec, deployed, watch, report, stop)
    elif not builds(spec, deployed):
        report.info(f"{spec.image_tag} is deployed already: nothing to build")
    else:
        report.info(f"building {ws.relative(spec.source)} as {spec.image_tag}")
    return build


def _gated(engine: Engine, spec: AppSpec, deployed: Deployed, build: Build,
           request: UpRequest, watch: Watch, report: Reporter,
           stop: threading.Event | None) -> Judgement | None:
    """A protected env's new image scanned before it serves (ops.scan): Cloud Build's as
    built, a local build's pushed alone first. None when nothing new would serve (a pin, or
    the tag of the release serving: it was judged when it was deployed) or the env is not
    protected. An image pushed by a refused `up` is judged again: being in the registry is not
    serving."""
    serving = (deployed.last_release or {}).get("tag")
    if not spec.protected or spec.pin is not None or serving == spec.image_tag:
        return None
    if build.builder == "cloud" and build.image:
        image = build.image
    else:
        report.info("protected env: the image is pushed first and scanned before it serves")
        with watch:
            image = engine.push_image(spec, build)
        watch.clear()
    return gate(spec, image, request.accept_risk, report, stop)


def _update(engine: Engine, spec: AppSpec, build: Build, updates: list[tuple[str, str]],
            request: UpRequest, config: Mapping[str, Any], watch: Watch,
            build_turn: Turn | None, noted: Mapping[str, str] | None = None
            ) -> OperationResult:
    from stx_pulumi.workspace import drop_setting, unset_keys

    token = os.environ.get("CLOUDFLARE_API_TOKEN") if spec.cloudflare_dns else None
    removed = [k for k in unset_keys(request.unset) if drop_setting(dict(config), k)]
    removed += [f"stx:events.{name}" for name in spec.expired]  # windows over
    with watch:
        return engine.up(spec, build, updates, removed, request.message, token, request.kind,
                         build_turn, noted)


def preview_build(spec: AppSpec, ws: Workspace, engine: Engine, report: Reporter) -> Build:
    """Where a preview's image comes from: what is built where depends on what is deployed
    (a cloud-built image serving this tag is not built again)."""
    deployed = engine.deployed(spec.stack)
    build = builder(spec, deployed, report)
    if build.builder == "cloud":
        build = Build("cloud", deployed.built(spec.image_tag))
    if spec.pin is None and not build.image and builds(spec, deployed):
        where = " in Cloud Build" if build.builder == "cloud" else ""
        report.info(f"building {ws.relative(spec.source)} as {spec.image_tag}{where}")
    return build


def builds(spec: AppSpec, deployed: Deployed) -> bool:
    """Whether this update builds the image: a new tag, or the same tag from another folder
    (the image's context input changes; an absolute path of this same folder is kept, as
    the engine's migration keeps it)."""
    if deployed.image_tag != spec.image_tag or not deployed.context:
        return True
    recorded = Path(deployed.context)
    same = recorded.is_absolute() and recorded.resolve() == spec.source
    return not same and deployed.context != spec.build_context


def refusals(spec: AppSpec, deployed: Deployed, yes: bool) -> None:
    """What a deployed stack makes an `up` refuse without --yes: another container port, or
    services it would delete."""
    if deployed.port and deployed.port != spec.port and not yes:
        raise InputError(f"the container port changes from {deployed.port} to {spec.port} "
                         f"({spec.serve_mode}, as the Dockerfile or --serve-mode/--port now "
                         "say): the service would be served on the new port; pass --yes to "
                         "go ahead")
    gone = sorted(set(deployed.services) - {svc.name for svc in spec.services})
    if gone and not yes:
        raise InputError(f"this update deletes the service(s) {', '.join(gone)} (no longer in "
                         "the stack's books or app): their URLs stop answering; pass --yes to "
                         "go ahead")


def _preflight(engine: Engine, spec: AppSpec, reading: Future[Deployed],
               resolved: Future[Build]) -> None:
    """The checks this `up` needs: no Docker when the tag is already deployed (a scale-only
    change builds nothing) or Cloud Build builds it (`resolved`: the builder decided)."""
    from stx_pulumi.model.checks import PASS, SKIP, Check
    from stx_pulumi.ops.doctor import docker_check, require

    def docker() -> Check:
        if resolved.result().builder == "cloud":
            return Check("docker", SKIP, "the cloud builder needs no Docker")
        if reading.result().image_tag == spec.image_tag:
            return Check("docker", SKIP, f"nothing to build: {spec.image_tag} is deployed")
        return docker_check(os.environ)

    require(engine.ws, spec, os.environ, docker=docker, pulumi=lambda: Check(
        "pulumi", PASS, f"Pulumi CLI {engine.command.version}"))


def builder(spec: AppSpec, deployed: Deployed, report: Reporter) -> Build:
    """`auto` decided: the builder of what is deployed when nothing is to be built (a
    scale-only change or a pin), else local when a Docker daemon answers, else cloud."""
    from stx_pulumi.model.checks import PASS
    from stx_pulumi.model.rules import upload_problem
    from stx_pulumi.ops.doctor import docker_check

    if spec.builder != "auto":
        return Build.of(spec)
    if spec.pin is not None or deployed.built(spec.image_tag):
        cloud_made = set(spec.build_base_names) <= deployed.resources
        return Build("cloud" if cloud_made else "local")
    if deployed.image_tag == spec.image_tag or docker_check(os.environ).status == PASS:
        return Build("local")
    problem = upload_problem(spec)
    if problem:
        raise InputError(f"{problem} (no Docker daemon answers, so the image would be built "
                         "in Cloud Build)")
    report.info("no Docker daemon answers: the image is built in Cloud Build (`--builder "
                "local` insists on Docker)")
    return Build("cloud")


def cloud_build(engine: Engine, spec: AppSpec, deployed: Deployed, watch: Watch,
                report: Reporter, stop: threading.Event | None = None) -> Build:
    """The image Cloud Build made of the spec's tag: built now (the registry and build
    account made first on the first build), or the one already built and serving."""
    from stx_pulumi.cloud import cloudbuild, google
    from stx_pulumi.source import docker_context

    built = deployed.built(spec.image_tag)
    if built:
        report.info(f"{spec.image_tag} was built in Cloud Build already: nothing to build")
        return Build("cloud", built)
    if not set(spec.build_base_names) <= deployed.resources:
        report.info("first cloud build: the registry, staging bucket and build account are "
                    "made first")
        with watch:
            engine.prepare_build(spec)
        watch.clear()  # the update that follows has its own
    client = google.required(os.environ)
    files = docker_context(spec.source)
    report.info(f"uploading {spec.context or spec.source} ({len(files)} files) to "
                f"gs://{spec.staging_bucket}")
    return Build("cloud", cloudbuild.build(client, spec, files, on_progress=report.info,
                                           stop=stop))


def passphrase_notice(engine: Engine, report: Reporter) -> None:
    if engine.new_passphrase:
        report.info(f"generated a secrets passphrase in {engine.passphrase_file()}: back it "
                    "up; without it this workspace's secrets cannot be decrypted")


def verify(stack: str, outputs: dict[str, Any], wait: tuple[float, float], report: Reporter,
           stop: threading.Event | None = None) -> Verification:
    """The deployed services checked; an interrupt is an error that says the deployment
    itself is done."""
    from stx_pulumi.model.names import split_stack_name
    from stx_pulumi.ops.verify import verify_stack

    try:
        return verify_stack(stack, outputs, timeout_s=wait[0], interval_s=wait[1],
                            environ=os.environ, on_progress=report.info, stop=stop)
    except KeyboardInterrupt:
        app, env = split_stack_name(stack)
        raise StxError(f"interrupted during the verification of {stack}: the deployment "
                       "itself is done", hint=f"check it later with `stx-pulumi verify "
                       f"{app} --env {env}`") from None


def check_names(engine: Engine, ws: Workspace, spec: AppSpec, deployed: Deployed) -> None:
    """Before a service is made: no other stack of the backend (or stack file of the
    workspace) claims its name. `up course-intro` would otherwise take over book intro of
    app course, and `--env course-dev` of app hello app hello-course's dev service."""
    from stx_pulumi.model.names import claimed_names, split_stack_name

    mine = claimed_names(spec.app, spec.env, [svc.book for svc in spec.books if svc.book])
    new = set(mine) - set(deployed.services)
    if not new:
        return
    for stack in sorted({*ws.stack_names(), *engine.stack_names()} - {spec.stack}):
        app, env = split_stack_name(stack)
        books = (ws.stack_config(stack).get("stx:books") or {}) if (
            ws.stack_file(stack).is_file()) else {}
        for name, owner in claimed_names(app, env, books if isinstance(books, dict) else {}
                                         ).items():
            if name in new:
                raise InputError(f"the Cloud Run service {name} of {spec.stack} would also be "
                                 f"{owner}: names must be unique in the backend; choose "
                                 "another app, book or env name")


def ceiling_changes(spec: AppSpec, ceilings: Mapping[str, int | None]) -> list[str]:
    """Where this update moves a deployed service's revision ceiling (the peak of its base and
    windows above Cloud Run's default of 100): that makes a new revision, so say so."""
    from stx_pulumi.model.capacity import revision_ceiling

    notes = []
    for svc in spec.services:
        if svc.name not in ceilings:
            continue
        old, new = ceilings[svc.name], revision_ceiling(spec.peak(svc))
        if old != new:
            notes.append(f"{svc.name}: the revision ceiling goes from {old or 'the default 100'}"
                         f" to {new or 'the default 100'} (the most its base and windows ask):"
                         " this up makes a new revision")
    return notes


def _clean_rights(spec: AppSpec, deployed: Deployed, report: Reporter) -> None:
    """An earlier release's event windows left conditional bindings on the services that
    nothing tracks (its create failed after writing them): removed before the update, so the
    provider's later policy changes on these services work again."""
    from stx_pulumi.cloud import google
    from stx_pulumi.errors import GoogleError
    from stx_pulumi.model import jobs

    services = {*deployed.services, *(svc.name for svc in spec.services)}
    try:
        cleaned = jobs.clean(spec, google.connect(os.environ), services)
    except GoogleError as err:
        report.warning(f"could not look for the conditional rights an earlier release left on "
                       f"{', '.join(sorted(services))} ({err}): `stx-pulumi event test` "
                       "shows them")
        return
    for service in cleaned:
        report.info(f"{service}: removed the conditional scheduler rights an earlier release "
                    "left on it")


def _record(engine: Engine, spec: AppSpec, outputs: dict[str, Any],
            verification: Verification, report: Reporter) -> None:
    """Keep whether this release verified (a good release is deployed and verified), and tag
    its image rel-<n> so the registry's cleanup keeps what rollback offers."""
    from stx_pulumi.cloud import google
    from stx_pulumi.errors import GoogleError

    records = outputs.get("releases") or []
    if not records:
        return
    latest = records[-1]
    try:
        engine.record_verification(spec.stack, int(latest["n"]), not verification.failed,
                                   {int(r["n"]) for r in records if "n" in r})
    except StxError as err:
        report.warning(f"release {latest['n']}: verification not recorded: {err.message}")
    if spec.pin is not None or not latest.get("digest"):
        return  # a rollback's image is tagged already, a promoted one by its copy
    try:
        google.connect(os.environ).tag_image(str(latest["digest"]), f"rel-{latest['n']}")
    except GoogleError as err:
        report.warning(f"release {latest['n']}: image not tagged rel-{latest['n']} ({err}); "
                       "the registry's cleanup may delete it")
