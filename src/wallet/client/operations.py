"""One function per operation of the HTTP contract (../shared/API.md): each builds a
:class:`~wallet.client.protocol.Call` with the parser of its answer. Pure: nothing here sends.

Amounts leave as decimal strings (``Decimal("100.50")`` as ``"100.50"``) and come back as
Decimals; a float is refused before anything is sent. Every write gets an idempotency key: the
caller's, or a fresh uuid4 that the call keeps for all of its attempts. Metadata goes out only
when given: as a body member on a write, as ``metadata[KEY]=VALUE`` query parameters on a read.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from .models import (
    AmountInput,
    AnyTransactionType,
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
    HoldStatus,
    Lot,
    LotPage,
    MetadataInput,
    Transaction,
    TransactionPage,
    TransactionType,
    VerifyReport,
)
from .protocol import LONG_POLL_MARGIN_S, Call, decode_json

T = TypeVar("T")


def assets() -> Call[tuple[Asset, ...]]:
    return Call("GET", "/assets", lambda r: tuple(_asset(a) for a in decode_json(r)))


def balances(user_id: str) -> Call[tuple[Balance, ...]]:
    def parse(response: httpx.Response) -> tuple[Balance, ...]:
        return tuple(_balance(b) for b in decode_json(response)["balances"])

    return Call("GET", f"/balance/{_segment(user_id)}", parse)


def balance(user_id: str, asset_code: str, as_of: datetime | None) -> Call[Balance]:
    params: dict[str, str | int] | None = None
    if as_of is not None:
        params = {"as_of": _instant(as_of, "as_of")}
    path = f"/balance/{_segment(user_id)}/{_segment(asset_code)}"
    return Call("GET", path, lambda r: _balance(decode_json(r)), params=params)


def lots(
    user_id: str, asset_code: str, *, limit: int | None = None, cursor: str | None = None
) -> Call[LotPage]:
    def parse(response: httpx.Response) -> LotPage:
        data = decode_json(response)
        return LotPage(tuple(_lot(lot) for lot in data["items"]), data["next_cursor"])

    path = f"/balance/{_segment(user_id)}/{_segment(asset_code)}/lots"
    return Call("GET", path, parse, params=_params(limit=limit, cursor=cursor))


def post_transaction(
    transaction_type: TransactionType,
    *,
    user_id: str | None = None,
    asset_code: str | None = None,
    amount: AmountInput | None = None,
    description: str | None = None,
    refund_of: str | None = None,
    metadata: MetadataInput | None = None,
    idempotency_key: str | None = None,
    expires_at: datetime | None = None,
) -> Call[Transaction]:
    body = _transaction_body(
        BatchItem(
            transaction_type,
            user_id,
            asset_code,
            amount,
            description,
            refund_of,
            metadata,
            expires_at,
        )
    )
    return _write("/transaction", body, _transaction_answer, idempotency_key)


def get_transaction(transaction_id: str) -> Call[Transaction]:
    return Call("GET", f"/transaction/{_segment(transaction_id)}", _transaction_answer)


def history(
    user_id: str,
    *,
    limit: int | None = None,
    cursor: str | None = None,
    asset_code: str | None = None,
    transaction_type: TransactionType | None = None,
    metadata: MetadataInput | None = None,
) -> Call[HistoryPage]:
    def parse(response: httpx.Response) -> HistoryPage:
        data = decode_json(response)
        items = tuple(_transaction(t) for t in data["items"])
        return HistoryPage(data["user_id"], items, data["next_cursor"])

    params = _params(
        limit=limit, cursor=cursor, asset_code=asset_code, transaction_type=transaction_type
    )
    params.update(_metadata_params(metadata))
    return Call("GET", f"/transaction/{_segment(user_id)}/history", parse, params=params)


def transactions(
    *,
    user_id: str | None = None,
    asset_code: str | None = None,
    transaction_type: AnyTransactionType | None = None,
    metadata: MetadataInput | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[TransactionPage]:
    def parse(response: httpx.Response) -> TransactionPage:
        data = decode_json(response)
        return TransactionPage(tuple(_transaction(t) for t in data["items"]), data["next_cursor"])

    params = _params(
        user_id=user_id,
        asset_code=asset_code,
        transaction_type=transaction_type,
        limit=limit,
        cursor=cursor,
    )
    params.update(_metadata_params(metadata))
    return Call("GET", "/transactions", parse, params=params)


def batch(items: Sequence[BatchItem], idempotency_key: str | None = None) -> Call[Batch]:
    def parse(response: httpx.Response) -> Batch:
        data = decode_json(response)
        transactions = tuple(_transaction(t) for t in data["transactions"])
        return Batch(data["id"], transactions, _replayed(response))

    body = {"transactions": [_transaction_body(item) for item in items]}
    return _write("/transaction/batch", body, parse, idempotency_key)


def place_hold(
    user_id: str,
    asset_code: str,
    amount: AmountInput,
    *,
    expires_in_s: int | None = None,
    description: str | None = None,
    metadata: MetadataInput | None = None,
    idempotency_key: str | None = None,
) -> Call[Hold]:
    body = _without_none(
        user_id=user_id,
        asset_code=asset_code,
        amount=amount_text(amount),
        expires_in_seconds=expires_in_s,
        description=description,
        metadata=_metadata(metadata),
    )
    return _write("/holds", body, _hold_answer, idempotency_key)


def get_hold(hold_id: str) -> Call[Hold]:
    return Call("GET", f"/holds/{_segment(hold_id)}", _hold_answer)


def list_holds(
    user_id: str,
    *,
    status: HoldStatus | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[HoldPage]:
    def parse(response: httpx.Response) -> HoldPage:
        data = decode_json(response)
        return HoldPage(tuple(_hold(h) for h in data["items"]), data["next_cursor"])

    params = _params(user_id=user_id, status=status, limit=limit, cursor=cursor)
    return Call("GET", "/holds", parse, params=params)


def capture_hold(
    hold_id: str, amount: AmountInput | None = None, idempotency_key: str | None = None
) -> Call[Hold]:
    body = _without_none(amount=None if amount is None else amount_text(amount))
    return _write(f"/holds/{_segment(hold_id)}/capture", body, _hold_answer, idempotency_key)


def release_hold(hold_id: str, idempotency_key: str | None = None) -> Call[Hold]:
    return _write(f"/holds/{_segment(hold_id)}/release", {}, _hold_answer, idempotency_key)


def events(
    after: int = 0,
    *,
    limit: int | None = None,
    types: Sequence[EventType] | None = None,
    wait_s: float | None = None,
) -> Call[EventPage]:
    def parse(response: httpx.Response) -> EventPage:
        data = decode_json(response)
        return EventPage(tuple(parse_event(e) for e in data["items"]), int(data["next_after"]))

    if types is not None and not types:
        raise ValueError("types names at least one event type (None: every type)")
    params = _params(
        after=after,
        limit=limit,
        types=None if types is None else ",".join(types),
        wait=None if wait_s is None else format(wait_s, "g"),
    )
    # The service holds a long poll's answer for up to ``wait_s``: the read must outlast it.
    read_timeout_s = wait_s + LONG_POLL_MARGIN_S if wait_s else None
    return Call("GET", "/events", parse, params=params, read_timeout_s=read_timeout_s)


def parse_event(data: Mapping[str, Any]) -> Event:
    """An Event from its JSON (a feed's item, a webhook's body)."""
    return Event(
        id=data["id"],
        position=int(data["position"]),
        type=data["type"],
        created_at=datetime.fromisoformat(data["created_at"]),
        data=dict(data["data"]),
    )


def asset_supply(asset_code: str) -> Call[AssetSupply]:
    def parse(response: httpx.Response) -> AssetSupply:
        data = decode_json(response)
        return AssetSupply(
            asset_code=data["asset_code"],
            supply=Decimal(data["supply"]),
            treasury=Decimal(data["treasury"]),
            users=Decimal(data["users"]),
            pending_holds=Decimal(data["pending_holds"]),
            expired=Decimal(data["expired"]),
            adds_up=bool(data["adds_up"]),
        )

    return Call("GET", f"/admin/assets/{_segment(asset_code)}/supply", parse)


def add_asset(
    code: str,
    name: str,
    scale: int,
    supply: AmountInput,
    idempotency_key: str | None = None,
    expires_after_days: int | None = None,
) -> Call[Asset]:
    body: dict[str, Any] = {
        "code": code,
        "name": name,
        "scale": scale,
        "supply": amount_text(supply),
    }
    if expires_after_days is not None:
        body["expires_after_days"] = expires_after_days
    return _write("/admin/assets", body, lambda r: _asset(decode_json(r)), idempotency_key)


def set_asset_expiry(code: str, expires_after_days: int | None) -> Call[Asset]:
    """PATCH sets a value: sent again after a lost answer, it sets the same value (no key)."""
    body = {"expires_after_days": expires_after_days}
    path = f"/admin/assets/{_segment(code)}"
    return Call("PATCH", path, lambda r: _asset(decode_json(r)), body=body)


def verify() -> Call[VerifyReport]:
    def parse(response: httpx.Response) -> VerifyReport:
        data = decode_json(response)
        return VerifyReport(
            ok=data["ok"],
            accounts_checked=data["accounts_checked"],
            transactions_checked=data["transactions_checked"],
            problems=tuple(data["problems"]),
        )

    return Call("GET", "/admin/verify", parse)


def metrics() -> Call[str]:
    return Call("GET", "/metrics", lambda r: r.text)


def amount_text(amount: AmountInput) -> str:
    """An amount as the decimal string the service reads; a float or a bool is a TypeError."""
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int | str):
        raise TypeError(f"an amount is a Decimal, int or str, not {type(amount).__name__}")
    if isinstance(amount, Decimal):
        return format(amount, "f")
    return str(amount)


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


def _write(
    path: str,
    body: Mapping[str, Any],
    parse: Callable[[httpx.Response], T],
    idempotency_key: str | None,
) -> Call[T]:
    key = idempotency_key if idempotency_key is not None else new_idempotency_key()
    return Call("POST", path, parse, body=body, idempotency_key=key)


def _segment(value: str) -> str:
    return quote(value, safe="")


def _params(**values: str | int | None) -> dict[str, str | int]:
    return {name: value for name, value in values.items() if value is not None}


def _without_none(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _metadata(metadata: MetadataInput | None) -> dict[str, str] | None:
    return None if metadata is None else dict(metadata)


def _metadata_params(metadata: MetadataInput | None) -> dict[str, str]:
    """The filters ``metadata[KEY]=VALUE``, one query parameter each (all must match)."""
    return {f"metadata[{key}]": value for key, value in (metadata or {}).items()}


def _transaction_body(item: BatchItem) -> dict[str, Any]:
    return _without_none(
        transaction_type=item.transaction_type,
        user_id=item.user_id,
        asset_code=item.asset_code,
        amount=None if item.amount is None else amount_text(item.amount),
        description=item.description,
        refund_of=item.refund_of,
        metadata=_metadata(item.metadata),
        expires_at=None if item.expires_at is None else _instant(item.expires_at, "expires_at"),
    )


def _instant(moment: datetime, name: str) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, e.g. datetime.now(UTC)")
    return moment.isoformat()


def _replayed(response: httpx.Response) -> bool:
    return bool(response.headers.get("Idempotent-Replayed") == "true")


def _money(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _asset(data: Mapping[str, Any]) -> Asset:
    return Asset(
        code=data["code"],
        name=data["name"],
        scale=data["scale"],
        expires_after_days=data.get("expires_after_days"),
    )


def _balance(data: Mapping[str, Any]) -> Balance:
    as_of = data.get("as_of")
    expiring = data.get("expiring")
    return Balance(
        user_id=data["user_id"],
        asset_code=data["asset_code"],
        balance=Decimal(data["balance"]),
        held=_money(data.get("held")),
        as_of=None if as_of is None else datetime.fromisoformat(as_of),
        expiring=None
        if expiring is None
        else tuple(
            Expiring(Decimal(e["amount"]), datetime.fromisoformat(e["expires_at"]))
            for e in expiring
        ),
    )


def _lot(data: Mapping[str, Any]) -> Lot:
    return Lot(
        id=data["id"],
        amount=Decimal(data["amount"]),
        remaining=Decimal(data["remaining"]),
        expires_at=datetime.fromisoformat(data["expires_at"]),
        transaction_id=data["transaction_id"],
    )


def _transaction_answer(response: httpx.Response) -> Transaction:
    return _transaction(decode_json(response), _replayed(response))


def _transaction(data: Mapping[str, Any], replayed: bool = False) -> Transaction:
    return Transaction(
        id=data["id"],
        transaction_type=data["transaction_type"],
        status=data["status"],
        user_id=data["user_id"],
        asset_code=data["asset_code"],
        amount=Decimal(data["amount"]),
        description=data["description"],
        idempotency_key=data["idempotency_key"],
        balance_after=_money(data["balance_after"]),
        refunded_amount=Decimal(data["refunded_amount"]),
        refund_of=data["refund_of"],
        created_at=datetime.fromisoformat(data["created_at"]),
        entries=tuple(_entry(e) for e in data["entries"]),
        metadata=dict(data["metadata"]),
        replayed=replayed,
    )


def _entry(data: Mapping[str, Any]) -> Entry:
    return Entry(
        account_type=data["account_type"],
        account_id=data["account_id"],
        amount=Decimal(data["amount"]),
        balance_before=Decimal(data["balance_before"]),
        balance_after=Decimal(data["balance_after"]),
    )


def _hold_answer(response: httpx.Response) -> Hold:
    return _hold(decode_json(response), _replayed(response))


def _hold(data: Mapping[str, Any], replayed: bool = False) -> Hold:
    return Hold(
        id=data["id"],
        user_id=data["user_id"],
        asset_code=data["asset_code"],
        amount=Decimal(data["amount"]),
        captured_amount=Decimal(data["captured_amount"]),
        status=data["status"],
        description=data["description"],
        expires_at=datetime.fromisoformat(data["expires_at"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        transactions=tuple(data["transactions"]),
        metadata=dict(data["metadata"]),
        replayed=replayed,
    )
