"""The bank workload (after Jepsen's): concurrent clients run every flow of the service, readers
check the books at every read, and an auditor checks afterwards that nothing acknowledged was lost
and nothing was applied that no client sent.

Shared by the bank, crash, database-fault and overload tests and by ``bench/soak.py``.

- Every request a client sends carries a new idempotency key, recorded in a ``Journal`` before it
  leaves. A retry (after a lost answer, a 503, or on purpose) re-sends the same request with the
  same key, and its answer must be the first one again.
- Readers read the database itself, not the API (which has no "all balances" endpoint): one SQL
  statement per read, so it sees one committed snapshot on both backends (SQLite in WAL mode
  reads a snapshot; PostgreSQL runs it in REPEATABLE READ). For each asset, the accounts other
  than the issuance account must hold exactly the supply, and none may be below zero. API
  readers read user balances too, which must never be negative.
- ``audit`` compares the journal with the database: every acknowledged answer is stored for its
  key exactly as the client received it, and its transactions exist; every key in the database
  was sent by a client; every transaction written during the load is explained by a key a client
  sent (a posting, a batch, a hold and its capture, release or expiry); no key was applied twice;
  and the service's own ``verify_ledger`` finds the books whole.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.support.server import ServerProcess
from wallet.service.verify import verify_ledger

from .checks import ASSETS, http_client, opened

# What a client may be answered. Anything else (a 500, an undocumented code) is a problem.
DECIDED = {
    (200, None),
    (201, None),
    (422, "insufficient_funds"),
    (422, "refund_exceeds_original"),
    (422, "batch_failed"),
    (409, "hold_expired"),
    (409, "hold_not_pending"),
}
# Answers that decide nothing: the client retries the same key after a pause.
TRANSIENT = {
    (503, "unavailable"),
    (503, "overloaded"),
}
FLOWS = (
    "topup",
    "bonus",
    "purchase",
    "purchase",
    "refund",
    "hold",
    "capture",
    "release",
    "batch",
)
OPENING = "200.00"
RETRY_PAUSE_S = 0.05
# A client's bound on one exchange: an answer that takes longer is a hang.
CLIENT_TIMEOUT_S = 20.0


@dataclass
class Sent:
    key: str
    method: str
    path: str
    payload: dict[str, Any] | None
    status: int | None = None
    code: str | None = None
    body: dict[str, Any] | None = None
    # An attempt got no answer (connection refused or reset, the process killed).
    lost_once: bool = False


@dataclass
class Journal:
    """Everything the clients sent and what came back; filled from several threads."""

    sent: dict[str, Sent] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    statuses: Counter[tuple[int, str | None]] = field(default_factory=Counter)
    transient: Counter[tuple[int, str | None]] = field(default_factory=Counter)
    lost_attempts: int = 0
    timeouts: int = 0
    requests: int = 0
    replays_checked: int = 0
    reads: int = 0
    read_failures: int = 0
    latency_max_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)

    @property
    def acknowledged(self) -> dict[str, Sent]:
        return {k: s for k, s in self._sent_now() if s.status in (200, 201)}

    @property
    def unanswered(self) -> list[str]:
        return [k for k, s in self._sent_now() if s.status is None]

    def _sent_now(self) -> list[tuple[str, Sent]]:
        """A copy, under the lock the client threads take to record a request: the test reads
        these while the load is still running."""
        with self.lock:
            return list(self.sent.items())

    def summary(self) -> str:
        answered = sum(self.statuses.values())
        return (
            f"{self.requests} requests ({answered} decided answers, "
            f"{len(self.acknowledged)} acknowledged writes, {self.replays_checked} replays "
            f"checked, {sum(self.transient.values())} transient 503/409 retried, "
            f"{self.lost_attempts} attempts lost in flight, {len(self.unanswered)} keys never "
            f"answered), {self.reads} snapshot reads ({self.read_failures} failed), "
            f"slowest answer {self.latency_max_s:.2f} s, statuses {dict(self.statuses)}"
        )


def new_key(prefix: str = "bank") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def amount(rng: random.Random, cents_max: int) -> str:
    return f"{Decimal(rng.randint(1, cents_max)) / 100:.2f}"


class Client:
    """One client thread: random flows, random users and amounts, retries with the same key."""

    def __init__(
        self,
        base_url: str,
        users: Sequence[str],
        journal: Journal,
        seed: int,
        stop: threading.Event,
        *,
        give_up: threading.Event | None = None,
        retry_probability: float = 0.15,
        timeout_s: float = CLIENT_TIMEOUT_S,
    ) -> None:
        self.base_url = base_url
        self.users = list(users)
        self.journal = journal
        self.rng = random.Random(seed)
        self.stop = stop
        # Set when even unanswered requests should no longer be retried (the server is gone).
        self.give_up = give_up or threading.Event()
        self.retry_probability = retry_probability
        self.timeout_s = timeout_s
        self.refundable: list[str] = []
        self.pending_holds: list[tuple[str, int]] = []  # id, amount in cents

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=self.timeout_s) as client:
            while not self.stop.is_set():
                sent = self.next_request()
                self.exchange(client, sent)
                if sent.status is not None and self.rng.random() < self.retry_probability:
                    self.replay(client, sent)

    # --- what to send --------------------------------------------------------------------------

    def next_request(self) -> Sent:
        rng = self.rng
        flow = rng.choice(FLOWS)
        user, asset = rng.choice(self.users), rng.choice(ASSETS)
        key = new_key()
        extra: dict[str, Any] = {}
        if rng.random() < 0.3:
            extra["description"] = f"bank {flow} {rng.randrange(10**6)}"
        if flow in ("topup", "bonus", "purchase"):
            cents = 3_000 if flow == "purchase" else 2_000
            payload = {
                "transaction_type": flow,
                "user_id": user,
                "asset_code": asset,
                "amount": amount(rng, cents),
                **extra,
            }
            return self.record(Sent(key, "POST", "/transaction", payload))
        if flow == "refund" and self.refundable:
            original = rng.choice(self.refundable)
            payload = {"transaction_type": "refund", "refund_of": original, **extra}
            if rng.random() < 0.6:
                payload["amount"] = amount(rng, 500)
            return self.record(Sent(key, "POST", "/transaction", payload))
        if flow in ("capture", "release") and self.pending_holds:
            hold_id, held = self.pending_holds.pop(rng.randrange(len(self.pending_holds)))
            payload = {}
            if flow == "capture" and rng.random() < 0.5:
                payload["amount"] = amount(rng, held)
            return self.record(Sent(key, "POST", f"/holds/{hold_id}/{flow}", payload))
        if flow == "batch":
            items = [
                {
                    "transaction_type": rng.choice(["topup", "bonus", "purchase"]),
                    "user_id": user,
                    "asset_code": rng.choice(ASSETS),
                    "amount": amount(rng, 2_000),
                }
                for _ in range(rng.randint(1, 3))
            ]
            return self.record(Sent(key, "POST", "/transaction/batch", {"transactions": items}))
        # A hold (also the fallback when there is nothing to refund, capture or release).
        payload = {
            "user_id": user,
            "asset_code": asset,
            "amount": amount(rng, 2_000),
            "expires_in_seconds": rng.choice([1, 2, 600, 600]),
            **extra,
        }
        return self.record(Sent(key, "POST", "/holds", payload))

    def record(self, sent: Sent) -> Sent:
        with self.journal.lock:
            self.journal.sent[sent.key] = sent
        return sent

    # --- sending -------------------------------------------------------------------------------

    def exchange(self, client: httpx.Client, sent: Sent) -> None:
        """Send until a decided answer comes (or the client gives up); retries keep the key."""
        while True:
            response = self.attempt(client, sent)
            if response is None:
                if self.give_up.is_set():
                    return
                time.sleep(RETRY_PAUSE_S)
                continue
            status, code = response.status_code, _code(response)
            if (status, code) in TRANSIENT:
                with self.journal.lock:
                    self.journal.transient[(status, code)] += 1
                if status == 503 and not response.headers.get("Retry-After"):
                    self.journal.problem(f"{sent.key}: 503 without Retry-After")
                if self.give_up.is_set():
                    return
                time.sleep(RETRY_PAUSE_S)
                continue
            if (status, code) not in DECIDED:
                self.journal.problem(
                    f"{sent.key}: {sent.method} {sent.path} answered {status}: {response.text}"
                )
                return
            sent.status, sent.code, sent.body = status, code, response.json()
            with self.journal.lock:
                self.journal.statuses[(status, code)] += 1
            self.learn(sent)
            return

    def attempt(self, client: httpx.Client, sent: Sent) -> httpx.Response | None:
        start = time.monotonic()
        try:
            response = client.request(
                sent.method, sent.path, json=sent.payload, headers={"Idempotency-Key": sent.key}
            )
        except httpx.TimeoutException:
            with self.journal.lock:
                self.journal.timeouts += 1
                self.journal.requests += 1
            self.journal.problem(f"{sent.key}: no answer within {self.timeout_s} s (a hang)")
            sent.lost_once = True
            return None
        except httpx.TransportError:
            with self.journal.lock:
                self.journal.lost_attempts += 1
                self.journal.requests += 1
            sent.lost_once = True
            return None
        elapsed = time.monotonic() - start
        with self.journal.lock:
            self.journal.requests += 1
            self.journal.latency_max_s = max(self.journal.latency_max_s, elapsed)
        return response

    def replay(self, client: httpx.Client, sent: Sent) -> None:
        """A deliberate retry of a decided request: the same status and body, marked replayed."""
        response = self.attempt(client, sent)
        if response is None or (response.status_code, _code(response)) in TRANSIENT:
            return
        with self.journal.lock:
            self.journal.replays_checked += 1
        if (
            response.status_code != sent.status
            or response.json() != sent.body
            or response.headers.get("Idempotent-Replayed") != "true"
        ):
            self.journal.problem(
                f"{sent.key}: a retry answered {response.status_code} {response.text}, "
                f"not the first answer {sent.status} {sent.body}"
            )

    def learn(self, sent: Sent) -> None:
        """Remember what later requests may act on: refundable transactions, pending holds."""
        body = sent.body or {}
        if sent.status != 201:
            return
        if sent.path == "/transaction" and body.get("transaction_type") != "refund":
            self.refundable.append(body["id"])
        elif sent.path == "/holds":
            self.pending_holds.append((body["id"], int(Decimal(body["amount"]) * 100)))


def _code(response: httpx.Response) -> str | None:
    if response.status_code < 400:
        return None
    try:
        code = response.json().get("code")
    except ValueError:
        return "<not json>"
    return code if isinstance(code, str) else None


# --- readers ------------------------------------------------------------------------------------

SNAPSHOT_SQL = """
SELECT a.code, a.supply_minor,
    (SELECT COALESCE(SUM(c.balance_minor), 0) FROM accounts c
        WHERE c.asset_code = a.code AND NOT (c.owner_type = 'system' AND c.owner_id = 'issuance')),
    (SELECT COUNT(*) FROM accounts c
        WHERE c.asset_code = a.code AND c.balance_minor < 0
        AND NOT (c.owner_type = 'system' AND c.owner_id = 'issuance'))
