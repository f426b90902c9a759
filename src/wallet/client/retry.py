"""When the client tries a request again, and how long it waits first. Pure: no I/O, no sleeping.

What is retried, and why it is safe:

- 503 (``unavailable``, ``overloaded``): the service decided nothing, so the key stays free.
  ``Retry-After`` is honoured, capped at ``retry_after_max_s``.
- A connect error or connect timeout: the request never left, so any request may go again.
- A connection lost after the request was sent (a reset, a close without an answer): reads are
  safe by nature, and every write carries an idempotency key, so the retry replays.
- A read timeout: writes only. The key makes a repeated write safe; a read that timed out would
  most likely time out again and only add load to a slow service.

Nothing else is retried: a 4xx is the caller's to fix, and a 500 is a bug that a retry hides.
Backoff between attempts is exponential with full jitter, so many clients that failed together
do not retry together.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

# Errors raised before the request left: always safe to try again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The connection broke after the request may have reached the service.
_CONNECTION_LOST = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a request gets and how long the client waits between them.

    The n-th retry (n = 1, 2, …) waits a random time between 0 and
    ``min(backoff_max_s, backoff_initial_s * 2 ** (n - 1))``, or the service's ``Retry-After``
    (at most ``retry_after_max_s``) when a 503 carries one.
    """

    attempts_max: int = 4
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 2.0
    retry_after_max_s: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts_max < 1:
            raise ValueError("attempts_max must be at least 1")
        if min(self.backoff_initial_s, self.backoff_max_s, self.retry_after_max_s) < 0:
            raise ValueError("backoff and Retry-After bounds must not be negative")

    def backoff_s(self, retry_number: int, jitter: float) -> float:
        """The wait before retry ``retry_number`` (1-based); ``jitter`` is uniform in [0, 1)."""
        growth: float = 2.0 ** (retry_number - 1)
        ceiling_s = min(self.backoff_max_s, self.backoff_initial_s * growth)
        return ceiling_s * jitter

    def retry_after_s(self, header: str | None) -> float | None:
        """A ``Retry-After`` of delay-seconds, capped; None when absent or not a number.

        The HTTP-date form is not used by the service, and falls back to the backoff.
        """
        if header is None or not header.strip().isdigit():
            return None
        return min(float(header.strip()), self.retry_after_max_s)


def is_retryable_answer(status: int) -> bool:
    """Any 503: the service decided nothing, and asks to be asked again."""
    return status == 503


def is_retryable_error(error: httpx.TransportError, is_write: bool) -> bool:
    """Whether a request that got no answer may go again (see the module's docstring)."""
    if isinstance(error, _NOT_SENT + _CONNECTION_LOST):
        return True
    return is_write and isinstance(error, httpx.TimeoutException)
