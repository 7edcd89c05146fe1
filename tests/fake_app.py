"""A local stand-in for a deployed StreamTeX app (Nginx + Streamlit), on 127.0.0.1.

Modes: healthy, slow (health 503 for the first `slow_polls` calls), no-header (/html/ without
X-Served-By), 503 (everything), streamlit-down (Nginx's health fallback answers, Streamlit
does not), never (accepts connections, never answers).
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

POLL_S = 0.02  # how often a server checks for shutdown: the 0.5 s default made each teardown wait


def serve(server: Any) -> None:
    """`server` answering on a thread of its own until `server.shutdown()`."""
    threading.Thread(target=server.serve_forever, args=(POLL_S,), daemon=True).start()


class LocalServer:
    """An HTTP server on 127.0.0.1 for a fake's handler: `_start(Handler)` in `__enter__`,
    shut down and closed on exit."""

    _server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _start(self, handler: type) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        serve(self._server)

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class FakeApp:
    def __init__(self, mode: str = "healthy", slow_polls: int = 0) -> None:
        self.mode = mode
        self.slow_polls = slow_polls
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._server: Any = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        port = (self._socket or self._server.socket).getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __enter__(self) -> FakeApp:
        if self.mode == "never":
            self._socket = socket.socket()
            self._socket.bind(("127.0.0.1", 0))
            self._socket.listen(16)  # connections queue up; nothing ever answers
            return self
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                app.requests.append((self.path, dict(self.headers)))
                status, headers, body = app.answer(self.path)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve(self._server)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        if self._socket:
            self._socket.close()

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        html = {"Content-Type": "text/html"}
        if self.mode == "503":
            return 503, {}, b"Service Unavailable"
        if path == "/_stcore/health":
            health_calls = sum(1 for p, _ in self.requests if p == path)
            if self.mode == "slow" and health_calls <= self.slow_polls:
                return 503, {}, b"starting"
            return 200, {"Content-Type": "text/plain"}, b"ok"
        if path.startswith("/html/"):
            if path == "/html/":
                return 302, {"Location": "/html/course/course.html"}, b""
            headers = {**html} if self.mode == "no-header" else {**html, "X-Served-By": "static"}
            return 200, headers, b"<h1>course</h1>"
        if self.mode == "streamlit-down":
            return 302, {"Location": "/html/"}, b""
        if path == "/_stcore/host-config":
            body = json.dumps({"allowedOrigins": [], "useExternalAuthToken": False})
            return 200, {"Content-Type": "application/json"}, body.encode()
        if path == "/":
            return 200, html, b"<title>Streamlit</title>"
        return 404, {}, b"not found"
