"""Simulated students: each opens a real Streamlit session on an app as a browser does, and
reruns it as a student interacting would (`rehearse`).

What a browser does (Streamlit's own frontend, ConnectionManager/WebsocketConnection, in the
`streamlit` package's static bundle): GET the page, then `_stcore/health` and
`_stcore/host-config`, then a websocket on `_stcore/stream` with the subprotocols
`["streamlit", <the _streamlit_xsrf cookie or "PLACEHOLDER_AUTH_TOKEN">]`, its page's `Origin`
and its cookies (on Cloud Run the session-affinity cookie, which keeps a student on one
instance). It sends a `BackMsg` `rerun_script` with its `ClientState` and reads `ForwardMsg`s
until `script_finished`. The server's side (streamlit/web/server/starlette/
starlette_websocket.py) checks the Origin against the Host and parses those subprotocols.

The messages are the `streamlit` package's own protobufs (extra `rehearse`). No client pings:
a browser sends none, and a library's default keepalive (websockets pings every 20 s and closes
with 1011 when a busy server's pong is late) would end sessions a browser keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from stx_pulumi.model.rehearsal import CLOSED, CONNECT, HTTP, REFUSED, SCRIPT, TIMEOUT, Event

XSRF_COOKIE = "_streamlit_xsrf"
NO_TOKEN = "PLACEHOLDER_AUTH_TOKEN"  # what the frontend sends when it has no XSRF cookie


@dataclass(frozen=True)
class Plan:
    """What every student does: open the app at `url`, then rerun every `think_s` (± half)
    until `until` (seconds since `start`); each answer within `timeout_s`."""

    url: str
    until: float
    think_s: float
    timeout_s: float
    start: float   # time.monotonic() of the rehearsal's start


class Turned(Exception):
    """A student's session ended: the event that says why."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def protos() -> Any:
    """The Streamlit protobuf modules (the extra `rehearse`), or PrerequisiteError."""
    from stx_pulumi.errors import PrerequisiteError

    try:
        from streamlit.proto import BackMsg_pb2, ClientState_pb2, ForwardMsg_pb2
    except ImportError:
        raise PrerequisiteError("rehearse speaks Streamlit's protocol with the streamlit "
                                "package", hint="pip install 'stx-pulumi[rehearse]'") from None
    return BackMsg_pb2, ClientState_pb2, ForwardMsg_pb2


def speaks() -> str:
    from importlib.metadata import version

    return version("streamlit")


async def student(number: int, plan: Plan, http: Any, record: Callable[[Event], None],
                  stop: asyncio.Event) -> None:
    """One student from arrival to the end of the rehearsal; every outcome is an event."""
    def now() -> float:
        return time.monotonic() - plan.start

    connected = False
    try:
        cookies = await _open_page(plan, http)
        async with _connect(plan, cookies) as ws:
            connected = True
            record(Event(number, now(), "connected"))
            started = time.monotonic()
            await ws.send(_rerun(plan.url))
            version = await _until_finished(ws, plan.timeout_s)
            record(Event(number, now(), "run", time.monotonic() - started + cookies.took,
                         first=True, detail=version or ""))
            while True:
                think = plan.think_s * random.uniform(0.5, 1.5)
                if now() + think >= plan.until or stop.is_set():
                    break
                try:
                    await asyncio.wait_for(stop.wait(), think)
                    break  # stopped while thinking
                except TimeoutError:
                    pass
                started = time.monotonic()
                await ws.send(_rerun(plan.url))
                await _until_finished(ws, plan.timeout_s)
                record(Event(number, now(), "run", time.monotonic() - started))
    except Turned as turned:
        record(Event(number, now(), turned.kind, detail=turned.detail))
    except asyncio.CancelledError:
        raise
    except Exception as err:  # anything else a network can do: named, never a crash
        record(Event(number, now(), CONNECT, detail=f"{type(err).__name__}: {err}"[:200]))
    finally:
        if connected:
            record(Event(number, now(), "left"))


@dataclass
class _Cookies:
    jar: dict[str, str]
    took: float  # seconds the page and its endpoints took (part of the first render)

    def header(self) -> str:
        return _cookie_header(self.jar)


def _cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


