"""The writer's answers stay true when the database or the caller fails at the worst moment.

- A caller that gave up waiting (503) while its command was still queued: the command is
  withdrawn, so the 503 decided nothing.
- A COMMIT whose answer is lost after the database committed: the writer finds out and answers
  with the committed outcome, instead of applying the batch a second time.
- A COMMIT that really failed: the batch is applied again, once.
The faults are injected around a real connection to a real database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import pytest

import wallet.service.writer as writer_module
from wallet.config import Settings
from wallet.domain.errors import Unavailable
from wallet.service.transactions import TransactionInput
from wallet.service.wallet import WalletService
from wallet.storage import ledger as store
from wallet.storage.database import WriterConnection


def topup(user_id: str, amount: str = "5.00") -> TransactionInput:
    return TransactionInput("topup", user_id, "GC", Decimal(amount))


def count_transactions(service: WalletService, user_id: str) -> int:
    with service.database.reading() as session:
        return len(
            store.user_history(
                session, user_id, limit=100, before_seq=None, asset_code=None, transaction_type=None
            )
        )


@pytest.fixture
def service(database_url: str) -> Iterator[WalletService]:
    wallet = WalletService(Settings(database_url=database_url, seed=False))
    wallet.assets.refresh()
    try:
        yield wallet
    finally:
        wallet.stop()


def test_a_request_withdrawn_after_its_wait_timed_out_is_never_applied(
    service: WalletService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "WRITE_WAIT_TIMEOUT_S", 0.05)

    async def scenario() -> None:
        # The writer is not running yet, so the request waits in the queue past its bound.
        with pytest.raises(Unavailable):
            await service.transactions.post(topup("walked_away"))
        service.writer.start()
        # A later request is applied; the withdrawn one, queued before it, is not.
        outcome = await service.transactions.post(topup("stayed"))
        assert outcome.error is None

    asyncio.run(scenario())
    assert count_transactions(service, "walked_away") == 0
    assert count_transactions(service, "stayed") == 1


class _CommitFault(WriterConnection):
    """A real writer connection whose next COMMIT fails: before or after it took effect."""

    def __init__(self, inner: WriterConnection, error: Exception, *, after: bool) -> None:
        self.inner = inner
        self.session = inner.session
        self.error: Exception | None = error
        self.after = after

    def begin(self) -> None:
        self.inner.begin()

    def commit(self) -> None:
        error, self.error = self.error, None
        if error is None:
            self.inner.commit()
            return
        if self.after:
            self.inner.commit()
        raise error

    def rollback(self) -> None:
        self.inner.rollback()

    def close(self) -> None:
        self.inner.close()


def _transient_error(service: WalletService) -> Exception:
    """An error of the kind the backend reports when a connection is lost."""
    import sqlite3

    import psycopg

    if service.database.backend.value == "sqlite":
        return sqlite3.OperationalError("disk I/O error")
    return psycopg.OperationalError("server closed the connection unexpectedly")


@pytest.mark.parametrize("committed", [True, False], ids=["answer-lost", "commit-failed"])
def test_a_failed_commit_is_applied_exactly_once(service: WalletService, committed: bool) -> None:
    real = service.database.connect_writer()
    service.writer._connection = _CommitFault(real, _transient_error(service), after=committed)
    service.writer.start()

    async def scenario() -> list[str]:
        outcomes = await asyncio.gather(
            service.transactions.post(topup("once_a", "1.00")),
            service.transactions.post(topup("once_b", "2.00")),
        )
        assert [o.error for o in outcomes] == [None, None]
        return [str(o.transaction_id) for o in outcomes]

    ids = asyncio.run(scenario())
    assert count_transactions(service, "once_a") == 1
    assert count_transactions(service, "once_b") == 1
    with service.database.reading() as session:
        assert all(store.transaction_exists(session, i) for i in ids)
    assert service.balances.get("once_a", "GC")["balance"] == "1.00"
    assert service.balances.get("once_b", "GC")["balance"] == "2.00"
