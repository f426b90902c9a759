"""The command line: ``wallet serve | migrate | seed | verify | keys … | assets … | users freeze
| users unfreeze | users lots | limits … | monitors … | export | events tail``, each calling a
service use case.

Settings come from the environment (``DATABASE_URL``, ``PORT``, ``WALLET_*``) exactly as for
``python main.py``; ``--database-url`` overrides ``DATABASE_URL``. Expected failures end with an
exit code from one table, and a one-line message rather than a traceback:

  0   success (for verify: the books balance)
  1   verify: the books do not balance
  2   usage error, including a DATABASE_URL the service cannot use
  65  another expected error of the ledger
  66  a command that only reads (verify, export, keys list, assets list, users lots, events
      tail, monitors list) found no SQLite database file: it never creates one
  69  the database cannot be reached
"""

import asyncio
import csv
import dataclasses
import io
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, TypeVar

import click
import orjson

from wallet import __version__
from wallet.config import DEFAULT_DATABASE_URL, Settings
from wallet.domain.errors import Unavailable, WalletError
from wallet.domain.ledger import Asset
from wallet.domain.money import format_minor, parse_amount
from wallet.limits import (
    ASSET_CODE_PATTERN,
    EVENT_PAGE_SIZE_MAX,
    EVENT_POLL_INTERVAL_S,
    EXPIRES_AFTER_DAYS_MAX,
    LIMIT_PAGE_SIZE_MAX,
    LOT_PAGE_SIZE_MAX,
    MONITOR_PAGE_SIZE_MAX,
    POSITION_MAX,
    SCALE_MAX,
    USER_ID_PATTERN,
)
from wallet.logs import configure_logging
from wallet.service.admin import migrate_database, seed_database
from wallet.service.assets import AssetCatalog, new_asset
from wallet.service.balances import Balances
from wallet.service.clock import SystemClock, format_us, parse_instant_us
from wallet.service.events import EVENT_TYPES, Events, render_event
from wallet.service.export import EXPORT_FIELDS, ExportRow, export_ledger
from wallet.service.freezes import CLI_ACTOR, Freezes
from wallet.service.keys import Scope, create_api_key, list_api_keys, revoke_api_key
from wallet.service.limits import Limits
from wallet.service.metrics import Metrics
from wallet.service.monitors import ABOVE, BELOW, Monitors
from wallet.service.verify import verify_ledger
from wallet.storage import Database, open_database
from wallet.storage.database import DatabaseMissing
from wallet.storage.freezes import StoredFreeze
from wallet.storage.keys import StoredKey
from wallet.storage.limits import EVERY_USER
from wallet.storage.monitors import Monitor

log = logging.getLogger(__name__)

EXIT_BOOKS_DO_NOT_BALANCE = 1
EXIT_LEDGER_ERROR = 65
EXIT_NO_DATABASE = 66  # EX_NOINPUT
EXIT_UNAVAILABLE = 69

Result = TypeVar("Result")

database_url_option = click.option(
    "--database-url",
    metavar="URL",
    help=(
        "sqlite:///path/to/file.db or postgresql://user@host:5432/name. "
        f"[default: $DATABASE_URL, else {DEFAULT_DATABASE_URL}]"
    ),
)


def _settings(database_url: str | None, *, create: bool = True) -> Settings:
    """The environment's settings, checked before any command starts (a usage error if bad).

    ``create=False`` for a command that only reads: a SQLite file that does not exist ends it
    with EXIT_NO_DATABASE, and is not created.
    """
    try:
        settings = Settings() if database_url is None else Settings(database_url=database_url)
        _open(settings, create=create).close()
    except ValueError as error:  # pydantic's ValidationError is a ValueError too
        raise click.UsageError(f"the settings cannot be used: {error}") from None
    return settings


def _open(settings: Settings, *, create: bool) -> Database:
    try:
        return open_database(settings, create=create)
    except DatabaseMissing as missing:
        # Not "unavailable": nothing is down, the file named is simply not there.
        click.echo(
            f"wallet: no database file {os.path.abspath(missing.path)}: this command only reads "
            "and creates none (check --database-url or DATABASE_URL; `wallet migrate` creates one)",
            err=True,
        )
        raise SystemExit(EXIT_NO_DATABASE) from None


