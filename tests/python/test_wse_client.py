"""End to end with the real `wse-client` package from PyPI: connect,
subscribe, receive broadcasts, lose the server, reconnect to the restarted
server and recover what was missed, without gaps or duplicates."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from wse_client import AsyncWSEClient, ReconnectConfig

from wse_server import RustWSEServer

from wsetest import SECRET, token, wait_visible


class App:
    """A drain-mode app that answers `subscription_update` itself, the way
    upstream apps do: subscribe_with_recovery, then the reply frame."""

    def __init__(self, server: RustWSEServer) -> None:
        self.server = server
        self.stopping = threading.Event()
        self.events: list[tuple[str, str | None, Any]] = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopping.is_set():
            for kind, conn, data in self.server.drain_inbound(64, 50):
                self.events.append((kind, conn, data))
                if kind == "msg" and isinstance(data, dict) and data.get("t") == "subscription_update":
                    self.subscription_update(conn, data.get("p") or {})

    def subscription_update(self, conn: str | None, p: dict[str, Any]) -> None:
        assert conn is not None
        topics = list(p.get("topics") or [])
        if p.get("action") == "unsubscribe":
            self.server.unsubscribe_connection(conn, topics)
            return
        recovery: dict[str, Any] = {}
        positions = p.get("recovery") or {}
        for topic in topics:
            pos = positions.get(topic) if p.get("recover") else None
            if pos:
                r = self.server.subscribe_with_recovery(conn, [topic], True, pos["epoch"], pos["offset"])
                recovery[topic] = r["topics"][topic]
            else:
                self.server.subscribe_connection(conn, [topic])
        reply = {"action": "subscribe", "success": True, "success_topics": topics, "failed_topics": []}
        if recovery:
            reply["recovery"] = recovery
        self.server.send(conn, json.dumps({"c": "WSE", "t": "subscription_update", "p": reply, "v": 1}))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)


def start_server(port: int, data_dir: Path, mode: str, **options: Any) -> tuple[RustWSEServer, App | None]:
    if mode == "app":
        s = RustWSEServer("127.0.0.1", port, jwt_secret=SECRET, recovery_enabled=True, data_dir=data_dir,
                          **options)
        s.enable_drain_mode()
        s.start()
        return s, App(s)
    s = RustWSEServer("127.0.0.1", port, recovery_enabled=True, data_dir=data_dir, core_subscriptions=True,
                      server_ready_without_auth=True, app_events=False, **options)
    s.start()
    return s, None


def stop_server(s: RustWSEServer, app: App | None) -> None:
    if app:
        app.stop()
    s.stop()


def publish(s: RustWSEServer, first: int, count: int) -> None:
    for i in range(first, first + count):
        s.broadcast_local("news", json.dumps({"t": "tick", "p": {"i": i}}))


async def collect_ticks(client: AsyncWSEClient, received: list[Any], until: int) -> None:
    """Append the client's `tick` events to `received` until tick `until`."""
    while not received or received[-1].payload["i"] < until:
        ev = await client.recv(timeout=15)
        if ev.type == "tick":
            received.append(ev)


