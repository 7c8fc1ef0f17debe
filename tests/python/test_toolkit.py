"""The utility toolkit (§3): JWT, crypto, compression, queues, rate
limiter, sequencers, event helpers."""

from __future__ import annotations

import datetime
import enum
import hashlib
import hmac
import inspect
import json
import time
import uuid
import zlib

import pytest

from wse_server import (
    DeliveryGuarantee,
    EventFilter,
    EventPriority,
    RustCompressionManager,
    RustEventSequencer,
    RustPriorityMessageQueue,
    RustPriorityQueue,
    RustSequencer,
    RustTokenBucket,
    rust_aes_gcm_decrypt,
    rust_aes_gcm_encrypt,
    rust_compress,
    rust_decompress,
    rust_ecdh_derive_shared_secret,
    rust_ecdh_generate_keypair,
    rust_hmac_sha256,
    rust_jwt_decode,
    rust_jwt_encode,
    rust_match_event,
    rust_sha256,
    rust_should_compress,
    rust_sign_message,
    rust_transform_event,
)
from wse_server import _wse_accel

KEY = b"s" * 32

# PYTHON_API.md §3: the parameters of every function and method, as Python
# sees them (names, order, defaults; `self` left out).
SIGNATURES: dict[str, str] = {
    "rust_jwt_encode": "(claims, secret, algorithm='HS256', key_id=None)",
    "rust_jwt_decode": "(token, secret, algorithm='HS256', issuer=None, audience=None, previous_secret=None, "
                       "key_id=None)",
    "rust_ecdh_generate_keypair": "()",
    "rust_ecdh_derive_shared_secret": "(private_key, peer_public_key)",
    "rust_aes_gcm_encrypt": "(key, plaintext)",
    "rust_aes_gcm_decrypt": "(key, data)",
    "rust_hmac_sha256": "(key, data)",
    "rust_sha256": "(data)",
    "rust_sign_message": "(payload_json, secret)",
    "rust_compress": "(data, level)",
    "rust_decompress": "(data)",
    "rust_should_compress": "(data, threshold)",
    "rust_match_event": "(event, criteria)",
    "rust_transform_event": "(event, sequence, event_type_map)",
    "RustCompressionManager": "(threshold=1024, compression_level=6)",
    "RustCompressionManager.should_compress": "(data)",
    "RustCompressionManager.compress": "(data, level=None)",
    "RustCompressionManager.decompress": "(data)",
    "RustCompressionManager.pack_msgpack": "(data)",
    "RustCompressionManager.unpack_msgpack": "(data)",
    "RustCompressionManager.pack_event": "(event, use_msgpack=True)",
    "RustCompressionManager.unpack_event": "(data, is_msgpack=True)",
    "RustCompressionManager.get_stats": "()",
    "RustCompressionManager.reset_stats": "()",
    "RustPriorityQueue": "(max_size)",
    "RustPriorityQueue.push": "(priority, message)",
    "RustPriorityQueue.pop": "()",
    "RustPriorityQueue.drain": "(max_count)",
    "RustPriorityQueue.len": "()",
    "RustPriorityQueue.is_full": "()",
    "RustPriorityQueue.clear": "()",
    "RustPriorityMessageQueue": "(max_size=1000, batch_size=10)",
    "RustPriorityMessageQueue.enqueue": "(message, priority=5)",
    "RustPriorityMessageQueue.dequeue_batch": "()",
    "RustPriorityMessageQueue.get_stats": "()",
    "RustPriorityMessageQueue.clear": "()",
    "RustTokenBucket": "(capacity, refill_rate, initial_tokens=None)",
    "RustTokenBucket.acquire": "(tokens)",
    "RustTokenBucket.reset": "()",
    "RustSequencer": "(window_size)",
    "RustSequencer.next_seq": "()",
    "RustSequencer.get_current_seq": "()",
    "RustSequencer.is_duplicate": "(event_id)",
    "RustSequencer.cleanup": "(max_age_secs)",
    "RustSequencer.seen_count": "()",
    "RustEventSequencer": "(window_size=10000, max_out_of_order=100)",
    "RustEventSequencer.next_seq": "()",
    "RustEventSequencer.get_current_sequence": "()",
    "RustEventSequencer.is_duplicate": "(event_id)",
    "RustEventSequencer.process_sequenced_event": "(topic, sequence, event)",
    "RustEventSequencer.reset_sequence": "(topic=None)",
    "RustEventSequencer.cleanup": "()",
    "RustEventSequencer.get_buffer_stats": "()",
    "RustEventSequencer.get_sequence_stats": "()",
}


