"""Dependencies shared by the routes."""

from typing import Annotated

from fastapi import Depends, Header, Path, Request

from wallet.limits import IDEMPOTENCY_KEY_LENGTH_MAX, IDEMPOTENCY_KEY_PATTERN
from wallet.service.wallet import WalletService

from .auth import caller_of


async def get_service(request: Request) -> WalletService:
    # async: a plain def dependency would cost every request a hop to the thread pool.
    service: WalletService = request.app.state.service
    return service


Service = Annotated[WalletService, Depends(get_service)]


async def get_key_owner(request: Request) -> str:
    """Idempotency keys belong to the API key that sent them: its id. (async: no thread.)"""
    return caller_of(request.scope).key_id


KeyOwner = Annotated[str, Depends(get_key_owner)]

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_LENGTH_MAX,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Makes the request safe to retry: the same key and payload replay the "
        "first answer and change nothing.",
    ),
]

# An id the service handed out (a transaction's, a webhook endpoint's, a monitor's): printable
# ASCII, so a NUL, which PostgreSQL cannot even compare with TEXT, is a malformed id (422) on
# both backends rather than a database error.
IdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[\x21-\x7e]+$",
        examples=["019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d"],
    ),
]
