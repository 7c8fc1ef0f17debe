"""Enums shared by WSE applications."""

from enum import Enum


class EventPriority(Enum):
    """Event priority levels (the levels of ``RustPriorityMessageQueue``)."""

    CRITICAL = 10
    HIGH = 8
    NORMAL = 5
    LOW = 3
    BACKGROUND = 1


class DeliveryGuarantee(Enum):
    """Delivery semantics."""

    AT_MOST_ONCE = "at_most_once"
    AT_LEAST_ONCE = "at_least_once"
    EXACTLY_ONCE = "exactly_once"
