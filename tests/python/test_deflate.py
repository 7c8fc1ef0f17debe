"""Per-message deflate with the ``websockets`` library, which offers it by
default as browsers do: what is agreed, large broadcasts and large client
messages arriving intact, and ``permessage_deflate=False``."""

from __future__ import annotations

import asyncio
import json

import websockets

from wsetest import Events, connect, recv_json, url


def test_a_deflate_client_receives_and_sends_large_messages_intact(make_server) -> None:
    s = make_server()

    async def main() -> None:
        async with connect(s) as ws:
            agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
            assert agreed.startswith("permessage-deflate"), agreed
            assert "server_no_context_takeover" in agreed and "client_no_context_takeover" in agreed
            events = Events(s)
            conn = (await events.next("connect"))[1]
            s.subscribe_connection(conn, ["news"])
            rows = [{"symbol": f"S{i}", "bid": i * 1.25, "ask": i * 1.5} for i in range(200)]
            s.broadcast_local("news", json.dumps({"t": "rows", "p": {"rows": rows}}))
            s.broadcast_local("news", json.dumps({"t": "small", "p": {}}))
            got = await recv_json(ws, lambda m: m.get("t") == "rows")
            assert got["p"]["rows"] == rows
            assert (await recv_json(ws, lambda m: m.get("t") == "small"))["p"] == {}
            # The client compresses what it sends; the app gets it inflated.
            text = "é" * 20_000
            await ws.send(json.dumps({"t": "chat", "p": {"text": text}}))
            ev = await events.next("msg", conn)
            assert ev[2]["p"]["text"] == text

    asyncio.run(main())


def test_permessage_deflate_off_agrees_nothing(make_server) -> None:
    s = make_server(permessage_deflate=False)

    async def main() -> None:
        async with websockets.connect(url(s), max_size=None) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            conn = (await Events(s).next("connect"))[1]
            s.subscribe_connection(conn, ["news"])
            big = json.dumps({"t": "big", "p": "x" * 10_000})
            s.broadcast_local("news", big)
            assert (await recv_json(ws, lambda m: m.get("t") == "big"))["p"] == "x" * 10_000

    asyncio.run(main())
