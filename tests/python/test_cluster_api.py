"""The Python API of a cluster node: three `RustWSEServer`s in this process
made cluster nodes by their constructor, publishing with an idempotence
key, presence across nodes, and adding and removing a fourth node with
`add_node` / `remove_node`."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from wse_server import RustWSEServer
from wsetest import Events, connect, recv_json

FAST = {"cluster_shards": 2, "cluster_heartbeat": 0.05, "cluster_election_timeout": 0.4}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node(node_id: int, peer_ports: dict[int, int], data: Path, **options: Any) -> RustWSEServer:
    peers = ",".join(f"{i}=127.0.0.1:{p}" for i, p in sorted(peer_ports.items()))
    server = RustWSEServer(
        "127.0.0.1", 0, data_dir=str(data / f"n{node_id}"), node_id=node_id,
        cluster_listen=f"127.0.0.1:{peer_ports[node_id]}", cluster_peers=peers,
        cluster_insecure=True, **FAST, **options,
    )
    server.enable_drain_mode()
    server.start()
    return server


def until(what: str, check: Any, timeout: float = 30.0) -> Any:
    """Poll ``check`` (a node's state: there is no event for it) until it
    returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.05)


def leaders_known(server: RustWSEServer) -> bool:
    status = server.cluster_status()
    return status is not None and all(s["leader"] is not None for s in status["shards"])


@pytest.fixture
def cluster(tmp_path: Path):
    ports = {i: free_port() for i in (1, 2, 3)}
    nodes = {i: node(i, ports, tmp_path, presence_enabled=True) for i in ports}
    try:
        for n in nodes.values():
            until("leaders elected", lambda n=n: leaders_known(n))
        yield nodes, ports, tmp_path
    finally:
        for n in nodes.values():
            n.stop()


def test_a_publish_retried_with_its_id_is_stored_once_whichever_node_takes_it(cluster) -> None:
    nodes, _, _ = cluster
    first = nodes[1].publish("orders", '{"n": 1}', id="order-1")
    again = nodes[2].publish("orders", '{"n": 1}', id="order-1")
    other = nodes[3].publish("orders", '{"n": 2}', id="order-2")
    assert again == first
    assert other[1] == first[1] + 1
    for n in nodes.values():
        until("the records on every node", lambda n=n: n.position("orders") and n.position("orders")["next_offset"] == 2)
        assert n.position("orders")["epoch"] == first[0]
    assert nodes[1].cluster_connected() and nodes[1].cluster_peers_count() == 2


def test_presence_set_on_one_node_is_seen_on_every_node(cluster) -> None:
    nodes, _, _ = cluster
    events = Events(nodes[1])

    async def main() -> None:
        async with connect(nodes[1]) as ws:
            _, conn, _ = await events.next("connect")
            await ws.send(json.dumps({"t": "client_hello", "p": {"client_version": "test", "protocol_version": 1}}))
            hello = await recv_json(ws, lambda m: m.get("t") == "server_hello")
            assert hello["p"]["features"]["cluster"] is True
            nodes[1].subscribe_connection(conn, ["room"], {"status": "online"})
            for n in nodes.values():
                got = await asyncio.to_thread(until, "the join everywhere", lambda n=n: n.presence("room"))
                assert got == {conn: {"data": {"status": "online"}, "connections": 1}}
        for n in nodes.values():
            await asyncio.to_thread(until, "the leave everywhere", lambda n=n: n.presence("room") == {})

    asyncio.run(main())


def test_add_node_and_remove_node_change_every_shards_membership(cluster) -> None:
    nodes, ports, data = cluster
    nodes[1].publish("history", "before")
    ports[4] = free_port()
    fourth = node(4, ports, data, cluster_join=True)
    try:
        changed = nodes[2].add_node(4, f"127.0.0.1:{ports[4]}", timeout=60)
        assert changed == [0, 1]
        # add_node returns once the shards' leaders committed the change;
        # another node sees it when it applies it.
        status = until(
            "node 1 sees node 4 in every shard",
            lambda: (st := nodes[1].cluster_status())
            and all(4 in s["voters"] for s in st["shards"])
            and st,
        )
        assert status["members"]["4"] == f"127.0.0.1:{ports[4]}"
        # The new node holds the history and takes publishes.
        until("the history on the new node", lambda: fourth.position("history"))
        assert fourth.publish("history", "after")[1] == 1
        assert nodes[3].add_node(4, f"127.0.0.1:{ports[4]}") == [], "asked again: nothing to change"

        assert sorted(nodes[1].remove_node(4)) == [0, 1]
        until(
            "node 3 sees node 4 gone from every shard",
            lambda: all(4 not in s["voters"] for s in nodes[3].cluster_status()["shards"]),
        )
    finally:
        fourth.stop()


def test_a_single_node_has_no_cluster_to_change(make_server) -> None:
    s = make_server()
    assert s.cluster_status() is None
    with pytest.raises(RuntimeError, match="not a cluster node"):
        s.add_node(2, "127.0.0.1:1")
    with pytest.raises(ValueError, match="not id=host:port"):
        RustWSEServer("127.0.0.1", 0, node_id=1, cluster_listen="127.0.0.1:1", cluster_peers="nonsense")
