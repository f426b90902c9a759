"""Dependencies shared by the routes."""

from typing import Annotated

from fastapi import Depends, Request

from wallet.service.wallet import WalletService


def get_service(request: Request) -> WalletService:
    service: WalletService = request.app.state.service
    return service


Service = Annotated[WalletService, Depends(get_service)]
