"""health_snapshot() and prometheus_metrics() against the metrics table.

Each metric is declared once (``metrics!`` in src/metrics.rs, checked
against the table of docs/OPERATIONS.md by a Rust test). Here the two
Python surfaces are checked against that table: the snapshot's keys, in
order, and the Prometheus names, so they agree with each other.
"""

from __future__ import annotations

import re
from pathlib import Path

from test_presence_cluster_monitoring import UPSTREAM_HEALTH_KEYS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "OPERATIONS.md"
HEADER = "| key | Prometheus | kind | meaning |"


def table() -> list[tuple[str, str | None, str]]:
    lines = DOCS.read_text().splitlines()
    start = lines.index(HEADER) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        key, name, kind = (c.strip().strip("`") for c in line.strip("|").split("|")[:3])
        rows.append((key, None if name == "—" else name, kind))
    return rows


def test_the_snapshot_has_every_metric_in_order(make_server) -> None:
    h = make_server(start=False, recovery_enabled=True, presence_enabled=True).health_snapshot()
    assert list(h) == [key for key, _, _ in table()]
    assert list(h)[: len(UPSTREAM_HEALTH_KEYS)] == UPSTREAM_HEALTH_KEYS
    without = make_server(start=False).health_snapshot()
    assert set(h) - set(without) == {"presence_topics", "presence_total_users"}


def test_prometheus_exports_the_snapshot_metrics(make_server) -> None:
    s = make_server(recovery_enabled=True, presence_enabled=True)
    s.broadcast_local("t", '{"t":"x"}')
    text = s.prometheus_metrics()
    typed = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    declared = {name: kind for _, name, kind in table() if name is not None}
    assert typed == {**declared, "wse_topic_messages_total": "counter"}
    snapshot = s.health_snapshot()
    for key, name, _ in table():
        if name is not None and isinstance(snapshot[key], int):
            assert re.search(rf"^{name} \d+$", text, re.M), name