FROM assets a ORDER BY a.code
"""


def snapshot_problems(database_url: str) -> list[str]:
    """One committed snapshot of every account: each asset whole, nothing below zero."""
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path, timeout=10, isolation_level=None)) as connection:
            rows = connection.execute(SNAPSHOT_SQL).fetchall()
    else:
        with psycopg.connect(database_url, connect_timeout=3) as connection:
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            rows = connection.execute(SNAPSHOT_SQL).fetchall()
    problems = []
    for code, supply, held, negative in rows:
        if held != supply:
            problems.append(f"asset {code}: the accounts hold {held}, the supply is {supply}")
        if negative:
            problems.append(f"asset {code}: {negative} accounts below zero")
    return problems


def read_snapshots(database_url: str, journal: Journal, stop: threading.Event) -> None:
    """Check the books at every read until ``stop``; a read that fails (the database is down)
    is counted, not judged."""
    while not stop.is_set():
        try:
            problems = snapshot_problems(database_url)
        except (sqlite3.Error, psycopg.Error):
            with journal.lock:
                journal.read_failures += 1
            time.sleep(0.05)
            continue
        with journal.lock:
            journal.reads += 1
        for problem in problems:
            journal.problem(f"snapshot read: {problem}")
        time.sleep(0.005)


def read_balances(
    base_url: str, users: Sequence[str], journal: Journal, stop: threading.Event, seed: int
) -> None:
    """Users' balances over the API: never negative, whatever is in flight."""
    rng = random.Random(seed)
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        while not stop.is_set():
            user = rng.choice(users)
            try:
                response = client.get(f"/balance/{user}")
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            if response.status_code == 503:
                continue
            if response.status_code != 200:
                journal.problem(f"GET /balance/{user} answered {response.status_code}")
                continue
            for item in response.json()["balances"]:
                if Decimal(item["balance"]) < 0 or Decimal(item.get("held", "0")) < 0:
                    journal.problem(f"GET /balance/{user}: negative {item}")


