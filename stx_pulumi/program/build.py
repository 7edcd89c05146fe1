"""The cloud builder's resources: the staging bucket the build context is uploaded to, and
the build service account with push rights on this app's repository and log writing only.
The build itself runs before the engine (`stx_pulumi.cloud.cloudbuild`); the services run the image
it pushed, by digest."""

from __future__ import annotations

import pulumi
from pulumi_gcp import artifactregistry, projects, serviceaccount, storage

from stx_pulumi.model.spec import AppSpec

STAGING_DAYS = 3  # uploads are deleted after this many days: nothing paid at idle


def build_base(spec: AppSpec, repository: artifactregistry.Repository,
               parent: pulumi.Resource) -> list[pulumi.Resource]:
    """Bucket, build account and its three bindings, named as `spec.build_base_names` says so
    the first cloud build can create them alone (a targeted update) before building."""
    _, bucket_name, account_name, push_name, read_name, logs_name = spec.build_base_names
    child = pulumi.ResourceOptions(parent=parent)
    bucket = storage.Bucket(
        bucket_name,
        name=spec.staging_bucket,
        project=spec.project,
        location=spec.region,
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        force_destroy=True,  # destroy empties it: only build uploads live there
        soft_delete_policy=storage.BucketSoftDeletePolicyArgs(retention_duration_seconds=0),
        lifecycle_rules=[storage.BucketLifecycleRuleArgs(
            action=storage.BucketLifecycleRuleActionArgs(type="Delete"),
            condition=storage.BucketLifecycleRuleConditionArgs(age=STAGING_DAYS))],
        labels=spec.labels,
        opts=child,
    )
    account = serviceaccount.Account(
        account_name,
        account_id=spec.build_account_id,
        display_name=f"StreamTeX {spec.app} ({spec.env}) cloud builds",
        project=spec.project,
        opts=child,
    )
    member = account.email.apply(lambda email: f"serviceAccount:{email}")
    push = artifactregistry.RepositoryIamMember(
        push_name, project=spec.project, location=spec.region,
        repository=repository.repository_id, role="roles/artifactregistry.writer", member=member,
        opts=child)
    read = storage.BucketIAMMember(
        read_name, bucket=bucket.name, role="roles/storage.objectViewer",
        member=member, opts=child)
    logs = projects.IAMMember(
        logs_name, project=spec.project, role="roles/logging.logWriter",
        member=member, opts=child)
    return [bucket, account, push, read, logs]