def _run(use_case: Callable[[], Result]) -> Result:
    """Call a use case; end the process with the table's exit code on an expected failure."""
    try:
        return use_case()
    except WalletError as error:
        click.echo(f"wallet: {error.code}: {error.detail}", err=True)
        raise SystemExit(
            EXIT_UNAVAILABLE if isinstance(error, Unavailable) else EXIT_LEDGER_ERROR
        ) from None


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "Exit codes: 0 success; 1 verify found the books do not balance; 2 usage error;"
        " 65 another ledger error; 66 a command that only reads found no SQLite database file"
        " (it creates none); 69 the database cannot be reached."
    ),
)
@click.version_option(__version__, prog_name="wallet")
def main() -> None:
    """Wallet service: players' virtual credits in a double-entry ledger."""


@main.command()
@database_url_option
def serve(database_url: str | None) -> None:
    """Serve the HTTP API (as `python main.py` does).

    Listens on $HOST:$PORT (default 0.0.0.0:8000); migrates the database on start, and seeds it
    unless WALLET_SEED=false.
    """
    # Imported here: the web stack takes longer to import than the other commands take to run.
    from wallet.server import serve as serve_http

    serve_http(_settings(database_url))


@main.command()
@database_url_option
@click.option(
    "--supervised",
    is_flag=True,
    hidden=True,
    help="Started by the service (WALLET_EVENTS_RELAY=process): stop when stdin ends.",
)
def relay(database_url: str | None, supervised: bool) -> None:
    """Push events to the webhook endpoints and the stream, and serve no API.

    Each service process starts one of its own (WALLET_EVENTS_RELAY=process, the default). Run
    it by hand beside service processes started with WALLET_EVENTS_RELAY=off, to deliver from
    other machines. Any number may run: each relay is served by one process at a time (a
    lease). Stops on SIGTERM or Ctrl-C, giving its leases back.
    """
    settings = _settings(database_url)
    configure_logging(settings)
    asyncio.run(_relay(settings, supervised))


async def _relay(settings: Settings, supervised: bool) -> None:
    # Imported here, as the server is: the relays' stack takes a while to import.
    from wallet.service.wallet import WalletService

    service = WalletService(settings)
    service.prepare_relays()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    if supervised:
        # Standard input is a pipe from the service that started this process: its end means
        # the service is gone (even killed), and so is the reason to deliver.
        def read_input() -> None:
            if not os.read(sys.stdin.fileno(), 4096):
                loop.remove_reader(sys.stdin.fileno())
                stop.set()

        loop.add_reader(sys.stdin.fileno(), read_input)
    service.relays.start()
    log.info("wallet relay %s: delivering events", service.relays.owner)
    try:
        await stop.wait()
    finally:
        await service.relays.stop()
        service.database.close()


@main.command()
@database_url_option
def migrate(database_url: str | None) -> None:
    """Bring the database schema up to date (idempotent)."""
    settings = _settings(database_url)
    _run(lambda: migrate_database(settings))
    click.echo(f"Migrated the {settings.backend.value} database to the newest schema.")


@main.command()
@database_url_option
def seed(database_url: str | None) -> None:
    """Migrate, then create the seed assets, treasuries and demo users (idempotent).

    Assets GC, DI and LP with their supply, and users user_001 and user_002 with opening
    balances. What exists already is left as it is, so running it twice changes nothing.
    """
    settings = _settings(database_url)
    _run(lambda: seed_database(settings))
    click.echo(f"Seeded the {settings.backend.value} database.")


@main.command()
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(database_url: str | None, as_json: bool) -> None:
    """Prove that the books balance; exit 1 with a report of every problem when they do not.

    Recomputes, in one consistent read, every balance from its entries, the chain of balances of
    every account, the sum of every transaction's entries, and every asset's supply. Exits 66,
    creating nothing, when the SQLite database file does not exist.
    """
    settings = _settings(database_url, create=False)
    database = _open(settings, create=False)
    try:
        report = _run(lambda: verify_ledger(database))
    finally:
        database.close()
    click.echo(json.dumps(dataclasses.asdict(report), indent=2) if as_json else report.verdict())
    if not report.ok:
        raise SystemExit(EXIT_BOOKS_DO_NOT_BALANCE)


