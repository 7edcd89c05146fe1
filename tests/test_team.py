"""The team stack under Pulumi's mocks: the state bucket, the secrets key, the GitHub identity
and the deployer's exact grants (issue #15)."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from test_program import Recorder

from stx_pulumi.errors import InputError
from stx_pulumi.model import team
from stx_pulumi.model.team import GitHubRepo, TeamSpec

REPO = GitHubRepo("my-school/courses", 123456, "main")
POOL = "projects/123456789012/locations/global/workloadIdentityPools/stx-github"


@pytest.fixture
def recorder() -> Recorder:
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project=team.TEAM_PROJECT, stack=team.TEAM_STACK,
                             preview=False)
    return recorder


def _deploy(spec: TeamSpec) -> Any:
    from stx_pulumi.program.team import deploy_team

    made = deploy_team(spec)
    return pulumi.Output.all(*[r.urn for r in made])


def _members(recorder: Recorder, typ: str) -> list[dict[str, Any]]:
    return [r.inputs for r in recorder.of_type(typ)]


@pulumi.runtime.test
def test_the_state_bucket_is_versioned_private_and_prunes_old_versions(recorder: Recorder) -> Any:
    done = _deploy(TeamSpec("course-project-1", "europe-west1"))

    def check(_: Any) -> None:
        bucket = recorder.one("gcp:storage/bucket:Bucket")
        assert bucket["name"] == "course-project-1-stx-state"
        assert bucket["versioning"] == {"enabled": True}
        assert bucket["uniformBucketLevelAccess"] is True
        assert bucket["publicAccessPrevention"] == "enforced"
        rules = [r["condition"] for r in bucket["lifecycleRules"]]
        assert {"withState": "ARCHIVED", "numNewerVersions": 20} in rules
        assert {"withState": "ARCHIVED", "daysSinceNoncurrentTime": 30} in rules
        assert all(r["action"] == {"type": "Delete"} for r in bucket["lifecycleRules"])
        key = recorder.one("gcp:kms/cryptoKey:CryptoKey")
        assert key["rotationPeriod"] == "7776000s" and key["keyRing"] == "secrets-id"
        assert recorder.one("gcp:kms/keyRing:KeyRing")["location"] == "europe-west1"
        # without --github: no pool, no accounts
        assert not recorder.of_type("gcp:iam/workloadIdentityPool:WorkloadIdentityPool")
        assert not recorder.of_type("gcp:serviceaccount/account:Account")

    return done.apply(check)


@pulumi.runtime.test
def test_bucket_and_key_outlive_the_stack(recorder: Recorder) -> Any:
    kept: dict[str, bool] = {}

    def seen(args: pulumi.ResourceTransformationArgs) -> None:
        kept[args.type_] = bool(args.opts.retain_on_delete)

    pulumi.runtime.register_stack_transformation(seen)
    done = _deploy(TeamSpec("course-project-1", "europe-west1"))

    def check(_: Any) -> None:
        assert kept["gcp:storage/bucket:Bucket"] and kept["gcp:kms/cryptoKey:CryptoKey"]
        assert kept["gcp:kms/keyRing:KeyRing"]
        assert not kept["gcp:projects/service:Service"]

    return done.apply(check)


@pulumi.runtime.test
def test_the_provider_accepts_only_this_repository_by_name_and_id(recorder: Recorder) -> Any:
    done = _deploy(TeamSpec("course-project-1", "europe-west1", REPO, ("prod",)))

    def check(_: Any) -> None:
        provider = recorder.one(
            "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
        condition = provider["attributeCondition"]
        assert "assertion.repository == 'my-school/courses'" in condition
        assert "assertion.repository_id == '123456'" in condition
        assert ("assertion.sub in ['repo:my-school/courses:ref:refs/heads/main', "
                "'repo:my-school/courses:pull_request', "
                "'repo:my-school/courses:environment:prod']") in condition
        assert provider["oidc"] == {"issuerUri": "https://token.actions.githubusercontent.com"}
        assert provider["attributeMapping"]["attribute.repository_id"] == (
            "assertion.repository_id")

    return done.apply(check)


@pulumi.runtime.test
def test_only_the_repository_may_act_as_the_accounts(recorder: Recorder) -> Any:
    done = _deploy(TeamSpec("course-project-1", "europe-west1", REPO, ("prod",)))

    def check(_: Any) -> None:
        members = {(m["serviceAccountId"].rsplit("/", 1)[-1], m["member"])
                   for m in _members(recorder, "gcp:serviceaccount/iAMMember:IAMMember")}
        deployer = "stx-deployer@course-project-1.iam.gserviceaccount.com"
        previewer = "stx-previewer@course-project-1.iam.gserviceaccount.com"
        assert members == {
            (deployer, f"principal://iam.googleapis.com/{POOL}/subject/"
                       "repo:my-school/courses:ref:refs/heads/main"),
            (deployer, f"principal://iam.googleapis.com/{POOL}/subject/"
                       "repo:my-school/courses:environment:prod"),
            (previewer, f"principal://iam.googleapis.com/{POOL}/subject/"
                        "repo:my-school/courses:pull_request")}
        roles = {m["role"] for m in _members(recorder, "gcp:serviceaccount/iAMMember:IAMMember")}
        assert roles == {"roles/iam.workloadIdentityUser"}

    return done.apply(check)


@pulumi.runtime.test
def test_the_deployer_holds_exactly_the_table_at_its_scopes(recorder: Recorder) -> Any:
    spec = TeamSpec("course-project-1", "europe-west1", REPO, ("prod",),
                    secrets=("course-api-key",))
    done = _deploy(spec)
    deployer = "serviceAccount:stx-deployer@course-project-1.iam.gserviceaccount.com"

    def check(_: Any) -> None:
        project = {(m["role"], (m.get("condition") or {}).get("expression"))
                   for m in _members(recorder, "gcp:projects/iAMMember:IAMMember")
                   if m["member"] == deployer}
        assert project == {
            ("roles/run.admin", None), ("roles/artifactregistry.admin", None),
            ("roles/iam.serviceAccountAdmin", None), ("roles/iam.serviceAccountUser", None),
            ("roles/cloudscheduler.admin", None), ("roles/workflows.editor", None),
            ("roles/cloudbuild.builds.editor", None),
            ("roles/storage.admin", None), ("roles/serviceusage.serviceUsageViewer", None),
            ("roles/logging.viewer", None), ("roles/monitoring.editor", None),
            ("roles/pubsub.editor", None), ("roles/eventarc.admin", None),
            ("roles/resourcemanager.projectIamAdmin", team.PROJECT_GRANTS_ONLY)}
        bucket = {(m["bucket"], m["role"]) for m in _members(
            recorder, "gcp:storage/bucketIAMMember:BucketIAMMember") if m["member"] == deployer}
        assert bucket == {("course-project-1-stx-state", "roles/storage.objectAdmin")}
        key = {(m["cryptoKeyId"], m["role"]) for m in _members(
            recorder, "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
            if m["member"] == deployer}
        assert key == {("secrets-id", "roles/cloudkms.cryptoKeyEncrypterDecrypter")}
        secret = {(m["secretId"], m["role"]) for m in _members(
            recorder, "gcp:secretmanager/secretIamMember:SecretIamMember")}
        assert secret == {("course-api-key", "roles/secretmanager.admin")}
        assert "roles/owner" not in {m["role"] for m in _members(
            recorder, "gcp:projects/iAMMember:IAMMember")}

    return done.apply(check)


@pulumi.runtime.test
def test_the_previewer_reads_and_changes_nothing_in_the_project(recorder: Recorder) -> Any:
    done = _deploy(TeamSpec("course-project-1", "europe-west1", REPO))
    previewer = "serviceAccount:stx-previewer@course-project-1.iam.gserviceaccount.com"

    def check(_: Any) -> None:
        roles = {m["role"] for typ in ("gcp:projects/iAMMember:IAMMember",
                                       "gcp:storage/bucketIAMMember:BucketIAMMember",
                                       "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
                 for m in _members(recorder, typ) if m["member"] == previewer}
        assert roles == {"roles/viewer", "roles/storage.objectAdmin",
                         "roles/cloudkms.cryptoKeyEncrypterDecrypter"}

    return done.apply(check)


@pulumi.runtime.test
def test_members_get_the_bucket_and_the_key(recorder: Recorder) -> Any:
    done = _deploy(TeamSpec("course-project-1", "europe-west1",
                            members=("user:ana@example.com",)))

    def check(_: Any) -> None:
        bucket = _members(recorder, "gcp:storage/bucketIAMMember:BucketIAMMember")
        key = _members(recorder, "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
        assert [(m["member"], m["role"]) for m in bucket] == [
            ("user:ana@example.com", "roles/storage.objectAdmin")]
        assert [(m["member"], m["role"]) for m in key] == [
            ("user:ana@example.com", "roles/cloudkms.cryptoKeyEncrypterDecrypter")]

    return done.apply(check)


@pytest.mark.parametrize(("project", "region", "github", "member", "named"), [
    ("Bad_Project", "europe-west1", None, (), "--project"),
    ("course-project-1", "Europe", None, (), "--region"),
    ("course-project-1", "europe-west1", "not-a-repo", (), "--github"),
    ("course-project-1", "europe-west1", None, ("ana@example.com",), "--member"),
])
def test_bad_team_input_names_the_option(project: str, region: str, github: str | None,
                                         member: tuple[str, ...], named: str) -> None:
    with pytest.raises(InputError, match=f"^{named}:"):
        team.check(project, region, github, member)


def test_the_team_spec_reads_protected_envs_and_secrets_from_the_stack_files(
        tmp_path: Any) -> None:
    from stx_pulumi.ops.team import team_spec
    from stx_pulumi.workspace import create_workspace

    ws = create_workspace(tmp_path)
    (ws.stacks_dir / "Pulumi.algebra.exam.yaml").write_text(
        "config:\n  stx:protected: true\n  stx:secretEnv: {STX_AUTH_KEY: 'exam-auth:3'}\n")
    (ws.stacks_dir / "Pulumi.algebra.dev.yaml").write_text(
        "config:\n  stx:secretEnv: {API_KEY: course-api-key}\n")
    spec, config = team_spec(ws, {}, project="course-project-1", region=None, github=None,
                             members=("user:ben@example.com",))
    assert spec.protected_envs == ("exam", "prod")
    assert spec.secrets == ("course-api-key", "exam-auth")
    assert spec.region == "europe-west1" and spec.github is None
    assert ("team:members", "user:ben@example.com") in config
    assert ("team:protectedEnvs", "exam,prod") in config
