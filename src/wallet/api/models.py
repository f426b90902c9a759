"""Request and response models of the HTTP contract (../shared/API.md), with examples for /docs.

Amounts arrive as JSON numbers (parsed exactly, see jsonbody) or decimal strings, and leave as
strings with exactly the asset's scale of decimals.
"""

import re
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from wallet.domain.ledger import POSTABLE_TRANSACTION_TYPES, TransactionType
from wallet.domain.money import parse_amount
from wallet.limits import (
    AMOUNT_LENGTH_MAX,
    ASSET_CODE_PATTERN,
    BATCH_SIZE_MAX,
    DESCRIPTION_LENGTH_MAX,
    EXPIRES_AFTER_DAYS_MAX,
    FREEZE_REASON_LENGTH_MAX,
    HOLD_EXPIRES_IN_S_DEFAULT,
    HOLD_EXPIRES_IN_S_MAX,
    IDEMPOTENCY_KEY_LENGTH_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    METADATA_KEY_PATTERN,
    METADATA_MEMBERS_MAX,
    METADATA_VALUE_LENGTH_MAX,
    MONITOR_PAGE_SIZE_MAX,
    SCALE_MAX,
    USER_ID_PATTERN,
    WEBHOOK_URL_LENGTH_MAX,
)
from wallet.service.activity import ACTIVITY_TYPES
from wallet.service.clock import parse_instant_us
from wallet.service.events import EVENT_TYPES
from wallet.service.transactions import TransactionInput
from wallet.service.webhooks import EVERY_TYPE

# The kinds a client may post (and filter a history by), from the domain's one list: a Literal
# built from it validates and documents them (OpenAPI's enum) exactly as a written one would.
POSTABLE_TYPES: tuple[str, ...] = tuple(kind.value for kind in POSTABLE_TRANSACTION_TYPES)
# Every kind a transaction may have (a filter of GET /transactions), from the same enum.
TRANSACTION_TYPES: tuple[str, ...] = tuple(kind.value for kind in TransactionType)
if TYPE_CHECKING:
    PostableType = str
    AnyTransactionType = str
else:
    PostableType = Literal[POSTABLE_TYPES]
    AnyTransactionType = Literal[TRANSACTION_TYPES]

# A decimal string as domain/money.py reads it (parse_amount).
_DECIMAL_STRING_SCHEMA = {
    "type": "string",
    "pattern": r"^[0-9]+(\.[0-9]+)?$",
    "maxLength": AMOUNT_LENGTH_MAX,
}
Amount = Annotated[
    Decimal,
    PlainValidator(parse_amount),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000_000},
                _DECIMAL_STRING_SCHEMA,
            ],
            "description": "Major units: a JSON number or a decimal string, at most the asset's "
            "scale of decimals, greater than 0 and at most 1,000,000,000.",
            "examples": ["100.50", 25],
        }
    ),
]
UserId = Annotated[str, Field(pattern=USER_ID_PATTERN, examples=["user_001"])]
AssetCode = Annotated[str, Field(min_length=1, max_length=10, examples=["GC"])]
IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=IDEMPOTENCY_KEY_LENGTH_MAX,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        examples=["order-7f3a-2026-11-25"],
    ),
]
# Any text but NUL, which PostgreSQL cannot store in TEXT: refused alike on both backends.
Description = Annotated[str, Field(max_length=DESCRIPTION_LENGTH_MAX, pattern=r"^[^\x00]*$")]
TransactionId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[\x21-\x7e]+$",
        examples=["019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d"],
    ),
]
MoneyString = Annotated[str, Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", examples=["75.00"])]
MetadataKey = Annotated[str, StringConstraints(pattern=METADATA_KEY_PATTERN)]
MetadataValue = Annotated[
    str, StringConstraints(max_length=METADATA_VALUE_LENGTH_MAX, pattern=r"^[^\x00]*$")
]
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    Field(
        max_length=METADATA_MEMBERS_MAX,
        description="The caller's references (an order id, a receipt): at most "
        f"{METADATA_MEMBERS_MAX} members, keys of 1 to 40 characters of A-Z a-z 0-9 _ . -, values "
        f"strings of at most {METADATA_VALUE_LENGTH_MAX} characters. Kept with the transaction "
        "forever, and searchable: GET /transactions?metadata[KEY]=VALUE.",
        examples=[{"order_id": "A-1042", "store": "ios"}],
    ),
]

