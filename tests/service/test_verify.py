"""The ledger audit, on both backends: the books balance after real traffic, and every kind of
damage done to them behind the service's back is found and named, to the cent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.flows.factories import sweep_lots
from tests.support.clock import US_PER_S, ManualClock
from tests.support.factories import bonus, post, purchase, topup
from tests.support.server import ServerProcess
from tests.support.tamper import rows, tamper
from wallet.api import create_app
from wallet.config import Settings
from wallet.service import verify as verify_module
from wallet.service.clock import format_us
from wallet.service.verify import VerifyReport, verify_ledger
from wallet.service.wallet import WalletService
from wallet.storage import Database, open_database

# The seed: 3 assets, each with an issuance and a treasury account, and 2 users with an account
# in each; one issuance per asset and one opening top-up per user and asset.
SEED_ACCOUNTS = 3 * 2 + 2 * 3
SEED_TRANSACTIONS = 3 + 2 * 3


def audit(client: TestClient) -> VerifyReport:
    database: Database = client.app.state.service.database  # type: ignore[attr-defined]
    return verify_ledger(database)


@pytest.fixture
def story(client: TestClient) -> dict[str, Any]:
    """Alice tops up 100 GC, spends 25, gets 50 LP; Bob tops up 10 DI; Alice overspends."""
    posted = {
        "alice_topup": topup(client, "alice", "100.00"),
        "alice_purchase": purchase(client, "alice", "25.00"),
        "alice_bonus": bonus(client, "alice", 50, "LP"),
        "bob_topup": topup(client, "bob", 10, "DI"),
    }
    assert post(client, "purchase", "alice", 1000).status_code == 422
    return posted


def last_entry(database_url: str, owner_id: str, asset: str) -> tuple[int, str]:
    """The id and transaction id of an account's newest entry."""
    [(entry_id, transaction_id)] = rows(
        database_url,
        "SELECT e.id, e.transaction_id FROM entries e JOIN accounts a ON a.id = e.account_id"
        f" WHERE a.owner_id = '{owner_id}' AND a.asset_code = '{asset}'"
        " ORDER BY e.id DESC LIMIT 1",
    )
    return entry_id, transaction_id


def entry_where(owner_id: str, asset: str) -> str:
    """SQL for 'the account's newest entry', for an UPDATE or DELETE of entries."""
    return (
        "id = (SELECT max(e.id) FROM entries e JOIN accounts a ON a.id = e.account_id"
        f" WHERE a.owner_id = '{owner_id}' AND a.asset_code = '{asset}')"
    )


def test_the_seeded_books_balance(client: TestClient) -> None:
    assert audit(client) == VerifyReport(
        ok=True,
        accounts_checked=SEED_ACCOUNTS,
        transactions_checked=SEED_TRANSACTIONS,
        problems=[],
    )


def test_the_books_balance_after_transactions_and_a_refusal(
    client: TestClient, story: dict[str, Any]
) -> None:
    report = audit(client)

    assert report.problems == []
    assert report.ok
    # Alice's GC and LP accounts and Bob's DI account; the refused purchase left nothing.
    assert report.accounts_checked == SEED_ACCOUNTS + 3
    assert report.transactions_checked == SEED_TRANSACTIONS + 4


def test_a_stored_balance_off_its_entries_is_named(
    client: TestClient, story: dict[str, Any], database_url: str
) -> None:
    tamper(
        database_url,
        "UPDATE accounts SET balance_minor = balance_minor + 1"
        " WHERE owner_id = 'alice' AND asset_code = 'GC'",
    )

    report = audit(client)

    assert not report.ok
    assert report.problems == [
        "account user:alice GC: stored balance 75.01 GC is not the sum of its entries, 75.00 GC",
        "asset GC: the accounts other than issuance hold 1000000000000.01 GC,"
        " but the supply is 1000000000000.00 GC",
    ]


def test_an_entry_that_does_not_start_where_the_previous_one_ended_is_named(
    client: TestClient, story: dict[str, Any], database_url: str
) -> None:
    entry_id, transaction_id = last_entry(database_url, "alice", "GC")
    tamper(
        database_url,
        "UPDATE entries SET balance_before = balance_before + 1, balance_after = balance_after + 1"
        f" WHERE {entry_where('alice', 'GC')}",
    )

    assert audit(client).problems == [
        f"entry {entry_id} of account user:alice GC, transaction {transaction_id}:"
        " starts from 100.01 GC, but the account's previous entry ended at 100.00 GC"
    ]
    assert transaction_id == story["alice_purchase"]["id"]