@main.group()
def assets() -> None:
    """List the assets, add one with its supply, or change how long its credits last."""


def _expiry_text(expires_after_days: int | None) -> str:
    if expires_after_days is None:
        return "credits never expire"
    return f"credits expire after {expires_after_days} days"


class ExpiryType(click.ParamType[int | None, str]):
    """How many days an asset's credits last (1 to EXPIRES_AFTER_DAYS_MAX), or ``never``."""

    name = f"1-{EXPIRES_AFTER_DAYS_MAX}|never"

    def convert(
        self, value: str | int | None, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | None:
        if value is None or isinstance(value, int):
            return value
        if value == "never":
            return None
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= EXPIRES_AFTER_DAYS_MAX):
            self.fail(
                f"{value!r} is not a number of days from 1 to {EXPIRES_AFTER_DAYS_MAX}, nor 'never'"
            )
        return int(value)


@assets.command("list")
@database_url_option
def assets_list(database_url: str | None) -> None:
    """List every asset: code, name, scale and supply. Exits 66, creating nothing, when the
    SQLite database file does not exist.
    """
    settings = _settings(database_url, create=False)
    assets = _with_database(
        settings, lambda database: AssetCatalog(database).refresh(), create=False
    )
    for asset in assets:
        supply = format_minor(asset.supply_minor, asset.scale)
        click.echo(
            f"{asset.code}  {asset.name}  scale {asset.scale}  supply {supply}"
            f"  {_expiry_text(asset.expires_after_days)}"
        )


@assets.command("add")
@database_url_option
@click.option("--code", required=True, help="2 to 10 capital letters, e.g. GEM.")
@click.option("--name", required=True, help="e.g. Gems.")
@click.option("--scale", required=True, type=click.IntRange(0, SCALE_MAX), help="Decimals.")
@click.option("--supply", required=True, help="The whole supply in major units, e.g. 1000000.")
@click.option(
    "--expires-after-days",
    type=ExpiryType(),
    default=None,
    help="Its top-ups and bonuses expire this many days after they are made. [default: never]",
)
def assets_add(
    database_url: str | None,
    code: str,
    name: str,
    scale: int,
    supply: str,
    expires_after_days: int | None,
) -> None:
    """Add an asset and issue its whole supply to its treasury, in one unit of work."""
    settings = _settings(database_url)
    if not re.match(ASSET_CODE_PATTERN, code):
        raise click.UsageError("--code is 2 to 10 capital letters")
    try:
        amount = parse_amount(supply)
    except ValueError as error:
        raise click.UsageError(f"--supply: {error}") from None

    def add(database: Database) -> Asset:
        asset = new_asset(code, name, scale, amount, expires_after_days)
        [added] = AssetCatalog(database).add([asset])
        return added

    asset = _with_database(settings, add)
    click.echo(
        f"Added {asset.code} ({asset.name}) with a supply of {supply} in its treasury;"
        f" {_expiry_text(asset.expires_after_days)}."
    )


@assets.command("set")
@database_url_option
@click.argument("code", metavar="CODE")
@click.option(
    "--expires-after-days",
    type=ExpiryType(),
    required=True,
    help="The credits made from now on expire this many days after they are made; 'never':"
    " they never expire.",
)
def assets_set(database_url: str | None, code: str, expires_after_days: int | None) -> None:
    """Change how long the credits of asset CODE last, for the credits made from now on (lots
    made before keep their expiry). Running services apply it within 5 seconds.
    """
    settings = _settings(database_url)
    asset = _with_database(
        settings, lambda database: AssetCatalog(database).set_expiry(code, expires_after_days)
    )
    click.echo(
        f"{asset.code} ({asset.name}): {_expiry_text(asset.expires_after_days)} from now on."
    )


@main.group()
def limits() -> None:
    """Set, remove and list daily limits: what one user may spend (purchases, holds) or receive
    (top-ups, bonuses) of an asset per UTC day. Running services apply a change at once.
    """


_NO_LIMIT = "none"


