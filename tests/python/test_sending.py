"""send, send_bytes, send_event, broadcasts (§2.4)."""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import zlib

import pytest

from wsetest import Events, connect, recv_frame, recv_json, stamped


def test_send_and_send_bytes_are_verbatim(make_server) -> None:
    s = make_server()

    async def main() -> None:
        async with connect(s) as ws:
            conn = (await Events(s).next("connect"))[1]
            s.send(conn, '{"t":"x","p":{}}')
            assert await recv_frame(ws) == '{"t":"x","p":{}}'
            s.send_bytes(conn, b"\x00raw")
            assert await recv_frame(ws) == b"\x00raw"
            big = "y" * (1 << 20)
            s.send(conn, big)  # large: sent with the GIL released
            assert await recv_frame(ws) == big

    asyncio.run(main())


def test_a_send_larger_than_the_outbound_queue_is_refused(make_server) -> None:
    s = make_server(max_outbound_queue_bytes=1 << 16)

    async def main() -> None:
        async with connect(s) as ws:
            conn = (await Events(s).next("connect"))[1]
            with pytest.raises(ValueError, match="max_outbound_bytes"):
                s.send(conn, "z" * (1 << 17))
            with pytest.raises(ValueError, match="can never be sent"):
                s.send_bytes(conn, b"z" * (1 << 17))
            s.send(conn, "fits")
            assert await recv_frame(ws) == "fits"

    asyncio.run(main())


def test_send_event_pipeline(make_server) -> None:
    s = make_server()

    async def main() -> None:
        async with connect(s) as ws:
            conn = (await Events(s).next("connect"))[1]
            when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
            event = {"t": "order", "p": {"raw": b"\x01\xff", "at": when, "nan": math.nan, "obj": object}, "c": "X"}
            n = s.send_event(conn, event)
            frame = await recv_frame(ws)
            assert isinstance(frame, bytes) and n == len(frame)
            env = json.loads(frame)
            assert env["t"] == "order" and env["c"] == "U" and env["v"] == 1
            assert env["p"]["raw"] == "01ff" and env["p"]["at"] == when.isoformat() and env["p"]["nan"] is None
            assert env["p"]["obj"] == str(object)
            assert {"id", "ts", "seq"} <= env.keys()
            # Large events are zlib-compressed behind "C:".
            n = s.send_event(conn, {"t": "big", "p": {"text": "z" * 5000}})
            frame = await recv_frame(ws)
            assert frame[:2] == b"C:" and n == len(frame)
            assert json.loads(zlib.decompress(frame[2:]))["p"]["text"] == "z" * 5000
            assert s.send_event(conn, {"t": "big", "p": {"text": "z" * 5000}}, compression_threshold=0) > 5000
            await recv_frame(ws)
            # The same id twice to one connection: deduplicated.
            assert s.send_event(conn, {"t": "once", "id": "evt-1"}) > 0
            assert s.send_event(conn, {"t": "once", "id": "evt-1"}) == 0
            # Unknown connection: the size, nothing sent.
            assert s.send_event("00000000-0000-7000-8000-000000000000", {"t": "x"}) > 0

    asyncio.run(main())


def test_broadcast_all_and_bytes(make_server) -> None:
    s = make_server()

    async def main() -> None:
        ev = Events(s)
        async with connect(s) as a, connect(s) as b:
            await ev.next("connect")
            await ev.next("connect")
            s.broadcast_all('{"t":"notice","p":{"n":1}}')
            for ws in (a, b):
                assert await recv_frame(ws) == '{"c":"U","t":"notice","p":{"n":1}}'
            s.broadcast_all_bytes(b"\x02\x03")
            for ws in (a, b):
                assert await recv_frame(ws) == b"\x02\x03"

    asyncio.run(main())


def test_broadcast_local_and_broadcast_reach_topic_subscribers(make_server) -> None:
    s = make_server(recovery_enabled=True)

    async def main() -> None:
        ev = Events(s)
        async with connect(s) as a, connect(s) as b:
            ca = (await ev.next("connect"))[1]
            cb = (await ev.next("connect"))[1]
            s.subscribe_connection(ca, ["chat"])
            s.subscribe_connection(cb, ["other"])
            s.broadcast_local("chat", '{"t":"m","p":{"i":0}}')
            s.broadcast("chat", '{"t":"m","p":{"i":1}}')
            m0 = await recv_json(a, stamped("chat"))
            m1 = await recv_json(a, stamped("chat"))
            assert (m0["o"], m1["o"]) == (0, 1) and m0["e"] == m1["e"] and len(m0["e"]) == 8
            assert m0["c"] == "U" and m1["p"] == {"i": 1}
            s.broadcast_local("other", '{"t":"o"}')
            assert (await recv_json(b, stamped("other")))["o"] == 0
            # No subscribers, no error.
            s.broadcast_local("nobody", '{"t":"n"}')
            big = '{"t":"big","p":"' + "q" * (1 << 20) + '"}'
            s.broadcast_local("chat", big)  # GIL released during the append
            assert (await recv_json(a, stamped("chat")))["o"] == 2

    asyncio.run(main())


def test_broadcast_without_recovery_is_not_stamped(make_server) -> None:
    s = make_server()

    async def main() -> None:
        async with connect(s) as ws:
            conn = (await Events(s).next("connect"))[1]
            s.subscribe_connection(conn, ["t"])
            s.broadcast_local("t", '{"t":"m"}')
            assert await recv_frame(ws) == '{"c":"U","t":"m"}'

    asyncio.run(main())
