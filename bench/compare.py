"""Interleaved A/B of builds of the service: the POST mix on each in turn, round after round.

    .venv/bin/python bench/compare.py /tmp/before /tmp/after --rounds 3
    .venv/bin/python bench/compare.py . .@/tmp/wallet-10m.db --rounds 3 --history
    .venv/bin/python bench/compare.py . --workloads post_transaction,post_transaction_metadata
    .venv/bin/python bench/compare.py /tmp/before . --webhook
    .venv/bin/python bench/compare.py /tmp/before . --webhook --postgresql "$PG_ADMIN_URL"

Each argument is a checkout of this repository (``git worktree add /tmp/before <commit>``),
optionally followed by ``@`` and a SQLite file to start from instead of a fresh database (a
database built by bulkload.py). Every run gets its own database: a fresh one populated by that
build's own ``bench/populate.py``, or a copy of the file (``--in-place``: the file itself, which
saves copying and syncing 3.5 GB per run; each run then adds its writes to it). Then the build's
``main.py`` is started on CPU 0 as run.py does, warmed up for 2 s, and loaded by wrk on CPU 1
(32 connections, the POST mix of run.py, measured as run.py measures: taken again when other
processes were busy). ``--history`` adds GET history pages after the writes, with one connection
and with 32. Builds alternate within each round, so a machine that speeds up or slows down
during the comparison affects them alike: compare the rounds' ratios, and the medians.

``BUILD_DIR:MODE`` configures each run's database before the service starts, with the build's
``bench/<script>`` of CONFIGURATORS: ``protected`` (``protect.py``: 100,000 frozen users, a
daily limit on every asset, 1,000 balance monitors), so ``. .:protected`` is the A/B of issue
18's speed target, one build with and without it; ``expiring`` (``expiring.py``: every asset's
credits expire, the opening balances are lots), so ``. .:expiring`` is issue 17's.

``--workloads`` names the POST workloads of bench/run.py to run on every build (default the
mix, ``post_transaction``); with more than one, each build runs each of them in turn within each
round, every run on a database of its own, and the ratios are against the first build's first
workload: ``. --workloads post_transaction,post_transaction_metadata`` is the A/B of the mix
with metadata on a third of its requests against the same mix without (for a seed, the two send
the same requests but for the metadata).

``--warm`` reads each @DATABASE_FILE once, front to back, before its run, so that the run starts
with the file in the page cache: the steady state of a service whose host keeps its database in
memory. Without it a run starts with whatever the machine left cached; these machines page out
file pages that nobody touched for about a minute (DAMON reclaim, ``kdamond``), so a large
database used a few minutes ago starts cold, and the first seconds of the run measure the disk.

``--postgresql ADMIN_URL`` runs every build on PostgreSQL instead of a SQLite file: each run
gets a database of its own, created through ADMIN_URL (``CREATE DATABASE`` with a unique name),
populated by that build's ``bench/populate.py``, and dropped after the run (a run killed by
SIGKILL leaves its ``wallet_bench_…`` database behind). The CPU time of the service's
PostgreSQL backends is measured and printed per request. Not with @DATABASE_FILE.

``--webhook`` measures the delivery of events to one webhook endpoint under the load. Before the
warm-up of each run, a receiver starts on a thread of this process (bench/receiver.py: loopback
HTTP, 204 to every POST; on the bench's CPU, with wrk, unless ``--receiver-cpu`` gives it one of
its own) and is subscribed with ``POST /admin/webhooks {"url", "event_types": ["*"]}``. A build
without that route (404 or 405: the commit before the relay) is not subscribed: it is the baseline.
The measured run starts once the warm-up's events are delivered (which also waits out the relay's
first claim of the new endpoint); the events it made (positions between the newest before it and
the newest after it, retaken attempts included) each have a delivery lag, the time the receiver had
read the body minus the event's ``created_at`` (one machine, one clock). Printed per run: the p50,
p99 and max lag, the events delivered of those made, and the drain time, from the end of the load
until the endpoint's ``last_delivered_position`` (polled every 20 ms) reached the newest position
(``not drained`` after ``--drain-timeout`` seconds, default 60); also the receiver's CPU per
request, which is counted as the run's and not as other processes' noise. Repeats, deliveries
without the Standard Webhooks headers and refused requests are counted when there are any.
A build whose service delivers from a child process of its own (WALLET_EVENTS_RELAY=process,
relay_process.py) has that child moved to ``--relay-cpu`` (CPU 1, with wrk), as ``--relay-process``
places its `wallet relay`; its CPU time is the run's.

Printed per run: throughput, p50 and p99 latency, the server's CPU per request and its CPU share,
and from the service's own metrics the mean unit of work (commands, milliseconds); then per
build the medians and the rounds' throughput ratios to the first build (with ``--webhook``, the
medians of the runs' lag p50 and p99, the largest lag, and the median drain time).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import run
from receiver import Receiver, delivery_summary, newest_position, subscribe

WARMUP_S = 2.0
DRAIN_TIMEOUT_S = 60.0
WARM_CHUNK_BYTES = 1 << 20
HISTORY_S = 5.0
# BUILD_DIR:MODE: the script of bench/ that configures each run's database for MODE.
CONFIGURATORS = {"protected": "protect.py", "expiring": "expiring.py"}
RELAY_CHILD_WAIT_S = 10.0


def mean_of(metrics: str, name: str) -> float:
    """A Prometheus histogram's mean, from its _sum and _count."""
    total = re.search(rf"^{name}_sum (\S+)", metrics, re.M)
    count = re.search(rf"^{name}_count (\S+)", metrics, re.M)
    if total is None or count is None or float(count.group(1)) == 0:
        return 0.0
    return float(total.group(1)) / float(count.group(1))


