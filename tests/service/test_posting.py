"""One unit of work's postings, called directly on a real database (each backend): commands are
applied in order, each refused alone; idempotency keys replay their first outcome; refunds are
planned against what is left of their original; a batch is all or none; holds are placed and
settled. No writer thread, no HTTP: the test begins and commits the unit of work itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import orjson
import pytest

from wallet.config import Settings
from wallet.domain.holds import HoldAction, HoldStatus
from wallet.domain.ledger import HOLDS, ISSUANCE, TREASURY, AccountRef, TransactionType, Transfer
from wallet.service.commands import BatchCommand, Command, HoldCommand, Outcome, PostingCommand
from wallet.service.posting import apply_commands, transfer_of
from wallet.storage import Database, open_database
from wallet.storage import holds as hold_store
from wallet.storage import ledger as store

SCALES = {"GC": 2, "DI": 2, "LP": 2}
NOW_US = 1_800_000_000_000_000


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    opened = open_database(Settings(database_url=database_url, seed=False))
    yield opened
    opened.close()


def apply(database: Database, commands: Sequence[Command], now_us: int = NOW_US) -> list[Outcome]:
    """Apply ``commands`` in one unit of work and commit it, as the writer does."""
    connection = database.connect_writer()
    try:
        connection.begin()
        outcomes = apply_commands(connection.session, commands, SCALES, now_us)
        connection.commit()
    finally:
        connection.close()
    return outcomes


def posting(
    kind: str,
    user_id: str | None,
    amount_minor: int | None,
    key: str | None = None,
    *,
    refund_of: str | None = None,
    key_owner: str = "",
) -> PostingCommand:
    return PostingCommand(
        TransactionType(kind),
        user_id,
        "GC",
        amount_minor,
        idempotency_key=key,
        refund_of=refund_of,
        key_owner=key_owner,
    )


def codes(outcomes: Sequence[Outcome]) -> list[str | None]:
    return [None if o.error is None else o.error.code for o in outcomes]


def balance(database: Database, user_id: str) -> int | None:
    with database.reading() as session:
        return store.account_balance(session, AccountRef.user(user_id, "GC"))


def transactions_of(database: Database, user_id: str) -> list[str]:
    with database.reading() as session:
        rows = session.all(
            "SELECT transaction_type FROM transactions WHERE user_id = ? ORDER BY seq", (user_id,)
        )
    return [str(row[0]) for row in rows]


def body(outcome: Outcome) -> dict[str, object]:
    decoded: dict[str, object] = orjson.loads(outcome.body)
    return decoded


def test_the_supply_comes_from_the_issuance_account() -> None:
    command = PostingCommand(TransactionType.ISSUANCE, None, "GC", 10**14)
    assert transfer_of(command) == Transfer(
        AccountRef.system(ISSUANCE, "GC"), AccountRef.system(TREASURY, "GC"), 10**14
    )


def test_commands_apply_in_order_and_each_refusal_is_its_own(database: Database) -> None:
    outcomes = apply(
        database,
        [
            posting("topup", "alice", 10_000),
            posting("purchase", "alice", 3_000),  # spends the top-up just before it
            posting("purchase", "alice", 8_000),  # 70.00 left: refused alone
            posting("purchase", "ghost", 100),  # never credited: refused alone
            posting("purchase", "alice", 7_000),
        ],
    )

    assert codes(outcomes) == [None, None, "insufficient_funds", "user_not_found", None]
    assert outcomes[2].error is not None
    assert outcomes[2].error.detail == "alice has 70.00 GC, 80.00 needed"
    assert [body(outcomes[i])["balance_after"] for i in (0, 1, 4)] == ["100.00", "70.00", "0.00"]
    assert [o.transaction_id is None for o in outcomes] == [False, False, True, True, False]
    assert balance(database, "alice") == 0
    assert transactions_of(database, "alice") == ["topup", "purchase", "purchase"]
    assert balance(database, "ghost") is None, "a refused debit opens no account"


def test_a_key_replays_its_first_outcome_within_a_group_and_later(database: Database) -> None:
    first_group = apply(
        database,
        [
            posting("topup", "alice", 1_000, "k-topup"),
            posting("topup", "alice", 1_000, "k-topup"),
            posting("topup", "alice", 9_900, "k-topup"),  # the same key, another payload
            posting("purchase", "alice", 5_000, "k-purchase"),  # too much for 10.00
            posting("topup", "alice", 1_000, "k-topup", key_owner="another caller"),
        ],
    )
    later = apply(
        database,
        [
            posting("topup", "alice", 10_000),
            posting("topup", "alice", 1_000, "k-topup"),
            # Enough funds now, but the key's outcome was decided: the refusal again.
            posting("purchase", "alice", 5_000, "k-purchase"),
        ],
    )

    created, again, reused, refused, other_owner = first_group
    assert codes(first_group) == [None, None, "idempotency_key_reused", "insufficient_funds", None]
    assert (again.replayed, again.transaction_id, again.body) == (
        True,
        created.transaction_id,
        created.body,
    )
    assert other_owner.transaction_id != created.transaction_id
    assert codes(later) == [None, None, "insufficient_funds"]
    assert (later[1].replayed, later[1].transaction_id, later[1].body) == (
        True,
        created.transaction_id,
        created.body,
    )
    assert later[2].replayed
    assert later[2].body == refused.body
    assert not reused.replayed
    assert balance(database, "alice") == 1_000 + 1_000 + 10_000
    assert transactions_of(database, "alice") == ["topup", "topup", "topup"]


def test_refunds_are_planned_against_what_is_left_of_their_original(database: Database) -> None:
    _, purchase = apply(
        database, [posting("topup", "alice", 10_000), posting("purchase", "alice", 4_000)]
    )
    original = purchase.transaction_id
    assert original is not None

    outcomes = apply(
        database,
        [
            posting("refund", "alice", 1_500, refund_of=original),
            posting("refund", "alice", 2_600, refund_of=original),  # 25.00 left
            posting("refund", "alice", None, refund_of=original),  # the rest: 25.00
            posting("refund", "alice", None, refund_of=original),  # nothing left
            posting("refund", "alice", None, refund_of="t-never-posted"),
        ],
    )

    assert codes(outcomes) == [
        None,
        "refund_exceeds_original",
        None,
        "refund_exceeds_original",
        "transaction_not_found",
    ]
    assert [body(outcomes[i])["amount"] for i in (0, 2)] == ["15.00", "25.00"]
    assert body(outcomes[2])["balance_after"] == "100.00"
    assert balance(database, "alice") == 10_000
    with database.reading() as session:
        assert store.refunded_totals(session, [original]) == {original: 4_000}
    first_refund = outcomes[0].transaction_id
    [refused] = apply(database, [posting("refund", "alice", None, refund_of=first_refund)])
    assert codes([refused]) == ["not_refundable"]


def test_a_batch_is_applied_whole_or_not_at_all(database: Database) -> None:
    apply(database, [posting("topup", "alice", 1_000)])
    items = (posting("topup", "alice", 500), posting("purchase", "alice", 1_200))

    [applied] = apply(database, [BatchCommand(items)])
    [failed, after] = apply(
        database,
        [
            BatchCommand((posting("purchase", "alice", 300), posting("purchase", "alice", 1))),
            posting("topup", "alice", 1),  # the failed batch before it spoils nothing
        ],
    )

    assert applied.error is None
    transactions = body(applied)["transactions"]
    assert isinstance(transactions, list)
    assert [t["balance_after"] for t in transactions] == ["15.00", "3.00"]
    assert failed.error is not None
    assert failed.error.code == "batch_failed"
    assert body(failed)["errors"] == [
        {"index": 1, "code": "insufficient_funds", "detail": "alice has 0.00 GC, 0.01 needed"}
    ]
    assert after.error is None
    assert body(after)["balance_after"] == "3.01"
    assert transactions_of(database, "alice") == ["topup", "topup", "purchase", "topup"]


def test_a_hold_is_placed_and_settled_in_later_units_of_work(database: Database) -> None:
    apply(database, [posting("topup", "alice", 10_000)])
    [placed] = apply(
        database,
        [HoldCommand(HoldAction.PLACE, "alice", "GC", amount_minor=2_500, expires_in_s=60)],
    )
    hold_id = str(body(placed)["id"])

    [captured, again] = apply(
        database,
        [
            HoldCommand(HoldAction.CAPTURE, "alice", "GC", amount_minor=1_000, hold_id=hold_id),
            HoldCommand(HoldAction.RELEASE, "alice", "GC", hold_id=hold_id),
        ],
        NOW_US + 1,
    )

    assert captured.error is None
    assert codes([again]) == ["hold_not_pending"]
    assert (body(captured)["status"], body(captured)["captured_amount"]) == ("captured", "10.00")
    with database.reading() as session:
        stored = hold_store.get_hold(session, hold_id)
        holds_account = store.account_balance(session, AccountRef.system(HOLDS, "GC"))
    assert stored is not None
    assert (stored.status, stored.captured_minor) == (HoldStatus.CAPTURED, 1_000)
    assert holds_account == 0
    assert balance(database, "alice") == 9_000
    assert transactions_of(database, "alice") == ["topup", "hold", "capture", "release"]
