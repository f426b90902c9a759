"""Posting transactions and reading them back."""

import functools
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from wallet.limits import (
    ASSET_CODE_PATTERN,
    CURSOR_LENGTH_MAX,
    HISTORY_PAGE_SIZE_DEFAULT,
    HISTORY_PAGE_SIZE_MAX,
    USER_ID_PATTERN,
)
from wallet.service.transactions import resolve_idempotency_key

from ..deps import IdempotencyKeyHeader, IdPath, KeyOwner, Service
from ..docs import COMMON, problems
from ..jsonbody import ExactJSONRoute
from ..models import (
    AnyTransactionType,
    BatchCreate,
    BatchRead,
    HistoryRead,
    PostableType,
    TransactionCreate,
    TransactionRead,
    TransactionsRead,
)
from ..queries import (
    HISTORY_PARAMETERS,
    METADATA_FILTER_DOC,
    SEARCH_PARAMETERS,
    metadata_filters,
)
from ..responses import json_response, outcome_response, page_response

router = APIRouter(tags=["transactions"], route_class=ExactJSONRoute)


@router.post(
    "/transaction",
    status_code=201,
    response_model=TransactionRead,
    summary="Post a top-up, bonus, purchase or refund",
    responses={
        201: {
            "description": "Created; or, with Idempotent-Replayed: true, the first answer again",
            "headers": {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}}},
        },
        **problems(
            "idempotency_key_mismatch",
            "user_not_found",
            "transaction_not_found",
            "payload_too_large",
            "validation_error",
            "insufficient_funds",
            "refund_exceeds_original",
            "not_refundable",
            "account_frozen",
            "idempotency_key_reused",
            "unavailable",
            "overloaded",
            "internal_error",
        ),
    },
)
async def post_transaction(
    body: TransactionCreate,
    service: Service,
    key_owner: KeyOwner,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Served by api/hot.py when the request is well-formed; this route answers the rest."""
    key = resolve_idempotency_key(idempotency_key, body.idempotency_key)
    return outcome_response(await service.transactions.post(body.to_input(key), key_owner), 201)


@router.post(
    "/transaction/batch",
    status_code=201,
    response_model=BatchRead,
    summary="Post several transactions in order, all or none",
    responses={
        201: {
            "description": "Created; or, with Idempotent-Replayed: true, the first answer again",
            "headers": {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}}},
        },
        **problems(
            "idempotency_key_mismatch",
            "payload_too_large",
            "validation_error",
            "batch_failed",
            "idempotency_key_reused",
            "unavailable",
            "overloaded",
            "internal_error",
        ),
    },
)
async def post_batch(
    body: BatchCreate,
    service: Service,
    key_owner: KeyOwner,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    key = resolve_idempotency_key(idempotency_key, body.idempotency_key)
    items = [item.to_item() for item in body.transactions]
    return outcome_response(await service.transactions.post_batch(items, key, key_owner), 201)


@router.get(
    "/transaction/{transaction_id}",
    response_model=TransactionRead,
    summary="One transaction with its entries",
    responses=problems("transaction_not_found", *COMMON),
)
async def get_transaction(transaction_id: IdPath, service: Service) -> Response:
    return json_response(await service.read(service.transactions.get, transaction_id))


Limit = Annotated[int, Query(ge=1, le=HISTORY_PAGE_SIZE_MAX)]
Cursor = Annotated[str | None, Query(min_length=1, max_length=CURSOR_LENGTH_MAX)]
AssetCodeQuery = Annotated[str | None, Query(pattern=ASSET_CODE_PATTERN)]


@router.get(
    "/transaction/{user_id}/history",
    response_model=HistoryRead,
    summary="A user's transactions, newest first, a page at a time",
    responses=problems("user_not_found", "asset_not_found", *COMMON),
    openapi_extra={"parameters": [METADATA_FILTER_DOC]},
)
async def get_history(
    request: Request,
    user_id: Annotated[str, Path(pattern=USER_ID_PATTERN)],
    service: Service,
    limit: Limit = HISTORY_PAGE_SIZE_DEFAULT,
    cursor: Cursor = None,
    asset_code: AssetCodeQuery = None,
    transaction_type: PostableType | None = None,
) -> Response:
    """Served by api/hot.py when the query is plain; this route answers the rest."""
    metadata = metadata_filters(request, HISTORY_PARAMETERS)
    page = await service.read(
        functools.partial(
            service.transactions.history,
            user_id,
            limit=limit,
            cursor=cursor,
            asset_code=asset_code,
            transaction_type=transaction_type,
            metadata=metadata,
        )
    )
    return page_response(page, user_id=user_id)


@router.get(
    "/transactions",
    response_model=TransactionsRead,
    summary="Transactions across users, newest first: find them by user, kind or reference",
    responses=problems("asset_not_found", *COMMON),
    openapi_extra={"parameters": [METADATA_FILTER_DOC]},
)
async def list_transactions(
    request: Request,
    service: Service,
    limit: Limit = HISTORY_PAGE_SIZE_DEFAULT,
    cursor: Cursor = None,
    user_id: Annotated[str | None, Query(pattern=USER_ID_PATTERN)] = None,
    asset_code: AssetCodeQuery = None,
    transaction_type: AnyTransactionType | None = None,
) -> Response:
    """``GET /transactions?metadata[order_id]=A-1042`` finds an order's transactions at the cost
    of an index lookup, whatever the ledger's size.
    """
    metadata = metadata_filters(request, SEARCH_PARAMETERS)
    page = await service.read(
        functools.partial(
            service.transactions.search,
            limit=limit,
            cursor=cursor,
            user_id=user_id,
            asset_code=asset_code,
            transaction_type=transaction_type,
            metadata=metadata,
        )
    )
    return page_response(page)
