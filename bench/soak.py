"""Soak: the bank workload of tests/reliability for as long as you like, with SIGKILLs of the
server at random moments, then the audit and (optionally) a longer schemathesis run; prints the
figures for the README's "Reliability" section.

    .venv/bin/python bench/soak.py --duration 600 --clients 8 --kill-every 20
    .venv/bin/python bench/soak.py --database-url postgresql://postgres@127.0.0.1:5432/soak \
        --duration 600 --fuzz-examples 200

A SQLite database in a temporary directory is used unless --database-url names one (a
PostgreSQL database must exist; it is migrated and seeded at start). Exit status 1 if the audit
finds anything.
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
from tests.support.server import ServerProcess  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument(
        "--kill-every", type=float, default=0.0, help="mean seconds between SIGKILLs (0: none)"
    )
    parser.add_argument("--fuzz-examples", type=int, default=0, help="schemathesis examples")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="wallet-soak-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'soak.db'}"
    server = ServerProcess(database_url, workdir / "server.log").start()
    fuzz_server: ServerProcess | None = None
    rng = random.Random(args.seed)
    kills = 0
    try:
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
        while time.monotonic() < end:
            if args.kill_every > 0:
                time.sleep(
                    min(rng.expovariate(1 / args.kill_every), max(0, end - time.monotonic()))
                )
                if time.monotonic() < end:
                    server.kill()
                    server.start()
                    kills += 1
            else:
                time.sleep(min(1.0, end - time.monotonic()))
        load.finish()
        lasted = time.monotonic() - started
        lost = sorted(k for k, s in journal.sent.items() if s.lost_once)
        problems = bank.replay_all(server.url, journal, lost)
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
        server.kill()
        if fuzz_server is not None:
            fuzz_server.kill()

    print(f"database: {database_url.split(':', 1)[0]}, seed {args.seed}")
    print(f"load: {args.clients} clients, {args.users} users, {lasted:.0f} s")
    print(f"faults: {kills} SIGKILLs with restarts")
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


if __name__ == "__main__":
    sys.exit(main())
