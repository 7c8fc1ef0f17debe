"""subscribe_with_recovery (§2.7, CLIENT_PROTOCOL.md §11.3)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import pytest

from wsetest import Events, connect, recv_json, stamped, wait_visible


def publish(s, topic: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        s.broadcast_local(topic, f'{{"t":"m","p":{{"i":{i}}}}}')


def test_shapes_and_replay_before_return(make_server) -> None:
    s = make_server(recovery_enabled=True)

    async def main() -> None:
        async with connect(s) as ws:
            conn = (await Events(s).next("connect"))[1]
            r = s.subscribe_with_recovery(conn, ["room"])
            assert r == {"recovered": False, "topics": {"room": {
                "epoch": None, "offset": 0, "recoverable": False, "recovered": False, "count": 0,
                "complete": False}}}
            publish(s, "room", 5)
            msgs = [await recv_json(ws, stamped("room")) for _ in range(5)]
            epoch = msgs[0]["e"]
            assert [m["o"] for m in msgs] == [0, 1, 2, 3, 4]
            s.unsubscribe_connection(conn, ["room"])
            publish(s, "room", 3, 5)  # missed: offsets 5..7
            wait_visible(s, "room", 8)
            r = s.subscribe_with_recovery(conn, ["room"], True, epoch, 4)
            assert r == {"recovered": True, "topics": {"room": {
                "epoch": epoch, "offset": 7, "recoverable": True, "recovered": True, "count": 3,
                "complete": True}}}
            replay = [await recv_json(ws, stamped("room")) for _ in range(3)]
            assert [m["o"] for m in replay] == [5, 6, 7] and replay[0]["p"] == {"i": 5}
            publish(s, "room", 1, 8)
            assert (await recv_json(ws, stamped("room")))["o"] == 8  # live continues, no duplicate
            # Up to date: recovered, nothing replayed.
            r = s.subscribe_with_recovery(conn, ["room"], True, epoch, 8)
            assert r["topics"]["room"]["recovered"] and r["topics"]["room"]["count"] == 0
            # Another epoch: not recovered, the current position is reported.
            other = "0" * 8 if epoch != "0" * 8 else "1" * 8
            r = s.subscribe_with_recovery(conn, ["room"], True, other, 3)
            assert r["recovered"] is False
            assert r["topics"]["room"] == {"epoch": epoch, "offset": 8, "recoverable": True, "recovered": False,
                                           "count": 0, "complete": False}
            # recover=False reports where the topic stands.
            r = s.subscribe_with_recovery(conn, ["room"], False, epoch, 3)
            assert r["recovered"] is False and r["topics"]["room"]["offset"] == 8

    asyncio.run(main())


def test_errors_and_unknown_connections(make_server) -> None:
    s = make_server(recovery_enabled=True)

    async def main() -> None:
        async with connect(s):
            conn = (await Events(s).next("connect"))[1]
            with pytest.raises(RuntimeError, match="Invalid epoch hex string: zz"):
                s.subscribe_with_recovery(conn, ["t"], True, "zz", 1)
            assert s.get_topic_subscriber_count("t") == 1  # raised after subscribing
            publish(s, "t", 2)
            wait_visible(s, "t", 2)
            r = s.subscribe_with_recovery("01234567-89ab-7def-8123-456789abcdef", ["t", "none"], True, "00000000", 0)
            assert r["recovered"] is False
            assert r["topics"]["t"]["recoverable"] and r["topics"]["t"]["offset"] == 1
            assert r["topics"]["none"]["epoch"] is None

    asyncio.run(main())


def test_a_gap_over_the_cap_is_not_recovered_and_one_within_it_wholly(make_server) -> None:
    s = make_server(recovery_enabled=True, recovery_max_messages=10)

    async def main() -> None:
        async with connect(s) as ws:
            conn = (await Events(s).next("connect"))[1]
            publish(s, "big", 1)
            epoch = wait_visible(s, "big", 1)["epoch"]
            publish(s, "big", 30, 1)
            wait_visible(s, "big", 31)
            # 30 missed, cap 10: all or nothing, and nothing it is.
            r = s.subscribe_with_recovery(conn, ["big"], True, epoch, 0)
            t = r["topics"]["big"]
            assert (t["recovered"], t["count"], t["complete"], t["offset"]) == (False, 0, False, 30)
            # 10 missed: every one of them.
            r = s.subscribe_with_recovery(conn, ["big"], True, epoch, 20)
            t = r["topics"]["big"]
            assert (t["recovered"], t["count"], t["complete"], t["offset"]) == (True, 10, True, 30)
            replay = [await recv_json(ws, stamped("big")) for _ in range(10)]
            assert [m["o"] for m in replay] == list(range(21, 31))

    asyncio.run(main())


def test_recovery_from_the_app_while_the_topic_is_live_never_duplicates(make_server) -> None:
    """The app's event loop asks for recovery while a publisher runs (a
    thousand trials): the client gets the missed records, then live ones,
    each exactly once and in order; the reply after every replayed one."""
    s = make_server(recovery_enabled=True, recovery_max_messages=100_000)
    publish(s, "live", 100)
    epoch = wait_visible(s, "live", 100)["epoch"]
    running = threading.Event()
    running.set()

    def publisher() -> None:
        i = 100
        while running.is_set():
            s.broadcast_local("live", f'{{"t":"m","p":{{"i":{i}}}}}')
            i += 1
            if i % 20 == 0:
                time.sleep(0.001)  # a steady stream, not a flood

    thread = threading.Thread(target=publisher)
    thread.start()
    events = Events(s)

    async def trial(n: int) -> None:
        async with connect(s) as ws:
            await ws.send(json.dumps({"c": "WSE", "t": "client_hello", "p": {
                "client_version": "2.5.1", "protocol_version": 1, "features": {"encryption": False}}}))
            conn = (await events.next("connect"))[1]
            head = s.position("live")["next_offset"]
            last_seen = head - 1 - n % 40
            r = s.subscribe_with_recovery(conn, ["live"], True, epoch, last_seen)["topics"]["live"]
            assert r["recovered"], r
            s.send(conn, json.dumps({"c": "WSE", "t": "subscription_update", "p": {"recovery": {"live": r}}}))
            offsets: list[int] = []
            reply_at = None
            while reply_at is None or not offsets or offsets[-1] <= r["offset"]:
                m = await recv_json(ws, lambda m: m.get("tp") == "live" or m.get("t") == "subscription_update")
                if m.get("t") == "subscription_update":
                    reply_at = len(offsets)
                else:
                    offsets.append(m["o"])
            assert offsets == list(range(last_seen + 1, last_seen + 1 + len(offsets))), f"trial {n}"
            assert reply_at >= r["count"], f"trial {n}: reply after {reply_at} of {r['count']}"
            ws.transport.abort()  # the next trial need not wait for a close handshake

    async def main() -> None:
        for n in range(int(os.environ.get("WSE_RACE_TRIALS", "1000"))):
            await trial(n)

    try:
        asyncio.run(main())
    finally:
        running.clear()
        thread.join()