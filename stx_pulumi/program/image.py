"""The app's image: built from the build context and pushed to the app's registry."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
from pulumi_gcp import organizations

from stx_pulumi.spec import AppSpec


def local_image(name: str, spec: AppSpec, context: str, repository_id: pulumi.Input[str],
                parent: pulumi.Resource) -> docker.Image:
    """The image built by the local Docker daemon from `context`, relative to the workspace
    (the engine's working directory under automation and under plain `pulumi`), so state
    holds no machine path; pushed with the deploying identity's access token."""
    token = organizations.get_client_config_output(
        opts=pulumi.InvokeOptions(parent=parent)).access_token
    return docker.Image(
        f"{name}-image",
        image_name=pulumi.Output.concat(
            spec.registry, "/", spec.project, "/", repository_id, "/", spec.app, ":",
            spec.image_tag,
        ),
        build=docker.DockerBuildArgs(
            context=context,
            dockerfile=f"{context}/Dockerfile",
            platform="linux/amd64",
            args={"SOURCE_COMMIT": spec.image_tag},
        ),
        registry=docker.RegistryArgs(
            server=spec.registry,
            username="oauth2accesstoken",
            password=pulumi.Output.secret(token),
        ),
        skip_push=False,
        # a release's image outlives the resource: a rollback pin drops the resource while
        # the service runs the image
        opts=pulumi.ResourceOptions(parent=parent, retain_on_delete=True),
    )
