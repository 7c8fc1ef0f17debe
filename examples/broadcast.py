"""Topics: clients subscribe, the app publishes to a topic.

The app answers the clients' `subscription_update` messages itself (as
upstream apps do) and publishes a price tick to the topic `prices` every
200 ms. Every publication is appended to the topic's log and stamped with
its position (`tp`, `e`, `o`), so clients can recover what they miss.

    python examples/broadcast.py
    # then, with wse-client:
    #   async with connect("ws://127.0.0.1:5007/wse") as c:
    #       await c.subscribe(["prices"])
    #       async for event in c: print(event.type, event.payload, event.offset)

Environment: WSE_PORT (default 5007; 0 picks a free port),
WSE_EXAMPLE_ONCE=1 to exit after the first client leaves.
"""

from __future__ import annotations

import json
import os
import random
import threading

from wse_server import RustWSEServer


def publisher(server: RustWSEServer, stop: threading.Event) -> None:
    price = 100.0
    while not stop.wait(0.2):
        price = round(price * (1 + random.uniform(-0.01, 0.01)), 2)
        server.broadcast("prices", json.dumps({"t": "price", "p": {"symbol": "WSE", "price": price}}))


def main() -> None:
    port = int(os.environ.get("WSE_PORT", "5007"))
    once = os.environ.get("WSE_EXAMPLE_ONCE") == "1"
    server = RustWSEServer(
        "127.0.0.1",
        port,
        recovery_enabled=True,  # stamp publications so clients can recover
        server_ready_without_auth=True,  # no JWT here: let the core greet clients
    )
    server.enable_drain_mode()
    server.start()
    print(f"listening on ws://127.0.0.1:{server.local_port()}/wse", flush=True)
    stop = threading.Event()
    threading.Thread(target=publisher, args=(server, stop), daemon=True).start()
    try:
        while True:
            for kind, conn, data in server.drain_inbound(256, 100):
                if kind == "msg" and isinstance(data, dict) and data.get("t") == "subscription_update":
                    p = data.get("p") or {}
                    topics = [t for t in p.get("topics", []) if t == "prices"]
                    if p.get("action") == "unsubscribe":
                        server.unsubscribe_connection(conn, topics)
                        continue
                    server.subscribe_connection(conn, topics)
                    reply = {"action": "subscribe", "success": True, "success_topics": topics,
                             "failed_topics": [t for t in p.get("topics", []) if t not in topics]}
                    server.send(conn, json.dumps({"c": "WSE", "t": "subscription_update", "p": reply, "v": 1}))
                    print(f"{conn} subscribed to {topics}", flush=True)
                elif kind == "disconnect":
                    print(f"{conn} left", flush=True)
                    if once:
                        return
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.stop()


if __name__ == "__main__":
    main()
