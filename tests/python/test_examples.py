"""Every example in examples/ runs (so none goes stale): each server example
is started as a process, a `wse-client` client does one round-trip, and the
example exits when the client leaves (WSE_EXAMPLE_ONCE=1)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from wse_client import AsyncWSEClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Example:
    """An example server process and what it printed at start."""

    def __init__(self, name: str) -> None:
        env = dict(os.environ, WSE_PORT="0", WSE_EXAMPLE_ONCE="1", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.info: dict[str, str] = {}
        assert self.proc.stdout is not None
        while "url" not in self.info or (name != "broadcast.py" and "token" not in self.info):
            line = self.proc.stdout.readline()
            assert line, f"{name} exited early (status {self.proc.wait()})"
            if line.startswith("listening on "):
                self.info["url"] = line.split()[-1]
            elif line.startswith("token: "):
                self.info["token"] = line.split()[-1]

    def finish(self) -> str:
        out, _ = self.proc.communicate(timeout=20)
        assert self.proc.returncode == 0, out
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def next_event(client: AsyncWSEClient, kind: str) -> Any:
    deadline = time.monotonic() + 10
    while True:
        event = await client.recv(timeout=max(0.1, deadline - time.monotonic()))
        if event.type == kind:
            return event


def test_basic_example_echoes_for_an_authenticated_client() -> None:
    ex = Example("basic.py")
    try:
        async def main() -> None:
            client = AsyncWSEClient(ex.info["url"], token=ex.info["token"])
            await client.connect()
            await client.send("hello", {"text": "hi"})
            echo = await next_event(client, "echo")
            assert echo.payload == {"text": "hi"}
            await client.disconnect()

        asyncio.run(main())
        out = ex.finish()
        assert "demo-user connected" in out and "demo-user left" in out
    finally:
        ex.kill()


def test_broadcast_example_delivers_stamped_topic_messages() -> None:
    ex = Example("broadcast.py")
    try:
        async def main() -> None:
            client = AsyncWSEClient(ex.info["url"])
            await client.connect()
            await client.subscribe(["prices"])
            ticks = [await next_event(client, "price") for _ in range(3)]
            assert all(t.topic == "prices" and t.payload["symbol"] == "WSE" for t in ticks)
            offsets = [t.offset for t in ticks]
            assert offsets == sorted(offsets) and len(set(offsets)) == 3
            await client.disconnect()

        asyncio.run(main())
        assert "subscribed to ['prices']" in ex.finish()
    finally:
        ex.kill()


def test_presence_example_answers_with_the_presence_state() -> None:
    ex = Example("presence.py")
    try:
        async def main() -> None:
            client = AsyncWSEClient(ex.info["url"], token=ex.info["token"])
            await client.connect()
            state = await next_event(client, "presence_state")
            assert isinstance(state.payload["members"], dict)
            assert set(state.payload["stats"]) == {"num_users", "num_connections"}
            await client.send("status", {"status": "away"})
            await client.disconnect()

        asyncio.run(main())
        ex.finish()
    finally:
        ex.kill()


def test_recovery_example_recovers_across_a_restart() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "recovery.py")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "15 ticks, no gap, no duplicate" in done.stdout