_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _rfc3339(value: object) -> object:
    """The documented format only: pydantic alone would also take ``0.5`` as a Unix time."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("expires_at must be an RFC 3339 date-time such as 2026-11-25T08:00:00Z")
    return value


def _representable(moment: datetime) -> datetime:
    """An instant the ledger can name: its years are bounded (clock.py, parse_instant_us)."""
    parse_instant_us(moment)
    return moment


# When a credit's lot expires; whether it is in the future, and not too far, is checked against
# the service's clock (service/lots.py, lot_expiry).
ExpiresAt = Annotated[
    datetime,
    BeforeValidator(_rfc3339),
    AfterValidator(_representable),
    Field(
        description="Top-ups and bonuses only: an RFC 3339 instant in the future, at most ten "
        "years ahead, after which whatever is left of this credit expires.",
        examples=["2027-11-25T00:00:00Z"],
    ),
]


class RequestBody(BaseModel):
    """A request's body, or an object in one: a JSON object and nothing else.

    FastAPI validates a body with ``from_attributes``, which reads a model's fields off any
    Python object; a JSON number with a fraction is one here (a Decimal, jsonbody), so without
    this check a body of ``3.5e-60`` was taken as ``{}`` by a model whose fields are optional
    (a capture of the whole hold).
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _a_json_object(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return data
        raise PydanticCustomError("model_type", "Input should be a JSON object")


class BatchItem(RequestBody):
    """One transaction of a batch: a TransactionCreate without an idempotency key (the batch
    has one, for all of its items).
    """

    model_config = ConfigDict(extra="forbid")

    transaction_type: PostableType
    user_id: UserId | None = None
    asset_code: AssetCode | None = None
    amount: Amount | None = None
    description: Description | None = None
    refund_of: TransactionId | None = None
    metadata: Metadata | None = None
    expires_at: ExpiresAt | None = None

    def to_item(self) -> TransactionInput:
        """The service's input for one item of a batch (no key: the batch has it)."""
        return TransactionInput(
            transaction_type=self.transaction_type,
            user_id=self.user_id,
            asset_code=self.asset_code,
            amount=self.amount,
            description=self.description,
            refund_of=self.refund_of,
            metadata=self.metadata,
            expires_at=self.expires_at,
        )


class TransactionCreate(BatchItem):
    """A top-up, bonus, purchase, or refund of an earlier transaction."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "transaction_type": "topup",
                    "user_id": "user_001",
                    "asset_code": "GC",
                    "amount": 100.00,
                    "description": "Purchased 100 Gold Coins",
                },
                {
                    "transaction_type": "purchase",
                    "user_id": "user_001",
                    "asset_code": "GC",
                    "amount": "25.00",
                    "description": "Bought in-game item",
                    "idempotency_key": "k-123",
                },
                {
                    "transaction_type": "refund",
                    "refund_of": "019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d",
                    "amount": "10.00",
                    "description": "Item never delivered",
                },
            ]
        },
    )

    idempotency_key: IdempotencyKey | None = None

    def to_input(self, idempotency_key: str | None) -> TransactionInput:
        """The service's input, with the key resolved from the header and the body."""
        return TransactionInput(
            transaction_type=self.transaction_type,
            user_id=self.user_id,
            asset_code=self.asset_code,
            amount=self.amount,
            description=self.description,
            idempotency_key=idempotency_key,
            refund_of=self.refund_of,
            metadata=self.metadata,
            expires_at=self.expires_at,
        )


class BatchCreate(RequestBody):
    """Several transactions applied in order, each seeing the ones before it, all or none."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "transactions": [
                        {
                            "transaction_type": "purchase",
                            "user_id": "user_001",
                            "asset_code": "DI",
                            "amount": "10.00",
                            "description": "Trade 10 Diamonds",
                        },
                        {
                            "transaction_type": "topup",
                            "user_id": "user_001",
                            "asset_code": "GC",
                            "amount": "1000.00",
                            "description": "for 1,000 Gold Coins",
                        },
                    ],
                    "idempotency_key": "trade-7f3a",
                }
            ]
        },
    )

    transactions: Annotated[list[BatchItem], Field(min_length=1, max_length=BATCH_SIZE_MAX)]
    idempotency_key: IdempotencyKey | None = None


class EntryRead(BaseModel):
    account_type: Literal["user", "system"]
    account_id: str
    amount: MoneyString
    balance_before: MoneyString
    balance_after: MoneyString


class TransactionRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d",
                    "transaction_type": "purchase",
                    "status": "completed",
                    "user_id": "user_001",
                    "asset_code": "GC",
                    "amount": "25.00",
                    "description": "Bought in-game item",
                    "idempotency_key": "k-123",
                    "balance_after": "75.00",
                    "refunded_amount": "0.00",
                    "refund_of": None,
                    "created_at": "2026-11-25T08:00:00.123456Z",
                    "metadata": {"order_id": "A-1042"},
                    "entries": [
                        {
                            "account_type": "user",
                            "account_id": "user_001",
                            "amount": "-25.00",
                            "balance_before": "100.00",
                            "balance_after": "75.00",
                        },
                        {
                            "account_type": "system",
                            "account_id": "treasury",
                            "amount": "25.00",
                            "balance_before": "999999998000.00",
                            "balance_after": "999999998025.00",
                        },
                    ],
                }
            ]
        }
    )

    id: str
    transaction_type: str
    status: Literal["completed"]
    user_id: str | None
    asset_code: str
    amount: MoneyString
    description: str | None
    idempotency_key: str | None
    balance_after: MoneyString | None
    refunded_amount: MoneyString
    refund_of: str | None
    created_at: str
    metadata: dict[str, str]
    entries: list[EntryRead]


class BatchRead(BaseModel):
    id: str
    transactions: list[TransactionRead]


class TransactionsRead(BaseModel):
    """A page of transactions across users, newest first."""

    items: list[TransactionRead]
    next_cursor: str | None


class HistoryRead(BaseModel):
    user_id: str
    items: list[TransactionRead]
    next_cursor: str | None


class ExpiringRead(BaseModel):
    """What is left of one lot of the account, and when it expires."""

    amount: MoneyString
    expires_at: str


class BalanceRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "user_001",
                    "asset_code": "LP",
                    "balance": "75.00",
                    "held": "25.00",
                    "frozen": False,
                    "expiring": [{"amount": "40.00", "expires_at": "2027-11-25T08:00:00.000000Z"}],
                }
            ]
        }
    )

    user_id: str
    asset_code: str
    balance: MoneyString
    # The sum of the user's pending holds in the asset; not part of ``balance``. Absent with
    # ?as_of=, which answers the balance alone.
    held: MoneyString | None = None
    # Whether an operator has frozen the account (this asset, or all of the user's) now, even
    # with ?as_of=: a frozen account refuses every request-made movement (account_frozen).
    frozen: bool
    # The account's open lots that expire soonest (at most three), soonest first: what is left
    # of each and when it expires; [] when it has none. A lot past its expiry is shown until
    # the service moves what is left of it (within a minute). Absent with ?as_of=, which
    # answers the balance alone.
    expiring: list[ExpiringRead] | None = None
    # Only with ?as_of=: the instant the balance is of.
    as_of: str | None = None


class BalancesRead(BaseModel):
    user_id: str
    balances: list[BalanceRead]


class LotRead(BaseModel):
    """A credit that expires: its amount, what is left of it, and when the rest expires."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d",
                    "amount": "100.00",
                    "remaining": "40.00",
                    "expires_at": "2027-11-25T08:00:00.000000Z",
                    "transaction_id": "019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9e",
                }
            ]
        }
    )

    id: str
    amount: MoneyString
    remaining: MoneyString
    expires_at: str
    # The top-up or bonus that made the lot.
    transaction_id: str


