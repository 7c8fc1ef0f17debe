"""start/stop/drain, bind failures, threads (§2.2, §2.11)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from wse_server import RustWSEServer

from wsetest import Events, closed_code, connect


def test_start_stop_restart(make_server) -> None:
    s = make_server(start=False)
    assert not s.is_running() and s.local_port() is None
    s.stop()  # a no-op when stopped
    s.start()
    assert s.is_running()
    port = s.local_port()
    assert isinstance(port, int) and port > 0
    with pytest.raises(RuntimeError, match="already running"):
        s.start()
    s.stop()
    assert not s.is_running()
    s.start()  # restart after stop
    assert s.is_running()
    s.stop()


def test_bind_failure_raises() -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    try:
        s = RustWSEServer("127.0.0.1", blocker.getsockname()[1])
        with pytest.raises(OSError, match="cannot bind"):
            s.start()
        assert not s.is_running()
    finally:
        blocker.close()


def test_operations_before_start() -> None:
    s = RustWSEServer("127.0.0.1", 0)
    assert s.drain_inbound(10, 1) == []
    assert s.get_connection_count() == 0
    assert s.inbound_queue_depth() == 0 and s.inbound_dropped_count() == 0
    for call in (lambda: s.send("x", "y"), lambda: s.send_bytes("x", b"y"), lambda: s.send_event("x", {}),
                 lambda: s.broadcast_all("{}"), lambda: s.broadcast_all_bytes(b""),
                 lambda: s.broadcast_local("t", "{}"), s.get_connections, lambda: s.disconnect("x"),
                 lambda: s.drain(), lambda: s.position("t"), lambda: s.read("t", "0", 0),
                 lambda: s.subscribe_with_recovery("x", ["t"], True, "00000000", 1)):
        with pytest.raises(RuntimeError, match="Not running"):
            call()
    s.broadcast("t", "{}")  # silently nothing
    s.subscribe_connection("x", ["t"])  # silently ignored
    s.set_topic_acl("x", ["a"])
    r = s.subscribe_with_recovery("x", ["t"])
    assert r == {"recovered": False, "topics": {"t": {"epoch": None, "offset": 0, "recoverable": False,
                                                      "recovered": False, "count": 0, "complete": False}}}


def test_stop_from_another_thread_while_draining(make_server) -> None:
    s = make_server()
    result: list[object] = []

    def drain() -> None:
        result.append(s.drain_inbound(10, 30_000))

    t = threading.Thread(target=drain)
    t.start()
    time.sleep(0.2)  # let it block in drain_inbound (nothing to await here)
    started = time.monotonic()
    s.stop()  # upstream: RuntimeError("Already borrowed")
    t.join(5)
    assert not t.is_alive()
    assert result == [[]]
    assert time.monotonic() - started < 5


def test_other_threads_run_while_drain_inbound_waits(make_server) -> None:
    s = make_server()
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    s.drain_inbound(1, 300)  # holds no GIL while waiting
    stop.set()
    t.join()
    assert ticks > 20


def test_stop_closes_clients_with_1012(make_server) -> None:
    s = make_server()

    async def main() -> None:
        async with connect(s) as ws:
            ev = Events(s)
            await ev.next("connect")
            await asyncio.to_thread(s.stop)
            assert await closed_code(ws) == 1012

    asyncio.run(main())


def test_drain_closes_clients_and_refuses_new_ones(make_server) -> None:
    s = make_server()

    async def main() -> None:
        async with connect(s) as ws:
            ev = Events(s)
            await ev.next("connect")
            s.drain(4300, "maintenance", 5)
            assert await closed_code(ws) == 4300
            assert ws.close_reason == "maintenance"
        with pytest.raises(Exception):
            async with connect(s) as ws2:
                await ws2.recv()

    asyncio.run(main())


def test_a_collected_running_server_stops() -> None:
    import gc

    for drain in (False, True):
        s = RustWSEServer("127.0.0.1", 0)
        if drain:
            s.enable_drain_mode()
        s.start()
        port = s.local_port()
        assert port is not None
        del s
        gc.collect()
        deadline = time.monotonic() + 10
        while True:
            again = RustWSEServer("127.0.0.1", port)
            try:
                again.start()
                again.stop()
                break
            except OSError:
                assert time.monotonic() < deadline, "the collected server kept its port"
                time.sleep(0.05)
