"""The team's shared things, decided without Pulumi: their names, the deployer's and previewer's
least-privilege grants (one table), and which GitHub tokens may act as them.

The team stack (`program/team.py`) creates what this module names; `team setup` moves state
into its bucket; `ci github` writes the workflow that uses it; docs/team.md lists the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stx_pulumi.errors import InputError, shown
from stx_pulumi.model.names import PROJECT_RE, REGION_RE

TEAM_PROJECT = "stx-pulumi-team"  # the team stack's own Pulumi project: never listed as an app
TEAM_STACK = "team"
TEAM_DIR = "team"  # inside the workspace, committed: a teammate's clone finds the team stack
KEY_RING = "stx-pulumi"
KEY = "state-secrets"
POOL = "stx-github"
PROVIDER = "github"
DEPLOYER = "stx-deployer"
PREVIEWER = "stx-previewer"
ISSUER = "https://token.actions.githubusercontent.com"
KEY_ROTATION = "7776000s"  # 90 days; old versions stay usable for decryption
OLD_VERSIONS_KEPT = 20  # state versions kept per object, besides one within 30 days
OLD_VERSION_DAYS = 30
APIS = ("storage.googleapis.com", "cloudkms.googleapis.com", "iam.googleapis.com",
        "iamcredentials.googleapis.com", "sts.googleapis.com")
REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
# What reaches an identity provider's CEL condition, an IAM member or a workflow is checked
# against allow-lists where it enters (the options, the team stack file, GitHub's answer).
BRANCH_RE = re.compile(r"^(?![-./])(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]{1,100}(?<![./])$")
MEMBER_RE = re.compile(r"^(user|group|serviceAccount):[A-Za-z0-9._%+-]{1,64}"
                       r"@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")
# Only the project-IAM changes the stx-pulumi program makes: the build account's log writer and
# the scheduler account's right to start the event windows' workflow (Workflows roles are
# project-level only). (IAM conditions on role grants:
# cloud.google.com/iam/docs/setting-limits-on-granting-roles)
PROJECT_ROLES_GRANTED = ("roles/logging.logWriter", "roles/workflows.invoker",
                         "roles/eventarc.eventReceiver")
PROJECT_GRANTS_ONLY = ("api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', [])"
                   ".hasOnly([" + ", ".join(f"'{r}'" for r in PROJECT_ROLES_GRANTED) + "])")


@dataclass(frozen=True)
class Grant:
    """One role an account of the team holds, where, and why stx-pulumi needs it."""

    role: str
    scope: str  # project | state bucket | state key | each referenced secret
    why: str
    condition: str | None = None


# Everything `stx-pulumi up` of any app needs, and nothing it does not (docs/team.md's table).
DEPLOYER_GRANTS = (
    Grant("roles/run.admin", "project", "create and update Cloud Run services and their domain "
          "mappings, and make services public (a service's IAM policy needs run.admin)"),
    Grant("roles/artifactregistry.admin", "project", "create each app's image repository, "
          "push images, and give the app's build account write access to its repository"),
    Grant("roles/iam.serviceAccountAdmin", "project", "create the runtime, scheduler and build "
          "accounts of each app and set who may use them"),
    Grant("roles/iam.serviceAccountUser", "project", "deploy services, jobs and builds that run "
          "as those accounts (iam.serviceAccounts.actAs)"),
    Grant("roles/cloudscheduler.admin", "project", "the scheduled scaling jobs of event "
          "windows"),
    Grant("roles/workflows.editor", "project", "the workflow the event windows' jobs start "
          "(it scales a service only inside its window)"),
    Grant("roles/cloudbuild.builds.editor", "project", "start cloud builds and read their "
          "status"),
    Grant("roles/storage.admin", "project", "create each app's build staging bucket and let its "
          "build account read it (bucket names are per app: no narrower predefined scope)"),
    Grant("roles/resourcemanager.projectIamAdmin", "project", "the build account's log "
          "writing and the scheduler account's workflow invoking, and only those roles",
          PROJECT_GRANTS_ONLY),
    Grant("roles/serviceusage.serviceUsageViewer", "project", "the preflight reads which APIs "
          "are enabled"),
    Grant("roles/logging.viewer", "project", "show a failed build's last log lines"),
    Grant("roles/pubsub.editor", "project", "the topic a budget publishes to (the Budget "
          "API needs pubsub.topics.setIamPolicy on it)"),
    Grant("roles/eventarc.admin", "project", "the trigger that starts the spend guard on a "
          "budget notification"),
    Grant("roles/monitoring.editor", "project", "the alert policies, uptime checks, email "
          "channels and dashboard of watched envs, and the alerts `status` shows"),
    Grant("roles/secretmanager.admin", "each referenced secret", "let an app's runtime account "
          "read the secrets its stack references (secret IAM needs setIamPolicy)"),
    Grant("roles/storage.objectAdmin", "state bucket", "read and write stack state and locks"),
    Grant("roles/cloudkms.cryptoKeyEncrypterDecrypter", "state key", "encrypt and decrypt "
          "stack secrets"),
)
# Pull-request previews: read everything, change nothing in the project.
PREVIEWER_GRANTS = (
    Grant("roles/viewer", "project", "read every resource a preview compares with (no secret "
          "values: viewer has no secretmanager.versions.access)"),
    Grant("roles/storage.objectAdmin", "state bucket", "read state and take the stack lock "
          "during a preview"),
    Grant("roles/cloudkms.cryptoKeyEncrypterDecrypter", "state key", "decrypt stack "
          "secrets, and encrypt the data key of a stack a pull request previews before it was "
          "ever deployed (a new stack's key is made and encrypted with KMS)"),
)
# People running stx-pulumi from their own machines (team setup adds who runs it).
MEMBER_GRANTS = (
    Grant("roles/storage.objectAdmin", "state bucket", "read and write stack state and locks"),
    Grant("roles/cloudkms.cryptoKeyEncrypterDecrypter", "state key", "encrypt and decrypt "
          "stack secrets"),
)


@dataclass(frozen=True)
class GitHubRepo:
    """The repository whose workflows may deploy: its name and numeric id (the id survives a
    rename and differs for a re-created repository of the same name)."""

    name: str
    id: int
    default_branch: str = "main"

    @property
    def subject(self) -> str:
        return f"repo:{self.name}"


@dataclass(frozen=True)
class TeamSpec:
    """What `team setup` creates in one Google Cloud project."""

    project: str
    region: str
    github: GitHubRepo | None = None
    protected_envs: tuple[str, ...] = ("prod",)
    members: tuple[str, ...] = ()  # principals such as user:ana@example.com
    secrets: tuple[str, ...] = ()  # secret ids the apps' stacks reference
    apis: tuple[str, ...] = field(default=APIS)

    @property
    def state_bucket(self) -> str:
        return f"{self.project}-stx-state"

    @property
    def backend_url(self) -> str:
        return f"gs://{self.state_bucket}"

    @property
    def key_name(self) -> str:
        return (f"projects/{self.project}/locations/{self.region}/keyRings/{KEY_RING}"
                f"/cryptoKeys/{KEY}")

    @property
    def secrets_provider(self) -> str:
        return f"gcpkms://{self.key_name}"

    def email(self, account: str) -> str:
        return f"{account}@{self.project}.iam.gserviceaccount.com"


def branch_problem(branch: str) -> str | None:
    """Why `branch` cannot be a default branch stx-pulumi writes into conditions, or None."""
    if BRANCH_RE.fullmatch(branch):
        return None
    return (f"{shown(branch[:60])} is not a branch name of letters, digits, '.', '_', '-' and '/' "
            "(at most 100)")


def member_problem(member: str) -> str | None:
    if MEMBER_RE.fullmatch(member):
        return None
    return (f"{shown(member[:80])} is not one principal; use user:EMAIL, group:EMAIL or "
            "serviceAccount:EMAIL (one per --member)")


def cel(text: str) -> str:
    """`text` as a CEL string literal (its values are allow-listed already: this keeps the
    expression one literal even so)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def attribute_condition(repo: GitHubRepo, protected_envs: tuple[str, ...]) -> str:
    """Which GitHub tokens the provider accepts: this repository by name and by id, and only
    from a push to the default branch, a pull request, or a job bound to a protected env's
    GitHub environment (its reviewers and branch rules apply)."""
    subjects = [f"{repo.subject}:ref:refs/heads/{repo.default_branch}",
                f"{repo.subject}:pull_request",
                *(f"{repo.subject}:environment:{env}" for env in protected_envs)]
    listed = ", ".join(cel(s) for s in subjects)
    return (f"assertion.repository == {cel(repo.name)} && assertion.repository_id == "
            f"{cel(str(repo.id))} && assertion.sub in [{listed}]")


