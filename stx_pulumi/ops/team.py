"""`team setup` above the engine: the team's spec from the options, the team stack file and the
apps' stack files; the team stack run where it lives; then, the first time, every stack moved
into the team's bucket with its secrets on the team's KMS key, and the workspace switched.

Nothing is switched unless every stack moved and checked: a failure leaves the workspace on
its old backend, whose stacks stay as they were (and stay there afterwards, as a backup).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stx_pulumi.errors import InputError, StxError
from stx_pulumi.model.team import TEAM_PROJECT, TEAM_STACK, GitHubRepo, TeamSpec, check
from stx_pulumi.workspace import Workspace

if TYPE_CHECKING:
    from stx_pulumi.engine.stacks import Engine


def team_spec(ws: Workspace, environ: Mapping[str, str], *, project: str | None,
              region: str | None, github: str | None, members: tuple[str, ...]
              ) -> tuple[TeamSpec, list[tuple[str, str]]]:
    """The spec from the options, else the team stack file (a teammate's clone needs no
    option), else this machine's defaults; and the settings to record after success."""
    from stx_pulumi.workspace import DEFAULT_REGION, default_project, local_defaults

    saved = _saved(ws)
    project = project or saved.get("gcp:project") or default_project(environ, ws)
    if not project:
        raise InputError("--project: no Google Cloud project: pass --project (the team stack "
                         "file records it afterwards)")
    region = region or saved.get("gcp:region") or local_defaults(ws, None).get(
        "region") or DEFAULT_REGION
    check(project, region, github, members)
    for option, key, value in (("--project", "gcp:project", project),
                               ("--region", "gcp:region", region)):
        if saved.get(key) and saved[key] != value:  # a new bucket and key: never by accident
            raise InputError(f"{option}: the team's bucket and key are in {saved[key]}, not "
                             f"{value}; a team has one (leave {option} out)")
    repo = None
    name = github or saved.get("team:github")
    if name:
        same = name.lower() == saved.get("team:github", "").lower()
        repo = (GitHubRepo(saved["team:github"], int(saved["team:githubId"]),
                           saved.get("team:defaultBranch") or "main")
                if same and saved.get("team:githubId") else _lookup(name, environ))
    members = tuple(sorted({*_list(saved.get("team:members")), *members}))
    protected, secrets = _from_stacks(ws)
    protected |= {"prod", *_list(saved.get("team:protectedEnvs"))}
    spec = TeamSpec(project, region, repo, tuple(sorted(protected)), members,
                    tuple(sorted(secrets)))
    config = [("gcp:project", project), ("gcp:region", region),
              ("team:protectedEnvs", ",".join(spec.protected_envs))]
    if members:
        config.append(("team:members", ",".join(members)))
    if repo is not None:
        config += [("team:github", repo.name), ("team:githubId", str(repo.id)),
                   ("team:defaultBranch", repo.default_branch)]
    return spec, config


def _saved(ws: Workspace) -> dict[str, str]:
    """The team stack file's settings, each checked as its option would be: they reach the
    identity provider's condition, IAM members and the workflow (exit 2 naming the file)."""
    from stx_pulumi.model.names import env_problem
    from stx_pulumi.model.team import REPO_RE, branch_problem, member_problem

    file = ws.team_files.stack_file(TEAM_STACK)
    saved = {k: str(v) for k, v in ws.team_files.stack_config(TEAM_STACK).items()}
    problems = [*(env_problem(e) for e in _list(saved.get("team:protectedEnvs"))),
                *(member_problem(m) for m in _list(saved.get("team:members")))]
    if saved.get("team:defaultBranch"):
        problems.append(branch_problem(saved["team:defaultBranch"]))
    if saved.get("team:githubId") and not (saved["team:githubId"].isascii()
                                           and saved["team:githubId"].isdigit()):
        problems.append(f"{saved['team:githubId'][:40]!r} is not a repository id (digits)")
    if saved.get("team:github") and not REPO_RE.fullmatch(saved["team:github"]):
        problems.append(f"{saved['team:github'][:80]!r} is not a repository (owner/name)")
    found = [p for p in problems if p]
    if found:
        raise InputError(f"{file}: {found[0]}")
    return saved


def _from_stacks(ws: Workspace) -> tuple[set[str], set[str]]:
    """The protected envs and the referenced secrets of the workspace's stack files."""
    from stx_pulumi.model.build import is_protected
    from stx_pulumi.model.names import SECRET_REF_RE, split_stack_name

    protected, secrets = set(), set()
    for stack in ws.stack_names():
        config = ws.stack_config(stack)
        env = split_stack_name(stack)[1]
        if env and is_protected(config, env):
            protected.add(env)
        refs = config.get("stx:secretEnv")
        refs = json.loads(refs) if isinstance(refs, str) and refs.strip() else refs
        for ref in (refs or {}).values() if isinstance(refs, Mapping) else ():
            match = SECRET_REF_RE.fullmatch(str(ref))
            if match:
                secrets.add(match.group(1))
    return protected, secrets


def _lookup(name: str, environ: Mapping[str, str]) -> GitHubRepo:
    from stx_pulumi.cloud.github import repository

    return repository(name, environ)


def _list(text: str | None) -> list[str]:
    return [x for x in (text or "").split(",") if x]


@dataclass
class Outcome:
    """What `team setup` did (or, dry, would do)."""

    backend: str
    secrets_provider: str
    team_changes: dict[str, int]
    outputs: dict[str, Any]
    moved: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    switched: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.moved or self.switched or any(
            n for k, n in self.team_changes.items() if k != "same"))


