"""A user's balances."""

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BeforeValidator
from starlette.responses import Response

from wallet.limits import ASSET_CODE_PATTERN, USER_ID_PATTERN

from ..deps import Service
from ..docs import COMMON, problems
from ..models import BalanceRead, BalancesRead
from ..responses import json_response

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
        Annotated[datetime, BeforeValidator(_rfc3339)] | None,
        Query(
            description="An RFC 3339 instant: the balance just after the last entry at or "
            "before it (0 before the account's first entry).",
            examples=["2026-11-25T08:00:00Z"],
        ),
    ] = None,
) -> Response:
    return json_response(await service.read(service.balances.get, user_id, asset_code, as_of))
