"""Subscriptions, ACLs, patterns and queue groups (§2.6)."""

from __future__ import annotations

import asyncio

import pytest

from wsetest import SECRET, Events, connect, recv_frame, recv_json, token


def test_subscribe_unsubscribe_and_counts(make_server) -> None:
    s = make_server()

    async def main() -> None:
        async with connect(s) as ws:
            conn = (await Events(s).next("connect"))[1]
            s.subscribe_connection(conn, ["a", "b"])
            s.subscribe_connection(conn, ["a"])  # idempotent
            assert s.get_topic_subscriber_count("a") == 1 and s.get_topic_subscriber_count("b") == 1
            s.unsubscribe_connection(conn, ["a", "never"])
            assert s.get_topic_subscriber_count("a") == 0
            s.broadcast_local("a", '{"t":"x"}')
            s.broadcast_local("b", '{"t":"y"}')
            assert (await recv_json(ws))["t"] == "y"
            s.unsubscribe_connection(conn)
            assert s.get_topic_subscriber_count("b") == 0
            s.subscribe_connection("unknown", ["a"])
            s.unsubscribe_connection("unknown")

    asyncio.run(main())


def test_patterns_match_published_topics(make_server) -> None:
    s = make_server()

    async def main() -> None:
        async with connect(s) as ws:
            conn = (await Events(s).next("connect"))[1]
            s.subscribe_connection(conn, ["news.*"])
            s.broadcast_local("news.sport", '{"t":"sport"}')
            s.broadcast_local("weather", '{"t":"weather"}')
            s.broadcast_local("news.tech", '{"t":"tech"}')
            # Order holds within a topic; these are two topics.
            got = {(await recv_json(ws))["t"], (await recv_json(ws))["t"]}
            assert got == {"sport", "tech"}
            s.send(conn, '{"t":"marker"}')  # "weather" is not pending before it
            assert (await recv_json(ws))["t"] == "marker"

    asyncio.run(main())


def test_topic_acl_set_by_the_app(make_server) -> None:
    s = make_server()

    async def main() -> None:
        async with connect(s) as ws:
            conn = (await Events(s).next("connect"))[1]
            s.set_topic_acl(conn, allow=["public.*"], deny=["public.secret"])
            s.set_topic_acl("unknown-id", allow=["x"])  # accepted
            s.subscribe_connection(conn, ["public.a", "public.secret", "private"])
            assert s.get_topic_subscriber_count("public.a") == 1
            assert s.get_topic_subscriber_count("public.secret") == 0
            assert s.get_topic_subscriber_count("private") == 0
            r = s.subscribe_with_recovery(conn, ["private"], False)
            assert r["topics"]["private"]["recoverable"] is False

    asyncio.run(main())


def test_topic_acl_from_the_jwt_claim(make_server) -> None:
    s = make_server(jwt_secret=SECRET)

    async def main() -> None:
        async with connect(s, jwt=token("u", wse_topics={"allow": ["room.*"], "deny": []})):
            conn = (await Events(s).next("auth_connect"))[1]
            s.subscribe_connection(conn, ["room.1", "lobby"])
            assert s.get_topic_subscriber_count("room.1") == 1
            assert s.get_topic_subscriber_count("lobby") == 0

    asyncio.run(main())


def test_queue_groups_deliver_to_one_member_round_robin(make_server) -> None:
    s = make_server()

    async def main() -> None:
        ev = Events(s)
        async with connect(s) as a, connect(s) as b, connect(s) as fan:
            ids = [(await ev.next("connect"))[1] for _ in range(3)]
            ca, cb, cf = ids
            s.subscribe_connection(ca, ["jobs"], queue_group="workers")
            s.subscribe_connection(cb, ["jobs"], None, "workers")
            s.subscribe_connection(cf, ["jobs"])
            assert s.get_queue_group_info("jobs") == {"workers": 2}
            assert s.get_topic_subscriber_count("jobs") == 1  # group members not counted
            for i in range(4):
                s.broadcast_local("jobs", f'{{"t":"job","p":{{"i":{i}}}}}')
            fanned = [(await recv_json(fan))["p"]["i"] for _ in range(4)]
            assert fanned == [0, 1, 2, 3]
            got_a = [(await recv_json(a))["p"]["i"] for _ in range(2)]
            got_b = [(await recv_json(b))["p"]["i"] for _ in range(2)]
            assert sorted(got_a + got_b) == [0, 1, 2, 3]
            s.unsubscribe_connection(ca)
            assert s.get_queue_group_info("jobs") == {"workers": 1}
            assert s.get_queue_group_info("none") == {}

    asyncio.run(main())


def test_max_subscriptions_per_connection(make_server) -> None:
    s = make_server(max_subscriptions_per_connection=2)

    async def main() -> None:
        async with connect(s):
            conn = (await Events(s).next("connect"))[1]
            s.subscribe_connection(conn, ["a", "b", "c"])  # truncated to the free slots
            assert sum(s.get_topic_subscriber_count(t) for t in "abc") == 2
            with pytest.raises(RuntimeError, match=rf"Connection {conn} reached max subscriptions \(2\)"):
                s.subscribe_connection(conn, ["d"])

    asyncio.run(main())


def test_invalid_topics_are_dropped(make_server) -> None:
    s = make_server()

    async def main() -> None:
        async with connect(s) as ws:
            conn = (await Events(s).next("connect"))[1]
            s.subscribe_connection(conn, ["bad\x01topic", "ok"])
            assert s.get_topic_subscriber_count("ok") == 1
            assert s.get_topic_subscriber_count("bad\x01topic") == 0
            s.broadcast_local("ok", '{"t":"fine"}')
            assert await recv_frame(ws) == '{"c":"U","t":"fine"}'

    asyncio.run(main())