@pytest.mark.parametrize("name", list(SIGNATURES))
def test_documented_signature(name: str) -> None:
    obj: object = _wse_accel
    for part in name.split("."):
        obj = getattr(obj, part)
    sig = inspect.signature(obj)  # type: ignore[arg-type]
    sig = sig.replace(parameters=[p for p in sig.parameters.values() if p.name != "self"])
    assert str(sig) == SIGNATURES[name]


def test_properties_and_helpers() -> None:
    assert inspect.isdatadescriptor(inspect.getattr_static(RustPriorityMessageQueue, "size"))
    assert inspect.isdatadescriptor(inspect.getattr_static(RustTokenBucket, "tokens"))
    assert isinstance(inspect.getattr_static(EventFilter, "matches"), staticmethod)
    assert [(p.name, p.value) for p in EventPriority] == [
        ("CRITICAL", 10), ("HIGH", 8), ("NORMAL", 5), ("LOW", 3), ("BACKGROUND", 1)]
    assert DeliveryGuarantee.AT_MOST_ONCE.value == "at_most_once"


def test_jwt_round_trip_and_rules() -> None:
    claims = {"sub": "alice", "exp": int(time.time()) + 60, "iss": "me", "aud": ["x", "y"], "n": 1}
    tok = rust_jwt_encode(claims, KEY, key_id="k1")
    assert rust_jwt_decode(tok, KEY) == claims
    assert rust_jwt_decode(tok, KEY, "HS256", "me", "y", None, "k1") == claims
    assert rust_jwt_decode(tok, KEY, issuer="other") is None
    assert rust_jwt_decode(tok, KEY, key_id="k2") is None
    assert rust_jwt_decode(tok, b"t" * 32) is None
    assert rust_jwt_decode(tok, b"t" * 32, previous_secret=KEY) == claims
    assert rust_jwt_decode(tok, KEY, "HS999") is None  # unsupported: None, not an exception
    assert rust_jwt_decode(rust_jwt_encode({"sub": "a", "exp": 1}, KEY), KEY) is None  # expired
    assert rust_jwt_decode(rust_jwt_encode({"sub": "a"}, KEY), KEY) is None  # exp required
    with pytest.raises(ValueError, match="Unsupported algorithm: HS512"):
        rust_jwt_encode(claims, KEY, "HS512")
    with pytest.raises(RuntimeError, match="JWT encode error"):
        rust_jwt_encode(claims, b"short")
    with pytest.raises(RuntimeError, match="JWT encode error"):
        rust_jwt_encode(claims, b"not a pem", "RS256")


def test_ecdh_and_aes_gcm() -> None:
    a_priv, a_pub = rust_ecdh_generate_keypair()
    b_priv, b_pub = rust_ecdh_generate_keypair()
    assert len(a_priv) == 32 and len(a_pub) == 65 and a_pub[0] == 4
    key = rust_ecdh_derive_shared_secret(a_priv, b_pub)
    assert key == rust_ecdh_derive_shared_secret(b_priv, a_pub) and len(key) == 32
    with pytest.raises(ValueError, match="Invalid peer public key"):
        rust_ecdh_derive_shared_secret(a_priv, b"\x04" + b"\x00" * 64)
    with pytest.raises(ValueError, match="Invalid private key"):
        rust_ecdh_derive_shared_secret(b"\x00" * 32, b_pub)
    sealed = rust_aes_gcm_encrypt(key, b"hello")
    assert len(sealed) == 12 + 5 + 16
    assert rust_aes_gcm_decrypt(key, sealed) == b"hello"
    assert rust_aes_gcm_encrypt(key, b"hello") != sealed  # fresh IV
    with pytest.raises(ValueError):
        rust_aes_gcm_encrypt(b"short", b"x")
    with pytest.raises(ValueError):
        rust_aes_gcm_decrypt(key, b"x" * 27)
    with pytest.raises(RuntimeError, match=r"^Decrypt failed: aead::Error$"):
        rust_aes_gcm_decrypt(key, sealed[:-1] + bytes([sealed[-1] ^ 1]))


def test_hashes_and_signing() -> None:
    assert rust_hmac_sha256(b"k", b"d") == hmac.new(b"k", b"d", hashlib.sha256).digest()
    assert rust_sha256(b"abc") == hashlib.sha256(b"abc").hexdigest()
    payload = '{"a":1}'
    inner = hashlib.sha256(payload.encode()).hexdigest()
    assert rust_sign_message(payload, b"sec") == hmac.new(b"sec", inner.encode(), hashlib.sha256).hexdigest()