def test_an_account_whose_first_entry_does_not_start_from_zero_is_named(
    client: TestClient, story: dict[str, Any], database_url: str
) -> None:
    entry_id, transaction_id = last_entry(database_url, "bob", "DI")
    tamper(
        database_url,
        "UPDATE entries SET balance_before = 1, balance_after = balance_after + 1"
        f" WHERE {entry_where('bob', 'DI')}",
    )

    assert audit(client).problems == [
        f"entry {entry_id} of account user:bob DI, transaction {transaction_id}:"
        " the account's first entry starts from 0.01 DI, not from zero"
    ]


def test_an_entry_whose_arithmetic_is_wrong_is_named(
    client: TestClient, story: dict[str, Any], database_url: str
) -> None:
    entry_id, transaction_id = last_entry(database_url, "alice", "GC")
    tamper(
        database_url, f"UPDATE entries SET balance_after = 7501 WHERE {entry_where('alice', 'GC')}"
    )

    assert audit(client).problems == [
        f"entry {entry_id} of account user:alice GC, transaction {transaction_id}:"
        " balance_after 75.01 GC is not balance_before 100.00 GC plus the amount -25.00 GC"
    ]


def test_a_transaction_whose_entries_do_not_sum_to_zero_is_named(
    client: TestClient, story: dict[str, Any], database_url: str
) -> None:
    tamper(
        database_url,
        "UPDATE entries SET amount_minor = amount_minor - 1, balance_after = balance_after - 1"
        f" WHERE {entry_where('alice', 'GC')}",
    )

    transaction_id = story["alice_purchase"]["id"]
    assert audit(client).problems == [
        "account user:alice GC: stored balance 75.00 GC is not the sum of its entries, 74.99 GC",
        f"transaction {transaction_id}: 2 entries summing to -0.01 GC;"
        " a transaction needs at least 2 entries that sum to zero",
    ]


def test_a_transaction_with_a_single_entry_is_named(
    client: TestClient, story: dict[str, Any], database_url: str
) -> None:
    tamper(database_url, f"DELETE FROM entries WHERE {entry_where('treasury', 'DI')}")

    problems = audit(client).problems

    transaction_id = story["bob_topup"]["id"]
    assert (
        f"transaction {transaction_id}: 1 entry summing to 10.00 DI;"
        " a transaction needs at least 2 entries that sum to zero"
    ) in problems
    assert any(p.startswith("account system:treasury DI: stored balance") for p in problems)


def test_a_negative_balance_is_named(
    client: TestClient, story: dict[str, Any], database_url: str
) -> None:
    tamper(
        database_url,
        "UPDATE accounts SET balance_minor = -500 WHERE owner_id = 'bob' AND asset_code = 'DI'",
    )

    assert audit(client).problems == [
        "account user:bob DI: stored balance -5.00 DI is not the sum of its entries, 10.00 DI",
        "account user:bob DI: balance -5.00 DI is below zero",
        "asset DI: the accounts other than issuance hold 999999999985.00 DI,"
        " but the supply is 1000000000000.00 DI",
    ]


def test_a_supply_that_the_accounts_do_not_add_up_to_is_named(
    client: TestClient, story: dict[str, Any], database_url: str
) -> None:
    tamper(database_url, "UPDATE assets SET supply_minor = supply_minor + 100 WHERE code = 'LP'")

    assert audit(client).problems == [
        "asset LP: the accounts other than issuance hold 1000000000000.00 LP,"
        " but the supply is 1000000000001.00 LP",
        "asset LP: the issuance account is at -1000000000000.00 LP,"
        " not minus the supply, -1000000000001.00 LP",
    ]


def test_an_entry_without_its_transaction_is_named(
    client: TestClient, story: dict[str, Any], database_url: str
) -> None:
    tamper(
        database_url,
        "INSERT INTO entries (transaction_id, account_id, amount_minor, balance_before,"
        " balance_after, created_at_us)"
        " SELECT 'no-such-transaction', id, 1, balance_minor, balance_minor + 1, 0"
        " FROM accounts WHERE owner_id = 'alice' AND asset_code = 'LP'",
    )
    [(entry_id,)] = rows(
        database_url, "SELECT id FROM entries WHERE transaction_id = 'no-such-transaction'"
    )

    assert audit(client).problems == [
        "account user:alice LP: stored balance 50.00 LP is not the sum of its entries, 50.01 LP",
        f"entry {entry_id}: its transaction no-such-transaction does not exist",
    ]


