"""Receiving the service's webhooks: :func:`verify_webhook` checks a delivery's Standard Webhooks
headers and signature, and returns its Event.

A delivery is a POST of the Event as JSON with the headers ``webhook-id`` (the event id),
``webhook-timestamp`` and ``webhook-signature`` (``v1,`` and the base64 HMAC-SHA256 of
``id.timestamp.body`` with the endpoint's ``whsec_…`` secret). Verify the body exactly as it
arrived, before any parsing: a body parsed and written again no longer matches its signature.
A timestamp more than five minutes away from the receiver's clock is refused, so a delivery
recorded by someone else cannot be replayed later.

    from wallet.client import WebhookVerificationFailed, verify_webhook

    try:
        event = verify_webhook(request.headers, request.body, secret)
    except WebhookVerificationFailed:
        return 400
    handle(event)  # at least once: an event may come again, tell it by event.id
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from .errors import WalletClientError
from .models import Event
from .operations import parse_event


class WebhookVerificationFailed(WalletClientError):
    """A delivery that is not the service's: a header missing, a stale timestamp, a signature
    that does not match the body and the secret, or a body that is not an Event."""


def verify_webhook(headers: Mapping[str, str], body: bytes | str, secret: str) -> Event:
    """The Event of a delivery whose headers and signature check out with ``secret`` (the
    endpoint's ``whsec_…``); :class:`WebhookVerificationFailed` otherwise. ``headers`` is any
    mapping of the request's headers (names in any case); ``body`` its bytes as received."""
    try:
        webhook = Webhook(secret)
    except (ValueError, TypeError, EmptyWebhookSecretError) as error:  # not base64, or empty
        raise WebhookVerificationFailed(f"the webhook secret cannot be used: {error}") from None
    received = {name.lower(): value for name, value in headers.items()}
    try:
        webhook.verify(body, received, json_parse=False)
    except WebhookVerificationError as error:
        raise WebhookVerificationFailed(f"not a delivery of the wallet service: {error}") from None
    try:
        event = parse_event(json.loads(body, parse_float=Decimal))
    except (ValueError, TypeError, KeyError) as error:
        raise WebhookVerificationFailed(f"the signed body is not an Event: {error!r}") from None
    if event.id != received["webhook-id"]:
        raise WebhookVerificationFailed(
            f"the header webhook-id {received['webhook-id']!r} is not the event's id {event.id!r}"
        )
    return event
