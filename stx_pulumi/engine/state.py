"""What the engine reads from a stack's exported state and reports of an operation: the
resource types it looks for, the results, and the readers (secrets shown as "[secret]")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pulumi.automation import OutputValue

CHANGE_KINDS = ("create", "update", "replace", "delete", "same")
COMPONENT = "stx:index:StreamtexApp"
SERVICE_TYPE = "gcp:cloudrunv2/service:Service"
SECRET_MEMBER_TYPE = "gcp:secretmanager/secretIamMember:SecretIamMember"
IMAGE_TYPE = "docker:index/image:Image"
BUILD_BASE_TYPES = ("gcp:artifactregistry/repository:Repository", "gcp:storage/bucket:Bucket",
                    "gcp:serviceaccount/account:Account",
                    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
                    "gcp:storage/bucketIAMMember:BucketIAMMember",
                    "gcp:projects/iAMMember:IAMMember")


@dataclass
class OperationResult:
    """What one engine operation did, ready for rendering."""

    stack: str
    operation: str
    result: str
    changes: dict[str, int]
    outputs: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    backend: str = ""
    notices: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "operation": self.operation, "result": self.result,
                "changes": self.changes, "outputs": self.outputs,
                "duration_s": round(self.duration_s, 1)}


@dataclass(frozen=True)
class Deployed:
    """What a stack's state records: the image tag, the container port, the services."""

    image_tag: str | None = None
    port: int | None = None
    services: tuple[str, ...] = ()
    served_image: str | None = None  # the image the (first) service runs
    last_release: Mapping[str, Any] | None = None
    resources: frozenset[str] = frozenset()  # logical names
    ceilings: Mapping[str, int | None] = field(default_factory=dict)  # revision max, by service
    context: str | None = None  # the build context the image was last built from

    def built(self, tag: str) -> str | None:
        """The image of `tag` a cloud build made and the services run: no new build."""
        release = self.last_release or {}
        digest = release.get("digest")
        return str(digest) if release.get("tag") == tag and digest and (
            digest == self.served_image) else None


@dataclass
class StackInfo:
    """One stack of the backend, for `stx-pulumi stacks`."""

    stack: str
    app: str
    env: str
    last_update: str | None
    result: str | None
    message: str | None
    resource_count: int | None
    url: str | None
    update_in_progress: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # why its state could not be read (the others still are)


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a secret value


def no_secrets(value: Any) -> Any:
    """Exported values with every secret as "[secret]" (an export shows them in plaintext)."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return "[secret]"
        return {k: no_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [no_secrets(v) for v in value]
    return value


def urns(exported: Mapping[str, Any]) -> set[str]:
    """The resources an exported state holds."""
    return {str(r.get("urn")) for r in (exported.get("deployment") or {}).get(
        "resources") or []}


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def deployed_of(resources: list[dict[str, Any]]) -> Deployed:
    """What exported resources record of the image and the services."""
    tag = port = image = context = None
    services, releases, ceilings = [], [], {}
    for res in resources:
        inputs = res.get("inputs") or {}
        if res.get("type") == IMAGE_TYPE:
            tag = str(inputs.get("imageName", "")).rsplit(":", 1)[-1]
            context = (inputs.get("build") or {}).get("context")
        elif res.get("type") == SERVICE_TYPE:
            containers = (inputs.get("template") or {}).get("containers") or [{}]
            port = ((containers[0].get("ports") or {}).get("containerPort"))
            image = image or containers[0].get("image")
            services.append(str(inputs.get("name")))
            ceiling = ((inputs.get("template") or {}).get("scaling") or {}).get(
                "maxInstanceCount")
            ceilings[str(inputs.get("name"))] = int(ceiling) if ceiling else None
        elif res.get("type") == "pulumi:pulumi:Stack":
            releases = list((res.get("outputs") or {}).get("releases") or [])
    names = frozenset(str(r.get("urn", "")).rsplit("::", 1)[-1] for r in resources)
    return Deployed(tag, int(port) if port else None, tuple(services), image,
                    releases[-1] if releases else None, names, ceilings,
                    str(context) if context else None)


def plain_outputs(outputs: Mapping[str, OutputValue]) -> dict[str, Any]:
    """Output values as JSON data: secrets as "[secret]", whole numbers as ints."""
    return {k: "[secret]" if v.secret else whole(v.value) for k, v in outputs.items()}


def whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [whole(v) for v in value]
    if isinstance(value, dict):
        return {k: whole(v) for k, v in value.items()}
    return value


def changes(summary: Mapping[str, int] | None) -> dict[str, int]:
    summary = summary or {}
    return {kind: int(summary.get(kind, 0)) for kind in CHANGE_KINDS}


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