ATTRIBUTE_MAPPING = {
    "google.subject": "assertion.sub",
    "attribute.repository": "assertion.repository",
    "attribute.repository_id": "assertion.repository_id",
    "attribute.ref": "assertion.ref",
}


def impersonators(repo: GitHubRepo, protected_envs: tuple[str, ...]) -> dict[str, list[str]]:
    """The token subjects that may act as each account: the deployer from the default branch
    and the protected envs' GitHub environments, the previewer from pull requests."""
    return {
        DEPLOYER: [f"{repo.subject}:ref:refs/heads/{repo.default_branch}",
                   *(f"{repo.subject}:environment:{env}" for env in protected_envs)],
        PREVIEWER: [f"{repo.subject}:pull_request"],
    }


def check(project: str, region: str, github: str | None,
          members: tuple[str, ...] = ()) -> None:
    """Exit 2 naming the option for a malformed project, region, repository or member."""
    if not PROJECT_RE.fullmatch(project):
        raise InputError(f"--project: {shown(project)} is not a Google Cloud project id (6-30 "
                         "lowercase letters, digits or '-', starting with a letter)")
    if not REGION_RE.fullmatch(region):
        raise InputError(f"--region: {shown(region)} is not a Google Cloud region, e.g. "
                         "europe-west1")
    if github is not None and not REPO_RE.fullmatch(github):
        raise InputError(f"--github: {shown(github)} is not a repository; use owner/name, e.g. "
                         "my-school/courses")
    for member in members:
        if member_problem(member):
            raise InputError(f"--member: {member_problem(member)}")
