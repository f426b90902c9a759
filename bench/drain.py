"""The relay's drain rate: how fast one webhook endpoint receives a backlog of events, and the
relay's CPU per delivery. No HTTP API, no load generator: the relay alone, as `wallet relay` runs
it, delivering to bench/receiver.py's loopback endpoint in a process of its own.

    for b in /tmp/relay-base .; do PYTHONPATH=$b/src .venv/bin/python bench/drain.py; done
    PYTHONPATH=src .venv/bin/python bench/drain.py \
        --postgresql postgresql://postgres@127.0.0.1:5432/postgres

It makes a database of its own (a SQLite file in a temporary directory, or a PostgreSQL
database created and dropped), an endpoint subscribed to every type, then EVENTS top-ups of
distinct users (one transaction.created event each); then starts the relay runner in this
process and times it until the endpoint's cursor reaches the newest position. This process is
pinned to CPU 0 and the receiver to CPU 1 when there are two. It prints the events delivered
per second (from the relay's start to the cursor's arrival; and between the receiver's first
and last receipt) and the relay process's CPU time per event (all its threads).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import tempfile
import time
import uuid
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import wallet
from receiver import Receiver
from wallet.config import Settings
from wallet.service.posting import apply_commands
from wallet.service.transactions import TransactionInput
from wallet.service.wallet import WalletService
from wallet.storage import events as event_store
from wallet.storage import relays as relay_store

EVENTS = 20_000
UNIT = 200
POLL_S = 0.02
TIMEOUT_S = 300.0


def serve_receiver(pipe: Connection, cpu: int | None) -> None:
    """The receiver's process: its port, then at "stop" what it received."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    receiver = Receiver().start()
    pipe.send(receiver.url)
    started = os.times()
    pipe.recv()
    ended = os.times()
    received = list(receiver.received_s)
    receiver.stop()
    pipe.send(
        {
            "deliveries": receiver.deliveries,
            "first_s": min(received, default=0.0),
            "last_s": max(received, default=0.0),
            "cpu_s": ended.user + ended.system - started.user - started.system,
        }
    )


def on_cpu_s() -> float:
    """The time this process's threads (those alive now) have run on a CPU, from the
    scheduler's own count (/proc/self/task/*/schedstat, in ns): exact, where the user and system
    times of os.times() are sampled at each clock tick."""
    total_ns = 0
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            total_ns += int((task / "schedstat").read_text().split()[0])
    return total_ns / 1e9


def fill(service: WalletService, events: int) -> None:
    """``events`` top-ups of distinct users, UNIT to a unit of work: one event each."""
    connection = service.database.connect_writer()
    scales = service.assets.scales()
    for first in range(0, events, UNIT):
        commands = [
            service.transactions.command_for(
                TransactionInput(
                    transaction_type="topup",
                    user_id=f"drain_{n:06d}",
                    asset_code="GC",
                    amount=Decimal("1.00"),
                    description="a backlog to deliver",
                    idempotency_key=None,
                    refund_of=None,
                )
            )
            for n in range(first, min(first + UNIT, events))
        ]
        connection.begin()
        apply_commands(connection.session, commands, scales, service.clock.now_us())
        connection.commit()
    connection.close()


async def drain(service: WalletService, endpoint_id: str, newest: int) -> dict[str, float]:
    def delivered() -> int:
        with service.database.reading() as session:
            relay = relay_store.get_relay(session, endpoint_id)
        assert relay is not None
        return relay.delivered_position

    cpu_started, on_cpu_started = os.times(), on_cpu_s()
    started = time.perf_counter()
    service.relays.start()
    try:
        while delivered() < newest:
            if time.perf_counter() - started > TIMEOUT_S:
                raise SystemExit(f"not drained in {TIMEOUT_S:g} s")
            await asyncio.sleep(POLL_S)
        return {
            "wall_s": time.perf_counter() - started,
            "on_cpu_s": on_cpu_s() - on_cpu_started,
            "user_s": os.times().user - cpu_started.user,
            "system_s": os.times().system - cpu_started.system,
        }
    finally:
        await service.relays.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--postgresql", metavar="URL", help="a server to make a database on")
    args = parser.parse_args()
    two_cpus = len(os.sched_getaffinity(0)) >= 2
    if two_cpus:
        os.sched_setaffinity(0, {0})

    dropped: list[Any] = []
    if args.postgresql:
        import psycopg

        name = f"wallet_drain_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.postgresql, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        database_url = args.postgresql.rsplit("/", 1)[0] + "/" + name
        dropped.append(name)
    else:
        database_url = f"sqlite:///{tempfile.mkdtemp(prefix='wallet-drain-')}/w.db"

    pipe, theirs = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=serve_receiver, args=(theirs, 1 if two_cpus else None), daemon=True
    )
    process.start()
    url = pipe.recv()
    try:
        settings = Settings(database_url=database_url, seed=True, events_relay_poll_s=0.25)
        service = WalletService(settings)
        service.start()
        endpoint = service.webhooks.create(url, ["*"], "drain bench")
        fill(service, args.events)
        with service.database.reading() as session:
            newest = event_store.newest_position(session)
        backlog = newest - endpoint.relay.delivered_position
        result = asyncio.run(drain(service, endpoint.relay.id, newest))
        service.stop()
        pipe.send("stop")
        received = pipe.recv()
    finally:
        process.join(10)
        if dropped:
            import psycopg

            with psycopg.connect(args.postgresql, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {dropped[0]} WITH (FORCE)")
    span_s = received["last_s"] - received["first_s"]
    user_us = result["user_s"] / backlog * 1e6
    system_us = result["system_s"] / backlog * 1e6
    print(
        f"{Path(wallet.__file__).parents[1]} {'postgresql' if dropped else 'sqlite'}:"
        f" {backlog} events drained in {result['wall_s']:.2f} s,"
        f" {backlog / result['wall_s']:,.0f} events/s from the relay's start"
        f" ({(received['deliveries'] - 1) / span_s:,.0f}/s first to last receipt);"
        f" relay on CPU {result['on_cpu_s'] / backlog * 1e6:.1f} µs per event"
        f" (ticks: user {user_us:.1f}, system {system_us:.1f}),"
        f" receiver's {received['cpu_s'] / backlog * 1e6:.1f} µs;"
        f" {received['deliveries']} deliveries received"
    )


if __name__ == "__main__":
    main()
