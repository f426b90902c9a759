"""The baseline the service is measured against: the same HTTP stack, and nothing behind it.

A minimal FastAPI app with the service's request model (``TransactionCreate``, parsed by the
same exact-JSON route class) and path and header parameters, served by uvicorn with the same
settings as ``wallet.server.serve``. It touches no database: every route answers a fixed JSON
body of the size the service answers. What the service does on top of this is the cost of the
wallet itself.

Run it as ``PORT=8001 python bench/baseline_app.py``; bench/run.py does. Its answers are
bench/answers.py's, which bench/fastapi_app.py gives too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Like main.py: the wallet package from src/, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import orjson
import uvicorn
from fastapi import APIRouter, FastAPI
from starlette.responses import Response

from answers import BALANCE, HISTORY, TRANSACTION
from wallet.api.deps import IdempotencyKeyHeader
from wallet.api.jsonbody import ExactJSONRoute
from wallet.api.models import TransactionCreate
from wallet.api.routes.balances import AssetPath, UserIdPath

TRANSACTION_BODY = orjson.dumps(TRANSACTION)
BALANCE_BODY = orjson.dumps(BALANCE)
HISTORY_BODY = orjson.dumps(HISTORY)

router = APIRouter(route_class=ExactJSONRoute)


@router.get("/")
async def root() -> Response:
    return Response(b'{"status":"ok","service":"baseline"}', media_type="application/json")


@router.post("/transaction", status_code=201)
async def post_transaction(
    body: TransactionCreate, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    return Response(TRANSACTION_BODY, status_code=201, media_type="application/json")


@router.get("/balance/{user_id}/{asset_code}")
async def get_balance(user_id: UserIdPath, asset_code: AssetPath) -> Response:
    return Response(BALANCE_BODY, media_type="application/json")


@router.get("/transaction/{user_id}/history")
async def get_history(user_id: UserIdPath, limit: int = 50) -> Response:
    return Response(HISTORY_BODY, media_type="application/json")


def create_app() -> FastAPI:
    app = FastAPI(title="Wallet benchmark baseline")
    app.include_router(router)
    return app


def main() -> None:
    # The settings of wallet.server.serve.
    uvicorn.run(
        create_app(),
        host=os.environ.get("WALLET_HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8001")),
        log_level=os.environ.get("WALLET_LOG_LEVEL", "warning"),
        access_log=False,
        timeout_graceful_shutdown=10,
        server_header=False,
    )


if __name__ == "__main__":
    main()
