"""Webhooks: endpoints an operator registers (``Webhooks``), and the sink that POSTs each event
to one of them (``WebhookSink``), served by the relay runner (relays.py).

Delivery follows the Standard Webhooks specification: the body is the event exactly as
``render_event`` renders it, signed with the endpoint's secret (``whsec_`` and the base64 of 32
random bytes, shown once, at creation): ``webhook-id`` (the event's id, the same at every
attempt, so a receiver can drop duplicates), ``webhook-timestamp`` (the sending time, in seconds,
from the system's clock: a receiver compares it with its own) and ``webhook-signature``
(``signature``: ``hmac`` computing what the ``standardwebhooks`` package computes, which the
tests check). Only a 2xx within the timeout is an acknowledgement: a redirect is never
followed, and at most WEBHOOK_RESPONSE_BYTES_MAX bytes of an answer are read.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections.abc import Sequence
from typing import Any

import httpx

from wallet import __version__
from wallet.domain.errors import ValidationFailed, WebhookNotFound
from wallet.limits import (
    DELIVERY_ATTEMPTS_KEPT,
    WEBHOOK_ENDPOINTS_MAX,
    WEBHOOK_RESPONSE_BYTES_MAX,
    WEBHOOK_URL_LENGTH_MAX,
)
from wallet.storage import Database
from wallet.storage import events as event_store
from wallet.storage import relays as store
from wallet.storage.events import StoredEvent
from wallet.storage.relays import DeliveryAttempt, Relay, WebhookEndpoint

from .clock import Clock, format_us, new_transaction_id
from .events import EVENT_TYPES
from .poster import Poster, PostFailed
from .relays import DeliveryFailed, RelayRunner, Sink, deliver_each

KIND = "webhook"
EVERY_TYPE = "*"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
_SECRET_BYTES = 32


def check_url(url: str) -> str:
    """An endpoint's URL: absolute, http or https, with a host. Raises ValidationFailed."""
    if len(url) > WEBHOOK_URL_LENGTH_MAX:
        raise ValidationFailed.at("url", f"a URL has at most {WEBHOOK_URL_LENGTH_MAX} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as error:
        raise ValidationFailed.at("url", f"not a URL: {error}") from None
    if parsed.scheme not in ("http", "https") or not url.lower().startswith(parsed.scheme + "://"):
        raise ValidationFailed.at("url", "a webhook URL starts with http:// or https://")
    if not parsed.host:
        raise ValidationFailed.at("url", "a webhook URL names a host")
    return url


def check_event_types(event_types: Sequence[str]) -> list[str]:
    """``["*"]``, or known types, each once. Raises ValidationFailed."""
    if list(event_types) == [EVERY_TYPE]:
        return [EVERY_TYPE]
    unknown = [kind for kind in event_types if kind not in EVENT_TYPES]
    if not event_types or unknown or len(set(event_types)) != len(event_types):
        known = ", ".join(EVENT_TYPES)
        raise ValidationFailed.at(
            "event_types", f'event_types is ["*"] or a list of distinct types among: {known}'
        )
    return list(event_types)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def signing_key(secret: str) -> bytes:
    """The key of an endpoint's secret, decoded as the Standard Webhooks libraries decode it."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX) + "==")


def signature(key: bytes, message_id: str, seconds: int, body: bytes) -> bytes:
    """The ``webhook-signature`` header: ``v1,`` and the base64 HMAC-SHA256 of
    ``id.timestamp.body``."""
    signed = b"%s.%d.%s" % (message_id.encode("ascii"), seconds, body)
    return b"v1," + base64.b64encode(hmac.digest(key, signed, "sha256"))


def webhook_view(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    """An endpoint as the API shows it; its secret only when it was just created."""
    relay = endpoint.relay
    view: dict[str, Any] = {
        "id": relay.id,
        "url": endpoint.url,
        "event_types": list(relay.event_types),
        "description": endpoint.description,
        "status": relay.status,
        "created_at": format_us(relay.created_at_us),
        "last_delivered_position": relay.delivered_position,
        "failing_since": (
            None if relay.failing_since_us is None else format_us(relay.failing_since_us)
        ),
        "last_error": relay.last_error,
    }
    if with_secret:
        view["secret"] = endpoint.secret
    return view


def attempt_view(attempt: DeliveryAttempt) -> dict[str, Any]:
    return {
        "event_id": attempt.event_id,
        "position": attempt.position,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
        "attempted_at": format_us(attempt.attempted_at_us),
    }


class Webhooks:
    """The operator's use cases: each one unit of work (or one read)."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    def create(
        self, url: str, event_types: Sequence[str], description: str | None
    ) -> WebhookEndpoint:
        """A new endpoint, enabled, that receives the events made after its creation."""
        url = check_url(url)
        types = check_event_types(event_types)
        relay_id = new_transaction_id()
        with self._database.unit_of_work() as session:
            if store.count_relays(session, KIND) >= WEBHOOK_ENDPOINTS_MAX:
                raise ValidationFailed.at(
                    "url", f"there are {WEBHOOK_ENDPOINTS_MAX} webhook endpoints already"
                )
            newest = event_store.newest_position(session)
            store.insert_relay(session, relay_id, KIND, types, newest, self._clock.now_us())
            store.insert_webhook(session, relay_id, url, new_secret(), description)
            endpoint = store.get_webhook(session, relay_id)
        assert endpoint is not None
        return endpoint

    def all(self) -> list[WebhookEndpoint]:
        with self._database.reading() as session:
            return store.list_webhooks(session)

    def get(self, webhook_id: str) -> WebhookEndpoint:
        with self._database.reading() as session:
            return _found(webhook_id, store.get_webhook(session, webhook_id))

    def change(
        self,
        webhook_id: str,
        *,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        status: str | None = None,
    ) -> WebhookEndpoint:
        """Change an endpoint's URL, types or status. Enabled again, it resumes where it
        stopped."""
        url = None if url is None else check_url(url)
        types = None if event_types is None else check_event_types(event_types)
        with self._database.unit_of_work() as session:
            _found(webhook_id, store.get_webhook(session, webhook_id))
            store.change_relay(session, webhook_id, event_types=types, status=status)
            if url is not None:
                store.change_webhook_url(session, webhook_id, url)
            endpoint = store.get_webhook(session, webhook_id)
        return _found(webhook_id, endpoint)

    def delete(self, webhook_id: str) -> None:
        with self._database.unit_of_work() as session:
            _found(webhook_id, store.get_webhook(session, webhook_id))
            store.delete_relay(session, webhook_id)

    def attempts(self, webhook_id: str) -> list[DeliveryAttempt]:
        """The endpoint's latest attempts, newest first."""
        with self._database.reading() as session:
            _found(webhook_id, store.get_webhook(session, webhook_id))
            return store.list_attempts(session, webhook_id, DELIVERY_ATTEMPTS_KEPT)

    def replay(self, webhook_id: str, after: int) -> WebhookEndpoint:
        """Deliver again every event after position ``after`` (at most the newest)."""
        with self._database.unit_of_work() as session:
            _found(webhook_id, store.get_webhook(session, webhook_id))
            newest = event_store.newest_position(session)
            if after > newest:
                raise ValidationFailed.at(
                    "after", f"after is at most the newest position, {newest}"
                )
            store.change_relay(session, webhook_id, delivered_position=after)
            endpoint = store.get_webhook(session, webhook_id)
        return _found(webhook_id, endpoint)


