"""The command line, run as a user runs it (a real process) on real SQLite and PostgreSQL databases:
migrate an empty database, seed it twice, verify books that balance and books that do not, serve,
tail the events, freeze users, set daily limits, add, list and remove balance monitors.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.support.databases import DatabaseFactory
from tests.support.server import free_port
from tests.support.tamper import rows, tamper
from wallet.config import Settings
from wallet.service.clock import now_us
from wallet.storage import open_database
from wallet.storage.events import NewEvent, append_events

WALLET = [sys.executable, "-m", "wallet.cli"]
TIMEOUT_S = 120
SEEDED = "12 accounts and 9 transactions"

ACCOUNTS = "SELECT owner_type, owner_id, asset_code, balance_minor FROM accounts ORDER BY id"
COUNTS = "SELECT (SELECT count(*) FROM transactions), (SELECT count(*) FROM entries)"


def _env(**extra: str) -> dict[str, str]:
    """The test's environment without a database setting of its own, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "WALLET_DATABASE_URL")}
    return {**env, "WALLET_LOG_LEVEL": "warning", **extra}


def wallet(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WALLET, *args], capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(**env)
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["relay"],
        ["migrate"],
        ["seed"],
        ["verify"],
        ["limits", "set"],
        ["limits", "list"],
    ],
)
def test_every_command_explains_itself(command: list[str]) -> None:
    result = wallet(*command, "--help")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: ")
    if command:
        assert "--database-url URL" in result.stdout
        assert "$DATABASE_URL" in result.stdout
    else:
        for name in ("serve", "migrate", "seed", "verify"):
            assert name in result.stdout


