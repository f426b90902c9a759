"""Model-based test of credits that expire: a hypothesis state machine drives the service (in
process, a fresh database per run, on both backends, with a clock it moves by hand) through
credits with and without expiry (GC with its own ``expires_at``, LP whose credits expire after 30
days), purchases, holds placed, released and captured in part, purchase refunds, chargebacks,
batches, clock moves and sweeps, and compares, after every step, every balance, every open lot
(what is left of it) and each account's number of expiry transactions (one per sweep that found
lots of it due) with a small model of the rules (service/lots.py).

The run is seeded by the ``seed`` fixture, which a failure prints with the command that replays it.
"""

from __future__ import annotations

import copy
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import hypothesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    get_state_machine_test,
    invariant,
    precondition,
    rule,
)

from tests.flows.factories import query
from tests.support.clock import US_PER_S, ManualClock
from tests.support.databases import DatabaseFactory
from tests.support.rawdb import connect
from wallet.api import create_app
from wallet.config import Settings
from wallet.service.clock import format_us
from wallet.service.wallet import WalletService

from .checks import assert_ledger_ok, new_key, new_user

MAX_EXAMPLES = 10
STEPS = 30
ASSETS = ("GC", "LP")
LP_DAYS = 30
CENTS = st.integers(min_value=1, max_value=5_000)
# A GC credit's own expiry, in seconds from now (None: it never expires).
EXPIRES_IN = st.sampled_from([None, None, 60, 3_600, 86_400, 2 * 86_400])
# How far a step moves the clock.
ADVANCE_S = st.sampled_from([1, 61, 3_600, 86_400, 3 * 86_400, 31 * 86_400])
HOLD_EXPIRES_IN_S = 5 * 86_400

Account = tuple[str, str]


def money(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


@dataclass
class Lot:
    id: str
    account: Account
    expires_at_us: int
    remaining: int

    @property
    def order(self) -> tuple[int, str]:
        return (self.expires_at_us, self.id)


@dataclass
class Debit:
    """A purchase or a hold's placement: what it took from each lot ([taken, given back])."""

    account: Account
    cents: int
    draws: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class Hold:
    account: Account
    cents: int
    transaction_id: str
    expires_at_us: int
    status: str = "pending"


@dataclass
class Original:
    account: Account
    kind: str
    cents: int
    refunded: int = 0
    lot_id: str | None = None


@dataclass
class Model:
    """The rules, written plainly: balances, lots, and what each debit took from them."""

    balances: dict[Account, int] = field(default_factory=dict)
    held: dict[Account, int] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)
    lots: dict[str, Lot] = field(default_factory=dict)
    debits: dict[str, Debit] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)
    originals: dict[str, Original] = field(default_factory=dict)
    # How many expiry transactions each account has had: one per sweep that found lots due.
    expiries: dict[Account, int] = field(default_factory=dict)

    def balance(self, account: Account) -> int:
        return self.balances.get(account, 0)

    def move(self, account: Account, cents: int) -> None:
        self.balances[account] = self.balance(account) + cents
        assert self.balances[account] >= 0

    def open_lots(self, account: Account) -> list[Lot]:
        mine = [lot for lot in self.lots.values() if lot.account == account and lot.remaining]
        return sorted(mine, key=lambda lot: lot.order)

    def take(self, account: Account, debit: Debit, cents: int, first: str | None = None) -> None:
        """Take from lots, soonest first (after ``first``), credit without expiry last."""
        order = self.open_lots(account)
        if first is not None and self.lots[first].remaining:
            order = [self.lots[first]] + [lot for lot in order if lot.id != first]
        need = cents
        for lot in order:
            taken = min(need, lot.remaining)
            if taken:
                lot.remaining -= taken
                debit.draws.setdefault(lot.id, [0, 0])[0] += taken
                need -= taken

    def give_back(self, debit: Debit, given_before: int, cents: int) -> None:
        """Undo a debit in reverse: credit without expiry first, then the latest lots."""
        drawn = sum(taken for taken, _ in debit.draws.values())
        returned = sum(back for _, back in debit.draws.values())
        plain_left = (debit.cents - drawn) - (given_before - returned)
        rest = cents - min(cents, plain_left)
        for lot in sorted((self.lots[i] for i in debit.draws), key=lambda x: x.order, reverse=True):
            draw = debit.draws[lot.id]
            back = min(rest, draw[0] - draw[1])
            draw[1] += back
            lot.remaining += back
            rest -= back
        assert rest == 0

    def expire_holds(self, now_us: int) -> None:
        for hold in self.holds.values():
            if hold.status == "pending" and hold.expires_at_us <= now_us:
                hold.status = "expired"
                self.held[hold.account] -= hold.cents
                self.move(hold.account, hold.cents)
                self.give_back(self.debits[hold.transaction_id], 0, hold.cents)

    def expire_lots(self, now_us: int) -> None:
        """Every due lot, in one expiry per account (a run never has LOT_EXPIRY_LOTS_MAX)."""
        expiring: set[Account] = set()
        for lot in self.lots.values():
            if lot.remaining and lot.expires_at_us <= now_us:
                self.move(lot.account, -lot.remaining)
                lot.remaining = 0
                expiring.add(lot.account)
        for account in expiring:
            self.expiries[account] = self.expiries.get(account, 0) + 1


