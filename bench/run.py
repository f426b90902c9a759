"""The wallet benchmark, in one command:

    .venv/bin/python bench/run.py --duration 10 --backend sqlite --repeat 3

Each round (``--repeat`` of them; medians are reported):
1. creates a fresh database (a SQLite file in a temporary directory, or a PostgreSQL database it
   creates and drops at the end) and gives each of the 10,000 bench users an opening top-up of
   100.00 GC (bench/populate.py: the service's own ledger code, without HTTP); with
   ``--bulk-entries N``, builds instead a history of N entries for them (bench/bulkload.py: the
   same opening top-ups, then the POST workload's mix, written in bulk and verified);
2. starts the service (``python main.py``; N processes on one database with ``--processes N``)
   pinned to the server CPU;
3. for each workload in turn (POST /transaction mix, GET balance, GET history: the reads see what
   the writes wrote), warms up and loads the service, then each of two baselines, started fresh
   and pinned to the same CPU, with the same wrk script, wrk pinned to the other CPU. Neither
   baseline touches a database; both answer the same fixed JSON (bench/answers.py):
   ``baseline`` (bench/baseline_app.py) with the service's request model, route class and server
   settings, ``fastapi`` (bench/fastapi_app.py) written as a user starts with FastAPI (a plain
   Pydantic model, response models, default JSON rendering). A run starts when both CPUs are
   quiet, and is taken again (at most three times in all) when other processes kept the machine
   busy for more than 5 % of a CPU during it: on a shared machine that noise is recorded with
   each run.

Then it prints a table per workload (throughput, p50, p99, p99.9 and CPU per request of the
service and both baselines, and the service's ratios to each: ``vs_baseline``, ``vs_fastapi``),
the servers' peak memory (VmHWM) and the targets of issue 3 (against ``baseline``), and writes
everything, every run included, as JSON to bench/results/<timestamp>-<backend>.json.

Standard library and httpx only (plus psycopg, a dependency of the service, for --backend
postgresql). Needs Linux (/proc), ``wrk`` and ``taskset`` on PATH, and two CPUs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
WRK_DIR = ROOT / "bench" / "wrk"
RESULTS_DIR = ROOT / "bench" / "results"

USERS = 10_000
HISTORY_PAGE_SAMPLE = 200  # users sampled to size the baseline's history page
START_TIMEOUT_S = 60.0
WRK_TIMEOUT = "10s"  # a request slower than this counts as a timeout, not a latency

# Before each measured run, wait up to QUIET_WAIT_S for the CPUs we use to be nearly idle.
QUIET_BUSY_MAX = 0.10
QUIET_WAIT_S = 30.0
# A run during which other processes kept the machine busy for more than this share of one CPU
# is noisy (the servers, their PostgreSQL backends and wrk are not "other").
NOISY_SHARE_MAX = 0.05
NOISY_RUNS_MAX = 3

PG_ADMIN_URL_DEFAULT = os.environ.get(
    "WALLET_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# The targets of issue 3, defined for SQLite with one server process.
POST_THROUGHPUT_RATIO_MIN = 0.7
POST_P99_MS_MAX = 25.0
BALANCE_THROUGHPUT_RATIO_MIN = 0.8


@dataclass(frozen=True)
class Baseline:
    """An app that the service is measured against, in the same rounds."""

    name: str
    script: str
    ratio_key: str  # the key of the service's ratios to it, in the report


BASELINES = (
    Baseline("baseline", "baseline_app.py", "vs_baseline"),
    Baseline("fastapi", "fastapi_app.py", "vs_fastapi"),
)
SERVERS = ("service", *(b.name for b in BASELINES))


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    script: str
    # Run when --workloads is not given.
    default: bool = True


WORKLOADS = (
    Workload("post_transaction", "POST /transaction (mix)", "post_transaction.lua"),
    # The same mix with metadata on every third new body: for bench/compare.py's A/B against
    # the mix without it, or --workloads here.
    Workload(
        "post_transaction_metadata",
        "POST /transaction (mix, metadata on a third)",
        "post_transaction_metadata.lua",
        default=False,
    ),
    Workload("get_balance", "GET /balance/{user}/{asset}", "get_balance.lua"),
    Workload("get_history", "GET /transaction/{user}/history?limit=20", "get_history.lua"),
)
PERCENTILES = ("50", "75", "90", "99", "99.9")


# --- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A server process pinned to one CPU, with its CPU time and peak memory from /proc."""

    def __init__(
        self, name: str, argv: Sequence[str], env: dict[str, str], cpu: int, log_path: Path
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.cpu = cpu
        self.port = free_port()
        self.env = {**os.environ, **env, "PORT": str(self.port), "WALLET_HOST": "127.0.0.1"}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.peak_rss_kib: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Server:
        with self.log_path.open("ab") as log:
            # taskset execs the server, so the child's pid is the server's.
            self.process = subprocess.Popen(
                ["taskset", "-c", str(self.cpu), *self.argv],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {START_TIMEOUT_S} s")

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def read_peak_rss(self) -> int | None:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_kib = int(line.split()[1])
        return self.peak_rss_kib

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.name} has died:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.read_peak_rss()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """Busy seconds of all CPUs together since boot, from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def database_cpu_seconds(database: str | None) -> float:
    """CPU time of the PostgreSQL backends connected to ``database`` (0 without one): their
    processes are named ``postgres: … <user> <database> <client> <state>``."""
    if not database:
        return 0.0
    marker = f" {database} ".encode()
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes()
            if cmdline.startswith(b"postgres: ") and marker in cmdline:
                total += process_cpu_seconds(int(entry.name))
    return total


def children_cpu_seconds() -> float:
    """CPU time of this script's finished children (wrk, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_busy_seconds(cpu: int) -> tuple[float, float]:
    """(busy, total) seconds of one CPU since boot, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, line.split()[1:9])
            tick = os.sysconf("SC_CLK_TCK")
            busy = user + nice + system + irq + softirq + steal
            return busy / tick, (busy + idle + iowait) / tick
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


def wait_until_quiet(cpus: Sequence[int], busy_max: float, wait_max_s: float) -> float:
    """Wait (at most ``wait_max_s``) until every one of ``cpus`` is less than ``busy_max`` busy
    over half a second: on a shared machine, other work on our CPUs skews the figures. Returns the
    busiest share seen in the last half second.
    """
    deadline = time.monotonic() + wait_max_s
    while True:
        before = {cpu: cpu_busy_seconds(cpu) for cpu in cpus}
        time.sleep(0.5)
        shares = []
        for cpu in cpus:
            (busy0, total0), (busy1, total1) = before[cpu], cpu_busy_seconds(cpu)
            shares.append((busy1 - busy0) / ((total1 - total0) or 1))
        if max(shares) < busy_max or time.monotonic() >= deadline:
            return max(shares)


def write_report(
    report: dict[str, Any],
    kind: str,
    started_at: datetime | None = None,
    output: Path | None = None,
) -> Path:
    """Write a bench's report as JSON to ``output``, or to
    bench/results/<started_at, UTC>-<kind>.json, and say where."""
    started_at = started_at or datetime.now(UTC)
    path = output or RESULTS_DIR / f"{started_at:%Y%m%dT%H%M%SZ}-{kind}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


# --- the database -------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(backend: str, workdir: Path, pg_admin_url: str) -> Iterator[str]:
    """A DATABASE_URL for a database nobody has used; a PostgreSQL one is dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'wallet.db'}"
        return
    import psycopg  # a dependency of the service; only needed here

    name = f"wallet_bench_{datetime.now(UTC):%Y%m%d%H%M%S}_{os.getpid()}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        base, _, _ = pg_admin_url.rpartition("/")
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- load ---------------------------------------------------------------------------------------