def setup(ws: Workspace, environ: Mapping[str, str], spec: TeamSpec,
          config: list[tuple[str, str]], *, dry_run: bool = False,
          on_event: Any = None, say: Callable[[str], None] = lambda _: None) -> Outcome:
    """Run the team stack, move every stack into its bucket, switch the workspace."""
    from stx_pulumi.workspace import create_team_files, create_workspace

    if not ws.exists:
        if dry_run:
            raise InputError(f"--dry-run: {ws.root} is no workspace yet and a dry run makes "
                             "none: run `stx-pulumi init` first")
        ws = create_workspace(ws.root)
    made = not ws.team_files.root.exists()
    try:
        return _setup(ws, environ, spec, config, create_team_files(ws), dry_run=dry_run,
                      on_event=on_event, say=say)
    finally:
        if dry_run and made:  # a dry run leaves no team folder behind
            import shutil

            shutil.rmtree(ws.team_files.root, ignore_errors=True)


def _setup(ws: Workspace, environ: Mapping[str, str], spec: TeamSpec,
           config: list[tuple[str, str]], files: Workspace, *, dry_run: bool, on_event: Any,
           say: Callable[[str], None]) -> Outcome:
    from stx_pulumi.engine.move import move
    from stx_pulumi.engine.stacks import Engine

    here_url = ws.backend_url(environ)
    moving = here_url != spec.backend_url and not dry_run
    staged, staged_team = _stage(ws, files) if moving else (ws, files)
    team_here = Engine(ws, environ, on_event, project=TEAM_PROJECT, files=files)
    cli = team_here.command  # one `pulumi version` for the four engines
    team_there = Engine(ws, environ, on_event, project=TEAM_PROJECT, files=staged_team,
                        backend=spec.backend_url, command=cli)
    home = team_there if here_url == spec.backend_url or _has_team(team_there) else team_here
    say(f"team stack in {home.backend}")
    result = home.team_up(spec, config, preview=dry_run)
    if moving and home is team_here:  # its settings were just written beside the old backend
        import shutil

        shutil.copy(files.stack_file(TEAM_STACK), staged_team.stack_file(TEAM_STACK))
    outcome = Outcome(spec.backend_url, spec.secrets_provider, result.changes, result.outputs)
    if home is team_there and here_url == spec.backend_url:
        return outcome
    apps_here = Engine(ws, environ, on_event, command=cli)
    names = apps_here.stack_names()
    if dry_run:
        outcome.moved = ([] if home is team_there else [f"team ({TEAM_PROJECT})"]) + names
        outcome.switched = True
        return outcome
    apps_there = Engine(ws, environ, on_event, backend=spec.backend_url, command=cli,
                        files=staged)
    moves = [(TEAM_STACK, team_here, team_there)] if home is team_here else []
    try:
        for name, here, there in [*moves, *((n, apps_here, apps_there) for n in names)]:
            shown = f"team ({TEAM_PROJECT})" if here is team_here else name
            say(f"moving {shown} into {spec.backend_url}")
            done = move(here, name, there, spec.secrets_provider)
            (outcome.moved if done else outcome.already).append(shown)
    except StxError as err:
        err.hint = (f"the workspace stays on {here_url} (its stacks as they were); run "
                    "`stx-pulumi team setup` again to finish the move")
        raise
    _switch(ws, files, staged, staged_team, spec)
    outcome.switched = True
    return outcome


def _stage(ws: Workspace, files: Workspace) -> tuple[Workspace, Workspace]:
    """Copies of the workspace's and the team's Pulumi.yaml and stack files where the move
    writes (a new stack's salt, the KMS key): the workspace's own files, which the old
    backend's stacks are read with, stay as they are until the switch. Kept across runs (a
    move cut short resumes with the copies that match what the bucket holds)."""
    import shutil

    from stx_pulumi.model.team import TEAM_DIR
    from stx_pulumi.workspace import MOVE_DIR

    root = ws.root / MOVE_DIR
    for source, target in ((ws.root, root), (files.root, root / TEAM_DIR)):
        (target / "stacks").mkdir(parents=True, exist_ok=True)
        shutil.copy(source / "Pulumi.yaml", target / "Pulumi.yaml")
        for file in sorted((source / "stacks").glob("Pulumi.*.yaml")):
            if not (target / "stacks" / file.name).exists():
                shutil.copy(file, target / "stacks" / file.name)
    return Workspace(root), Workspace(root / TEAM_DIR)


def _switch(ws: Workspace, files: Workspace, staged: Workspace, staged_team: Workspace,
            spec: TeamSpec) -> None:
    """The moved stacks' files put in place, then Pulumi.yaml switched: a few renames, with
    Ctrl-C held back meanwhile (a run killed even so is finished by the next `team setup`)."""
    import os
    import shutil
    import signal

    from stx_pulumi.workspace import set_backend

    held = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
    try:
        for source, target in ((staged, ws), (staged_team, files)):
            for file in sorted(source.stacks_dir.glob("Pulumi.*.yaml")):
                os.replace(file, target.stacks_dir / file.name)
        set_backend(ws, spec.backend_url)
        if ws.settings().get("secretsProvider"):  # `init --secrets-provider` of this machine
            ws.save_settings(secretsProvider=spec.secrets_provider)
    finally:
        if held is not None:
            signal.signal(signal.SIGINT, held)
    shutil.rmtree(staged.root, ignore_errors=True)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _has_team(engine: Engine) -> bool:
    """Whether the team's bucket exists and holds the team stack (a teammate's clone, or a
    setup whose switch did not happen)."""
    try:
        return bool(engine.exists(TEAM_STACK))
    except StxError:
        return False
