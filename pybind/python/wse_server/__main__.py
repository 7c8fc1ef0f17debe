"""``python -m wse_server serve``: the standalone server, as ``wse serve``.

The same settings with the same defaults and the same priorities: built-in
standalone defaults, then a TOML file (``--config``), then ``WSE_*``
environment variables, then flags. Without a Python app behind it the
server is complete on its own: it sends ``server_ready``, answers clients'
``subscription_update`` (subscribe, unsubscribe, recover) itself, and with
``--client-publish true`` lets clients publish to topics their ACL allows.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wse_server import RustWSEServer, __version__

# (flag, environment variable, type, help): the settings of `wse serve`.
_SETTINGS: list[tuple[str, str, Callable[[str], Any], str]] = [
    ("host", "WSE_HOST", str, "Address to listen on [default: 127.0.0.1]"),
    ("port", "WSE_PORT", int, "Port to listen on [default: 5007; 0 picks a free port]"),
    ("data_dir", "WSE_DATA_DIR", str, "Data directory of the log [default: ./wse-data]"),
    (
        "durability",
        "WSE_DURABILITY",
        str,
        "fsync policy: always, interval, interval:<ms> or never [default: interval]",
    ),
    (
        "jwt_secret",
        "WSE_JWT_SECRET",
        str,
        "Enable JWT auth with this HS256 secret (>= 32 bytes), or for RS256/ES256 a PEM public key",
    ),
    ("jwt_secret_file", "WSE_JWT_SECRET_FILE", str, "Read the JWT key from a file (a PEM for RS256/ES256)"),
    ("jwt_algorithm", "WSE_JWT_ALGORITHM", str, "JWT algorithm: HS256, RS256 or ES256 [default: HS256]"),
    ("jwt_issuer", "WSE_JWT_ISSUER", str, "Required `iss` claim"),
    ("jwt_audience", "WSE_JWT_AUDIENCE", str, "Required `aud` claim"),
    ("jwt_cookie_name", "WSE_JWT_COOKIE_NAME", str, "Cookie the token is read from [default: access_token]"),
    ("max_connections", "WSE_MAX_CONNECTIONS", int, "Registered connections at most [default: 100000]"),
    ("max_message_size", "WSE_MAX_MESSAGE_SIZE", int, "Largest inbound message in bytes [default: 1048576]"),
    ("ping_interval", "WSE_PING_INTERVAL", int, "Seconds between server pings [default: 25]"),
    (
        "idle_timeout",
        "WSE_IDLE_TIMEOUT",
        int,
        "Seconds without client data before a connection is closed [default: 60]",
    ),
    (
        "max_outbound_bytes",
        "WSE_MAX_OUTBOUND_BYTES",
        int,
        "Unsent bytes a connection may fall behind [default: 16777216]",
    ),
    (
        "slow_consumer",
        "WSE_SLOW_CONSUMER",
        str,
        "What happens to a slow consumer: disconnect or drop [default: disconnect]",
    ),
    ("inbound_rate", "WSE_INBOUND_RATE", float, "Client messages per second per connection [default: 5000]"),
    ("inbound_burst", "WSE_INBOUND_BURST", float, "Burst of client messages per connection [default: 10000]"),
    (
        "recovery_max_messages",
        "WSE_RECOVERY_MAX_MESSAGES",
        int,
        "Messages one recovery request replays [default: 500]",
    ),
    (
        "client_publish",
        "WSE_CLIENT_PUBLISH",
        lambda v: _parse_bool(v),
        'Let clients publish with {"t":"publish","p":{"topic":..,"message":{..}}} (true/false)',
    ),
    ("retention_bytes", "WSE_RETENTION_BYTES", int, "Bytes of log kept per topic [default: 1073741824]"),
    ("retention_seconds", "WSE_RETENTION_SECONDS", int, "Seconds of log kept per topic [default: 604800]"),
    ("worker_threads", "WSE_WORKER_THREADS", int, "Tokio worker threads [default: 2]"),
]

_FILE_KEYS = {name for name, _, _, _ in _SETTINGS}


def _parse_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes", "on"):
        return True
    if text.lower() in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wse_server",
        description="WSE: a log-centric real-time WebSocket server.",
    )
    parser.add_argument("--version", action="version", version=f"wse {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="Run the standalone server (as `wse serve`)")
    serve.add_argument(
        "--config", default=os.environ.get("WSE_CONFIG"), help="TOML file with any of the settings below (snake_case keys)"
    )
    for name, env, kind, text in _SETTINGS:
        serve.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=kind,
            default=None,
            help=f"{text} [env: {env}]",
        )
    return parser


def settings(argv: Sequence[str]) -> dict[str, Any]:
    """The effective settings: flags, then ``WSE_*`` variables, then the TOML
    file (unset ones are absent: the standalone defaults apply)."""
    args = _parser().parse_args(list(argv))
    file: dict[str, Any] = {}
    if args.config:
        with open(args.config, "rb") as f:
            file = tomllib.load(f)
        unknown = sorted(set(file) - _FILE_KEYS)
        if unknown:
            raise SystemExit(f"error: {args.config}: unknown setting(s): {', '.join(unknown)}")
    chosen: dict[str, Any] = {}
    for name, env, kind, _ in _SETTINGS:
        value = getattr(args, name)
        if value is None and env in os.environ:
            value = kind(os.environ[env])
        if value is None:
            value = file.get(name)
        if value is not None:
            chosen[name] = value
    return chosen


def server_options(chosen: dict[str, Any]) -> dict[str, Any]:
    """``RustWSEServer`` keyword arguments for the settings, on top of the
    standalone defaults of ``wse serve`` (recovery, core subscriptions,
    ``server_ready`` without JWT, no app events, data in ./wse-data,
    100,000 connections, the log's default memory tail)."""
    options: dict[str, Any] = {
        "host": chosen.get("host", "127.0.0.1"),
        "port": chosen.get("port", 5007),
        "max_connections": chosen.get("max_connections", 100_000),
        "recovery_enabled": True,
        "core_subscriptions": True,
        "server_ready_without_auth": True,
        "app_events": False,
        "data_dir": chosen.get("data_dir", "wse-data"),
        "tail_records_per_topic": 1024,
    }
    renames = {
        "durability": "durability",
        "max_message_size": "max_message_size",
        "ping_interval": "ping_interval",
        "idle_timeout": "idle_timeout",
        "max_outbound_bytes": "max_outbound_queue_bytes",
        "slow_consumer": "slow_consumer",
        "inbound_rate": "inbound_rate_refill",
        "inbound_burst": "inbound_rate_capacity",
        "recovery_max_messages": "recovery_max_messages",
        "client_publish": "client_publish",
        "retention_bytes": "retention_max_bytes",
        "retention_seconds": "retention_max_age",
        "worker_threads": "worker_threads",
    }
    for name, option in renames.items():
        if name in chosen:
            options[option] = chosen[name]
    key: bytes | None = None
    if "jwt_secret" in chosen:
        key = str(chosen["jwt_secret"]).encode()
    elif "jwt_secret_file" in chosen:
        key = Path(chosen["jwt_secret_file"]).read_bytes()
    if key is not None:
        options["jwt_secret"] = key
        options["jwt_algorithm"] = chosen.get("jwt_algorithm", "HS256")
        for name in ("jwt_issuer", "jwt_audience", "jwt_cookie_name"):
            if name in chosen:
                options[name] = chosen[name]
        options["server_ready_without_auth"] = False
    return options


def serve(argv: Sequence[str]) -> int:
    """Run the server until SIGINT or SIGTERM."""
    chosen = settings(argv)
    options = server_options(chosen)
    try:
        server = RustWSEServer(**options)
        server.start()
    except (ValueError, OSError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    port = server.local_port()
    addr = f"{options['host']}:{port}"
    durability = str(options.get("durability", "interval")).split(":")[0]
    print(
        f"WSE {__version__} listening on ws://{addr}/wse (data: {options['data_dir']}, durability: {durability})",
        flush=True,
    )
    if "jwt_secret" not in options:
        print(
            f"warning: no authentication; anyone who can reach {addr} may connect "
            "(set --jwt-secret or WSE_JWT_SECRET)",
            file=sys.stderr,
            flush=True,
        )
    print("connect: the wse-client packages (Python, TypeScript) or any WebSocket client,")
    print(f"         e.g. `websocat ws://{addr}/wse`, then send")
    print('         {"t":"subscription_update","p":{"action":"subscribe","topics":["chat"]}}')
    if options.get("client_publish"):
        print('publish: {"t":"publish","p":{"topic":"chat","message":{"t":"chat_message","p":{"text":"hi"}}}}')
    print(f"inspect: wse log topics {options['data_dir']}   (stop with Ctrl-C)", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    print("stopping: clients are told to reconnect later (close 1012)", flush=True)
    server.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m wse_server`` and the ``wse-server`` script."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] != "serve":
        _parser().parse_args(args)  # prints usage and exits
        return 2
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
