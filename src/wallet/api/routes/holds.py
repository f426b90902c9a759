"""Holds: place funds aside, then capture or release them."""

import functools
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from wallet.domain.holds import HoldAction
from wallet.limits import (
    CURSOR_LENGTH_MAX,
    HOLD_PAGE_SIZE_DEFAULT,
    HOLD_PAGE_SIZE_MAX,
    USER_ID_PATTERN,
)
from wallet.service.holds import HoldInput
from wallet.service.transactions import resolve_idempotency_key

from ..deps import IdempotencyKeyHeader, KeyOwner, Service
from ..docs import COMMON, problems
from ..jsonbody import ExactJSONRoute
from ..models import HoldCapture, HoldCreate, HoldRead, HoldRelease, HoldsRead
from ..responses import json_response, outcome_response, page_response

router = APIRouter(tags=["holds"], route_class=ExactJSONRoute)

HoldIdPath = Annotated[str, Path(min_length=1, max_length=64)]
_REPLAYABLE = {
    "description": "Done; or, with Idempotent-Replayed: true, the first answer again",
    "headers": {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}}},
}
_WRITE_PROBLEMS = (
    "idempotency_key_mismatch",
    "idempotency_key_reused",
    "payload_too_large",
    "overloaded",
    *COMMON,
)


@router.post(
    "/holds",
    status_code=201,
    response_model=HoldRead,
    summary="Set a user's funds aside until captured, released or expired",
    responses={
        201: _REPLAYABLE,
        **problems("user_not_found", "insufficient_funds", "account_frozen", *_WRITE_PROBLEMS),
    },
)
async def place_hold(
    body: HoldCreate,
    service: Service,
    key_owner: KeyOwner,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    request = HoldInput(
        user_id=body.user_id,
        asset_code=body.asset_code,
        amount=body.amount,
        expires_in_s=body.expires_in_seconds,
        description=body.description,
        idempotency_key=resolve_idempotency_key(idempotency_key, body.idempotency_key),
        metadata=body.metadata,
    )
    return outcome_response(await service.holds.place(request, key_owner), 201)


@router.get(
    "/holds",
    response_model=HoldsRead,
    summary="A user's holds, newest first, a page at a time",
    responses=problems(*COMMON),
)
async def list_holds(
    service: Service,
    user_id: Annotated[str, Query(pattern=USER_ID_PATTERN)],
    status: Literal["pending", "captured", "released", "expired"] | None = None,
    limit: Annotated[int, Query(ge=1, le=HOLD_PAGE_SIZE_MAX)] = HOLD_PAGE_SIZE_DEFAULT,
    cursor: Annotated[str | None, Query(min_length=1, max_length=CURSOR_LENGTH_MAX)] = None,
) -> Response:
    page = await service.read(
        functools.partial(service.holds.of_user, user_id, status=status, limit=limit, cursor=cursor)
    )
    return page_response(page)


@router.get(
    "/holds/{hold_id}",
    response_model=HoldRead,
    summary="One hold",
    responses=problems("hold_not_found", *COMMON),
)
async def get_hold(hold_id: HoldIdPath, service: Service) -> Response:
    return json_response(await service.read(service.holds.get, hold_id))


@router.post(
    "/holds/{hold_id}/capture",
    response_model=HoldRead,
    summary="Capture all of a hold, or part of it (the rest goes back to the user)",
    responses={
        200: _REPLAYABLE,
        **problems(
            "hold_not_found",
            "hold_expired",
            "hold_not_pending",
            "account_frozen",
            *_WRITE_PROBLEMS,
        ),
    },
)
async def capture_hold(
    hold_id: HoldIdPath,
    service: Service,
    key_owner: KeyOwner,
    body: HoldCapture | None = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    body = body or HoldCapture()
    key = resolve_idempotency_key(idempotency_key, body.idempotency_key)
    outcome = await service.holds.settle(hold_id, HoldAction.CAPTURE, body.amount, key, key_owner)
    return outcome_response(outcome, 200)


@router.post(
    "/holds/{hold_id}/release",
    response_model=HoldRead,
    summary="Release all of a hold back to the user",
    responses={
        200: _REPLAYABLE,
        **problems("hold_not_found", "hold_not_pending", *_WRITE_PROBLEMS),
    },
)
async def release_hold(
    hold_id: HoldIdPath,
    service: Service,
    key_owner: KeyOwner,
    body: HoldRelease | None = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    body = body or HoldRelease()
    key = resolve_idempotency_key(idempotency_key, body.idempotency_key)
    outcome = await service.holds.settle(hold_id, HoldAction.RELEASE, None, key, key_owner)
    return outcome_response(outcome, 200)
