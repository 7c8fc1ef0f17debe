"""End-to-end encryption with the real `wse-client` package (PyPI) and its
`cryptography`-based SecurityManager: the key exchange, encrypted
broadcasts, encrypted recovery after a reconnect, encrypted sends in both
directions, and a msgpack connection with encryption.

A loopback proxy (``WireTap``) records what the server put on the wire, so
the tests check that the data really travelled sealed: the client alone
would also accept plaintext."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from wse_client import AsyncWSEClient, ReconnectConfig

from wse_server import RustWSEServer

from wsetest import SECRET, WireTap, token, wait_visible


def core_server(port: int, data_dir: Path) -> RustWSEServer:
    """A standalone-style server: the core answers subscriptions."""
    s = RustWSEServer("127.0.0.1", port, recovery_enabled=True, data_dir=data_dir, core_subscriptions=True,
                      server_ready_without_auth=True, app_events=False)
    s.start()
    return s


def publish(s: RustWSEServer, first: int, count: int, topic: str = "news") -> None:
    for i in range(first, first + count):
        s.broadcast_local(topic, json.dumps({"t": "tick", "p": {"i": i, "secret": f"plaintext-{i}"}}))


async def wait_until(pred: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def ticks(client: AsyncWSEClient, until: int, into: list[Any]) -> None:
    while not into or into[-1].payload["i"] < until:
        ev = await client.recv(timeout=15)
        if ev.type == "tick":
            into.append(ev)


def assert_sealed(tap: WireTap, at_least: int) -> None:
    """Every data frame after the key exchange was an ``E:`` binary frame,
    and no message text crossed the wire in clear after it."""
    data = tap.after_key_exchange()
    assert len(data) >= at_least, data
    for opcode, payload in data:
        assert opcode == 2 and payload.startswith(b"E:"), payload[:80]
        assert b"plaintext-" not in payload


def test_handshake_and_encrypted_broadcasts(tmp_path: Path) -> None:
    server = core_server(0, tmp_path / "data")
    received: list[Any] = []

    async def main() -> WireTap:
        tap = WireTap(server.local_port() or 0)
        port = await tap.start()
        client = AsyncWSEClient(f"ws://127.0.0.1:{port}/wse", encryption=True)
        await client.connect()
        try:
            await wait_until(lambda: bool(tap.server_keys()))
            await client.subscribe(["news"])
            await wait_until(lambda: server.get_topic_subscriber_count("news") == 1)
            publish(server, 0, 20)
            await ticks(client, 19, received)
        finally:
            await client.disconnect()
            await tap.close()
        return tap

    try:
        tap = asyncio.run(main())
        assert [ev.payload["i"] for ev in received] == list(range(20))
        assert received[5].payload["secret"] == "plaintext-5"
        assert [ev.offset for ev in received] == list(range(20))
        # The subscription reply and all 20 messages were sealed.
        assert_sealed(tap, 21)
        assert len(tap.server_keys()) == 1
        assert server.health_snapshot()["frames_encrypted"] >= 21  # the reply too
    finally:
        server.stop()


def test_encrypted_recovery_after_reconnect_and_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = core_server(0, data)
    upstream = server.local_port()
    assert upstream is not None
    received: list[Any] = []

    async def main() -> WireTap:
        nonlocal server
        tap = WireTap(upstream)
        port = await tap.start()
        client = AsyncWSEClient(f"ws://127.0.0.1:{port}/wse", encryption=True,
                                reconnect=ReconnectConfig(base_delay=0.2, max_delay=0.5, jitter=False))
        await client.connect()
        try:
            await client.subscribe(["news"])
            await wait_until(lambda: server.get_topic_subscriber_count("news") == 1)
            publish(server, 0, 5)
            await ticks(client, 4, received)
            # The server goes away; history grows meanwhile (same data dir).
            await asyncio.to_thread(server.stop)
            other = await asyncio.to_thread(core_server, 0, data)
            publish(other, 5, 30)
            wait_visible(other, "news", 35)
            await asyncio.to_thread(other.stop)
            server = await asyncio.to_thread(core_server, upstream, data)
            # The client reconnects (a new key), recovers 5..34 sealed.
            await ticks(client, 34, received)
            publish(server, 35, 5)
            await ticks(client, 39, received)
        finally:
            await client.disconnect()
            await tap.close()
        return tap

    try:
        tap = asyncio.run(main())
        assert [ev.payload["i"] for ev in received] == list(range(40))
        assert len({ev.epoch for ev in received}) == 1
        keys = tap.server_keys()
        assert len(keys) == 2 and keys[0] != keys[1], "a fresh key per connection"
        assert_sealed(tap, 40)
    finally:
        server.stop()


def test_encrypted_send_both_ways_through_an_app(make_server: Any) -> None:
    server: RustWSEServer = make_server(jwt_secret=SECRET)

    async def main() -> tuple[WireTap, list[Any], list[Any]]:
        tap = WireTap(server.local_port() or 0)
        port = await tap.start()
        client = AsyncWSEClient(f"ws://127.0.0.1:{port}/wse", token=token("alice"), encryption=True)
        got: list[Any] = []
        inbound: list[Any] = []
        await client.connect()
        try:
            await wait_until(lambda: bool(tap.server_keys()))
            conn = server.get_connections()[0]
            server.send(conn, json.dumps({"t": "note", "p": {"via": "send", "secret": "plaintext-a"}}))
            server.send_event(conn, {"t": "note", "p": {"via": "send_event", "secret": "plaintext-b"}})
            server.send_bytes(conn, json.dumps({"t": "note", "p": {"via": "send_bytes"}}).encode())
            while len(got) < 3:
                ev = await client.recv(timeout=10)
                if ev.type == "note":
                    got.append(ev.payload["via"])
            # And the client's own message, sealed by the client, reaches the app.
            await client.send("order", {"qty": 3})
            deadline = time.monotonic() + 10
            while not inbound and time.monotonic() < deadline:
                for kind, c, msg in await asyncio.to_thread(server.drain_inbound, 64, 50):
                    if kind == "msg" and c == conn and msg.get("t") == "order":
                        inbound.append(msg)
        finally:
            await client.disconnect()
            await tap.close()
        return tap, got, inbound

    tap, got, inbound = asyncio.run(main())
    assert got == ["send", "send_event", "send_bytes"]
    assert inbound and inbound[0]["p"] == {"qty": 3}
    assert_sealed(tap, 3)
    assert server.health_snapshot()["decrypt_failures"] == 0


def test_msgpack_connection_with_encryption(make_server: Any) -> None:
    server: RustWSEServer = make_server(jwt_secret=SECRET)

    async def main() -> tuple[WireTap, dict[str, Any]]:
        tap = WireTap(server.local_port() or 0)
        port = await tap.start()
        client = AsyncWSEClient(f"ws://127.0.0.1:{port}/wse?format=msgpack", token=token("bob"), encryption=True)
        await client.connect()
        try:
            await wait_until(lambda: bool(tap.server_keys()))
            conn = server.get_connections()[0]
            server.send_event(conn, {"t": "quote", "p": {"px": 101.5, "secret": "plaintext-q"}})
            while True:
                ev = await client.recv(timeout=10)
                if ev.type == "quote":
                    return tap, ev.payload
        finally:
            await client.disconnect()
            await tap.close()

    tap, payload = asyncio.run(main())
    assert payload == {"px": 101.5, "secret": "plaintext-q"}
    assert_sealed(tap, 1)