def prepare(build: Path, database: Path, start_from: str, python: str, users: int) -> None:
    if start_from:
        shutil.copyfile(start_from, database)
        os.sync()
        return
    run.populate(python, f"sqlite:///{database}", users, cpu=1, root=build)


def warm_page_cache(database: Path) -> float:
    """Read the database file (and its WAL) once, front to back; the seconds it took."""
    started = time.monotonic()
    for path in (database, Path(f"{database}-wal")):
        if path.exists():
            with path.open("rb", buffering=0) as file:
                while file.read(WARM_CHUNK_BYTES):
                    pass
    return time.monotonic() - started


@dataclass(frozen=True)
class RunDatabase:
    url: str
    # The PostgreSQL database's name (its backends' CPU time is measured), None on SQLite.
    postgresql_name: str | None = None
    warmed_s: float | None = None


@contextlib.contextmanager
def run_database(
    build: Path, start_from: str, workdir: Path, args: argparse.Namespace
) -> Iterator[RunDatabase]:
    """The database of one run, ready for the build: a fresh PostgreSQL database (dropped
    afterwards), a fresh SQLite file, a copy of a file or the file itself; each fresh one
    populated by the build's own bench/populate.py."""
    if args.postgresql:
        with run.fresh_database("postgresql", workdir, args.postgresql) as url:
            run.populate(args.python, url, args.users, cpu=1, root=build)
            yield RunDatabase(url, postgresql_name=url.rsplit("/", 1)[1])
        return
    if start_from and args.in_place:
        database = Path(start_from)
    else:
        database = workdir / "wallet.db"
        prepare(build, database, start_from, args.python, args.users)
    warmed_s = warm_page_cache(database) if start_from and args.warm else None
    yield RunDatabase(f"sqlite:///{database}", warmed_s=warmed_s)