def test_the_report_lists_a_bounded_number_of_problems_of_each_kind(
    client: TestClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_module, "VERIFY_PROBLEMS_PER_CHECK_MAX", 2)
    tamper(database_url, "UPDATE accounts SET balance_minor = balance_minor + 1")

    problems = audit(client).problems

    accounts = [p for p in problems if p.startswith("account ")]
    assert len(accounts) == 2
    assert "more accounts are wrong than the 2 listed" in problems


@pytest.mark.slow
def test_an_audit_during_writes_sees_balanced_books(server: ServerProcess) -> None:
    """Each audit reads one instant, so commits landing while it runs never look like damage."""
    stop = threading.Event()
    statuses: list[int] = []

    def write() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            while not stop.is_set():
                for kind in ("topup", "purchase"):
                    body = {"transaction_type": kind, "user_id": "carol", "asset_code": "GC"}
                    response = http.post("/transaction", json={**body, "amount": "1.00"})
                    statuses.append(response.status_code)

    writer = threading.Thread(target=write)
    writer.start()
    database = open_database(Settings(database_url=server.database_url))
    reports: list[VerifyReport] = []
    deadline = time.monotonic() + 60
    try:
        # Audit until a good number of writes have landed around the audits.
        while (len(statuses) < 200 or len(reports) < 5) and time.monotonic() < deadline:
            reports.append(verify_ledger(database))
    finally:
        stop.set()
        writer.join()
        database.close()

    assert [r.problems for r in reports] == [[]] * len(reports)
    assert len(statuses) >= 200
    assert set(statuses) == {201}
    assert reports[-1].transactions_checked > reports[0].transactions_checked


def test_the_metadata_index_must_hold_exactly_the_transactions_metadata(
    client: TestClient, database_url: str
) -> None:
    """A search by reference reads transaction_metadata: a member missing from it, or a row it
    holds that no transaction's metadata has, is named."""
    kept = topup(client, "meta_audit", "5.00", metadata={"order_id": "A-1", "store": "ios"})
    assert audit(client).ok, "metadata written by the service is indexed exactly"
    [(seq,)] = rows(database_url, f"SELECT seq FROM transactions WHERE id = '{kept['id']}'")

    tamper(
        database_url,
        f"DELETE FROM transaction_metadata WHERE seq = {seq} AND key = 'store'",
        f"INSERT INTO transaction_metadata (key, value, seq) VALUES ('order_id', 'B-2', {seq})",
    )

    assert audit(client).problems == [
        f"transaction {kept['id']}: store='ios' is missing from the metadata index",
        f"metadata index row seq {seq}: order_id='B-2' is not in its transaction's metadata",
    ]


def test_every_transaction_has_exactly_one_event_and_positions_no_gap(
    client: TestClient, database_url: str
) -> None:
    """The outbox: a transaction without its transaction.created event, an event twice, or a
    position missing is named."""
    first = topup(client, "event_audit", "5.00")
    second = topup(client, "event_audit", "6.00")
    assert audit(client).ok, "events written by the service match the ledger"
    [(position,)] = rows(
        database_url, f"SELECT position FROM events WHERE data LIKE '%{first['id']}%'"
    )
    [(last,)] = rows(database_url, "SELECT max(position) FROM events")
    [(data,)] = rows(database_url, f"SELECT data FROM events WHERE position = {last}")
    copied = str(data).replace("'", "''")

    tamper(
        database_url,
        f"DELETE FROM events WHERE position = {position}",
        "INSERT INTO events (position, id, type, created_at_us, data) VALUES"
        f" ({last + 1}, 'copy', 'transaction.created', 0, '{copied}')",
    )

    problems = audit(client).problems
    assert sorted(problems) == sorted(
        [
            f"transaction {first['id']}: no transaction.created event",
            f"transaction {second['id']}: more than one transaction.created event",
            f"event positions have a gap: {last} events at 1..{last + 1} of {last}",
        ]
    )


# --- lots (service/lots.py) -----------------------------------------------------------------------