def _limit_option(name: str, what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        name,
        metavar="X|none",
        help=f"What a user may {what} per UTC day, in major units; `none`: no limit. "
        "Left out: unchanged (no limit for a new one).",
    )


def _limit_amount(option: str, value: str | None, current: str | None) -> Decimal | None:
    text = current if value is None else value
    if text is None or text == _NO_LIMIT:
        return None
    try:
        return parse_amount(text)
    except ValueError as error:
        raise click.UsageError(f"{option}: {error}") from None


def _limits(database: Database) -> Limits:
    return Limits(database, AssetCatalog(database), SystemClock())


@limits.command("set")
@database_url_option
@click.argument("asset_code")
@click.option("--user", "user_id", help="Override the asset's limit for this user only.")
@_limit_option("--debit-per-day", "spend")
@_limit_option("--credit-per-day", "receive")
def limits_set(
    database_url: str | None,
    asset_code: str,
    user_id: str | None,
    debit_per_day: str | None,
    credit_per_day: str | None,
) -> None:
    """Set ASSET_CODE's daily limit for every user, or with --user one user's override of it
    (`none` in an override: no limit for that user)."""
    settings = _settings(database_url)
    if user_id is not None and not re.fullmatch(USER_ID_PATTERN, user_id):
        raise click.UsageError("--user is 1 to 128 characters of A-Z a-z 0-9 . _ : @ -")
    if debit_per_day is None and credit_per_day is None:
        raise click.UsageError("give --debit-per-day, --credit-per-day or both")

    def put(database: Database) -> dict[str, Any]:
        use_case = _limits(database)
        found = use_case.page(limit=1, asset_code=asset_code, user_id=user_id or EVERY_USER)
        current = found.items[0] if found.items else {}
        return use_case.set(
            asset_code,
            user_id,
            _limit_amount("--debit-per-day", debit_per_day, current.get("debit_per_day")),
            _limit_amount("--credit-per-day", credit_per_day, current.get("credit_per_day")),
        )

    click.echo(_limit_line(_with_database(settings, put)))


@limits.command("rm")
@database_url_option
@click.argument("asset_code")
@click.option("--user", "user_id", help="Remove this user's override (else the asset's limit).")
def limits_rm(database_url: str | None, asset_code: str, user_id: str | None) -> None:
    """Remove a user's override (the asset's limit applies to them again), or the asset's
    limit."""
    settings = _settings(database_url)
    removed = _with_database(
        settings, lambda database: _limits(database).remove(asset_code, user_id)
    )
    whose = f"{user_id}'s override" if user_id is not None else "the limit for every user"
    click.echo(f"Removed {whose} of {asset_code}." if removed else f"No {whose} of {asset_code}.")


@limits.command("list")
@database_url_option
@click.option("--asset", "asset_code", help="Only this asset's limits.")
@click.option("--json", "as_json", is_flag=True, help="Print the limits as JSON lines.")
def limits_list(database_url: str | None, asset_code: str | None, as_json: bool) -> None:
    """List the daily limits, each asset's limit for every user (user `*`) before its users'
    overrides. Exits 66, creating nothing, when the SQLite database file does not exist."""
    settings = _settings(database_url, create=False)

    def print_all(database: Database) -> None:
        use_case = _limits(database)
        cursor = None
        while True:
            page = use_case.page(limit=LIMIT_PAGE_SIZE_MAX, cursor=cursor, asset_code=asset_code)
            for item in page.items:
                click.echo(json.dumps(item) if as_json else _limit_line(item))
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    _with_database(settings, print_all, create=False)


def _limit_line(view: dict[str, Any]) -> str:
    return (
        f"{view['asset_code']}  {view['user_id'] or EVERY_USER}"
        f"  debit {view['debit_per_day'] or _NO_LIMIT}/day"
        f"  credit {view['credit_per_day'] or _NO_LIMIT}/day"
        f"  updated {view['updated_at']}"
    )


@main.group()
def keys() -> None:
    """Create, list and revoke API keys.

    A key is shown once, when it is created, and stored only as a hash. A running service
    honours a new or revoked key within 5 seconds.
    """


def _with_database(
    settings: Settings, use_case: Callable[[Database], Result], *, create: bool = True
) -> Result:
    database = _open(settings, create=create)
    try:
        database.migrate()
        return _run(lambda: use_case(database))
    finally:
        database.close()


