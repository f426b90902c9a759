"""Model-based test: a hypothesis state machine drives the service through its HTTP API (in
process, a fresh database per run) and compares every answer with a small Python model of the
contract: top-ups, bonuses, purchases, refunds, holds (place, capture all or part, release),
retries with old keys (the amount written another way: the same payload), and old keys reused
with another payload. After every step, every user's balance and held amount equal the model's.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.support.databases import DatabaseFactory
from wallet.api import create_app
from wallet.config import Settings

from .checks import assert_ledger_ok, new_key, new_user

MAX_EXAMPLES = 15
STEPS = 30
ASSETS = ("GC", "DI")
CENTS = st.integers(min_value=1, max_value=5_000)


def money(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def written(cents: int, style: int) -> object:
    """One amount, written one of the ways the contract says are the same payload."""
    if style == 0:
        return money(cents)
    if style == 1:
        return Decimal(cents) / 100  # sent as a JSON number, see _json
    return str(Decimal(cents) / 100)


def _json(payload: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: a Decimal amount becomes a JSON number with exactly its digits."""
    return {k: (float(v) if isinstance(v, Decimal) else v) for k, v in payload.items()}


@dataclass
class Sent:
    method: str
    path: str
    payload: dict[str, Any]
    status: int
    body: dict[str, Any]


@dataclass
class Hold:
    user: str
    asset: str
    cents: int
    status: str = "pending"


@dataclass
class Original:
    user: str
    asset: str
    kind: str
    cents: int
    refunded: int = 0


@dataclass
class Model:
    balances: dict[tuple[str, str], int] = field(default_factory=dict)
    held: dict[tuple[str, str], int] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)


