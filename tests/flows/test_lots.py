"""Credits that expire (API.md, "Credits that expire"): lots made by credits, the order debits
take from them and give-backs return to them, on both backends, with the service's clock moved
by hand (service/lots.py has the rules).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.clock import US_PER_S, ManualClock
from tests.support.rawdb import connect
from wallet.api import create_app
from wallet.config import Settings
from wallet.service import expiring
from wallet.service.clock import format_us
from wallet.service.wallet import WalletService

from .factories import balance, check_lots, query, sweep_lots, transact

DAY_US = 86_400 * US_PER_S


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def app(database_url: str, clock: ManualClock) -> Iterator[TestClient]:
    """The service on a database whose LP credits expire after 30 days (GC's never), with a
    clock the test moves, and no expiry sweep unless a test runs one."""
    with connect(database_url) as db:
        db.run("UPDATE assets SET expires_after_days = 30 WHERE code = 'LP'")
    settings = Settings(
        database_url=database_url, hold_sweep_interval_s=3600, lot_sweep_interval_s=3600
    )
    service = WalletService(settings, clock=clock)
    with TestClient(create_app(settings, service), raise_server_exceptions=False) as client:
        yield client


def credit(client: TestClient, user_id: str, amount: Any, asset: str = "GC", **body: Any) -> Any:
    response = transact(
        client,
        transaction_type=body.pop("transaction_type", "topup"),
        user_id=user_id,
        asset_code=asset,
        amount=amount,
        **body,
    )
    assert response.status_code == 201, response.text
    return response.json()


def at(clock: ManualClock, seconds: float) -> str:
    """An RFC 3339 instant ``seconds`` after the clock's now."""
    return format_us(clock.now_us() + round(seconds * US_PER_S))


def lots(database_url: str, user_id: str, asset: str = "GC") -> list[tuple[int, int, str]]:
    """The user's lots (amount, remaining, credit's transaction id), by expiry and id."""
    return [
        (int(amount), int(remaining), transaction_id)
        for amount, remaining, transaction_id in query(
            database_url,
            "SELECT l.amount_minor, l.remaining_minor, l.transaction_id FROM lots l"
            " JOIN accounts a ON a.id = l.account_id"
            f" WHERE a.owner_type = 'user' AND a.owner_id = '{user_id}'"
            f" AND a.asset_code = '{asset}' ORDER BY l.expires_at_us, l.id",
        )
    ]


def open_minor(database_url: str, user_id: str, asset: str = "GC") -> int:
    (value,) = query(
        database_url,
        "SELECT lots_open_minor FROM accounts"
        f" WHERE owner_type = 'user' AND owner_id = '{user_id}' AND asset_code = '{asset}'",
    )[0]
    return int(value)


# --- lots made by credits -------------------------------------------------------------------------


def test_a_credit_with_expires_at_is_a_lot(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    plain = credit(app, "alice", 50)
    expiring = credit(app, "alice", 30, expires_at=at(clock, 3600))
    bonus = credit(app, "alice", 20, transaction_type="bonus", expires_at=at(clock, 60))
    assert lots(database_url, "alice") == [(2000, 2000, bonus["id"]), (3000, 3000, expiring["id"])]
    assert open_minor(database_url, "alice") == 5000
    assert balance(app, "alice") == "100.00"
    (expires_at_us,) = query(
        database_url, f"SELECT expires_at_us FROM lots WHERE transaction_id = '{bonus['id']}'"
    )[0]
    assert int(expires_at_us) == clock.now_us() + 60 * US_PER_S
    assert plain["id"] not in {t for _, _, t in lots(database_url, "alice")}
    check_lots(database_url)


def test_an_asset_with_a_policy_makes_every_credit_a_lot(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    topup_ = credit(app, "bob", 10, asset="LP")
    own = credit(app, "bob", 5, asset="LP", expires_at=at(clock, 86_400))
    assert lots(database_url, "bob", "LP") == [(500, 500, own["id"]), (1000, 1000, topup_["id"])]
    rows = query(
        database_url,
        f"SELECT expires_at_us, created_at_us FROM lots WHERE transaction_id = '{topup_['id']}'",
    )
    assert [(int(e) - int(c)) for e, c in rows] == [30 * DAY_US]
    # Never-expiring assets make no lot; accounts without lots keep zeros.
    credit(app, "bob", 10)
    assert lots(database_url, "bob") == []
    assert open_minor(database_url, "bob") == 0
    check_lots(database_url)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"transaction_type": "purchase"}, "only for a top-up or a bonus"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "in the future"),
        ({"expires_at": "9999-01-01T00:00:00Z"}, "at most 10 years ahead"),
        ({"expires_at": "tomorrow"}, "RFC 3339"),
        ({"expires_at": 1893456000}, "RFC 3339"),
    ],
)
def test_expires_at_is_checked(
    app: TestClient, clock: ManualClock, body: dict[str, Any], message: str
) -> None:
    credit(app, "carol", 10)
    request = {
        "transaction_type": "topup",
        "user_id": "carol",
        "asset_code": "GC",
        "amount": 1,
        "expires_at": at(clock, 60),
        **body,
    }
    response = app.post("/transaction", json=request)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert message in response.text