@keys.command("create")
@database_url_option
@click.option("--name", required=True, help="Who the key is for, e.g. game-server-eu.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice([scope.value for scope in Scope]),
    help="read (every GET), write (transactions, holds), admin (/admin, /metrics). Repeatable.",
)
def keys_create(database_url: str | None, name: str, scopes: tuple[str, ...]) -> None:
    """Create an API key and print it (on stdout, alone) once: store it now."""
    settings = _settings(database_url)
    record, key = _with_database(settings, lambda db: create_api_key(db, name, scopes))
    click.echo(
        f"Created API key {record.id} ({record.name}; scopes {_scopes(record)}). "
        "It is shown only this once:",
        err=True,
    )
    click.echo(key)


@keys.command("list")
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON lines.")
def keys_list(database_url: str | None, as_json: bool) -> None:
    """List the API keys (never the keys themselves), revoked ones included. Exits 66, creating
    nothing, when the SQLite database file does not exist.
    """
    settings = _settings(database_url, create=False)
    for record in _with_database(settings, list_api_keys, create=False):
        fields = {
            "id": record.id,
            "name": record.name,
            "scopes": sorted(record.scopes),
            "created_at": format_us(record.created_at_us),
            "revoked_at": None if record.revoked_at_us is None else format_us(record.revoked_at_us),
        }
        if as_json:
            click.echo(json.dumps(fields))
        else:
            state = f"revoked {fields['revoked_at']}" if fields["revoked_at"] else "active"
            click.echo(
                f"{record.id}  {record.name}  {_scopes(record)}  created {fields['created_at']}"
                f"  {state}"
            )


@keys.command("revoke")
@database_url_option
@click.argument("key_id")
def keys_revoke(database_url: str | None, key_id: str) -> None:
    """Revoke the API key KEY_ID (the id `keys list` shows); running services refuse it within
    5 seconds.
    """
    settings = _settings(database_url)
    record = _with_database(settings, lambda db: revoke_api_key(db, key_id))
    if record is None:
        raise click.UsageError(f"no API key with id {key_id!r}")
    click.echo(f"Revoked API key {record.id} ({record.name}).")


@main.group()
def users() -> None:
    """Freeze and unfreeze users' accounts; list a user's lots (credits that expire).

    A frozen account refuses every top-up, bonus, purchase, refund, hold placement and capture
    (account_frozen) in every running service at once; hold expiry and releases go on. Each
    freeze and unfreeze is logged (by "cli") and is an event.
    """


asset_option = click.option(
    "--asset",
    "asset_code",
    metavar="CODE",
    help="One asset's account, e.g. GC. [default: the freeze of all of the user's assets]",
)


def _user_id(user_id: str) -> str:
    if not re.match(USER_ID_PATTERN, user_id):
        raise click.UsageError("USER is 1 to 128 characters of A-Z a-z 0-9 . _ : @ -")
    return user_id


def _account(user_id: str, asset_code: str | None) -> str:
    return f"{user_id}'s {asset_code} account" if asset_code else f"all of {user_id}'s accounts"


@users.command("freeze")
@database_url_option
@click.argument("user_id", metavar="USER")
@click.option("--reason", required=True, help="Why, for the log (1 to 500 characters).")
@asset_option
def users_freeze(
    database_url: str | None, user_id: str, reason: str, asset_code: str | None
) -> None:
    """Freeze USER's account in one asset (--asset), or in all of them. Freezing what is
    frozen changes nothing.
    """
    settings = _settings(database_url)
    user_id = _user_id(user_id)

    def freeze(database: Database) -> tuple[StoredFreeze, bool]:
        freezes = Freezes(database, AssetCatalog(database), SystemClock())
        return freezes.freeze(user_id, asset_code, reason, CLI_ACTOR)

    freeze_in_force, created = _with_database(settings, freeze)
    account = _account(user_id, asset_code)
    if created:
        click.echo(f"Froze {account}.")
    else:
        since = format_us(freeze_in_force.frozen_at_us)
        click.echo(
            f"{account[0].upper()}{account[1:]} was frozen already (since {since}, by "
            f"{freeze_in_force.frozen_by}: {freeze_in_force.reason}); nothing changed."
        )


