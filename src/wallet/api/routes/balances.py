"""A user's balances, and an account's open lots."""

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator, BeforeValidator
from starlette.responses import Response

from wallet.limits import (
    ASSET_CODE_PATTERN,
    CURSOR_LENGTH_MAX,
    LOT_PAGE_SIZE_DEFAULT,
    LOT_PAGE_SIZE_MAX,
    USER_ID_PATTERN,
)
from wallet.service.clock import parse_instant_us

from ..deps import Service
from ..docs import COMMON, problems
from ..models import BalanceRead, BalancesRead, LotsRead
from ..responses import json_response, page_response

router = APIRouter(tags=["balances"])

_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _rfc3339(value: object) -> object:
    """The documented format only: pydantic alone would also take ``0.5`` as a Unix time."""
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("as_of must be an RFC 3339 date-time such as 2026-11-25T08:00:00Z")
    return value


def _representable(moment: datetime) -> datetime:
    """An instant the ledger can name: its years are bounded (clock.py, parse_instant_us)."""
    parse_instant_us(moment)
    return moment


UserIdPath = Annotated[str, Path(pattern=USER_ID_PATTERN, examples=["user_001"])]
AssetPath = Annotated[str, Path(pattern=ASSET_CODE_PATTERN, examples=["GC"])]


@router.get(
    "/balance/{user_id}",
    response_model=BalancesRead,
    response_model_exclude_none=True,
    summary="Every balance of a user, zeros included",
    responses=problems("user_not_found", *COMMON),
)
async def get_balances(user_id: UserIdPath, service: Service) -> Response:
    balances = await service.read(service.balances.of_user, user_id)
    return json_response({"user_id": user_id, "balances": balances})


@router.get(
    "/balance/{user_id}/{asset_code}",
    response_model=BalanceRead,
    response_model_exclude_none=True,
    summary="A user's balance in one asset, now or at a past instant",
    responses=problems("user_not_found", "asset_not_found", *COMMON),
)
async def get_balance(
    user_id: UserIdPath,
    asset_code: AssetPath,
    service: Service,
    as_of: Annotated[
        Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_representable)] | None,
        Query(
            description="An RFC 3339 instant: the balance just after the last entry at or "
            "before it (0 before the account's first entry). It must fall in the years 1 to "
            "9999 in UTC, its offset applied.",
            examples=["2026-11-25T08:00:00Z"],
        ),
    ] = None,
) -> Response:
    return json_response(await service.read(service.balances.get, user_id, asset_code, as_of))


@router.get(
    "/balance/{user_id}/{asset_code}/lots",
    response_model=LotsRead,
    summary="A user's open lots in one asset (credits that expire), soonest expiry first",
    responses=problems("user_not_found", "asset_not_found", *COMMON),
)
async def get_lots(
    user_id: UserIdPath,
    asset_code: AssetPath,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=LOT_PAGE_SIZE_MAX)] = LOT_PAGE_SIZE_DEFAULT,
    cursor: Annotated[str | None, Query(min_length=1, max_length=CURSOR_LENGTH_MAX)] = None,
) -> Response:
    """Each top-up or bonus of an asset whose credits expire (or with its own `expires_at`) is
    a lot; it is open while something is left of it, and what is left moves to the asset's
    `expired` account within a minute after `expires_at`. Credits made without an expiry are
    no lot and never expire. `next_cursor` continues the list (null: no more). A user who has
    no account in the asset has no lots.
    """
    page = await service.read(service.balances.lots, user_id, asset_code, limit, cursor)
    return page_response(page)
