"""Presence: who is in a topic.

NOTE: presence is not available in WSE yet (it is being built on the log).
Until then `presence()` returns `{}`, `presence_stats()` zeros and
`update_presence()` does nothing, so this example shows the API and what
an app does with it; the calls already work and will fill in.

Each authenticated user joins the topic `lobby` with presence data; the
app sends the lobby's presence to every newcomer, and a client message
`{"t": "status", "p": {"status": "away"}}` updates the user's data.

Environment: WSE_PORT (default 5007; 0 picks a free port),
WSE_EXAMPLE_ONCE=1 to exit after the first client leaves.
"""

from __future__ import annotations

import os
import time

from wse_server import RustWSEServer, rust_jwt_encode

SECRET = os.environ.get("WSE_JWT_SECRET", "an-example-secret-of-32-bytes-min").encode()


def main() -> None:
    port = int(os.environ.get("WSE_PORT", "5007"))
    once = os.environ.get("WSE_EXAMPLE_ONCE") == "1"
    # Presence needs JWT connections (the user id is the JWT `sub`).
    server = RustWSEServer("127.0.0.1", port, jwt_secret=SECRET, presence_enabled=True)
    server.enable_drain_mode()
    server.start()
    print(f"listening on ws://127.0.0.1:{server.local_port()}/wse", flush=True)
    print(f"token: {rust_jwt_encode({'sub': 'demo-user', 'exp': int(time.time()) + 3600}, SECRET)}", flush=True)
    try:
        while True:
            for kind, conn, data in server.drain_inbound(256, 100):
                if kind == "auth_connect":
                    server.subscribe_connection(conn, ["lobby"], {"status": "online"})
                    server.send_event(conn, {"t": "presence_state", "p": {
                        "members": server.presence("lobby"),
                        "stats": server.presence_stats("lobby"),
                    }})
                elif kind == "msg" and isinstance(data, dict) and data.get("t") == "status":
                    server.update_presence(conn, data.get("p") or {})
                elif kind in ("presence_join", "presence_leave", "presence_update"):
                    print(kind, data, flush=True)
                elif kind == "disconnect" and once:
                    return
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