@users.command("unfreeze")
@database_url_option
@click.argument("user_id", metavar="USER")
@click.option("--reason", help="Why, for the log (1 to 500 characters).")
@asset_option
def users_unfreeze(
    database_url: str | None, user_id: str, reason: str | None, asset_code: str | None
) -> None:
    """Lift the freeze of USER's account in one asset (--asset), or the freeze of all of its
    assets (a freeze of one asset is lifted by its own --asset). Unfreezing what is not
    frozen changes nothing.
    """
    settings = _settings(database_url)
    user_id = _user_id(user_id)

    def unfreeze(database: Database) -> StoredFreeze | None:
        freezes = Freezes(database, AssetCatalog(database), SystemClock())
        return freezes.unfreeze(user_id, asset_code, reason, CLI_ACTOR)

    lifted = _with_database(settings, unfreeze)
    account = _account(user_id, asset_code)
    if lifted is not None:
        click.echo(f"Unfroze {account} (frozen since {format_us(lifted.frozen_at_us)}).")
    else:
        click.echo(f"{account[0].upper()}{account[1:]} had no freeze in force; nothing changed.")


@users.command("lots")
@database_url_option
@click.argument("user_id", metavar="USER")
@click.argument("asset_code", metavar="ASSET")
@click.option("--json", "as_json", is_flag=True, help="Print the lots as JSON lines.")
def users_lots(database_url: str | None, user_id: str, asset_code: str, as_json: bool) -> None:
    """List USER's open lots in ASSET (credits that expire), soonest expiry first: when each
    expires, what is left of it of its amount, its id and the credit that made it. Exits 66,
    creating nothing, when the SQLite database file does not exist.
    """
    settings = _settings(database_url, create=False)
    user_id = _user_id(user_id)

    def print_all(database: Database) -> None:
        balances = Balances(database, AssetCatalog(database))
        cursor: str | None = None
        while True:
            page = balances.lots(user_id, asset_code, LOT_PAGE_SIZE_MAX, cursor)
            for lot in page.items:
                if as_json:
                    click.echo(json.dumps(lot))
                else:
                    click.echo(
                        f"{lot['expires_at']}  {lot['remaining']} of {lot['amount']}"
                        f"  lot {lot['id']}  credit {lot['transaction_id']}"
                    )
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    _with_database(settings, print_all, create=False)


class InstantType(click.ParamType[int, str | int]):
    """An ISO 8601 date or date and time; without an offset it is taken as UTC. It must fall in
    the years 1 to 9999 in UTC once its offset is applied (clock.py, parse_instant_us).
    """

    name = "ISO"

    def convert(
        self, value: str | int, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO 8601 date or time, e.g. 2026-11-25T08:00:00Z", param, ctx
            )
        try:
            return parse_instant_us(moment)
        except ValueError as error:
            self.fail(str(error), param, ctx)


@main.command()
@database_url_option
@click.option(
    "--since", "since_us", type=InstantType(), required=True, help="First instant, included."
)
@click.option(
    "--until", "until_us", type=InstantType(), required=True, help="End instant, excluded."
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["csv", "jsonl"]),
    required=True,
    help="CSV with a header line, or one JSON object per line.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE (complete, or not at all) instead of stdout.",
)
def export(
    database_url: str | None,
    since_us: int,
    until_us: int,
    output_format: str,
    output: Path | None,
) -> None:
    """Export the ledger entries created in [--since, --until), in entry id order.

    One row per entry: entry_id, transaction_id, transaction_type, created_at (RFC 3339, UTC),
    account_type, account_id, asset_code, amount, balance_before, balance_after (decimal strings
    at the asset's scale), user_id, description. --since is included and --until excluded, so
    consecutive ranges export every entry once. ISO dates without an offset are UTC, e.g.
    --since 2026-11-01 --until 2026-12-01. The export reads one snapshot in pages, in constant
    memory; on a terminal, stderr shows a progress bar. Exits 66, creating nothing, when the
    SQLite database file does not exist.
    """
    if since_us >= until_us:
        raise click.UsageError("--until must be after --since")
    settings = _settings(database_url, create=False)
    write: Callable[[Iterable[ExportRow], IO[bytes]], int] = (
        _write_csv if output_format == "csv" else _write_jsonl
    )

    def run(database: Database) -> int:
        with export_ledger(database, since_us, until_us) as ledger, _opened(output) as stream:
            if not sys.stderr.isatty():
                return write(ledger.rows(), stream)
            total = ledger.count()
            with click.progressbar(
                ledger.rows(), length=total, label="Exporting entries", file=sys.stderr
            ) as rows:
                return write(rows, stream)

    written = _with_database(settings, run, create=False)
    if output is not None:
        click.echo(f"Exported {written} entries to {output}.", err=True)


