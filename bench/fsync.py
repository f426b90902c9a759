"""How long this machine's disk takes to make a small write durable: the floor under any
commit's latency (SQLite ``synchronous=FULL`` and PostgreSQL's WAL both wait for such a sync).

    .venv/bin/python bench/fsync.py                 # in the current directory
    .venv/bin/python bench/fsync.py --dir /var/lib/postgresql

Appends 4 KiB and calls ``fdatasync`` ``--syncs`` times on a file in ``--dir``, then prints the
p50, p90, p99 and max of the syncs in ms. The file is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

BLOCK = b"x" * 4096


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path.cwd())
    parser.add_argument("--syncs", type=int, default=1000)
    args = parser.parse_args()
    fd, name = tempfile.mkstemp(prefix="fsync-", dir=args.dir)
    try:
        took_ms = []
        for _ in range(args.syncs):
            os.write(fd, BLOCK)
            started = time.perf_counter()
            os.fdatasync(fd)
            took_ms.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        os.unlink(name)
    took_ms.sort()

    def at(share: float) -> float:
        return took_ms[min(len(took_ms) - 1, int(share * len(took_ms)))]

    print(
        f"{args.syncs} syncs of 4 KiB in {args.dir}: p50 {at(0.5):.2f} ms, p90 {at(0.9):.2f} ms,"
        f" p99 {at(0.99):.2f} ms, max {took_ms[-1]:.2f} ms"
    )


if __name__ == "__main__":
    main()
