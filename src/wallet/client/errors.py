"""The client's exceptions: one class per error code of the HTTP contract.

Every answer the service refuses is an ``application/problem+json`` body (RFC 9457) with a stable
``code``; :func:`error_from_problem` turns it into the matching subclass of :class:`WalletAPIError`,
so callers write ``except InsufficientFunds:`` rather than comparing strings. A code this client
does not know (a newer server) becomes :class:`UnknownWalletAPIError`, never a crash.

A request that got no answer at all, after the client's own retries, is a
:class:`WalletConnectionError`; the underlying httpx error is its ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class WalletClientError(Exception):
    """Every error this client raises."""


class WalletConnectionError(WalletClientError):
    """No answer from the service (connect error, timeout, dropped connection), retries spent."""


class WalletAPIError(WalletClientError):
    """The service answered with a problem.

    ``status``, ``code``, ``title`` and ``detail`` are the problem's fields; ``problem`` is the
    whole problem as parsed (with ``errors`` and any other extension); ``request_id`` is the
    answer's ``X-Request-ID``, to quote when asking the service's operators.
    """

    code: ClassVar[str] = ""

    def __init__(self, status: int, problem: Mapping[str, Any], request_id: str | None) -> None:
        self.status = status
        self.problem: Mapping[str, Any] = problem
        self.request_id = request_id
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        super().__init__(f"{status} {self.error_code}: {self.detail}")

    @property
    def error_code(self) -> str:
        """The problem's ``code`` (for the fallback class, whatever the server sent)."""
        return str(self.problem.get("code", self.code))

    @property
    def errors(self) -> list[Mapping[str, Any]]:
        """The problem's ``errors`` list (validation problems, the failing batch item), or []."""
        items = self.problem.get("errors")
        return list(items) if isinstance(items, list) else []


class IdempotencyKeyMismatch(WalletAPIError):
    """400: the ``Idempotency-Key`` header and the body's ``idempotency_key`` differ."""

    code = "idempotency_key_mismatch"


class Unauthorized(WalletAPIError):
    """401: no API key, or one that is unknown or revoked."""

    code = "unauthorized"


class Forbidden(WalletAPIError):
    """403: the API key lacks the scope the operation needs."""

    code = "forbidden"


class UserNotFound(WalletAPIError):
    """404: a user that has never been credited."""

    code = "user_not_found"


class AssetNotFound(WalletAPIError):
    """404: an unknown asset."""

    code = "asset_not_found"


class TransactionNotFound(WalletAPIError):
    """404: an unknown transaction id."""

    code = "transaction_not_found"


class HoldNotFound(WalletAPIError):
    """404: an unknown hold id."""

    code = "hold_not_found"


class WebhookNotFound(WalletAPIError):
    """404: an unknown webhook endpoint id."""

    code = "webhook_not_found"


class MonitorNotFound(WalletAPIError):
    """404: an unknown balance monitor id."""

    code = "monitor_not_found"


class NotFound(WalletAPIError):
    """404: no such route (a server older than this client)."""

    code = "not_found"


class MethodNotAllowed(WalletAPIError):
    """405: the route exists but not with this method."""

    code = "method_not_allowed"


class HoldExpired(WalletAPIError):
    """409: a capture after the hold's expiry."""

    code = "hold_expired"


class HoldNotPending(WalletAPIError):
    """409: a capture or release of a hold that is no longer pending."""

    code = "hold_not_pending"


class PayloadTooLarge(WalletAPIError):
    """413: a body over the service's limit."""

    code = "payload_too_large"


class EventsPruned(WalletAPIError):
    """410: the events after the position asked for are no longer kept (retention); read on
    from a later position."""

    code = "events_pruned"


class UnsupportedMediaType(WalletAPIError):
    """415: a body that is not JSON."""

    code = "unsupported_media_type"


class ValidationError(WalletAPIError):
    """422: a malformed request; ``errors`` lists each problem with its location."""

    code = "validation_error"


class InsufficientFunds(WalletAPIError):
    """422: the debited account would go below zero."""

    code = "insufficient_funds"


class IdempotencyKeyReused(WalletAPIError):
    """422: the idempotency key was used before with a different payload."""

    code = "idempotency_key_reused"


class RefundExceedsOriginal(WalletAPIError):
    """422: the refunds of a transaction would add up to more than it."""

    code = "refund_exceeds_original"


class NotRefundable(WalletAPIError):
    """422: a refund of a refund, or of a kind that cannot be refunded."""

    code = "not_refundable"


class BatchFailed(WalletAPIError):
    """422: an item of a batch was refused, so none was applied; ``errors`` names it by index."""

    code = "batch_failed"


class InternalError(WalletAPIError):
    """500: a bug in the service; it has been logged there."""

    code = "internal_error"


class Unavailable(WalletAPIError):
    """503: the database cannot be reached; raised once retries are spent."""

    code = "unavailable"


class Overloaded(WalletAPIError):
    """503: the service's write queue is full; raised once retries are spent."""

    code = "overloaded"


class UnknownWalletAPIError(WalletAPIError):
    """A problem with a code this client does not know, or an answer that is not a problem."""


ERROR_CLASS_BY_CODE: dict[str, type[WalletAPIError]] = {
    cls.code: cls for cls in WalletAPIError.__subclasses__() if cls is not UnknownWalletAPIError
}


def error_from_problem(
    status: int, problem: Mapping[str, Any], request_id: str | None
) -> WalletAPIError:
    """The exception for a problem: its code's class, else :class:`UnknownWalletAPIError`."""
    cls = ERROR_CLASS_BY_CODE.get(str(problem.get("code")), UnknownWalletAPIError)
    return cls(status, problem, request_id)