# --- a load ---------------------------------------------------------------------------------------


@dataclass
class Load:
    """Clients and readers running in threads, started and stopped together."""

    base_url: str
    database_url: str
    users: Sequence[str]
    journal: Journal
    clients: int = 4
    seed: int = 0
    api_readers: int = 1
    snapshot_readers: int = 1
    stop: threading.Event = field(default_factory=threading.Event)
    give_up: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for n in range(self.clients):
            client = Client(
                self.base_url,
                self.users,
                self.journal,
                self.seed * 1000 + n,
                self.stop,
                give_up=self.give_up,
            )
            self.threads.append(threading.Thread(target=client.run, daemon=True))
        for n in range(self.api_readers):
            args = (self.base_url, self.users, self.journal, self.stop, self.seed + n)
            self.threads.append(threading.Thread(target=read_balances, args=args, daemon=True))
        for _ in range(self.snapshot_readers):
            args2 = (self.database_url, self.journal, self.stop)
            self.threads.append(threading.Thread(target=read_snapshots, args=args2, daemon=True))
        for thread in self.threads:
            thread.start()
        return self

    def finish(self, join_timeout_s: float = 60.0) -> None:
        self.stop.set()
        deadline = time.monotonic() + join_timeout_s
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        alive = [t for t in self.threads if t.is_alive()]
        if alive:
            self.give_up.set()
            for thread in alive:
                thread.join(10)
            self.journal.problem(f"{len(alive)} load threads did not finish in time")


