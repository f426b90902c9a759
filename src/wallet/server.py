"""Serving the app with uvicorn, settings from the environment."""

import uvicorn

from wallet.api import create_app
from wallet.config import Settings
from wallet.logs import configure_logging


def serve(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    configure_logging(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        # Finish in-flight requests on SIGTERM, within a bound.
        timeout_graceful_shutdown=10,
        server_header=False,
    )
