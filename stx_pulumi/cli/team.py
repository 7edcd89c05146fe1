"""The team: `team setup` (shared state bucket, KMS secrets, keyless GitHub identity) and
`ci github` (the workflow that deploys with it)."""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stx_pulumi import render
from stx_pulumi.cli.options import JsonOpt, app, command
from stx_pulumi.errors import InputError, PrerequisiteError, shown

if TYPE_CHECKING:
    from stx_pulumi.model.workflow import WorkflowSpec
    from stx_pulumi.workspace import Workspace

team_app = typer.Typer(help="The team's shared state, secrets key and CI identity.",
                       no_args_is_help=True)
app.add_typer(team_app, name="team")
ci_app = typer.Typer(help="Deploy from CI.", no_args_is_help=True)
app.add_typer(ci_app, name="ci")

SEARCH_CONSOLE = "https://search.google.com/search-console/users"


@command("setup", target=team_app)
def team_setup(
    project: Annotated[str | None, typer.Option(
        "--project", help="Google Cloud project of the team's bucket, key and accounts. "
        "Default: the team stack file's, else this machine's.")] = None,
    region: Annotated[str | None, typer.Option(
        "--region", help="Location of the bucket and key. Default: the team stack file's, "
        "else europe-west1.")] = None,
    github: Annotated[str | None, typer.Option(
        "--github", help="owner/repo whose workflows may deploy (keyless, through Workload "
        "Identity Federation).")] = None,
    member: Annotated[list[str] | None, typer.Option(
        "--member", help="A person or group who deploys from their machine, e.g. "
        "user:ana@example.com: gets the bucket and the key; repeatable.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what would be created, moved and switched; change nothing."
    )] = False,
    json_output: JsonOpt = False,
) -> None:
    """A shared state bucket and KMS secrets key for the team (and with --github, keyless
    deploys from GitHub Actions); then every stack moves into the bucket, nothing lost.

    Idempotent: a teammate's fresh clone runs it again and changes nothing."""
    from stx_pulumi.model.team import DEPLOYER
    from stx_pulumi.ops import team as teamwork
    from stx_pulumi.workspace import locate_workspace

    ws = locate_workspace(Path.cwd(), os.environ)
    if os.environ.get("PULUMI_BACKEND_URL"):
        render.warning("PULUMI_BACKEND_URL is set and wins over Pulumi.yaml's backend: unset "
                       "it once the team's bucket is recorded there")
    spec, config = teamwork.team_spec(ws, os.environ, project=project, region=region,
                                      github=github, members=tuple(member or ()))
    progress = render.Progress("team setup", preview=dry_run)  # a dry run creates nothing
    with progress:
        outcome = teamwork.setup(ws, os.environ, spec, config, dry_run=dry_run,
                                 on_event=progress, say=render.info)
    after = [] if dry_run else [
        "commit Pulumi.yaml, team/ and stacks/: a teammate's clone then finds the team"]
    if spec.github is not None and not dry_run:
        after = [f"custom domains: add {spec.email(DEPLOYER)} as an owner of each domain in "
                 f"Search Console ({SEARCH_CONSOLE}), so it may map them",
                 "run `stx-pulumi ci github` for the workflow", *after]
    if json_output:
        render.print_json({**outcome.__dict__, "dry_run": dry_run,
                           "changed": outcome.changed, "next": after})
        return
    render.team_outcome(outcome, dry_run)
    for line in after:
        render.info(f"next: {line}")


