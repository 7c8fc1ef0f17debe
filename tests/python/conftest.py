"""Fixtures: servers that are always stopped, on free ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wse_server import RustWSEServer


@pytest.fixture
def make_server() -> Iterator[Callable[..., RustWSEServer]]:
    """``make_server(**options)``: a server on 127.0.0.1 and a free port,
    stopped at the end of the test. ``start=False`` leaves it stopped;
    ``drain=False`` leaves drain mode off."""
    servers: list[RustWSEServer] = []

    def make(*, start: bool = True, drain: bool = True, port: int = 0, **options: Any) -> RustWSEServer:
        server = RustWSEServer("127.0.0.1", port, **options)
        servers.append(server)
        if drain:
            server.enable_drain_mode()
        if start:
            server.start()
        return server

    yield make
    for s in servers:
        s.stop()