def user_id(number: int) -> str:
    return f"bench_{number:05d}"


def populate(python: str, database_url: str, users: int, cpu: int, root: Path = ROOT) -> None:
    """Migrate and seed the database, and give every bench user an opening top-up, with the
    ``populate.py`` of the checkout at ``root`` (compare.py passes each build its own)."""
    subprocess.run(
        ["taskset", "-c", str(cpu), python, str(root / "bench" / "populate.py"), database_url,
         "--users", str(users)],
        cwd=root, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def bulkload(python: str, database_url: str, users: int, entries: int) -> str:
    """Migrate and seed the database, and write a history of ``entries`` entries for the bench
    users (their opening top-ups first); the loader's report (it has verified the ledger).

    On every CPU (this script is pinned to one): nothing is measured yet, and the loader
    computes and writes in two processes."""
    every_cpu = f"0-{(os.cpu_count() or 1) - 1}"
    result = subprocess.run(
        ["taskset", "-c", every_cpu, python, str(ROOT / "bench" / "bulkload.py"), database_url,
         "--users", str(users), "--entries", str(entries)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"bulkload.py failed ({result.returncode}):\n{result.stdout}")
    return result.stdout.strip()


def mean_history_items(url: str, users: int, seed: int) -> int:
    """How many transactions the service's history pages (limit=20) hold, on average."""
    sample = random.Random(seed).sample(range(1, users + 1), min(HISTORY_PAGE_SAMPLE, users))
    counts = []
    with httpx.Client(timeout=10) as client:
        for number in sample:
            response = client.get(f"{url}/transaction/{user_id(number)}/history?limit=20")
            response.raise_for_status()
            counts.append(len(response.json()["items"]))
    return max(1, round(statistics.mean(counts)))


@dataclass
class LoadSettings:
    threads: int
    connections: int
    load_cpu: int
    users: int


def run_wrk(
    load: LoadSettings,
    workload: Workload,
    servers: Sequence[Server],
    duration_s: float,
    seed: int,
    during: Callable[[], object] | None = None,
    database: str | None = None,
    helpers: Sequence[int] = (),
) -> dict[str, Any]:
    """One wrk run against ``servers`` (threads spread over them); the parsed measurement.

    ``during`` is called while wrk runs (bench/profile.py records a profile there). ``database``
    names the PostgreSQL database the servers use, whose backends' CPU time is then measured too.
    ``helpers`` are processes that take part in the run (compare.py --webhook: this one, whose
    thread receives the webhooks): their CPU time is measured, and is not "other".
    """
    ports = [server.port for server in servers]
    threads = max(load.threads, len(ports))
    threads += -threads % len(ports)  # every server gets the same number of threads
    command = [
        "taskset", "-c", str(load.load_cpu),
        "wrk", f"-t{threads}", f"-c{load.connections}", f"-d{duration_s:g}s",
        "--timeout", WRK_TIMEOUT, "--latency", "-s", str(WRK_DIR / workload.script),
        servers[0].url,
    ]  # fmt: skip
    env = {
        **os.environ,
        "BENCH_PORTS": ",".join(map(str, ports)),
        "BENCH_USERS": str(load.users),
        "BENCH_SEED": str(seed),
        "BENCH_NONCE": uuid.uuid4().hex[:12],
    }

    def cpu_now() -> tuple[float, float, float, float, float]:
        return (
            machine_busy_seconds(),
            sum(server.cpu_seconds() for server in servers),
            database_cpu_seconds(database),
            children_cpu_seconds(),
            sum(process_cpu_seconds(pid) for pid in helpers),
        )

    before, started = cpu_now(), time.monotonic()
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as wrk:
        if during is not None:
            during()
        stdout, stderr = wrk.communicate(timeout=duration_s + 120)
    wall = time.monotonic() - started
    busy, own, db, ours, helping = (b - a for a, b in zip(before, cpu_now(), strict=True))
    for server in servers:
        server.check_alive()
    if wrk.returncode != 0:
        raise RuntimeError(f"wrk failed ({wrk.returncode}):\n{stderr}")
    line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no BENCH_RESULT line:\n{stdout}")
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    requests = max(raw["requests"], 1)
    # Whatever kept the machine busy besides the servers, their database and wrk.
    other = max(0.0, busy - own - db - ours - helping)
    result = measurement(raw, server_cpu_share=own / wall, other_cpu_share=other / wall)
    # CPU time per request: what the server spends on one, whatever else ran beside it.
    result["server_cpu_us_per_request"] = round(1e6 * own / requests, 1)
    if database:
        result["database_cpu_us_per_request"] = round(1e6 * db / requests, 1)
    if helpers:
        result["helpers_cpu_us_per_request"] = round(1e6 * helping / requests, 1)
    return result


def measure_quietly(
    load: LoadSettings,
    workload: Workload,
    servers: Sequence[Server],
    duration_s: float,
    seed: int,
    database: str | None = None,
    helpers: Sequence[int] = (),
) -> dict[str, Any]:
    """A measured run, started when our CPUs are quiet, and taken again (up to NOISY_RUNS_MAX
    times in all) while other processes kept the machine busy for more than NOISY_SHARE_MAX of
    one CPU during it; if every attempt was noisy, the least noisy one is kept, marked
    ``"noisy": true``."""
    cpus = sorted({server.cpu for server in servers} | {load.load_cpu})
    attempts: list[dict[str, Any]] = []
    while len(attempts) < NOISY_RUNS_MAX:
        wait_until_quiet(cpus, QUIET_BUSY_MAX, QUIET_WAIT_S)
        attempts.append(
            run_wrk(load, workload, servers, duration_s, seed, database=database, helpers=helpers)
        )
        if attempts[-1]["other_cpu_share"] <= NOISY_SHARE_MAX:
            break
        share = f"{100 * attempts[-1]['other_cpu_share']:.0f} %"
        then = "measuring again" if len(attempts) < NOISY_RUNS_MAX else "keeping the least noisy"
        print(f"  ({servers[0].name}: other processes took {share} of a CPU; {then})")
    result = min(attempts, key=lambda attempt: attempt["other_cpu_share"])
    result["attempts"] = len(attempts)
    result["noisy"] = result["other_cpu_share"] > NOISY_SHARE_MAX
    return result


def measurement(
    raw: dict[str, Any], server_cpu_share: float, other_cpu_share: float
) -> dict[str, Any]:
    requests = raw["requests"]
    seconds = raw["duration_us"] / 1e6
    percentiles = raw["latency_us"]["percentiles"]
    latency_ms = {f"p{p}": percentiles[p] / 1000 for p in PERCENTILES}
    latency_ms["max"] = raw["latency_us"]["max"] / 1000
    latency_ms["mean"] = (raw["latency_us"]["mean"] or 0) / 1000
    socket_errors = {k: v for k, v in raw["errors"].items() if k != "status" and v}
    return {
        "requests": requests,
        "seconds": round(seconds, 3),
        "throughput_rps": requests / seconds if seconds else 0.0,
        "latency_ms": latency_ms,
        "statuses": dict(sorted(raw["statuses"].items())),
        "socket_errors": socket_errors,
        "bytes_per_response": raw["bytes"] / requests if requests else 0,
        # The share of the server CPU that the server used, and that something else used.
        "server_cpu_share": round(server_cpu_share, 3),
        "other_cpu_share": round(other_cpu_share, 3),
    }


def median_of(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The median of every number across runs (statuses summed)."""
    first = runs[0]
    result: dict[str, Any] = {}
    for key, value in first.items():
        if key == "statuses":
            totals: dict[str, int] = {}
            for run in runs:
                for status, count in run["statuses"].items():
                    totals[status] = totals.get(status, 0) + count
            result[key] = dict(sorted(totals.items()))
        elif isinstance(value, dict) and all(isinstance(v, int | float) for v in value.values()):
            result[key] = {k: statistics.median(run[key].get(k, 0) for run in runs) for k in value}
        elif isinstance(value, bool):
            result[f"{key}_runs"] = sum(bool(run.get(key)) for run in runs)
        elif isinstance(value, int | float):
            result[key] = statistics.median(run[key] for run in runs)
        else:
            result[key] = value
    return result


def ratios(service: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 3) if b else None

    result = {
        "throughput": ratio(service["throughput_rps"], baseline["throughput_rps"]),
        "server_cpu_us_per_request": ratio(
            service["server_cpu_us_per_request"], baseline["server_cpu_us_per_request"]
        ),
    }
    for p in PERCENTILES:
        result[f"p{p}"] = ratio(service["latency_ms"][f"p{p}"], baseline["latency_ms"][f"p{p}"])
    return result


# --- report -------------------------------------------------------------------------------------


def ratio_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def print_workload(title: str, result: dict[str, Any], repeat: int, duration: float) -> None:
    medians = {name: result[name]["median"] for name in SERVERS}
    service = medians["service"]
    runs = f"median of {repeat} runs" if repeat > 1 else "one run"
    runs += f" of {duration:g} s"
    print(f"\n{title}  ({runs})")
    names = "".join(f"{name:>10}" for name in SERVERS)
    keys = "".join(f"{b.ratio_key:>13}" for b in BASELINES)
    print(f"  {'':<20}{names}{keys}")

    def row(label: str, key: str, number: Callable[[dict[str, Any]], float], form: str) -> None:
        values = "".join(f"{number(medians[name]):>10{form}}" for name in SERVERS)
        shares = "".join(f"{ratio_text(result[b.ratio_key][key]):>13}" for b in BASELINES)
        print(f"  {label:<20}{values}{shares}")

    row("throughput (req/s)", "throughput", lambda m: m["throughput_rps"], ",.0f")
    for p in ("50", "99", "99.9"):
        key = f"p{p}"
        row(f"{key} (ms)", key, lambda m, key=key: m["latency_ms"][key], ".2f")
    key = "server_cpu_us_per_request"
    row("CPU µs per request", key, lambda m: m[key], ",.0f")
    total = sum(service["statuses"].values()) or 1
    shares = ", ".join(f"{s} {100 * n / total:.1f} %" for s, n in service["statuses"].items())
    print(f"  service statuses: {shares}")
    if any(median["socket_errors"] for median in medians.values()):
        errors = ", ".join(f"{name} {medians[name]['socket_errors']}" for name in SERVERS)
        print(f"  socket errors: {errors}")
    if "database_cpu_us_per_request" in service:
        database_us = service["database_cpu_us_per_request"]
        print(f"  PostgreSQL backends of the service: {database_us:,.0f} µs of CPU per request")
    own = ", ".join(f"{name} {100 * medians[name]['server_cpu_share']:.0f} %" for name in SERVERS)
    other = " / ".join(f"{100 * medians[name]['other_cpu_share']:.0f} %" for name in SERVERS)
    print(f"  CPU used by the server: {own} of a CPU; by other processes: {other}")
    noisy = {name: medians[name].get("noisy_runs", 0) for name in SERVERS}
    if any(noisy.values()):
        counts = ", ".join(f"{name} {count}" for name, count in noisy.items())
        print(
            f"  NOISY runs, of {repeat} each: {counts} (other processes took more than"
            f" {100 * NOISY_SHARE_MAX:.0f} % of a CPU during them)"
        )


def print_summary(report: dict[str, Any]) -> None:
    """Peak memory, and the issue's targets (which the report gains) when both workloads ran."""
    memory = ", ".join(f"{name} {mib:.1f} MiB" for name, mib in report["peak_rss_mib"].items())
    print(f"\npeak RSS (VmHWM, the largest of any process and round): {memory}")
    if not {"post_transaction", "get_balance"} <= set(report["workloads"]):
        return
    report["targets"] = targets(report["workloads"])
    as_defined = report["backend"] == "sqlite" and report["processes"] == 1
    print(f"\ntargets of issue 3{'' if as_defined else ' (defined for SQLite, 1 process)'}:")
    for target in report["targets"]:
        verdict = "met    " if target["met"] else "NOT MET"
        print(f"  {verdict}  {target['target']}: {target['value']:.2f}")


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    post = results["post_transaction"]
    balance = results["get_balance"]
    post_p99 = post["service"]["median"]["latency_ms"]["p99"]
    return [
        {
            "target": f"POST /transaction throughput >= {POST_THROUGHPUT_RATIO_MIN} x baseline",
            "value": post["vs_baseline"]["throughput"],
            "met": (post["vs_baseline"]["throughput"] or 0) >= POST_THROUGHPUT_RATIO_MIN,
        },
        {
            "target": f"POST /transaction p99 <= {POST_P99_MS_MAX:g} ms",
            "value": post_p99,
            "met": post_p99 <= POST_P99_MS_MAX,
        },
        {
            "target": f"GET balance throughput >= {BALANCE_THROUGHPUT_RATIO_MIN} x baseline",
            "value": balance["vs_baseline"]["throughput"],
            "met": (balance["vs_baseline"]["throughput"] or 0) >= BALANCE_THROUGHPUT_RATIO_MIN,
        },
    ]


def machine_notes(args: argparse.Namespace) -> dict[str, Any]:
    def output(*command: str) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        except OSError:
            return ""

    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    wrk_version = (output("wrk", "--version") or "").splitlines()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version[0] if wrk_version else "",
        "git_commit": output("git", "rev-parse", "--short", "HEAD"),
        "git_dirty": bool(output("git", "status", "--porcelain", "--", "src", "main.py")),
        "server_cpus": args.server_cpus,
        "load_cpu": args.load_cpu,
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured run")
    parser.add_argument(
        "--warmup", type=float, default=2, help="seconds of load before each server's runs"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds, each on a fresh database; medians are reported",
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="service processes on one database"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--threads", type=int, default=2, help="wrk threads (at least one per process)"
    )
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument(
        "--bulk-entries",
        type=int,
        default=0,
        help="build each round's database with bench/bulkload.py: this many entries of history"
        " for the users (default 0: bench/populate.py's opening top-ups only)",
    )
    parser.add_argument("--seed", type=int, default=1, help="base of wrk's per-thread random seeds")
    parser.add_argument(
        "--server-cpus",
        default="0",
        help="CPUs for the servers, comma-separated; process i gets the i-th, round-robin",
    )
    parser.add_argument("--load-cpu", type=int, default=1, help="CPU for wrk (and this script)")
    parser.add_argument(
        "--workloads",
        default=",".join(w.name for w in WORKLOADS if w.default),
        help="comma-separated subset, run in this script's order (default: all but"
        " post_transaction_metadata)",
    )
    parser.add_argument(
        "--pg-admin-url",
        default=PG_ADMIN_URL_DEFAULT,
        help="where to CREATE and DROP the bench database",
    )
    parser.add_argument(
        "--python", default=sys.executable, help="the interpreter that runs the servers"
    )
    parser.add_argument(
        "--service",
        default="main.py",
        help="the service's entry script (to measure a variant of it; it reads the same"
        " environment as main.py)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (database, logs)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="JSON file to write (default bench/results/<timestamp>-<backend>.json)",
    )
    args = parser.parse_args(argv)
    args.server_cpus = [int(cpu) for cpu in str(args.server_cpus).split(",")]
    names = [w.name for w in WORKLOADS]
    args.workloads = [name.strip() for name in args.workloads.split(",") if name.strip()]
    unknown = set(args.workloads) - set(names)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {names}")
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not on PATH (Debian: apt-get install wrk util-linux)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    # This script's own work (populating, sampling) stays off the server CPU.
    os.sched_setaffinity(0, {args.load_cpu})
    load = LoadSettings(args.threads, args.connections, args.load_cpu, args.users)
    workloads = [w for w in WORKLOADS if w.name in args.workloads]
    report: dict[str, Any] = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": " ".join(
            ["python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "backend": args.backend,
        "processes": args.processes,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "repeat": args.repeat,
        "connections": args.connections,
        "users": args.users,
        "bulk_entries": args.bulk_entries,
        "machine": machine_notes(args),
        "rounds": [],
        "workloads": {},
    }
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        w.name: {name: [] for name in SERVERS} for w in workloads
    }
    for number in range(1, args.repeat + 1):
        if args.repeat > 1:
            print(f"\nround {number} of {args.repeat}")
        report["rounds"].append(run_round(args, load, workloads, args.seed + number - 1, runs))

    for workload in workloads:
        result: dict[str, Any] = {
            name: {"median": median_of(measured), "runs": measured}
            for name, measured in runs[workload.name].items()
        }
        for baseline in BASELINES:
            result[baseline.ratio_key] = ratios(
                result["service"]["median"], result[baseline.name]["median"]
            )
        report["workloads"][workload.name] = result
        print_workload(workload.title, result, args.repeat, args.duration)
    report["peak_rss_mib"] = {
        name: max(r["peak_rss_mib"][name] for r in report["rounds"]) for name in SERVERS
    }
    print_summary(report)
    report["machine"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]

    print()
    write_report(report, args.backend, started_at, args.output)
    return 0


def run_round(
    args: argparse.Namespace,
    load: LoadSettings,
    workloads: Sequence[Workload],
    seed: int,
    runs: dict[str, dict[str, list[dict[str, Any]]]],
) -> dict[str, Any]:
    """One round: a fresh database and service, every workload on it in order (the writes of
    the first are the data of the reads after it), each against fresh baselines too."""
    workdir = Path(tempfile.mkdtemp(prefix="wallet-bench-"))
    services: list[Server] = []
    round_notes: dict[str, Any] = {
        "seed": seed,
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "sqlite_commits_per_s": sqlite_commit_rate(workdir),
    }
    baseline_rss: dict[str, list[int]] = {b.name: [] for b in BASELINES}
    try:
        with fresh_database(args.backend, workdir, args.pg_admin_url) as database_url:
            clock = time.monotonic()
            if args.bulk_entries:
                loaded = bulkload(args.python, database_url, args.users, args.bulk_entries)
                round_notes["bulkload"] = loaded.splitlines()
                print(loaded)
                contents = f"{args.bulk_entries:,} entries of history for {args.users:,} users"
            else:
                populate(args.python, database_url, args.users, args.load_cpu)
                contents = f"{args.users:,} users populated"
            round_notes["populate_s"] = round(time.monotonic() - clock, 2)
            env = {"DATABASE_URL": database_url, "WALLET_LOG_LEVEL": "warning"}
            database = database_url.rsplit("/", 1)[1] if args.backend == "postgresql" else None
            for index in range(args.processes):
                # One at a time: each migrates (a no-op after the first) and seeds idempotently.
                cpu = args.server_cpus[index % len(args.server_cpus)]
                name = f"service-{index + 1}"
                argv = [args.python, args.service]
                server = Server(name, argv, env, cpu, workdir / f"{name}.log")
                services.append(server.start())
            print(
                f"{args.processes} service process(es) on {args.backend}, CPUs {args.server_cpus};"
                f" wrk on CPU {args.load_cpu}; {contents} in {round_notes['populate_s']} s;"
                f" storage: {round_notes['sqlite_commits_per_s']:,}"
                " SQLite commits/s"
            )
            for workload in workloads:
                measured = measure_workload(
                    args, load, workload, services, workdir, seed, baseline_rss, database
                )
                for name, result in measured.items():
                    runs[workload.name][name].append(result)
                rates = ", ".join(
                    f"{name} {result['throughput_rps']:,.0f}" for name, result in measured.items()
                )
                print(f"  {workload.name} (req/s): {rates}")
            round_notes["peak_rss_mib"] = {
                "service": max(round((s.read_peak_rss() or 0) / 1024, 1) for s in services),
                **{
                    name: round(max(rss, default=0) / 1024, 1) for name, rss in baseline_rss.items()
                },
            }
    finally:
        for server in services:
            server.stop()
        if args.keep:
            print(f"  kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return round_notes


def measure_workload(
    args: argparse.Namespace,
    load: LoadSettings,
    workload: Workload,
    services: Sequence[Server],
    workdir: Path,
    seed: int,
    baseline_rss: dict[str, list[int]],
    database: str | None,
) -> dict[str, dict[str, Any]]:
    """Warm up and measure the service, then each baseline (started fresh), on one workload;
    the measurements by server name."""
    baseline_env = {"WALLET_LOG_LEVEL": "warning"}
    notes: dict[str, Any] = {}
    if workload.name == "get_history":
        # The baselines answer pages as long as the service's pages are at this point.
        items = mean_history_items(services[0].url, args.users, seed)
        baseline_env["BASELINE_HISTORY_ITEMS"] = str(items)
        notes["history_items_per_page"] = items

    def measure(servers: Sequence[Server], db: str | None) -> dict[str, Any]:
        if args.warmup > 0:
            run_wrk(load, workload, servers, args.warmup, seed=seed + 1000)
        return {**notes, **measure_quietly(load, workload, servers, args.duration, seed, db)}

    results = {"service": measure(services, database)}
    for kind in BASELINES:
        baseline = Server(
            f"{kind.name}-{workload.name}",
            [args.python, str(ROOT / "bench" / kind.script)],
            baseline_env,
            services[0].cpu,
            workdir / f"{kind.name}-{workload.name}.log",
        ).start()
        try:
            results[kind.name] = measure([baseline], None)
        finally:
            baseline.stop()
            if baseline.peak_rss_kib is not None:
                baseline_rss[kind.name].append(baseline.peak_rss_kib)
    return results


def sqlite_commit_rate(workdir: Path, seconds: float = 1.0) -> int:
    """One-row SQLite commits per second (WAL, synchronous=FULL) in ``workdir``: how fast this
    machine's storage makes a commit durable right now, for the record."""
    path = workdir / "probe.db"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("CREATE TABLE probe (id INTEGER PRIMARY KEY, note TEXT)")
        commits, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO probe (note) VALUES ('durable?')")
            connection.execute("COMMIT")
            commits += 1
    finally:
        connection.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return round(commits / seconds)


if __name__ == "__main__":
    sys.exit(main())
