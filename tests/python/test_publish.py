"""Acknowledged publishing: ``publish`` returns once the record is durable,
``flush`` waits for everything broadcast before it, and what ``publish``
acknowledged survives kill -9 of the Python process."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from wse_server import LogReader, RustWSEServer


def test_publish_returns_the_position_of_a_record_readers_already_see(make_server, tmp_path) -> None:
    s = make_server(recovery_enabled=True, data_dir=tmp_path / "data", durability="always")
    epoch, offset = s.publish("chat", json.dumps({"t": "m", "p": {"i": 0}}))
    assert (len(epoch), offset) == (8, 0)
    # Acknowledged means visible at once: no waiting for the writer.
    assert s.position("chat") == {"epoch": epoch, "first_offset": 0, "next_offset": 1}
    assert s.publish("chat", '{"t":"m"}') == (epoch, 1)
    body = json.loads(s.read("chat", epoch, 1)[0]["data"])
    assert body == {"tp": "chat", "e": epoch, "o": 1, "c": "U", "t": "m"}


def test_concurrent_publishers_each_get_their_own_dense_offsets(make_server, tmp_path) -> None:
    s = make_server(recovery_enabled=True, data_dir=tmp_path / "data", durability="always")
    got: list[int] = []
    lock = threading.Lock()

    def publisher(n: int) -> None:
        for i in range(50):
            _, offset = s.publish("t", json.dumps({"t": "m", "p": {"n": n, "i": i}}))
            with lock:
                got.append(offset)

    threads = [threading.Thread(target=publisher, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(200))


def test_publish_errors(make_server) -> None:
    s = RustWSEServer("127.0.0.1", 0)
    with pytest.raises(RuntimeError, match="Not running"):
        s.publish("t", "{}")
    with pytest.raises(RuntimeError, match="Not running"):
        s.flush()
    s = make_server(recovery_enabled=True)
    with pytest.raises(ValueError):
        s.publish("", "{}")
    with pytest.raises(ValueError):
        s.flush(timeout=-1)


def test_flush_waits_for_every_broadcast_before_it(make_server, tmp_path) -> None:
    s = make_server(recovery_enabled=True, data_dir=tmp_path / "data", durability="always")
    for i in range(300):
        s.broadcast_local(f"t{i % 3}", json.dumps({"t": "m", "p": i}))
    s.flush(timeout=30)
    assert [s.position(f"t{k}")["next_offset"] for k in range(3)] == [100, 100, 100]
    s.flush()  # nothing pending: returns at once


CHILD = textwrap.dedent(
    """
    import json, os, sys, threading
    from wse_server import RustWSEServer
    data, policy = sys.argv[1], sys.argv[2]
    s = RustWSEServer("127.0.0.1", 0, recovery_enabled=True, data_dir=data, durability=policy)
    s.start()
    lock = threading.Lock()
    def run(n):
        for i in range(10**9):
            marker = f"{os.getpid()}-{n}-{i}"
            epoch, offset = s.publish(f"t{n}", json.dumps({"t": "m", "p": {"k": marker}}))
            with lock:
                print(f"ACK t{n} {epoch} {offset} {marker}", flush=True)
    for n in range(2):
        threading.Thread(target=run, args=(n,), daemon=True).start()
    threading.Event().wait()
    """
)


@pytest.mark.parametrize("policy", ["always", "interval", "never"])
def test_what_publish_acknowledged_survives_kill_9(tmp_path: Path, policy: str) -> None:
    data = tmp_path / "data"
    rng = random.Random()
    acked: list[tuple[str, str, int, str]] = []
    for _ in range(10):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(data), policy],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for _ in range(rng.randrange(1, 80)):
            line = proc.stdout.readline()
            assert line.startswith("ACK "), line
            topic, epoch, offset, marker = line.split()[1:]
            acked.append((topic, epoch, int(offset), marker))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
        for line in rest.splitlines():
            if line.startswith("ACK ") and len(line.split()) == 5:
                topic, epoch, offset, marker = line.split()[1:]
                acked.append((topic, epoch, int(offset), marker))
    reader = LogReader(str(data))
    lost = []
    for topic, epoch, offset, marker in acked:
        records = reader.read(topic, epoch, offset, 1)
        if not records or json.loads(records[0]["data"])["p"]["k"] != marker:
            lost.append((topic, epoch, offset, marker))
    assert lost == [], f"{len(lost)} of {len(acked)} acknowledged records lost"
