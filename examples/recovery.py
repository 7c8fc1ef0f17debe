"""Recovery across a server restart, with the real `wse-client` client.

1. A server with a data directory publishes ticks 0-4; the client gets them.
2. The server stops. While it is down, ticks 5-9 are appended to the same
   log (here by a second server process on another port, as a publisher
   that kept running would).
3. The server starts again on the same port. The client reconnects on its
   own, asks to recover from the last position it saw (epoch, offset 4),
   and the app's `subscribe_with_recovery` replays 5-9 from the log before
   live ticks 10-14 follow: no gap, no duplicate.

The app side is the one every upstream app has: a drain loop answering
`subscription_update` with `subscribe_with_recovery` and a reply frame.

    pip install wse-client
    python examples/recovery.py
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from wse_client import AsyncWSEClient, ReconnectConfig

from wse_server import RustWSEServer, rust_jwt_encode

SECRET = b"an-example-secret-of-32-bytes-min"


class App:
    """Drain loop: answers `subscription_update` (subscribe, recover)."""

    def __init__(self, server: RustWSEServer) -> None:
        self.server = server
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopping.is_set():
            for kind, conn, data in self.server.drain_inbound(64, 50):
                if kind == "msg" and isinstance(data, dict) and data.get("t") == "subscription_update":
                    self.on_subscription_update(conn, data.get("p") or {})

    def on_subscription_update(self, conn: str, p: dict[str, Any]) -> None:
        topics = list(p.get("topics") or [])
        if p.get("action") == "unsubscribe":
            self.server.unsubscribe_connection(conn, topics)
            return
        recovery: dict[str, Any] = {}
        for topic in topics:
            position = (p.get("recovery") or {}).get(topic) if p.get("recover") else None
            if position:
                # Replays what the client missed (queued before this returns),
                # then live messages follow from the same cursor.
                result = self.server.subscribe_with_recovery(
                    conn, [topic], True, position["epoch"], position["offset"]
                )
                recovery[topic] = result["topics"][topic]
                print(f"  app: recovered {topic}: {recovery[topic]}", flush=True)
            else:
                self.server.subscribe_connection(conn, [topic])
        reply = {"action": "subscribe", "success": True, "success_topics": topics, "failed_topics": []}
        if recovery:
            reply["recovery"] = recovery
        self.server.send(conn, json.dumps({"c": "WSE", "t": "subscription_update", "p": reply, "v": 1}))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


def start(port: int, data_dir: Path) -> tuple[RustWSEServer, App]:
    server = RustWSEServer("127.0.0.1", port, jwt_secret=SECRET, recovery_enabled=True, data_dir=data_dir)
    server.enable_drain_mode()
    server.start()
    return server, App(server)


def stop(server: RustWSEServer, app: App) -> None:
    app.stop()
    server.stop()


def publish(server: RustWSEServer, first: int, count: int) -> None:
    for i in range(first, first + count):
        server.broadcast_local("ticks", json.dumps({"t": "tick", "p": {"i": i}}))


async def wait_for(pred: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


async def demo(data_dir: Path) -> list[Any]:
    server, app = start(0, data_dir)
    port = server.local_port()
    token = rust_jwt_encode({"sub": "demo-user", "exp": int(time.time()) + 3600}, SECRET)
    client = AsyncWSEClient(
        f"ws://127.0.0.1:{port}/wse",
        token=token,
        reconnect=ReconnectConfig(base_delay=0.2, max_delay=0.5, jitter=False),
    )
    got: list[Any] = []

    async def receive_until(last: int) -> None:
        while not got or got[-1].payload["i"] < last:
            event = await client.recv(timeout=20)
            if event.type == "tick":
                got.append(event)
                print(f"  client: tick {event.payload['i']} (epoch {event.epoch}, offset {event.offset})", flush=True)

    await client.connect()
    try:
        await client.subscribe(["ticks"])
        await wait_for(lambda: server.get_topic_subscriber_count("ticks") == 1)
        print("1. live ticks 0-4", flush=True)
        publish(server, 0, 5)
        await receive_until(4)

        print("2. the server stops; ticks 5-9 are published while it is down", flush=True)
        await asyncio.to_thread(stop, server, app)
        other, other_app = await asyncio.to_thread(start, 0, data_dir)
        publish(other, 5, 5)
        await wait_for(lambda: (other.position("ticks") or {}).get("next_offset") == 10)
        await asyncio.to_thread(stop, other, other_app)

        print("3. the server is back; the client reconnects and recovers", flush=True)
        server, app = await asyncio.to_thread(start, port, data_dir)
        await receive_until(9)
        publish(server, 10, 5)
        await receive_until(14)
    finally:
        await client.disconnect()
        await asyncio.to_thread(stop, server, app)
    return got


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="wse-recovery-") as tmp:
        got = asyncio.run(demo(Path(tmp) / "data"))
    ticks = [e.payload["i"] for e in got]
    offsets = [e.offset for e in got]
    if ticks == list(range(15)) and offsets == list(range(15)) and len({e.epoch for e in got}) == 1:
        print("recovered ticks 5-9 after the restart: 15 ticks, no gap, no duplicate", flush=True)
        return 0
    print(f"unexpected ticks {ticks} offsets {offsets}", flush=True)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
