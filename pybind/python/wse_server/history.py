"""Reading and replaying a topic's history from Python.

:func:`read_range` iterates over a range of a topic's records in a data
directory (also one a running server writes), page by page, so a notebook
can walk millions of records in constant memory. :func:`replay` runs the
``wse replay`` command (the same options, the same checkpoint files) in
this process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Union

from ._wse_accel import LogReader

#: A point in time: an aware ``datetime``, Unix seconds, or a ``timedelta``
#: meaning that long before now.
When = Union[datetime, float, int, timedelta]


def _micros(when: When) -> int:
    """``when`` as microseconds since the Unix epoch."""
    if isinstance(when, timedelta):
        when = datetime.now(timezone.utc) - when
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError("a datetime without a time zone is ambiguous; give tzinfo")
        delta = when - datetime(1970, 1, 1, tzinfo=timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(when, (int, float)) and not isinstance(when, bool):
        return max(0, int(when * 1_000_000))
    raise TypeError(f"expected a datetime, timedelta or Unix seconds, got {type(when).__name__}")


def read_range(
    data_dir: str | os.PathLike[str],
    topic: str,
    *,
    start: int | None = None,
    stop: int | None = None,
    since: When | None = None,
    until: When | None = None,
    page: int = 500,
) -> Iterator[dict[str, Any]]:
    """Yield the records of ``topic`` in ``data_dir``, oldest first, as
    ``LogReader.read`` gives them (``topic``, ``epoch``, ``offset``,
    ``timestamp_us``, ``kind``, ``data``).

    The range is ``start`` (default: the oldest stored) up to ``stop``
    (exclusive; default: the newest record when the iteration began), or
    by append time: from the first record at or after ``since`` to the
    last before ``until``. ``start`` older than the oldest stored record
    raises ``NotRecoverableError``; an unknown topic ``LookupError``.
    Records are read ``page`` at a time.
    """
    if start is not None and since is not None:
        raise ValueError("give start or since, not both")
    if stop is not None and until is not None:
        raise ValueError("give stop or until, not both")
    if page < 1:
        raise ValueError("page must be at least 1")
    reader = LogReader(data_dir)
    position = reader.position(topic)
    if position is None:
        raise LookupError(f"no topic {topic!r} in {os.fspath(data_dir)}")
    epoch = position["epoch"]
    first = position["first_offset"] if start is None else start
    if since is not None:
        first = reader.offset_at_time(topic, _micros(since))
    end = position["next_offset"] if stop is None else min(stop, position["next_offset"])
    if until is not None:
        end = reader.offset_at_time(topic, _micros(until))
    offset = first
    while offset < end:
        batch = reader.read(topic, epoch, offset, min(page, end - offset))
        if not batch:
            return
        for record in batch:
            if record["offset"] >= end:
                return
            yield record
        offset = batch[-1]["offset"] + 1