@pytest.fixture
def lots_story(settings: Settings) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    """Alice gets 30 GC that expire in a minute and 20 that never do, spends 10 (from the lot),
    gets 5 GC that expire in half a minute, and what is left of both lots expires (one expiry,
    two draws); Bob gets 40 GC that expire in a day and holds 15 of them."""
    clock = ManualClock()
    settings = settings.model_copy(
        update={"hold_sweep_interval_s": 3600, "lot_sweep_interval_s": 3600}
    )
    service = WalletService(settings, clock=clock)
    with TestClient(create_app(settings, service), raise_server_exceptions=False) as client:
        soon = format_us(clock.now_us() + 60 * US_PER_S)
        later = format_us(clock.now_us() + 86_400 * US_PER_S)
        posted = {
            "alice_lot": post(client, "topup", "alice", 30, expires_at=soon).json(),
            "alice_plain": topup(client, "alice", 20),
            "alice_purchase": purchase(client, "alice", 10),
            "alice_lot2": post(
                client, "topup", "alice", 5, expires_at=format_us(clock.now_us() + 30 * US_PER_S)
            ).json(),
            "bob_lot": post(client, "topup", "bob", 40, expires_at=later).json(),
        }
        hold = client.post("/holds", json={"user_id": "bob", "asset_code": "GC", "amount": 15})
        assert hold.status_code == 201, hold.text
        clock.advance(60)
        assert sweep_lots(client) == (2, 2, False)
        [(expiry_id,)] = rows(
            settings.database_url, "SELECT id FROM transactions WHERE transaction_type = 'expiry'"
        )
        posted["expiry"] = {"id": expiry_id}
        yield client, posted


