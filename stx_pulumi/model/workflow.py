"""The GitHub Actions workflow `ci github` writes, made without Pulumi or the network.

Pull requests from the repository preview every env as the read-only previewer; pushes to the
default branch deploy the changed apps of each unprotected env; a protected env is deployed
only by hand (`workflow_dispatch`: the env, a typed DEPLOY and a reason) in its GitHub
environment. Keyless: google-github-actions/auth with the team stack's pool, provider and
accounts. Every action is pinned to a commit (`ACTIONS`; Dependabot keeps them current);
untrusted inputs reach the shell only through environment variables.

Names from the workspace (envs, apps, the branch, the folder) are checked where the spec is
made (`WorkflowSpec.__post_init__`: allow-lists, exit 2 naming each) and still never written
into a `run:` line: they reach the shell as `env:` values, every interpolated value quoted for
YAML (a JSON string is a YAML double-quoted scalar), so even a name the checks missed is inert.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass

from stx_pulumi.errors import InputError
from stx_pulumi.model.names import APP_RE, env_problem

WORKFLOW_FILE = ".github/workflows/stx-pulumi.yml"
DEPENDABOT_FILE = ".github/dependabot.yml"
# Pinned commits of the actions the workflow uses, with the release each one is. Dependabot
# (DEPENDABOT_FILE) proposes updates; a test checks every `uses:` is one of these.
ACTIONS = {
    "actions/checkout": ("08eba0b27e820071cde6df949e0beb9ba4906955", "v4.3.0"),
    "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
    "google-github-actions/auth": ("ba79af03959ebeac9769e648f473a284504d9193", "v2.1.10"),
}
PYTHON = "3.12"
RUNNER = "ubuntu-24.04"
BEGIN = "# >>> stx-pulumi"
END = "# <<< stx-pulumi"
MARK_RE = re.compile(r"^# >>> stx-pulumi .*sha256:([0-9a-f]{12})")
# What a value the workflow names may hold (an account, a provider path, a pip spec, a folder)
SAFE_RE = re.compile(r"^[A-Za-z0-9@._/:=<>~+-]{1,300}$")


def q(value: str) -> str:
    """`value` as a YAML scalar that is only ever that string."""
    return json.dumps(value)


@dataclass(frozen=True)
class WorkflowSpec:
    """What the workflow needs to know: the identity (team stack outputs), the envs, the apps."""

    provider: str  # projects/N/locations/global/workloadIdentityPools/P/providers/V
    deployer: str
    previewer: str
    default_branch: str
    envs: tuple[str, ...]  # deployed on push
    protected: tuple[str, ...]  # deployed by hand
    apps: tuple[str, ...] = ()  # none: every app of the env (--all)
    install: str = "stx-pulumi"
    directory: str = "."  # the workspace, relative to the repository root

    def __post_init__(self) -> None:
        from stx_pulumi.model.team import branch_problem

        checks = [(f"env {env!r}", env_problem(env)) for env in (*self.envs, *self.protected)]
        checks += [(f"app {app!r}", None if APP_RE.fullmatch(app) and len(app) <= 40 else
                    "not an app name (lowercase letters, digits or '-')") for app in self.apps]
        checks += [("defaultBranch", branch_problem(self.default_branch))]
        checks += [(name, None if value and SAFE_RE.fullmatch(value) else "not a plain name")
                   for name, value in (("the identity provider", self.provider),
                                       ("the deployer", self.deployer),
                                       ("the previewer", self.previewer),
                                       ("the install spec", self.install),
                                       ("the workspace folder", self.directory))]
        for what, problem in checks:
            if problem:
                raise InputError(f"ci github: {what}: {problem}"[:300])

    @property
    def project(self) -> str:
        """The team's project (the deployer account's)."""
        return self.deployer.partition("@")[2].split(".")[0]

    @property
    def targets(self) -> str:
        return " ".join(self.apps) if self.apps else "--all"


def uses(action: str) -> str:
    sha, release = ACTIONS[action]
    return f"{action}@{sha} # {release}"


def _setup(spec: WorkflowSpec, account: str) -> str:
    """Checkout, Python, keyless Google auth as `account`, stx-pulumi and the Pulumi CLI."""
    return f"""\
      - uses: {uses("actions/checkout")}
        with:
          persist-credentials: false
      - uses: {uses("actions/setup-python")}
        with:
          python-version: "{PYTHON}"
      - uses: {uses("google-github-actions/auth")}
        with:
          workload_identity_provider: {q(spec.provider)}
          service_account: {q(account)}
      - name: Install stx-pulumi and the Pulumi CLI
        env:
          INSTALL: {q(spec.install)}
        run: |
          python -m pip install "$INSTALL"
          stx-pulumi install-cli
"""


def _job(spec: WorkflowSpec, name: str, title: str, condition: str, account: str,
         extra: str = "", before: str = "", note: str = "") -> str:
    """One job: its condition, least permissions, the workspace folder, the setup as
    `account`; `extra` job keys (concurrency, environment), `before` steps ahead of setup,
    a `note` above its condition."""
    return f"""\
  {name}:
    name: {title}
{f"    # {note}{chr(10)}" if note else ""}    if: {condition}
    runs-on: {RUNNER}
{extra}    permissions:
      contents: read  # checkout
      id-token: write  # the OIDC token exchanged for Google credentials
    defaults:
      run:
        working-directory: {q(spec.directory)}
    steps:
{before}{_setup(spec, account)}"""


def _preview(spec: WorkflowSpec) -> str:
    """Pull requests from this repository (forks get no OIDC token): every env previewed as
    the previewer, into the job summary."""
    steps = "".join(f"""\
      - name: {q(f"Preview {env}")}
        env:
          STX_ENV: {q(env)}
          APPS: {q(spec.targets)}
        run: |
          {{ echo "### stx-pulumi preview --env $STX_ENV"; echo '```'
            stx-pulumi preview $APPS --env "$STX_ENV"; echo '```'; }} >> "$GITHUB_STEP_SUMMARY"