class LotsRead(BaseModel):
    """A page of an account's open lots, soonest expiry first."""

    items: list[LotRead]
    next_cursor: str | None


# How many days an asset's credits last; null: they never expire.
ExpiresAfterDays = Annotated[
    int | None,
    Field(
        strict=True,
        ge=1,
        le=EXPIRES_AFTER_DAYS_MAX,
        description="The asset's top-ups and bonuses expire this many days after they are "
        f"made (1 to {EXPIRES_AFTER_DAYS_MAX}); null: they never expire.",
        examples=[365, None],
    ),
]


class AssetRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"code": "LP", "name": "Loyalty Points", "scale": 2, "expires_after_days": 365}
            ]
        }
    )

    code: str
    name: str
    scale: int
    expires_after_days: int | None


class RootRead(BaseModel):
    status: Literal["ok"]
    service: Literal["wallet"]
    version: str


class DatabaseHealth(BaseModel):
    status: Literal["ok", "unavailable"]
    backend: Literal["sqlite", "postgresql"]
    latency_ms: float | None


class HealthRead(BaseModel):
    status: Literal["ok", "unavailable"]
    database: DatabaseHealth
    auth: Literal["enabled", "disabled"]
    version: str


class ValidationProblemItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class BatchProblemItem(BaseModel):
    index: int
    code: str
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details, with the service's stable error ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str
    errors: list[ValidationProblemItem | BatchProblemItem] | None = None
    # On a 5xx: the request's X-Request-ID, which the service's log lines about it carry.
    request_id: str | None = None