def measure(
    target: str, posts: run.Workload, args: argparse.Namespace, round_number: int
) -> dict[str, Any]:
    build_text, _, start_from = target.partition("@")
    build_text, _, mode = build_text.partition(":")
    build = Path(build_text).resolve()
    workdir = Path(tempfile.mkdtemp(prefix="wallet-compare-"))
    load = run.LoadSettings(2, args.connections, 1, args.users)
    try:
        with run_database(build, start_from, workdir, args) as database:
            if mode:
                configure(build, CONFIGURATORS[mode], database.url, args)
            env = {"DATABASE_URL": database.url, "WALLET_LOG_LEVEL": "warning"}
            argv = [args.python, str(build / "main.py")]
            relay = None
            if args.relay_process and has_relay_command(build):
                env["WALLET_EVENTS_RELAY"] = "false"
                relay = start_relay(build, env, args, workdir / "relay.log")
            server = run.Server(target, argv, env, 0, workdir / "server.log").start()
            receiver = Receiver(args.receiver_cpu).start() if args.webhook else None
            helpers = [relay.pid] if relay is not None else relay_children(build, server, args)
            try:
                result = measure_server(
                    server, receiver, posts, load, database, args, round_number, helpers
                )
            finally:
                if receiver is not None:
                    receiver.stop()
                server.stop()
                if relay is not None:
                    relay.terminate()
                    relay.wait(timeout=30)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def configure(build: Path, script: str, database_url: str, args: argparse.Namespace) -> None:
    """Configure the run's database with ``build``'s ``bench/<script>`` (CONFIGURATORS)."""
    subprocess.run(
        [
            args.python,
            str(build / "bench" / script),
            database_url,
            "--users",
            str(args.users),
        ],
        env={**os.environ, "PYTHONPATH": str(build / "src")},
        check=True,
        stdout=subprocess.DEVNULL,
    )


def has_relay_command(build: Path) -> bool:
    return "def relay(" in (build / "src" / "wallet" / "cli.py").read_text()


