"""Soak: the bank workload of tests/reliability for as long as you like, with SIGKILLs of the
server and failovers of its PostgreSQL primary at random moments, then the audit and (optionally)
a longer schemathesis run; prints the figures for the README's "Reliability" section.

    .venv/bin/python bench/soak.py --duration 600 --clients 8 --kill-every 20
    .venv/bin/python bench/soak.py --database-url postgresql://postgres@127.0.0.1:5432/soak \
        --duration 600 --fuzz-examples 200
    .venv/bin/python bench/soak.py --failover-every 20 --duration 120

A SQLite database in a temporary directory is used unless --database-url names one (a
PostgreSQL database must exist; it is migrated and seeded at start). --failover-every runs its
own primary and synchronous standby instead (tests/support/clusters.py, as root: PostgreSQL 15's
binaries run as the postgres user): each failover SIGKILLs the primary's server, promotes the
standby, and builds a new synchronous standby where the old primary was, while the load goes on.
Exit status 1 if the audit finds anything.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.reliability import bank  # noqa: E402
from tests.reliability.checks import new_user  # noqa: E402
from tests.reliability.test_fuzz import (  # noqa: E402
    create_api_key,
    generated,
    run_schemathesis,
)
from tests.support.clusters import ReplicatedPair  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

# A failover's bound on the wait for the next acknowledged write (the test's is derived in
# tests/reliability/test_failover.py; this one only keeps a broken run from hanging).
FAILOVER_RESUME_TIMEOUT_S = 120.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument(
        "--kill-every", type=float, default=0.0, help="mean seconds between SIGKILLs (0: none)"
    )
    parser.add_argument(
        "--failover-every",
        type=float,
        default=0.0,
        help="mean seconds between failovers of a private primary to its standby (0: none)",
    )
    parser.add_argument("--fuzz-examples", type=int, default=0, help="schemathesis examples")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    args = parser.parse_args()

    if args.failover_every and args.database_url:
        parser.error("--failover-every runs its own PostgreSQL pair: leave out --database-url")
    workdir = Path(tempfile.mkdtemp(prefix="wallet-soak-"))
    pair = start_pair() if args.failover_every else None
    database_url = pair.url() if pair else args.database_url or f"sqlite:///{workdir / 'soak.db'}"
    server: ServerProcess | None = None
    fuzz_server: ServerProcess | None = None
    rng = random.Random(args.seed)
    kills = failovers = 0
    failover_s: list[float | None] = []
    try:
        server = ServerProcess(database_url, workdir / "server.log").start()
        users = [new_user() for _ in range(args.users)]
        bank.fund(server.url, users)
        baseline = bank.stored(database_url)
        journal = bank.Journal()
        load = bank.Load(
            server.url, database_url, users, journal, clients=args.clients, seed=args.seed
        )
        started = time.monotonic()
        load.start()
        end = started + args.duration
        faults = {"kill": args.kill_every, "failover": args.failover_every}
        due = {name: next_at(rng, every) for name, every in faults.items()}
        while time.monotonic() < end:
            name = min(due, key=due.__getitem__)
            time.sleep(max(0.0, min(due[name], end) - time.monotonic()))
            if time.monotonic() >= end:
                break
            if name == "kill":
                server.kill()
                server.start()
                kills += 1
            else:
                assert pair is not None
                failover_s.append(fail_over(pair, journal))
                failovers += 1
            due[name] = next_at(rng, faults[name])
        load.finish()
        lasted = time.monotonic() - started
        lost = sorted(k for k, s in journal.sent.items() if s.lost_once)
        problems = bank.replay_all(server.url, journal, lost)
        if None in failover_s:
            problems.append(f"no write acknowledged within {FAILOVER_RESUME_TIMEOUT_S} s")
        problems += bank.audit(database_url, journal, baseline)
        fuzz = ""
        if args.fuzz_examples:
            server.kill()
            api_key = create_api_key(database_url)
            log = workdir / "fuzz-server.log"
            fuzz_server = ServerProcess(database_url, log, WALLET_AUTH="required").start()
            code, report = run_schemathesis(fuzz_server.url, args.fuzz_examples, api_key, workdir)
            fuzz = f"schemathesis: {generated(report)} test cases, exit {code}"
            if code:
                problems.append(fuzz)
                print(report[-4000:])
    finally:
        if server is not None:
            server.kill()
        if fuzz_server is not None:
            fuzz_server.kill()
        if pair is not None:
            pair.remove()

    print(f"database: {database_url.split(':', 1)[0]}, seed {args.seed}")
    print(f"load: {args.clients} clients, {args.users} users, {lasted:.0f} s")
    print(f"faults: {kills} SIGKILLs with restarts, {failovers} failovers")
    if failover_s:
        print(
            "writes acknowledged again after each promotion began: "
            + ", ".join("never" if s is None else f"{s:.2f} s" for s in failover_s)
        )
    print(journal.summary())
    if fuzz:
        print(fuzz)
    print(
        f"problems: {len(problems)} (lost acknowledged writes: "
        f"{sum(p.startswith('lost:') for p in problems)})"
    )
    for problem in problems[:50]:
        print("  ", problem)
    return 1 if problems else 0


def next_at(rng: random.Random, every_s: float) -> float:
    """When a fault that comes every ``every_s`` seconds on average next comes (never, if 0)."""
    return time.monotonic() + rng.expovariate(1 / every_s) if every_s > 0 else float("inf")


def start_pair() -> ReplicatedPair:
    pair = ReplicatedPair()
    try:
        return pair.create()
    except BaseException:
        pair.remove()
        raise


def fail_over(pair: ReplicatedPair, journal: bank.Journal) -> float | None:
    """Lose the primary's machine, promote the standby, and attach a new standby; the seconds
    from the start of the promotion to the next acknowledged write (None: none came in time)."""
    pair.primary.kill()
    acknowledged = len(journal.acknowledged)
    promoted = time.monotonic()
    pair.promote_standby()
    resumed: float | None = None
    while time.monotonic() - promoted < FAILOVER_RESUME_TIMEOUT_S:
        if len(journal.acknowledged) > acknowledged:
            resumed = time.monotonic() - promoted
            break
        time.sleep(0.01)
    pair.rebuild_standby()
    return resumed


if __name__ == "__main__":
    sys.exit(main())
