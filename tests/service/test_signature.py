"""The webhook signature computed with hmac is the one the standardwebhooks package computes, for
secrets and bodies drawn from a printed seed."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from wallet.service.webhooks import new_secret, signature, signing_key


def test_the_signature_is_the_standard_webhooks_one(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        secret = new_secret()
        message_id = f"{rng.getrandbits(128):032x}"
        seconds = rng.randrange(1_600_000_000, 2_000_000_000)
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 2000)))
        expected = Webhook(secret).sign(message_id, datetime.fromtimestamp(seconds, UTC), body)
        assert signature(signing_key(secret), message_id, seconds, body) == expected.encode()
