"""The feed in the client: ``events_page`` and the ``events`` iterator against the real service
(both backends), following new events as they are written; 410 ``events_pruned`` as its own
exception; and ``verify_webhook`` on deliveries signed as the Standard Webhooks specification
says.

The client tests share one server per backend, so the feed holds other tests' events too: each
test reads from the newest position it found and keeps the events of its own user.
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from queue import Empty, Queue
from typing import Any, get_args

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.client.conftest import FAST_RETRY
from tests.client.proxy import Proxy, problem
from tests.support.server import ServerProcess
from wallet.client import (
    AsyncWalletClient,
    Event,
    EventsPruned,
    EventType,
    WalletClient,
    WebhookVerificationFailed,
    verify_webhook,
)
from wallet.service.events import EVENT_TYPES, render_event
from wallet.storage.events import StoredEvent

DEADLINE_S = 30.0


def test_the_client_knows_every_event_type() -> None:
    assert get_args(EventType) == EVENT_TYPES


def test_events_page_reads_a_users_transaction_and_hold_in_order(
    wallet: WalletClient, user_id: str
) -> None:
    start = _newest_position(wallet)
    topup = wallet.topup(user_id, "GC", "10.50")
    hold = wallet.place_hold(user_id, "GC", "2.25")

    mine = [event for event in wallet.events(start, wait_s=0) if _user_of(event) == user_id]

    created = mine[0]
    placed = next(event for event in mine if event.type == "hold.placed")
    assert (created.type, created.data["id"]) == ("transaction.created", topup.id)
    assert created.position > start
    assert [event.position for event in mine] == sorted({event.position for event in mine})
    assert created.data["amount"] == "10.50"
    assert created.data["user_id"] == user_id
    assert placed.data["id"] == hold.id
    assert placed.data["status"] == "pending"
    assert created.created_at.tzinfo is not None
    uuid.UUID(created.id)


def test_events_page_filters_by_type_and_reads_on_from_next_after(
    wallet: WalletClient, user_id: str
) -> None:
    start = _newest_position(wallet)
    wallet.topup(user_id, "GC", "5.00")
    hold = wallet.place_hold(user_id, "GC", "1.00")
    wallet.release_hold(hold.id)

    page = wallet.events_page(start, types=["hold.released"], wait_s=DEADLINE_S)
    released = [event for event in page.items if event.data.get("id") == hold.id]
    after = wallet.events_page(page.next_after, types=["hold.released"])

    assert {event.type for event in page.items} == {"hold.released"}
    assert [event.data["status"] for event in released] == ["released"]
    assert page.next_after >= released[0].position
    assert all(event.position > page.next_after for event in after.items)


def test_events_follows_the_feed_as_events_are_written(
    wallet_server: ServerProcess, wallet: WalletClient, user_id: str
) -> None:
    start = _newest_position(wallet)
    seen: Queue[Event] = Queue()
    stop = threading.Event()

    def follow() -> None:
        with WalletClient(wallet_server.url, retry=FAST_RETRY) as reader:
            for event in reader.events(start, types=["transaction.created"], wait_s=2):
                if event.data.get("user_id") == user_id:
                    seen.put(event)
                if stop.is_set():
                    return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    amounts = ["1.00", "2.00", "3.00"]
    for amount in amounts:
        wallet.topup(user_id, "GC", amount)
        _get(seen)  # the follower has it before the next is written
    stop.set()
    wallet.topup(f"{user_id}-other", "GC", "1.00")  # wakes the follower up to see stop
    follower.join(DEADLINE_S)

    assert not follower.is_alive()
    assert seen.empty()
    balance = wallet.balance(user_id, "GC")
    assert balance.balance == Decimal("6.00")


def test_events_with_no_wait_stops_once_caught_up(wallet: WalletClient, user_id: str) -> None:
    start = _newest_position(wallet)
    wallet.topup(user_id, "GC", "1.00")

    events = list(wallet.events(start, types=["transaction.created"], wait_s=0, page_size=1))

    assert user_id in {event.data["user_id"] for event in events}
    assert [event.position for event in events] == sorted(event.position for event in events)


def test_a_long_poll_outlasts_a_shorter_read_timeout(wallet_server: ServerProcess) -> None:
    """The client's read timeout (1 s) is raised for a request the service holds for 2 s."""
    with WalletClient(wallet_server.url, read_timeout_s=1, retry=FAST_RETRY) as client:
        beyond = _newest_position(client) + 1_000_000
        page = client.events_page(beyond, wait_s=2)

    assert page.items == ()
    assert page.next_after >= beyond


