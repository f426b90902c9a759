"""An asset's daily activity, for operators (scope ``admin``, as everything under /admin/)."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from wallet.limits import ACTIVITY_DAYS_DEFAULT, ACTIVITY_DAYS_MAX, ASSET_CODE_PATTERN

from ..deps import Service
from ..docs import problems
from ..models import ActivityRead

router = APIRouter(tags=["admin"])


@router.get(
    "/admin/assets/{asset_code}/activity",
    response_model=ActivityRead,
    summary="An asset's transactions per UTC day and type: counts and sums",
    description="The last `days` UTC days, today included, oldest first. Every day and every "
    "transaction type is present, with zeros where nothing happened. One range scan of an "
    "index that covers the query: the cost grows with the asset's transactions in the window, "
    "not with the ledger.",
    responses=problems("asset_not_found", "validation_error", "unavailable", "internal_error"),
)
def get_activity(
    asset_code: Annotated[str, Path(pattern=ASSET_CODE_PATTERN, examples=["GC"])],
    service: Service,
    days: Annotated[
        int,
        Query(ge=1, le=ACTIVITY_DAYS_MAX, description="How many UTC days, today included."),
    ] = ACTIVITY_DAYS_DEFAULT,
) -> dict[str, Any]:
    return service.activity.of_asset(asset_code, days)
