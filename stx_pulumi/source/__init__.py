"""What stx-pulumi reads from an app folder: the Dockerfile's facts (`dockerfile`), the Docker
build context, its .dockerignore and the image tag (`context`). The only code that reads the
app's files; the spec decides what the facts mean."""

from stx_pulumi.model.facts import SourceFacts
from stx_pulumi.source.context import (
    docker_context,
    dockerignore_spec,
    has_uncommitted_changes,
    image_tag,
    in_git_work_tree,
    inspect_source,
    missing_dockerignore,
    write_dockerignore,
)

__all__ = ["SourceFacts", "docker_context", "dockerignore_spec", "has_uncommitted_changes",
           "image_tag", "in_git_work_tree", "inspect_source", "missing_dockerignore",
           "write_dockerignore"]
