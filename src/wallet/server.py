"""Serving the app with uvicorn, settings from the environment.

On SIGTERM uvicorn stops accepting connections, lets the requests in flight finish (at most
SHUTDOWN_GRACE_S), then runs the app's shutdown, where the writer commits every queued write.
``DrainingHttpProtocol`` closes the one gap uvicorn leaves: a request already sent on a
keep-alive connection between two requests is answered, not reset.
"""

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from wallet.api import create_app
from wallet.config import Settings
from wallet.limits import SHUTDOWN_GRACE_S, SHUTDOWN_IDLE_LINGER_S
from wallet.logs import configure_logging


class DrainingHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, with a shutdown that never resets a request already sent.

    On shutdown uvicorn closes at once a keep-alive connection that is between two requests. But
    its client may have sent the next request already: the bytes wait unread in the socket, and
    closing a socket with unread data sends a TCP reset, so the client sees its request cut off
    without an answer and cannot know whether it was done. Here such a connection stays open for
    SHUTDOWN_IDLE_LINGER_S: a request arriving meanwhile is served as usual, answered with
    ``Connection: close``, and the connection closes after the answer; a quiet one is closed at
    the end of the linger (the same race as any keep-alive timeout, for a client that stayed idle
    for the whole linger).
    """

    _draining = False

    def shutdown(self) -> None:
        self._draining = True
        if self.cycle is None or self.cycle.response_complete:
            self.loop.call_later(SHUTDOWN_IDLE_LINGER_S, self._close_if_idle)
        else:
            self.cycle.keep_alive = False

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self._draining:
            self.cycle.keep_alive = False

    def _close_if_idle(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


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
        http=DrainingHttpProtocol,
        # Finish in-flight requests on SIGTERM, within a bound.
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        server_header=False,
    )
