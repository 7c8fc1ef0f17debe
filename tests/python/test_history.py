"""wse_server.history: iterating over a range of a topic's records."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from wse_server import NotRecoverableError, read_range

from wsetest import wait_visible


def published(make_server, tmp_path, count: int):
    data = tmp_path / "data"
    s = make_server(
        recovery_enabled=True, data_dir=str(data), durability="always",
        http_listen="127.0.0.1:0", admin_token="t0ken",
    )
    for i in range(count):
        s.publish("chat", json.dumps({"t": "m", "p": {"i": i}}))
    wait_visible(s, "chat", count)
    return s, data


def test_a_range_by_offsets_is_read_page_by_page_in_order(make_server, tmp_path) -> None:
    _, data = published(make_server, tmp_path, 1200)
    everything = list(read_range(data, "chat", page=100))
    assert [r["offset"] for r in everything] == list(range(1200))
    assert [json.loads(r["data"])["p"]["i"] for r in everything] == list(range(1200))
    part = list(read_range(data, "chat", start=250, stop=733, page=64))
    assert [r["offset"] for r in part] == list(range(250, 733))
    assert list(read_range(data, "chat", start=1200)) == []
    assert [r["offset"] for r in read_range(data, "chat", start=1195, stop=5000)] == list(range(1195, 1200))


def test_a_range_by_time_starts_and_stops_at_append_times(make_server, tmp_path) -> None:
    _, data = published(make_server, tmp_path, 300)
    stamps = [r["timestamp_us"] for r in read_range(data, "chat")]
    since, until = stamps[100], stamps[200]
    by_time = list(read_range(data, "chat", since=since / 1e6, until=until / 1e6))
    want = [i for i, t in enumerate(stamps) if since <= t < until]
    assert [r["offset"] for r in by_time] == want
    aware = datetime.fromtimestamp(since / 1e6, tz=timezone.utc)
    assert next(read_range(data, "chat", since=aware))["offset"] == want[0]
    # Everything was appended within the last hour; nothing in the future.
    assert len(list(read_range(data, "chat", since=timedelta(hours=1)))) == 300
    assert list(read_range(data, "chat", since=timedelta(hours=-1))) == []


def test_bad_ranges_are_clear_errors(make_server, tmp_path) -> None:
    s, data = published(make_server, tmp_path, 5)
    with pytest.raises(LookupError):
        next(read_range(data, "nope"))
    with pytest.raises(ValueError):
        next(read_range(data, "chat", start=1, since=0))
    with pytest.raises(ValueError):
        next(read_range(data, "chat", since=datetime(2026, 1, 1)))
    with pytest.raises(TypeError):
        next(read_range(data, "chat", since="yesterday"))  # type: ignore[arg-type]
    # A history replaced while it is read: the iteration says so.
    records = read_range(data, "chat", page=2)
    next(records)
    req = urllib.request.Request(
        f"http://127.0.0.1:{s.local_http_port()}/v1/topics/chat",
        headers={"Authorization": "Bearer t0ken"}, method="DELETE",
    )
    with urllib.request.urlopen(req, timeout=5) as answer:
        assert answer.status == 200
    s.publish("chat", '{"t":"m"}')
    with pytest.raises(NotRecoverableError):
        list(records)