def _found(webhook_id: str, endpoint: WebhookEndpoint | None) -> WebhookEndpoint:
    if endpoint is None:
        raise WebhookNotFound(f"no webhook endpoint with id '{webhook_id}'")
    return endpoint


class WebhookSink:
    """POSTs events to one endpoint, one at a time, over one connection of its own (poster.py),
    from a delivery thread of the runner's."""

    def __init__(self, url: str, secret: str, timeout_s: float, runner: RelayRunner) -> None:
        self._poster = Poster(url, WEBHOOK_RESPONSE_BYTES_MAX, f"wallet/{__version__}")
        self._key = signing_key(secret)
        self._timeout_s = timeout_s
        self._runner = runner

    async def deliver_each(
        self, events: Sequence[StoredEvent], until: float
    ) -> list[DeliveryAttempt]:
        return await self._runner.run_blocking(
            deliver_each, events, until, self.deliver, self._runner.clock
        )

    def deliver(self, event: StoredEvent, body: bytes) -> int:
        """POST one event; its status once acknowledged (a 2xx). Blocks; raises
        DeliveryFailed."""
        seconds = int(time.time())
        headers = b"webhook-id: %s\r\nwebhook-timestamp: %d\r\nwebhook-signature: %s\r\n" % (
            event.id.encode("ascii"),
            seconds,
            signature(self._key, event.id, seconds, body),
        )
        try:
            # One deadline for the whole exchange: an answer that trickles in never ends.
            status = self._poster.post(body, headers, self._timeout_s)
        except TimeoutError:
            raise DeliveryFailed(f"no answer within {self._timeout_s:g} s") from None
        except PostFailed as error:
            raise DeliveryFailed(str(error)) from None
        except OSError as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}".rstrip(": ")) from None
        if 200 <= status < 300:
            return status
        if 300 <= status < 400:
            raise DeliveryFailed(f"HTTP {status}: redirects are not followed", status)
        raise DeliveryFailed(f"HTTP {status}", status)

    async def close(self) -> None:
        self._poster.close()


async def webhook_sink(relay: Relay, runner: RelayRunner) -> Sink:
    """The sink of a webhook relay (registered for the kind ``webhook``)."""
    endpoint = await runner.read(lambda session: store.get_webhook(session, relay.id))
    if endpoint is None:
        raise LookupError(f"webhook endpoint {relay.id} was deleted")
    return WebhookSink(endpoint.url, endpoint.secret, runner.settings.webhook_timeout_s, runner)