def test_async_events_follow_the_feed(wallet_server: ServerProcess, user_id: str) -> None:
    async def scenario() -> list[Event]:
        async with AsyncWalletClient(wallet_server.url, retry=FAST_RETRY) as wallet:
            start = (await wallet.events_page(0)).next_after
            async for event in wallet.events(wait_s=0):  # to the newest position
                start = event.position
            first = await wallet.topup(user_id, "GC", "4.00")
            mine: list[Event] = []
            async for event in wallet.events(start, types=["transaction.created"], wait_s=2):
                if event.data["user_id"] == user_id:
                    mine.append(event)
                    if len(mine) == 1:
                        await wallet.purchase(user_id, "GC", "1.50")
                    else:
                        break
            assert mine[0].data["id"] == first.id
            return mine

    mine = asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))

    assert [event.data["transaction_type"] for event in mine] == ["topup", "purchase"]
    assert mine[1].data["amount"] == "1.50"


def test_events_pruned_is_its_own_exception(wallet_server: ServerProcess) -> None:
    with (
        Proxy(wallet_server.port, [problem(410, "events_pruned", "retention kept from 42")]) as p,
        WalletClient(p.url, retry=FAST_RETRY) as client,
        pytest.raises(EventsPruned) as caught,
    ):
        next(client.events(7))

    assert (caught.value.status, caught.value.error_code) == (410, "events_pruned")
    assert caught.value.detail == "retention kept from 42"
    assert "after=7" in p.requests[0].line
    assert len(p.requests) == 1, "a 410 is not retried"


def test_an_empty_type_filter_is_refused_before_sending(wallet: WalletClient) -> None:
    with pytest.raises(ValueError, match="at least one event type"):
        wallet.events_page(0, types=[])


# Webhooks.

SECRET = "whsec_" + base64.b64encode(b"the endpoint's secret, 32 bytes!").decode()


def test_a_signed_delivery_gives_its_event() -> None:
    body, headers = _delivery()

    event = verify_webhook(httpx.Headers(headers), body, SECRET)

    assert event.id == headers["webhook-id"]
    assert (event.position, event.type) == (42, "transaction.created")
    assert event.created_at == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert event.data == {"id": "t-1", "amount": "10.50", "rate": Decimal("0.1")}


def test_a_tampered_body_is_refused() -> None:
    body, headers = _delivery()
    tampered = body.replace(b'"10.50"', b'"99.50"')

    with pytest.raises(WebhookVerificationFailed, match="No matching signature"):
        verify_webhook(headers, tampered, SECRET)


def test_another_secret_is_refused() -> None:
    body, headers = _delivery()
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()

    with pytest.raises(WebhookVerificationFailed, match="No matching signature"):
        verify_webhook(headers, body, other)


def test_a_stale_timestamp_is_refused() -> None:
    body, headers = _delivery(signed_at=datetime.now(UTC) - timedelta(minutes=10))

    with pytest.raises(WebhookVerificationFailed, match="too old"):
        verify_webhook(headers, body, SECRET)


def test_a_missing_header_or_another_id_is_refused() -> None:
    body, headers = _delivery()
    without = {name: value for name, value in headers.items() if name != "webhook-signature"}
    renamed = {**headers, "webhook-id": str(uuid.uuid4())}

    with pytest.raises(WebhookVerificationFailed, match="Missing required headers"):
        verify_webhook(without, body, SECRET)
    with pytest.raises(WebhookVerificationFailed, match="No matching signature"):
        verify_webhook(renamed, body, SECRET)


def test_a_signed_body_whose_id_is_not_the_header_is_refused() -> None:
    body, headers = _delivery(header_id=str(uuid.uuid4()))

    with pytest.raises(WebhookVerificationFailed, match="is not the event's id"):
        verify_webhook(headers, body, SECRET)


def test_a_malformed_secret_is_refused() -> None:
    body, headers = _delivery()

    with pytest.raises(WebhookVerificationFailed, match="secret cannot be used"):
        verify_webhook(headers, body, "whsec_")


def _delivery(
    signed_at: datetime | None = None, header_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """A delivery as the service makes one: the rendered Event, signed with SECRET."""
    event = StoredEvent(
        42,
        str(uuid.uuid4()),
        "transaction.created",
        int(datetime(2026, 11, 25, 8, 0, tzinfo=UTC).timestamp() * 1_000_000),
        '{"id":"t-1","amount":"10.50","rate":0.1}',
    )
    body = render_event(event)
    moment = signed_at or datetime.now(UTC)
    message_id = header_id or event.id
    signature = Webhook(SECRET).sign(message_id, moment, body)
    return body, {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }


def _newest_position(wallet: WalletClient) -> int:
    newest = 0
    for event in wallet.events(wait_s=0, page_size=1_000):
        newest = event.position
    return newest


def _user_of(event: Event) -> Any:
    return event.data.get("user_id")


def _get(queue: Queue[Event]) -> Event:
    try:
        return queue.get(timeout=DEADLINE_S)
    except Empty:
        raise AssertionError(f"no event within {DEADLINE_S} s") from None