def test_compression_functions() -> None:
    data = b"abc" * 1000
    z = rust_compress(data, 6)
    assert zlib.decompress(z) == data and rust_decompress(z) == data
    for bad in (0, 10):
        with pytest.raises(ValueError):
            rust_compress(data, bad)
    with pytest.raises(TypeError):
        rust_compress(data)  # type: ignore[call-arg]  # level is required
    with pytest.raises(RuntimeError, match="^decompression error"):
        rust_decompress(b"not zlib")
    with pytest.raises(RuntimeError, match="^decompression error"):
        rust_decompress(zlib.compress(b"\x00" * (11 << 20)))
    assert rust_should_compress(b"x" * 11, 10) and not rust_should_compress(b"x" * 10, 10)


def test_compression_manager() -> None:
    m = RustCompressionManager()
    assert not m.should_compress(b"x" * 1024) and m.should_compress(b"x" * 1025)
    data = b"hello " * 500
    z = m.compress(data)
    assert m.decompress(z) == data
    assert zlib.decompress(m.compress(data, 1)) == data
    with pytest.raises(RuntimeError):
        m.decompress(b"junk")
    stats = m.get_stats()
    assert stats["total_compressed"] == 2 and stats["decompression_failures"] == 1
    assert set(stats) == {"total_compressed", "total_decompressed", "compression_failures",
                          "decompression_failures", "total_bytes_saved", "compression_success_rate",
                          "decompression_success_rate", "average_bytes_saved"}
    m.reset_stats()
    assert m.get_stats()["total_compressed"] == 0
    packed = m.pack_msgpack({"a": 1, "b": [1, 2.5, None, True], "u": uuid.UUID(int=1)})
    assert m.unpack_msgpack(packed) == {"a": 1, "b": [1, 2.5, None, True], "u": str(uuid.UUID(int=1))}
    ev = {"t": "x", "p": {"n": 1}}
    assert m.unpack_event(m.pack_event(ev)) == ev
    assert json.loads(m.pack_event(ev, use_msgpack=False)) == ev
    assert m.unpack_event(b'{"t":"x"}', is_msgpack=False) == {"t": "x"}
    assert m.unpack_event(b"\xc1\x00", False) == {"_raw_hex": "c100", "_decode_error": True}
    with pytest.raises(RuntimeError, match="Failed to unpack event"):
        m.unpack_event(b"\xc1\"x", True)


def test_priority_queue() -> None:
    q = RustPriorityQueue(3)
    assert q.push(1, "low") and q.push(5, {"hi": 1}) and q.push(5, "hi2")
    assert not q.push(9, "full") and q.is_full() and q.len() == 3 == len(q)
    assert q.pop() == {"hi": 1} and q.pop() == "hi2"
    assert q.drain(10) == ["low"] and q.pop() is None
    q.push(1, "x")
    q.clear()
    assert q.len() == 0


def test_priority_message_queue() -> None:
    q = RustPriorityMessageQueue(max_size=3, batch_size=2)
    assert q.enqueue("bg", 1) and q.enqueue("n", 4) and q.enqueue("c", 10)
    assert q.size == 3
    assert q.enqueue("h", 8)  # drops the oldest BACKGROUND message
    stats = q.get_stats()
    assert stats["dropped_by_priority"][1] == 1 and stats["total_dropped"] == 1
    assert stats["priority_distribution"] == {10: 1, 8: 1, 5: 1, 3: 0, 1: 0}
    assert stats["priority_queue_depths"]["priority_10_depth"] == 1
    assert stats["capacity"] == 3 and stats["backpressure"] is True
    assert q.dequeue_batch() == [(10, "c"), (8, "h")]
    assert q.dequeue_batch() == [(5, "n")]
    assert q.get_stats()["oldest_message_age"] is None
    q.enqueue("x")
    q.clear()
    assert q.size == 0


