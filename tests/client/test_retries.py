"""Retries, timeouts and configuration, through a proxy that breaks the network on purpose.

The lost-response tests are the honest kind: the proxy forwards the write to the real service,
waits for its whole answer (so the money has moved and the unit of work has committed), and then
hangs up on the client. The retry must replay, not move the money again.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.client.conftest import FAST_RETRY
from tests.client.proxy import DROP, SILENT, Proxy, answer, problem
from tests.support.server import ServerProcess, free_port
from wallet.client import (
    RetryPolicy,
    Unavailable,
    ValidationError,
    WalletClient,
    WalletConnectionError,
)
from wallet.client.protocol import API_KEY_ENV, BASE_URL_ENV


def test_a_lost_response_is_replayed_not_doubled(
    wallet_server: ServerProcess, wallet: WalletClient, user_id: str
) -> None:
    wallet.topup(user_id, "GC", "100.00")

    with (
        Proxy(wallet_server.port, [DROP]) as proxy,
        WalletClient(proxy.url, retry=FAST_RETRY) as client,
    ):
        purchase = client.purchase(user_id, "GC", "30.00")

    assert len(proxy.requests) == 2
    first_key, second_key = proxy.keys()
    assert first_key == second_key == purchase.idempotency_key
    assert purchase.replayed is True
    assert purchase.balance_after == Decimal("70.00")
    assert wallet.balance(user_id, "GC").balance == Decimal("70.00")
    assert [t.id for t in wallet.iter_history(user_id, transaction_type="purchase")] == [
        purchase.id
    ]


def test_a_lost_response_to_a_hold_capture_is_replayed(
    wallet_server: ServerProcess, wallet: WalletClient, user_id: str
) -> None:
    wallet.topup(user_id, "GC", "50.00")
    hold = wallet.place_hold(user_id, "GC", "20.00")

    with (
        Proxy(wallet_server.port, [DROP]) as proxy,
        WalletClient(proxy.url, retry=FAST_RETRY) as client,
    ):
        captured = client.capture_hold(hold.id, "15.00")

    assert (captured.status, captured.captured_amount, captured.replayed) == (
        "captured",
        Decimal("15.00"),
        True,
    )
    assert len(set(proxy.keys())) == 1
    assert wallet.balance(user_id, "GC").balance == Decimal("35.00")


def test_a_lost_response_to_a_read_is_retried(wallet_server: ServerProcess) -> None:
    with (
        Proxy(wallet_server.port, [DROP]) as proxy,
        WalletClient(proxy.url, retry=FAST_RETRY) as client,
    ):
        assets = client.assets()

    assert len(proxy.requests) == 2
    assert proxy.keys() == [None, None]
    assert "GC" in {asset.code for asset in assets}


def test_a_503_is_retried_after_retry_after(
    wallet_server: ServerProcess, wallet: WalletClient, user_id: str
) -> None:
    plan = [problem(503, "unavailable"), problem(503, "overloaded")]
    with (
        Proxy(wallet_server.port, plan) as proxy,
        WalletClient(proxy.url, retry=FAST_RETRY) as client,
    ):
        topup = client.topup(user_id, "GC", "12.34")

    assert len(proxy.requests) == 3
    assert len(set(proxy.keys())) == 1
    assert topup.replayed is False
    assert wallet.balance(user_id, "GC").balance == Decimal("12.34")


def test_retries_are_bounded(wallet_server: ServerProcess) -> None:
    plan = [problem(503, "unavailable")] * 5
    with (
        Proxy(wallet_server.port, plan) as proxy,
        WalletClient(proxy.url, retry=FAST_RETRY) as client,
        pytest.raises(Unavailable),
    ):
        client.topup("user_001", "GC", "1.00")

    assert len(proxy.requests) == FAST_RETRY.attempts_max


def test_retry_after_is_capped(wallet_server: ServerProcess) -> None:
    policy = RetryPolicy(attempts_max=2, retry_after_max_s=0.05)
    body = {"title": "Service unavailable", "status": 503, "code": "unavailable", "detail": "."}
    slow = answer(503, body, {"Retry-After": "3600"})
    started = time.monotonic()
    with (
        Proxy(wallet_server.port, [slow, slow]) as proxy,
        WalletClient(proxy.url, retry=policy) as client,
        pytest.raises(Unavailable),
    ):
        client.assets()

    assert time.monotonic() - started < 2
    assert len(proxy.requests) == 2


def test_a_422_is_not_retried(wallet_server: ServerProcess, user_id: str) -> None:
    with (
        Proxy(wallet_server.port) as proxy,
        WalletClient(proxy.url, retry=FAST_RETRY) as client,
        pytest.raises(ValidationError),
    ):
        client.topup(user_id, "GC", "0")

    assert len(proxy.requests) == 1


def test_a_read_timeout_fails_a_read_at_once(wallet_server: ServerProcess) -> None:
    started = time.monotonic()
    with (
        Proxy(wallet_server.port, [SILENT] * 5) as proxy,
        WalletClient(proxy.url, read_timeout_s=0.2, retry=FAST_RETRY) as client,
        pytest.raises(WalletConnectionError) as caught,
    ):
        client.assets()

    assert time.monotonic() - started < 2
    assert len(proxy.requests) == 1
    assert "ReadTimeout" in str(caught.value)


def test_a_read_timeout_retries_a_write_with_the_same_key(
    wallet_server: ServerProcess, wallet: WalletClient, user_id: str
) -> None:
    with (
        Proxy(wallet_server.port, [SILENT]) as proxy,
        WalletClient(proxy.url, read_timeout_s=0.2, retry=FAST_RETRY) as client,
    ):
        topup = client.topup(user_id, "GC", "5.00")

    assert len(proxy.requests) == 2
    assert len(set(proxy.keys())) == 1
    assert topup.replayed is False
    assert wallet.balance(user_id, "GC").balance == Decimal("5.00")


def test_a_refused_connection_is_retried_then_raised() -> None:
    started = time.monotonic()
    with (
        WalletClient(f"http://127.0.0.1:{free_port()}", retry=FAST_RETRY) as client,
        pytest.raises(WalletConnectionError, match="3 attempt"),
    ):
        client.assets()

    assert time.monotonic() - started < 2


def test_base_url_and_api_key_from_the_environment(
    wallet_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Proxy(wallet_server.port) as proxy:
        monkeypatch.setenv(BASE_URL_ENV, proxy.url)
        monkeypatch.setenv(API_KEY_ENV, "env-key")
        with WalletClient() as client:
            client.assets()
        with WalletClient(api_key="given-key") as client:
            client.assets()

    assert [r.headers.get("authorization") for r in proxy.requests] == [
        "Bearer env-key",
        "Bearer given-key",
    ]


def test_no_api_key_sends_no_authorization(
    wallet_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    with Proxy(wallet_server.port) as proxy, WalletClient(proxy.url) as client:
        client.assets()

    assert "authorization" not in proxy.requests[0].headers


def test_backoff_grows_and_is_jittered() -> None:
    policy = RetryPolicy(backoff_initial_s=0.1, backoff_max_s=1.0)

    assert [policy.backoff_s(n, 0.999999) for n in (1, 2, 3, 4, 5)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0], rel=1e-3
    )
    assert policy.backoff_s(3, 0.0) == 0.0
    assert policy.retry_after_s("2") == 2.0
    assert policy.retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert policy.retry_after_s(None) is None
