"""The log-centric API: data_dir, durability, position/read, LogReader."""

from __future__ import annotations

import json

import pytest

from wse_server import LogReader, NotRecoverableError

from wsetest import wait_visible


def test_position_and_read(make_server, tmp_path) -> None:
    s = make_server(recovery_enabled=True, data_dir=tmp_path / "data", durability="always")
    assert s.position("chat") is None
    for i in range(5):
        s.broadcast_local("chat", json.dumps({"t": "m", "p": {"i": i}}))
    pos = wait_visible(s, "chat", 5)
    assert pos["first_offset"] == 0 and pos["next_offset"] == 5
    epoch = pos["epoch"]
    assert len(epoch) == 8 and int(epoch, 16) >= 0
    records = s.read("chat", epoch, 1, 3)
    assert [r["offset"] for r in records] == [1, 2, 3]
    r = records[0]
    assert r["topic"] == "chat" and r["epoch"] == epoch and r["kind"] == "message"
    assert isinstance(r["timestamp_us"], int) and r["timestamp_us"] > 1_600_000_000_000_000
    body = json.loads(r["data"])
    assert body == {"tp": "chat", "e": epoch, "o": 1, "c": "U", "t": "m", "p": {"i": 1}}
    assert s.read("chat", epoch, 5) == []  # at the head
    with pytest.raises(NotRecoverableError) as err:
        s.read("chat", "0badcafe" if epoch != "0badcafe" else "0badcaff", 0)
    assert err.value.reason == "epoch_mismatch" and err.value.epoch == epoch
    assert err.value.next_offset == 5 and err.value.first_offset == 0 and err.value.topic == "chat"
    assert isinstance(err.value, LookupError)
    with pytest.raises(ValueError):
        s.read("chat", "not-hex", 0)


def test_history_survives_a_restart_with_the_same_epoch(make_server, tmp_path) -> None:
    data = tmp_path / "data"
    s = make_server(recovery_enabled=True, data_dir=str(data))
    s.broadcast_local("t", '{"t":"a"}')
    epoch = wait_visible(s, "t", 1)["epoch"]
    s.stop()
    s.start()
    assert s.position("t") == {"epoch": epoch, "first_offset": 0, "next_offset": 1}
    s.broadcast_local("t", '{"t":"b"}')
    wait_visible(s, "t", 2)
    assert [json.loads(r["data"])["o"] for r in s.read("t", epoch, 0)] == [0, 1]


def test_without_data_dir_history_lasts_one_run(make_server) -> None:
    s = make_server(recovery_enabled=True)
    s.broadcast_local("t", '{"t":"a"}')
    wait_visible(s, "t", 1)
    s.stop()
    s.start()
    assert s.position("t") is None


def test_log_reader_on_a_running_server(make_server, tmp_path) -> None:
    data = tmp_path / "data"
    s = make_server(recovery_enabled=True, data_dir=data, durability="never")
    for i in range(3):
        s.broadcast_local("alpha", json.dumps({"t": "x", "p": i}))
    s.broadcast_local("beta", '{"t":"y"}')
    epoch = wait_visible(s, "alpha", 3)["epoch"]
    wait_visible(s, "beta", 1)
    reader = LogReader(data)
    assert str(reader.data_dir) == str(data)
    topics = reader.topics()
    assert [t["name"] for t in topics] == ["alpha", "beta"]
    assert topics[0]["epoch"] == epoch and topics[0]["next_offset"] == 3 and topics[0]["segments"] >= 1
    assert reader.position("alpha") == {"epoch": epoch, "first_offset": 0, "next_offset": 3}
    assert reader.position("gamma") is None
    got = reader.read("alpha", epoch, 1, 10)
    assert [r["offset"] for r in got] == [1, 2] and json.loads(got[0]["data"])["p"] == 1
    assert [r["offset"] for r in reader.read("alpha")] == [0, 1, 2]
    s.broadcast_local("alpha", '{"t":"later"}')
    wait_visible(s, "alpha", 4)
    assert reader.position("alpha")["next_offset"] == 4  # sees new appends
    with pytest.raises(NotRecoverableError):
        reader.read("alpha", "12345678" if epoch != "12345678" else "87654321")
    with pytest.raises(LookupError):
        reader.read("gamma")
    s.stop()
    assert [r["offset"] for r in LogReader(str(data)).read("alpha", epoch)] == [0, 1, 2, 3]


def test_log_reader_missing_directory(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        LogReader(tmp_path / "nope")


def test_retention_and_tail_options_start(make_server, tmp_path) -> None:
    s = make_server(data_dir=tmp_path, retention_max_bytes=0, retention_max_age=3600,
                    retention_max_records=100, tail_records_per_topic=4, tail_memory_budget=1 << 20,
                    slow_consumer="drop", worker_threads=1)
    for i in range(10):
        s.broadcast_local("t", '{"t":"x"}')
    pos = wait_visible(s, "t", 10)
    assert len(s.read("t", pos["epoch"], 0, 100)) == 10
