"""Presence: who is in a topic.

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
                    try:
                        server.update_presence(conn, data.get("p") or {})
                    except RuntimeError as e:
                        # The client may be gone by the time its message is
                        # drained (or sent data over presence_max_data_size).
                        print(f"status of {conn} not updated: {e}", flush=True)
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
