"""The rest of the toolkit (PYTHON_API.md §3.3-§3.5, §4) at its edges:
compression levels, garbage and zlib bombs, the compression manager's
statistics, msgpack garbage, queue bounds and drop order, the token bucket,
sequencer windows and reordering, every filter operator and malformed
filters, the envelope builder, EventFilter and the enums."""

from __future__ import annotations

import datetime
import struct
import time
import uuid
import zlib
from collections.abc import Callable
from typing import Any

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
    rust_compress,
    rust_decompress,
    rust_match_event,
    rust_should_compress,
    rust_transform_event,
)

MiB = 1 << 20
DECOMPRESSION_CAP = 10 * MiB
DECOMPRESSION_ERROR = r"^decompression error: "
TEXT = b"the quick brown fox jumps over the lazy dog " * 200


# --- zlib ----------------------------------------------------------------------


def test_every_valid_level_round_trips_through_python_zlib() -> None:
    sizes = []
    for level in range(1, 10):
        z = rust_compress(TEXT, level)
        assert zlib.decompress(z) == TEXT, level
        sizes.append(len(z))
    assert sizes[-1] <= sizes[0] < len(TEXT)
    # The fastest, default and best levels, as the zlib header says them.
    for level in (1, 6, 9):
        assert rust_compress(TEXT, level)[:2] == zlib.compress(TEXT, level)[:2]


@pytest.mark.parametrize("level", [0, 10, -1, 100])
def test_levels_outside_1_to_9_are_value_errors(level: int) -> None:
    with pytest.raises(ValueError):
        rust_compress(TEXT, level)


