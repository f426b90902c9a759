"""Administration (scope ``admin``): metrics."""

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from ..deps import Service
from ..docs import problems

router = APIRouter(tags=["admin"])


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
    return Response(service.metrics_exposition(), media_type=CONTENT_TYPE_LATEST)
