"""Serving the app with uvicorn, settings from the environment."""

import logging

import uvicorn

from wallet.api import create_app
from wallet.config import Settings


def serve(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        # Finish in-flight requests on SIGTERM, within a bound.
        timeout_graceful_shutdown=10,
        server_header=False,
    )
