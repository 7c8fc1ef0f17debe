"""Presence, cluster methods (connect_cluster: NotImplementedError), health and
Prometheus (§2.8-2.10)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from wsetest import Events, connect

UPSTREAM_HEALTH_KEYS = [
    "connections", "inbound_queue_depth", "inbound_dropped", "cluster_connected", "cluster_peer_count",
    "cluster_messages_sent", "cluster_messages_delivered", "cluster_messages_dropped", "cluster_bytes_sent",
    "cluster_bytes_received", "cluster_reconnect_count", "cluster_unknown_message_types", "cluster_dlq_size",
    "uptime_secs", "recovery_enabled", "recovery_topic_count", "recovery_total_bytes", "presence_enabled",
]


def test_presence_is_disabled_by_default(make_server) -> None:
    s = make_server()

    async def main() -> None:
        async with connect(s):
            conn = (await Events(s).next("connect"))[1]
            s.subscribe_connection(conn, ["room"], {"status": "online"})
            assert s.get_topic_subscriber_count("room") == 1
            assert s.presence("room") == {}
            assert s.presence_stats("room") == {"num_users": 0, "num_connections": 0}
            assert s.update_presence(conn, {"status": "away"}) is None

    asyncio.run(main())


def test_presence_joins_updates_and_leaves(make_server) -> None:
    s = make_server(presence_enabled=True, presence_max_data_size=64)

    async def main() -> None:
        events = Events(s)
        async with connect(s) as ws:
            conn = (await events.next("connect"))[1]
            s.subscribe_connection(conn, ["room"], {"status": "online"})
            ev = await events.next("presence_join")
            assert ev == ("presence_join", None, {"topic": "room", "user_id": conn, "data": {"status": "online"}})
            frame = json.loads(await ws.recv())
            assert frame == {"c": "WSE", "p": {"data": {"status": "online"}, "user_id": conn}, "t": "presence_join"}
            assert s.presence("room") == {conn: {"data": {"status": "online"}, "connections": 1}}
            assert s.presence_stats("room") == {"num_users": 1, "num_connections": 1}
            s.update_presence(conn, {"status": "away"})
            assert (await events.next("presence_update"))[2]["data"] == {"status": "away"}
            # As upstream: too large to track, subscribed without presence.
            s.subscribe_connection(conn, ["other"], {"blob": "x" * 100})
            assert s.presence("other") == {}
            assert s.get_topic_subscriber_count("other") == 1
            assert s.health_snapshot()["presence_refused"] == 1
            with pytest.raises(RuntimeError):
                s.update_presence("nobody", {})
        assert (await events.next("presence_leave"))[2] == {"topic": "room", "user_id": conn, "data": {"status": "away"}}
        await events.next("disconnect")
        assert s.presence_stats("room") == {"num_users": 0, "num_connections": 0}
        h = s.health_snapshot()
        assert h["presence_enabled"] is True and "presence_topics" in h and h["presence_total_users"] == 0

    asyncio.run(main())


def test_presence_events_reach_callbacks(make_server) -> None:
    s = make_server(start=False, drain=False, presence_enabled=True)
    seen: list[tuple[str, dict]] = []
    joined = threading.Event()

    def on_presence(kind: str, info: dict) -> None:
        seen.append((kind, info))
        joined.set()

    conns: list[str] = []
    s.set_callbacks(lambda c, _cookies: conns.append(c), lambda c, m: None, lambda c: None, on_presence)
    s.start()

    async def main() -> None:
        async with connect(s):
            while not conns:
                await asyncio.sleep(0.01)
            s.subscribe_connection(conns[0], ["room"], {"n": 1})
            assert await asyncio.to_thread(joined.wait, 10)

    asyncio.run(main())
    assert seen[0] == ("presence_join", {"topic": "room", "user_id": conns[0], "data": {"n": 1}})


def test_cluster_methods(make_server) -> None:
    s = make_server()
    with pytest.raises(NotImplementedError, match="node_id="):
        s.connect_cluster(["127.0.0.1:9999"])
    with pytest.raises(NotImplementedError):
        s.connect_cluster([], seeds=["a:1"], cluster_addr="b:2", cluster_port=7000)
    with pytest.raises(NotImplementedError):
        s.reload_cluster_tls("c.pem", "k.pem", "ca.pem")
    assert s.cluster_connected() is False
    assert s.cluster_peers_count() == 0
    assert s.cluster_info() == []
    assert s.get_cluster_dlq_entries() == []


def test_health_snapshot(make_server) -> None:
    s = make_server(start=False, recovery_enabled=True)
    h = s.health_snapshot()
    assert list(h)[: len(UPSTREAM_HEALTH_KEYS)] == UPSTREAM_HEALTH_KEYS
    assert h["uptime_secs"] == 0.0 and h["recovery_enabled"] is True and "presence_topics" not in h
    s.start()

    async def main() -> None:
        async with connect(s):
            await Events(s).next("connect")
            s.broadcast_local("t", '{"t":"x"}')
            h = s.health_snapshot()
            assert h["connections"] == 1 and h["uptime_secs"] > 0
            assert h["recovery_topic_count"] >= 1 and h["log_appends"] >= 1
            assert h["cluster_connected"] is False

    asyncio.run(main())
    p = make_server(presence_enabled=True).health_snapshot()
    assert p["presence_enabled"] is True and p["presence_topics"] == 0 and p["presence_total_users"] == 0


def test_prometheus_metrics(make_server) -> None:
    s = make_server(recovery_enabled=True)
    s.broadcast_local("t", '{"t":"x"}')
    text = s.prometheus_metrics()
    for name in ("wse_connections", "wse_inbound_queue_depth", "wse_uptime_seconds", "wse_topics",
                 "wse_messages_received_total", "wse_messages_sent_total", "wse_connections_accepted_total",
                 "wse_slow_consumer_drops_total", "wse_cluster_peers", "wse_recovery_topics"):
        assert f"# TYPE {name} " in text, name
    assert 'wse_topic_messages_total{topic="t"} 1' in text
