"""TLS on the client port, from Python: certificates made by `wse cert`,
the `websockets` library and the real `wse-client` package connecting over
`wss://` with a test CA, an expired certificate refused by the client, and
`wse serve` reloading its certificate on SIGHUP while a client stays
connected and receiving."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import websockets

from wse_server import RustWSEServer
from wsetest import recv_json


def wse(*args: str) -> None:
    run = subprocess.run([sys.executable, "-m", "wse_server", *args], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def make_ca(directory: Path, name: str) -> Path:
    wse("cert", "ca", "--out-dir", str(directory), "--name", name)
    return directory / "ca.pem"


def issue(ca_dir: Path, out: Path, *extra: str) -> tuple[Path, Path]:
    wse("cert", "issue", "--ca-dir", str(ca_dir), "--out-dir", str(out), "--san", "127.0.0.1", "--san", "localhost",
        "--force", *extra)
    return out / "cert.pem", out / "key.pem"


def trusting(ca: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    return ctx


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca = make_ca(tmp_path / "ca", "test CA")
    cert, key = issue(tmp_path / "ca", tmp_path / "server")
    return {"dir": tmp_path, "ca": ca, "cert": cert, "key": key}


def subscribe_msg(topic: str) -> str:
    return json.dumps({"t": "subscription_update", "p": {"action": "subscribe", "topics": [topic]}})


def tls_server(make_server: Any, cert: Path, key: Path, **options: Any) -> RustWSEServer:
    server: RustWSEServer = make_server(tls_cert=str(cert), tls_key=str(key), recovery_enabled=True,
                                        core_subscriptions=True, server_ready_without_auth=True, app_events=False,
                                        drain=False, **options)
    return server


def test_websockets_connects_over_wss_and_receives_a_publish(make_server: Any, pki: dict[str, Path]) -> None:
    server = tls_server(make_server, pki["cert"], pki["key"])
    url = f"wss://127.0.0.1:{server.local_port()}/wse"

    async def main() -> None:
        async with websockets.connect(url, ssl=trusting(pki["ca"])) as ws:
            await ws.send(subscribe_msg("news"))
            await recv_json(ws, lambda m: m.get("t") == "subscription_update")
            server.publish("news", json.dumps({"t": "headline", "p": {"text": "over TLS"}}))
            msg = await recv_json(ws, lambda m: m.get("t") == "headline")
            assert msg["p"] == {"text": "over TLS"}
            tls = ws.transport.get_extra_info("ssl_object")
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            assert tls.selected_alpn_protocol() in (None, "http/1.1")

    asyncio.run(main())


def test_a_client_without_the_ca_and_one_given_an_expired_certificate_are_refused(
    make_server: Any, pki: dict[str, Path]
) -> None:
    server = tls_server(make_server, pki["cert"], pki["key"])
    url = f"wss://127.0.0.1:{server.local_port()}/wse"

    async def refused(ctx: ssl.SSLContext) -> str:
        with pytest.raises(ssl.SSLCertVerificationError) as e:
            async with websockets.connect(url, ssl=ctx, open_timeout=5):
                pass
        return str(e.value)

    # The system's trust store does not hold the test CA.
    assert "certificate verify failed" in asyncio.run(refused(ssl.create_default_context()))

    expired_cert, expired_key = issue(pki["dir"] / "ca", pki["dir"] / "expired", "--not-before",
                                      "2020-01-01T00:00:00Z", "--days", "1")
    expired = tls_server(make_server, expired_cert, expired_key)
    url = f"wss://127.0.0.1:{expired.local_port()}/wse"
    assert "expired" in asyncio.run(refused(trusting(pki["ca"]))).lower()
    assert expired.health_snapshot()["tls_handshake_failures"] == 1


def test_wse_client_connects_over_wss_trusting_the_ca_through_ssl_cert_file(
    make_server: Any, pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from wse_client import AsyncWSEClient

    server = tls_server(make_server, pki["cert"], pki["key"])
    # wse-client makes Python's default context, which reads this.
    monkeypatch.setenv("SSL_CERT_FILE", str(pki["ca"]))

    async def main() -> None:
        client = AsyncWSEClient(f"wss://127.0.0.1:{server.local_port()}/wse")
        await client.connect()
        try:
            await client.subscribe(["news"])
            deadline = time.monotonic() + 10
            while server.get_topic_subscriber_count("news") != 1:
                assert time.monotonic() < deadline, "never subscribed"
                await asyncio.sleep(0.02)
            server.publish("news", json.dumps({"t": "tick", "p": {"i": 1}}))
            while True:
                ev = await client.recv(timeout=10)
                if ev.type == "tick":
                    assert ev.payload == {"i": 1}
                    return
        finally:
            await client.disconnect()

    asyncio.run(main())


def test_reload_tls_from_python_and_a_bad_pair_is_refused(make_server: Any, pki: dict[str, Path]) -> None:
    server = tls_server(make_server, pki["cert"], pki["key"], tls_reload_interval=0)
    (pki["dir"] / "server" / "key.pem").write_text("not a key")
    with pytest.raises(ValueError, match="key.pem"):
        server.reload_tls()
    assert server.health_snapshot()["tls_reload_failures"] == 1
    plain: RustWSEServer = make_server()
    with pytest.raises(RuntimeError, match="no TLS"):
        plain.reload_tls()
    with pytest.raises(ValueError, match="go together"):
        RustWSEServer("127.0.0.1", 0, tls_cert=str(pki["cert"]))


def test_wse_serve_reloads_its_certificate_on_sighup_keeping_connections(tmp_path: Path) -> None:
    old_ca = make_ca(tmp_path / "old", "old CA")
    new_ca = make_ca(tmp_path / "new", "new CA")
    cert, key = issue(tmp_path / "old", tmp_path / "server")
    env = dict(os.environ, PYTHONUNBUFFERED="1", WSE_ADMIN_TOKEN="t0ken")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wse_server", "serve", "--port", "0", "--data-dir", str(tmp_path / "data"),
         "--http-listen", "127.0.0.1:0", "--tls-cert", str(cert), "--tls-key", str(key),
         "--tls-reload-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening on wss://127.0.0.1:" in first, first
        url = first.split("listening on ")[1].split()[0]
        http = ""
        while not http:
            line = proc.stdout.readline()
            assert line, "no HTTP API line"
            if line.startswith("HTTP API on "):
                http = line.split()[3]

        def publish(n: int) -> None:
            req = urllib.request.Request(f"{http}/v1/topics/load/publish",
                                         data=json.dumps({"t": "m", "p": {"n": n}}).encode(),
                                         headers={"Authorization": "Bearer t0ken"}, method="POST")
            with urllib.request.urlopen(req, timeout=5) as r:
                assert json.load(r)["position"]["offset"] == n

        def reloads() -> int:
            req = urllib.request.Request(f"{http}/metrics", headers={"Authorization": "Bearer t0ken"})
            with urllib.request.urlopen(req, timeout=5) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith("wse_tls_reloads_total "):
                        return int(float(line.split()[1]))
            return 0

        async def main() -> None:
            async with websockets.connect(url, ssl=trusting(old_ca)) as old:
                await old.send(subscribe_msg("load"))
                await recv_json(old, lambda m: m.get("t") == "subscription_update")
                for n in range(0, 20):
                    await asyncio.to_thread(publish, n)
                with pytest.raises(ssl.SSLCertVerificationError):
                    async with websockets.connect(url, ssl=trusting(new_ca), open_timeout=5):
                        pass

                issue(tmp_path / "new", tmp_path / "server")
                proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 10
                while await asyncio.to_thread(reloads) != 1:
                    assert time.monotonic() < deadline, "SIGHUP did not reload"
                    await asyncio.sleep(0.02)
                for n in range(20, 40):
                    await asyncio.to_thread(publish, n)
                async with websockets.connect(url, ssl=trusting(new_ca)) as new:
                    await new.send(subscribe_msg("load"))
                    await recv_json(new, lambda m: m.get("t") == "subscription_update")
                # The connection made before the reload got everything.
                got = []
                while len(got) < 40:
                    m = await recv_json(old, lambda m: m.get("tp") == "load")
                    got.append(m["p"]["n"])
                assert got == list(range(40))

        asyncio.run(main())
        assert proc.poll() is None, "SIGHUP must not stop the server"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "TLS certificate reloaded" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
