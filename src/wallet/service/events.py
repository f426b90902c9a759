"""Events: the feed of what changed in the ledger, read from the outbox (storage/events.py).

``render_event`` is the one renderer of an event: the feed's items, a webhook's body and a NATS
message are its bytes.
"""

from __future__ import annotations

import orjson

from wallet.storage.events import StoredEvent

from .clock import format_us

# Every event type, in the order API.md ("Events") lists them.
EVENT_TYPES: tuple[str, ...] = (
    "transaction.created",
    "hold.placed",
    "hold.captured",
    "hold.released",
    "hold.expired",
    "account.frozen",
    "account.unfrozen",
    "balance.threshold_crossed",
)


def render_event(event: StoredEvent) -> bytes:
    """The Event as the API shows it: ``{"id", "position", "type", "created_at", "data"}``, its
    data spliced in as stored (the JSON the unit of work rendered)."""
    head = orjson.dumps(
        {
            "id": event.id,
            "position": event.position,
            "type": event.type,
            "created_at": format_us(event.created_at_us),
        }
    )
    return b'%s,"data":%s}' % (head[:-1], event.data.encode())
