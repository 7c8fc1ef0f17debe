"""Type stubs of the native module ``wse_server._wse_accel``.

Checked against the compiled module by ``python -m mypy.stubtest wse_server``
(tests/python/test_module.py).
"""

from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any, Self, final

__version__: str
# Private: the option (docs/OPERATIONS.md) each constructor keyword sets.
_KEYWORD_OPTIONS: dict[str, str]

__all__ = [
    "__version__",
    "RustWSEServer",
    "LogReader",
    "NotRecoverableError",
    "RustCompressionManager",
    "RustPriorityQueue",
    "RustPriorityMessageQueue",
    "RustTokenBucket",
    "RustSequencer",
    "RustEventSequencer",
    "_wse_main",
    "_KEYWORD_OPTIONS",
    "rust_jwt_encode",
    "rust_jwt_decode",
    "rust_aes_gcm_encrypt",
    "rust_aes_gcm_decrypt",
    "rust_ecdh_generate_keypair",
    "rust_ecdh_derive_shared_secret",
    "rust_hmac_sha256",
    "rust_sha256",
    "rust_sign_message",
    "rust_compress",
    "rust_decompress",
    "rust_should_compress",
    "rust_match_event",
    "rust_transform_event",
]

# =============================================================================
# RustWSEServer
# =============================================================================