def make_machine(databases: DatabaseFactory) -> type[RuleBasedStateMachine]:
    class LotsMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.stack = ExitStack()
            self.database_url = databases.fresh()
            with connect(self.database_url) as db:
                db.run(f"UPDATE assets SET expires_after_days = {LP_DAYS} WHERE code = 'LP'")
            self.clock = ManualClock()
            config = Settings(
                database_url=self.database_url,
                hold_sweep_interval_s=3600,
                lot_sweep_interval_s=3600,
            )
            self.service = WalletService(config, clock=self.clock)
            app = create_app(config, self.service)
            self.client = self.stack.enter_context(TestClient(app, raise_server_exceptions=False))
            self.users = [new_user() for _ in range(2)]
            self.model = Model()

        def teardown(self) -> None:
            try:
                assert_ledger_ok(self.database_url)
                report = self.client.get("/admin/verify").json()
                assert report["ok"], report
            finally:
                self.stack.close()

        # --- helpers -------------------------------------------------------------------------

        def post(self, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
            response = self.client.post(path, json=payload, headers={"Idempotency-Key": new_key()})
            assert response.status_code != 500, response.text
            return response.status_code, response.json()

        def expect(self, status: int, body: Any, want: int, code: str | None = None) -> None:
            assert status == want, (want, code, status, body)
            if code is not None:
                assert body["code"] == code, body

        def lot_of(self, transaction_id: str) -> tuple[str, int]:
            [(lot_id, expires_at_us)] = query(
                self.database_url,
                f"SELECT id, expires_at_us FROM lots WHERE transaction_id = '{transaction_id}'",
            )
            return str(lot_id), int(expires_at_us)

        def credit_payload(
            self, kind: str, user: int, asset: str, cents: int, expires_in: int | None
        ) -> dict[str, Any]:
            payload: dict[str, Any] = {
                "transaction_type": kind,
                "user_id": self.users[user],
                "asset_code": asset,
                "amount": money(cents),
            }
            if expires_in is not None:
                payload["expires_at"] = format_us(self.clock.now_us() + expires_in * US_PER_S)
            return payload

        def credited(self, model: Model, payload: dict[str, Any], transaction_id: str) -> None:
            """What a credit made: its lot, if it is one (checking its expiry)."""
            account = (payload["user_id"], payload["asset_code"])
            cents = int(Decimal(payload["amount"]) * 100)
            model.move(account, cents)
            model.known.add(payload["user_id"])
            original = Original(account, payload["transaction_type"], cents)
            expected: int | None = None
            if "expires_at" in payload:
                expected = self.clock.now_us() + payload["_expires_in"] * US_PER_S
            elif payload["asset_code"] == "LP":
                expected = self.clock.now_us() + LP_DAYS * 86_400 * US_PER_S
            if expected is not None:
                lot_id, expires_at_us = self.lot_of(transaction_id)
                assert expires_at_us == expected
                model.lots[lot_id] = Lot(lot_id, account, expires_at_us, cents)
                original.lot_id = lot_id
            model.originals[transaction_id] = original

        # --- rules ---------------------------------------------------------------------------

        @rule(
            kind=st.sampled_from(["topup", "bonus"]),
            user=st.integers(0, 1),
            asset=st.sampled_from(ASSETS),
            cents=CENTS,
            expires_in=EXPIRES_IN,
        )
        def credit(
            self, kind: str, user: int, asset: str, cents: int, expires_in: int | None
        ) -> None:
            payload = self.credit_payload(kind, user, asset, cents, expires_in)
            status, body = self.post("/transaction", payload)
            self.expect(status, body, 201)
            self.credited(self.model, {**payload, "_expires_in": expires_in}, body["id"])

        def purchase_in(self, model: Model, account: Account, cents: int) -> str | None:
            """The outcome a purchase should have, as an error code (None: it succeeds)."""
            if account[0] not in model.known:
                return "user_not_found"
            if model.balance(account) < cents:
                return "insufficient_funds"
            return None

        def purchased(self, model: Model, account: Account, cents: int, tid: str) -> None:
            model.move(account, -cents)
            debit = model.debits[tid] = Debit(account, cents)
            model.take(account, debit, cents)
            model.originals[tid] = Original(account, "purchase", cents)

        @rule(user=st.integers(0, 1), asset=st.sampled_from(ASSETS), cents=CENTS)
        def purchase(self, user: int, asset: str, cents: int) -> None:
            account = (self.users[user], asset)
            payload = {
                "transaction_type": "purchase",
                "user_id": account[0],
                "asset_code": asset,
                "amount": money(cents),
            }
            status, body = self.post("/transaction", payload)
            refused = self.purchase_in(self.model, account, cents)
            if refused is not None:
                self.expect(status, body, 404 if refused == "user_not_found" else 422, refused)
                return
            self.expect(status, body, 201)
            self.purchased(self.model, account, cents, body["id"])

        @precondition(lambda self: bool(self.model.originals))
        @rule(data=st.data(), whole=st.booleans(), cents=CENTS)
        def refund(self, data: st.DataObject, whole: bool, cents: int) -> None:
            model = self.model
            transaction_id = data.draw(st.sampled_from(sorted(model.originals)))
            original = model.originals[transaction_id]
            left = original.cents - original.refunded
            payload: dict[str, Any] = {"transaction_type": "refund", "refund_of": transaction_id}
            if not whole:
                payload["amount"] = money(cents)
            status, body = self.post("/transaction", payload)
            wanted = left if whole else cents
            to_user = wanted if original.kind == "purchase" else -wanted
            if left == 0 or wanted > left:
                self.expect(status, body, 422, "refund_exceeds_original")
                return
            if model.balance(original.account) + to_user < 0:
                self.expect(status, body, 422, "insufficient_funds")
                return
            self.expect(status, body, 201)
            model.move(original.account, to_user)
            if original.kind == "purchase":
                model.give_back(model.debits[transaction_id], original.refunded, wanted)
            else:
                chargeback = Debit(original.account, wanted)
                model.take(original.account, chargeback, wanted, first=original.lot_id)
            original.refunded += wanted

        @rule(user=st.integers(0, 1), asset=st.sampled_from(ASSETS), cents=CENTS)
        def place_hold(self, user: int, asset: str, cents: int) -> None:
            account = (self.users[user], asset)
            payload = {
                "user_id": account[0],
                "asset_code": asset,
                "amount": money(cents),
                "expires_in_seconds": HOLD_EXPIRES_IN_S,
            }
            status, body = self.post("/holds", payload)
            refused = self.purchase_in(self.model, account, cents)
            if refused is not None:
                self.expect(status, body, 404 if refused == "user_not_found" else 422, refused)
                return
            self.expect(status, body, 201)
            model = self.model
            transaction_id = body["transactions"][0]
            model.move(account, -cents)
            model.held[account] = model.held.get(account, 0) + cents
            debit = model.debits[transaction_id] = Debit(account, cents)
            model.take(account, debit, cents)
            expires_at_us = self.clock.now_us() + HOLD_EXPIRES_IN_S * US_PER_S
            model.holds[body["id"]] = Hold(account, cents, transaction_id, expires_at_us)

        @precondition(lambda self: bool(self.model.holds))
        @rule(data=st.data(), action=st.sampled_from(["capture", "release"]), part=st.booleans())
        def settle_hold(self, data: st.DataObject, action: str, part: bool) -> None:
            model = self.model
            hold_id = data.draw(st.sampled_from(sorted(model.holds)))
            hold = model.holds[hold_id]
            payload: dict[str, Any] = {}
            captured = hold.cents
            if action == "capture" and part:
                captured = data.draw(st.integers(1, hold.cents))
                payload["amount"] = money(captured)
            status, body = self.post(f"/holds/{hold_id}/{action}", payload)
            late = self.clock.now_us() >= hold.expires_at_us and hold.status == "pending"
            if action == "capture" and (hold.status == "expired" or late):
                self.expect(status, body, 409, "hold_expired")
                return
            if hold.status != "pending":
                self.expect(status, body, 409, "hold_not_pending")
                return
            self.expect(status, body, 200)
            model.held[hold.account] -= hold.cents
            back = hold.cents - captured if action == "capture" else hold.cents
            model.move(hold.account, back)
            if back:
                model.give_back(model.debits[hold.transaction_id], 0, back)
            hold.status = "captured" if action == "capture" else "released"

        @rule(
            items=st.lists(
                st.tuples(
                    st.sampled_from(["topup", "purchase"]),
                    st.integers(0, 1),
                    st.sampled_from(ASSETS),
                    CENTS,
                    EXPIRES_IN,
                ),
                min_size=1,
                max_size=3,
            )
        )
        def batch(self, items: list[tuple[str, int, str, int, int | None]]) -> None:
            payloads = []
            for kind, user, asset, cents, expires_in in items:
                if kind == "topup":
                    payloads.append(self.credit_payload(kind, user, asset, cents, expires_in))
                else:
                    payloads.append(
                        {
                            "transaction_type": kind,
                            "user_id": self.users[user],
                            "asset_code": asset,
                            "amount": money(cents),
                        }
                    )
            status, body = self.post("/transaction/batch", {"transactions": payloads})
            # Each item sees the ones before it; one refusal refuses them all.
            trial = copy.deepcopy(self.model)
            refused = None
            for payload in payloads:
                if payload["transaction_type"] == "purchase":
                    account = (payload["user_id"], payload["asset_code"])
                    cents = int(Decimal(payload["amount"]) * 100)
                    refused = self.purchase_in(trial, account, cents)
                    if refused is not None:
                        break
                    trial.move(account, -cents)
                else:
                    account = (payload["user_id"], payload["asset_code"])
                    trial.move(account, int(Decimal(payload["amount"]) * 100))
                    trial.known.add(payload["user_id"])
            if refused is not None:
                self.expect(status, body, 422, "batch_failed")
                return
            self.expect(status, body, 201)
            for payload, (_, _, _, _, expires_in), transaction in zip(
                payloads, items, body["transactions"], strict=True
            ):
                if payload["transaction_type"] == "purchase":
                    account = (payload["user_id"], payload["asset_code"])
                    cents = int(Decimal(payload["amount"]) * 100)
                    self.purchased(self.model, account, cents, transaction["id"])
                else:
                    self.credited(
                        self.model, {**payload, "_expires_in": expires_in}, transaction["id"]
                    )

        @rule(seconds=ADVANCE_S)
        def advance(self, seconds: int) -> None:
            self.clock.advance(seconds)

        @rule()
        def sweep(self) -> None:
            """The hold sweeper, then the lot sweep, each to the end."""
            portal = self.client.portal
            assert portal is not None
            while portal.call(self.service.holds.expire_due):
                pass
            while portal.call(self.service.expiry.expire_due)[1]:
                pass
            now_us = self.clock.now_us()
            self.model.expire_holds(now_us)
            self.model.expire_lots(now_us)

        # --- after every step ----------------------------------------------------------------

        @invariant()
        def balances_and_lots_match_the_model(self) -> None:
            model = self.model
            for user_id in self.users:
                response = self.client.get(f"/balance/{user_id}")
                if user_id not in model.known:
                    assert response.status_code == 404, response.text
                    continue
                for item in response.json()["balances"]:
                    if item["asset_code"] in ASSETS:
                        account = (user_id, item["asset_code"])
                        assert item["balance"] == money(model.balance(account)), item
                        assert item["held"] == money(model.held.get(account, 0)), item
            users = ", ".join(f"'{user}'" for user in self.users)
            stored = query(
                self.database_url,
                "SELECT l.id, l.remaining_minor FROM lots l JOIN accounts a ON a.id = l.account_id"
                f" WHERE a.owner_id IN ({users}) AND l.remaining_minor > 0",
            )
            expected = {lot.id: lot.remaining for lot in model.lots.values() if lot.remaining}
            assert {str(i): int(r) for i, r in stored} == expected
            open_sums = query(
                self.database_url,
                "SELECT owner_id, asset_code, lots_open_minor FROM accounts"
                f" WHERE owner_type = 'user' AND owner_id IN ({users})",
            )
            for owner_id, asset_code, open_minor in open_sums:
                lots = model.open_lots((owner_id, asset_code))
                assert int(open_minor) == sum(lot.remaining for lot in lots)
            expiries = query(
                self.database_url,
                "SELECT user_id, asset_code, count(*) FROM transactions"
                f" WHERE transaction_type = 'expiry' AND user_id IN ({users})"
                " GROUP BY user_id, asset_code",
            )
            assert {(str(u), str(a)): int(n) for u, a, n in expiries} == model.expiries

    return LotsMachine


def test_lots_behave_like_their_model(databases: DatabaseFactory, seed: int) -> None:
    machine = make_machine(databases)
    run = get_state_machine_test(
        machine,
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    hypothesis.seed(seed)(run)()
