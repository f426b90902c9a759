"""Group commit, as behaviour: commands that arrive together share a commit, yet each is applied
in arrival order against the balances the ones before it left, a refused command is refused
alone, and no answer leaves before its commit is durable.

These tests drive WalletService directly, from one event loop, as the HTTP routes do.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing
from decimal import Decimal

import orjson
import psycopg
import pytest

from wallet.config import Settings
from wallet.service.commands import Outcome
from wallet.service.transactions import TransactionInput
from wallet.service.wallet import WalletService
from wallet.storage.database import sqlite_path

from .checks import new_key, new_user


def request(
    kind: str, user_id: str, amount: str, key: str | None = None, asset_code: str = "GC"
) -> TransactionInput:
    return TransactionInput(
        transaction_type=kind,
        user_id=user_id,
        asset_code=asset_code,
        amount=Decimal(amount),
        idempotency_key=key,
    )


def balance_after(outcome: Outcome) -> str:
    assert outcome.error is None, outcome.error
    value: str = orjson.loads(outcome.body)["balance_after"]
    return value


@pytest.fixture
def idle_service(database_url: str) -> Iterator[WalletService]:
    """A service over a seeded database whose writer has not started yet."""
    service = WalletService(Settings(database_url=database_url, seed=False))
    service.assets.refresh()
    try:
        yield service
    finally:
        service.stop()


async def post_as_one_batch(
    service: WalletService, requests: Sequence[TransactionInput]
) -> list[Outcome]:
    """Queue every request before the writer runs, so that it finds them all in its queue."""
    tasks = [asyncio.ensure_future(service.transactions.post(r)) for r in requests]
    await asyncio.sleep(0)  # each task runs up to its wait for the writer
    assert service.writer.queue_depth == len(requests)
    service.writer.start()
    return await asyncio.gather(*tasks)


def test_a_batch_applies_commands_in_arrival_order_and_refuses_one_alone(
    idle_service: WalletService,
) -> None:
    alice, bob, carol, ghost = (new_user() for _ in range(4))
    repeated_key = new_key()
    requests = [
        request("topup", alice, "100.00"),
        # Spends what the top-up just before it in the same batch brought.
        request("purchase", alice, "30.00"),
        request("topup", bob, "50.00"),
        request("purchase", bob, "50.01"),  # one cent too many: refused, alone
        request("bonus", bob, "5.00", key=repeated_key),
        request("purchase", ghost, "1.00"),  # never credited: refused, alone
        request("purchase", alice, "70.00"),
        request("bonus", bob, "5.00", key=repeated_key),  # the same key again: a replay
        request("topup", carol, "0.01", asset_code="DI"),
        request("purchase", carol, "0.01", asset_code="DI"),
    ]
    batches_before = idle_service.writer.batches_committed

    outcomes = asyncio.run(post_as_one_batch(idle_service, requests))

    assert idle_service.writer.batches_committed == batches_before + 1
    codes = [None if o.error is None else o.error.code for o in outcomes]
    assert codes == [
        None,
        None,
        None,
        "insufficient_funds",
        None,
        "user_not_found",
        None,
        None,
        None,
        None,
    ]
    assert [balance_after(outcomes[i]) for i in (0, 1, 2, 4, 6, 8, 9)] == [
        "100.00",
        "70.00",
        "50.00",
        "55.00",
        "0.00",
        "0.01",
        "0.00",
    ]
    assert outcomes[7].replayed
    assert (outcomes[7].transaction_id, outcomes[7].body) == (
        outcomes[4].transaction_id,
        outcomes[4].body,
    )
    assert len({o.transaction_id for o in outcomes if o.error is None}) == 7

    # The refused commands left nothing behind; the others are all there.
    assert idle_service.balances.get(alice, "GC")["balance"] == "0.00"
    assert idle_service.balances.get(bob, "GC")["balance"] == "55.00"
    bob_history = idle_service.transactions.history(
        bob, limit=10, cursor=None, asset_code=None, transaction_type=None
    )
    assert [t["transaction_type"] for t in bob_history.items] == ["bonus", "topup"]
    assert idle_service.balances.get(carol, "DI")["balance"] == "0.00"


def test_a_refused_command_in_a_batch_is_decided_for_its_key(idle_service: WalletService) -> None:
    """A refusal inside a batch is kept for its key; a retry gets it again, even after a top-up."""
    user_id = new_user()
    key = new_key()
    requests = [
        request("topup", user_id, "10.00"),
        request("purchase", user_id, "20.00", key=key),
        request("topup", user_id, "10.00"),
    ]
    outcomes = asyncio.run(post_as_one_batch(idle_service, requests))
    assert [o.error.code if o.error else None for o in outcomes] == [
        None,
        "insufficient_funds",
        None,
    ]

    async def retry() -> Outcome:
        return await idle_service.transactions.post(request("purchase", user_id, "20.00", key=key))

    again = asyncio.run(retry())
    assert again.replayed
    assert again.error is not None
    assert again.error.code == "insufficient_funds"
    assert idle_service.balances.get(user_id, "GC")["balance"] == "20.00"


def transactions_seen_by_a_new_connection(database_url: str, ids: list[str]) -> set[str]:
    """Ask the database itself, on a connection of its own, outside the service."""
    placeholders = ", ".join(["?"] * len(ids))
    sql = f"SELECT id FROM transactions WHERE id IN ({placeholders})"
    if database_url.startswith("sqlite"):
        with closing(sqlite3.connect(sqlite_path(database_url))) as connection:
            return {row[0] for row in connection.execute(sql, ids)}
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(sql.replace("?", "%s"), ids).fetchall()
        return {row[0] for row in rows}


def test_concurrent_commands_share_commits_and_are_durable_when_answered(
    database_url: str,
) -> None:
    service = WalletService(Settings(database_url=database_url, seed=False))
    service.start()
    try:
        users = [new_user() for _ in range(10)]
        requests = [request("topup", users[n % 10], "1.00") for n in range(200)]
        batches_before = service.writer.batches_committed

        async def post_all() -> list[Outcome]:
            return await asyncio.gather(*(service.transactions.post(r) for r in requests))

        outcomes = asyncio.run(post_all())

        batches = service.writer.batches_committed - batches_before
        assert 1 <= batches < len(requests)
        assert all(o.error is None for o in outcomes)
        acknowledged = [o.transaction_id for o in outcomes if o.transaction_id is not None]
        assert len(set(acknowledged)) == len(requests)
        # Every answer came after its commit: the data is in the database, not in a buffer of
        # the service, while the service is still running.
        assert transactions_seen_by_a_new_connection(database_url, acknowledged) == set(
            acknowledged
        )
        for user_id in users:
            assert service.balances.get(user_id, "GC")["balance"] == "20.00"
    finally:
        service.stop()
