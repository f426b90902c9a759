"""Time and identifiers, in one place so that both are easy to reason about.

The service reads the time through a ``Clock`` it is given (``SYSTEM_CLOCK`` in production), so
that a test of expiry or of a daily window moves time instead of waiting for it.
"""

import functools
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    """Microseconds since the Unix epoch, as an integer (no float touches a timestamp)."""
    return time.time_ns() // 1000


@functools.lru_cache(maxsize=64)
def format_us(us: int) -> str:
    """RFC 3339 in UTC with microseconds: 2026-11-25T08:00:00.123456Z.

    Cached: every transaction of a unit of work carries the same instant.
    """
    return (_EPOCH + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_instant_us(moment: datetime) -> int:
    """An aware datetime to microseconds since the epoch; a naive one is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def new_transaction_id() -> str:
    """A UUID version 7: time-ordered, so new rows land at the end of the id index."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


class Clock(Protocol):
    """Where the service reads the time: passed in, so that tests move it instead of sleeping.

    Only the instants the ledger records or decides by (a transaction's ``created_at``, a hold's
    expiry, a key's creation, the day of a report) come from here; timeouts and pacing, which
    measure durations, use the monotonic clock.
    """

    def now_us(self) -> int:
        """Microseconds since the Unix epoch."""
        ...


class SystemClock:
    """The real time."""

    def now_us(self) -> int:
        return now_us()


SYSTEM_CLOCK: Clock = SystemClock()
