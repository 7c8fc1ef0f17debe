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


class WireTap:
    """A loopback TCP proxy in front of a server that records every
    WebSocket frame the server sends (opcode, payload), so a test can see
    what actually crossed the wire (e.g. that it was encrypted)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.connections: list[list[tuple[int, bytes]]] = []
        """Per proxied connection, the server's frames in order."""
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen on a free loopback port; returns it."""
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _pipe(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.close()
            return

        async def up() -> None:
            while data := await client_r.read(65536):
                server_w.write(data)
                await server_w.drain()
            server_w.close()

        frames: list[tuple[int, bytes]] = []
        self.connections.append(frames)

        async def down() -> None:
            buf = b""
            upgraded = False
            while data := await server_r.read(65536):
                client_w.write(data)
                await client_w.drain()
                buf += data
                if not upgraded:
                    head, sep, rest = buf.partition(b"\r\n\r\n")
                    if not sep:
                        continue
                    upgraded, buf = True, rest
                buf = self._parse(buf, frames)
            client_w.close()

        await asyncio.gather(up(), down(), return_exceptions=True)

    @staticmethod
    def _parse(buf: bytes, frames: list[tuple[int, bytes]]) -> bytes:
        """Record the complete server frames (unmasked) at the start of
        ``buf``; returns the incomplete rest."""
        while len(buf) >= 2:
            opcode, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, at = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, at = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < at + n:
                break
            frames.append((opcode, buf[at : at + n]))
            buf = buf[at + n :]
        return buf

    def after_key_exchange(self) -> list[tuple[int, bytes]]:
        """The data frames sent after each ``server_hello`` that carried a
        key, protocol frames (heartbeats, pongs, errors, hellos) left out."""
        out: list[tuple[int, bytes]] = []
        for frames in self.connections:
            out.extend(self._after_key_exchange(frames))
        return out

    @staticmethod
    def _after_key_exchange(frames: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        keyed = False
        for opcode, payload in frames:
            if opcode == 1 and b'"server_hello"' in payload:
                keyed = b'"encryption_public_key"' in payload
                continue
            if opcode not in (1, 2) or not keyed:
                continue
            if opcode == 1 and any(t in payload for t in (b'"t":"ping"', b'"t":"PONG"', b'"t":"error"')):
                continue
            out.append((opcode, payload))
        return out

    def server_keys(self) -> list[str]:
        """The server public keys handed out, in order."""
        keys = []
        for opcode, payload in (f for frames in self.connections for f in frames):
            if opcode == 1 and b'"server_hello"' in payload:
                key = json.loads(payload)["p"].get("encryption_public_key")
                if key:
                    keys.append(key)
        return keys