@command("github", target=ci_app)
def ci_github(
    apps: Annotated[list[str] | None, typer.Option(
        "--apps", help="Only these apps (repeatable). Default: every app of each env.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace a generated block that was edited by hand.")] = False,
    install: Annotated[str | None, typer.Option(
        "--install", help="What the workflow installs with pip: a requirement "
        "(stx-pulumi==0.2.0), a git URL (git+https://github.com/ORG/stx-pulumi@TAG) or a path "
        "in the repository (./tools/stx-pulumi). Default: this exact version from PyPI.")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Write .github/workflows/stx-pulumi.yml: previews on pull requests, the changed apps
    deployed on pushes, protected envs deployed by hand (DEPLOY and a reason)."""
    from stx_pulumi.model import workflow
    from stx_pulumi.workspace import locate_workspace

    if install is not None and not workflow.SAFE_RE.fullmatch(install):
        raise InputError(f"--install: {shown(install)} is not a requirement, git URL or path "
                         "(letters, digits and @._/:=<>~+- only)")
    ws = locate_workspace(Path.cwd(), os.environ)
    spec, root = _workflow_spec(ws, tuple(apps or ()), install)
    if not (root / ".git").exists():
        render.warning(f"{ws.root} is in no git repository: the workflow is written there; "
                       "move .github/ to the repository's root")
    file = root / workflow.WORKFLOW_FILE
    text = workflow.render(spec, file.read_text(encoding="utf-8") if file.is_file() else None,
                           force)
    written = []
    if not file.is_file() or file.read_text(encoding="utf-8") != text:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
        written.append(workflow.WORKFLOW_FILE)
    bot = root / workflow.DEPENDABOT_FILE
    if not bot.is_file():
        bot.write_text(workflow.DEPENDABOT, encoding="utf-8")
        written.append(workflow.DEPENDABOT_FILE)
    elif "github-actions" not in bot.read_text(encoding="utf-8"):
        render.warning(f"{workflow.DEPENDABOT_FILE} does not update github-actions: add it so "
                       "the pinned actions stay current")
    if json_output:
        render.print_json({"written": written, "workflow": workflow.WORKFLOW_FILE,
                           "envs": list(spec.envs), "protected": list(spec.protected)})
        return
    for name in written:
        render.info(f"wrote {name}")
    if not written:
        render.info(f"{workflow.WORKFLOW_FILE} is up to date")
    render.info(f"pushes to {spec.default_branch} deploy the changed apps of "
                f"{', '.join(spec.envs) or 'no env'}; {', '.join(spec.protected)} only by hand "
                "(Actions → stx-pulumi → Run workflow)")
    render.info(f"in GitHub: Settings → Environments → add {', '.join(spec.protected)} with "
                "required reviewers")


def _workflow_spec(ws: "Workspace", apps: tuple[str, ...], install: str | None = None
                   ) -> tuple["WorkflowSpec", Path]:
    """The workflow's spec from the stack files (envs, apps) and the team stack's outputs
    (identity, protected envs), and the repository root it goes in."""
    from stx_pulumi.engine.stacks import Engine
    from stx_pulumi.model.names import split_stack_name
    from stx_pulumi.model.team import TEAM_PROJECT, TEAM_STACK
    from stx_pulumi.model.workflow import WorkflowSpec

    stacks = ws.stack_names()
    known = {split_stack_name(s)[0] for s in stacks}
    for name in apps:
        if name not in known:
            raise InputError(f"--apps: {shown(name)} has no stack file in {ws.stacks_dir} (apps: "
                             f"{', '.join(sorted(known)) or 'none'})")
    if not ws.team_files.stack_file(TEAM_STACK).is_file():
        raise PrerequisiteError("no team stack in this workspace",
                                hint="run `stx-pulumi team setup --project P --github "
                                "owner/repo` first")
    team = Engine(ws, os.environ, project=TEAM_PROJECT, files=ws.team_files).outputs(TEAM_STACK)
    if not team.get("workloadIdentityProvider"):
        raise InputError("--github: the team stack has no GitHub identity: run `stx-pulumi "
                         "team setup --github owner/repo` first")
    protected = tuple(team.get("protectedEnvs") or ("prod",))
    root = ws.repository_root()
    return WorkflowSpec(
        provider=team["workloadIdentityProvider"], deployer=team["deployer"],
        previewer=team["previewer"], default_branch=team.get("defaultBranch") or "main",
        envs=tuple(sorted({split_stack_name(s)[1] for s in stacks} - set(protected))),
        protected=protected, apps=apps, install=install or f"stx-pulumi=={_version()}",
        directory=Path(os.path.relpath(ws.root, root)).as_posix()), root


def _version() -> str:
    from importlib.metadata import version

    return version("stx-pulumi")