@main.group()
def events() -> None:
    """Read the feed of events: what changed in the ledger, oldest first."""


class EventTypesType(click.ParamType[tuple[str, ...], str | tuple[str, ...]]):
    """Comma-separated event types, each one of EVENT_TYPES."""

    name = "TYPE,…"

    def convert(
        self,
        value: str | tuple[str, ...],
        param: click.Parameter | None,
        ctx: click.Context | None,
    ) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        kinds = tuple(dict.fromkeys(kind.strip() for kind in value.split(",")))
        unknown = [kind for kind in kinds if kind not in EVENT_TYPES]
        if unknown:
            self.fail(f"unknown event type {unknown[0]!r}; the types are {', '.join(EVENT_TYPES)}")
        return kinds


@events.command("tail")
@database_url_option
@click.option(
    "--after",
    type=click.IntRange(0, POSITION_MAX),
    default=0,
    show_default=True,
    help="Print the events after this position.",
)
@click.option(
    "--types",
    type=EventTypesType(),
    default=(),
    help=f"Only these types, comma-separated, of: {', '.join(EVENT_TYPES)}. [default: all]",
)
@click.option("--follow", is_flag=True, help="Keep printing new events until interrupted.")
def events_tail(database_url: str | None, after: int, types: tuple[str, ...], follow: bool) -> None:
    """Print the events after --after, oldest first, one JSON object per line: the Event as
    GET /events and webhooks show it (id, position, type, created_at, data).

    Reads the database directly, as the feed does: a position printed is never followed by a
    lower one. With --follow it looks for new events every 0.2 s until interrupted (Ctrl-C,
    exit 0). Exits 66, creating nothing, when the SQLite database file does not exist, and 65
    (events_pruned) when retention no longer keeps the events after --after.
    """
    settings = _settings(database_url, create=False)

    def tail(database: Database) -> None:
        feed = Events(database, SystemClock(), Metrics(), settings.events_retention_days)
        _print_events(feed, after, types, follow)

    _with_database(settings, tail, create=False)


def _print_events(feed: Events, after: int, types: tuple[str, ...], follow: bool) -> None:
    """Pages of the feed to stdout, each flushed as it is read; a page not full means caught
    up: then stop, or, to follow, look again after a pause."""
    stdout = sys.stdout.buffer
    try:
        while True:
            page = feed.page(after, EVENT_PAGE_SIZE_MAX, types)
            for event in page.items:
                stdout.write(render_event(event) + b"\n")
            stdout.flush()
            after = page.next_after
            if len(page.items) < EVENT_PAGE_SIZE_MAX:
                if not follow:
                    return
                time.sleep(EVENT_POLL_INTERVAL_S)
    except KeyboardInterrupt:
        # The way to end --follow; what was printed is complete, line by line.
        stdout.flush()
    except BrokenPipeError:
        # The reader has gone (`wallet events tail | head`): stop as it asked, quietly. What is
        # still buffered can go nowhere, and must not fail again when the process exits.
        os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())


@main.group()
def monitors() -> None:
    """Add, list and remove balance monitors: a balance.threshold_crossed event each time a
    balance crosses a threshold (see `wallet events tail`)."""


def _monitors(database: Database) -> Monitors:
    return Monitors(database, AssetCatalog(database), SystemClock())


