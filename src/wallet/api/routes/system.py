"""Health and the list of assets."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from wallet import __version__
from wallet.domain.errors import Unavailable
from wallet.service.assets import asset_view
from wallet.service.health import ping

from ..deps import Service
from ..docs import problems
from ..models import AssetRead, HealthRead, RootRead

router = APIRouter()


@router.get("/", response_model=RootRead, summary="Liveness: the process answers")
async def root() -> dict[str, str]:
    return {"status": "ok", "service": "wallet", "version": __version__}


@router.get(
    "/health",
    response_model=HealthRead,
    summary="Readiness: the database answers a query",
    responses={503: {"model": HealthRead, "description": "the database does not answer"}},
)
def health(service: Service) -> JSONResponse:
    backend = service.database.backend.value
    auth = "enabled" if service.keys.enforced else "disabled"
    try:
        latency_ms = round(ping(service.database), 3)
    except Unavailable:
        body = {
            "status": "unavailable",
            "database": {"status": "unavailable", "backend": backend, "latency_ms": None},
            "auth": auth,
            "version": __version__,
        }
        return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
    body = {
        "status": "ok",
        "database": {"status": "ok", "backend": backend, "latency_ms": latency_ms},
        "auth": auth,
        "version": __version__,
    }
    return JSONResponse(body)


@router.get(
    "/assets",
    response_model=list[AssetRead],
    summary="List the assets",
    responses=problems("unavailable", "internal_error"),
)
def list_assets(service: Service) -> list[dict[str, object]]:
    return [asset_view(asset) for asset in service.assets.refresh()]
