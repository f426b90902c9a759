"""The second baseline: the service's routes as a user would first write them with FastAPI.

``@app.post("/transaction")`` taking a plain Pydantic model, response models declared on the
routes, handlers returning dicts and FastAPI's default JSON rendering: no custom route class, no
exact-JSON body parsing, no hot routes, no pre-rendered bytes. Like bench/baseline_app.py it
touches no database, answers the same fixed transaction, balance and history page
(bench/answers.py), validates the same bounds (wallet.limits) and is served by uvicorn with the
same settings: the two baselines differ only in how the HTTP layer is written. Against
baseline_app.py, bench/run.py's ratios say what the wallet costs on top of the service's own HTTP
layer; against this app, where the service stands beside the stack a user starts from.

Run it as ``PORT=8002 python bench/fastapi_app.py``; bench/run.py does.
"""

from __future__ import annotations

import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

# Like main.py: the wallet package from src/, installed or not (for wallet.limits alone).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import uvicorn
from fastapi import FastAPI, Header, Query
from fastapi import Path as PathParameter
from pydantic import BaseModel, Field

from answers import BALANCE, HISTORY, TRANSACTION
from wallet.limits import (
    AMOUNT_MAJOR_MAX,
    ASSET_CODE_PATTERN,
    DESCRIPTION_LENGTH_MAX,
    HISTORY_PAGE_SIZE_DEFAULT,
    HISTORY_PAGE_SIZE_MAX,
    IDEMPOTENCY_KEY_LENGTH_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    USER_ID_PATTERN,
)


class TransactionCreate(BaseModel):
    transaction_type: Literal["topup", "bonus", "purchase", "refund"]
    user_id: str | None = Field(default=None, pattern=USER_ID_PATTERN)
    asset_code: str | None = Field(default=None, pattern=ASSET_CODE_PATTERN)
    amount: Decimal | None = Field(default=None, gt=0, le=AMOUNT_MAJOR_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_LENGTH_MAX)
    refund_of: str | None = None
    idempotency_key: str | None = Field(
        default=None, max_length=IDEMPOTENCY_KEY_LENGTH_MAX, pattern=IDEMPOTENCY_KEY_PATTERN
    )


class EntryRead(BaseModel):
    account_type: str
    account_id: str
    amount: str
    balance_before: str
    balance_after: str


class TransactionRead(BaseModel):
    id: str
    transaction_type: str
    status: str
    user_id: str | None
    asset_code: str
    amount: str
    description: str | None
    idempotency_key: str | None
    balance_after: str | None
    created_at: str
    entries: list[EntryRead]


class BalanceRead(BaseModel):
    user_id: str
    asset_code: str
    balance: str


class HistoryRead(BaseModel):
    user_id: str
    items: list[TransactionRead]
    next_cursor: str | None


UserId = Annotated[str, PathParameter(pattern=USER_ID_PATTERN)]
AssetCode = Annotated[str, PathParameter(pattern=ASSET_CODE_PATTERN)]

app = FastAPI(title="Wallet benchmark baseline, plain FastAPI")


@app.get("/")
async def root() -> dict[str, str]:
    return {"status": "ok", "service": "fastapi"}


@app.post("/transaction", status_code=201, response_model=TransactionRead)
async def post_transaction(
    body: TransactionCreate,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=IDEMPOTENCY_KEY_LENGTH_MAX, pattern=IDEMPOTENCY_KEY_PATTERN),
    ] = None,
) -> dict[str, Any]:
    return TRANSACTION


@app.get("/balance/{user_id}/{asset_code}", response_model=BalanceRead)
async def get_balance(user_id: UserId, asset_code: AssetCode) -> dict[str, Any]:
    return BALANCE


@app.get("/transaction/{user_id}/history", response_model=HistoryRead)
async def get_history(
    user_id: UserId,
    limit: Annotated[int, Query(ge=1, le=HISTORY_PAGE_SIZE_MAX)] = HISTORY_PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    return HISTORY


def main() -> None:
    # The settings of bench/baseline_app.py (those of wallet.server.serve).
    uvicorn.run(
        app,
        host=os.environ.get("WALLET_HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8002")),
        log_level=os.environ.get("WALLET_LOG_LEVEL", "warning"),
        access_log=False,
        timeout_graceful_shutdown=10,
        server_header=False,
    )


if __name__ == "__main__":
    main()
