"""The team stack: the state bucket and secrets key a team shares, and with GitHub the keyless
identity CI deploys with (a Workload Identity pool and provider, deployer and previewer
accounts with the grants of `stx_pulumi.model.team`, impersonable only by the repository).

The bucket, key ring and key are kept when the stack is destroyed (`retain_on_delete`): losing
them would lose every stack's state or secrets.
"""

from __future__ import annotations

import functools
from typing import Any

import pulumi
from pulumi_gcp import iam, kms, projects, secretmanager, serviceaccount, storage

from stx_pulumi.model import team
from stx_pulumi.model.team import Grant, TeamSpec


def deploy_team(spec: TeamSpec) -> list[pulumi.Resource]:
    """The team's resources and outputs; returns every resource (tests wait on them)."""
    apis = [projects.Service(f"api-{api.split('.')[0]}", project=spec.project, service=api,
                             disable_on_destroy=False) for api in spec.apis]
    kept = pulumi.ResourceOptions(depends_on=apis, retain_on_delete=True)
    bucket = storage.Bucket(
        "state",
        name=spec.state_bucket,
        project=spec.project,
        location=spec.region,
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        versioning=storage.BucketVersioningArgs(enabled=True),
        lifecycle_rules=[_delete_old(num_newer_versions=team.OLD_VERSIONS_KEPT),
                         _delete_old(days_since_noncurrent_time=team.OLD_VERSION_DAYS)],
        labels={"managed-by": "stx-pulumi", "stx-team": "state"},
        opts=kept,
    )
    ring = kms.KeyRing("secrets", name=team.KEY_RING, location=spec.region,
                       project=spec.project, opts=kept)
    key = kms.CryptoKey("secrets", name=team.KEY, key_ring=ring.id,
                        rotation_period=team.KEY_ROTATION, opts=kept)
    outputs: dict[str, Any] = {
        "backend": spec.backend_url, "secretsProvider": spec.secrets_provider,
        "stateBucket": bucket.name, "key": key.id, "members": list(spec.members),
        "protectedEnvs": list(spec.protected_envs)}
    made: list[pulumi.Resource] = [*apis, bucket, ring, key]
    for member in spec.members:
        made += _grant(f"member-{member}", member, team.MEMBER_GRANTS, spec, bucket, key)
    if spec.github is not None:
        outputs |= _github(spec, spec.github, made, bucket, key)
    for name, value in outputs.items():
        pulumi.export(name, value)
    return made


def _delete_old(**condition: Any) -> storage.BucketLifecycleRuleArgs:
    return storage.BucketLifecycleRuleArgs(
        action=storage.BucketLifecycleRuleActionArgs(type="Delete"),
        condition=storage.BucketLifecycleRuleConditionArgs(with_state="ARCHIVED", **condition))


def _github(spec: TeamSpec, repo: team.GitHubRepo, made: list[pulumi.Resource],
            bucket: storage.Bucket, key: kms.CryptoKey) -> dict[str, Any]:
    """The pool, the provider, the two accounts and who may act as them (added to `made`)."""
    after = pulumi.ResourceOptions(depends_on=[r for r in made
                                               if isinstance(r, projects.Service)])
    pool = iam.WorkloadIdentityPool(
        "github", workload_identity_pool_id=team.POOL, project=spec.project,
        display_name="GitHub Actions", description=f"stx-pulumi deploys from {repo.name}",
        opts=after)
    provider = iam.WorkloadIdentityPoolProvider(
        "github", workload_identity_pool_id=pool.workload_identity_pool_id,
        workload_identity_pool_provider_id=team.PROVIDER, project=spec.project,
        display_name=f"GitHub {repo.name}"[:32],
        attribute_mapping=team.ATTRIBUTE_MAPPING,
        attribute_condition=team.attribute_condition(repo, spec.protected_envs),
        oidc=iam.WorkloadIdentityPoolProviderOidcArgs(issuer_uri=team.ISSUER), opts=after)
    accounts = {}
    for account_id, grants, what in ((team.DEPLOYER, team.DEPLOYER_GRANTS, "deploys"),
                                     (team.PREVIEWER, team.PREVIEWER_GRANTS, "previews")):
        account = serviceaccount.Account(
            account_id, account_id=account_id, project=spec.project,
            display_name=f"stx-pulumi {what} from GitHub", opts=after)
        member = account.email.apply(lambda email: f"serviceAccount:{email}")
        made += [account, *_grant(account_id, member, grants, spec, bucket, key)]
        for n, subject in enumerate(team.impersonators(repo, spec.protected_envs)[account_id]):
            made.append(serviceaccount.IAMMember(
                f"{account_id}-from-github-{n}", service_account_id=account.name,
                role="roles/iam.workloadIdentityUser",
                member=pool.name.apply(functools.partial(_principal, subject=subject))))
        accounts[account_id] = account.email
    made += [pool, provider]
    return {"workloadIdentityProvider": provider.name, "deployer": accounts[team.DEPLOYER],
            "previewer": accounts[team.PREVIEWER], "repository": repo.name,
            "repositoryId": repo.id, "defaultBranch": repo.default_branch}


def _principal(pool_name: str, subject: str) -> str:
    """The workload identity of one GitHub subject (a branch's or an environment's runs)."""
    return f"principal://iam.googleapis.com/{pool_name}/subject/{subject}"


def _grant(prefix: str, member: Any, grants: tuple[Grant, ...], spec: TeamSpec,
           bucket: storage.Bucket, key: kms.CryptoKey) -> list[pulumi.Resource]:
    """Each grant of the table at its scope: the project, the state bucket or key, or each
    secret the apps reference."""
    made: list[pulumi.Resource] = []
    for grant in grants:
        name = f"{prefix}-{grant.role.removeprefix('roles/')}"
        if grant.scope == "project":
            condition = grant.condition and projects.IAMMemberConditionArgs(
                title="stx-pulumi build log writer only", expression=grant.condition)
            made.append(projects.IAMMember(name, project=spec.project, role=grant.role,
                                           member=member, condition=condition or None))
        elif grant.scope == "state bucket":
            made.append(storage.BucketIAMMember(name, bucket=bucket.name, role=grant.role,
                                                member=member))
        elif grant.scope == "state key":
            made.append(kms.CryptoKeyIAMMember(name, crypto_key_id=key.id, role=grant.role,
                                               member=member))
        else:
            for secret in spec.secrets:
                made.append(secretmanager.SecretIamMember(
                    f"{name}-{secret}", project=spec.project, secret_id=secret,
                    role=grant.role, member=member))
    return made