async def wait_until(pred, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("mode", ["app", "core"])
def test_client_recovers_across_a_server_restart(tmp_path: Path, mode: str) -> None:
    data = tmp_path / "data"
    server, app = start_server(0, data, mode)
    port = server.local_port()
    assert port is not None
    url = f"ws://127.0.0.1:{port}/wse"
    received: list[Any] = []

    async def main() -> None:
        nonlocal server, app
        client = AsyncWSEClient(
            url,
            token=token("alice") if mode == "app" else None,
            reconnect=ReconnectConfig(base_delay=0.2, max_delay=0.5, jitter=False),
        )
        await client.connect()
        try:
            assert client.recovery_enabled
            await client.subscribe(["news"])
            await wait_until(lambda: server.get_topic_subscriber_count("news") == 1)

            async def collect(until: int) -> None:
                await collect_ticks(client, received, until)

            publish(server, 0, 5)
            await collect(4)
            epoch = received[0].epoch

            # The server goes away; the client keeps reconnecting.
            await asyncio.to_thread(stop_server, server, app)
            # Meanwhile messages 5..9 are published (by another process on
            # another port, say: same data directory, same history).
            other, other_app = await asyncio.to_thread(start_server, 0, data, mode)
            publish(other, 5, 5)
            wait_visible(other, "news", 10)
            await asyncio.to_thread(stop_server, other, other_app)
            # The server comes back where the client expects it.
            server, app = await asyncio.to_thread(start_server, port, data, mode)
            await wait_until(lambda: server.get_topic_subscriber_count("news") == 1, 20)
            await collect(9)  # recovered from the log
            publish(server, 10, 5)
            await collect(14)  # live again
            assert client.recovery_state["news"] == (epoch, 14)
        finally:
            await client.disconnect()

    try:
        asyncio.run(main())
        assert [ev.payload["i"] for ev in received] == list(range(15))
        assert [ev.offset for ev in received] == list(range(15))
        assert {ev.epoch for ev in received} == {received[0].epoch}
        assert all(ev.topic == "news" for ev in received)
        if app is not None:
            deadline = time.monotonic() + 5
            while not any(e[0] == "disconnect" for e in app.events) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert any(e[0] == "disconnect" for e in app.events)
    finally:
        stop_server(server, app)


def test_client_gap_detection_triggers_recovery(tmp_path: Path) -> None:
    """A client that missed live messages (it was unsubscribed) sees the gap
    on the next one and recovers it through the app."""
    server, app = start_server(0, tmp_path / "data", "app")
    received: list[Any] = []

    async def main() -> None:
        client = AsyncWSEClient(f"ws://127.0.0.1:{server.local_port()}/wse", token=token("bob"))
        await client.connect()
        try:
            await client.subscribe(["news"])
            await wait_until(lambda: server.get_topic_subscriber_count("news") == 1)
            publish(server, 0, 2)
            await collect_ticks(client, received, 1)
            conn = server.get_connections()[0]
            server.unsubscribe_connection(conn, ["news"])
            publish(server, 2, 3)  # missed
            wait_visible(server, "news", 5)
            server.subscribe_connection(conn, ["news"])
            publish(server, 5, 1)  # offset 5: the client sees a gap after 1
            await collect_ticks(client, received, 5)
        finally:
            await client.disconnect()

    try:
        asyncio.run(main())
        assert [ev.payload["i"] for ev in received] == list(range(6))
    finally:
        stop_server(server, app)


@pytest.mark.parametrize("mode", ["app", "core"])
def test_client_recovers_5000_missed_on_a_quiet_topic(tmp_path: Path, mode: str) -> None:
    """5,000 messages published while the client was away, and nothing
    after it comes back: the whole gap arrives without new traffic (it used
    to come in pages, the rest only when the next message arrived)."""
    data = tmp_path / "data"
    options = {"recovery_max_messages": 10_000}
    server, app = start_server(0, data, mode, **options)
    port = server.local_port()
    assert port is not None
    received: list[Any] = []

    async def main() -> None:
        nonlocal server, app
        client = AsyncWSEClient(
            f"ws://127.0.0.1:{port}/wse",
            token=token("carol") if mode == "app" else None,
            reconnect=ReconnectConfig(base_delay=0.2, max_delay=0.5, jitter=False),
            # The client drops its oldest events past queue_size (1000 by
            # default): room for the whole replay.
            queue_size=10_000,
        )
        await client.connect()
        try:
            await client.subscribe(["news"])
            await wait_until(lambda: server.get_topic_subscriber_count("news") == 1)
            publish(server, 0, 1)
            await collect_ticks(client, received, 0)
            await asyncio.to_thread(stop_server, server, app)
            other, other_app = await asyncio.to_thread(start_server, 0, data, mode, **options)
            publish(other, 1, 5000)
            other.flush(timeout=30)
            await asyncio.to_thread(stop_server, other, other_app)
            server, app = await asyncio.to_thread(start_server, port, data, mode, **options)
            # The topic stays quiet from now on.
            await collect_ticks(client, received, 5000)
        finally:
            await client.disconnect()

    try:
        asyncio.run(main())
        assert [ev.payload["i"] for ev in received] == list(range(5001))
        assert [ev.offset for ev in received] == list(range(5001))
    finally:
        stop_server(server, app)