@monitors.command("add")
@database_url_option
@click.argument("asset_code", metavar="ASSET")
@click.option("--above", metavar="X", help="Fire when a balance goes from at most X to above X.")
@click.option("--below", metavar="X", help="Fire when a balance goes from at least X to below X.")
@click.option("--user", "user_id", metavar="USER", help="One user's balance. [default: every user]")
def monitors_add(
    database_url: str | None,
    asset_code: str,
    above: str | None,
    below: str | None,
    user_id: str | None,
) -> None:
    """Watch the balances of ASSET (or of one user's): one event each time one crosses the
    threshold; crossing back emits nothing and re-arms the monitor. Prints its id."""
    settings = _settings(database_url)
    if (above is None) == (below is None):
        raise click.UsageError("give one of --above X or --below X")
    condition, text = (ABOVE, above) if above is not None else (BELOW, below)
    assert text is not None
    if user_id is not None and not re.fullmatch(USER_ID_PATTERN, user_id):
        raise click.UsageError("--user is 1 to 128 characters of A-Z a-z 0-9 . _ : @ -")
    try:
        threshold = parse_amount(text)
    except ValueError as error:
        raise click.UsageError(f"--{condition}: {error}") from None

    def add(database: Database) -> str:
        use_cases = _monitors(database)
        monitor = use_cases.create(asset_code, user_id, condition, threshold)
        return _monitor_line(monitor, use_cases)

    click.echo(_with_database(settings, add))


@monitors.command("list")
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the monitors as JSON lines.")
def monitors_list(database_url: str | None, as_json: bool) -> None:
    """List the balance monitors, oldest first: id, asset, user (* for every user), condition,
    threshold. Exits 66, creating nothing, when the SQLite database file does not exist.
    """
    settings = _settings(database_url, create=False)

    def views(database: Database) -> list[dict[str, object]]:
        use_cases = _monitors(database)
        items: list[dict[str, object]] = []
        cursor: str | None = None
        while True:
            page = use_cases.page(MONITOR_PAGE_SIZE_MAX, cursor)
            items.extend(page.items)
            if page.next_cursor is None:
                return items
            cursor = page.next_cursor

    for view in _with_database(settings, views, create=False):
        if as_json:
            click.echo(json.dumps(view))
        else:
            user = "*" if view["user_id"] is None else view["user_id"]
            click.echo(
                f"{view['id']}  {view['asset_code']}  {user}  {view['condition']}"
                f" {view['threshold']}  created {view['created_at']}"
            )


@monitors.command("rm")
@database_url_option
@click.argument("monitor_id", metavar="ID")
def monitors_rm(database_url: str | None, monitor_id: str) -> None:
    """Remove the monitor ID (as `monitors list` shows it): the writes that follow emit nothing
    for it. Exits 65 (monitor_not_found) when there is none."""
    settings = _settings(database_url)
    _with_database(settings, lambda database: _monitors(database).delete(monitor_id))
    click.echo(f"Removed balance monitor {monitor_id}.")


def _monitor_line(monitor: Monitor, use_cases: Monitors) -> str:
    view = use_cases.view(monitor)
    user = "*" if monitor.user_id is None else monitor.user_id
    return f"{monitor.id}  {monitor.asset_code}  {user}  {monitor.condition} {view['threshold']}"


@contextmanager
def _opened(output: Path | None) -> Iterator[IO[bytes]]:
    """stdout, or a file that appears under its name only once the export is complete."""
    if output is None:
        stdout = sys.stdout.buffer
        yield stdout
        stdout.flush()
        return
    partial = output.with_name(output.name + ".partial")
    try:
        with partial.open("wb") as stream:
            yield stream
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


def _write_csv(rows: Iterable[ExportRow], stream: IO[bytes]) -> int:
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    writer = csv.DictWriter(text, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    written = 0
    for row in rows:
        # A cell is text: the metadata object is written as its JSON.
        writer.writerow(
            {
                name: orjson.dumps(v).decode() if isinstance(v, dict) else v
                for name, v in row.items()
            }
        )
        written += 1
    text.flush()
    text.detach()  # the stream stays open for its owner
    return written


def _write_jsonl(rows: Iterable[ExportRow], stream: IO[bytes]) -> int:
    written = 0
    for row in rows:
        stream.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
        written += 1
    return written


def _scopes(record: StoredKey) -> str:
    return ",".join(sorted(record.scopes))


if __name__ == "__main__":
    main()
