"""Administration (scope ``admin``): metrics, assets and their supply, the ledger audit, and
freezes of users' accounts."""

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Path, Query
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from wallet.limits import (
    ASSET_CODE_PATTERN,
    CURSOR_LENGTH_MAX,
    FREEZE_LOG_PAGE_SIZE_DEFAULT,
    FREEZE_LOG_PAGE_SIZE_MAX,
    USER_ID_PATTERN,
)
from wallet.service.assets import new_asset
from wallet.service.freezes import OPEN_ACTOR, freeze_view
from wallet.service.verify import verify_ledger

from ..deps import KeyOwner, Service
from ..docs import COMMON, problems
from ..jsonbody import ExactJSONRoute
from ..models import (
    AssetCreate,
    AssetRead,
    FreezeCreate,
    FreezeRead,
    FreezesRead,
    SupplyRead,
    Unfreeze,
    UnfreezeRead,
    VerifyRead,
)
from ..responses import json_response

router = APIRouter(tags=["admin"], route_class=ExactJSONRoute)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format",
            "content": {CONTENT_TYPE_LATEST: {"example": "wallet_write_queue_depth 0.0\n"}},
        },
        **problems("unavailable", "internal_error"),
    },
)
def metrics(service: Service) -> Response:
    return Response(service.metrics.exposition(service.database), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/admin/assets/{asset_code}/supply",
    response_model=SupplyRead,
    summary="Where an asset's supply is: treasury, users, pending holds",
    responses=problems("asset_not_found", *COMMON),
)
def get_supply(
    asset_code: Annotated[str, Path(pattern=ASSET_CODE_PATTERN, examples=["GC"])],
    service: Service,
) -> dict[str, object]:
    return service.assets.supply(asset_code).view()


@router.post(
    "/admin/assets",
    status_code=201,
    response_model=AssetRead,
    summary="Add an asset, with its treasury and its whole supply, in one unit of work",
    responses=problems("asset_exists", "payload_too_large", *COMMON),
)
def add_asset(body: AssetCreate, service: Service) -> dict[str, object]:
    [asset] = service.assets.add([new_asset(body.code, body.name, body.scale, body.supply)])
    return {"code": asset.code, "name": asset.name, "scale": asset.scale}


@router.get(
    "/admin/verify",
    response_model=VerifyRead,
    summary="Recompute every balance from entries and check every invariant of the ledger",
    responses=problems(*COMMON),
)
def verify(service: Service) -> dict[str, object]:
    return dataclasses.asdict(verify_ledger(service.database))


UserIdPath = Annotated[str, Path(pattern=USER_ID_PATTERN, examples=["user_001"])]
_FREEZE_PROBLEMS = ("user_not_found", "payload_too_large", *COMMON)


@router.post(
    "/admin/users/{user_id}/freeze",
    status_code=201,
    response_model=FreezeRead,
    summary="Freeze a user's account in one asset, or in all of them",
    responses={
        200: {"model": FreezeRead, "description": "Already frozen: the freeze in force, unchanged"},
        **problems(*_FREEZE_PROBLEMS),
    },
)
def freeze_user(
    user_id: UserIdPath, body: FreezeCreate, service: Service, key_owner: KeyOwner
) -> Response:
    """Every request-made movement of the account (top-up, bonus, purchase, refund, hold
    placement and capture) is refused with 422 account_frozen from the next unit of work, in
    every process; hold expiry and releases go on. 201 with the new freeze (logged, and an
    `account.frozen` event); 200 with the freeze already in force (its own reason, author and
    time), when there is one of that user and asset: nothing is logged or emitted then.
    """
    freeze, created = service.freezes.freeze(
        user_id, body.asset_code, body.reason, key_owner or OPEN_ACTOR
    )
    return json_response(freeze_view(freeze), 201 if created else 200)


@router.post(
    "/admin/users/{user_id}/unfreeze",
    response_model=UnfreezeRead,
    summary="Lift a freeze of a user's account: of one asset, or the freeze of all assets",
    responses=problems(*_FREEZE_PROBLEMS),
)
def unfreeze_user(
    user_id: UserIdPath, service: Service, key_owner: KeyOwner, body: Unfreeze | None = None
) -> Response:
    """Lifts the freeze named by `asset_code` (left out: the freeze of all assets; a freeze of
    one asset is lifted by its own unfreeze). `lifted` is the freeze lifted (logged, and an
    `account.unfrozen` event), or null when none was in force: nothing changes then. Without a
    `reason`, the log and the event say "no reason given".
    """
    body = body or Unfreeze()
    lifted = service.freezes.unfreeze(
        user_id, body.asset_code, body.reason, key_owner or OPEN_ACTOR
    )
    return json_response(
        {
            "user_id": user_id,
            "asset_code": body.asset_code,
            "lifted": None if lifted is None else freeze_view(lifted),
        }
    )


@router.get(
    "/admin/users/{user_id}/freezes",
    response_model=FreezesRead,
    summary="A user's freezes in force and its freeze log, newest first",
    responses=problems("user_not_found", *COMMON),
)
def list_freezes(
    user_id: UserIdPath,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=FREEZE_LOG_PAGE_SIZE_MAX)] = FREEZE_LOG_PAGE_SIZE_DEFAULT,
    cursor: Annotated[str | None, Query(min_length=1, max_length=CURSOR_LENGTH_MAX)] = None,
) -> Response:
    """`in_force`: every freeze in force (at most one per asset and one of all assets).
    `log`: a page of every freeze and unfreeze (who: the API key's id, "cli" or "open"; when;
    why), newest first; `next_cursor` continues it.
    """
    return json_response(service.freezes.of_user(user_id, limit, cursor))
