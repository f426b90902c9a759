"""What a write asks of the ledger, fully validated before it reaches the writer.

A command carries minor units, a known asset and a fingerprint of its payload: the writer never
sees a malformed request, so nothing that fails validation can take a place in a commit.
"""

import hashlib
from dataclasses import dataclass, field

from wallet.domain.ledger import TransactionType


@dataclass(frozen=True, slots=True)
class PostingCommand:
    transaction_type: TransactionType
    user_id: str | None
    asset_code: str
    amount_minor: int
    description: str | None = None
    idempotency_key: str | None = None
    # Whose key it is: idempotency keys are scoped to the caller that used them.
    scope: str = ""
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        payload = "\x1f".join(
            [
                self.transaction_type.value,
                self.user_id or "",
                self.asset_code,
                str(self.amount_minor),
                self.description or "",
            ]
        )
        object.__setattr__(self, "fingerprint", hashlib.sha256(payload.encode()).hexdigest())
