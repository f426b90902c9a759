"""Administration (scope ``admin``): metrics, assets and their supply, the ledger audit."""

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Path
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from wallet.limits import ASSET_CODE_PATTERN
from wallet.service.assets import new_asset
from wallet.service.verify import verify_ledger

from ..deps import Service
from ..docs import COMMON, problems
from ..jsonbody import ExactJSONRoute
from ..models import AssetCreate, AssetRead, SupplyRead, VerifyRead

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
