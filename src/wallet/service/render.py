"""The API's representation of ledger objects, shared by fresh answers and idempotent replays.

It lives in the service because a replay must return the body that was sent the first time, and
that body is decided inside the unit of work that stores it.
"""

from typing import Any

import orjson

from wallet.domain.holds import Hold
from wallet.domain.ledger import PostedTransaction
from wallet.domain.money import format_minor

from .clock import format_us


def transaction_view(transaction: PostedTransaction, scale: int) -> dict[str, Any]:
    balance_after = transaction.user_balance_after
    return {
        "id": transaction.id,
        "transaction_type": transaction.transaction_type,
        "status": "completed",
        "user_id": transaction.user_id,
        "asset_code": transaction.asset_code,
        "amount": format_minor(transaction.amount_minor, scale),
        "description": transaction.description,
        "idempotency_key": transaction.idempotency_key,
        "balance_after": None if balance_after is None else format_minor(balance_after, scale),
        "refunded_amount": format_minor(transaction.refunded_minor, scale),
        "refund_of": transaction.refund_of,
        "created_at": format_us(transaction.created_at_us),
        "metadata": metadata_view(transaction.metadata),
        "entries": [
            {
                "account_type": entry.owner_type,
                "account_id": entry.owner_id,
                "amount": format_minor(entry.amount_minor, scale),
                "balance_before": format_minor(entry.balance_before, scale),
                "balance_after": format_minor(entry.balance_after, scale),
            }
            for entry in transaction.entries
        ],
    }


def hold_view(hold: Hold, scale: int) -> dict[str, Any]:
    return {
        "id": hold.id,
        "user_id": hold.user_id,
        "asset_code": hold.asset_code,
        "amount": format_minor(hold.amount_minor, scale),
        "captured_amount": format_minor(hold.captured_minor, scale),
        "status": hold.status.value,
        "description": hold.description,
        "expires_at": format_us(hold.expires_at_us),
        "created_at": format_us(hold.created_at_us),
        "transactions": hold.transaction_ids,
        "metadata": metadata_view(hold.metadata),
    }


def metadata_view(metadata: str | None) -> dict[str, str]:
    """The caller's references as the API shows them: an object, ``{}`` when none."""
    if metadata is None:
        return {}
    members: dict[str, str] = orjson.loads(metadata)
    return members
