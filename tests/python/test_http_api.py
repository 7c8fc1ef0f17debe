"""The HTTP API from the Python module (``http_listen``): probes, an
acknowledged publish that a WebSocket subscriber receives, the admin token,
and Prometheus text that the prometheus-client parser reads."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from wsetest import Events, connect, recv_json

TOKEN = "py-admin-token"


def call(port: int, method: str, path: str, body: bytes | None = None, token: str | None = TOKEN) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_no_http_api_unless_asked(make_server) -> None:
    s = make_server()
    assert s.local_http_port() is None


def test_publish_over_http_reaches_a_websocket_subscriber(make_server) -> None:
    s = make_server(http_listen="127.0.0.1:0", admin_token=TOKEN, recovery_enabled=True)
    port = s.local_http_port()
    assert port

    async def main() -> None:
        async with connect(s) as ws:
            conn = (await Events(s).next("connect"))[1]
            s.subscribe_connection(conn, ["news"])
            status, body = await asyncio.to_thread(
                call, port, "POST", "/v1/topics/news/publish", b'{"t":"headline","p":{"n":1}}')
            assert status == 200, body
            assert json.loads(body)["position"]["offset"] == 0
            msg = await recv_json(ws, lambda m: m.get("t") == "headline")
            assert msg["p"] == {"n": 1}

    asyncio.run(main())
    status, body = call(port, "GET", "/health", token=None)
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, body = call(port, "GET", "/v1/topics", token="wrong")
    assert status == 401 and json.loads(body)["error"]["code"] == "UNAUTHORIZED"


def test_metrics_parse_as_prometheus_text(make_server) -> None:
    s = make_server(http_listen="127.0.0.1:0", http_public_metrics=True)
    status, body = call(s.local_http_port(), "GET", "/metrics", token=None)
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert "wse_connections_accepted" in families, sorted(families)
    assert families["wse_connections_accepted"].type == "counter"


def test_rate_limit_answers_429_with_retry_after(make_server) -> None:
    s = make_server(http_listen="127.0.0.1:0", admin_token=TOKEN, http_rate_limit=1.0, http_rate_burst=2.0)
    port = s.local_http_port()
    assert [call(port, "GET", "/health", token=None)[0] for _ in range(2)] == [200, 200]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/health")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=5)
    assert refused.value.code == 429
    assert refused.value.headers["Retry-After"] == "1"
    assert json.loads(refused.value.read())["error"]["code"] == "RATE_LIMITED"
    # The admin token is not limited.
    assert call(port, "GET", "/v1/topics")[0] == 200


def test_a_bad_http_listen_is_a_value_error() -> None:
    from wse_server import RustWSEServer

    with pytest.raises(ValueError, match="http_listen"):
        RustWSEServer("127.0.0.1", 0, http_listen="localhost")


def test_schemathesis_finds_nothing_against_the_openapi_document(make_server, tmp_path) -> None:
    """Requests generated from the served OpenAPI document, valid and
    hostile: no 5xx, every status and response as documented. (Whether a
    schema-valid topic name is accepted is not checked: the server's rule
    is 1-256 bytes without control characters, and JSON Schema counts
    characters.) Bounded for CI: 30 examples per operation."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    # No rate limit here: schemathesis probes every protected operation
    # without the token (ignored_auth), and those requests would spend the
    # address's allowance and meet 429s (the limiter has its own tests in
    # tests/http_api.rs and test_rate_limit_answers_429_with_retry_after).
    s = make_server(http_listen="127.0.0.1:0", admin_token=TOKEN, recovery_enabled=True, http_rate_limit=0)
    port = s.local_http_port()
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is installed with the test requirements"
    run = subprocess.run(
        [st, "run", f"http://127.0.0.1:{port}/openapi.json", "-H", f"Authorization: Bearer {TOKEN}",
         "--checks", "all", "--exclude-checks", "positive_data_acceptance,negative_data_rejection",
         "--max-examples", "30", "--seed", "1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,  # its cache stays out of the tree
    )
    assert run.returncode == 0, run.stdout[-4000:]
