"""MongoDB-style event filters (``rust_match_event``).

Criteria map dotted field paths to a value (equality) or to operators:
``$eq $ne $gt $lt $gte $lte $in $nin $exists $regex $contains $startswith
$endswith``; ``$and`` / ``$or`` take lists of criteria::

    criteria = {
        "event_type": {"$in": ["OrderPlaced", "OrderFilled"]},
        "payload.symbol": {"$regex": "^AAPL"},
        "payload.quantity": {"$gte": 100},
    }
    if EventFilter.matches(event, criteria):
        ...
"""

from typing import Any

from wse_server._wse_accel import rust_match_event


class EventFilter:
    """Event matching; all the work is done by ``rust_match_event``."""

    @staticmethod
    def matches(event: dict[str, Any], criteria: dict[str, Any]) -> bool:
        """True when ``event`` satisfies ``criteria``."""
        return rust_match_event(event, criteria)
