"""A user's balances."""

from typing import Annotated

from fastapi import APIRouter, Path

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
    summary="Every balance of a user, zeros included",
    responses=problems("user_not_found", *COMMON),
)
def get_balances(user_id: UserIdPath, service: Service) -> dict[str, object]:
    return {"user_id": user_id, "balances": service.balances(user_id)}


@router.get(
    "/balance/{user_id}/{asset_code}",
    response_model=BalanceRead,
    summary="A user's balance in one asset",
    responses=problems("user_not_found", "asset_not_found", *COMMON),
)
def get_balance(user_id: UserIdPath, asset_code: AssetPath, service: Service) -> dict[str, str]:
    return service.balance(user_id, asset_code)