def test_a_retry_after_its_expires_at_passed_gets_its_replay(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    # A credit decided while its expires_at was ahead; its answer lost; the retry comes later.
    expires_at = at(clock, 60)
    body = {
        "transaction_type": "topup",
        "user_id": "late",
        "asset_code": "GC",
        "amount": "3.00",
        "expires_at": expires_at,
    }
    first = app.post("/transaction", json=body, headers={"Idempotency-Key": "k-late"})
    batch = {"transactions": [body, {**body, "transaction_type": "bonus"}]}
    first_batch = app.post("/transaction/batch", json={**batch, "idempotency_key": "k-late-b"})
    assert first.status_code == 201, first.text
    assert first_batch.status_code == 201, first_batch.text
    clock.advance(120)

    retry = app.post("/transaction", json=body, headers={"Idempotency-Key": "k-late"})
    retry_batch = app.post("/transaction/batch", json={**batch, "idempotency_key": "k-late-b"})
    new_key = app.post("/transaction", json=body, headers={"Idempotency-Key": "k-late-2"})

    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert retry_batch.status_code == 201, retry_batch.text
    assert retry_batch.json() == first_batch.json()
    # A key never decided is a new request, checked against the clock: refused, and still free.
    assert new_key.status_code == 422
    assert new_key.json()["code"] == "validation_error"
    assert len(lots(database_url, "late")) == 3


def test_expires_at_on_a_refund_or_a_hold_is_refused(app: TestClient, clock: ManualClock) -> None:
    topup_ = credit(app, "dave", 10)
    refund = transact(
        app, transaction_type="refund", refund_of=topup_["id"], expires_at=at(clock, 9)
    )
    assert refund.status_code == 422
    hold = app.post(
        "/holds",
        json={"user_id": "dave", "asset_code": "GC", "amount": 1, "expires_at": at(clock, 9)},
    )
    assert hold.status_code == 422


def test_ten_years_ahead_is_the_limit(app: TestClient, clock: ManualClock) -> None:
    credit(app, "erin", 1, expires_at=at(clock, 3650 * 86_400))
    response = transact(
        app,
        transaction_type="topup",
        user_id="erin",
        asset_code="GC",
        amount=1,
        expires_at=at(clock, 3655 * 86_400),
    )
    assert response.status_code == 422


def test_expires_at_is_part_of_the_idempotency_payload(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    expires_at = at(clock, 600)
    first = credit(app, "frank", 10, idempotency_key="k-lot", expires_at=expires_at)
    again = app.post(
        "/transaction",
        json={
            "transaction_type": "topup",
            "user_id": "frank",
            "asset_code": "GC",
            "amount": "10.00",
            "idempotency_key": "k-lot",
            "expires_at": expires_at,
        },
    )
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first["id"]
    other = transact(
        app,
        transaction_type="topup",
        user_id="frank",
        asset_code="GC",
        amount=10,
        idempotency_key="k-lot",
        expires_at=at(clock, 601),
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(lots(database_url, "frank")) == 1


def test_batch_items_may_make_lots(app: TestClient, database_url: str, clock: ManualClock) -> None:
    items = [
        {
            "transaction_type": "topup",
            "user_id": "gina",
            "asset_code": "GC",
            "amount": 10,
            "expires_at": at(clock, 60),
        },
        {"transaction_type": "bonus", "user_id": "gina", "asset_code": "LP", "amount": 5},
    ]
    response = app.post("/transaction/batch", json={"transactions": items})
    assert response.status_code == 201, response.text
    assert [a for a, _, _ in lots(database_url, "gina")] == [1000]
    assert [a for a, _, _ in lots(database_url, "gina", "LP")] == [500]
    refused = app.post(
        "/transaction/batch",
        json={"transactions": [{**items[0], "transaction_type": "purchase"}]},
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"][:3] == ["body", "transactions", 0]
    check_lots(database_url)


# --- debits, give-backs, chargebacks, batches ----------------------------------------------------


def spend(client: TestClient, user_id: str, amount: Any) -> Any:
    response = transact(
        client, transaction_type="purchase", user_id=user_id, asset_code="GC", amount=amount
    )
    assert response.status_code == 201, response.text
    return response.json()


def refund(client: TestClient, original: Any, amount: Any = None) -> Any:
    body: dict[str, Any] = {"transaction_type": "refund", "refund_of": original["id"]}
    if amount is not None:
        body["amount"] = amount
    response = transact(client, **body)
    assert response.status_code == 201, response.text
    return response.json()


def remaining(database_url: str, user_id: str) -> dict[str, int]:
    """What is left of each of the user's GC lots, by the id of the credit that made it."""
    return {t: r for _, r, t in lots(database_url, user_id)}


def test_debits_take_the_soonest_expiring_lots_first(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    credit(app, "hana", 50)
    later = credit(app, "hana", 40, expires_at=at(clock, 10 * 86_400))["id"]
    sooner = credit(app, "hana", 20, expires_at=at(clock, 5 * 86_400))["id"]
    spend(app, "hana", 30)
    assert remaining(database_url, "hana") == {sooner: 0, later: 3000}
    spend(app, "hana", 50)
    assert remaining(database_url, "hana") == {sooner: 0, later: 0}
    assert (balance(app, "hana"), open_minor(database_url, "hana")) == ("30.00", 0)
    check_lots(database_url)


def test_a_purchase_refund_gives_back_in_reverse(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    credit(app, "ivan", 10)
    sooner = credit(app, "ivan", 20, expires_at=at(clock, 5 * 86_400))["id"]
    later = credit(app, "ivan", 20, expires_at=at(clock, 10 * 86_400))["id"]
    bought = spend(app, "ivan", 45)  # 20 + 20 from the lots, 5 without expiry
    assert remaining(database_url, "ivan") == {sooner: 0, later: 0}
    refund(app, bought, 10)  # 5 without expiry first, then the latest lot
    assert remaining(database_url, "ivan") == {sooner: 0, later: 500}
    refund(app, bought)
    assert remaining(database_url, "ivan") == {sooner: 2000, later: 2000}
    assert (balance(app, "ivan"), open_minor(database_url, "ivan")) == ("50.00", 4000)
    check_lots(database_url)


def test_holds_take_from_lots_and_give_back_what_is_not_captured(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    sooner = credit(app, "jude", 30, expires_at=at(clock, 5 * 86_400))["id"]
    later = credit(app, "jude", 30, expires_at=at(clock, 10 * 86_400))["id"]
    hold = app.post("/holds", json={"user_id": "jude", "asset_code": "GC", "amount": 50}).json()
    assert remaining(database_url, "jude") == {sooner: 0, later: 1000}
    captured = app.post(f"/holds/{hold['id']}/capture", json={"amount": 20})
    assert captured.status_code == 200, captured.text
    # The 30 not captured goes back to the latest lot first: what stays spent expires soonest.
    assert remaining(database_url, "jude") == {sooner: 1000, later: 3000}
    other = app.post("/holds", json={"user_id": "jude", "asset_code": "GC", "amount": 35}).json()
    assert remaining(database_url, "jude") == {sooner: 0, later: 500}
    released = app.post(f"/holds/{other['id']}/release")
    assert released.status_code == 200, released.text
    assert remaining(database_url, "jude") == {sooner: 1000, later: 3000}
    assert (balance(app, "jude"), open_minor(database_url, "jude")) == ("40.00", 4000)
    check_lots(database_url)


def test_an_expired_hold_gives_back_to_its_lots(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    lot = credit(app, "kyle", 30, expires_at=at(clock, 86_400))["id"]
    hold = app.post(
        "/holds",
        json={"user_id": "kyle", "asset_code": "GC", "amount": 20, "expires_in_seconds": 60},
    ).json()
    assert remaining(database_url, "kyle") == {lot: 1000}
    clock.advance(61)
    service = app.app.state.service  # type: ignore[attr-defined]
    assert app.portal.call(service.holds.expire_due) == 1  # type: ignore[union-attr]
    assert app.get(f"/holds/{hold['id']}").json()["status"] == "expired"
    assert remaining(database_url, "kyle") == {lot: 3000}
    check_lots(database_url)


def test_a_chargeback_takes_from_its_own_lot_first(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    sooner = credit(app, "lena", 10, expires_at=at(clock, 5 * 86_400))
    later = credit(app, "lena", 10, expires_at=at(clock, 10 * 86_400))
    credit(app, "lena", 1)
    refund(app, later, 5)
    assert remaining(database_url, "lena") == {sooner["id"]: 1000, later["id"]: 500}
    spend(app, "lena", 12)  # 10 from the sooner lot, 2 from the later
    assert remaining(database_url, "lena") == {sooner["id"]: 0, later["id"]: 300}
    refund(app, later, 4)  # its lot's 3, then 1 without expiry
    assert remaining(database_url, "lena") == {sooner["id"]: 0, later["id"]: 0}
    assert (balance(app, "lena"), open_minor(database_url, "lena")) == ("0.00", 0)
    check_lots(database_url)


def test_a_failed_batch_leaves_the_lots_as_they_were(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    lot = credit(app, "mona", 30, expires_at=at(clock, 86_400))["id"]
    before = query(database_url, "SELECT count(*) FROM lot_draws")
    items = [
        {"transaction_type": "purchase", "user_id": "mona", "asset_code": "GC", "amount": 10},
        {
            "transaction_type": "topup",
            "user_id": "mona",
            "asset_code": "GC",
            "amount": 5,
            "expires_at": at(clock, 60),
        },
        {"transaction_type": "purchase", "user_id": "mona", "asset_code": "GC", "amount": 100},
    ]
    response = app.post("/transaction/batch", json={"transactions": items})
    assert response.status_code == 422
    assert response.json()["code"] == "batch_failed"
    assert lots(database_url, "mona") == [(3000, 3000, lot)]
    assert query(database_url, "SELECT count(*) FROM lot_draws") == before
    assert open_minor(database_url, "mona") == 3000
    # The same batch without its failing item: each item sees the lots the ones before left (the
    # second purchase takes the first new lot, which expires sooner, then the old one).
    response = app.post("/transaction/batch", json={"transactions": items[:2] * 2})
    assert response.status_code == 201, response.text
    assert sorted(r for _, r, _ in lots(database_url, "mona")) == [0, 500, 1500]
    check_lots(database_url)


def test_a_lot_given_back_after_its_expiry_expires_at_the_next_sweep(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    lot = credit(app, "nina", 30, expires_at=at(clock, 60))["id"]
    bought = spend(app, "nina", 30)
    clock.advance(61)
    assert sweep_lots(app) == (0, 0, False)
    refund(app, bought, 12)
    assert remaining(database_url, "nina") == {lot: 1200}
    assert sweep_lots(app) == (1, 1, False)
    assert remaining(database_url, "nina") == {lot: 0}
    assert balance(app, "nina") == "0.00"
    kinds = [t["transaction_type"] for t in app.get("/transaction/nina/history").json()["items"]]
    assert kinds == ["expiry", "refund", "purchase", "topup"]
    check_lots(database_url)


# --- expiry --------------------------------------------------------------------------------------


def test_what_is_left_of_a_lot_expires_once(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    credit(app, "omar", 5)
    lot = credit(app, "omar", 30, expires_at=at(clock, 60))["id"]
    spend(app, "omar", 10)
    monitor = app.post(
        "/admin/monitors",
        json={"asset_code": "GC", "user_id": "omar", "condition": "below", "threshold": 10},
    )
    assert monitor.status_code == 201, monitor.text
    after = int(app.get("/events", params={"limit": 1}).json()["next_after"])
    start = int(app.get("/events", params={"after": after, "limit": 1000}).json()["next_after"])
    clock.advance(59)
    assert sweep_lots(app).read == 0
    before_us = clock.now_us()
    clock.advance(1)
    assert sweep_lots(app).read == 1
    assert remaining(database_url, "omar") == {lot: 0}
    assert (balance(app, "omar"), open_minor(database_url, "omar")) == ("5.00", 0)
    history = app.get("/transaction/omar/history").json()["items"]
    expiry = history[0]
    assert expiry["transaction_type"] == "expiry"
    assert (expiry["amount"], expiry["balance_after"], expiry["user_id"]) == (
        "20.00",
        "5.00",
        "omar",
    )
    assert [(e["account_type"], e["account_id"], e["amount"]) for e in expiry["entries"]] == [
        ("user", "omar", "-20.00"),
        ("system", "expired", "20.00"),
    ]
    assert [e["balance_before"] for e in expiry["entries"]] == ["25.00", "0.00"]
    # In the balance as of any instant: before the expiry, after it.
    as_of = app.get("/balance/omar/GC", params={"as_of": format_us(before_us)}).json()
    assert as_of["balance"] == "25.00"
    assert app.get("/balance/omar/GC", params={"as_of": at(clock, 1)}).json()["balance"] == "5.00"
    # In the events: the transaction as it is shown, and the monitor's crossing.
    events = app.get("/events", params={"after": start, "limit": 1000}).json()["items"]
    assert [e["type"] for e in events] == ["transaction.created", "balance.threshold_crossed"]
    assert events[0]["data"]["id"] == expiry["id"]
    # Once: another pass, later, finds nothing to do.
    clock.advance(3600)
    assert sweep_lots(app).read == 0
    kinds = [t["transaction_type"] for t in app.get("/transaction/omar/history").json()["items"]]
    assert kinds.count("expiry") == 1
    draws = query(
        database_url,
        "SELECT d.transaction_id, d.amount_minor, d.returned_minor FROM lot_draws d"
        f" JOIN lots l ON l.id = d.lot_id WHERE l.transaction_id = '{lot}'",
    )
    assert sorted((t, int(a), int(r)) for t, a, r in draws) == sorted(
        [(history[1]["id"], 1000, 0), (expiry["id"], 2000, 0)]
    )
    check_lots(database_url)


def test_a_frozen_account_s_lots_still_expire(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    lot = credit(app, "pia", 30, expires_at=at(clock, 60))["id"]
    frozen = app.post("/admin/users/pia/freeze", json={"reason": "fraud check"})
    assert frozen.status_code in (200, 201), frozen.text
    clock.advance(60)
    assert sweep_lots(app).read == 1
    assert remaining(database_url, "pia") == {lot: 0}
    assert balance(app, "pia") == "0.00"
    check_lots(database_url)


def expiries_of(database_url: str, user_id: str) -> list[tuple[str, int, int, str]]:
    """The user's GC expiry transactions (id, amount, draws, description), oldest first."""
    return [
        (str(tid), int(amount), int(draws), str(description))
        for tid, amount, draws, description in query(
            database_url,
            "SELECT t.id, t.amount_minor, count(d.lot_id), t.description FROM transactions t"
            " LEFT JOIN lot_draws d ON d.transaction_id = t.id"
            f" WHERE t.transaction_type = 'expiry' AND t.user_id = '{user_id}'"
            " AND t.asset_code = 'GC' GROUP BY t.seq, t.id, t.amount_minor, t.description"
            " ORDER BY t.seq",
        )
    ]


def test_a_user_s_lots_due_together_expire_in_one_transaction(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    first = credit(app, "ulla", 30, expires_at=at(clock, 60))["id"]
    second = credit(app, "ulla", 20, expires_at=at(clock, 90))["id"]
    third = credit(app, "ulla", 10, transaction_type="bonus", expires_at=at(clock, 120))["id"]
    not_yet = credit(app, "ulla", 40, expires_at=at(clock, 3600))["id"]
    credit(app, "ulla", 5)
    bought = spend(app, "ulla", 12)  # from the first lot, which expires soonest
    other = credit(app, "vic", 7, expires_at=at(clock, 100))["id"]
    clock.advance(120)
    # Four due lots read, two accounts: two transactions, expiring four lots.
    assert sweep_lots(app) == (4, 4, False)
    [(expiry, amount, draws, description)] = expiries_of(database_url, "ulla")
    assert (amount, draws, description) == (4800, 3, "expiry of 3 lots")
    assert remaining(database_url, "ulla") == {first: 0, second: 0, third: 0, not_yet: 4000}
    assert (balance(app, "ulla"), open_minor(database_url, "ulla")) == ("45.00", 4000)
    drawn = query(
        database_url,
        "SELECT l.transaction_id, d.amount_minor, d.returned_minor FROM lot_draws d"
        f" JOIN lots l ON l.id = d.lot_id WHERE d.transaction_id = '{expiry}'",
    )
    assert sorted((t, int(a), int(r)) for t, a, r in drawn) == sorted(
        [(first, 1800, 0), (second, 2000, 0), (third, 1000, 0)]
    )
    history = app.get("/transaction/ulla/history").json()["items"]
    assert [(t["transaction_type"], t["amount"]) for t in history[:2]] == [
        ("expiry", "48.00"),
        ("purchase", "12.00"),
    ]
    assert history[1]["id"] == bought["id"]
    assert [(a, d, text) for _, a, d, text in expiries_of(database_url, "vic")] == [
        (700, 1, "expiry of 1 lot")
    ]
    assert remaining(database_url, "vic") == {other: 0}
    # The lot not yet due expires at its own time, in a transaction of its own.
    clock.advance(3600)
    assert sweep_lots(app) == (1, 1, False)
    assert [(a, d) for _, a, d, _ in expiries_of(database_url, "ulla")] == [(4800, 3), (4000, 1)]
    assert balance(app, "ulla") == "5.00"
    check_lots(database_url)


def make_many_lots(app: TestClient, clock: ManualClock) -> None:
    """700 lots of 1.00 GC: 100 for each of seven users, due in 60 to 62 seconds."""
    for user in range(7):
        items = [
            {
                "transaction_type": "bonus",
                "user_id": f"q{user}",
                "asset_code": "GC",
                "amount": 1,
                "expires_at": at(clock, 60 + index % 3),
            }
            for index in range(100)
        ]
        response = app.post("/transaction/batch", json={"transactions": items})
        assert response.status_code == 201, response.text


def assert_no_gc_lot_open(database_url: str) -> None:
    # The seed's LP openings are lots too, a year away: only GC's were due.
    open_gc = query(
        database_url,
        "SELECT count(*) FROM lots l JOIN accounts a ON a.id = l.account_id"
        " WHERE l.remaining_minor > 0 AND a.asset_code = 'GC'",
    )
    assert open_gc == [(0,)]


def test_a_sweep_expires_each_account_s_due_lots_at_once(
    app: TestClient,
    database_url: str,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Here a transaction may take all 100 due lots of an account (the next test: fewer).
    monkeypatch.setattr(expiring, "LOT_EXPIRY_LOTS_MAX", 100)
    make_many_lots(app, clock)
    clock.advance(120)
    # A full batch of 500 due lots names the seven accounts: all 700 lots expire in that pass.
    assert sweep_lots(app) == (500, 700, True)
    assert sweep_lots(app) == (0, 0, False)
    assert_no_gc_lot_open(database_url)
    for user in range(7):
        assert [(a, d) for _, a, d, _ in expiries_of(database_url, f"q{user}")] == [(10000, 100)]
    check_lots(database_url)


def test_an_account_with_more_due_lots_than_a_transaction_takes_expires_over_passes(
    app: TestClient, database_url: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expiring, "LOT_EXPIRY_LOTS_MAX", 30)
    make_many_lots(app, clock)
    clock.advance(120)
    passes = []
    for _ in range(10):
        passes.append(sweep_lots(app))
        if not passes[-1].more:
            break
    # 30 lots of each of the seven accounts a pass, the soonest first; a pass that read less
    # than a full batch but took as many lots of an account as one transaction may asks for the
    # next at once (more may be due), and the last says there is nothing more.
    assert passes == [(500, 210, True), (490, 210, True), (280, 210, True), (70, 70, False)]
    assert_no_gc_lot_open(database_url)
    for user in range(7):
        expiries = expiries_of(database_url, f"q{user}")
        assert [(a, d) for _, a, d, _ in expiries] == [(3000, 30)] * 3 + [(1000, 10)]
        order = query(
            database_url,
            "SELECT d.transaction_id FROM lot_draws d JOIN lots l ON l.id = d.lot_id"
            f" WHERE d.transaction_id IN ({', '.join(repr(e[0]) for e in expiries)})"
            " ORDER BY l.expires_at_us, l.id",
        )
        # Each expiry took the soonest-expiring lots of those left.
        assert [str(t) for (t,) in order] == [e[0] for e in expiries for _ in range(e[2])]
    check_lots(database_url)


def test_a_batch_debits_the_lots_of_several_users(
    app: TestClient, database_url: str, clock: ManualClock
) -> None:
    """The first pages of the debited accounts' lots are read together (one statement on
    PostgreSQL): each account gets its own."""
    made = {
        user: [credit(app, user, 10, expires_at=at(clock, 60 * n))["id"] for n in (3, 1, 2)]
        for user in ("rita", "sam", "tom")
    }
    credit(app, "tom", 100)
    items = [
        {"transaction_type": "purchase", "user_id": user, "asset_code": "GC", "amount": amount}
        for user, amount in (("rita", 15), ("sam", 5), ("tom", 35), ("sam", 20))
    ]
    response = app.post("/transaction/batch", json={"transactions": items})
    assert response.status_code == 201, response.text
    # Each user's lots by expiry: (3 min, 1 min, 2 min) as made.
    assert remaining(database_url, "rita") == dict(zip(made["rita"], (1000, 0, 500), strict=True))
    assert remaining(database_url, "sam") == dict(zip(made["sam"], (500, 0, 0), strict=True))
    assert remaining(database_url, "tom") == dict(zip(made["tom"], (0, 0, 0), strict=True))
    assert balance(app, "tom") == "95.00"
    check_lots(database_url)