def test_token_bucket() -> None:
    b = RustTokenBucket(10, 0.0)
    assert b.tokens == 10
    assert b.acquire(4) and b.acquire(6) and not b.acquire(1)
    b.reset()
    assert b.tokens == 10
    assert RustTokenBucket(10, 1000.0, initial_tokens=0).tokens < 10
    with pytest.raises(TypeError):
        b.acquire()  # type: ignore[call-arg]  # tokens is required


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_token_bucket_refuses_counts_that_would_mint_tokens(bad: float) -> None:
    b = RustTokenBucket(10, 0.0)
    assert b.acquire(10)
    with pytest.raises(ValueError, match="tokens must be a finite number"):
        b.acquire(bad)
    assert b.tokens == 0 and not b.acquire(1)
    with pytest.raises(ValueError, match="capacity"):
        RustTokenBucket(bad, 1.0)
    with pytest.raises(ValueError, match="refill_rate"):
        RustTokenBucket(10, bad)
    with pytest.raises(ValueError, match="initial_tokens"):
        RustTokenBucket(10, 1.0, initial_tokens=bad)


def test_sequencers() -> None:
    s = RustSequencer(2)
    assert (s.next_seq(), s.next_seq(), s.get_current_seq()) == (1, 2, 2)
    assert not s.is_duplicate("a") and s.is_duplicate("a")
    s.is_duplicate("b")
    s.is_duplicate("c")  # evicts "a"
    assert not s.is_duplicate("a") and s.seen_count() == 2
    s.cleanup(-1)
    assert s.seen_count() == 0

    e = RustEventSequencer(window_size=100, max_out_of_order=5)
    assert e.next_seq() == 1 and e.get_current_sequence() == 1
    assert e.process_sequenced_event("t", 1, "one") == ["one"]
    assert e.process_sequenced_event("t", 3, "three") is None
    assert e.process_sequenced_event("t", 2, "two") == ["two", "three"]
    assert e.process_sequenced_event("t", 2, "late") is None
    assert e.process_sequenced_event("t", 20, "far") == ["far"]
    e.process_sequenced_event("u", 1, "x")
    e.process_sequenced_event("u", 3, "y")
    buf = e.get_buffer_stats()
    assert buf["total_buffered"] == 1 and buf["topics"]["u"]["buffered_sequences"] == [3]
    stats = e.get_sequence_stats()
    assert stats["dropped_count"] >= 1 and stats["total_topics"] == 2
    assert not e.is_duplicate("id") and e.is_duplicate("id")
    assert e.get_sequence_stats()["duplicate_count"] == 1
    e.reset_sequence("u")
    assert e.get_sequence_stats()["total_topics"] == 1
    e.reset_sequence()
    e.cleanup()
    assert e.get_sequence_stats()["total_topics"] == 0


def test_match_event() -> None:
    ev = {"type": "order", "payload": {"price": 120, "sym": "AAPL", "tags": ["a", "b"]}, "n": None}
    assert rust_match_event(ev, {"payload.price": {"$gt": 100, "$lte": 120}})
    assert rust_match_event(ev, {"payload.sym": {"$regex": "^AA"}, "type": "order"})
    assert rust_match_event(ev, {"$or": [{"type": "x"}, {"payload.sym": {"$in": ["AAPL"]}}]})
    assert not rust_match_event(ev, {"$and": [{"type": "order"}, {"payload.price": {"$lt": 100}}]})
    assert rust_match_event(ev, {"missing": {"$exists": False}, "payload.sym": {"$startswith": "AA"}})
    assert rust_match_event(ev, {"payload.price": 120.0})
    with pytest.raises(TypeError):
        rust_match_event(ev, {"payload.sym": {"$gt": 1}})
    with pytest.raises(ValueError):
        rust_match_event(ev, {"payload.sym": {"$regex": "("}})


class Color(enum.Enum):
    RED = "red"


def test_transform_event() -> None:
    eid = uuid.uuid4()
    when = datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)
    raw = {"event_type": "OrderPlaced", "event_id": eid, "timestamp": when.isoformat(),
           "payload": {"color": Color.RED, "blob": b"hi", "at": when, "id": eid, "pair": (1, 2)}}
    env = rust_transform_event(raw, 7, {"OrderPlaced": "order_placed"})
    assert env["t"] == "order_placed" and env["original_event_type"] == "OrderPlaced"
    assert env["id"] == str(eid) and env["seq"] == 7 and env["v"] == 1 and env["c"] == "U"
    assert env["p"] == {"color": "red", "blob": "hi", "at": when.isoformat(), "id": str(eid), "pair": [1, 2]}
    assert env["event_version"] == 1 and "latency_ms" in env
    already = {"v": 1, "t": "x", "p": {}, "id": "1", "ts": "now"}
    assert rust_transform_event(already, 3, {}) == {**already, "seq": 3}
    assert rust_transform_event({"type": "Snapshot_Data"}, 1, {})["t"] == "snapshot_data"
