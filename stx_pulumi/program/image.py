"""The app's image: built from the build context and pushed to the app's registry."""

from __future__ import annotations

import asyncio
from typing import Any

import pulumi
import pulumi_docker as docker
from pulumi_gcp import organizations

from stx_pulumi.model.spec import AppSpec


def local_image(name: str, spec: AppSpec, context: str, repository_id: pulumi.Input[str],
                parent: pulumi.Resource, turn: Any = None) -> docker.Image:
    """The image built by the local Docker daemon from `context`, relative to the workspace
    (the engine's working directory under automation and under plain `pulumi`), so state
    holds no machine path; pushed with the deploying identity's access token.

    With a `turn` (a fleet's build slot), the build waits for it and gives it back once the
    image is pushed: builds of several apps on one machine compete for the same CPU."""
    token = organizations.get_client_config_output(
        opts=pulumi.InvokeOptions(parent=parent)).access_token
    image = docker.Image(
        f"{name}-image",
        image_name=pulumi.Output.concat(
            _after(turn), spec.registry, "/", spec.project, "/", repository_id, "/", spec.app,
            ":", spec.image_tag,
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
    if turn is not None:
        image.repo_digest.apply(lambda _: turn.give_back())
    return image


def _after(turn: Any) -> pulumi.Input[str]:
    """"" once this app holds the build slot (its other resources go ahead meanwhile)."""
    if turn is None:
        return ""

    async def wait() -> str:
        while not turn.try_take():
            await asyncio.sleep(0.1)
        return ""

    return pulumi.Output.from_input(wait())
