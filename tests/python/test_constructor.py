"""RustWSEServer(...): parameters, order, defaults and validation (§2.1)."""

from __future__ import annotations

import asyncio
import inspect
import json
import socket

import pytest

from wse_server import RustWSEServer

from wsetest import SECRET, connect, recv_json

POSITIONAL = [
    ("host", inspect.Parameter.empty), ("port", inspect.Parameter.empty), ("max_connections", 1000),
    ("jwt_secret", None), ("jwt_issuer", None), ("jwt_audience", None), ("jwt_cookie_name", None),
    ("jwt_previous_secret", None), ("jwt_key_id", None), ("jwt_algorithm", None), ("jwt_private_key", None),
    ("max_inbound_queue_size", 131072), ("recovery_enabled", False), ("recovery_buffer_size", 128),
    ("recovery_ttl", 300), ("recovery_max_messages", 500), ("recovery_memory_budget", 268435456),
    ("presence_enabled", False), ("presence_max_data_size", 4096), ("presence_max_members", 0),
    ("rate_limit_capacity", 100000.0), ("rate_limit_refill", 10000.0), ("max_message_size", 1048576),
    ("ping_interval", 25), ("idle_timeout", 60), ("max_outbound_queue_bytes", 16777216),
    ("max_subscriptions_per_connection", 0),
]


def test_signature_has_the_27_upstream_parameters_then_keyword_only_options() -> None:
    params = list(inspect.signature(RustWSEServer).parameters.values())
    positional = [p for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert [p.name for p in positional] == [n for n, _ in POSITIONAL]
    for p, (_, default) in zip(positional, POSITIONAL):
        if default is not inspect.Parameter.empty and p.default is not ...:
            assert p.default == default, p.name
    keyword = {p.name for p in params if p.kind == p.KEYWORD_ONLY}
    assert {"data_dir", "durability", "retention_max_bytes", "retention_max_age", "retention_max_records",
            "tail_records_per_topic", "tail_memory_budget", "slow_consumer", "core_subscriptions",
            "client_publish", "worker_threads"} <= keyword


def test_all_parameters_positionally() -> None:
    args = [n for n, _ in POSITIONAL]
    values = ["127.0.0.1", 0, 10, None, None, None, None, None, None, None, None, 1000, True, 64, 60, 100,
              1 << 20, False, 4096, 0, 10.0, 5.0, 65536, 5, 30, 0, 3]
    assert len(values) == len(args) == 27
    s = RustWSEServer(*values)
    assert not s.is_running()


def test_ping_interval_must_be_below_idle_timeout() -> None:
    with pytest.raises(ValueError, match=r"^ping_interval \(30s\) must be less than idle_timeout \(10s\)$"):
        RustWSEServer("127.0.0.1", 0, ping_interval=30, idle_timeout=10)
    with pytest.raises(ValueError):
        RustWSEServer("127.0.0.1", 0, ping_interval=60, idle_timeout=60)


def test_jwt_key_validation() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        RustWSEServer("127.0.0.1", 0, jwt_secret=b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        RustWSEServer("127.0.0.1", 0, jwt_secret=SECRET, jwt_previous_secret=b"short")
    with pytest.raises(ValueError, match="Unsupported jwt_algorithm: HS512"):
        RustWSEServer("127.0.0.1", 0, jwt_secret=SECRET, jwt_algorithm="HS512")
    with pytest.raises(ValueError, match="Unsupported jwt_algorithm"):
        RustWSEServer("127.0.0.1", 0, jwt_algorithm="nope")
    with pytest.raises(ValueError, match="Invalid RS256 public key PEM"):
        RustWSEServer("127.0.0.1", 0, jwt_secret=b"not a pem" * 4, jwt_algorithm="RS256")
    # An algorithm without a secret is accepted: auth stays off.
    RustWSEServer("127.0.0.1", 0, jwt_algorithm="ES256")
    RustWSEServer("127.0.0.1", 0, jwt_secret=SECRET)


def test_out_of_range_integers_raise_overflow_error() -> None:
    with pytest.raises(OverflowError):
        RustWSEServer("127.0.0.1", 65536)
    with pytest.raises(OverflowError):
        RustWSEServer("127.0.0.1", 0, max_connections=-1)
    with pytest.raises(OverflowError):
        RustWSEServer("127.0.0.1", 0, max_message_size=-5)


def test_wse_options_are_validated() -> None:
    with pytest.raises(ValueError, match="durability"):
        RustWSEServer("127.0.0.1", 0, durability="sometimes")
    with pytest.raises(ValueError, match="slow_consumer"):
        RustWSEServer("127.0.0.1", 0, slow_consumer="ignore")
    with pytest.raises(ValueError, match="worker_threads"):
        RustWSEServer("127.0.0.1", 0, worker_threads=0)
    with pytest.raises(TypeError):
        RustWSEServer("127.0.0.1", 0, 10, None, None, None, None, None, None, None, None, 1, False, 1, 1, 1, 1,
                      False, 1, 0, 1.0, 1.0, 1, 5, 30, 0, 0, "data-dir-is-keyword-only")  # type: ignore[misc]
    for policy in ("always", "never", "interval", "interval:20"):
        RustWSEServer("127.0.0.1", 0, durability=policy)
    RustWSEServer("127.0.0.1", 0, retention_max_bytes=0, retention_max_age=0, retention_max_records=10,
                  tail_records_per_topic=8, tail_memory_budget=1 << 20, slow_consumer="drop",
                  core_subscriptions=True, client_publish=True, worker_threads=1)


@pytest.mark.parametrize(("option", "value"), [
    ("max_pending_handshakes", 0), ("handshake_timeout", 0.0), ("handshake_timeout", -1.0),
    ("close_grace", float("nan")), ("max_topic_bytes", 0), ("fanout_frames_per_topic", 0),
    ("write_coalesce", -0.001), ("segment_max_bytes", 10), ("segment_max_age", 0), ("max_open_files", 1),
])
def test_connection_limits_refuse_values_that_would_break_the_server(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=option):
        RustWSEServer("127.0.0.1", 0, **{option: value})


def test_handshake_timeout_closes_a_socket_that_never_finishes_its_upgrade() -> None:
    server = RustWSEServer("127.0.0.1", 0, handshake_timeout=0.2)
    server.start()
    try:
        # The default (10 s) would outlast the socket's 5 s timeout.
        with socket.create_connection(("127.0.0.1", server.local_port()), timeout=5) as s:
            s.sendall(b"GET /wse HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            assert s.recv(1) == b""
    finally:
        server.stop()


def test_max_topic_bytes_bounds_the_topics_clients_name() -> None:
    server = RustWSEServer("127.0.0.1", 0, core_subscriptions=True, server_ready_without_auth=True,
                           max_topic_bytes=8)
    server.start()

    async def main() -> None:
        async with connect(server) as ws:
            await recv_json(ws, lambda m: m.get("t") == "server_ready")
            await ws.send(json.dumps({"t": "subscription_update",
                                      "p": {"action": "subscribe", "topics": ["short", "a-longer-name"]}}))
            reply = await recv_json(ws, lambda m: m.get("t") == "subscription_update")
            assert reply["p"]["success_topics"] == ["short"]
            assert [f["topic"] if isinstance(f, dict) else f for f in reply["p"]["failed_topics"]] == \
                ["a-longer-name"]

    try:
        asyncio.run(main())
    finally:
        server.stop()
