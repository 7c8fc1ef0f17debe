"""A cluster of three `python -m wse_server serve` nodes, and the real
`wse-client` recovering across nodes: it reads from one node, loses it,
reconnects (through a proxy that now leads to another node) and gets
exactly what it missed, at the same (epoch, offset), while the messages are
published on a third node."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import websockets
from wse_client import AsyncWSEClient, ReconnectConfig


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Node:
    """One `wse serve` cluster node in a child process."""

    def __init__(self, node_id: int, port: int, peer_port: int, peers: str, data: Path) -> None:
        self.url = f"ws://127.0.0.1:{port}/wse"
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wse_server", "serve", "--port", str(port), "--data-dir", str(data),
             "--client-publish", "true", "--http-listen", "off", "--node-id", str(node_id),
             "--cluster-listen", f"127.0.0.1:{peer_port}", "--cluster-peers", peers, "--cluster-insecure",
             "--cluster-shards", "2", "--cluster-heartbeat-ms", "50", "--cluster-election-timeout-ms", "400"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert "listening on" in first, first

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Switch:
    """A TCP proxy whose target can be changed: switching drops the open
    connections, so the client reconnects, now to the new target."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.relay, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self.writers += [writer, up_writer]

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def switch(self, target: int) -> None:
        self.target = target
        for w in self.writers:
            w.close()
        self.writers.clear()


async def publish(url: str, first: int, count: int) -> list[tuple[str, int]]:
    """Publish ticks first..first+count on `news` through node `url`, each
    with an id, waiting for every ack; their (epoch, offset)."""
    acks = []
    async with websockets.connect(url) as ws:
        while json.loads(await ws.recv())["t"] != "server_ready":
            pass
        for i in range(first, first + count):
            await ws.send(json.dumps({"t": "publish", "id": f"tick-{i}",
                                      "p": {"topic": "news", "message": {"t": "tick", "p": {"i": i}}}}))
            while True:
                m = json.loads(await ws.recv())
                if m["t"] == "error":
                    raise AssertionError(m)
                if m["t"] == "publish_ack":
                    acks.append((m["p"]["epoch"], m["p"]["offset"]))
                    break
    return acks


async def collect(client: AsyncWSEClient, received: list[Any], until: int) -> None:
    while not received or received[-1].payload["i"] < until:
        ev = await client.recv(timeout=20)
        if ev.type == "tick":
            received.append(ev)


def test_a_client_recovers_on_another_node_exactly_what_it_missed(tmp_path: Path) -> None:
    ports = free_ports(6)
    peers = ",".join(f"{i + 1}=127.0.0.1:{ports[3 + i]}" for i in range(3))
    nodes = [Node(i + 1, ports[i], ports[3 + i], peers, tmp_path / f"n{i + 1}") for i in range(3)]
    received: list[Any] = []
    acks: list[tuple[str, int]] = []

    async def main() -> None:
        switch = Switch(nodes[0].port)
        proxy = await switch.start()
        client = AsyncWSEClient(f"ws://127.0.0.1:{proxy}/wse",
                                reconnect=ReconnectConfig(base_delay=0.2, max_delay=0.5, jitter=False))
        await client.connect()
        try:
            await client.subscribe(["news"])
            # Published on node 3, read on node 1 (through the proxy).
            acks.extend(await publish(nodes[2].url, 0, 5))
            await collect(client, received, 4)
            # Node 1 is lost to the client; it reconnects, now to node 2,
            # and recovers from its last (epoch, offset) there.
            switch.switch(nodes[1].port)
            acks.extend(await publish(nodes[2].url, 5, 5))
            await collect(client, received, 9)
            acks.extend(await publish(nodes[2].url, 10, 5))
            await collect(client, received, 14)
        finally:
            await client.disconnect()

    try:
        asyncio.run(main())
    finally:
        for n in nodes:
            n.stop()
    assert [ev.payload["i"] for ev in received] == list(range(15))
    assert [(ev.epoch, ev.offset) for ev in received] == acks
    assert len({ev.epoch for ev in received}) == 1
