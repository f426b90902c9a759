"""A user's balances."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from wallet.limits import ASSET_CODE_PATTERN, USER_ID_PATTERN

from ..deps import Service
from ..docs import COMMON, problems
from ..models import BalanceRead, BalancesRead

router = APIRouter(tags=["balances"])

UserIdPath = Annotated[str, Path(pattern=USER_ID_PATTERN, examples=["user_001"])]
AssetPath = Annotated[str, Path(pattern=ASSET_CODE_PATTERN, examples=["GC"])]


@router.get(
    "/balance/{user_id}",
    response_model=BalancesRead,
    response_model_exclude_none=True,
    summary="Every balance of a user, zeros included",
    responses=problems("user_not_found", *COMMON),
)
def get_balances(user_id: UserIdPath, service: Service) -> dict[str, object]:
    return {"user_id": user_id, "balances": service.balances(user_id)}


@router.get(
    "/balance/{user_id}/{asset_code}",
    response_model=BalanceRead,
    response_model_exclude_none=True,
    summary="A user's balance in one asset, now or at a past instant",
    responses=problems("user_not_found", "asset_not_found", *COMMON),
)
def get_balance(
    user_id: UserIdPath,
    asset_code: AssetPath,
    service: Service,
    as_of: Annotated[
        datetime | None,
        Query(
            description="An RFC 3339 instant: the balance just after the last entry at or "
            "before it (0 before the account's first entry).",
            examples=["2026-11-25T08:00:00Z"],
        ),
    ] = None,
) -> dict[str, str]:
    return service.balance(user_id, asset_code, as_of)
