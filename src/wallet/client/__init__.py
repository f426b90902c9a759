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
        wallet.topup("user_042", "GC", Decimal("100.00"))
        try:
            wallet.purchase("user_042", "GC", "250.00", "Sword of dawn")
        except InsufficientFunds as error:
            print(error.detail)
"""

from .aio import AsyncWalletClient
from .errors import (
    AssetNotFound,
    BatchFailed,
    Forbidden,
    HoldExpired,
    HoldNotFound,
    HoldNotPending,
    IdempotencyKeyMismatch,
    IdempotencyKeyReused,
    InsufficientFunds,
    InternalError,
    MethodNotAllowed,
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
)
from .models import (
    Asset,
    AssetSupply,
    Balance,
    Batch,
    BatchItem,
    Entry,
    HistoryPage,
    Hold,
    HoldPage,
    Transaction,
    VerifyReport,
)
from .retry import RetryPolicy
from .sync import WalletClient

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
    "MethodNotAllowed",
    "NotFound",
    "NotRefundable",
    "Overloaded",
    "PayloadTooLarge",
    "RefundExceedsOriginal",
    "RetryPolicy",
    "Transaction",
    "TransactionNotFound",
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
]