def relay_children(build: Path, server: run.Server, args: argparse.Namespace) -> list[int]:
    """The relay process a build's service starts as its child (WALLET_EVENTS_RELAY=process),
    moved with all its threads to --relay-cpu: started by a service pinned to CPU 0, it would
    otherwise share the service's CPU on a 2-CPU machine. Its CPU time is the run's."""
    if not (build / "src" / "wallet" / "relay_process.py").exists():
        return []
    deadline = time.monotonic() + RELAY_CHILD_WAIT_S
    while not (children := child_pids(server.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in children:
        pin_threads(pid, args.relay_cpu)
    return children


def child_pids(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def pin_threads(pid: int, cpu: int) -> None:
    """Pin every thread of ``pid`` to ``cpu`` (those it starts later inherit it from theirs)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), {cpu})


def start_relay(
    build: Path, env: dict[str, str], args: argparse.Namespace, log_path: Path
) -> subprocess.Popen[bytes]:
    """`wallet relay` of ``build``, pinned to the load's CPU (a 2-CPU machine has no other)."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            ["taskset", "-c", str(args.relay_cpu), args.python, "-m", "wallet.cli", "relay"],
            env={**os.environ, **env, "PYTHONPATH": str(build / "src")},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def measure_server(
    server: run.Server,
    receiver: Receiver | None,
    posts: run.Workload,
    load: run.LoadSettings,
    database: RunDatabase,
    args: argparse.Namespace,
    round_number: int,
    relay_pids: Sequence[int] = (),
) -> dict[str, Any]:
    """Warm up and measure a started build: the POST mix, and with ``receiver`` its webhook
    deliveries (where the build has webhooks), then the history pages if asked."""
    subscription = subscribe(server.url, receiver) if receiver is not None else None
    first = 0
    run.run_wrk(load, posts, [server], WARMUP_S, args.seed)
    if subscription is not None:
        # The measured run starts with the warm-up's events delivered: its lags are its own.
        warmup_drained = subscription.wait_delivered(
            newest_position(server.url), args.drain_timeout
        )
        if warmup_drained is None:
            print(f"  (the warm-up's events were not all delivered in {args.drain_timeout:g} s)")
        first = newest_position(server.url)
    result = run.measure_quietly(
        load,
        posts,
        [server],
        args.duration,
        args.seed + round_number,
        database=database.postgresql_name,
        # The receiver is a thread of this process: its CPU time is the run's, not noise.
        # So is a relay process's.
        helpers=[*([os.getpid()] if receiver is not None else []), *relay_pids],
    )
    if receiver is not None:
        result["webhook"] = None
    if receiver is not None and subscription is not None:
        load_ended_s = time.time()
        last = newest_position(server.url)
        drained_s = subscription.wait_delivered(last, args.drain_timeout)
        result["webhook"] = delivery_summary(receiver, first, last, load_ended_s, drained_s)
    if args.history:
        pages = next(w for w in run.WORKLOADS if w.name == "get_history")
        alone = run.LoadSettings(1, 1, 1, args.users)
        result["history_1"] = run.measure_quietly(alone, pages, [server], HISTORY_S, 3)
        result["history_32"] = run.measure_quietly(load, pages, [server], HISTORY_S, 3)
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    result["batch"] = mean_of(metrics, "wallet_write_batch_size")
    result["unit_of_work_ms"] = 1000 * mean_of(metrics, "wallet_db_unit_of_work_seconds")
    result["peak_rss_mib"] = (server.read_peak_rss() or 0) / 1024
    result["warmed_s"] = database.warmed_s
    return result


def line(name: str, result: dict[str, Any]) -> str:
    latency = result["latency_ms"]
    text = (
        f"{name[-40:]:40s} {result['throughput_rps']:7,.0f} req/s  p50 {latency['p50']:5.1f}"
        f"  p99 {latency['p99']:5.1f} ms  CPU {result['server_cpu_us_per_request']:4.0f} µs/req"
        f"  busy {100 * result['server_cpu_share']:3.0f} %  unit of work"
        f" {result['batch']:4.1f} cmds {result['unit_of_work_ms']:4.2f} ms"
    )
    if "database_cpu_us_per_request" in result:
        text += f"  PostgreSQL CPU {result['database_cpu_us_per_request']:4.0f} µs/req"
    if "webhook" in result:
        text += f"  {webhook_text(result['webhook'], result.get('helpers_cpu_us_per_request'))}"
    for key in ("history_1", "history_32"):
        if key in result:
            pages = result[key]["latency_ms"]
            text += f"  {key} p50/p99 {pages['p50']:.2f}/{pages['p99']:.2f} ms"
    if "history_1" in result:
        text += f"  RSS {result['peak_rss_mib']:.1f} MiB"
    if result.get("warmed_s") is not None:
        text += f"  (file read in {result['warmed_s']:.1f} s before)"
    return text


def webhook_text(delivery: dict[str, Any] | None, receiver_us: float | None) -> str:
    if delivery is None:
        return "webhooks: none (no route: the baseline)"
    text = f"webhooks: {delivery['delivered']:,} of {delivery['events']:,} events delivered"
    if "lag_ms" in delivery:
        lag = delivery["lag_ms"]
        text += f", lag p50 {lag['p50']:.1f} p99 {lag['p99']:.1f} max {lag['max']:.1f} ms"
    drain = delivery["drain_s"]
    text += ", not drained" if drain is None else f", drained {drain:.2f} s after the load"
    kinds = ("repeats", "unsigned", "refused", "unnoted")
    problems = {kind: delivery[kind] for kind in kinds if delivery[kind]}
    if problems:
        text += f" ({', '.join(f'{k} {v:,}' for k, v in problems.items())})"
    if receiver_us is not None:
        text += f"; receiver CPU {receiver_us:.0f} µs/req"
    return text


def webhook_medians(runs: list[dict[str, Any]]) -> str:
    """The medians of the runs' delivery lags and drain times, and the worst lag."""
    delivered = [r["webhook"] for r in runs if r.get("webhook") and "lag_ms" in r["webhook"]]
    if not delivered:
        return ""
    drains = [d["drain_s"] for d in delivered]
    drain = (
        f"drain median {statistics.median(drains):.2f} s"
        if None not in drains
        else f"not drained in {sum(d is None for d in drains)} runs"
    )
    return (
        f"  webhook lag p50 {statistics.median(d['lag_ms']['p50'] for d in delivered):.1f}"
        f" p99 {statistics.median(d['lag_ms']['p99'] for d in delivered):.1f} ms (medians),"
        f" max {max(d['lag_ms']['max'] for d in delivered):.1f} ms, {drain}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "targets",
        nargs="+",
        help="BUILD_DIR or BUILD_DIR@DATABASE_FILE; BUILD_DIR:MODE configures the run's database"
        f" first, MODE one of {', '.join(CONFIGURATORS)} (see above)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--relay-process",
        action="store_true",
        help="deliver webhooks from a `wallet relay` process (on --relay-cpu) and start the"
        " service with WALLET_EVENTS_RELAY=false, where the build has the command",
    )
    parser.add_argument(
        "--relay-cpu",
        type=int,
        default=1,
        help="the CPU of the relay process: --relay-process's, or the one the service starts",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=32,
        help="wrk's connections (32 saturates the service; fewer is a load it keeps up with)",
    )
    parser.add_argument("--history", action="store_true")
    parser.add_argument(
        "--workloads",
        default="post_transaction",
        help="comma-separated POST workloads of run.py, each run on every build in every round",
    )
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="run on each @DATABASE_FILE itself, not on a copy: no 3.5 GB copy and sync per run,"
        " but every run adds its writes to the file",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="read each @DATABASE_FILE once before its run, so that the run starts with it cached",
    )
    parser.add_argument(
        "--postgresql",
        metavar="ADMIN_URL",
        help="run every build on a fresh PostgreSQL database, created through ADMIN_URL (e.g."
        " postgresql://postgres@127.0.0.1:5432/postgres), populated by the build and dropped"
        " after its run; default: a fresh SQLite file",
    )
    parser.add_argument(
        "--webhook",
        action="store_true",
        help="subscribe a loopback receiver to every event (builds without webhooks: none) and"
        " report each run's delivery lag and drain time",
    )
    parser.add_argument(
        "--receiver-cpu",
        type=int,
        help="pin the webhook receiver's thread to this CPU (default: the bench's, with wrk)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=DRAIN_TIMEOUT_S,
        help="seconds to wait for the webhook deliveries to catch up after the load",
    )
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    if args.postgresql and any("@" in target for target in args.targets):
        parser.error("--postgresql: a @DATABASE_FILE is a SQLite file; give builds only")
    modes = {target.partition("@")[0].partition(":")[2] for target in args.targets} - {""}
    if modes - CONFIGURATORS.keys():
        parser.error(f"BUILD_DIR:MODE: MODE is one of {', '.join(CONFIGURATORS)}")
    workloads = {w.name: w for w in run.WORKLOADS if w.name.startswith("post_transaction")}
    chosen = [name.strip() for name in args.workloads.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in workloads]
    if unknown or not chosen:
        parser.error(f"--workloads: choose among {sorted(workloads)}")
    os.sched_setaffinity(0, {1})
    # What each run is called: the build (and database), and the workload when there are several.
    names = {
        (target, name): target if len(chosen) == 1 else f"{target} {name}"
        for target in args.targets
        for name in chosen
    }
    results: dict[str, list[dict[str, Any]]] = {label: [] for label in names.values()}
    for number in range(args.rounds):
        for (target, workload), label in names.items():
            result = measure(target, workloads[workload], args, number)
            results[label].append(result)
            print(f"round {number + 1}  {line(label, result)}", flush=True)
    first = next(iter(names.values()))
    for label, runs in results.items():
        ratios = [
            mine["throughput_rps"] / theirs["throughput_rps"]
            for mine, theirs in zip(runs, results[first], strict=True)
        ]
        print(
            f"median {label[-40:]:40s}"
            f" {statistics.median(r['throughput_rps'] for r in runs):7,.0f} req/s"
            f"  p99 {statistics.median(r['latency_ms']['p99'] for r in runs):5.1f} ms"
            f"  CPU {statistics.median(r['server_cpu_us_per_request'] for r in runs):4.0f} µs/req"
            f"  against {first[-30:]}: rounds {', '.join(f'{r:.2f}' for r in ratios)}"
            f" (median {statistics.median(ratios):.2f})"
            f"{webhook_medians(runs)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