""" for env in (*spec.envs, *spec.protected))
    return _job(spec, "preview", "Preview", """>-
      github.event_name == 'pull_request'
      && github.event.pull_request.head.repo.full_name == github.repository""",
                spec.previewer, """\
    concurrency:
      group: stx-pulumi-preview-${{ github.event.pull_request.number }}
      cancel-in-progress: true
""", note="forks get no OIDC token: only pull requests from this repository preview") + steps


def _deploy(spec: WorkflowSpec, env: str) -> str:
    """Pushes to the default branch: the changed apps of an unprotected env."""
    job = "deploy-" + "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-"
                              for c in env)  # a job id: never more than its characters
    return _job(spec, job, q(f"Deploy {env}"), q(
        f"github.event_name == 'push' && github.ref == 'refs/heads/{spec.default_branch}'"),
        spec.deployer, f"""\
    concurrency:
      group: {q(f"stx-pulumi-{env}")}
      cancel-in-progress: false
""") + f"""\
      - name: {q(f"Deploy the changed apps of {env}")}
        env:
          STX_ENV: {q(env)}
          APPS: {q(spec.targets)}
          COMMIT: ${{{{ github.sha }}}}
        run: stx-pulumi up $APPS --changed --env "$STX_ENV" --message "push $COMMIT"
"""


def _by_hand(spec: WorkflowSpec) -> str:
    """A protected env, by hand: its GitHub environment (reviewers), a typed DEPLOY and a
    reason, checked before any credential is asked for."""
    return _job(spec, "deploy-protected", "Deploy a protected env", q(
                "github.event_name == 'workflow_dispatch' && "
                f"github.ref == 'refs/heads/{spec.default_branch}'"), spec.deployer, """\
    environment: ${{ inputs.environment }}
    concurrency:
      group: stx-pulumi-${{ inputs.environment }}
      cancel-in-progress: false
""", """\
      - name: Check the confirmation and the reason
        env:
          CONFIRM: ${{ inputs.confirm }}
          REASON: ${{ inputs.reason }}
        run: |
          [ "$CONFIRM" = "DEPLOY" ] || { echo "::error::type DEPLOY to confirm"; exit 1; }
          [ -n "${REASON// }" ] || { echo "::error::give a reason"; exit 1; }
""") + f"""\
      - name: Deploy
        env:
          STX_ENV: ${{{{ inputs.environment }}}}
          REASON: ${{{{ inputs.reason }}}}
          ACTOR: ${{{{ github.actor }}}}
          APPS: {q(spec.targets)}
        run: stx-pulumi up $APPS --env "$STX_ENV" --yes --message "$REASON (by $ACTOR)"
"""


def _dispatch(spec: WorkflowSpec) -> str:
    return f"""\
  workflow_dispatch:
    inputs:
      environment:
        description: The protected env to deploy
        type: choice
        options: [{", ".join(q(env) for env in spec.protected)}]
        required: true
      confirm:
        description: Type DEPLOY to confirm
        type: string
        required: true
      reason:
        description: Why (recorded as the update message)
        type: string
        required: true
"""


def body(spec: WorkflowSpec) -> str:
    """The generated workflow (between the markers)."""
    branch = spec.default_branch
    jobs = [_preview(spec), *(_deploy(spec, env) for env in spec.envs),
            *([_by_hand(spec)] if spec.protected else [])]
    return f"""\
name: stx-pulumi
on:
  pull_request:
    branches: [{q(branch)}]
  push:
    branches: [{q(branch)}]
{_dispatch(spec) if spec.protected else ""}permissions: {{}}
env:
  GOOGLE_CLOUD_PROJECT: {q(spec.project)}  # of a stack file that names none yet
  PULUMI_SKIP_UPDATE_CHECK: "true"
jobs:
""" + "".join(jobs)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def render(spec: WorkflowSpec, existing: str | None, force: bool = False) -> str:
    """The workflow file: the generated block (re-)written between its markers, the user's
    lines outside them kept. A block edited by hand is refused (InputError with the diff)
    unless `force`."""
    new = body(spec)
    block = (f"{BEGIN} generated by `stx-pulumi ci github` (sha256:{_digest(new)}): re-run it "
             f"to update;\n# edits between the markers are replaced, keep yours outside them.\n"
             f"{new}{END}\n")
    if not existing:
        return block
    lines = existing.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.startswith(BEGIN)), None)
    end = next((i for i, ln in enumerate(lines) if ln.startswith(END)), None)
    if start is None or end is None or end < start:
        raise InputError(f"{WORKFLOW_FILE}: exists without stx-pulumi's markers; move it away "
                         "or add its lines outside a generated block")
    mark = MARK_RE.match(lines[start])
    inside = "".join(lines[start + 2:end])
    if not force and (mark is None or mark.group(1) != _digest(inside)):
        diff = "".join(difflib.unified_diff(inside.splitlines(True), new.splitlines(True),
                                            "edited", "generated"))
        raise InputError(f"{WORKFLOW_FILE}: the generated block was edited by hand; move the "
                         f"edits outside the markers, or pass --force to replace it:\n{diff}")
    return "".join(lines[:start]) + block + "".join(lines[end + 1:])


DEPENDABOT = """\
# Keeps the actions pinned in stx-pulumi.yml current (written by `stx-pulumi ci github`).
version: 2
updates:
  - package-ecosystem: github-actions
    directory: /
    schedule:
      interval: weekly
    cooldown:
      default-days: 7
    groups:
      actions:
        patterns: ["*"]
"""