class HoldCreate(RequestBody):
    """Set funds aside now, to capture or release later."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "user_id": "user_001",
                    "asset_code": "GC",
                    "amount": "25.00",
                    "description": "Marketplace order 7f3a",
                    "expires_in_seconds": 900,
                    "idempotency_key": "order-7f3a",
                }
            ]
        },
    )

    user_id: UserId
    asset_code: AssetCode
    amount: Amount
    description: Description | None = None
    expires_in_seconds: Annotated[int, Field(strict=True, ge=1, le=HOLD_EXPIRES_IN_S_MAX)] = (
        HOLD_EXPIRES_IN_S_DEFAULT
    )
    idempotency_key: IdempotencyKey | None = None
    metadata: Metadata | None = None


class HoldCapture(RequestBody):
    """Capture all of a hold, or ``amount`` of it (the rest goes back to the user)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"amount": "20.00"}, {}]}
    )

    amount: Amount | None = None
    idempotency_key: IdempotencyKey | None = None


class HoldRelease(RequestBody):
    """Release all of a hold back to the user."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"idempotency_key": "release-42"}, {}]}
    )

    idempotency_key: IdempotencyKey | None = None


class HoldRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d",
                    "user_id": "user_001",
                    "asset_code": "GC",
                    "amount": "25.00",
                    "captured_amount": "20.00",
                    "status": "captured",
                    "description": "Marketplace order 7f3a",
                    "expires_at": "2026-11-25T08:15:00.000000Z",
                    "created_at": "2026-11-25T08:00:00.000000Z",
                    "transactions": [
                        "019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9e",
                        "019abf3f-0a1b-7c2d-8e3f-4a5b6c7d8e9f",
                        "019abf3f-0a1b-7c2d-8e3f-4a5b6c7d8ea0",
                    ],
                    "metadata": {"order_id": "7f3a"},
                }
            ]
        }
    )

    id: str
    user_id: str
    asset_code: str
    amount: MoneyString
    captured_amount: MoneyString
    status: Literal["pending", "captured", "released", "expired"]
    description: str | None
    expires_at: str
    created_at: str
    transactions: list[str]
    metadata: dict[str, str]


class HoldsRead(BaseModel):
    items: list[HoldRead]
    next_cursor: str | None


class AssetCreate(RequestBody):
    """A new asset and its whole supply, issued to its treasury."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"code": "GEM", "name": "Gems", "scale": 0, "supply": "1000000000"},
                {
                    "code": "XP",
                    "name": "Season points",
                    "scale": 0,
                    "supply": "1000000000",
                    "expires_after_days": 90,
                },
            ]
        },
    )

    code: Annotated[str, Field(pattern=ASSET_CODE_PATTERN, examples=["GEM"])]
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$")]
    scale: Annotated[int, Field(ge=0, le=SCALE_MAX, strict=True)]
    supply: Annotated[
        Decimal,
        PlainValidator(parse_amount),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "number", "exclusiveMinimum": 0},
                    _DECIMAL_STRING_SCHEMA,
                ],
                "description": "Major units, at most the scale's decimals; at most 10^18 minor "
                "units.",
                "examples": ["1000000000"],
            }
        ),
    ]
    expires_after_days: ExpiresAfterDays = None


