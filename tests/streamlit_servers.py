"""Servers `rehearse` is tested against: a real `streamlit run` of a real app that counts the
sessions and script runs it serves, and a Streamlit-speaking server that misbehaves on
purpose (refuses the websocket, closes it mid-run, answers 503, hangs, raises in the script,
finishes early for a rerun)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

# Runs the app's book.py as `streamlit run` would, after logging the session of each run.
COUNTING = """\
import os, runpy, sys
from streamlit.runtime.scriptrunner import get_script_run_ctx

with open(os.environ["STX_TEST_SESSIONS"], "a", encoding="utf-8") as log:
    log.write(get_script_run_ctx().session_id + "\\n")
sys.path.insert(0, os.getcwd())
runpy.run_path(os.path.join(os.getcwd(), "book.py"), run_name="__main__")
"""


class StreamlitRun:
    """`streamlit run` of the app in `folder` on loopback; `sessions` and `runs` it served
    (read from the log its counting wrapper writes). A port another process took is retried
    with another."""

    def __init__(self, folder: Path, log: Path) -> None:
        self.folder, self.log = folder, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> StreamlitRun:
        wrapper = self.log.parent / "counting_book.py"
        wrapper.write_text(COUNTING, encoding="utf-8")
        env = {**os.environ, "STX_TEST_SESSIONS": str(self.log), "PYTHONUNBUFFERED": "1"}
        for _ in range(5):
            port = _unused_port()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", str(wrapper), "--server.port",
                 str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                 "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                cwd=self.folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.url = f"http://127.0.0.1:{port}"
            if self._ready():
                return self
            self.proc.kill()
            self.proc.wait()
        raise RuntimeError("streamlit run did not start on any of 5 ports")

    def _ready(self) -> bool:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False  # the port was taken: try another
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return False

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def lines(self) -> list[str]:
        return self.log.read_text().split() if self.log.is_file() else []

    @property
    def sessions(self) -> int:
        return len(set(self.lines))

    @property
    def runs(self) -> int:
        return len(self.lines)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Misbehaving:
    """A server that speaks Streamlit's protocol (its own protobufs) and misbehaves as
    `mode` says: "ok", "refuse" (the websocket answered 403), "503" (the page), "close"
    (the websocket closed with 1011 during the first run), "hang" (no answer), "script-error"
    (an exception element, then a finish), "early" (finished early for a rerun, then
    finished)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.url = ""
        self.reruns = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Misbehaving:
        from websockets.asyncio.server import serve

        self._thread.start()

        async def start() -> Any:
            return await serve(self._session, "127.0.0.1", 0, subprotocols=["streamlit"],
                               process_request=self._http, ping_interval=None)

        self._server = asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self._server.close()  # closes the open sessions too
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _http(self, connection: Any, request: Any) -> Any:
        if request.path.startswith("/_stcore/stream"):
            return connection.respond(403, "forbidden\n") if self.mode == "refuse" else None
        if self.mode == "503":
            return connection.respond(503, "Service Unavailable\n")
        return connection.respond(200, "<!doctype html><title>app</title>\n")

    async def _session(self, ws: Any) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        finished = ForwardMsg.ScriptFinishedStatus
        async for _ in ws:
            self.reruns += 1
            if self.mode == "close":
                await ws.close(1011, "internal error")
                return
            if self.mode == "hang":
                await ws.wait_closed()  # never answers
                return
            if self.mode == "script-error":
                msg = ForwardMsg()
                msg.delta.new_element.exception.type = "ZeroDivisionError"
                msg.delta.new_element.exception.message = "division by zero"
                await ws.send(msg.SerializeToString())
            if self.mode == "early":
                await ws.send(ForwardMsg(script_finished=finished.Value(
                    "FINISHED_EARLY_FOR_RERUN")).SerializeToString())
                await asyncio.sleep(0.2)
            await ws.send(ForwardMsg(script_finished=finished.Value(
                "FINISHED_SUCCESSFULLY")).SerializeToString())


if __name__ == "__main__":  # a server of its own (benchmarks): prints its URL, serves until killed
    with Misbehaving(sys.argv[1] if len(sys.argv) > 1 else "ok") as served:
        print(served.url, flush=True)
        threading.Event().wait()
