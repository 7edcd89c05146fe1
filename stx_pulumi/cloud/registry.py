"""Copy an image between Artifact Registry repositories by digest, through the registry's own
HTTP API (Docker Registry v2 / OCI distribution): no Docker needed, nothing rebuilt, image
indexes kept whole. Only linux/amd64 images are copied: that is what Cloud Run runs.

Through the one Google client, with `Authorization: Bearer <access token>` as Artifact
Registry documents it ("Authenticating to a repository", REST API). The source and target may
be in different regions, so on different hosts: blobs are read from the one and uploaded to
the other. STX_REGISTRY_ENDPOINT replaces `https://<host>` (tests: a URL with `{host}`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from stx_pulumi.errors import GoogleError, InputError

if TYPE_CHECKING:
    from stx_pulumi.cloud.google import Google

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
PLATFORM = ("linux", "amd64")


class RegistryError(GoogleError):
    """The registry refused or failed a request."""


def split(ref: str) -> tuple[str, str, str]:
    """`host/path@sha256:…` → (host, path, digest)."""
    name, _, digest = ref.partition("@")
    host, _, path = name.partition("/")
    if not digest.startswith("sha256:") or not path:
        raise InputError(f"{ref!r} is not an image digest reference (host/path@sha256:…)")
    return host, path, digest


def copy(client: Google, source: str, target: str, tag: str | None = None) -> str:
    """Copy the image `source` (a digest reference) to the repository path `target`
    (`host/project/repo/pkg`), tagged `tag` there if given; the target's digest reference."""
    host, path, digest = split(source)
    target_host, _, target_path = target.partition("/")
    reg = _Registry(client)
    body, media = reg.manifest(host, path, digest)
    reg.check_platform(host, path, body, media, source)
    reg.copy_manifest((host, path), (target_host, target_path), digest, body, media)
    if tag:  # the same manifest under a tag: the target's cleanup keeps it
        reg.put(target_host, f"/v2/{target_path}/manifests/{tag}", body, media)
    return f"{target_host}/{target_path}@{digest}"


class _Registry:
    def __init__(self, client: Google) -> None:
        self.client = client

    def call(self, method: str, host: str, path: str, what: str, ok: Any = None,
             **kwargs: Any) -> Any:
        try:
            return self.client.request(method, self.client.url("registry", path, host),
                                       timeout=60.0, ok=ok or (lambda s: s < 300), **kwargs)
        except GoogleError as err:
            raise RegistryError(f"could not {what}: {err.message}", status=err.status) from None

    def manifest(self, host: str, path: str, reference: str) -> tuple[bytes, str]:
        response = self.call("GET", host, f"/v2/{path}/manifests/{reference}",
                             f"read the manifest {path}@{reference}",
                             ok=lambda s: s < 300 or s == 404,
                             headers={"Accept": ", ".join(INDEX_TYPES + MANIFEST_TYPES)})
        if response.status_code == 404:
            raise InputError(f"the image {path}@{reference} is gone from the registry")
        media = response.headers.get("content-type", "").split(";")[0] or json.loads(
            response.content).get("mediaType", "")
        return response.content, media

    def check_platform(self, host: str, path: str, body: bytes, media: str,
                       source: str) -> None:
        data = json.loads(body)
        if media in INDEX_TYPES:
            platforms = [(m.get("platform") or {}) for m in data.get("manifests", [])]
            found = [(p.get("os"), p.get("architecture")) for p in platforms]
        else:
            config = data.get("config") or {}
            response = self.call("GET", host, f"/v2/{path}/blobs/{config.get('digest')}",
                                 f"read the image config of {source}")
            image = json.loads(response.content)
            found = [(image.get("os"), image.get("architecture"))]
        if PLATFORM not in found:
            shown = ", ".join(f"{o}/{a}" for o, a in found) or "none"
            raise InputError(f"the image {source} is built for {shown}, not linux/amd64: "
                             "Cloud Run cannot run it")

    def copy_manifest(self, source: tuple[str, str], target: tuple[str, str], digest: str,
                      body: bytes, media: str) -> None:
        data = json.loads(body)
        if media in INDEX_TYPES:
            for child in data.get("manifests", []):
                child_body, child_media = self.manifest(*source, child["digest"])
                self.copy_manifest(source, target, child["digest"], child_body, child_media)
        else:
            for blob in [data.get("config") or {}, *data.get("layers", [])]:
                if blob.get("digest"):
                    self.copy_blob(source, target, blob["digest"])
        self.put(target[0], f"/v2/{target[1]}/manifests/{digest}", body, media)

    def put(self, host: str, path: str, body: bytes, media: str) -> None:
        self.call("PUT", host, path, f"write the manifest {path}", content=body,
                  headers={"Content-Type": media})

    def copy_blob(self, source: tuple[str, str], target: tuple[str, str], digest: str) -> None:
        (host, path), (target_host, target_path) = source, target
        head = self.call("HEAD", target_host, f"/v2/{target_path}/blobs/{digest}",
                         f"look for the layer {digest}", ok=lambda s: s < 500)
        if head.status_code == 200:
            return  # already there
        blob = self.call("GET", host, f"/v2/{path}/blobs/{digest}", f"read the layer {digest}")
        start = self.call("POST", target_host, f"/v2/{target_path}/blobs/uploads/",
                          f"start an upload to {target_path}")
        location = start.headers["location"]
        joiner = "&" if "?" in location else "?"
        if location.startswith("/"):  # relative to the registry's root
            location = self.client.url("registry", location, target_host)
        try:
            self.client.request("PUT", f"{location}{joiner}digest={digest}",
                                content=blob.content, timeout=60.0,
                                headers={"Content-Type": "application/octet-stream"})
        except GoogleError as err:
            raise RegistryError(f"could not upload the layer {digest} to {target_path}: "
                                f"{err.message}", status=err.status) from None
