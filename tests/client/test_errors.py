"""Every error code of the contract surfaces as its own exception class, problem attached.

Every code is provoked on a real service (401 and 403 on one that requires API keys) but those
it cannot be made to answer on demand (503 and a 409 in flight, which need a sick database or an
exact race): they come from the test proxy in the service's own problem shape.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from tests.client.conftest import FAST_RETRY
from tests.client.proxy import Proxy, answer, problem
from tests.support.databases import DatabaseFactory
from tests.support.server import ServerProcess
from wallet.client import (
    AssetNotFound,
    BatchFailed,
    BatchItem,
    Forbidden,
    HoldExpired,
    HoldNotFound,
    HoldNotPending,
    IdempotencyKeyMismatch,
    IdempotencyKeyReused,
    InsufficientFunds,
    NotFound,
    NotRefundable,
    Overloaded,
    PayloadTooLarge,
    RefundExceedsOriginal,
    RetryPolicy,
    TransactionNotFound,
    Unauthorized,
    Unavailable,
    UnknownWalletAPIError,
    UserNotFound,
    ValidationError,
    WalletAPIError,
    WalletClient,
)
from wallet.client import operations as op
from wallet.client.errors import ERROR_CLASS_BY_CODE
from wallet.client.protocol import Call
from wallet.config import Settings
from wallet.service.keys import create_api_key
from wallet.storage import open_database

CONTRACT_CODES = {
    "idempotency_key_mismatch",
    "user_not_found",
    "asset_not_found",
    "transaction_not_found",
    "payload_too_large",
    "validation_error",
    "insufficient_funds",
    "idempotency_key_reused",
    "unavailable",
    "unauthorized",
    "forbidden",
    "hold_not_found",
    "hold_expired",
    "hold_not_pending",
    "refund_exceeds_original",
    "not_refundable",
    "overloaded",
    "batch_failed",
    "events_pruned",
    "webhook_not_found",
}


def test_every_contract_code_has_its_own_class() -> None:
    assert set(ERROR_CLASS_BY_CODE) >= CONTRACT_CODES
    assert len(set(ERROR_CLASS_BY_CODE.values())) == len(ERROR_CLASS_BY_CODE)


def test_insufficient_funds_carries_the_problem(wallet: WalletClient, user_id: str) -> None:
    wallet.topup(user_id, "GC", "10.00")

    with pytest.raises(InsufficientFunds) as caught:
        wallet.purchase(user_id, "GC", "25.00")

    error = caught.value
    assert (error.status, error.error_code, error.title) == (
        422,
        "insufficient_funds",
        "Insufficient funds",
    )
    assert "25.00" in error.detail
    assert error.problem["code"] == "insufficient_funds"
    assert error.request_id
    assert wallet.balance(user_id, "GC").balance == Decimal("10.00")


def test_user_asset_transaction_and_hold_not_found(wallet: WalletClient, user_id: str) -> None:
    with pytest.raises(UserNotFound) as user:
        wallet.balances(user_id)
    wallet.topup(user_id, "GC", "1.00")
    with pytest.raises(AssetNotFound):
        wallet.balance(user_id, "ZZZ")
    with pytest.raises(TransactionNotFound):
        wallet.get_transaction(str(uuid.uuid4()))
    with pytest.raises(HoldNotFound):
        wallet.get_hold(str(uuid.uuid4()))
    assert user.value.status == 404


def test_validation_error_lists_each_problem(wallet: WalletClient, user_id: str) -> None:
    with pytest.raises(ValidationError) as caught:
        wallet.topup(user_id, "GC", "1.001")

    assert caught.value.status == 422
    assert caught.value.errors
    assert "amount" in caught.value.errors[0]["loc"]


def test_idempotency_key_reused_with_another_payload(wallet: WalletClient, user_id: str) -> None:
    wallet.topup(user_id, "GC", "1.00", idempotency_key=f"k-{user_id}")

    with pytest.raises(IdempotencyKeyReused):
        wallet.topup(user_id, "GC", "2.00", idempotency_key=f"k-{user_id}")


def test_idempotency_key_mismatch_between_header_and_body(
    wallet: WalletClient, user_id: str
) -> None:
    body = {"transaction_type": "topup", "user_id": user_id, "asset_code": "GC", "amount": "1"}
    call = op.post_transaction("topup", user_id=user_id, asset_code="GC", amount=1)
    mismatched = Call(
        "POST",
        "/transaction",
        call.parse,
        body={**body, "idempotency_key": "body-key"},
        idempotency_key="header-key",
    )

    with pytest.raises(IdempotencyKeyMismatch) as caught:
        wallet.send(mismatched)

    assert caught.value.status == 400


def test_payload_too_large(wallet: WalletClient, user_id: str) -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        wallet.topup(user_id, "GC", "1.00", "x" * 70_000)

    assert caught.value.status == 413


def test_refund_exceeds_original_and_not_refundable(wallet: WalletClient, user_id: str) -> None:
    topup = wallet.topup(user_id, "GC", "10.00")
    refund = wallet.refund(topup.id, "4.00")

    with pytest.raises(RefundExceedsOriginal):
        wallet.refund(topup.id, "6.01")
    with pytest.raises(NotRefundable):
        wallet.refund(refund.id)


def test_batch_failed_names_the_item_and_applies_nothing(
    wallet: WalletClient, user_id: str
) -> None:
    wallet.topup(user_id, "GC", "5.00")

    with pytest.raises(BatchFailed) as caught:
        wallet.batch(
            [BatchItem.bonus(user_id, "GC", "1.00"), BatchItem.purchase(user_id, "GC", "100")]
        )

    assert caught.value.errors[0]["index"] == 1
    assert caught.value.errors[0]["code"] == "insufficient_funds"
    assert wallet.balance(user_id, "GC").balance == Decimal("5.00")


def test_hold_not_pending_and_expired(wallet: WalletClient, user_id: str) -> None:
    wallet.topup(user_id, "GC", "10.00")
    released = wallet.release_hold(wallet.place_hold(user_id, "GC", "1.00").id)
    expiring = wallet.place_hold(user_id, "GC", "1.00", expires_in_s=1)

    with pytest.raises(HoldNotPending):
        wallet.capture_hold(released.id)
    time.sleep(1.1)
    with pytest.raises(HoldExpired) as caught:
        wallet.capture_hold(expiring.id)
    assert caught.value.status == 409


NO_RETRY = RetryPolicy(attempts_max=1)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_unauthorized_and_forbidden_from_a_service_that_requires_keys(
    databases: DatabaseFactory, tmp_path: Path, user_id: str
) -> None:
    database_url = databases.fresh()
    database = open_database(Settings(database_url=database_url))
    try:
        _, read_only_key = create_api_key(database, "client-reader", ["read"])
    finally:
        database.close()
    server = ServerProcess(database_url, tmp_path / "server.log", WALLET_AUTH="required").start()
    try:
        with (
            WalletClient(server.url, retry=NO_RETRY) as anonymous,
            pytest.raises(Unauthorized) as unauthorized,
        ):
            anonymous.balance("user_001", "GC")
        with WalletClient(server.url, api_key=read_only_key, retry=NO_RETRY) as reader:
            assert reader.balance("user_001", "GC").balance == Decimal("1000.00")
            with pytest.raises(Forbidden) as forbidden:
                reader.topup(user_id, "GC", "1.00")
    finally:
        server.kill()

    assert (unauthorized.value.status, unauthorized.value.error_code) == (401, "unauthorized")
    assert (forbidden.value.status, forbidden.value.error_code) == (403, "forbidden")
    assert forbidden.value.request_id, "the service's own answer carries its request id"


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (503, "unavailable", Unavailable),
        (503, "overloaded", Overloaded),
        (404, "not_found", NotFound),
        (418, "a_code_from_the_future", UnknownWalletAPIError),
    ],
)
def test_problems_the_service_cannot_be_made_to_answer_yet(
    wallet_server: ServerProcess, status: int, code: str, error_class: type[WalletAPIError]
) -> None:
    with (
        Proxy(wallet_server.port, [problem(status, code)]) as proxy,
        WalletClient(proxy.url, retry=NO_RETRY) as client,
        pytest.raises(error_class) as caught,
    ):
        client.assets()

    error = caught.value
    assert (error.status, error.error_code, error.request_id) == (status, code, "canned-request")
    assert error.problem["detail"] == "canned by the test proxy"


def test_an_answer_that_is_not_a_problem(wallet_server: ServerProcess) -> None:
    with (
        Proxy(wallet_server.port, [answer(502, "<html>Bad gateway</html>")]) as proxy,
        WalletClient(proxy.url, retry=FAST_RETRY) as client,
        pytest.raises(UnknownWalletAPIError) as caught,
    ):
        client.assets()

    assert caught.value.status == 502
    assert "Bad gateway" in caught.value.detail
    assert len(proxy.requests) == 1
