"""Crash safety: SIGKILL the service under load, restart it on the same database, and check that
what it acknowledged is there, that every key is applied at most once, and that the books balance.

A client that lost its answer in the crash retries with the same key; the test does exactly
that, and counts transactions per key to prove none was applied twice.
"""

from __future__ import annotations

import random
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ROOT, ServerProcess

from . import bank
from .checks import (
    ASSETS,
    Answer,
    answer_of,
    assert_ledger_ok,
    balance,
    body,
    for_each,
    history,
    http_client,
    new_key,
    new_user,
    signed_amount,
    topup,
)

pytestmark = pytest.mark.slow

KILLS = 3
LOAD_THREADS = 3
# Each kill comes once the load is under way (this many answers received), after a further
# random pause of up to KILL_DELAY_S_MAX.
ANSWERS_BEFORE_KILL = 30
KILL_DELAY_S_MAX = 0.4
LOAD_START_TIMEOUT_S = 30.0


@dataclass
class Journal:
    """Everything the clients sent, and what came back; filled from several threads."""

    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    answered: dict[str, Answer] = field(default_factory=dict)
    unanswered: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    under_way: threading.Event = field(default_factory=threading.Event)

    def record(self, key: str, payload: dict[str, Any]) -> None:
        with self.lock:
            self.sent[key] = payload

    def answer(self, key: str, answer: Answer) -> None:
        with self.lock:
            self.answered[key] = answer
            if len(self.answered) >= ANSWERS_BEFORE_KILL:
                self.under_way.set()

    def lose(self, key: str) -> None:
        with self.lock:
            self.unanswered.add(key)


def load(
    base_url: str, users: Sequence[str], journal: Journal, stop: threading.Event, seed: int
) -> None:
    """Top-ups and purchases, each with a new key, until ``stop``; the first lost answer ends it."""
    rng = random.Random(seed)
    with http_client(base_url) as client:
        while not stop.is_set():
            kind = rng.choice(["topup", "purchase"])
            amount = f"{Decimal(rng.randint(1, 5_000)) / 100:.2f}"
            payload = body(kind, rng.choice(users), amount, rng.choice(ASSETS))
            key = new_key()
            journal.record(key, payload)
            try:
                response = client.post(
                    "/transaction", json=payload, headers={"Idempotency-Key": key}
                )
            except httpx.TransportError:
                journal.lose(key)
                return
            journal.answer(key, answer_of(response))


def run_until_killed(server: ServerProcess, users: Sequence[str], rng: random.Random) -> Journal:
    journal = Journal()
    stop = threading.Event()
    threads = [
        threading.Thread(target=load, args=(server.url, users, journal, stop, rng.randrange(2**32)))
        for _ in range(LOAD_THREADS)
    ]
    for thread in threads:
        thread.start()
    assert journal.under_way.wait(LOAD_START_TIMEOUT_S), "the load never got under way"
    # A random moment under load to pull the plug; nothing asserts on time.
    time.sleep(rng.uniform(0, KILL_DELAY_S_MAX))
    server.kill()
    stop.set()
    for thread in threads:
        thread.join()
    return journal


def repost(base_url: str, journal: Journal, keys: Sequence[str]) -> dict[str, Answer]:
    """Send each key's original request again, the way a client retries."""

    def send(client: httpx.Client, key: str) -> Answer:
        headers = {"Idempotency-Key": key}
        return answer_of(client.post("/transaction", json=journal.sent[key], headers=headers))

    return dict(for_each(base_url, keys, send))


def transactions_by_key(base_url: str, users: Sequence[str]) -> dict[str, list[str]]:
    """The ids of the users' transactions, grouped by idempotency key."""
    by_key: dict[str, list[str]] = {}
    with http_client(base_url) as client:
        for user_id in users:
            for transaction in history(client, user_id):
                if transaction["idempotency_key"] is not None:
                    by_key.setdefault(transaction["idempotency_key"], []).append(transaction["id"])
    return by_key


