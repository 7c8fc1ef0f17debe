"""`python -m wse_server serve`: the standalone server, as `wse serve`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from wse_server.__main__ import server_options, settings

from wsetest import recv_json


def test_settings_priorities_and_standalone_defaults(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "wse.toml"
    config.write_text('port = 6000\nhost = "0.0.0.0"\ndurability = "always"\n')
    monkeypatch.setenv("WSE_DURABILITY", "never")
    chosen = settings(["serve", "--config", str(config), "--port", "7000"])
    assert chosen == {"host": "0.0.0.0", "port": 7000, "durability": "never"}
    opts = server_options(chosen)
    assert opts["recovery_enabled"] and opts["core_subscriptions"] and opts["server_ready_without_auth"]
    assert opts["app_events"] is False and opts["data_dir"] == "wse-data" and opts["max_connections"] == 100_000
    jwt = server_options(settings(["serve", "--jwt-secret", "s" * 32, "--inbound-rate", "10"]))
    assert jwt["jwt_secret"] == b"s" * 32 and jwt["server_ready_without_auth"] is False
    assert jwt["inbound_rate_refill"] == 10.0


def test_serve_runs_a_complete_server_until_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wse_server", "serve", "--port", "0", "--data-dir", str(data),
         "--client-publish", "true"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("WSE ") and "listening on ws://127.0.0.1:" in first, first
        url = first.split("listening on ")[1].split()[0]

        async def main() -> None:
            import websockets

            async with websockets.connect(url) as ws:
                ready = await recv_json(ws, lambda m: m.get("t") == "server_ready")
                assert ready["p"]["details"]["features"]["recovery"] is True
                await ws.send(json.dumps({"t": "subscription_update",
                                          "p": {"action": "subscribe", "topics": ["chat"]}}))
                reply = await recv_json(ws, lambda m: m.get("t") == "subscription_update")
                assert reply["p"]["success_topics"] == ["chat"]
                await ws.send(json.dumps({"t": "publish", "id": "m1",
                                          "p": {"topic": "chat", "message": {"t": "say", "p": {"x": 1}}}}))
                msg = await recv_json(ws, lambda m: m.get("tp") == "chat")
                assert msg["o"] == 0 and msg["p"] == {"x": 1}

        asyncio.run(main())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "stopping" in out
        assert "warning: no authentication" in err
        assert (data / "topics").is_dir()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
