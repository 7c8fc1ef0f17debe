"""`python -m wse_server`: the `wse` command line of the binary, run from Python."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from wsetest import recv_json


def wse(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wse_server", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def test_help_lists_every_flag_of_wse_serve() -> None:
    out = wse("serve", "--help")
    assert out.returncode == 0, out.stderr
    # Flags added to `wse serve` after the Python package first shipped.
    for flag in ("--max-pending-handshakes", "--handshake-timeout", "--close-grace",
                 "--max-inbound-queue-bytes", "--jwt-previous-secret-file", "--jwt-key-id",
                 "--signature-key-file", "[env: WSE_PORT="):
        assert flag in out.stdout, flag


def test_bad_settings_exit_2_with_the_reason(tmp_path: Path) -> None:
    short = wse("serve", "--jwt-secret", "too short", "--data-dir", str(tmp_path))
    assert short.returncode == 2 and "32" in short.stderr, short.stderr
    config = tmp_path / "wse.toml"
    config.write_text("prot = 1\n")
    typo = wse("serve", "--config", str(config))
    assert typo.returncode == 2 and "prot" in typo.stderr, typo.stderr
    unknown = wse("serve", "--no-such-flag")
    assert unknown.returncode == 2 and "--no-such-flag" in unknown.stderr


def curl_examples() -> list[str]:
    """The commands of the `sh` block in docs/OPERATIONS.md's HTTP API
    section, continuation lines joined."""
    doc = (Path(__file__).parents[2] / "docs" / "OPERATIONS.md").read_text()
    section = doc.split("## HTTP API", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = block.replace("\\\n", " ").strip().splitlines()
    assert len(commands) >= 4 and all(c.startswith("curl ") for c in commands), commands
    return commands


def test_serve_runs_a_complete_server_until_sigterm_then_log_reads_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # A WSE_* variable is a setting: it turns client publishing on.
    env = dict(os.environ, PYTHONUNBUFFERED="1", WSE_CLIENT_PUBLISH="true", WSE_ADMIN_TOKEN="t0ken")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wse_server", "serve", "--port", "0", "--data-dir", str(data),
         "--http-listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("WSE ") and "listening on ws://127.0.0.1:" in first, first
        url = first.split("listening on ")[1].split()[0]
        http = ""
        while not http:
            line = proc.stdout.readline()
            assert line, "no HTTP API line"
            if line.startswith("HTTP API on "):
                http = line.split()[3]

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
        # The HTTP API of the same server: a probe, and an acknowledged
        # publish that takes the next offset.
        with urllib.request.urlopen(f"{http}/health", timeout=5) as r:
            assert json.load(r) == {"status": "ok"}
        req = urllib.request.Request(f"{http}/v1/topics/chat/publish", data=b'{"t":"say","p":{"x":2}}',
                                     headers={"Authorization": "Bearer t0ken"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.load(r)["position"]["offset"] == 1
        # The curl examples of docs/OPERATIONS.md, as written, against it.
        for command in curl_examples():
            run = subprocess.run(["bash", "-c", command.replace("http://127.0.0.1:5008", http)],
                                 capture_output=True, text=True, timeout=10,
                                 env=dict(os.environ, WSE_ADMIN_TOKEN="t0ken"))
            assert run.returncode == 0, (command, run.stderr)
            assert run.stdout and '"error"' not in run.stdout, (command, run.stdout)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "stopping" in out
        assert "warning: no authentication" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    topics = wse("log", "topics", str(data))
    assert topics.returncode == 0 and "chat" in topics.stdout, topics
    dump = wse("log", "dump", str(data), "chat", "--format", "json")
    assert dump.returncode == 0, dump.stderr
    record = json.loads(dump.stdout.splitlines()[0])
    assert record["offset"] == 0 and record["json"]["p"] == {"x": 1}
    assert wse("log", "verify", str(data)).returncode == 0


def test_log_format_json_writes_one_object_per_line_without_colour(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wse_server", "--log-format", "json", "serve", "--port", "0",
         "--data-dir", str(tmp_path / "data"), "--http-listen", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        assert proc.stderr is not None
        events = []
        while not any(e["fields"].get("message") == "HTTP API listening" for e in events):
            line = proc.stderr.readline()
            assert line, f"no HTTP API log line; got {events}"
            if line.startswith("{"):
                events.append(json.loads(line))
        started = next(e for e in events if e["fields"].get("message") == "WSE server started")
        assert started["level"] == "INFO" and started["target"].startswith("wse")
        assert "addr" in started["fields"] and "timestamp" in started
        assert not any("\x1b[" in json.dumps(e) for e in events), "no ANSI codes in a pipe"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