def test_acknowledged_writes_survive_sigkill_and_none_is_applied_twice(
    server: ServerProcess, database_url: str, seed: int
) -> None:
    rng = random.Random(seed)
    users = [new_user() for _ in range(3)]
    for user_id in users:
        topup(server.url, user_id, "100.00")

    journal = Journal()
    for _ in range(KILLS):
        cycle = run_until_killed(server, users, rng)
        journal.sent |= cycle.sent
        journal.answered |= cycle.answered
        journal.unanswered |= cycle.unanswered
        server.start()
    assert journal.unanswered, f"seed {seed}: no request was in flight at any kill"
    assert set(journal.sent) == set(journal.answered) | journal.unanswered

    statuses = Counter((a.status, a.code) for a in journal.answered.values())
    assert set(statuses) <= {(201, None), (422, "insufficient_funds")}, (seed, statuses)
    acknowledged = {k: a for k, a in journal.answered.items() if a.status == 201}
    refused = {k: a for k, a in journal.answered.items() if a.status == 422}

    # Every acknowledged transaction is there, as it was acknowledged.
    def fetch(client: httpx.Client, key: str) -> httpx.Response:
        return client.get(f"/transaction/{acknowledged[key].transaction_id}")

    for key, response in for_each(server.url, sorted(acknowledged), fetch):
        assert response.status_code == 200, (seed, key, response.text)
        assert response.json() == acknowledged[key].json
        assert response.json()["amount"] == journal.sent[key]["amount"]

    # Keys whose answer was lost: applied once or not at all, never twice.
    before = transactions_by_key(server.url, users)
    assert all(len(ids) == 1 for ids in before.values()), seed
    assert {k: [a.transaction_id] for k, a in acknowledged.items()}.items() <= before.items()
    assert not set(refused) & set(before)

    # A retry with the same key gets the decided answer again, or decides it now, once.
    replies = repost(server.url, journal, sorted(journal.sent))
    for key, answer in {**acknowledged, **refused}.items():
        again = replies[key]
        assert again.replayed, (seed, key)
        assert (again.status, again.json) == (answer.status, answer.json), (seed, key)
    for key in journal.unanswered:
        again = replies[key]
        assert (again.status, again.code) in {(201, None), (422, "insufficient_funds")}
        if key in before:
            # It was applied before the crash: the retry replays it.
            assert (again.status, again.replayed) == (201, True), (seed, key)
            assert [again.transaction_id] == before[key]
        elif again.status == 201:
            assert not again.replayed, (seed, key)

    after = transactions_by_key(server.url, users)
    assert all(len(ids) == 1 for ids in after.values()), seed
    assert after == {k: [r.transaction_id] for k, r in replies.items() if r.status == 201}

    # And every balance is explained by the transactions the user can see.
    with http_client(server.url) as client:
        for user_id in users:
            transactions = history(client, user_id)
            for asset_code in ASSETS:
                expected = sum(
                    (signed_amount(t) for t in transactions if t["asset_code"] == asset_code),
                    Decimal(0),
                )
                assert balance(client, user_id, asset_code) == expected, (seed, user_id)
    assert_ledger_ok(database_url)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_killed_process_does_not_stall_another_on_the_same_database(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    """Two processes share a database; one dies holding row locks. The other carries on."""
    survivor = ServerProcess(database_url, tmp_path / "survivor.log").start()
    try:
        users = [new_user() for _ in range(2)]
        for user_id in users:
            topup(server.url, user_id, "100.00")
        victim_journal, survivor_journal = Journal(), Journal()
        stop_victim, stop_survivor = threading.Event(), threading.Event()
        threads = [
            threading.Thread(target=load, args=(url, users, journal, stop, n))
            for n, (url, journal, stop) in enumerate(
                [(server.url, victim_journal, stop_victim)] * 2
                + [(survivor.url, survivor_journal, stop_survivor)] * 2
            )
        ]
        for thread in threads:
            thread.start()
        assert victim_journal.under_way.wait(LOAD_START_TIMEOUT_S)
        server.kill()
        stop_victim.set()
        answered_at_kill = len(survivor_journal.answered)
        progressed = wait_for(
            lambda: len(survivor_journal.answered) >= answered_at_kill + ANSWERS_BEFORE_KILL
        )
        stop_survivor.set()
        for thread in threads:
            thread.join()
        assert progressed, "the surviving process stopped answering"
        assert not survivor_journal.unanswered
        statuses = {(a.status, a.code) for a in survivor_journal.answered.values()}
        assert statuses <= {(201, None), (422, "insufficient_funds")}, statuses

        created = {k: a for k, a in victim_journal.answered.items() if a.status == 201}
        created |= {k: a for k, a in survivor_journal.answered.items() if a.status == 201}
        ledger = transactions_by_key(survivor.url, users)
        assert {k: [a.transaction_id] for k, a in created.items()}.items() <= ledger.items()
        assert set(ledger) - set(created) <= victim_journal.unanswered
    finally:
        survivor.kill()
    assert_ledger_ok(database_url)


def wait_for(condition: Callable[[], bool], timeout_s: float = LOAD_START_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- the bank workload under repeated SIGKILLs, and a build that is known to lose writes ---------

BANK_KILLS = 5
BANK_CLIENTS = 5
BANK_USERS = 5
# Each kill comes after a random stretch of load in this range (seconds).
BANK_LOAD_S = (0.3, 1.0)
# The broken build answers a batch, then waits this long before it commits.
BROKEN_COMMIT_DELAY_S = 1.0


def kill_under_bank_load(
    server: ServerProcess, database_url: str, kills: int, seed: int
) -> tuple[bank.Journal, bank.Stored]:
    """Run the bank workload, SIGKILL the server ``kills`` times at random moments and restart
    it on the same port; clients retry their unanswered requests with the same key meanwhile."""
    rng = random.Random(seed)
    users = [new_user() for _ in range(BANK_USERS)]
    bank.fund(server.url, users)
    time.sleep(BROKEN_COMMIT_DELAY_S + 0.5)  # for the broken build: let the funding commit
    journal = bank.Journal()
    load = bank.Load(
        server.url, database_url, users, journal, clients=BANK_CLIENTS, seed=seed, api_readers=0
    )
    baseline = bank.stored(database_url)
    load.start()
    for _ in range(kills):
        acknowledged = len(journal.acknowledged)
        time.sleep(rng.uniform(*BANK_LOAD_S))
        assert wait_for(lambda n=acknowledged: len(journal.acknowledged) > n), "no progress"
        server.kill()
        server.start()
    time.sleep(0.5)
    load.finish()
    return journal, baseline


def test_bank_workload_survives_five_sigkills(
    server: ServerProcess, database_url: str, seed: int
) -> None:
    journal, baseline = kill_under_bank_load(server, database_url, BANK_KILLS, seed)
    assert journal.lost_attempts > 0, (seed, "no request was in flight at any kill")
    assert not journal.unanswered, (seed, journal.summary())
    # Every key whose answer got lost at a kill, and a sample of the others, sent again: the
    # first answer replays; a lost one is decided once (the audit counts transactions per key).
    lost = sorted(k for k, s in journal.sent.items() if s.lost_once)
    others = sorted(set(journal.sent) - set(lost))
    sample = random.Random(seed).sample(others, min(200, len(others)))
    problems = bank.replay_all(server.url, journal, lost + sample)
    problems += bank.audit(database_url, journal, baseline)
    assert problems == [], (seed, journal.summary(), problems[:20])
    print(f"{BANK_KILLS} SIGKILLs, seed {seed}: {journal.summary()}")


def broken_build(target: Path) -> Path:
    """A copy of the service whose writer answers a batch before it commits it, then sleeps:
    a kill in that window loses writes that were acknowledged. The production code is untouched;
    only the copy in ``target`` is patched."""
    shutil.copytree(ROOT / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "main.py", target / "main.py")
    writer = target / "src" / "wallet" / "service" / "writer.py"
    source = writer.read_text()
    run_call = re.compile(
        r"^(\s*)(outcomes = self\._commit\(\[p\.command for p in pending\]\))$", re.M
    )
    commit_call = re.compile(r"^(\s*)(connection\.commit\(\))$", re.M)
    if len(run_call.findall(source)) != 1 or len(commit_call.findall(source)) != 1:
        pytest.fail("writer.py changed: update broken_build() so it still answers before commit")
    source = run_call.sub(r"\1self._broken_pending = pending\n\1\2", source)
    source = commit_call.sub(
        r"\1if getattr(self, '_broken_pending', None):\n"
        r"\1    _resolve(self._broken_pending, outcomes)\n"
        r"\1    self._broken_pending = None\n"
        rf"\1    time.sleep({BROKEN_COMMIT_DELAY_S})\n"
        r"\1\2",
        source,
    )
    writer.write_text(source)
    return target


def test_the_crash_check_catches_a_build_that_answers_before_it_commits(
    database_url: str, tmp_path: Path, seed: int
) -> None:
    root = broken_build(tmp_path / "broken")
    server = bank.SourceServer(root, database_url, tmp_path / "broken.log").start()
    try:
        journal, baseline = kill_under_bank_load(server, database_url, 2, seed)
    finally:
        server.kill()
    problems = bank.audit(database_url, journal, baseline)
    lost = [p for p in problems if p.startswith("lost:")]
    assert lost, (seed, "the checker missed the writes the broken build lost", problems[:10])
    print(f"broken build, seed {seed}: the audit reports {len(lost)} lost acknowledged writes")
