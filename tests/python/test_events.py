"""Drain mode: every event tuple through real sockets (§2.3), and the
frames the core answers itself (CLIENT_PROTOCOL.md §2, §3, §8)."""

from __future__ import annotations

import asyncio
import json

from wsetest import SECRET, Events, closed_code, connect, recv_json, token


def test_connect_msg_raw_bin_disconnect_in_order(make_server) -> None:
    s = make_server()

    async def main() -> None:
        ev = Events(s)
        async with connect(s, cookie="session=abc; theme=dark") as ws:
            kind, conn, cookies = await ev.next("connect")
            assert cookies == "session=abc; theme=dark"
            assert isinstance(conn, str) and len(conn) == 36 and conn[14] == "7"  # UUIDv7
            assert s.get_connections() == [conn] and s.get_connection_count() == 1
            await ws.send(json.dumps({"type": "chat", "payload": {"text": "hi", "n": 2**63 + 5, "f": 1.5}}))
            await ws.send("plain text")
            await ws.send("[1, 2]")
            await ws.send(b"\x00\x01binary")
            await ws.send(json.dumps({"t": "second"}))
            msg = await ev.next("msg", conn)
            assert msg[2] == {"t": "chat", "p": {"text": "hi", "n": 2**63 + 5, "f": 1.5}}
            assert (await ev.next(conn=conn)) == ("raw", conn, "plain text")
            assert (await ev.next(conn=conn)) == ("raw", conn, "[1, 2]")
            assert (await ev.next(conn=conn)) == ("bin", conn, b"\x00\x01binary")
            assert (await ev.next(conn=conn))[2] == {"t": "second"}
        assert (await ev.next("disconnect")) == ("disconnect", conn, None)
        assert s.get_connection_count() == 0

    asyncio.run(main())


def test_connect_without_cookie_is_empty_string(make_server) -> None:
    s = make_server()

    async def main() -> None:
        async with connect(s):
            assert (await Events(s).next("connect"))[2] == ""

    asyncio.run(main())


def test_jwt_auth_connect_and_server_ready(make_server) -> None:
    s = make_server(jwt_secret=SECRET, recovery_enabled=True)

    async def main() -> None:
        ev = Events(s)
        async with connect(s, jwt=token("alice")) as ws:
            ready = await recv_json(ws)
            assert ready["t"] == "server_ready"
            details = ready["p"]["details"]
            assert details["user_id"] == "alice" and details["features"]["recovery"] is True
            kind, conn, user = await ev.next("auth_connect")
            assert user == "alice" and details["connection_id"] == conn
            assert s.get_connections()[0] == conn

    asyncio.run(main())


def test_missing_or_bad_token_gets_auth_error_and_4401(make_server) -> None:
    s = make_server(jwt_secret=SECRET)

    async def main() -> None:
        async with connect(s) as ws:
            frame = await ws.recv()
            assert "AUTH_REQUIRED" in frame
            assert await closed_code(ws) == 4401
        async with connect(s, jwt=token("bob", secret=b"z" * 32)) as ws:
            assert "AUTH_FAILED" in await ws.recv()
            assert await closed_code(ws) == 4401
        events = await asyncio.to_thread(s.drain_inbound, 10, 200)
        assert events == []  # rejected connections never reach the app

    asyncio.run(main())


def test_ping_and_client_hello_are_answered_by_the_core(make_server) -> None:
    s = make_server()

    async def main() -> None:
        ev = Events(s)
        async with connect(s) as ws:
            conn = (await ev.next("connect"))[1]
            await ws.send(json.dumps({"c": "WSE", "t": "ping", "p": {"timestamp": 1234}, "v": 1}))
            pong = await ws.recv()
            assert pong.startswith('{"c":"WSE","t":"PONG"') and "1234" in pong
            await ws.send(json.dumps({"c": "WSE", "t": "client_hello", "p": {"protocol_version": 1}}))
            hello = await recv_json(ws, lambda m: m.get("t") == "server_hello")
            assert hello["p"]["connection_id"] == conn and "features" in hello["p"]
            await ws.send(json.dumps({"t": "after"}))
            assert (await ev.next("msg"))[2] == {"t": "after"}  # ping/hello never forwarded

    asyncio.run(main())


def test_msgpack_connection_delivers_any_msgpack_value(make_server) -> None:
    s = make_server()

    async def main() -> None:
        ev = Events(s)
        async with connect(s, query="?format=msgpack") as ws:
            conn = (await ev.next("connect"))[1]
            await ws.send(bytes([0x2A]))  # msgpack 42
            await ws.send(bytes([0x81, 0xA1, ord("a"), 0x01]))  # {"a": 1}
            await ws.send(bytes([0xC1]))  # never-used marker: not msgpack
            assert (await ev.next(conn=conn)) == ("msg", conn, 42)
            assert (await ev.next(conn=conn)) == ("msg", conn, {"a": 1})
            assert (await ev.next(conn=conn)) == ("bin", conn, b"\xc1")

    asyncio.run(main())


def test_queue_depth_and_per_connection_order(make_server) -> None:
    s = make_server()

    async def main() -> None:
        ev = Events(s)
        async with connect(s) as a, connect(s) as b:
            await ev.next("connect")
            await ev.next("connect")
            for i in range(200):
                await a.send(json.dumps({"t": "a", "i": i}))
                await b.send(json.dumps({"t": "b", "i": i}))
            await asyncio.sleep(0)
            got: dict[str, list[int]] = {"a": [], "b": []}
            while len(got["a"]) < 200 or len(got["b"]) < 200:
                e = await ev.next("msg", timeout=10)
                got[e[2]["t"]].append(e[2]["i"])
            assert got["a"] == list(range(200)) and got["b"] == list(range(200))
            assert s.inbound_queue_depth() == 0

    asyncio.run(main())


def test_disconnect_and_unknown_ids(make_server) -> None:
    s = make_server()

    async def main() -> None:
        ev = Events(s)
        async with connect(s) as ws:
            conn = (await ev.next("connect"))[1]
            s.disconnect("not-a-connection")
            s.send("not-a-connection", "x")
            s.disconnect(conn)
            assert await closed_code(ws) == 1005  # Close without status, as upstream
        assert (await ev.next("disconnect"))[1] == conn

    asyncio.run(main())