def fund(base_url: str, users: Sequence[str]) -> None:
    """Open every user's wallets, in one batch (one commit)."""
    items = [
        {"transaction_type": "topup", "user_id": user, "asset_code": asset, "amount": OPENING}
        for user in users
        for asset in ASSETS
    ]
    with http_client(base_url) as client:
        response = client.post("/transaction/batch", json={"transactions": items})
    assert response.status_code == 201, response.text


# --- the audit ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    transactions: dict[str, str | None]  # id -> idempotency_key
    keys: dict[str, tuple[str, str | None, str]]  # key -> (outcome, transaction_id, body)
    holds: dict[str, tuple[str | None, ...]]  # hold id -> its transactions


def stored(database_url: str) -> Stored:
    queries = (
        "SELECT id, idempotency_key FROM transactions",
        "SELECT idempotency_key, outcome, transaction_id, response_body FROM idempotency_keys",
        "SELECT id, hold_transaction_id, capture_transaction_id, release_transaction_id FROM holds",
    )
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path, timeout=10)) as connection:
            results = [connection.execute(q).fetchall() for q in queries]
    else:
        with psycopg.connect(database_url) as connection:
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            results = [connection.execute(q).fetchall() for q in queries]
    transactions, keys, holds = results
    return Stored(
        transactions={row[0]: row[1] for row in transactions},
        keys={row[0]: (row[1], row[2], row[3]) for row in keys},
        holds={row[0]: tuple(row[1:]) for row in holds},
    )