def test_migrate_creates_the_schema_on_an_empty_database(databases: DatabaseFactory) -> None:
    url = databases.empty()

    first = wallet("migrate", "--database-url", url)
    again = wallet("migrate", "--database-url", url)

    assert first.returncode == 0, first.stderr
    assert "Migrated" in first.stdout
    assert again.returncode == 0, again.stderr
    assert rows(url, COUNTS) == [(0, 0)]
    assert rows(url, "SELECT count(*) FROM assets") == [(0,)], "migrate does not seed"
    verified = wallet("verify", "--database-url", url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "The books balance: 0 accounts and 0 transactions checked." in verified.stdout


def test_seed_twice_changes_nothing_the_second_time(databases: DatabaseFactory) -> None:
    url = databases.empty()

    first = wallet("seed", "--database-url", url)
    accounts, counts = rows(url, ACCOUNTS), rows(url, COUNTS)
    again = wallet("seed", "--database-url", url)

    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert rows(url, ACCOUNTS) == accounts
    assert rows(url, COUNTS) == counts == [(9, 18)]
    assert ("user", "user_001", "GC", 100_000) in accounts
    assert ("system", "treasury", "GC", 10**14 - 150_000) in accounts
    verified = wallet("verify", "--json", "--database-url", url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout) == {
        "ok": True,
        "accounts_checked": 12,
        "transactions_checked": 9,
        "problems": [],
    }


def test_verify_reads_database_url_from_the_environment(database_url: str) -> None:
    result = wallet("verify", DATABASE_URL=database_url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"The books balance: {SEEDED} checked."


def test_verify_fails_with_a_report_that_names_the_problem(database_url: str) -> None:
    tamper(
        database_url,
        "UPDATE accounts SET balance_minor = balance_minor + 1"
        " WHERE owner_id = 'user_001' AND asset_code = 'GC'",
    )
    problem = (
        "account user:user_001 GC: stored balance 1000.01 GC is not the sum of its entries,"
        " 1000.00 GC"
    )

    text = wallet("verify", "--database-url", database_url)
    as_json = wallet("verify", "--json", "--database-url", database_url)

    assert text.returncode == 1, text.stdout + text.stderr
    assert text.stdout.startswith(f"The books do NOT balance: 2 problems in {SEEDED}:")
    assert f"  - {problem}\n" in text.stdout
    assert as_json.returncode == 1, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert report["problems"][0] == problem
    assert report["problems"][1].startswith("asset GC: the accounts other than issuance hold")


def test_verify_fails_when_entries_are_tampered_with(database_url: str) -> None:
    tamper(
        database_url,
        "UPDATE entries SET amount_minor = amount_minor + 1, balance_after = balance_after + 1"
        " WHERE id = (SELECT max(id) FROM entries)",
    )

    result = wallet("verify", "--database-url", database_url)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "entries summing to 0.01 " in result.stdout
    assert "is not the sum of its entries" in result.stdout


def test_an_unusable_database_url_is_a_usage_error() -> None:
    result = wallet("verify", "--database-url", "mysql://localhost/wallet")

    assert result.returncode == 2
    assert "DATABASE_URL must start with sqlite:// or postgresql://" in result.stderr


def test_an_unreadable_database_exits_unavailable(tmp_path: Path) -> None:
    # A directory where the database file should be: SQLite cannot open it.
    result = wallet("verify", "--database-url", f"sqlite:///{tmp_path}")

    assert result.returncode == 69, result.stdout + result.stderr
    assert result.stderr.startswith("wallet: unavailable: ")
    assert "Traceback" not in result.stderr


READ_ONLY_COMMANDS = {
    "verify": ["verify"],
    "verify --json": ["verify", "--json"],
    "keys list": ["keys", "list"],
    "assets list": ["assets", "list"],
    "users lots": ["users", "lots", "user_001", "LP"],
    "export": ["export", "--since", "2026-01-01", "--until", "2026-02-01", "--format", "csv"],
    "events tail": ["events", "tail"],
    "monitors list": ["monitors", "list"],
}


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS)
def test_a_command_that_only_reads_creates_no_database(tmp_path: Path, command: str) -> None:
    """Where no database exists, it says which file it looked for and exits 66 (EX_NOINPUT),
    rather than create an empty one and report the service "unavailable"."""
    args = READ_ONLY_COMMANDS[command]
    elsewhere = tmp_path / "not" / "here.db"

    default = subprocess.run(
        [*WALLET, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=_env(),
        cwd=tmp_path,
    )
    named = wallet(*args, "--database-url", f"sqlite:///{elsewhere}")
    helped = wallet(*args, "--help")

    assert default.returncode == 66, default.stdout + default.stderr
    assert str(tmp_path / "wallet_service.db") in default.stderr
    assert named.returncode == 66, named.stdout + named.stderr
    assert str(elsewhere) in named.stderr
    assert "Traceback" not in default.stderr + named.stderr
    assert default.stdout == named.stdout == ""
    assert list(tmp_path.iterdir()) == [], "no file, and no directory, was created"
    assert "Exits 66" in " ".join(helped.stdout.split())


def test_serve_answers_http_and_stops_on_sigterm(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [*WALLET, "serve", "--database-url", database_url],
        env=_env(PORT=str(port), WALLET_HOST="127.0.0.1", WALLET_LOG_LEVEL="info"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        health = _wait_for_health(f"http://127.0.0.1:{port}", process)
        assert health["status"] == "ok"
        assert health["database"]["backend"] == database_url.split(":")[0]
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        log.close()
    # Uvicorn shuts down gracefully, then lets the signal end the process, as `python main.py`.
    output = (tmp_path / "serve.log").read_text()
    assert code in (0, -signal.SIGTERM), output
    assert "Application shutdown complete." in output


def _wait_for_health(base_url: str, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "wallet serve exited at start"
        try:
            response = httpx.get(f"{base_url}/health", timeout=1)
            if response.status_code == 200:
                health: dict[str, Any] = response.json()
                return health
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("wallet serve did not become healthy")


def test_events_tail_prints_the_feed_as_json_lines(database_url: str) -> None:
    seeded = rows(database_url, "SELECT count(*) FROM events")[0][0]
    hold = _append_event(database_url, "hold.placed", {"id": "h-1", "status": "pending"})

    everything = wallet("events", "tail", "--database-url", database_url)
    later = wallet("events", "tail", "--after", str(seeded - 1), "--database-url", database_url)
    holds = wallet(
        "events", "tail", "--types", "hold.placed,hold.expired", "--database-url", database_url
    )

    assert everything.returncode == 0, everything.stderr
    lines = [json.loads(line) for line in everything.stdout.splitlines()]
    assert [line["position"] for line in lines] == list(range(1, seeded + 2))
    assert {line["type"] for line in lines[:seeded]} == {"transaction.created"}
    assert set(lines[0]) == {"id", "position", "type", "created_at", "data"}
    assert lines[0]["data"]["transaction_type"] == "issuance"
    assert lines[-1] == {
        "id": hold,
        "position": seeded + 1,
        "type": "hold.placed",
        "created_at": lines[-1]["created_at"],
        "data": {"id": "h-1", "status": "pending"},
    }
    assert [json.loads(line)["position"] for line in later.stdout.splitlines()] == [
        seeded,
        seeded + 1,
    ]
    assert [json.loads(line)["id"] for line in holds.stdout.splitlines()] == [hold]


def test_events_tail_follows_new_events_until_interrupted(database_url: str) -> None:
    seeded = rows(database_url, "SELECT count(*) FROM events")[0][0]
    command = ["events", "tail", "--follow", "--after", str(seeded), "--database-url", database_url]
    process = subprocess.Popen(
        [*WALLET, *command],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines = _lines_of(process.stdout)
    try:
        first = _append_event(database_url, "hold.placed", {"id": "h-1"})
        assert json.loads(_next_line(lines))["id"] == first
        second = _append_event(database_url, "hold.released", {"id": "h-1"})
        third = _append_event(database_url, "transaction.created", {"id": "t-1"})
        assert [json.loads(_next_line(lines))["id"] for _ in range(2)] == [second, third]
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    assert process.stderr is not None
    errors = process.stderr.read().decode()
    assert code == 0, errors
    assert "Traceback" not in errors


def test_events_tail_stops_quietly_when_its_reader_goes(database_url: str) -> None:
    # `wallet events tail --follow | head -1`: the reader closes the pipe after one line.
    process = subprocess.Popen(
        [*WALLET, "events", "tail", "--follow", "--database-url", database_url],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    first = json.loads(process.stdout.readline())
    process.stdout.close()
    _append_event(database_url, "hold.placed", {"id": "h-1"})
    code = process.wait(timeout=30)
    errors = process.stderr.read().decode()
    assert first["position"] == 1
    assert code == 0, errors
    assert "Traceback" not in errors


def test_events_tail_refuses_an_unknown_type(database_url: str) -> None:
    result = wallet(
        "events", "tail", "--types", "hold.placed,hold.lost", "--database-url", database_url
    )

    assert result.returncode == 2
    assert "unknown event type 'hold.lost'" in result.stderr


def test_events_tail_below_what_retention_kept_is_events_pruned(database_url: str) -> None:
    tamper(database_url, "DELETE FROM events WHERE position <= 3")

    pruned = wallet("events", "tail", "--after", "1", "--database-url", database_url)
    kept = wallet("events", "tail", "--after", "3", "--database-url", database_url)

    assert pruned.returncode == 65, pruned.stdout + pruned.stderr
    assert pruned.stderr.startswith("wallet: events_pruned: ")
    assert pruned.stdout == ""
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout.splitlines()[0])["position"] == 4


FREEZE_LOG = "SELECT user_id, asset_code, action, reason, actor FROM freeze_log ORDER BY seq"


def test_users_freeze_and_unfreeze_log_as_cli_and_emit_events(database_url: str) -> None:
    url = ["--database-url", database_url]
    frozen = wallet("users", "freeze", "user_001", "--reason", "ticket 7", "--asset", "GC", *url)
    again = wallet("users", "freeze", "user_001", "--reason", "ticket 8", "--asset", "GC", *url)
    every = wallet("users", "freeze", "user_001", "--reason", "takeover", *url)
    lifted = wallet("users", "unfreeze", "user_001", "--asset", "GC", "--reason", "done", *url)
    nothing = wallet("users", "unfreeze", "user_001", "--asset", "GC", *url)
    all_lifted = wallet("users", "unfreeze", "user_001", *url)

    for result in (frozen, again, every, lifted, nothing, all_lifted):
        assert result.returncode == 0, result.stderr
    assert frozen.stdout == "Froze user_001's GC account.\n"
    assert again.stdout.startswith("User_001's GC account was frozen already (since ")
    assert "by cli: ticket 7); nothing changed." in again.stdout
    assert every.stdout == "Froze all of user_001's accounts.\n"
    assert lifted.stdout.startswith("Unfroze user_001's GC account (frozen since ")
    assert nothing.stdout == "User_001's GC account had no freeze in force; nothing changed.\n"
    assert all_lifted.stdout.startswith("Unfroze all of user_001's accounts")
    assert rows(database_url, FREEZE_LOG) == [
        ("user_001", "GC", "freeze", "ticket 7", "cli"),
        ("user_001", "*", "freeze", "takeover", "cli"),
        ("user_001", "GC", "unfreeze", "done", "cli"),
        ("user_001", "*", "unfreeze", "no reason given", "cli"),
    ]
    assert rows(database_url, "SELECT count(*) FROM freezes") == [(0,)]
    events = rows(
        database_url, "SELECT type, data FROM events WHERE type LIKE 'account.%' ORDER BY position"
    )
    assert [(kind, json.loads(data)) for kind, data in events] == [
        ("account.frozen", {"user_id": "user_001", "asset_code": "GC", "reason": "ticket 7"}),
        ("account.frozen", {"user_id": "user_001", "asset_code": None, "reason": "takeover"}),
        ("account.unfrozen", {"user_id": "user_001", "asset_code": "GC", "reason": "done"}),
        (
            "account.unfrozen",
            {"user_id": "user_001", "asset_code": None, "reason": "no reason given"},
        ),
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["freeze", "nobody", "--reason", "x"], 65, "wallet: user_not_found: "),
        (["unfreeze", "nobody"], 65, "wallet: user_not_found: "),
        (["freeze", "user_001", "--reason", "x", "--asset", "XX"], 65, "wallet: validation_error"),
        (["freeze", "user_001", "--reason", ""], 65, "wallet: validation_error: reason is 1 to"),
        (["freeze", "bad id", "--reason", "x"], 2, "USER is 1 to 128 characters"),
        (["freeze", "user_001"], 2, "Missing option '--reason'"),
    ],
)
def test_users_freeze_refuses_bad_input(
    database_url: str, args: list[str], code: int, message: str
) -> None:
    result = wallet("users", *args, "--database-url", database_url)

    assert result.returncode == code, result.stdout + result.stderr
    assert message in result.stderr
    assert rows(database_url, "SELECT count(*) FROM freeze_log") == [(0,)]


def test_monitors_add_list_and_rm(database_url: str) -> None:
    every = wallet("monitors", "add", "GC", "--above", "1000", "--database-url", database_url)
    one = wallet(
        "monitors", "add", "DI", "--below", "2.5", "--user", "user_001",
        "--database-url", database_url,
    )  # fmt: skip

    assert every.returncode == 0, every.stderr
    assert one.returncode == 0, one.stderr
    every_id, one_id = every.stdout.split()[0], one.stdout.split()[0]
    assert every.stdout.split()[1:] == ["GC", "*", "above", "1000.00"]
    assert one.stdout.split()[1:] == ["DI", "user_001", "below", "2.50"]
    listed = wallet("monitors", "list", "--json", "--database-url", database_url)
    assert listed.returncode == 0, listed.stderr
    views = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [tuple(view.values())[:5] for view in views] == [
        (every_id, "GC", None, "above", "1000.00"),
        (one_id, "DI", "user_001", "below", "2.50"),
    ]
    assert rows(database_url, "SELECT count(*) FROM balance_monitors") == [(2,)]

    removed = wallet("monitors", "rm", every_id, "--database-url", database_url)
    again = wallet("monitors", "rm", every_id, "--database-url", database_url)
    text = wallet("monitors", "list", "--database-url", database_url)

    assert removed.returncode == 0, removed.stderr
    assert (again.returncode, again.stderr.split(":")[1].strip()) == (65, "monitor_not_found")
    assert [line.split()[0] for line in text.stdout.splitlines()] == [one_id]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["GC"], 2),  # neither --above nor --below
        (["GC", "--above", "1", "--below", "2"], 2),
        (["GC", "--above", "1e3"], 2),
        (["GC", "--above", "1", "--user", "no spaces"], 2),
        (["GC", "--above", "1.001"], 65),  # more decimals than GC's scale
        (["XX", "--above", "1"], 65),  # no such asset
    ],
)
def test_monitors_add_refuses_what_the_api_refuses(
    database_url: str, args: list[str], code: int
) -> None:
    result = wallet("monitors", "add", *args, "--database-url", database_url)

    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert rows(database_url, "SELECT count(*) FROM balance_monitors") == [(0,)]


def _append_event(database_url: str, kind: str, data: dict[str, Any]) -> str:
    """Write one event as a unit of work of the service does; its id."""
    event_id = str(uuid.uuid4())
    database = open_database(Settings(database_url=database_url))
    try:
        with database.unit_of_work() as session:
            append_events(session, [NewEvent(event_id, kind, json.dumps(data).encode())], now_us())
    finally:
        database.close()
    return event_id


def _lines_of(stream: IO[bytes] | None) -> queue.Queue[bytes]:
    """The lines of ``stream``, read by a thread of their own as they come."""
    assert stream is not None
    lines: queue.Queue[bytes] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _next_line(lines: queue.Queue[bytes]) -> bytes:
    try:
        return lines.get(timeout=30)
    except queue.Empty:
        raise AssertionError("no line within 30 s") from None


# --- limits --------------------------------------------------------------------------------------


def test_limits_set_list_and_rm(database_url: str) -> None:
    asset = wallet("limits", "set", "GC", "--debit-per-day", "50", "--database-url", database_url)
    override = wallet(
        "limits", "set", "GC", "--user", "user_001", "--credit-per-day", "10.5",
        "--database-url", database_url,
    )  # fmt: skip
    # Left out, a value stays what it was: only the credit changes here.
    changed = wallet(
        "limits", "set", "GC", "--credit-per-day", "100", "--database-url", database_url
    )
    cleared = wallet(
        "limits", "set", "GC", "--debit-per-day", "none", "--database-url", database_url
    )
    listed = wallet("limits", "list", "--json", "--database-url", database_url)

    for done in (asset, override, changed, cleared, listed):
        assert done.returncode == 0, done.stderr
    assert asset.stdout.startswith("GC  *  debit 50.00/day  credit none/day  updated ")
    assert override.stdout.startswith("GC  user_001  debit none/day  credit 10.50/day")
    assert changed.stdout.startswith("GC  *  debit 50.00/day  credit 100.00/day")
    assert cleared.stdout.startswith("GC  *  debit none/day  credit 100.00/day")
    items = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(i["user_id"], i["debit_per_day"], i["credit_per_day"]) for i in items] == [
        (None, None, "100.00"),
        ("user_001", None, "10.50"),
    ]

    removed = wallet("limits", "rm", "GC", "--user", "user_001", "--database-url", database_url)
    again = wallet("limits", "rm", "GC", "--user", "user_001", "--database-url", database_url)
    plain = wallet("limits", "list", "--database-url", database_url)
    assert removed.stdout == "Removed user_001's override of GC.\n"
    assert again.stdout == "No user_001's override of GC.\n"
    assert [line.split("  ")[:2] for line in plain.stdout.splitlines()] == [["GC", "*"]]


def test_limits_set_refuses_what_is_no_limit(database_url: str) -> None:
    nothing = wallet("limits", "set", "GC", "--database-url", database_url)
    bad = wallet("limits", "set", "GC", "--debit-per-day", "-5", "--database-url", database_url)
    decimals = wallet(
        "limits", "set", "GC", "--debit-per-day", "1.001", "--database-url", database_url
    )
    unknown = wallet("limits", "set", "ZZZ", "--debit-per-day", "1", "--database-url", database_url)

    assert (nothing.returncode, bad.returncode) == (2, 2)
    assert (decimals.returncode, unknown.returncode) == (65, 65)
    assert "validation_error: amount has more than 2 decimal places" in decimals.stderr
    assert "asset_not_found" in unknown.stderr