def test_books_with_lots_balance(lots_story: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = lots_story
    assert audit(client).problems == []


def test_an_account_s_lots_open_off_its_lots_is_named(
    lots_story: tuple[TestClient, dict[str, Any]], database_url: str
) -> None:
    client, _ = lots_story
    tamper(
        database_url,
        "UPDATE accounts SET lots_open_minor = lots_open_minor + 1"
        " WHERE owner_id = 'bob' AND asset_code = 'GC'",
    )
    assert audit(client).problems == [
        "account user:bob GC: lots_open_minor 25.01 GC is not the sum of its open lots, 25.00 GC"
    ]


def test_an_account_s_lots_made_off_its_lots_is_named(
    lots_story: tuple[TestClient, dict[str, Any]], database_url: str
) -> None:
    # At 0 the writer would skip the account's lots: its purchases would leave them untouched.
    client, _ = lots_story
    [(made,)] = rows(
        database_url,
        "SELECT lots_made FROM accounts WHERE owner_id = 'bob' AND asset_code = 'GC'",
    )
    tamper(
        database_url,
        "UPDATE accounts SET lots_made = 0 WHERE owner_id = 'bob' AND asset_code = 'GC'",
    )
    assert audit(client).problems == [
        f"account user:bob GC: lots_made 0 is not its number of lots, {made}"
    ]


def test_open_lots_above_the_balance_are_named(
    lots_story: tuple[TestClient, dict[str, Any]], database_url: str
) -> None:
    client, posted = lots_story
    # Bob's hold took 15 of his lot: give them back to the lot alone, not to the balance.
    tamper(
        database_url,
        "UPDATE lots SET remaining_minor = amount_minor"
        f" WHERE transaction_id = '{posted['bob_lot']['id']}'",
        "UPDATE accounts SET lots_open_minor = 4000 WHERE owner_id = 'bob' AND asset_code = 'GC'",
        "UPDATE lot_draws SET returned_minor = amount_minor WHERE lot_id IN"
        f" (SELECT id FROM lots WHERE transaction_id = '{posted['bob_lot']['id']}')",
    )
    assert audit(client).problems == [
        "account user:bob GC: its open lots, 40.00 GC, exceed its balance, 25.00 GC"
    ]


def test_a_lot_off_its_draws_is_named(
    lots_story: tuple[TestClient, dict[str, Any]], database_url: str
) -> None:
    client, posted = lots_story
    lot = posted["bob_lot"]["id"]
    tamper(
        database_url,
        f"UPDATE lots SET remaining_minor = remaining_minor - 1 WHERE transaction_id = '{lot}'",
        "UPDATE accounts SET lots_open_minor = lots_open_minor - 1"
        " WHERE owner_id = 'bob' AND asset_code = 'GC'",
    )
    [problem] = audit(client).problems
    assert problem.endswith(
        f"(credit {lot}): 2499 left (minor units), but its amount 4000 less what its draws kept"
        " (1500) is 2500"
    )


def test_a_lot_that_is_not_its_credit_s_is_named(
    lots_story: tuple[TestClient, dict[str, Any]], database_url: str
) -> None:
    client, posted = lots_story
    tamper(
        database_url,
        "UPDATE lots SET transaction_id = (SELECT id FROM transactions"
        " WHERE transaction_type = 'purchase' ORDER BY seq DESC LIMIT 1)"
        f" WHERE transaction_id = '{posted['bob_lot']['id']}'",
    )
    [problem] = audit(client).problems
    assert problem.endswith("is not a top-up or bonus of its amount to its account")


def test_an_expiry_without_its_draw_is_named(
    lots_story: tuple[TestClient, dict[str, Any]], database_url: str
) -> None:
    client, posted = lots_story
    expiry = posted["expiry"]["id"]
    tamper(database_url, f"DELETE FROM lot_draws WHERE transaction_id = '{expiry}'")
    problems = audit(client).problems
    assert (
        f"expiry {expiry}: 0 draws of 0 (minor units, 0 given back, 0 from another account's"
        " lots, 0 from lots not yet due), but its user's entry took 2500; an expiry takes what"
        " is left of its user's due lots, once"
    ) in problems
    # The two lots' own arithmetic no longer holds either.
    assert len(problems) == 3


def test_an_expiry_whose_draws_do_not_add_up_to_its_entry_is_named(
    lots_story: tuple[TestClient, dict[str, Any]], database_url: str
) -> None:
    # One draw 1 short, and its lot 1 more left: the lots add up, the expiry does not.
    client, posted = lots_story
    expiry = posted["expiry"]["id"]
    lot = f"(SELECT id FROM lots WHERE transaction_id = '{posted['alice_lot2']['id']}')"
    tamper(
        database_url,
        "UPDATE lot_draws SET amount_minor = amount_minor - 1"
        f" WHERE transaction_id = '{expiry}' AND lot_id = {lot}",
        f"UPDATE lots SET remaining_minor = 1 WHERE id = {lot}",
        "UPDATE accounts SET lots_open_minor = 1 WHERE owner_id = 'alice' AND asset_code = 'GC'",
    )
    assert audit(client).problems == [
        f"expiry {expiry}: 2 draws of 2499 (minor units, 0 given back, 0 from another account's"
        " lots, 0 from lots not yet due), but its user's entry took 2500; an expiry takes what"
        " is left of its user's due lots, once"
    ]


def test_an_expiry_of_a_lot_not_yet_due_is_named(
    lots_story: tuple[TestClient, dict[str, Any]], database_url: str
) -> None:
    # One of the expired lots moved a second past the expiry's instant: it was not due then.
    client, posted = lots_story
    expiry = posted["expiry"]["id"]
    tamper(
        database_url,
        "UPDATE lots SET expires_at_us ="
        f" (SELECT created_at_us + 1000000 FROM transactions WHERE id = '{expiry}')"
        f" WHERE transaction_id = '{posted['alice_lot']['id']}'",
    )
    assert audit(client).problems == [
        f"expiry {expiry}: 2 draws of 2500 (minor units, 0 given back, 0 from another account's"
        " lots, 1 from lots not yet due), but its user's entry took 2500; an expiry takes what"
        " is left of its user's due lots, once"
    ]


def test_an_expiry_given_back_is_named(
    lots_story: tuple[TestClient, dict[str, Any]], database_url: str
) -> None:
    client, posted = lots_story
    expiry = posted["expiry"]["id"]
    tamper(
        database_url,
        f"UPDATE lot_draws SET returned_minor = 5 WHERE transaction_id = '{expiry}' AND lot_id IN"
        f" (SELECT id FROM lots WHERE transaction_id = '{posted['alice_lot']['id']}')",
        f"UPDATE lots SET remaining_minor = 5 WHERE transaction_id = '{posted['alice_lot']['id']}'",
        "UPDATE accounts SET lots_open_minor = 5 WHERE owner_id = 'alice' AND asset_code = 'GC'",
    )
    [problem] = audit(client).problems
    assert problem.startswith(f"expiry {expiry}: 2 draws of 2500 (minor units, 5 given back")