class AssetUpdate(RequestBody):
    """A change of an asset's expiry policy, for the credits made after it: a lot keeps the
    expiry it was made with. A member left out is left as it is."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"expires_after_days": 180}, {"expires_after_days": None}]},
    )

    expires_after_days: ExpiresAfterDays = None


# A daily limit in major units: as an Amount, or 0 (nothing that day); null is no limit.
LimitAmount = Annotated[
    Decimal | None,
    PlainValidator(lambda value: None if value is None else parse_amount(value)),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1_000_000_000},
                _DECIMAL_STRING_SCHEMA,
                {"type": "null"},
            ],
            "description": "Major units per UTC day, at most the asset's scale of decimals, 0 "
            "to 1,000,000,000; null: no limit.",
            "examples": ["50.00", None],
        }
    ),
]


class LimitsPut(RequestBody):
    """A daily limit: what one user may spend and receive of the asset per UTC day. Both
    members are required; null is no limit."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"debit_per_day": "50.00", "credit_per_day": None}]},
    )

    debit_per_day: LimitAmount
    credit_per_day: LimitAmount


class LimitRead(BaseModel):
    """An asset's limit for every user (``user_id`` null), or one user's override of it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "asset_code": "GC",
                    "user_id": None,
                    "debit_per_day": "50.00",
                    "credit_per_day": None,
                    "updated_at": "2026-11-25T08:00:00.000000Z",
                }
            ]
        }
    )

    asset_code: str
    user_id: str | None
    debit_per_day: MoneyString | None
    credit_per_day: MoneyString | None
    updated_at: str


class LimitsRead(BaseModel):
    items: list[LimitRead]
    next_cursor: str | None


class SupplyRead(BaseModel):
    """Where an asset's supply is: treasury + users + pending_holds + expired = supply."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "asset_code": "LP",
                    "supply": "1000000000000.00",
                    "treasury": "999999998500.00",
                    "users": "1490.00",
                    "pending_holds": "5.00",
                    "expired": "5.00",
                    "adds_up": True,
                }
            ]
        }
    )

    asset_code: str
    supply: MoneyString
    treasury: MoneyString
    users: MoneyString
    pending_holds: MoneyString
    # What was left of lots when they expired (the asset's `expired` account).
    expired: MoneyString
    adds_up: bool


class VerifyRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ok": True, "accounts_checked": 12, "transactions_checked": 9, "problems": []}
            ]
        }
    )

    ok: bool
    accounts_checked: int
    transactions_checked: int
    problems: list[str]


class ActivityTotal(BaseModel):
    count: int
    amount: MoneyString


class ActivityDay(BaseModel):
    date: str
    activity: dict[str, ActivityTotal]


