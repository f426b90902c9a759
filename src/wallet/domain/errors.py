"""The one tree of expected failures.

Each error carries a stable ``code`` (the API's error code) and a ``detail`` for people. Mapping to
HTTP statuses lives in the API layer, in one table; the domain knows nothing of HTTP (the
refusals that belong to HTTP itself, such as a missing API key, are in api/errors.py).
"""

from typing import Any, ClassVar


class WalletError(Exception):
    """An expected condition that a caller must be told about, never a bug."""

    code: ClassVar[str] = "wallet_error"
    title: ClassVar[str] = "Wallet error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ValidationFailed(WalletError):
    code = "validation_error"
    title = "Validation error"

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail, errors=errors)
        self.errors = errors

    @classmethod
    def at(cls, field: str, message: str, location: str = "body") -> "ValidationFailed":
        return cls(message, [{"loc": [location, field], "msg": message, "type": "value_error"}])


class InsufficientFunds(WalletError):
    code = "insufficient_funds"
    title = "Insufficient funds"


class UserNotFound(WalletError):
    code = "user_not_found"
    title = "User not found"


class AssetNotFound(WalletError):
    code = "asset_not_found"
    title = "Asset not found"


class TransactionNotFound(WalletError):
    code = "transaction_not_found"
    title = "Transaction not found"


class NotRefundable(WalletError):
    code = "not_refundable"
    title = "Not refundable"


class RefundExceedsOriginal(WalletError):
    code = "refund_exceeds_original"
    title = "Refund exceeds original"


class AccountFrozen(WalletError):
    """A request would move an account an operator has frozen (one asset, or all of them)."""

    code = "account_frozen"
    title = "Account frozen"


class BatchFailed(WalletError):
    """An item of a batch was refused, so none was applied; ``errors`` names it by index."""

    code = "batch_failed"
    title = "Batch failed"

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail, errors=errors)
        self.errors = errors


class HoldNotFound(WalletError):
    code = "hold_not_found"
    title = "Hold not found"


class HoldExpired(WalletError):
    code = "hold_expired"
    title = "Hold expired"


class HoldNotPending(WalletError):
    code = "hold_not_pending"
    title = "Hold not pending"


class WebhookNotFound(WalletError):
    code = "webhook_not_found"
    title = "Webhook not found"


class LimitExceeded(WalletError):
    """The command would take a user past a daily limit; ``detail`` says what is left today."""

    code = "limit_exceeded"
    title = "Limit exceeded"


class MonitorNotFound(WalletError):
    code = "monitor_not_found"
    title = "Monitor not found"


class IdempotencyKeyMismatch(WalletError):
    code = "idempotency_key_mismatch"
    title = "Idempotency key mismatch"


class IdempotencyKeyReused(WalletError):
    code = "idempotency_key_reused"
    title = "Idempotency key reused"


class AssetExists(WalletError):
    code = "asset_exists"
    title = "Asset exists"


class EventsPruned(WalletError):
    code = "events_pruned"
    title = "Events pruned"


class Unavailable(WalletError):
    code = "unavailable"
    title = "Service unavailable"


class Overloaded(WalletError):
    code = "overloaded"
    title = "Service overloaded"


def error_for_code(code: str, detail: str, extra: dict[str, Any] | None = None) -> WalletError:
    """Rebuild an error the ledger decided earlier (an idempotent replay of a refusal)."""
    classes: list[type[WalletError]] = [WalletError]
    for cls in classes:
        if cls.code == code:
            return cls(detail, **(extra or {}))
        classes.extend(cls.__subclasses__())
    raise AssertionError(f"no error with code {code}")
