"""A local stand-in of Artifact Registry's Docker Registry v2 API on 127.0.0.1, for every
registry host at once: STX_REGISTRY_ENDPOINT is `<url>/{host}`, so each request names the host
it was meant for (`<region>-docker.pkg.dev`). Manifests and blobs per `host/path`, uploads, and
what was asked. Only `Authorization: Bearer <token>` is accepted, as Artifact Registry
documents its REST access ("Authenticating to a repository": an OAuth access token as a bearer
token; Basic `oauth2accesstoken` is the docker CLI's login)."""

from __future__ import annotations

import hashlib
import json
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from fake_app import serve

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class FakeRegistry:
    def __init__(self) -> None:
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}  # (path, digest)
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.auth: set[str] = set()
        self._uploads: dict[str, str] = {}
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def parts(self) -> tuple[str, str, str]:
                url = urlparse(self.path)
                registry.requests.append((self.command, url.path))
                registry.auth.add(self.headers.get("Authorization", ""))
                host, _, rest = url.path.lstrip("/").partition("/v2/")
                path, _, ref = rest.partition("/manifests/")
                if ref:
                    return "manifests", f"{host}/{path}", ref
                path, _, ref = rest.partition("/blobs/")
                return "blobs", f"{host}/{path}", ref

            def authorized(self) -> bool:
                if self.headers.get("Authorization", "").startswith("Bearer ya29."):
                    return True
                self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
                return False

            def do_GET(self) -> None:
                kind, path, ref = self.parts()
                if not self.authorized():
                    return
                if kind == "manifests" and (path, ref) in registry.manifests:
                    body, media = registry.manifests[(path, ref)]
                    self.reply(200, body, {"Content-Type": media})
                elif kind == "blobs" and (path, ref) in registry.blobs:
                    self.reply(200, registry.blobs[(path, ref)])
                else:
                    self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

            def do_HEAD(self) -> None:
                _, path, ref = self.parts()
                if not self.authorized():
                    return
                self.reply(200 if (path, ref) in registry.blobs else 404)

            def do_POST(self) -> None:
                _, path, _ = self.parts()
                if not self.authorized():
                    return
                upload = uuid.uuid4().hex
                registry._uploads[upload] = path.removesuffix("/uploads")
                repo = path.partition("/")[2]  # a registry answers relative to its root
                self.reply(202, headers={"Location": f"/v2/{repo}/blobs/uploads/{upload}"})

            def do_PUT(self) -> None:
                kind, path, ref = self.parts()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.authorized():
                    return
                if kind == "manifests":
                    registry.manifests[(path, ref)] = (body, self.headers["Content-Type"])
                    self.reply(201)
                    return
                url = urlparse(self.path)
                upload = url.path.rsplit("/", 1)[1]
                target = registry._uploads.pop(upload)
                digest = parse_qs(url.query)["digest"][0]
                registry.blobs[(target, digest)] = body
                self.reply(201)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve(self.server)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.endpoint = self.url + "/{host}"  # STX_REGISTRY_ENDPOINT

    def push(self, path: str, digest: str, os_: str = "linux", arch: str = "amd64") -> None:
        """An image at `path@digest` (`host/project/repo/pkg`) as a build would have pushed it:
        config and one layer."""
        config = json.dumps({"os": os_, "architecture": arch}).encode()
        layer = b"layer of " + digest.encode()
        ids = [f"sha256:{hashlib.sha256(b).hexdigest()}" for b in (config, layer)]
        self.blobs[(path, ids[0])], self.blobs[(path, ids[1])] = config, layer
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                    "config": {"digest": ids[0], "mediaType": "application/vnd.oci.image."
                               "config.v1+json"},
                    "layers": [{"digest": ids[1], "mediaType": "application/vnd.oci.image."
                                "layer.v1.tar+gzip"}]}
        self.manifests[(path, digest)] = (json.dumps(manifest).encode(), MANIFEST)
