"""Credits that expire, against real service processes and the real clock: lots with an
``expires_at`` a few seconds ahead expire once each, in one ``expiry`` transaction per account,
with two processes sweeping the same database and one of them killed (SIGKILL) while it expires
them, then started again.

The only test of the feature that waits for real time; its waits are bounded, and what it checks
does not depend on which process expired which lot, nor on when the kill came.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.flows.factories import assert_invariants, check_lots, query
from tests.support.server import ServerProcess
from wallet.service.clock import format_us, now_us

pytestmark = pytest.mark.slow

USERS = 100
LOTS = 300
# Room for making the lots before they are due, even on a busy machine (they take well under a
# second): every lot of an account must be due at once for it to expire in one transaction.
EXPIRES_IN_S = 6
WAIT_S = 60.0
SWEEP = {"WALLET_LOT_SWEEP_INTERVAL_S": "0.1"}


def wait_for(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def expiries(database_url: str) -> int:
    return int(
        query(database_url, "SELECT count(*) FROM transactions WHERE transaction_type = 'expiry'")[
            0
        ][0]
    )


def test_lots_expire_once_across_two_processes_and_a_sigkill(
    database_url: str, tmp_path: Path
) -> None:
    first = ServerProcess(database_url, tmp_path / "first.log", **SWEEP).start()
    second = ServerProcess(database_url, tmp_path / "second.log", **SWEEP).start()
    try:
        expires_at = format_us(now_us() + EXPIRES_IN_S * 1_000_000)
        with httpx.Client(base_url=first.url, timeout=30) as client:
            for start in range(0, LOTS, 100):
                items = [
                    {
                        "transaction_type": "topup",
                        "user_id": f"lots-{index % USERS}",
                        "asset_code": "GC",
                        "amount": "1.00",
                        "expires_at": expires_at,
                    }
                    for index in range(start, start + 100)
                ]
                response = client.post("/transaction/batch", json={"transactions": items})
                assert response.status_code == 201, response.text
            # A credit without expiry stays.
            response = client.post(
                "/transaction",
                json={
                    "transaction_type": "topup",
                    "user_id": "lots-0",
                    "asset_code": "GC",
                    "amount": "7.00",
                },
            )
            assert response.status_code == 201, response.text
        assert expiries(database_url) == 0
        # Kill the first process as soon as the expiries have begun, then start it again.
        wait_for(lambda: expiries(database_url) > 0)
        first.kill()
        first.start()
        # Every account's lots were due together: one expiry each, whoever made it.
        wait_for(lambda: expiries(database_url) == USERS)
        # Nothing more comes: each lot expired once.
        time.sleep(0.5)
        assert expiries(database_url) == USERS
        # The test's lots (the seed's LP openings are lots too, a year away).
        theirs = (
            " JOIN accounts a ON a.id = l.account_id AND a.owner_id LIKE 'lots-%'"
            " AND a.asset_code = 'GC'"
        )
        per_lot = query(
            database_url,
            "SELECT l.id, count(t.id) FROM lots l" + theirs + " LEFT JOIN lot_draws d"
            " ON d.lot_id = l.id LEFT JOIN transactions t ON t.id = d.transaction_id"
            " AND t.transaction_type = 'expiry' GROUP BY l.id",
        )
        assert len(per_lot) == LOTS
        assert {int(count) for _, count in per_lot} == {1}
        per_expiry = query(
            database_url,
            "SELECT t.id, count(d.lot_id) FROM transactions t JOIN lot_draws d"
            " ON d.transaction_id = t.id WHERE t.transaction_type = 'expiry' GROUP BY t.id",
        )
        assert {int(count) for _, count in per_expiry} == {LOTS // USERS}
        still_open = "SELECT count(*) FROM lots l" + theirs + " WHERE l.remaining_minor > 0"
        assert query(database_url, still_open) == [(0,)]
        balances = dict(
            query(
                database_url,
                "SELECT owner_id, balance_minor FROM accounts"
                " WHERE owner_type = 'user' AND owner_id LIKE 'lots-%' AND asset_code = 'GC'",
            )
        )
        assert {k: int(v) for k, v in balances.items()} == {
            f"lots-{index}": 700 if index == 0 else 0 for index in range(USERS)
        }
        assert_invariants(database_url)
        with httpx.Client(base_url=second.url, timeout=120) as client:
            report = client.get("/admin/verify").json()
        assert report["ok"], report
    finally:
        first.kill()
        second.kill()


def test_racing_debits_and_give_backs_on_lots_across_two_processes(
    database_url: str, tmp_path: Path
) -> None:
    """Purchases, holds (released or captured in part) and refunds of users with lots, sent at
    once to two processes on one database: every account's open lots still add up to its
    lots_open_minor, at most its balance, and the audit finds the books right."""
    servers = [
        ServerProcess(database_url, tmp_path / f"{name}.log").start()
        for name in ("first", "second")
    ]
    users = [f"race-{index}" for index in range(4)]
    try:
        with httpx.Client(base_url=servers[0].url, timeout=30) as client:
            for user in users:
                for offset_s, amount in ((3_600, "30.00"), (86_400, "30.00"), (None, "20.00")):
                    body = {
                        "transaction_type": "topup",
                        "user_id": user,
                        "asset_code": "GC",
                        "amount": amount,
                    }
                    if offset_s is not None:
                        body["expires_at"] = format_us(now_us() + offset_s * 1_000_000)
                    assert client.post("/transaction", json=body).status_code == 201

        def work(worker: int) -> None:
            server = servers[worker % 2]
            with httpx.Client(base_url=server.url, timeout=30) as client:
                for step in range(12):
                    user = users[(worker + step) % len(users)]
                    if step % 3 == 0:
                        hold = client.post(
                            "/holds", json={"user_id": user, "asset_code": "GC", "amount": "7.00"}
                        )
                        if hold.status_code == 201:
                            action = "release" if step % 2 else "capture"
                            payload = {} if action == "release" else {"amount": "3.00"}
                            client.post(f"/holds/{hold.json()['id']}/{action}", json=payload)
                    else:
                        bought = client.post(
                            "/transaction",
                            json={
                                "transaction_type": "purchase",
                                "user_id": user,
                                "asset_code": "GC",
                                "amount": "4.00",
                            },
                        )
                        if bought.status_code == 201 and step % 2:
                            client.post(
                                "/transaction",
                                json={
                                    "transaction_type": "refund",
                                    "refund_of": bought.json()["id"],
                                    "amount": "1.50",
                                },
                            )

        threads = [threading.Thread(target=work, args=(worker,)) for worker in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S)
        assert not any(thread.is_alive() for thread in threads)
        check_lots(database_url)
        drawn = query(database_url, "SELECT count(*) FROM lot_draws")
        assert int(drawn[0][0]) > 0
        with httpx.Client(base_url=servers[1].url, timeout=120) as client:
            report = client.get("/admin/verify").json()
        assert report["ok"], report
    finally:
        for server in servers:
            server.kill()
