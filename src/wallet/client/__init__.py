"""A Python client of the wallet service, blocking (:class:`WalletClient`) and asyncio
(:class:`AsyncWalletClient`), on httpx.

Both speak the contract of ../shared/API.md through one shared protocol (:mod:`.operations` builds
each request and parses its answer, :mod:`.protocol` decides what each attempt's outcome means,
:mod:`.retry` when to try again); the two clients only send and sleep. Results are frozen
dataclasses with Decimal amounts (:mod:`.models`); errors are one exception class per error code
(:mod:`.errors`).

    from decimal import Decimal
    from wallet.client import InsufficientFunds, WalletClient

    with WalletClient("http://127.0.0.1:8000", api_key="…") as wallet:
        wallet.topup("user_042", "GC", Decimal("100.00"), metadata={"order_id": "A-1042"})
        try:
            wallet.purchase("user_042", "GC", "250.00", "Sword of dawn")
        except InsufficientFunds as error:
            print(error.detail)
        for transaction in wallet.iter_transactions(metadata={"order_id": "A-1042"}):
            print(transaction.user_id, transaction.amount)
        for event in wallet.events(after=0, types=["hold.expired"]):  # follows the feed
            print(event.position, event.data["id"])

A webhook receiver checks each delivery with :func:`verify_webhook` (:mod:`.webhooks`).
"""

from .aio import AsyncWalletClient
from .errors import (
    AssetNotFound,
    BatchFailed,
    EventsPruned,
    Forbidden,
    HoldExpired,
    HoldNotFound,
    HoldNotPending,
    IdempotencyKeyMismatch,
    IdempotencyKeyReused,
    InsufficientFunds,
    InternalError,
    MethodNotAllowed,
    MonitorNotFound,
    NotFound,
    NotRefundable,
    Overloaded,
    PayloadTooLarge,
    RefundExceedsOriginal,
    TransactionNotFound,
    Unauthorized,
    Unavailable,
    UnknownWalletAPIError,
    UnsupportedMediaType,
    UserNotFound,
    ValidationError,
    WalletAPIError,
    WalletClientError,
    WalletConnectionError,
    WebhookNotFound,
)
from .models import (
    Asset,
    AssetSupply,
    Balance,
    Batch,
    BatchItem,
    Entry,
    Event,
    EventPage,
    EventType,
    Expiring,
    HistoryPage,
    Hold,
    HoldPage,
    Lot,
    LotPage,
    Transaction,
    TransactionPage,
    VerifyReport,
)
from .retry import RetryPolicy
from .sync import WalletClient
from .webhooks import WebhookVerificationFailed, verify_webhook

__all__ = [
    "Asset",
    "AssetNotFound",
    "AssetSupply",
    "AsyncWalletClient",
    "Balance",
    "Batch",
    "BatchFailed",
    "BatchItem",
    "Entry",
    "Event",
    "EventPage",
    "EventType",
    "EventsPruned",
    "Expiring",
    "Forbidden",
    "HistoryPage",
    "Hold",
    "HoldExpired",
    "HoldNotFound",
    "HoldNotPending",
    "HoldPage",
    "IdempotencyKeyMismatch",
    "IdempotencyKeyReused",
    "InsufficientFunds",
    "InternalError",
    "Lot",
    "LotPage",
    "MethodNotAllowed",
    "MonitorNotFound",
    "NotFound",
    "NotRefundable",
    "Overloaded",
    "PayloadTooLarge",
    "RefundExceedsOriginal",
    "RetryPolicy",
    "Transaction",
    "TransactionNotFound",
    "TransactionPage",
    "Unauthorized",
    "Unavailable",
    "UnknownWalletAPIError",
    "UnsupportedMediaType",
    "UserNotFound",
    "ValidationError",
    "VerifyReport",
    "WalletAPIError",
    "WalletClient",
    "WalletClientError",
    "WalletConnectionError",
    "WebhookNotFound",
    "WebhookVerificationFailed",
    "verify_webhook",
]
