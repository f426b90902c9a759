"""A clock that tests move by hand: the service reads the time from it (wallet.service.clock),
so a test of expiry or of a daily window moves time instead of waiting for it.
"""

from __future__ import annotations

import threading

from wallet.service.clock import now_us

US_PER_S = 1_000_000


class ManualClock:
    """Starts at the real time (so what it stamps is newer than what the seed wrote) and moves
    only when told, never back.
    """

    def __init__(self, start_us: int | None = None) -> None:
        self._now_us = now_us() if start_us is None else start_us
        self._lock = threading.Lock()

    def now_us(self) -> int:
        with self._lock:
            return self._now_us

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "time never goes back"
        with self._lock:
            self._now_us += round(seconds * US_PER_S)

    def set(self, at_us: int) -> None:
        with self._lock:
            assert at_us >= self._now_us, "time never goes back"
            self._now_us = at_us
