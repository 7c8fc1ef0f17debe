"""Helpers shared by the Python tests: servers on free ports, event waits,
and small WebSocket client routines (websockets >= 14)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from wse_server import RustWSEServer, rust_jwt_encode

SECRET = b"k" * 32
"""An HS256 secret of the minimum length."""


def token(sub: str = "alice", secret: bytes = SECRET, **claims: Any) -> str:
    """A valid HS256 token for ``sub`` (one hour)."""
    body: dict[str, Any] = {"sub": sub, "exp": int(time.time()) + 3600}
    body.update(claims)
    return rust_jwt_encode(body, secret)


def url(server: RustWSEServer, query: str = "") -> str:
    """The server's WebSocket URL."""
    return f"ws://127.0.0.1:{server.local_port()}/wse{query}"


def connect(server: RustWSEServer, *, jwt: str | None = None, cookie: str | None = None, query: str = "") -> Any:
    """``websockets.connect`` to the server, with a JWT cookie if given."""
    headers = {}
    if jwt is not None:
        headers["Cookie"] = f"access_token={jwt}"
    elif cookie is not None:
        headers["Cookie"] = cookie
    return websockets.connect(url(server, query), additional_headers=headers, max_size=None)


class Events:
    """Everything a drain-mode server delivered, with waits on it."""

    def __init__(self, server: RustWSEServer) -> None:
        self.server = server
        self.seen: list[tuple[str, str | None, Any]] = []
        self._cursor = 0

    def _pull(self) -> None:
        self.seen.extend(self.server.drain_inbound(256, 50))

    async def apull(self) -> None:
        self.seen.extend(await asyncio.to_thread(self.server.drain_inbound, 256, 50))

    async def next(
        self,
        kind: str | None = None,
        conn: str | None = None,
        pred: Callable[[tuple[str, str | None, Any]], bool] | None = None,
        timeout: float = 5.0,
    ) -> tuple[str, str | None, Any]:
        """The next event (after the last one returned) that matches."""
        deadline = time.monotonic() + timeout
        while True:
            while self._cursor < len(self.seen):
                ev = self.seen[self._cursor]
                self._cursor += 1
                if (kind is None or ev[0] == kind) and (conn is None or ev[1] == conn) and (pred is None or pred(ev)):
                    return ev
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind} event within {timeout}s; saw {self.seen}")
            await self.apull()

    def wait(self, kind: str | None = None, conn: str | None = None, timeout: float = 5.0) -> tuple[str, str | None, Any]:
        """Synchronous ``next``."""
        deadline = time.monotonic() + timeout
        while True:
            while self._cursor < len(self.seen):
                ev = self.seen[self._cursor]
                self._cursor += 1
                if (kind is None or ev[0] == kind) and (conn is None or ev[1] == conn):
                    return ev
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind} event within {timeout}s; saw {self.seen}")
            self._pull()


async def recv_json(ws: ClientConnection, pred: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 5.0) -> dict[str, Any]:
    """The next text frame that is a JSON object matching ``pred`` (server
    pings and other frames are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no matching frame")
        frame = await asyncio.wait_for(ws.recv(), left)
        if isinstance(frame, bytes):
            continue
        try:
            msg = json.loads(frame)
        except ValueError:
            continue
        if isinstance(msg, dict) and (pred is None or pred(msg)):
            return msg


async def recv_frame(ws: ClientConnection, timeout: float = 5.0) -> str | bytes:
    """The next frame that is not a server heartbeat."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
        if isinstance(frame, str) and frame.startswith('{"c":"WSE","t":"ping"'):
            continue
        return frame


async def closed_code(ws: ClientConnection, timeout: float = 10.0) -> int | None:
    """Read until the server closes; the close code it sent."""
    try:
        async with asyncio.timeout(timeout):
            async for _ in ws:
                pass
    except websockets.ConnectionClosed:
        pass
    return ws.close_code


def stamped(topic: str) -> Callable[[dict[str, Any]], bool]:
    """``recv_json`` predicate: a stamped publication of ``topic``."""
    return lambda m: m.get("tp") == topic


def wait_visible(server: Any, topic: str, next_offset: int, timeout: float = 5.0) -> dict[str, Any]:
    """Wait until ``topic``'s appended records are visible up to
    ``next_offset`` (appends become visible once the log's writer thread
    has written them) and return the position."""
    deadline = time.monotonic() + timeout
    while True:
        pos = server.position(topic)
        if pos is not None and pos["next_offset"] >= next_offset:
            return pos
        if time.monotonic() > deadline:
            raise AssertionError(f"{topic}: {pos}, expected next_offset {next_offset}")
        time.sleep(0.005)