def _activity_day(day: str, **totals: tuple[int, str]) -> dict[str, Any]:
    zero = (0, "0.00")
    return {
        "date": day,
        "activity": {
            kind: dict(zip(("count", "amount"), totals.get(kind, zero), strict=True))
            for kind in ACTIVITY_TYPES
        },
    }


_ACTIVITY_EXAMPLE: dict[str, Any] = {
    "asset_code": "GC",
    "days": 2,
    "from": "2026-11-24",
    "to": "2026-11-25",
    "transaction_types": list(ACTIVITY_TYPES),
    "daily": [
        _activity_day(
            "2026-11-24",
            topup=(3, "1250.00"),
            bonus=(1, "50.00"),
            purchase=(7, "310.25"),
            refund=(1, "25.00"),
        ),
        _activity_day("2026-11-25"),
    ],
}


class ActivityRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [_ACTIVITY_EXAMPLE]}, populate_by_name=True
    )

    asset_code: str
    days: int
    from_: str = Field(alias="from")
    to: str
    transaction_types: list[str]
    daily: list[ActivityDay]


class EventRead(BaseModel):
    """Something that changed in the ledger (API.md, "Events")."""

    id: str
    position: int
    type: str
    created_at: str
    data: dict[str, Any] = Field(
        description="A Transaction for transaction.created, a Hold for hold.*; see API.md"
    )


class EventsRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": "019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d",
                            "position": 1042,
                            "type": "hold.placed",
                            "created_at": "2026-11-25T08:00:00.123456Z",
                            "data": {"id": "019abf3e-…", "status": "pending"},
                        }
                    ],
                    "next_after": 1042,
                }
            ]
        }
    )

    items: list[EventRead]
    next_after: int = Field(description="Pass it as `after` to read on from here")


# Webhooks: an event type as a subscription names it, "*" for all of them.
if TYPE_CHECKING:
    SubscribedType = str
else:
    SubscribedType = Literal[(EVERY_TYPE, *EVENT_TYPES)]
EventTypes = Annotated[
    list[SubscribedType],
    Field(
        min_length=1,
        max_length=len(EVENT_TYPES),
        description='["*"] for every type, or a list of distinct event types.',
        examples=[["*"], ["transaction.created", "hold.expired"]],
    ),
]
WebhookUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=WEBHOOK_URL_LENGTH_MAX,
        description="An http:// or https:// URL; redirects are not followed.",
        examples=["https://example.com/hooks/wallet"],
    ),
]


class WebhookCreate(RequestBody):
    """A new endpoint: it receives the events made after its creation."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://example.com/hooks/wallet",
                    "event_types": ["*"],
                    "description": "Fraud checks",
                }
            ]
        },
    )

    url: WebhookUrl
    event_types: EventTypes = [EVERY_TYPE]
    description: Description | None = None


class WebhookUpdate(RequestBody):
    """Change an endpoint's URL, types or status; enabled again, it resumes where it stopped."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"status": "enabled"}, {"event_types": ["hold.expired"]}]},
    )

    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    status: Literal["enabled", "disabled"] | None = None


class WebhookReplay(RequestBody):
    """Deliver again every event after ``after``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"after": 1040}]})

    after: Annotated[int, Field(strict=True, ge=0)]


_WEBHOOK_EXAMPLE: dict[str, Any] = {
    "id": "019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d",
    "url": "https://example.com/hooks/wallet",
    "event_types": ["*"],
    "description": "Fraud checks",
    "status": "enabled",
    "created_at": "2026-11-25T08:00:00.000000Z",
    "last_delivered_position": 1042,
    "failing_since": None,
    "last_error": None,
}


class WebhookRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_WEBHOOK_EXAMPLE]})

    id: str
    url: str
    event_types: list[str]
    description: str | None
    status: Literal["enabled", "disabled"]
    created_at: str
    last_delivered_position: int
    failing_since: str | None
    last_error: str | None


class WebhookCreated(WebhookRead):
    """The new endpoint, with the secret its deliveries are signed with: shown this once."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**_WEBHOOK_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]
        }
    )

    secret: str