@final
class RustWSEServer:
    """Standalone Rust WebSocket server controlled from Python.

    All transport (accept, WebSocket frames, JWT, compression, heartbeats,
    fan-out and the topic logs) runs in Rust on its own threads. Python
    handles application logic in drain mode (``enable_drain_mode`` +
    ``drain_inbound``) or callback mode (``set_callbacks``).

    Every topic broadcast is appended to the topic's log in ``data_dir``;
    recovery replays from it, across restarts when ``data_dir`` is kept.

    The object is thread-safe: any method may be called from any thread,
    ``stop()`` included while another thread waits in ``drain_inbound``.
    """

    def __new__(
        cls,
        host: str,
        port: int,
        max_connections: int = 1000,
        jwt_secret: bytes | None = None,
        jwt_issuer: str | None = None,
        jwt_audience: str | None = None,
        jwt_cookie_name: str | None = None,
        jwt_previous_secret: bytes | None = None,
        jwt_key_id: str | None = None,
        jwt_algorithm: str | None = None,
        jwt_private_key: bytes | None = None,
        max_inbound_queue_size: int = 131072,
        recovery_enabled: bool = False,
        recovery_buffer_size: int = 128,
        recovery_ttl: int = 300,
        recovery_max_messages: int = 500,
        recovery_memory_budget: int = 268435456,
        presence_enabled: bool = False,
        presence_max_data_size: int = 4096,
        presence_max_members: int = 0,
        rate_limit_capacity: float = 100000.0,
        rate_limit_refill: float = 10000.0,
        max_message_size: int = 1048576,
        ping_interval: int = 25,
        idle_timeout: int = 60,
        max_outbound_queue_bytes: int = 16777216,
        max_subscriptions_per_connection: int = 0,
        *,
        data_dir: str | PathLike[str] | None = None,
        durability: str = "interval",
        retention_max_bytes: int = 1073741824,
        retention_max_age: int = 604800,
        retention_max_records: int = 0,
        tail_records_per_topic: int | None = None,
        tail_memory_budget: int | None = None,
        slow_consumer: str = "disconnect",
        core_subscriptions: bool = False,
        client_publish: bool = False,
        worker_threads: int = 2,
        server_ready_without_auth: bool = False,
        app_events: bool = True,
        inbound_rate_capacity: float = 10000.0,
        inbound_rate_refill: float = 5000.0,
        inbound_bytes_capacity: int = 8388608,
        inbound_bytes_refill: int = 4194304,
        max_message_depth: int = 32,
        max_message_elements: int = 100000,
        max_patterns_per_connection: int = 0,
        max_inbound_queue_bytes: int = 67108864,
        queue_memory_budget: int = 268435456,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        tls_reload_interval: int = 10,
        http_listen: str | None = None,
        admin_token: str | None = None,
        http_public_metrics: bool = False,
        http_max_body: int = 16777216,
        http_rate_limit: float = 20.0,
        http_rate_burst: float = 40.0,
        permessage_deflate: bool = True,
        deflate_min_size: int = 256,
        encryption: bool = True,
        e2e_rekey_interval: float | None = None,
        close_on_token_expiry: bool = False,
        e2e_hello_wait: float = 0.5,
        signature_key: bytes | None = None,
        max_pending_handshakes: int = 512,
        max_pending_handshakes_per_ip: int = 16,
        handshake_timeout: float = 5.0,
        close_grace: float = 10.0,
        max_topic_bytes: int = 256,
        fanout_frames_per_topic: int = 1024,
        write_coalesce: float = 0.0,
        segment_max_bytes: int = 67108864,
        segment_max_age: int = 3600,
        max_open_files: int = 256,
        node_id: int | None = None,
        cluster_listen: str | None = None,
        cluster_peers: str | None = None,
        cluster_insecure: bool = False,
        cluster_shards: int = 16,
        cluster_heartbeat: float = 0.15,
        cluster_election_timeout: float = 1.0,
        cluster_publish_timeout: float = 5.0,
        cluster_dedup_window: int = 10000,
        cluster_node_timeout: float = 3.0,
        cluster_join: bool = False,
        cluster_snapshot_every: int = 20000,
        cluster_snapshot_keep: int = 1000,
    ) -> Self:
        """Configure a server (nothing runs until ``start()``).

        The 27 positional parameters are upstream's (PYTHON_API.md §2.1),
        validated the same way (``ValueError`` for ``ping_interval`` not
        below ``idle_timeout``, HS256 secrets under 32 bytes, bad PEM keys,
        unknown ``jwt_algorithm``; ``OverflowError`` for negative values or
        a port above 65535). ``port=0`` picks a free port (see
        ``local_port()``).

        Upstream's recovery ring settings map onto the log's memory tail:
        ``recovery_buffer_size`` (raised to >= 16, rounded up to a power of
        two) is the default of ``tail_records_per_topic``,
        ``recovery_memory_budget`` the default of ``tail_memory_budget``,
        and ``recovery_ttl`` is the tail's idle lifetime. Recovery itself
        reaches any history the log retains (memory or disk);
        ``recovery_max_messages`` bounds one request (larger gaps are
        replayed in pages).

        Keyword-only WSE options:

        - ``data_dir``: the log's directory; ``None`` uses a temporary
          directory removed at ``stop()`` (history lasts one run).
        - ``durability``: ``"always"`` (fsync before delivery, group
          commit), ``"interval"`` (fsync every 100 ms / 16 KiB),
          ``"interval:<ms>"``, or ``"never"``.
        - ``retention_max_bytes`` (1 GiB), ``retention_max_age`` (7 days,
          in seconds), ``retention_max_records`` (none): per-topic history
          kept (whole segments are deleted past a limit, never leaving less
          than a limit asks for); 0 means unlimited.
        - ``tail_records_per_topic``, ``tail_memory_budget``: the memory
          tail (see above).
        - ``slow_consumer``: ``"disconnect"`` (close 1013) or ``"drop"``
          (skip ahead; the client recovers the gap).
        - ``core_subscriptions``: the core answers clients'
          ``subscription_update`` (subscribe, unsubscribe, recover).
        - ``client_publish``: clients may publish to topics their ACL
          allows.
        - ``worker_threads``: Tokio worker threads.
        - ``server_ready_without_auth``: send ``server_ready`` without JWT
          too (standalone servers).
        - ``app_events``: queue events for the app; ``False`` drops them (a
          standalone server without an app).
        - ``max_inbound_queue_bytes``: memory the queued events hold at most
          (64 MiB, estimated from each parsed message); past it, as past
          ``max_inbound_queue_size`` events, clients are read more slowly
          instead of losing messages.
        - ``tls_cert``, ``tls_key`` (None): PEM files (certificate chain,
          leaf first; its private key), both or neither: the client port
          serves ``wss://`` (TLS 1.2/1.3, rustls). Checked every
          ``tls_reload_interval`` seconds (0: never) and reloaded when
          changed; ``reload_tls()`` reloads at once.
        - ``http_listen`` (None): ``"host:port"`` where the HTTP API
          listens (``/health``, ``/ready``, ``/metrics``, ``/v1/...``
          publishing, topics, records, connections; docs/openapi.json),
          started with the server; None: no HTTP API.
        - ``admin_token``: the bearer token the HTTP API asks of everything
          but ``/health`` and ``/ready`` (None: those endpoints answer 403);
          ``http_public_metrics`` opens ``/metrics``; ``http_max_body``
          bounds a batch publish (16 MiB). ``http_rate_limit`` (20/s) and
          ``http_rate_burst`` (40) limit requests per client address that
          lack the admin token (429 with ``Retry-After``; 0: unlimited).
        - ``permessage_deflate`` (True): accept per-message deflate (RFC
          7692) when a client offers it; each broadcast of at least
          ``deflate_min_size`` bytes (256) is compressed once and shared
          by every client that negotiated it.
        - ``queue_memory_budget``: bytes all connections' queues and read
          buffers hold together (256 MiB; 0 = unlimited). Past it, a
          connection holding more than 16 KiB gets nothing more queued (as
          for a full queue) and reading from one whose partial message would
          need more pauses until there is room.
        - ``inbound_rate_capacity``, ``inbound_rate_refill``: client
          messages per connection (burst, per second).
        - ``inbound_bytes_capacity``, ``inbound_bytes_refill``: client
          bytes per connection (8 MiB burst, at least ``max_message_size``;
          4 MiB per second); past them the server reads that client later.
        - ``max_message_depth`` (32), ``max_message_elements`` (100,000):
          the shape a client's JSON or msgpack message may have; one past
          them is refused with ``MESSAGE_TOO_COMPLEX`` and never reaches
          the app.
        - ``max_patterns_per_connection``: topic patterns per connection
          (0, the default here: unlimited; ``wse serve``: 64).
        - ``encryption``: agree end-to-end encryption with clients that ask
          for it in ``client_hello`` (then every data frame they receive,
          ``send``/``send_bytes`` output included, is an ``E:`` frame).
        - ``close_on_token_expiry`` (False): close a JWT connection with
          4401 ``Token expired`` when its token's ``exp`` passes.
        - ``e2e_rekey_interval``: seconds an end-to-end key lives; then the
          connection is closed with code 4000 and the client reconnects
          with a fresh key (``None``: for the connection's life).
        - ``e2e_hello_wait``: seconds a new connection's topic data waits
          for its ``client_hello`` (so a client asking for encryption never
          receives it in clear); 0: no wait.
        - ``signature_key``: verify the HMAC-SHA256 ``sig`` of every client
          message with this key; unsigned or badly signed messages are
          refused with an ``INVALID_SIGNATURE`` error frame.
        - ``max_pending_handshakes`` (512), ``handshake_timeout`` (5 s):
          sockets between accept and completed upgrade, and how long each
          may take; when all are taken, a new socket takes the place of
          the oldest one still reading its request (closed).
        - ``max_pending_handshakes_per_ip`` (16): pending sockets from one
          address (an IPv6 /64); a further one is closed at once (0: no
          cap, for a server behind a reverse proxy that connects from a
          few addresses).
        - ``close_grace`` (10 s): time a closing connection gets for its
          last bytes and the Close frame.
        - ``max_topic_bytes`` (256): longest topic name.
        - ``fanout_frames_per_topic`` (1024): framed messages kept in
          memory per subscribed topic for the writers.
        - ``write_coalesce`` (0 s): how long topic messages for a
          connection may wait so one write carries several.
        - ``segment_max_bytes`` (64 MiB), ``segment_max_age`` (3600 s): when
          a log segment is sealed and a new one started (retention deletes
          whole sealed segments).
        - ``max_open_files`` (256): segment files kept open at once, however
          many topics there are.
        - ``node_id``, ``cluster_listen``, ``cluster_peers``
          (``"1=127.0.0.1:7101,2=..."``, this node included),
          ``cluster_insecure`` (required until mTLS) make this server a
          node of a Raft-replicated cluster (docs/OPERATIONS.md § Cluster),
          tuned by ``cluster_shards`` (16), ``cluster_heartbeat`` (0.15 s),
          ``cluster_election_timeout`` (1 s), ``cluster_publish_timeout``
          (5 s), ``cluster_dedup_window`` (10,000), ``cluster_node_timeout``
          (3 s), ``cluster_join`` (join a running cluster at first
          start), ``cluster_snapshot_every`` (20,000) and
          ``cluster_snapshot_keep`` (1,000).
        """
        ...

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Bind, open the log and serve; returns once the socket is bound.

        Raises ``RuntimeError("Server is already running")`` when running,
        ``OSError`` when the address cannot be bound. Restart after
        ``stop()`` works.
        """
        ...
    def stop(self) -> None:
        """Close every client (1012: reconnect later), flush and close the
        log. A no-op when not running."""
        ...
    def drain(self, close_code: int = 4300, close_reason: str = "", timeout: int = 30) -> None:
        """Refuse new connections and close every client with
        ``close_code``/``close_reason``; connections get ``timeout`` seconds
        to go. ``RuntimeError("Not running")`` before ``start()``. Call
        ``stop()`` afterwards."""
        ...
    def is_running(self) -> bool:
        """True between a successful ``start()`` and ``stop()``."""
        ...
    def local_port(self) -> int | None:
        """The bound port while running (useful with ``port=0``)."""
        ...

    def local_http_port(self) -> int | None:
        """The HTTP API's bound port while running with ``http_listen``
        (useful with ``"127.0.0.1:0"``), else None."""
        ...

    def reload_tls(self) -> None:
        """Read ``tls_cert`` and ``tls_key`` again and present them from the
        next TLS handshake on; established connections stay. ``ValueError``
        naming the file when the pair cannot be used (the certificate in
        force stays); ``RuntimeError`` without TLS or before ``start()``."""
        ...

    # -- receiving events --------------------------------------------------

    def enable_drain_mode(self) -> None:
        """Deliver events through ``drain_inbound`` (wins over callbacks)."""
        ...
    def drain_inbound(self, max_count: int = 256, timeout_ms: int = 50) -> list[tuple[str, str | None, Any]]:
        """Up to ``max_count`` events, waiting up to ``timeout_ms`` (GIL
        released) for the first; ``[]`` on timeout.

        Tuples: ``("connect", conn_id, cookie_header)``,
        ``("auth_connect", conn_id, user_id)``, ``("msg", conn_id, value)``,
        ``("raw", conn_id, text)``, ``("bin", conn_id, bytes)``,
        ``("disconnect", conn_id, None)``, and with presence (not available
        yet) ``("presence_join" | "presence_leave" | "presence_update",
        None, {"topic", "user_id", "data"})``. One FIFO queue: events of a
        connection keep their order.
        """
        ...
    def inbound_queue_depth(self) -> int:
        """Events waiting."""
        ...
    def inbound_dropped_count(self) -> int:
        """Events lost (only while stopped: a full queue makes clients wait)."""
        ...
    def set_callbacks(
        self,
        on_connect: Callable[[str, str], Any],
        on_message: Callable[[str, Any], Any],
        on_disconnect: Callable[[str], Any],
        on_presence: Callable[[str, dict[str, Any]], Any] | None = None,
    ) -> None:
        """Callback mode: ``on_connect(conn_id, cookies)`` (``""`` for JWT
        connections), ``on_message(conn_id, data)`` (dict, str or bytes),
        ``on_disconnect(conn_id)``, and optionally ``on_presence(event_type,
        {"topic", "user_id", "data"})`` with event_type ``presence_join``,
        ``presence_leave`` or ``presence_update``; called in order from one
        thread started by ``start()``; exceptions are logged to the
        ``wse_server`` logger and swallowed. ``RuntimeError("All callbacks
        must be callable")``."""
        ...

    # -- sending -----------------------------------------------------------

    def send(self, conn_id: str, data: str) -> None:
        """Text frame to one connection, verbatim (unknown ids ignored);
        sealed into an ``E:`` frame on an end-to-end encrypted connection.
        ``ValueError`` for a frame larger than ``max_outbound_queue_bytes``
        (it could never be sent); one that does not fit behind what the
        client has not read follows ``slow_consumer`` (the connection is
        closed with 1013, or the frame dropped and counted)."""
        ...
    def send_bytes(self, conn_id: str, data: bytes) -> None:
        """Binary frame to one connection, verbatim (sealed on an end-to-end
        encrypted connection, whose clients can read only UTF-8 inside).
        Limits as ``send``."""
        ...
    def send_event(self, conn_id: str, event: dict[str, Any], compression_threshold: int = 1024) -> int:
        """The ``send_event`` pipeline (binary frame); returns the body's
        size, 0 when deduplicated by ``id`` or rate limited. bytes become
        hex, objects with ``isoformat()`` that string, NaN/inf null."""
        ...
    def broadcast_all(self, data: str) -> None:
        """Text to every connection (``c`` injected)."""
        ...
    def broadcast_all_bytes(self, data: bytes) -> None:
        """Bytes to every connection."""
        ...
    def broadcast_local(self, topic: str, data: str) -> None:
        """Publish on ``topic``: appended to its log (stamped
        ``tp``/``e``/``o`` with recovery on), delivered to subscribers,
        pattern subscribers and one member per queue group.
        Fire-and-forget: returns before the record is durable, so a crash
        in the next milliseconds can lose it; use ``publish`` or ``flush``
        for an acknowledgement. ``RuntimeError("Not running")`` before
        ``start()``."""
        ...
    def publish(self, topic: str, data: str, id: str | None = None) -> tuple[str, int]:
        """Publish on ``topic`` and return ``(epoch, offset)`` once the
        record is acknowledged: durable by the log's policy (``always``:
        fsynced; ``interval``/``never``: written, so a crash of this
        process cannot take it back). Releases the GIL while waiting.
        ``RuntimeError("Not running")`` before ``start()``; ``ValueError``
        for a bad topic or a record over the size limit; ``RuntimeError``
        when storage failed the record (it is then not delivered).

        On a cluster node the record is committed by a majority of its
        shard first: ``TimeoutError`` when that took longer than
        ``cluster_publish_timeout`` (it may still commit),
        ``ConnectionError`` when no leader could take it. With ``id``, a
        publish whose id is already stored on the topic (within
        ``cluster_dedup_window``) is not stored again and returns the first
        copy's position: retry a timed-out publish with the same id."""
        ...
    def flush(self, timeout: float | None = None) -> None:
        """Return once everything broadcast or published before the call is
        acknowledged (and, under ``interval``, fsynced). ``TimeoutError``
        after ``timeout`` seconds."""
        ...
    def broadcast(self, topic: str, data: str) -> None:
        """``broadcast_local`` (and cluster peers once clustering exists).
        Does nothing before ``start()``."""
        ...

    # -- connections -------------------------------------------------------

    def get_connection_count(self) -> int:
        """Registered connections."""
        ...
    def get_connections(self) -> list[str]:
        """Connection ids (UUIDv7). ``RuntimeError("Not running")`` before
        ``start()``."""
        ...
    def disconnect(self, conn_id: str) -> None:
        """Close a connection (Close frame without status)."""
        ...

    # -- subscriptions -----------------------------------------------------

    def set_topic_acl(self, conn_id: str, allow: list[str] | None = None, deny: list[str] | None = None) -> None:
        """Replace a connection's topic ACL (globs; deny wins; empty allow
        allows all)."""
        ...
    def subscribe_connection(
        self,
        conn_id: str,
        topics: list[str],
        presence_data: dict[str, Any] | None = None,
        queue_group: str | None = None,
    ) -> None:
        """Subscribe to topics (``*``/``?`` patterns allowed), or join
        ``queue_group`` of each. Denied and invalid topics are dropped;
        ``RuntimeError`` when ``max_subscriptions_per_connection`` is
        reached. With ``presence_data`` (and ``presence_enabled``) the
        connection's user (JWT ``sub``, else the connection id) joins each
        topic's presence; data over ``presence_max_data_size`` raises
        ``ValueError``, a full topic ``RuntimeError`` (after subscribing)."""
        ...
    def unsubscribe_connection(self, conn_id: str, topics: list[str] | None = None) -> None:
        """Unsubscribe from ``topics``, or from everything (``None``)."""
        ...
    def get_topic_subscriber_count(self, topic: str) -> int:
        """Fan-out subscribers of exactly ``topic``."""
        ...
    def get_queue_group_info(self, topic: str) -> dict[str, int]:
        """``{group_name: member_count}`` of ``topic``."""
        ...
    def subscribe_with_recovery(
        self,
        conn_id: str,
        topics: list[str],
        recover: bool = False,
        epoch: str | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        """Subscribe, and replay what the client missed after
        ``(epoch, offset)``, queued before this returns.

        Returns ``{"recovered": bool, "topics": {topic: {"epoch",
        "offset", "recoverable", "recovered", "count", "complete"}}}``
        (``complete`` is False when only the first ``recovery_max_messages``
        were replayed). ``RuntimeError`` for a non-hex epoch, and for
        ``recover=True`` before ``start()``.
        """
        ...

    # -- presence ----------------------------------------------------------

    def presence(self, topic: str) -> dict[str, dict[str, Any]]:
        """``{user_id: {"data": ..., "connections": n}}`` of a topic
        (``{}`` when presence is disabled)."""
        ...
    def presence_stats(self, topic: str) -> dict[str, int]:
        """``{"num_users", "num_connections"}`` of a topic, in O(1)
        (zeros when presence is disabled)."""
        ...
    def update_presence(self, conn_id: str, data: dict[str, Any]) -> None:
        """Set the user's data in every topic where the connection has
        presence (subscribers get ``presence_update``). ``RuntimeError`` for
        an unknown connection or data over the limit; a no-op when presence
        is disabled."""
        ...

    # -- cluster -----------------------------------------------------------

    def connect_cluster(
        self,
        peers: list[str],
        tls_cert: str | None = None,
        tls_key: str | None = None,
        tls_ca: str | None = None,
        cluster_port: int | None = None,
        seeds: list[str] | None = None,
        cluster_addr: str | None = None,
    ) -> None:
        """Not available yet: raises ``NotImplementedError``. A server
        becomes a cluster node through the constructor (``node_id``,
        ``cluster_listen``, ``cluster_peers``, ``cluster_insecure``)."""
        ...
    def cluster_status(self) -> dict[str, Any] | None:
        """This node's view of its cluster (``wse cluster status --json``):
        ``node_id``, ``members`` ({id: address}), ``connected_peers`` and
        per shard ``state``, ``leader``, ``term``, ``last_log_index``,
        ``applied``, ``voters``, ``learners``, ``leader_changes`` and, on
        the leader, ``lag`` / ``lag_millis`` per follower. ``None`` on a
        single node or before ``start()``."""
        ...
    def add_node(self, node_id: int, addr: str, timeout: float = 60.0) -> list[int]:
        """Make node ``node_id`` (running, started with
        ``cluster_join=True``, its peer listener at ``addr``) a voter of
        every shard: a learner first, promoted once caught up. Returns the
        shards that changed. ``RuntimeError`` on a single node or when a
        shard failed (asking again finishes the rest); ``TimeoutError``
        after ``timeout`` seconds."""
        ...
    def remove_node(self, node_id: int, timeout: float = 60.0) -> list[int]:
        """Take node ``node_id`` out of every shard's membership; the
        shards that changed. Errors as ``add_node``."""
        ...
    def cluster_connected(self) -> bool:
        """True when at least one peer link is up (False on a single
        node)."""
        ...
    def cluster_peers_count(self) -> int:
        """Peers this node has an open link to (0 on a single node)."""
        ...
    def cluster_info(self) -> list[dict[str, Any]]:
        """Always ``[]`` (no clustering yet)."""
        ...
    def reload_cluster_tls(self, cert_path: str, key_path: str, ca_path: str) -> None:
        """Clustering is not available yet: raises ``NotImplementedError``."""
        ...
    def get_cluster_dlq_entries(self) -> list[dict[str, str]]:
        """Always ``[]`` (no clustering yet)."""
        ...

    # -- monitoring --------------------------------------------------------

    def health_snapshot(self) -> dict[str, Any]:
        """Upstream's keys in upstream order, then WSE's log figures
        (``log_appends``, ``log_fsyncs``, ``log_tail_hit_ratio``, ...)."""
        ...
    def prometheus_metrics(self) -> str:
        """Prometheus text exposition."""
        ...
    def _options(self) -> list[tuple[str, str]]:
        """Private: every option's value, as docs/OPERATIONS.md writes it."""
        ...

    # -- the log -----------------------------------------------------------

    def position(self, topic: str) -> dict[str, Any] | None:
        """``{"epoch": "6b238eba", "first_offset": 0, "next_offset": 42}``
        or ``None`` for a topic without history. ``RuntimeError("Not
        running")`` before ``start()``."""
        ...
    def read(self, topic: str, epoch: str, offset: int, limit: int = 100) -> list[dict[str, Any]]:
        """Up to ``limit`` records from ``(epoch, offset)`` inclusive:
        ``{"topic", "epoch", "offset", "timestamp_us", "kind", "data"}``
        with ``data`` the stamped JSON exactly as subscribers received it.
        ``NotRecoverableError`` for another epoch, removed history or an
        offset past the head."""
        ...

# =============================================================================
# The log, read-only
# =============================================================================

class NotRecoverableError(LookupError):
    """The requested history is not in the log (another epoch, removed by
    retention, or past the newest record).

    Instances carry ``topic``, ``reason`` (``"epoch_mismatch"``,
    ``"removed"`` or ``"ahead"``), ``epoch`` (the topic's current epoch),
    ``first_offset`` and ``next_offset``.
    """

@final
class LogReader:
    """Read-only view of a WSE data directory (no lock, never writes), also
    one a running server is writing."""

    def __new__(cls, data_dir: str | PathLike[str]) -> Self:
        """Open ``data_dir`` (``FileNotFoundError`` if it does not exist)."""
        ...
    @property
    def data_dir(self) -> Path:
        """The data directory."""
        ...
    def topics(self) -> list[dict[str, Any]]:
        """Every topic, sorted by name: ``{"name", "epoch", "first_offset",
        "next_offset", "bytes", "segments"}``."""
        ...
    def position(self, topic: str) -> dict[str, Any] | None:
        """``{"epoch", "first_offset", "next_offset"}`` or ``None``."""
        ...
    def offset_at_time(self, topic: str, timestamp_us: int) -> int:
        """The offset of the first record appended at or after
        ``timestamp_us`` (microseconds since the Unix epoch); the next
        offset when every record is older. ``LookupError`` for an unknown
        topic."""
        ...
    def read(self, topic: str, epoch: str | None = None, offset: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Up to ``limit`` records from ``offset``; with ``epoch``, the
        stored history must be that epoch (else ``NotRecoverableError``).
        ``LookupError`` for an unknown topic."""
        ...

# =============================================================================
# The `wse` command line
# =============================================================================

def _wse_main(argv: list[str], self_command: list[str]) -> int:
    """Run the ``wse`` command line (``argv[0]`` is the program name) with
    the GIL released; its exit status. ``self_command`` starts it again in a
    child process. Used by ``python -m wse_server`` and the ``wse`` script."""
    ...

# =============================================================================
# JWT
# =============================================================================

def rust_jwt_encode(claims: dict[str, Any], secret: bytes, algorithm: str = "HS256", key_id: str | None = None) -> str:
    """Sign ``claims`` as given. Unknown algorithm: ``ValueError``; short
    HS256 key, bad PEM: ``RuntimeError("JWT encode error: ...")``."""
    ...

def rust_jwt_decode(
    token: str,
    secret: bytes,
    algorithm: str = "HS256",
    issuer: str | None = None,
    audience: str | None = None,
    previous_secret: bytes | None = None,
    key_id: str | None = None,
) -> dict[str, Any] | None:
    """Validate like the handshake (without requiring ``sub``); the claims,
    or ``None`` on any failure, an unknown algorithm included."""
    ...

# =============================================================================
# Crypto
# =============================================================================

def rust_ecdh_generate_keypair() -> tuple[bytes, bytes]:
    """(32-byte private scalar, 65-byte uncompressed public point)."""
    ...

def rust_ecdh_derive_shared_secret(private_key: bytes, peer_public_key: bytes) -> bytes:
    """32-byte AES key: HKDF-SHA256 of the ECDH secret (``ValueError`` on
    bad keys)."""
    ...

def rust_aes_gcm_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """IV(12) + ciphertext + tag(16); ``ValueError`` unless the key is 32
    bytes."""
    ...

def rust_aes_gcm_decrypt(key: bytes, data: bytes) -> bytes:
    """Open IV + ciphertext + tag; ``ValueError`` for short data or a bad
    key length, ``RuntimeError`` for a bad tag."""
    ...

def rust_hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256, 32 raw bytes."""
    ...

def rust_sha256(data: bytes) -> str:
    """SHA-256 as lowercase hex."""
    ...

def rust_sign_message(payload_json: str, secret: bytes) -> str:
    """hex(HMAC-SHA256(secret, hex(SHA-256(payload_json))))."""
    ...

# =============================================================================
# Compression
# =============================================================================

def rust_compress(data: bytes, level: int) -> bytes:
    """zlib at ``level`` (1-9, else ``ValueError``)."""
    ...

def rust_decompress(data: bytes) -> bytes:
    """Inflate zlib (output capped at 10 MiB; ``RuntimeError`` on bad
    input)."""
    ...

def rust_should_compress(data: bytes, threshold: int) -> bool:
    """``len(data) > threshold``."""
    ...

@final
class RustCompressionManager:
    """zlib with a threshold, a default level and statistics; msgpack and
    event (de)serialisation."""

    def __new__(cls, threshold: int = 1024, compression_level: int = 6) -> Self: ...
    def should_compress(self, data: bytes) -> bool:
        """True when ``data`` is longer than the threshold."""
        ...
    def compress(self, data: bytes, level: int | None = None) -> bytes:
        """zlib at ``level`` or the manager's level."""
        ...
    def decompress(self, data: bytes) -> bytes:
        """Inflate zlib."""
        ...
    def pack_msgpack(self, data: dict[str, Any]) -> bytes:
        """msgpack of a dict."""
        ...
    def unpack_msgpack(self, data: bytes) -> Any:
        """The value msgpack bytes encode."""
        ...
    def pack_event(self, event: dict[str, Any], use_msgpack: bool = True) -> bytes:
        """msgpack (or JSON) bytes of an event."""
        ...
    def unpack_event(self, data: bytes, is_msgpack: bool = True) -> Any:
        """Decode an event (msgpack, then JSON)."""
        ...
    def get_stats(self) -> dict[str, Any]:
        """Counters and rates."""
        ...
    def reset_stats(self) -> None:
        """Zero the counters."""
        ...

# =============================================================================
# Queues, rate limiter, sequencers
# =============================================================================

@final
class RustPriorityQueue:
    """Bounded priority queue: highest priority first, FIFO within one."""

    def __new__(cls, max_size: int) -> Self: ...
    def push(self, priority: int, message: Any) -> bool:
        """Queue ``message``; False when full."""
        ...
    def pop(self) -> Any | None:
        """The highest-priority, oldest message, or None."""
        ...
    def drain(self, max_count: int) -> list[Any]:
        """Up to ``max_count`` messages in pop order."""
        ...
    def len(self) -> int:
        """Messages queued."""
        ...
    def __len__(self) -> int: ...
    def is_full(self) -> bool:
        """True when a push would be refused."""
        ...
    def clear(self) -> None:
        """Drop every message."""
        ...

@final
class RustPriorityMessageQueue:
    """Five-level queue (10/8/5/3/1) with batch dequeue; when full, the
    oldest BACKGROUND, then LOW, then NORMAL message makes room."""

    def __new__(cls, max_size: int = 1000, batch_size: int = 10) -> Self: ...
    def enqueue(self, message: Any, priority: int = 5) -> bool:
        """Queue at ``priority`` (snapped to 1/3/5/8/10)."""
        ...
    def dequeue_batch(self) -> list[tuple[int, Any]]:
        """Up to ``batch_size`` (priority, message) pairs."""
        ...
    @property
    def size(self) -> int:
        """Messages queued."""
        ...
    def get_stats(self) -> dict[str, Any]:
        """Size, capacity, per-level counts and drops, back-pressure."""
        ...
    def clear(self) -> None:
        """Drop every message."""
        ...

@final
class RustTokenBucket:
    """Token bucket: ``capacity`` tokens, refilled at ``refill_rate``/s."""

    def __new__(cls, capacity: float, refill_rate: float, initial_tokens: float | None = None) -> Self: ...
    def acquire(self, tokens: float) -> bool:
        """Take ``tokens`` if available; ``ValueError`` if negative or not finite."""
        ...
    @property
    def tokens(self) -> float:
        """Tokens available now (refills first)."""
        ...
    def reset(self) -> None:
        """Refill to capacity."""
        ...

@final
class RustSequencer:
    """Sequence counter (from 1) with a FIFO dedup window."""

    def __new__(cls, window_size: int) -> Self: ...
    def next_seq(self) -> int: ...
    def get_current_seq(self) -> int: ...
    def is_duplicate(self, event_id: str) -> bool: ...
    def cleanup(self, max_age_secs: float) -> None: ...
    def seen_count(self) -> int: ...

@final
class RustEventSequencer:
    """Dedup window plus per-topic in-order delivery with a reorder buffer."""

    def __new__(cls, window_size: int = 10000, max_out_of_order: int = 100) -> Self: ...
    def next_seq(self) -> int: ...
    def get_current_sequence(self) -> int: ...
    def is_duplicate(self, event_id: str) -> bool: ...
    def process_sequenced_event(self, topic: str, sequence: int, event: Any) -> list[Any] | None:
        """Events now deliverable in order, or None when buffered/dropped."""
        ...
    def reset_sequence(self, topic: str | None = None) -> None: ...
    def cleanup(self) -> None: ...
    def get_buffer_stats(self) -> dict[str, Any]: ...
    def get_sequence_stats(self) -> dict[str, Any]: ...

# =============================================================================
# Event helpers
# =============================================================================

def rust_match_event(event: dict[str, Any], criteria: dict[str, Any]) -> bool:
    """MongoDB-style matching (dotted paths, ``$and``/``$or``, ``$eq $ne
    $gt $lt $gte $lte $in $nin $exists $regex $contains $startswith
    $endswith``). ``TypeError``/``ValueError`` where Python would raise."""
    ...

def rust_transform_event(event: dict[str, Any], sequence: int, event_type_map: dict[str, Any]) -> dict[str, Any]:
    """The WSE envelope ``{c, t, id, ts, seq, p, v, ...}`` of a raw event."""
    ...
