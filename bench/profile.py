"""Where the time goes: the service under a wrk workload, sampled with perf and py-spy.

    .venv/bin/python bench/profile.py --workload post_transaction --seconds 20

Starts the service on a fresh, populated database as bench/run.py does (same pinning), loads it
for ``--warmup`` seconds, then loads it for ``--seconds`` more while two samplers watch it from the
load generator's CPU, neither pausing it:

- ``perf record`` (if perf is installed): where the server's CPU time goes by binary: the Python
  interpreter and its C extensions, the cyclic garbage collector, the SQLite library, the kernel;
- ``py-spy record --gil --nonblocking``: which Python code holds the GIL, split by stage: the HTTP
  server, the framework, request parsing and validation, thread-pool hops, the ledger, the
  group-commit writer, the SQL calls, BEGIN/COMMIT, the response.

It prints the server's CPU time per request, and both splits in µs per request; it writes the
py-spy stacks to bench/results/<timestamp>-profile-<workload>-<backend>.txt (collapsed stacks: open
in https://www.speedscope.app or feed to flamegraph.pl) and the summary beside it as .json.

A py-spy stage is decided by the innermost frame of a sample that belongs to a known package
(standard-library frames, such as uuid or json.decoder, count for their caller). SQLite runs
without the GIL, so its time is in the perf split (the SQLite library), not in py-spy's.

Needs py-spy (``pip install py-spy``) and, for the perf split, perf (Debian: linux-perf); both
must be allowed to read the server (root, or CAP_SYS_PTRACE and a low perf_event_paranoid).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import run

SAMPLE_RATE_HZ = 250
PERF_RATE_HZ = 499

# perf's binaries, grouped. A symbol of libpython that only the cyclic garbage collector runs
# counts as "garbage collector" (the traverse functions are called by nothing else).
PERF_PYTHON = "Python: interpreter, C extensions (uvloop, httptools, pydantic-core, orjson), libc"
PERF_GC = "Python: cyclic garbage collector"
PERF_SQLITE = "SQLite library (statements, triggers, WAL writes)"
PERF_KERNEL = "kernel: socket I/O, file writes and fsync, thread switches and wake-ups"
GC_SYMBOLS = ("gc_collect", "visit_decref", "visit_reachable", "move_unreachable",
              "update_refs", "subtract_refs", "deduce_unreachable", "move_legacy_finalizers",
              "PyObject_IS_GC")  # fmt: skip

# Stages, as printed.
HTTP = "HTTP server: uvicorn, uvloop and httptools (socket I/O, HTTP parsing)"
FRAMEWORK = "framework: Starlette/FastAPI routing, middleware, exception handling"
MIDDLEWARE = "our edge and hot routes: request id, API key, metrics, log line, dispatch"
VALIDATION = "request parsing and validation: JSON body, pydantic, parameters"
THREADPOOL = "thread-pool hops (a sync dependency or endpoint)"
LEDGER = "ledger and service code (wallet.service, wallet.domain, routes)"
WRITER = "group-commit writer: queueing, batching, handing answers back"
SQL = "SQL statements (SQLite/psycopg, incl. triggers)"
COMMIT = "BEGIN and COMMIT (fsync of the WAL)"
RESPONSE = "response: Response objects, JSON encoding, problem bodies"
OTHER = "other"
STAGES = (
    HTTP,
    FRAMEWORK,
    MIDDLEWARE,
    VALIDATION,
    THREADPOOL,
    LEDGER,
    WRITER,
    SQL,
    COMMIT,
    RESPONSE,
    OTHER,
)

# Leaves of threads that wait (py-spy's idle detection misses some of them).
IDLE_LEAVES = {
    ("Condition.wait", "threading.py"),
    ("Event.wait", "threading.py"),
    ("select", "selectors.py"),
}


def parse_frame(frame: str) -> tuple[str, str]:
    """``"func (path/file.py:12)"`` to ``("func", "path/file.py")``."""
    function, _, location = frame.rpartition(" (")
    return function, location.rstrip(")").rsplit(":", 1)[0]


def stage_of_frame(function: str, path: str) -> str | None:
    """The stage a frame belongs to, or None for a frame that counts for its caller."""
    if path.startswith("wallet/storage/"):
        if function.endswith(("WriterConnection.commit", "WriterConnection.begin")):
            return COMMIT
        return SQL
    if path.startswith("wallet/service/writer.py"):
        return WRITER
    if path.startswith("wallet/domain/money.py") and function == "parse_amount":
        return VALIDATION
    if path.startswith(("wallet/service/", "wallet/domain/", "wallet/api/routes/")):
        return LEDGER
    if path.startswith(
        (
            "wallet/api/jsonbody.py",
            "wallet/api/models.py",
            "pydantic",
            "fastapi/dependencies/",
            "fastapi/_compat",
            "fastapi/params.py",
            "starlette/requests.py",
            "starlette/formparsers.py",
            "json/",
        )
    ):
        return VALIDATION
    if path.startswith(("anyio/", "starlette/concurrency.py", "queue.py")):
        return THREADPOOL
    if path.startswith(
        ("starlette/responses.py", "fastapi/encoders.py", "wallet/api/problems.py")
    ) or function.endswith("serialize_response"):
        return RESPONSE
    if path.startswith(
        ("wallet/api/edge.py", "wallet/api/hot.py", "wallet/api/auth.py",
         "prometheus_client/")
    ):  # fmt: skip
        return MIDDLEWARE
    if path.startswith(("uvicorn/", "uvloop/", "httptools/")):
        return HTTP
    if path.startswith(("starlette/", "fastapi/", "wallet/api/")):
        return FRAMEWORK
    return None


def stage_of_sample(frames: list[str]) -> str | None:
    """The stage of one sample (root first, leaf last); None when the thread was idle."""
    leaf_function, leaf_path = parse_frame(frames[-1])
    if (leaf_function, leaf_path) in IDLE_LEAVES:
        return None
    if leaf_function == "Runner.run" and leaf_path == "asyncio/runners.py":
        return HTTP  # inside uvloop's C code: reading, parsing, writing
    for frame in reversed(frames):
        stage = stage_of_frame(*parse_frame(frame))
        if stage is not None:
            return stage
    return OTHER


def summarise(raw_path: Path, cpu_us_per_request: float) -> dict[str, Any]:
    """The py-spy samples by stage; ``cpu_us_per_request`` is the time the samples stand for."""
    stages: Counter[str] = Counter()
    leaves: Counter[tuple[str, str]] = Counter()
    threads: Counter[str] = Counter()
    for line in raw_path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        if frames[0].startswith("thread ("):
            thread, frames = frames[0].split(": ", 1)[-1], frames[1:]
        else:
            thread = "?"
        if not frames:
            continue
        stage = stage_of_sample(frames)
        if stage is None:
            continue
        stages[stage] += int(count)
        leaves[(frames[-1], stage)] += int(count)
        threads[thread.split(" ")[0] if thread.startswith("AnyIO") else thread] += int(count)
    total = sum(stages.values()) or 1
    return {
        "active_samples": total,
        "stages": {
            stage: {
                "share": round(stages[stage] / total, 4),
                "us_per_request": round(cpu_us_per_request * stages[stage] / total, 1),
            }
            for stage in STAGES
            if stages[stage]
        },
        "threads": {name: round(n / total, 4) for name, n in threads.most_common()},
        "top_leaves": [
            {"frame": frame, "stage": stage, "share": round(n / total, 4)}
            for (frame, stage), n in leaves.most_common(25)
        ],
    }


def perf_split(perf_data: Path, cpu_us_per_request: float) -> dict[str, Any]:
    """The server's CPU time by binary, from a perf recording."""
    report = subprocess.run(
        ["perf", "report", "-i", str(perf_data), "--sort", "dso,sym", "--stdio",
         "--no-children", "-g", "none", "--percent-limit", "0"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    groups: dict[str, float] = {}
    symbols: dict[str, float] = {}
    for line in report.splitlines():
        fields = line.split()
        if len(fields) < 4 or not fields[0].endswith("%") or line.lstrip().startswith("#"):
            continue
        share, dso, symbol = float(fields[0].rstrip("%")) / 100, fields[1], fields[-1]
        if dso.startswith("[kernel"):
            group = PERF_KERNEL
        elif "sqlite3" in dso:
            group = PERF_SQLITE
        elif dso.startswith("libpython") and (
            symbol.startswith(GC_SYMBOLS) or symbol.endswith("_traverse")
        ):
            group = PERF_GC
        else:
            group = PERF_PYTHON
        groups[group] = groups.get(group, 0.0) + share
        symbols[f"{symbol} ({dso})"] = symbols.get(f"{symbol} ({dso})", 0.0) + share
    total = sum(groups.values()) or 1
    return {
        "groups": {
            group: {
                "share": round(share / total, 4),
                "us_per_request": round(cpu_us_per_request * share / total, 1),
            }
            for group, share in sorted(groups.items(), key=lambda kv: -kv[1])
        },
        "top_symbols": [
            {"symbol": symbol, "share": round(share / total, 4)}
            for symbol, share in sorted(symbols.items(), key=lambda kv: -kv[1])[:20]
        ],
    }


def print_summary(summary: dict[str, Any], measured: dict[str, Any]) -> None:
    print(
        f"\nunder the profilers: {measured['throughput_rps']:,.0f} req/s, "
        f"p50 {measured['latency_ms']['p50']:.1f} ms, p99 {measured['latency_ms']['p99']:.1f} ms; "
        f"server CPU {100 * measured['server_cpu_share']:.0f} % busy, "
        f"{summary['cpu_us_per_request']:.0f} µs of CPU per request"
    )
    perf = summary.get("perf")
    if perf:
        print(f"\n  perf: CPU time by binary{'':<50}{'share':>7}{'µs/req':>9}")
        for group, values in perf["groups"].items():
            print(f"  {group:<74}{100 * values['share']:>6.1f}%{values['us_per_request']:>9.0f}")
        print("\n  perf: busiest symbols")
        for item in perf["top_symbols"][:12]:
            print(f"  {100 * item['share']:5.1f}%  {item['symbol']}")
    python_us = summary["python_us_per_request"]
    print(f"\n  py-spy: time holding the GIL, by stage ({python_us:.0f} µs per request)")
    print(f"  {'':<74}{'share':>7}{'µs/req':>9}")
    for stage, values in sorted(summary["stages"].items(), key=lambda kv: -kv[1]["share"]):
        print(f"  {stage:<74}{100 * values['share']:>6.1f}%{values['us_per_request']:>9.0f}")
    threads = ", ".join(f"{k} {100 * v:.0f} %" for k, v in summary["threads"].items())
    print(f"\n  py-spy: threads holding the GIL: {threads}")
    print("\n  py-spy: innermost frames with the most samples")
    for leaf in summary["top_leaves"][:15]:
        print(f"  {100 * leaf['share']:5.1f}%  {leaf['frame']}  [{leaf['stage'].split(':')[0]}]")


def py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workload", default="post_transaction", choices=[w.name for w in run.WORKLOADS]
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=20, help="profiled seconds")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--users", type=int, default=run.USERS)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--pg-admin-url", default=run.PG_ADMIN_URL_DEFAULT)
    parser.add_argument("--no-perf", action="store_true", help="py-spy only")
    parser.add_argument("--service", default="main.py", help="the service's entry script")
    args = parser.parse_args()
    spy = py_spy()
    workload = next(w for w in run.WORKLOADS if w.name == args.workload)
    load = run.LoadSettings(2, args.connections, args.load_cpu, args.users)
    started_at = datetime.now(UTC)
    stem = f"{started_at:%Y%m%dT%H%M%SZ}-profile-{workload.name}-{args.backend}"
    raw_path = run.RESULTS_DIR / f"{stem}.txt"
    raw_path.parent.mkdir(parents=True, exist_ok=True)

    workdir = Path(tempfile.mkdtemp(prefix="wallet-profile-"))
    try:
        with run.fresh_database(args.backend, workdir, args.pg_admin_url) as database_url:
            run.populate(sys.executable, database_url, args.users, args.load_cpu)
            env = {"DATABASE_URL": database_url, "WALLET_LOG_LEVEL": "warning"}
            service = run.Server(
                "service", [sys.executable, args.service], env, args.server_cpu, workdir / "s.log"
            ).start()
            try:
                if args.warmup > 0:
                    run.run_wrk(load, workload, [service], args.warmup, seed=1000)

                perf_data = workdir / "perf.data"

                def record() -> None:
                    perf = None
                    if shutil.which("perf") and not args.no_perf:
                        perf = subprocess.Popen(
                            ["taskset", "-c", str(args.load_cpu), "perf", "record", "-e",
                             "cpu-clock", "-F", str(PERF_RATE_HZ), "-p", str(service.pid),
                             "-o", str(perf_data), "--", "sleep", f"{args.seconds:g}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        )  # fmt: skip
                    subprocess.run(
                        ["taskset", "-c", str(args.load_cpu), spy, "record",
                         "--pid", str(service.pid), "--gil", "--nonblocking", "--threads",
                         "--rate", str(SAMPLE_RATE_HZ), "--duration", f"{args.seconds:g}",
                         "--format", "raw", "--output", str(raw_path)],
                        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                    if perf is not None:
                        perf.wait()

                # wrk runs a second longer than the samplers, so every sample is under load.
                measured = run.run_wrk(load, workload, [service], args.seconds + 1, 1, record)
                cpu_us = 1e6 * measured["server_cpu_share"] / (measured["throughput_rps"] or 1)
                perf = perf_split(perf_data, cpu_us) if perf_data.exists() else None
            finally:
                service.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    # py-spy's samples stand for the CPU time outside SQLite and the kernel.
    outside = 1.0
    if perf is not None:
        outside -= sum(
            perf["groups"].get(g, {"share": 0})["share"] for g in (PERF_SQLITE, PERF_KERNEL)
        )
    python_us = cpu_us * outside
    summary = {
        "cpu_us_per_request": round(cpu_us, 1),
        "python_us_per_request": round(python_us, 1),
        "perf": perf,
        **summarise(raw_path, python_us),
    }
    print_summary(summary, measured)
    report = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/profile.py", *sys.argv[1:]]),
        "workload": workload.name,
        "backend": args.backend,
        "warmup_s": args.warmup,
        "seconds": args.seconds,
        "measured": measured,
        **summary,
    }
    summary_path = raw_path.with_suffix(".json")
    summary_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {raw_path.relative_to(run.ROOT)}, {summary_path.relative_to(run.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
