"""Administration (scope ``admin``): metrics, assets and their supply, the ledger audit,
freezes of users' accounts, daily limits, and balance monitors."""

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from wallet.limits import (
    ASSET_CODE_PATTERN,
    CURSOR_LENGTH_MAX,
    FREEZE_LOG_PAGE_SIZE_DEFAULT,
    FREEZE_LOG_PAGE_SIZE_MAX,
    LIMIT_PAGE_SIZE_DEFAULT,
    LIMIT_PAGE_SIZE_MAX,
    MONITOR_PAGE_SIZE_DEFAULT,
    MONITOR_PAGE_SIZE_MAX,
    USER_ID_PATTERN,
)
from wallet.service.assets import asset_view, new_asset
from wallet.service.freezes import OPEN_ACTOR, freeze_view
from wallet.service.verify import verify_ledger

from ..deps import IdPath, KeyOwner, Service
from ..docs import COMMON, problems
from ..jsonbody import ExactJSONRoute
from ..models import (
    AssetCreate,
    AssetRead,
    AssetUpdate,
    FreezeCreate,
    FreezeRead,
    FreezesRead,
    LimitRead,
    LimitsPut,
    LimitsRead,
    MonitorCreate,
    MonitorRead,
    MonitorsRead,
    SupplyRead,
    Unfreeze,
    UnfreezeRead,
    VerifyRead,
)
from ..responses import json_response, page_response

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
    summary="Where an asset's supply is: treasury, users, pending holds, expired",
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
    asset = new_asset(body.code, body.name, body.scale, body.supply, body.expires_after_days)
    [added] = service.assets.add([asset])
    return asset_view(added)


AssetCodePath = Annotated[str, Path(pattern=ASSET_CODE_PATTERN, examples=["GC"])]


@router.patch(
    "/admin/assets/{asset_code}",
    response_model=AssetRead,
    summary="Change how long an asset's credits last, for the credits made from now on",
    responses=problems("asset_not_found", "payload_too_large", *COMMON),
)
def update_asset(
    asset_code: AssetCodePath, body: AssetUpdate, service: Service
) -> dict[str, object]:
    """`expires_after_days`: the top-ups and bonuses made after the change expire that many
    days after they are made (null: never); the lots made before keep their expiry. The
    change applies at once in the process that answers, and within 5 seconds in every other
    process of the service. A body without the member changes nothing.
    """
    assets = service.assets
    if "expires_after_days" not in body.model_fields_set:
        return asset_view(assets.get(asset_code))
    return asset_view(assets.set_expiry(asset_code, body.expires_after_days))


UserIdPath = Annotated[str, Path(pattern=USER_ID_PATTERN, examples=["user_001"])]


@router.put(
    "/admin/limits/{asset_code}",
    response_model=LimitRead,
    summary="Set what any one user may spend and receive of an asset per UTC day",
    responses=problems("asset_not_found", "payload_too_large", *COMMON),
)
def put_asset_limit(asset_code: AssetCodePath, body: LimitsPut, service: Service) -> dict[str, Any]:
    return service.limits.set(asset_code, None, body.debit_per_day, body.credit_per_day)


@router.put(
    "/admin/users/{user_id}/limits/{asset_code}",
    response_model=LimitRead,
    summary="Override an asset's daily limit for one user (null: no limit for this user)",
    responses=problems("asset_not_found", "payload_too_large", *COMMON),
)
def put_user_limit(
    user_id: UserIdPath, asset_code: AssetCodePath, body: LimitsPut, service: Service
) -> dict[str, Any]:
    return service.limits.set(asset_code, user_id, body.debit_per_day, body.credit_per_day)


@router.delete(
    "/admin/users/{user_id}/limits/{asset_code}",
    status_code=204,
    response_class=Response,
    summary="Remove a user's override: the asset's daily limit applies to them again",
    responses=problems("asset_not_found", *COMMON),
)
def delete_user_limit(user_id: UserIdPath, asset_code: AssetCodePath, service: Service) -> Response:
    service.limits.remove(asset_code, user_id)
    return Response(status_code=204)


@router.get(
    "/admin/limits",
    response_model=LimitsRead,
    summary="The daily limits: each asset's, then its users' overrides, a page at a time",
    responses=problems(*COMMON),
)
def list_limits(
    service: Service,
    asset_code: Annotated[str | None, Query(pattern=ASSET_CODE_PATTERN)] = None,
    user_id: Annotated[str | None, Query(pattern=USER_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=LIMIT_PAGE_SIZE_MAX)] = LIMIT_PAGE_SIZE_DEFAULT,
    cursor: Annotated[str | None, Query(min_length=1, max_length=CURSOR_LENGTH_MAX)] = None,
) -> Response:
    page = service.limits.page(limit=limit, cursor=cursor, asset_code=asset_code, user_id=user_id)
    return page_response(page)


@router.get(
    "/admin/verify",
    response_model=VerifyRead,
    summary="Recompute every balance from entries and check every invariant of the ledger",
    responses=problems(*COMMON),
)
def verify(service: Service) -> dict[str, object]:
    return dataclasses.asdict(verify_ledger(service.database))


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


@router.post(
    "/admin/monitors",
    status_code=201,
    response_model=MonitorRead,
    summary="Watch a balance: an event each time it crosses a threshold",
    responses=problems("payload_too_large", *COMMON),
)
def create_monitor(body: MonitorCreate, service: Service) -> dict[str, Any]:
    monitors = service.monitors
    monitor = monitors.create(body.asset_code, body.user_id, body.condition, body.threshold)
    return monitors.view(monitor)


@router.get(
    "/admin/monitors",
    response_model=MonitorsRead,
    summary="The balance monitors, oldest first",
    responses=problems(*COMMON),
)
def list_monitors(
    service: Service,
    limit: Annotated[int, Query(ge=1, le=MONITOR_PAGE_SIZE_MAX)] = MONITOR_PAGE_SIZE_DEFAULT,
    cursor: Annotated[str | None, Query(min_length=1, max_length=CURSOR_LENGTH_MAX)] = None,
) -> dict[str, Any]:
    return dataclasses.asdict(service.monitors.page(limit, cursor))


@router.get(
    "/admin/monitors/{monitor_id}",
    response_model=MonitorRead,
    summary="One balance monitor",
    responses=problems("monitor_not_found", *COMMON),
)
def get_monitor(monitor_id: IdPath, service: Service) -> dict[str, Any]:
    monitors = service.monitors
    return monitors.view(monitors.get(monitor_id))


@router.delete(
    "/admin/monitors/{monitor_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a balance monitor: the writes that follow emit nothing for it",
    responses=problems("monitor_not_found", *COMMON),
)
def delete_monitor(monitor_id: IdPath, service: Service) -> Response:
    service.monitors.delete(monitor_id)
    return Response(status_code=204)