async def _open_page(plan: Plan, http: Any) -> _Cookies:
    """The page, then the two endpoints the frontend asks before it opens the websocket; the
    cookies they set (Cloud Run's affinity cookie, Streamlit's XSRF cookie)."""
    import httpx

    started = time.monotonic()
    jar: dict[str, str] = {}
    base = plan.url.rstrip("/")
    for path in ("", "/_stcore/health", "/_stcore/host-config"):
        try:
            answer = await http.get(base + (path or "/"), timeout=plan.timeout_s,
                                    headers={"Cookie": _cookie_header(jar)} if jar
                                    else None)
        except httpx.TimeoutException:
            raise Turned(TIMEOUT, f"GET {path or '/'}") from None
        except httpx.HTTPError as err:
            raise Turned(CONNECT, f"GET {path or '/'}: {type(err).__name__}") from None
        if answer.status_code != 200:
            raise Turned(f"{HTTP}{answer.status_code}", f"GET {path or '/'}")
        for line in answer.headers.get_list("set-cookie"):
            parsed: SimpleCookie = SimpleCookie()
            try:
                parsed.load(line)
            except Exception:  # a cookie Python cannot parse: a browser would skip it too
                continue
            jar.update({k: m.value for k, m in parsed.items()})
    return _Cookies(jar, time.monotonic() - started)


def _socket_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/_stcore/stream", "",
                       ""))


class _connect:
    """The websocket a browser opens (see the module's docstring), as `async with`."""

    def __init__(self, plan: Plan, cookies: _Cookies) -> None:
        self.plan, self.cookies = plan, cookies

    async def __aenter__(self) -> Any:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidStatus

        parts = urlsplit(self.plan.url)
        headers = {"Cookie": self.cookies.header()} if self.cookies.jar else {}
        token = self.cookies.jar.get(XSRF_COOKIE) or NO_TOKEN
        try:
            self.ws = await connect(
                _socket_url(self.plan.url), subprotocols=["streamlit", token],  # type: ignore[list-item]
                origin=f"{parts.scheme}://{parts.netloc}",  # type: ignore[arg-type]
                additional_headers=headers, ping_interval=None, max_size=None,
                open_timeout=self.plan.timeout_s, close_timeout=2)
        except InvalidStatus as err:
            raise Turned(REFUSED, f"HTTP {err.response.status_code}") from None
        except TimeoutError:
            raise Turned(TIMEOUT, "opening the websocket") from None
        except InvalidHandshake as err:
            raise Turned(REFUSED, type(err).__name__) from None
        except OSError as err:
            raise Turned(CONNECT, f"websocket: {err.strerror or err}") from None
        return self.ws

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):  # a broken socket: nothing left to tell
            await asyncio.wait_for(self.ws.close(), 3)


def _rerun(url: str) -> bytes:
    """The BackMsg a browser sends to run the page's script (App.tsx `rerunScript`)."""
    back, client, _ = protos()
    parts = urlsplit(url)
    context = {"timezone": "UTC", "timezone_offset": 0, "locale": "en-US", "url": url,
               "is_embedded": False, "color_scheme": "light"}
    known = client.ContextInfo.DESCRIPTOR.fields_by_name  # older Streamlits know fewer
    state = client.ClientState(
        query_string=parts.query, page_script_hash="", page_name="",
        context_info=client.ContextInfo(**{k: v for k, v in context.items() if k in known}))
    message: bytes = back.BackMsg(rerun_script=state).SerializeToString()
    return message


async def _until_finished(ws: Any, timeout_s: float) -> str | None:
    """Read ForwardMsgs until the script run finishes; its Streamlit version (from
    new_session) when said. A script error is an exception element in a delta (not a
    warning), or a compile error; "finished early for a rerun" is not a finish."""
    from websockets.exceptions import ConnectionClosed

    _, _, forward = protos()
    finished = forward.ForwardMsg.ScriptFinishedStatus
    version = None
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            data = await asyncio.wait_for(ws.recv(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise Turned(TIMEOUT, f"no script_finished within {timeout_s:g}s") from None
        except ConnectionClosed as err:
            code = err.rcvd.code if err.rcvd else 1006
            raise Turned(CLOSED, f"code {code}") from None
        if isinstance(data, str):
            continue  # Streamlit speaks binary frames only
        message = forward.ForwardMsg()
        message.ParseFromString(data)
        kind = message.WhichOneof("type")
        if kind == "new_session":
            version = message.new_session.initialize.environment_info.streamlit_version
        elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            element = message.delta.new_element
            if element.WhichOneof("type") == "exception" and not element.exception.is_warning:
                error = element.exception
                raise Turned(SCRIPT, f"{error.type}: {error.message}"[:200])
        elif kind == "script_finished":
            status = message.script_finished
            if status == finished.Value("FINISHED_WITH_COMPILE_ERROR"):
                raise Turned(SCRIPT, "compile error")
            if status != finished.Value("FINISHED_EARLY_FOR_RERUN"):
                return version
