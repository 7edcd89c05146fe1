"""GitHub's REST API on 127.0.0.1: GET /repos/my-school/courses, as api.github.com answers it
(the fields `team setup` reads); any other repository is 404. STX_GITHUB_API points at it."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

from fake_app import LocalServer

REPOSITORY = {"id": 123456, "full_name": "my-school/courses", "default_branch": "main"}


class FakeGitHub(LocalServer):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __enter__(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.calls.append(self.path)
                found = self.path == f"/repos/{REPOSITORY['full_name']}"
                body = json.dumps(REPOSITORY if found else {"message": "Not Found"}).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._start(Handler)
        return self
