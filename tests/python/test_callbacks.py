"""Callback mode (§2.3): order, exceptions, drain mode wins."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import pytest

from wse_server import RustWSEServer

from wsetest import SECRET, connect, token


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.cond = threading.Condition()

    def add(self, *call: Any) -> None:
        with self.cond:
            self.calls.append(call)
            self.cond.notify_all()

    def wait(self, pred, timeout: float = 5.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: pred(self.calls), timeout), self.calls


def test_non_callable_callbacks_are_refused() -> None:
    s = RustWSEServer("127.0.0.1", 0)
    with pytest.raises(RuntimeError, match="All callbacks must be callable"):
        s.set_callbacks(print, "not callable", print)  # type: ignore[arg-type]


def test_callbacks_in_order_and_exceptions_swallowed(make_server, caplog) -> None:
    rec = Recorder()
    s = make_server(start=False, drain=False)

    def on_message(conn: str, data: Any) -> None:
        if data == {"t": "boom"}:
            raise ValueError("app bug")
        rec.add("message", conn, data)

    s.set_callbacks(lambda c, cookies: rec.add("connect", c, cookies), on_message, lambda c: rec.add("disconnect", c))
    s.start()

    async def main() -> None:
        async with connect(s, cookie="a=1") as ws:
            for i in range(50):
                await ws.send(json.dumps({"t": "n", "i": i}))
            await ws.send(json.dumps({"t": "boom"}))
            await ws.send("text")
            await ws.send(b"\x01")
            await asyncio.to_thread(rec.wait, lambda c: len(c) >= 53)
        await asyncio.to_thread(rec.wait, lambda c: c[-1][0] == "disconnect")

    with caplog.at_level(logging.ERROR, logger="wse_server"):
        asyncio.run(main())
    conn = rec.calls[0][1]
    assert rec.calls[0] == ("connect", conn, "a=1")
    assert [c[2]["i"] for c in rec.calls[1:51]] == list(range(50))
    assert rec.calls[51:] == [("message", conn, "text"), ("message", conn, b"\x01"), ("disconnect", conn)]
    assert any("callback raised" in r.getMessage() for r in caplog.records)
    assert any(r.exc_info and isinstance(r.exc_info[1], ValueError) for r in caplog.records)


def test_jwt_connections_call_on_connect(make_server) -> None:
    rec = Recorder()
    s = make_server(start=False, drain=False, jwt_secret=SECRET)
    s.set_callbacks(lambda c, cookies: rec.add("connect", c, cookies), lambda c, d: None, lambda c: None)
    s.start()

    async def main() -> None:
        async with connect(s, jwt=token()):
            await asyncio.to_thread(rec.wait, lambda c: len(c) == 1)

    asyncio.run(main())
    assert rec.calls[0][0] == "connect"


def test_drain_mode_wins_over_callbacks(make_server) -> None:
    rec = Recorder()
    s = make_server(start=False)  # drain mode enabled by the fixture
    s.set_callbacks(lambda *a: rec.add("connect"), lambda *a: rec.add("message"), lambda *a: rec.add("disconnect"))
    s.start()

    async def main() -> None:
        async with connect(s) as ws:
            await ws.send(json.dumps({"t": "x"}))
            events: list[Any] = []
            deadline = time.monotonic() + 5
            while len(events) < 2 and time.monotonic() < deadline:
                events += await asyncio.to_thread(s.drain_inbound, 10, 50)
            assert [e[0] for e in events] == ["connect", "msg"]

    asyncio.run(main())
    assert rec.calls == []


def test_stop_from_a_callback(make_server) -> None:
    s = make_server(start=False, drain=False)
    done = threading.Event()

    def on_connect(conn: str, cookies: str) -> None:
        s.stop()
        done.set()

    s.set_callbacks(on_connect, lambda c, d: None, lambda c: None)
    s.start()

    async def main() -> None:
        async with connect(s) as ws:
            assert await asyncio.to_thread(done.wait, 5)
            with pytest.raises(Exception):
                await asyncio.wait_for(ws.recv(), 5)

    asyncio.run(main())
    assert not s.is_running()
