"""Administration (scope ``admin``): metrics, assets and their supply, the ledger audit, balance
monitors."""

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from wallet.limits import (
    ASSET_CODE_PATTERN,
    CURSOR_LENGTH_MAX,
    MONITOR_PAGE_SIZE_DEFAULT,
    MONITOR_PAGE_SIZE_MAX,
)
from wallet.service.assets import new_asset
from wallet.service.verify import verify_ledger

from ..deps import Service
from ..docs import COMMON, problems
from ..jsonbody import ExactJSONRoute
from ..models import (
    AssetCreate,
    AssetRead,
    MonitorCreate,
    MonitorRead,
    MonitorsRead,
    SupplyRead,
    VerifyRead,
)

router = APIRouter(tags=["admin"], route_class=ExactJSONRoute)

MonitorId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[\x21-\x7e]+$",
        examples=["019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d"],
    ),
]


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
def get_monitor(monitor_id: MonitorId, service: Service) -> dict[str, Any]:
    monitors = service.monitors
    return monitors.view(monitors.get(monitor_id))


@router.delete(
    "/admin/monitors/{monitor_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a balance monitor: the writes that follow emit nothing for it",
    responses=problems("monitor_not_found", *COMMON),
)
def delete_monitor(monitor_id: MonitorId, service: Service) -> Response:
    service.monitors.delete(monitor_id)
    return Response(status_code=204)