def test_level_and_threshold_are_required() -> None:
    with pytest.raises(TypeError):
        rust_compress(TEXT)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        rust_should_compress(TEXT)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        rust_compress(TEXT, 6.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("level", range(1, 10))
def test_python_zlib_output_decompresses(level: int) -> None:
    assert rust_decompress(zlib.compress(TEXT, level)) == TEXT


def _not_zlib() -> dict[str, bytes]:
    z = zlib.compress(TEXT)
    gzip = zlib.compressobj(wbits=31)
    raw = zlib.compressobj(wbits=-15)
    return {
        "empty": b"",
        "text": b"definitely not zlib",
        "header-only": z[:2],
        "truncated": z[: len(z) // 2],
        "no-checksum": z[:-4],
        "bad-checksum": z[:-1] + bytes([z[-1] ^ 0xFF]),
        "gzip": gzip.compress(TEXT) + gzip.flush(),
        "raw-deflate": raw.compress(TEXT) + raw.flush(),
    }


@pytest.mark.parametrize("name", list(_not_zlib()))
def test_garbage_is_a_decompression_error(name: str) -> None:
    with pytest.raises(RuntimeError, match=DECOMPRESSION_ERROR):
        rust_decompress(_not_zlib()[name])


def test_output_is_capped_at_10_mib() -> None:
    assert rust_decompress(zlib.compress(bytes(DECOMPRESSION_CAP), 1)) == bytes(DECOMPRESSION_CAP)
    with pytest.raises(RuntimeError, match=DECOMPRESSION_ERROR):
        rust_decompress(zlib.compress(bytes(DECOMPRESSION_CAP + 1), 1))


def zlib_bomb(mebibytes: int) -> bytes:
    """A valid zlib stream of ``mebibytes`` MiB of zeros, about 1 KiB per
    MiB, made without holding the output: after a full flush a deflate
    segment refers to nothing before it, so one compressed MiB can be
    repeated. The Adler-32 of n zeros is ``(n mod 65521) << 16 | 1``."""
    chunk = bytes(MiB)
    z = zlib.compressobj(9)
    first = z.compress(chunk) + z.flush(zlib.Z_FULL_FLUSH)  # starts with the zlib header
    segment = z.compress(chunk) + z.flush(zlib.Z_FULL_FLUSH)
    final_block = z.flush()[:-4]  # without the checksum of the 2 MiB seen so far
    adler = ((mebibytes * MiB) % 65521) << 16 | 1
    return first + segment * (mebibytes - 1) + final_block + struct.pack(">I", adler)


def test_the_bomb_builder_makes_valid_zlib() -> None:
    # So the bomb below can only fail on its size, never on its encoding.
    assert zlib.decompress(zlib_bomb(3)) == bytes(3 * MiB)


def test_a_zlib_bomb_fails_fast() -> None:
    bomb = zlib_bomb(1024)  # 1 GiB of zeros in about 1 MiB
    assert len(bomb) < 2 * MiB
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=DECOMPRESSION_ERROR):
        rust_decompress(bomb)
    manager = RustCompressionManager()
    with pytest.raises(RuntimeError, match=DECOMPRESSION_ERROR):
        manager.decompress(bomb)
    # Inflating the whole GiB takes seconds; stopping at 10 MiB takes
    # milliseconds.
    assert time.monotonic() - started < 2.0
    assert manager.get_stats()["decompression_failures"] == 1


def test_should_compress_is_strictly_longer_than_the_threshold() -> None:
    assert not rust_should_compress(b"", 0)
    assert rust_should_compress(b"x", 0)
    assert not rust_should_compress(b"x" * 100, 100)
    assert rust_should_compress(b"x" * 101, 100)


# --- RustCompressionManager ------------------------------------------------------

STATS_KEYS = {
    "total_compressed", "total_decompressed", "compression_failures", "decompression_failures",
    "total_bytes_saved", "compression_success_rate", "decompression_success_rate", "average_bytes_saved",
}
COUNTERS = ["total_compressed", "total_decompressed", "compression_failures", "decompression_failures",
            "total_bytes_saved"]
RATES = ["compression_success_rate", "decompression_success_rate", "average_bytes_saved"]


def test_fresh_manager_stats() -> None:
    stats = RustCompressionManager().get_stats()
    assert set(stats) == STATS_KEYS
    for key in COUNTERS:
        assert type(stats[key]) is int and stats[key] == 0, key
    for key in RATES:
        assert type(stats[key]) is float and stats[key] == 0.0, key


def test_manager_counts_successes_failures_and_savings() -> None:
    m = RustCompressionManager()
    z = m.compress(TEXT)
    with pytest.raises(ValueError):
        m.compress(TEXT, 0)
    assert m.decompress(z) == TEXT
    with pytest.raises(RuntimeError, match=DECOMPRESSION_ERROR):
        m.decompress(b"junk")
    with pytest.raises(RuntimeError, match=DECOMPRESSION_ERROR):
        m.decompress(z[:-4])
    stats = m.get_stats()
    assert {k: stats[k] for k in COUNTERS} == {
        "total_compressed": 1, "total_decompressed": 1, "compression_failures": 1,
        "decompression_failures": 2, "total_bytes_saved": len(TEXT) - len(z),
    }
    assert stats["compression_success_rate"] == pytest.approx(1 / 2)
    assert stats["decompression_success_rate"] == pytest.approx(1 / 3)
    assert stats["average_bytes_saved"] == pytest.approx(len(TEXT) - len(z))
    m.reset_stats()
    assert m.get_stats() == RustCompressionManager().get_stats()


def test_manager_threshold_and_default_level() -> None:
    default = RustCompressionManager()
    assert not default.should_compress(b"x" * 1024) and default.should_compress(b"x" * 1025)
    assert default.compress(TEXT)[:2] == zlib.compress(TEXT, 6)[:2]
    m = RustCompressionManager(threshold=10, compression_level=9)
    assert not m.should_compress(b"x" * 10) and m.should_compress(b"x" * 11)
    assert m.compress(TEXT)[:2] == zlib.compress(TEXT, 9)[:2]
    assert m.compress(TEXT, 1)[:2] == zlib.compress(TEXT, 1)[:2]
    # A bad default level is reported when it is used.
    bad = RustCompressionManager(compression_level=0)
    with pytest.raises(ValueError):
        bad.compress(TEXT)
    assert bad.get_stats()["compression_failures"] == 1
    assert zlib.decompress(bad.compress(TEXT, 5)) == TEXT


@pytest.mark.parametrize("data", [
    b"",
    b"\xc1",  # a marker msgpack never uses
    b"\x92\x01",  # array of 2 holding 1 element
    b"\xdd\xff\xff\xff\xff",  # array of 4 billion, no elements
    b"\x81\x01\x02",  # integer map key
    b"\xa2\xff\xfe",  # string that is not UTF-8
    b"\x91" * 100_000,  # nested far too deep
], ids=["empty", "reserved", "short-array", "huge-array", "int-key", "bad-utf8", "deep"])
def test_unpack_msgpack_of_garbage_raises(data: bytes) -> None:
    with pytest.raises(RuntimeError):
        RustCompressionManager().unpack_msgpack(data)


def test_msgpack_round_trip_and_non_dicts() -> None:
    m = RustCompressionManager()
    value = {"s": "é", "i": -(2**63), "u": 2**64 - 1, "f": 0.5, "l": [None, True, False, {"x": []}]}
    assert m.unpack_msgpack(m.pack_msgpack(value)) == value
    with pytest.raises(TypeError):
        m.pack_msgpack([1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        m.unpack_msgpack("not bytes")  # type: ignore[arg-type]


# --- RustPriorityQueue -----------------------------------------------------------


def test_priority_queue_order_fifo_and_bounds() -> None:
    q = RustPriorityQueue(6)
    assert q.pop() is None and q.drain(5) == [] and len(q) == 0
    for priority, message in [(1, "a"), (5, "b"), (-3, "c"), (5, "d"), (2**31 - 1, "e"), (1, "f")]:
        assert q.push(priority, message)
    assert q.is_full() and len(q) == q.len() == 6
    assert not q.push(100, "refused")  # full: refused, nothing replaced
    assert q.drain(0) == []
    assert q.drain(2) == ["e", "b"]
    assert not q.is_full()
    assert q.drain(100) == ["d", "a", "f", "c"]
    assert q.pop() is None


def test_priority_queue_of_size_zero_refuses_everything() -> None:
    q = RustPriorityQueue(0)
    assert q.is_full() and not q.push(1, "x") and q.pop() is None


def test_priority_queue_clear() -> None:
    q = RustPriorityQueue(2)
    q.push(1, "a")
    q.push(2, "b")
    q.clear()
    assert len(q) == 0 and q.pop() is None and q.push(1, "c")


# --- RustPriorityMessageQueue ----------------------------------------------------

LEVELS = [10, 8, 5, 3, 1]


@pytest.mark.parametrize(("given", "level"), [
    (-5, 1), (0, 1), (1, 1), (3, 3), (5, 5), (6, 5), (7, 8), (8, 8), (10, 10), (11, 10), (1000, 10),
])
def test_priorities_snap_to_the_nearest_level(given: int, level: int) -> None:
    q = RustPriorityMessageQueue()
    assert q.enqueue("m", given)
    assert q.dequeue_batch() == [(level, "m")]


def test_enum_priorities_are_the_queue_levels() -> None:
    assert [p.value for p in EventPriority] == LEVELS
    q = RustPriorityMessageQueue()
    for p in reversed(EventPriority):
        q.enqueue(p.name, p.value)
    assert q.dequeue_batch() == [(p.value, p.name) for p in EventPriority]


def test_batches_are_in_priority_order_fifo_within_a_level() -> None:
    q = RustPriorityMessageQueue(max_size=100, batch_size=3)
    for i, p in enumerate([5, 1, 10, 5, 3, 10, 8]):
        q.enqueue(f"m{i}", p)
    assert q.dequeue_batch() == [(10, "m2"), (10, "m5"), (8, "m6")]
    assert q.dequeue_batch() == [(5, "m0"), (5, "m3"), (3, "m4")]
    assert q.dequeue_batch() == [(1, "m1")]
    assert q.dequeue_batch() == []
    assert q.size == 0


def test_a_full_queue_drops_the_oldest_background_then_low_then_normal() -> None:
    q = RustPriorityMessageQueue(max_size=5, batch_size=10)
    for message, p in [("n1", 5), ("l1", 3), ("b1", 1), ("n2", 5), ("h1", 8)]:
        assert q.enqueue(message, p)
    for newcomer in ["c1", "c2", "c3", "c4"]:  # each one evicts a victim
        assert q.enqueue(newcomer, 10)
        assert q.size == 5
    dropped = q.get_stats()["dropped_by_priority"]
    assert (dropped[1], dropped[3], dropped[5]) == (1, 1, 2)
    # Victims went in the documented order: b1, l1, then n1 before n2.
    assert q.dequeue_batch() == [(10, "c1"), (10, "c2"), (10, "c3"), (10, "c4"), (8, "h1")]


def test_a_queue_full_of_high_priorities_rejects() -> None:
    q = RustPriorityMessageQueue(max_size=2, batch_size=10)
    assert q.enqueue("h", 8) and q.enqueue("c", 10)
    assert not q.enqueue("another", 10)
    assert not q.enqueue("background", 1)
    assert q.dequeue_batch() == [(10, "c"), (8, "h")]


def test_message_queue_stats_shape() -> None:
    q = RustPriorityMessageQueue(max_size=4, batch_size=2)
    empty = q.get_stats()
    assert set(empty) == {
        "size", "capacity", "utilization_percent", "priority_distribution", "priority_queue_depths",
        "dropped_by_priority", "total_dropped", "backpressure", "oldest_message_age", "processing_rate",
    }
    assert (empty["size"], empty["capacity"], empty["total_dropped"]) == (0, 4, 0)
    assert empty["utilization_percent"] == 0.0 and empty["backpressure"] is False
    assert empty["oldest_message_age"] is None and isinstance(empty["processing_rate"], float)
    assert empty["priority_distribution"] == dict.fromkeys(LEVELS, 0)
    assert empty["dropped_by_priority"] == dict.fromkeys(LEVELS, 0)
    assert empty["priority_queue_depths"] == {f"priority_{p}_depth": 0 for p in LEVELS}

    for message, p in [("a", 10), ("b", 5), ("c", 5), ("d", 1)]:
        q.enqueue(message, p)
    full = q.get_stats()
    assert full["size"] == 4 and full["utilization_percent"] == 100.0 and full["backpressure"] is True
    assert full["priority_distribution"] == {10: 1, 8: 0, 5: 2, 3: 0, 1: 1}
    assert full["priority_queue_depths"]["priority_5_depth"] == 2
    assert isinstance(full["oldest_message_age"], float) and full["oldest_message_age"] >= 0.0
    q.clear()
    assert q.size == 0 and q.get_stats()["oldest_message_age"] is None


# --- RustTokenBucket -------------------------------------------------------------


def test_token_bucket_without_refill() -> None:
    b = RustTokenBucket(3, 0.0)
    assert b.tokens == 3.0 and isinstance(b.tokens, float)
    assert b.acquire(1.5) and b.tokens == 1.5
    assert not b.acquire(2) and b.tokens == 1.5  # a refusal takes nothing
    assert b.acquire(1.5) and not b.acquire(0.001)
    assert b.acquire(0)
    b.reset()
    assert b.tokens == 3.0
    assert not b.acquire(3.5)  # more than the capacity: never


def test_token_bucket_initial_tokens_and_refill() -> None:
    b = RustTokenBucket(10, 0.0, initial_tokens=2.5)
    assert b.tokens == 2.5 and not b.acquire(3)
    b.reset()
    assert b.tokens == 10.0
    # Refills happen before an acquire and are capped at the capacity.
    fast = RustTokenBucket(4, 1e12, initial_tokens=0)
    assert fast.acquire(4)
    assert fast.tokens == 4.0


# --- RustSequencer / RustEventSequencer ------------------------------------------


def test_sequencer_counter_and_fifo_window() -> None:
    s = RustSequencer(3)
    assert s.get_current_seq() == 0
    assert [s.next_seq() for _ in range(3)] == [1, 2, 3] and s.get_current_seq() == 3
    assert [s.is_duplicate(i) for i in "abca"] == [False, False, False, True]
    assert not s.is_duplicate("d")  # evicts "a", the oldest; a hit does not refresh it
    assert s.seen_count() == 3
    assert not s.is_duplicate("a")  # forgotten, now remembered again (evicts "b")
    assert s.is_duplicate("c") and s.is_duplicate("d") and not s.is_duplicate("b")
    s.cleanup(3600)
    assert s.seen_count() == 3
    s.cleanup(-1)
    assert s.seen_count() == 0 and not s.is_duplicate("c")


def test_event_sequencer_counter_and_window() -> None:
    e = RustEventSequencer(window_size=2)
    assert e.get_current_sequence() == 0
    assert (e.next_seq(), e.next_seq(), e.get_current_sequence()) == (1, 2, 2)
    assert [e.is_duplicate(i) for i in "abac"] == [False, False, True, False]
    assert not e.is_duplicate("a")  # "c" evicted "a"
    stats = e.get_sequence_stats()
    assert stats["duplicate_count"] == 1 and stats["seen_ids_count"] == 2


def test_first_event_of_a_topic_is_delivered_at_any_sequence() -> None:
    e = RustEventSequencer()
    assert e.process_sequenced_event("t", 41, "x") == ["x"]
    assert e.process_sequenced_event("t", 42, "y") == ["y"]
    assert e.process_sequenced_event("other", 7, "z") == ["z"]


def test_out_of_order_events_are_buffered_then_released_in_order() -> None:
    e = RustEventSequencer(max_out_of_order=5)
    assert e.process_sequenced_event("t", 10, 10) == [10]
    assert e.process_sequenced_event("t", 14, 14) is None
    assert e.process_sequenced_event("t", 12, 12) is None
    assert e.process_sequenced_event("t", 13, 13) is None
    buf = e.get_buffer_stats()
    assert set(buf) == {"total_topics", "total_buffered", "topics"}
    assert buf["total_buffered"] == 3
    topic = buf["topics"]["t"]
    assert set(topic) == {"expected_sequence", "buffered_count", "buffered_sequences", "gap_size",
                          "oldest_buffered_age"}
    assert (topic["expected_sequence"], topic["buffered_count"], topic["buffered_sequences"]) == (11, 3, [12, 13, 14])
    assert topic["gap_size"] == 1 and topic["oldest_buffered_age"] >= 0.0
    # The missing 11 releases everything behind it.
    assert e.process_sequenced_event("t", 11, 11) == [11, 12, 13, 14]
    assert e.get_buffer_stats()["total_buffered"] == 0
    assert e.process_sequenced_event("t", 15, 15) == [15]


def test_release_stops_at_the_next_gap() -> None:
    e = RustEventSequencer()
    e.process_sequenced_event("t", 1, 1)
    for seq in (3, 5):
        assert e.process_sequenced_event("t", seq, seq) is None
    assert e.process_sequenced_event("t", 2, 2) == [2, 3]
    assert e.process_sequenced_event("t", 4, 4) == [4, 5]


def test_far_ahead_events_skip_the_gap() -> None:
    e = RustEventSequencer(max_out_of_order=3)
    e.process_sequenced_event("t", 1, 1)
    assert e.process_sequenced_event("t", 2 + 3, "at the limit") is None  # ahead by exactly 3: buffered
    assert e.process_sequenced_event("t", 2 + 4, "beyond") == ["beyond"]  # ahead by 4: skip to it
    # The topic continues after the skipped-to event; older ones are late.
    assert e.process_sequenced_event("t", 7, 7) == [7]
    assert e.process_sequenced_event("t", 2, "late") is None
    assert e.process_sequenced_event("t", 5, "late too") is None
    assert e.get_buffer_stats()["total_buffered"] == 0


def test_late_events_are_dropped_and_counted() -> None:
    e = RustEventSequencer()
    e.process_sequenced_event("t", 5, 5)
    before = e.get_sequence_stats()["dropped_count"]
    assert e.process_sequenced_event("t", 5, "again") is None
    assert e.process_sequenced_event("t", 1, "old") is None
    assert e.get_sequence_stats()["dropped_count"] == before + 2


def test_sequence_stats_shape_and_reset() -> None:
    e = RustEventSequencer(max_out_of_order=10)
    e.process_sequenced_event("a", 1, 1)
    e.process_sequenced_event("a", 4, 4)
    e.process_sequenced_event("b", 1, 1)
    stats = e.get_sequence_stats()
    assert set(stats) == {"current_sequence", "duplicate_count", "out_of_order_count", "dropped_count", "topics",
                          "total_topics", "total_buffered", "seen_ids_count"}
    assert (stats["total_topics"], stats["total_buffered"], stats["out_of_order_count"]) == (2, 1, 1)
    assert set(stats["topics"]["a"]) == {"expected", "buffered", "gaps", "buffered_sequences"}
    a = stats["topics"]["a"]
    assert (a["expected"], a["buffered"], a["buffered_sequences"]) == (2, 1, [4])
    assert isinstance(a["gaps"], list)
    e.reset_sequence("a")
    assert set(e.get_sequence_stats()["topics"]) == {"b"}
    assert e.process_sequenced_event("a", 100, "fresh") == ["fresh"]  # a new start
    e.reset_sequence()
    assert e.get_sequence_stats()["total_topics"] == 0


# --- rust_match_event / EventFilter ----------------------------------------------

EVENT: dict[str, Any] = {
    "type": "order_update",
    "symbol": "AAPL",
    "price": 150.5,
    "qty": 10,
    "active": True,
    "note": None,
    "tags": ["a", "b"],
    "payload": {"user": {"id": 7, "name": "Ann"}},
}

CASES: list[tuple[dict[str, Any], bool]] = [
    ({}, True),
    # plain values: Python equality
    ({"symbol": "AAPL", "qty": 10.0}, True),
    ({"symbol": "MSFT"}, False),
    ({"tags": ["a", "b"]}, True),
    ({"note": None}, True),
    ({"missing": None}, True),
    # dotted paths
    ({"payload.user.id": 7}, True),
    ({"payload.user.id": 8}, False),
    ({"payload.user.name.first": None}, True),
    # $eq $ne
    ({"qty": {"$eq": 10}}, True),
    ({"qty": {"$eq": 11}}, False),
    ({"qty": {"$ne": 11}}, True),
    ({"qty": {"$ne": 10}}, False),
    # $gt $lt $gte $lte, ints against floats, strings
    ({"price": {"$gt": 150, "$lt": 151}}, True),
    ({"price": {"$gt": 150.5}}, False),
    ({"price": {"$gte": 150.5, "$lte": 150.5}}, True),
    ({"qty": {"$lt": 10}}, False),
    ({"qty": {"$lte": 9.99}}, False),
    ({"symbol": {"$gt": "AAA", "$lt": "B"}}, True),
    ({"missing": {"$gt": 1}}, False),
    # $in $nin
    ({"symbol": {"$in": ["MSFT", "AAPL"]}}, True),
    ({"qty": {"$in": [10.0]}}, True),
    ({"symbol": {"$in": ["MSFT"]}}, False),
    ({"symbol": {"$nin": ["MSFT"]}}, True),
    ({"symbol": {"$nin": ["AAPL"]}}, False),
    ({"missing": {"$nin": ["x"]}}, True),
    # $exists
    ({"note": {"$exists": True}}, True),
    ({"missing": {"$exists": False}}, True),
    ({"missing": {"$exists": True}}, False),
    ({"payload.user.id": {"$exists": False}}, False),
    # $regex: matched at the start, as Python's re.match
    ({"type": {"$regex": "order_"}}, True),
    ({"type": {"$regex": "update"}}, False),
    ({"type": {"$regex": ".*update$"}}, True),
    ({"type": {"$regex": "^x|update"}}, False),  # every alternative is anchored
    ({"symbol": {"$regex": "^A+PL$"}}, True),
    ({"missing": {"$regex": ".*"}}, False),
    # $contains $startswith $endswith
    ({"type": {"$contains": "der_up"}}, True),
    ({"type": {"$contains": "zzz"}}, False),
    ({"type": {"$startswith": "order", "$endswith": "update"}}, True),
    ({"type": {"$startswith": "update"}}, False),
    ({"type": {"$endswith": "order"}}, False),
    ({"price": {"$startswith": "150."}}, True),  # str() of a number
    ({"missing": {"$contains": ""}}, False),
    # $and $or, nested
    ({"$and": [{"symbol": "AAPL"}, {"qty": {"$gt": 5}}]}, True),
    ({"$and": [{"symbol": "AAPL"}, {"qty": {"$gt": 50}}]}, False),
    ({"$or": [{"symbol": "MSFT"}, {"qty": 10}]}, True),
    ({"$or": [{"symbol": "MSFT"}, {"qty": 11}]}, False),
    ({"$or": []}, False),
    ({"$or": [{"$and": [{"qty": 10}, {"active": True}]}, {"symbol": "X"}]}, True),
    # an operator nobody knows never holds
    ({"qty": {"$near": 10}}, False),
]

MATCHERS: list[Callable[[dict[str, Any], dict[str, Any]], bool]] = [rust_match_event, EventFilter.matches]


@pytest.mark.parametrize("match", MATCHERS, ids=["rust_match_event", "EventFilter.matches"])
def test_every_operator(match: Callable[[dict[str, Any], dict[str, Any]], bool]) -> None:
    for criteria, expected in CASES:
        assert match(EVENT, criteria) is expected, criteria


MALFORMED: list[tuple[dict[str, Any], type[Exception]]] = [
    ({"symbol": {"$gt": 5}}, TypeError),  # str > int
    ({"note": {"$lte": 1}}, TypeError),  # None <= int
    ({"qty": {"$exists": "yes"}}, TypeError),
    ({"qty": {"$regex": 1}}, TypeError),
    ({"qty": {"$contains": 5}}, TypeError),
    ({"qty": {"$startswith": None}}, TypeError),
    ({"qty": {"$endswith": ["x"]}}, TypeError),
    ({"$and": [1]}, TypeError),
    ({"$or": ["not a dict"]}, TypeError),
    ({"type": {"$regex": "(unclosed"}}, ValueError),
    ({"type": {"$regex": "a" * 5000}}, ValueError),  # oversized pattern
]


@pytest.mark.parametrize("match", MATCHERS, ids=["rust_match_event", "EventFilter.matches"])
def test_malformed_filters_raise(match: Callable[[dict[str, Any], dict[str, Any]], bool]) -> None:
    for criteria, error in MALFORMED:
        with pytest.raises(error):
            match(EVENT, criteria)


def test_event_and_criteria_must_be_dicts() -> None:
    with pytest.raises(TypeError):
        rust_match_event([], {})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rust_match_event(EVENT, None)  # type: ignore[arg-type]


# --- rust_transform_event --------------------------------------------------------


def test_envelope_of_a_minimal_event() -> None:
    env = rust_transform_event({"type": "PriceTick", "x": 1}, 3, {})
    assert set(env) == {"c", "t", "id", "ts", "seq", "p", "v", "original_event_type", "event_version"}
    assert (env["t"], env["original_event_type"], env["seq"], env["v"]) == ("pricetick", "PriceTick", 3, 1)
    assert env["p"]["x"] == 1
    uuid.UUID(env["id"])  # a fresh id
    ts = datetime.datetime.fromisoformat(env["ts"].replace("Z", "+00:00"))
    assert abs(ts - datetime.datetime.now(datetime.timezone.utc)) < datetime.timedelta(minutes=1)


def test_event_type_map_and_metadata() -> None:
    raw = {"event_type": "OrderPlaced", "event_id": "event-id", "timestamp": "2020-01-01T00:00:00+00:00",
           "_metadata": {"event_id": "meta-id", "timestamp": "2021-01-01T00:00:00+00:00"},
           "payload": {"n": 1}}
    env = rust_transform_event(raw, 9, {"OrderPlaced": "order_placed"})
    assert (env["t"], env["original_event_type"]) == ("order_placed", "OrderPlaced")
    assert (env["id"], env["ts"]) == ("meta-id", "2021-01-01T00:00:00+00:00")
    assert env["p"] == {"n": 1}
    plain = rust_transform_event({"type": "already_lower"}, 1, {})
    assert plain["t"] == "already_lower" and "original_event_type" not in plain


def test_an_envelope_passes_through_with_seq_added() -> None:
    env = {"v": 1, "t": "x", "p": {"k": [1]}, "id": "i", "ts": "2020-01-01T00:00:00Z", "c": "U"}
    assert rust_transform_event(env, 12, {}) == {**env, "seq": 12}


def test_transform_bad_arguments() -> None:
    with pytest.raises(TypeError):
        rust_transform_event(None, 1, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rust_transform_event({"type": "x"}, "1", {})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rust_transform_event({"type": "x"}, 1, None)  # type: ignore[arg-type]


# --- enums -------------------------------------------------------------------------


def test_delivery_guarantee() -> None:
    assert DeliveryGuarantee.AT_MOST_ONCE.value == "at_most_once"
    assert DeliveryGuarantee("at_most_once") is DeliveryGuarantee.AT_MOST_ONCE
    assert EventPriority(10) is EventPriority.CRITICAL and EventPriority["BACKGROUND"].value == 1
