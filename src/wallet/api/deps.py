"""Dependencies shared by the routes."""

from typing import Annotated

from fastapi import Depends, Request

from wallet.service.wallet import WalletService


async def get_service(request: Request) -> WalletService:
    # async: a plain def dependency would cost every request a hop to the thread pool.
    service: WalletService = request.app.state.service
    return service


Service = Annotated[WalletService, Depends(get_service)]
