"""Basic WSE app: JWT authentication and an echo, in drain mode.

Run it, then connect with the token it prints, e.g. with the `wse-client`
package::

    python examples/basic.py
    # listening on ws://127.0.0.1:5007/wse
    # token: eyJ...

    import asyncio
    from wse_client import connect

    async def main(token):
        async with connect("ws://127.0.0.1:5007/wse", token=token) as client:
            await client.send("hello", {"text": "hi"})
            print(await client.recv())   # WSEEvent(type='echo', payload={'text': 'hi'}, ...)

Environment: WSE_PORT (default 5007, 0 picks a free port), WSE_JWT_SECRET,
WSE_EXAMPLE_ONCE=1 to exit after the first client leaves (the tests use it).
"""

from __future__ import annotations

import os
import time

from wse_server import RustWSEServer, rust_jwt_encode

SECRET = os.environ.get("WSE_JWT_SECRET", "an-example-secret-of-32-bytes-min").encode()


def main() -> None:
    port = int(os.environ.get("WSE_PORT", "5007"))
    once = os.environ.get("WSE_EXAMPLE_ONCE") == "1"
    # With a jwt_secret the server authenticates every connection itself
    # (cookie `access_token` or `Authorization: Bearer`) and sends
    # `server_ready`; the app hears `auth_connect` with the JWT `sub`.
    server = RustWSEServer("127.0.0.1", port, jwt_secret=SECRET)
    server.enable_drain_mode()
    server.start()
    demo_token = rust_jwt_encode({"sub": "demo-user", "exp": int(time.time()) + 3600}, SECRET)
    print(f"listening on ws://127.0.0.1:{server.local_port()}/wse", flush=True)
    print(f"token: {demo_token}", flush=True)
    users: dict[str, str] = {}
    try:
        while True:
            for kind, conn, data in server.drain_inbound(256, 100):
                if kind == "auth_connect":
                    users[conn] = data
                    print(f"{data} connected ({conn})", flush=True)
                elif kind == "msg" and isinstance(data, dict):
                    # Echo the payload back through the send_event pipeline
                    # (envelope, dedup, compression above 1 KiB).
                    server.send_event(conn, {"t": "echo", "p": data.get("p"), "user": users.get(conn)})
                elif kind == "disconnect":
                    print(f"{users.pop(conn, '?')} left", flush=True)
                    if once:
                        return
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
