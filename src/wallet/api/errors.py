"""The refusals that belong to HTTP, not to the ledger: who may call, and how big a body may be.

They join the domain's tree of expected failures (``WalletError``), so that one table
(problems.py) maps every code to its status.
"""

from wallet.domain.errors import WalletError
from wallet.limits import REQUEST_BODY_BYTES_MAX


class Unauthorized(WalletError):
    """No API key, or one that is malformed, unknown or revoked."""

    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(WalletError):
    """A valid API key that lacks the scope the route needs."""

    code = "forbidden"
    title = "Forbidden"


class PayloadTooLarge(WalletError):
    code = "payload_too_large"
    title = "Payload too large"

    def __init__(self, limit_bytes: int = REQUEST_BODY_BYTES_MAX) -> None:
        super().__init__(f"the body is larger than {limit_bytes} bytes")
