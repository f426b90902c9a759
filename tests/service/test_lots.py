"""The writer's check of lots before commit (service/lots.py, LotBook.check): a unit of work
whose lot changes do not add up, or whose open lots would exceed a balance, never commits.
"""

from __future__ import annotations

import pytest

from tests.support.clock import ManualClock
from tests.support.databases import DatabaseFactory
from wallet.config import Settings
from wallet.domain.ledger import AccountRef, Asset
from wallet.service.lots import LotBook, check_expires_at, lot_expiry_us
from wallet.service.wallet import WalletService
from wallet.storage.lots import StoredLot

ALICE = AccountRef.user("alice", "GC")
DAY_US = 86_400 * 1_000_000


def book(open_minor: int = 0) -> LotBook:
    """A LotBook of one account that has no lot in the database (so it reads nothing)."""
    lots = LotBook.of(None, {ALICE: 1}, {ALICE: open_minor}, {ALICE: 1})  # type: ignore[arg-type]
    lots.cursors[ALICE] = (None, True)
    return lots


def left(lots: LotBook) -> list[tuple[int, int]]:
    return sorted((lot.expires_at_us, lot.remaining_minor) for lot in lots.lots[ALICE].values())


def test_a_credit_and_a_debit_add_up() -> None:
    lots = book()
    lots.credit(ALICE, "t1", 500, 2_000, 1_000)
    lots.credit(ALICE, "t2", 300, 1_500, 1_000)
    assert lots.debit(ALICE, "t3", 600) == 600
    # The sooner lot first, then the later one.
    remaining = sorted(
        (lot.expires_at_us, lot.remaining_minor) for lot in lots.lots[ALICE].values()
    )
    assert remaining == [(1_500, 0), (2_000, 200)]
    lots.check({ALICE: 200})
    lots.give_back(ALICE, "t3", 600, 0, 400)
    remaining = sorted(
        (lot.expires_at_us, lot.remaining_minor) for lot in lots.lots[ALICE].values()
    )
    assert remaining == [(1_500, 100), (2_000, 500)]
    lots.check({ALICE: 600})


def test_a_recorded_sum_that_its_lots_do_not_make_is_refused() -> None:
    lots = book()
    lots.credit(ALICE, "t1", 500, 2_000, 1_000)
    lots.open_minor[ALICE] += 1
    with pytest.raises(AssertionError, match="add up to 500, recorded 501"):
        lots.check({ALICE: 1_000})


def test_open_lots_above_the_balance_are_refused() -> None:
    lots = book()
    lots.credit(ALICE, "t1", 500, 2_000, 1_000)
    with pytest.raises(AssertionError, match="exceed its balance"):
        lots.check({ALICE: 499})


def test_a_debit_that_finds_fewer_lots_than_recorded_is_refused() -> None:
    lots = book(open_minor=100)  # recorded, but the database has no open lot of the account
    with pytest.raises(AssertionError, match="add up to less than recorded"):
        lots.debit(ALICE, "t1", 50)


def test_the_due_lots_are_the_first_of_the_debit_order() -> None:
    lots = book()
    for transaction_id, expires_at_us in (("t1", 3_000), ("t2", 1_000), ("t3", 2_000)):
        lots.credit(ALICE, transaction_id, 100, expires_at_us, 500)
    lots.debit(ALICE, "t4", 40)  # from the lot that expires at 1_000
    assert [(d.expires_at_us, d.remaining_minor) for d in lots.due(ALICE, 2_000, 10)] == [
        (1_000, 60),
        (2_000, 100),
    ]
    assert [d.expires_at_us for d in lots.due(ALICE, 2_000, 1)] == [1_000]
    assert lots.due(ALICE, 999, 10) == []
    # A debit of their sum takes each of them whole, and nothing else.
    assert lots.debit(ALICE, "t5", 160) == 160
    assert left(lots) == [(1_000, 0), (2_000, 0), (3_000, 100)]
    assert sorted(d.amount_minor for d in lots.draws["t5"].values()) == [60, 100]
    assert lots.due(ALICE, 2_000, 10) == []
    lots.check({ALICE: 100})


def test_a_lot_s_expiry() -> None:
    assert lot_expiry_us(None, None, 10) is None
    assert lot_expiry_us(None, 30, 10) == 10 + 30 * DAY_US
    assert lot_expiry_us(500, 30, 10) == 500
    # A request whose expires_at passed while it waited in the queue: expired at the next sweep.
    assert lot_expiry_us(5, None, 10) == 11
    check_expires_at(11, 10)
    with pytest.raises(Exception, match="in the future"):
        check_expires_at(10, 10)


def test_stored_lots_are_rows() -> None:
    lot = StoredLot("l", 1, "t", 5, 5, 2, 1)
    assert lot._replace(remaining_minor=3).remaining_minor == 3


def test_the_seed_s_openings_of_an_asset_whose_credits_expire_are_lots(
    databases: DatabaseFactory,
) -> None:
    """An LP that expires (as an operator set it, or a newer seed) before the openings are
    posted: they are lots like any credit of it."""
    url = databases.empty()
    service = WalletService(Settings(database_url=url, seed=False), clock=ManualClock())
    service.start()
    try:
        service.assets.add([Asset("LP", "Loyalty Points", 2, 10**12)])
        with service.database.unit_of_work() as session:
            session.run("UPDATE assets SET expires_after_days = 365 WHERE code = 'LP'")
        service.assets.refresh()
    finally:
        service.stop()
    seeded = WalletService(Settings(database_url=url, seed=True), clock=ManualClock())
    seeded.start()
    try:
        with seeded.database.reading() as session:
            rows = session.all(
                "SELECT acc.owner_id, acc.asset_code, l.amount_minor,"
                " l.expires_at_us - l.created_at_us FROM lots l"
                " JOIN accounts acc ON acc.id = l.account_id ORDER BY acc.owner_id"
            )
        assert [tuple(row) for row in rows] == [
            ("user_001", "LP", 20_000, 365 * DAY_US),
            ("user_002", "LP", 7_500, 365 * DAY_US),
        ]
    finally:
        seeded.stop()