class WebhooksRead(BaseModel):
    items: list[WebhookRead]


class DeliveryAttemptRead(BaseModel):
    event_id: str
    position: int
    # The answer's status, if there was one; ``error`` is null for an acknowledgement.
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: str


class DeliveryAttemptsRead(BaseModel):
    """The latest attempts, newest first."""

    items: list[DeliveryAttemptRead]


# --- player protection: freezes -----------------------------------------------------------------

FreezeReason = Annotated[
    str,
    Field(
        min_length=1,
        max_length=FREEZE_REASON_LENGTH_MAX,
        pattern=r"^[^\x00]*$",
        examples=["suspected duplication exploit, ticket 4411"],
    ),
]


class FreezeCreate(RequestBody):
    """Freeze a user's account in one asset, or in all of them (``asset_code`` left out)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"reason": "suspected duplication exploit, ticket 4411"},
                {"reason": "chargeback under review", "asset_code": "GC"},
            ]
        },
    )

    reason: FreezeReason
    asset_code: AssetCode | None = None


class Unfreeze(RequestBody):
    """Lift a freeze: of one asset, or (``asset_code`` left out) the freeze of all assets."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "ticket 4411 closed"}, {"asset_code": "GC"}]},
    )

    reason: FreezeReason | None = None
    asset_code: AssetCode | None = None


class FreezeRead(BaseModel):
    """A freeze in force: of ``asset_code``, or of every asset of the user when it is null."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "user_001",
                    "asset_code": None,
                    "reason": "suspected duplication exploit, ticket 4411",
                    "frozen_by": "019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d",
                    "frozen_at": "2026-12-06T08:00:00.123456Z",
                }
            ]
        }
    )

    user_id: str
    asset_code: str | None
    reason: str
    # The id of the API key that froze it; "cli" from the command line; "open" when the service
    # runs without keys.
    frozen_by: str
    frozen_at: str


class UnfreezeRead(BaseModel):
    """What an unfreeze lifted: the freeze, or null when none was in force (nothing changed)."""

    user_id: str
    asset_code: str | None
    lifted: FreezeRead | None


class FreezeLogEntryRead(BaseModel):
    action: Literal["freeze", "unfreeze"]
    asset_code: str | None
    reason: str
    actor: str
    at: str


class FreezesRead(BaseModel):
    """A user's freezes in force, and a page of its freeze log; both newest first."""

    user_id: str
    in_force: list[FreezeRead]
    log: list[FreezeLogEntryRead]
    next_cursor: str | None


# Balance monitors (API.md, "Player protection").
_MONITOR_EXAMPLE: dict[str, Any] = {
    "id": "019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d",
    "asset_code": "GC",
    "user_id": None,
    "condition": "above",
    "threshold": "100000.00",
    "created_at": "2026-11-25T08:00:00.000000Z",
}


class MonitorCreate(RequestBody):
    """A threshold on a balance: one ``balance.threshold_crossed`` event each time a balance
    moves from not above to above it (``above``), or from not below to below it (``below``).
    Crossing back emits nothing and re-arms the monitor."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"asset_code": "GC", "condition": "above", "threshold": "100000"},
                {"asset_code": "GC", "user_id": "user_001", "condition": "below", "threshold": 5},
            ]
        },
    )

    asset_code: AssetCode
    user_id: Annotated[
        UserId | None, Field(description="One user's balance; null or absent: every user's")
    ] = None
    condition: Literal["above", "below"]
    threshold: Annotated[
        Amount, Field(description="Major units, at most the asset's scale of decimals")
    ]


class MonitorRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_MONITOR_EXAMPLE]})

    id: str
    asset_code: str
    user_id: str | None
    condition: Literal["above", "below"]
    threshold: MoneyString
    created_at: str


class MonitorsRead(BaseModel):
    """A page of monitors, oldest first."""

    items: list[MonitorRead] = Field(max_length=MONITOR_PAGE_SIZE_MAX)
    next_cursor: str | None