def _transaction_ids(body: dict[str, Any]) -> set[str]:
    """The transactions an answer names: a transaction, a batch's, a hold's."""
    ids: set[str] = set()
    if "transaction_type" in body:
        ids.add(body["id"])
    for item in body.get("transactions", []):
        ids.add(item if isinstance(item, str) else item["id"])
    return ids


def audit(database_url: str, journal: Journal, baseline: Stored) -> list[str]:
    """Everything that is wrong between what the clients were told and what the database holds.

    An empty list means: every acknowledged answer is stored for its key as it was given, with its
    transactions; nothing is stored that no client sent; no key was applied twice; the service's
    verifier finds the books whole; and the readers saw no broken snapshot.
    """
    problems = list(journal.problems)
    now = stored(database_url)
    new_keys = {k: v for k, v in now.keys.items() if k not in baseline.keys}
    new_transactions = {t: k for t, k in now.transactions.items() if t not in baseline.transactions}

    lost = 0
    for key, sent in journal.sent.items():
        if sent.status is None:
            continue
        if key not in new_keys:
            lost += 1
            problems.append(
                f"lost: {key} was answered {sent.status} {sent.code or ''} but is not stored"
            )
            continue
        outcome, _, body = new_keys[key]
        if sent.status in (200, 201):
            if json.loads(body) != sent.body:
                problems.append(f"{key}: stored answer differs from the one given: {body}")
            assert sent.body is not None
            missing = _transaction_ids(sent.body) - set(now.transactions)
            if missing:
                lost += 1
                problems.append(f"lost: {key} acknowledged transactions {sorted(missing)}")
        elif outcome != sent.code:
            problems.append(f"{key}: answered {sent.code}, stored {outcome}")

    explained: set[str] = set()
    for key, (_, transaction_id, body) in new_keys.items():
        if key not in journal.sent:
            problems.append(f"never sent: key {key} is stored ({body[:200]})")
            continue
        if transaction_id is not None:
            explained.add(transaction_id)
        decoded = json.loads(body)
        explained |= _transaction_ids(decoded)
        if "expires_at" in decoded and decoded["id"] in now.holds:
            explained |= {t for t in now.holds[decoded["id"]] if t is not None}
    for transaction_id in sorted(set(new_transactions) - explained):
        problems.append(f"never sent: transaction {transaction_id} is not explained by any key")

    per_key = Counter(k for k in new_transactions.values() if k is not None)
    problems += [f"applied {n} times: key {k}" for k, n in per_key.items() if n > 1]

    with opened(database_url) as database:
        report = verify_ledger(database)
    problems += [f"verify: {p}" for p in report.problems]
    return problems


def replay_all(base_url: str, journal: Journal, keys: Sequence[str]) -> list[str]:
    """Re-send each key's request: an answered one replays its answer; an unanswered one is
    decided now (or replays what was applied before the answer got lost)."""
    problems = []
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        for key in keys:
            sent = journal.sent[key]
            for _ in range(50):
                response = client.request(
                    sent.method, sent.path, json=sent.payload, headers={"Idempotency-Key": key}
                )
                if (response.status_code, _code(response)) not in TRANSIENT:
                    break
                time.sleep(RETRY_PAUSE_S)
            if sent.status is None:
                status, code = response.status_code, _code(response)
                if (status, code) not in DECIDED:
                    problems.append(f"{key}: the retry answered {status}")
                else:
                    sent.status, sent.code, sent.body = status, code, response.json()
                continue
            if (response.status_code, response.json()) != (sent.status, sent.body):
                problems.append(
                    f"{key}: replay answered {response.status_code} {response.text[:200]}, "
                    f"first answer was {sent.status}"
                )
            elif response.headers.get("Idempotent-Replayed") != "true":
                problems.append(f"{key}: replay not marked Idempotent-Replayed")
    return problems


# --- a service process from another source tree -------------------------------------------------


class SourceServer(ServerProcess):
    """``main.py`` of another copy of the source (a deliberately broken build), on the same port
    at every start, so that clients reconnect after a kill as they would to a restarted service."""

    def __init__(self, root: Path, database_url: str, log_path: Path, **env: str) -> None:
        super().__init__(database_url, log_path, root=root, **env)
