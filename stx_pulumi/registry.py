"""Copy an image between Artifact Registry repositories by digest, through the registry's own
HTTP API (Docker Registry v2 / OCI distribution): no Docker needed, nothing rebuilt, image
indexes kept whole. Only linux/amd64 images are copied: that is what Cloud Run runs.

Artifact Registry takes the user's access token as the password of `oauth2accesstoken` (as
`docker login` does). STX_REGISTRY_ENDPOINT replaces `https://<host>` for tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stx_pulumi.errors import InputError

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
PLATFORM = ("linux", "amd64")


class RegistryError(Exception):
    """The registry refused or failed a request."""


def split(ref: str) -> tuple[str, str, str]:
    """`host/path@sha256:…` → (host, path, digest)."""
    name, _, digest = ref.partition("@")
    host, _, path = name.partition("/")
    if not digest.startswith("sha256:") or not path:
        raise InputError(f"{ref!r} is not an image digest reference (host/path@sha256:…)")
    return host, path, digest


def copy(source: str, target_path: str, token: str, environ: Mapping[str, str]) -> str:
    """Copy the image `source` (a digest reference) into `target_path` (`project/repo/pkg`
    on the same host); returns the target's digest reference."""
    import httpx

    host, path, digest = split(source)
    base = environ.get("STX_REGISTRY_ENDPOINT") or f"https://{host}"
    with httpx.Client(base_url=base, auth=("oauth2accesstoken", token), timeout=60.0,
                      follow_redirects=True) as client:
        body, media = _manifest(client, path, digest)
        _check_platform(client, path, body, media, source)
        _copy_manifest(client, path, target_path, digest, body, media)
    return f"{host}/{target_path}@{digest}"


def _manifest(client: Any, path: str, reference: str) -> tuple[bytes, str]:
    response = client.get(f"/v2/{path}/manifests/{reference}",
                          headers={"Accept": ", ".join(INDEX_TYPES + MANIFEST_TYPES)})
    if response.status_code == 404:
        raise InputError(f"the image {path}@{reference} is gone from the registry")
    _ok(response, f"read the manifest {path}@{reference}")
    media = response.headers.get("content-type", "").split(";")[0] or json.loads(
        response.content).get("mediaType", "")
    return response.content, media


def _check_platform(client: Any, path: str, body: bytes, media: str, source: str) -> None:
    data = json.loads(body)
    if media in INDEX_TYPES:
        platforms = [(m.get("platform") or {}) for m in data.get("manifests", [])]
        found = [(p.get("os"), p.get("architecture")) for p in platforms]
    else:
        config = data.get("config") or {}
        response = client.get(f"/v2/{path}/blobs/{config.get('digest')}")
        _ok(response, f"read the image config of {source}")
        image = json.loads(response.content)
        found = [(image.get("os"), image.get("architecture"))]
    if PLATFORM not in found:
        shown = ", ".join(f"{o}/{a}" for o, a in found) or "none"
        raise InputError(f"the image {source} is built for {shown}, not linux/amd64: Cloud Run "
                         "cannot run it")


def _copy_manifest(client: Any, path: str, target: str, digest: str, body: bytes,
                   media: str) -> None:
    data = json.loads(body)
    if media in INDEX_TYPES:
        for child in data.get("manifests", []):
            child_body, child_media = _manifest(client, path, child["digest"])
            _copy_manifest(client, path, target, child["digest"], child_body, child_media)
    else:
        for blob in [data.get("config") or {}, *data.get("layers", [])]:
            if blob.get("digest"):
                _copy_blob(client, path, target, blob["digest"])
    response = client.put(f"/v2/{target}/manifests/{digest}", content=body,
                          headers={"Content-Type": media})
    _ok(response, f"write the manifest {target}@{digest}")


def _copy_blob(client: Any, path: str, target: str, digest: str) -> None:
    if client.head(f"/v2/{target}/blobs/{digest}").status_code == 200:
        return  # already there
    source = client.get(f"/v2/{path}/blobs/{digest}")
    _ok(source, f"read the layer {digest}")
    start = client.post(f"/v2/{target}/blobs/uploads/")
    _ok(start, f"start an upload to {target}")
    location = start.headers["location"]
    joiner = "&" if "?" in location else "?"
    done = client.put(f"{location}{joiner}digest={digest}", content=source.content,
                      headers={"Content-Type": "application/octet-stream"})
    _ok(done, f"upload the layer {digest} to {target}")


def _ok(response: Any, what: str) -> None:
    if response.status_code >= 300:
        raise RegistryError(f"could not {what}: HTTP {response.status_code} "
                            f"{response.text[:200]}")