def make_machine(databases: DatabaseFactory) -> type[RuleBasedStateMachine]:
    class WalletMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.stack = ExitStack()
            self.database_url = databases.fresh()
            app = create_app(Settings(database_url=self.database_url, seed=True))
            self.client = self.stack.enter_context(TestClient(app, raise_server_exceptions=False))
            self.users = [new_user() for _ in range(3)]
            self.model = Model()
            self.sent: dict[str, Sent] = {}
            self.holds: dict[str, Hold] = {}
            self.originals: dict[str, Original] = {}

        def teardown(self) -> None:
            try:
                assert_ledger_ok(self.database_url)
            finally:
                self.stack.close()

        # --- helpers -------------------------------------------------------------------------

        def balance(self, user: str, asset: str) -> int:
            return self.model.balances.get((user, asset), 0)

        def post(self, path: str, payload: dict[str, Any], key: str) -> tuple[int, Any]:
            response = self.client.post(path, json=_json(payload), headers={"Idempotency-Key": key})
            assert response.status_code != 500, response.text
            body = response.json()
            self.sent[key] = Sent("POST", path, payload, response.status_code, body)
            return response.status_code, body

        def expect(self, status: int, body: dict[str, Any], want: int, code: str | None) -> None:
            assert status == want, (want, code, status, body)
            if code is not None:
                assert body["code"] == code, body

        def move(self, user: str, asset: str, cents: int) -> None:
            self.model.balances[(user, asset)] = self.balance(user, asset) + cents
            assert self.model.balances[(user, asset)] >= 0

        # --- rules ---------------------------------------------------------------------------

        @rule(
            kind=st.sampled_from(["topup", "bonus"]),
            user=st.integers(0, 2),
            asset=st.sampled_from(ASSETS),
            cents=CENTS,
            style=st.integers(0, 2),
        )
        def credit(self, kind: str, user: int, asset: str, cents: int, style: int) -> None:
            user_id = self.users[user]
            payload = {
                "transaction_type": kind,
                "user_id": user_id,
                "asset_code": asset,
                "amount": written(cents, style),
            }
            status, body = self.post("/transaction", payload, new_key())
            self.expect(status, body, 201, None)
            self.move(user_id, asset, cents)
            self.model.known.add(user_id)
            assert body["balance_after"] == money(self.balance(user_id, asset))
            self.originals[body["id"]] = Original(user_id, asset, kind, cents)

        @rule(user=st.integers(0, 2), asset=st.sampled_from(ASSETS), cents=CENTS)
        def purchase(self, user: int, asset: str, cents: int) -> None:
            user_id = self.users[user]
            payload = {
                "transaction_type": "purchase",
                "user_id": user_id,
                "asset_code": asset,
                "amount": money(cents),
            }
            status, body = self.post("/transaction", payload, new_key())
            if user_id not in self.model.known:
                self.expect(status, body, 404, "user_not_found")
            elif self.balance(user_id, asset) < cents:
                self.expect(status, body, 422, "insufficient_funds")
            else:
                self.expect(status, body, 201, None)
                self.move(user_id, asset, -cents)
                assert body["balance_after"] == money(self.balance(user_id, asset))
                self.originals[body["id"]] = Original(user_id, asset, "purchase", cents)

        @precondition(lambda self: bool(self.originals))
        @rule(data=st.data(), whole=st.booleans(), cents=CENTS)
        def refund(self, data: st.DataObject, whole: bool, cents: int) -> None:
            transaction_id = data.draw(st.sampled_from(sorted(self.originals)))
            original = self.originals[transaction_id]
            remaining = original.cents - original.refunded
            payload: dict[str, Any] = {"transaction_type": "refund", "refund_of": transaction_id}
            if not whole:
                payload["amount"] = money(cents)
            status, body = self.post("/transaction", payload, new_key())
            wanted = remaining if whole else cents
            to_user = wanted if original.kind == "purchase" else -wanted
            if remaining == 0 or wanted > remaining:
                self.expect(status, body, 422, "refund_exceeds_original")
            elif self.balance(original.user, original.asset) + to_user < 0:
                self.expect(status, body, 422, "insufficient_funds")
            else:
                self.expect(status, body, 201, None)
                self.move(original.user, original.asset, to_user)
                original.refunded += wanted
                assert body["refund_of"] == transaction_id
                assert body["amount"] == money(wanted)

        @rule(user=st.integers(0, 2), asset=st.sampled_from(ASSETS), cents=CENTS)
        def place_hold(self, user: int, asset: str, cents: int) -> None:
            user_id = self.users[user]
            payload = {"user_id": user_id, "asset_code": asset, "amount": money(cents)}
            status, body = self.post("/holds", payload, new_key())
            if user_id not in self.model.known:
                self.expect(status, body, 404, "user_not_found")
            elif self.balance(user_id, asset) < cents:
                self.expect(status, body, 422, "insufficient_funds")
            else:
                self.expect(status, body, 201, None)
                self.move(user_id, asset, -cents)
                self.model.held[(user_id, asset)] = self.model.held.get((user_id, asset), 0) + cents
                self.holds[body["id"]] = Hold(user_id, asset, cents)
                assert body["status"] == "pending"

        @precondition(lambda self: bool(self.holds))
        @rule(data=st.data(), action=st.sampled_from(["capture", "release"]), part=st.booleans())
        def settle_hold(self, data: st.DataObject, action: str, part: bool) -> None:
            hold_id = data.draw(st.sampled_from(sorted(self.holds)))
            hold = self.holds[hold_id]
            payload: dict[str, Any] = {}
            captured = hold.cents
            if action == "capture" and part:
                captured = data.draw(st.integers(1, hold.cents))
                payload["amount"] = money(captured)
            status, body = self.post(f"/holds/{hold_id}/{action}", payload, new_key())
            if hold.status != "pending":
                self.expect(status, body, 409, "hold_not_pending")
                return
            self.expect(status, body, 200, None)
            key = (hold.user, hold.asset)
            self.model.held[key] -= hold.cents
            if action == "capture":
                self.move(hold.user, hold.asset, hold.cents - captured)
                hold.status = "captured"
                assert body["captured_amount"] == money(captured)
            else:
                self.move(hold.user, hold.asset, hold.cents)
                hold.status = "released"
            assert body["status"] == hold.status

        @precondition(lambda self: bool(self.sent))
        @rule(data=st.data(), style=st.integers(0, 2))
        def retry_old_key(self, data: st.DataObject, style: int) -> None:
            key = data.draw(st.sampled_from(sorted(self.sent)))
            first = self.sent[key]
            payload = dict(first.payload)
            if "amount" in payload and isinstance(payload["amount"], str):
                payload["amount"] = written(int(Decimal(payload["amount"]) * 100), style)
            response = self.client.post(
                first.path, json=_json(payload), headers={"Idempotency-Key": key}
            )
            assert response.status_code == first.status, (response.text, first)
            assert response.json() == first.body
            assert response.headers.get("Idempotent-Replayed") == "true"

        @precondition(lambda self: bool(self.sent))
        @rule(data=st.data(), cents=CENTS)
        def reuse_key_with_other_payload(self, data: st.DataObject, cents: int) -> None:
            key = data.draw(st.sampled_from(sorted(self.sent)))
            first = self.sent[key]
            payload = {
                "transaction_type": "topup",
                "user_id": self.users[0],
                "asset_code": "GC",
                "amount": money(cents),
                "description": f"another payload for {key}",
            }
            response = self.client.post(
                "/transaction", json=payload, headers={"Idempotency-Key": key}
            )
            assert response.status_code == 422, (response.text, first)
            assert response.json()["code"] == "idempotency_key_reused"

        # --- after every step ----------------------------------------------------------------

        @invariant()
        def balances_match_the_model(self) -> None:
            for user_id in self.users:
                response = self.client.get(f"/balance/{user_id}")
                if user_id not in self.model.known:
                    assert response.status_code == 404, response.text
                    continue
                assert response.status_code == 200, response.text
                for item in response.json()["balances"]:
                    if item["asset_code"] not in ASSETS:
                        continue
                    key = (user_id, item["asset_code"])
                    assert item["balance"] == money(self.model.balances.get(key, 0)), item
                    assert item["held"] == money(self.model.held.get(key, 0)), item

    return WalletMachine


def test_the_service_behaves_like_its_model(databases: DatabaseFactory) -> None:
    machine = make_machine(databases)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
