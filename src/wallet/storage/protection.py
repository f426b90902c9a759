"""The SQL of the player protection a unit of work reads (service/protection.py): the freezes of
the users it moves, the daily limits of the assets and users it debits or credits with those
accounts' usage of the day, and the balance monitors of the accounts it touches, in one
statement.

One statement instead of four: on PostgreSQL each is a round trip, and on both backends each
costs its own execution whether or not anything is configured. Its parts are branches of one
``UNION ALL`` whose rows say what they are by their first column (``'f'`` a freeze, ``'l'`` a
limit, ``'u'`` an account's usage, ``'m'`` a monitor) and carry their values in four text and four
integer columns; a part with nothing to ask about is left out. Every part is what its own module
read before, on the same indexes: ranges of the primary keys of ``freezes`` (user_id,
asset_code) and ``daily_limits`` (asset_code, user_id), two ranges of ``balance_monitors
(asset_code, user_id)``, and the day's entries of each account after the last one its writer has
read (storage/limits.py). An account's usage is summed only where a limit of its asset, for
everyone or for its user, exists, so a ledger without limits reads no entries; the limits and
that test are read in the one statement, from one snapshot.

The caller runs it after the unit of work holds its accounts (PostgreSQL: their row locks;
SQLite: the database's write lock), so that nothing it reads of their usage can change before
the commit, and so that it sees every freeze, limit and monitor committed before it began.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import orjson

from wallet.config import Backend

from .database import Session
from .limits import EVERY_USER, USAGE, StoredLimit
from .monitors import Monitor

_TEXT_NULL = "CAST(NULL AS TEXT)"
_INT_NULL = "CAST(NULL AS BIGINT)"


class UsageAccount(NamedTuple):
    """An account whose usage of the day is wanted, from after entry ``after_id`` (0: all)."""

    account_id: int
    after_id: int
    asset_code: str
    user_id: str


@dataclass(frozen=True, slots=True)
class ProtectionQuery:
    """What one unit of work asks about; an empty part is not read."""

    # Freezes: the users a request moves.
    frozen_of: Sequence[str] = ()
    # Limits: of these assets, for everyone and for each of these users.
    limit_assets: Sequence[str] = ()
    limit_users: Sequence[str] = ()
    # The usage in [day_start_us, day_end_us) of these accounts (of users among limit_users).
    usage_of: Sequence[UsageAccount] = ()
    day_start_us: int = 0
    day_end_us: int = 0
    # Monitors: every user's of these assets, and these users' own.
    monitor_assets: Sequence[str] = ()
    monitor_users: Sequence[str] = ()


@dataclass(slots=True)
class Protection:
    """What the statement found."""

    # The asset codes ('*': all) frozen for each user asked about that has a freeze in force.
    frozen: dict[str, frozenset[str]] = field(default_factory=dict)
    limits: list[StoredLimit] = field(default_factory=list)
    # (spent, received, last entry id read) of each account asked about that has entries after
    # its ``after_id`` that day and a limit row of its asset for everyone or its user.
    usage: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    monitors: list[Monitor] = field(default_factory=list)


def read_protection(session: Session, query: ProtectionQuery) -> Protection:
    """Read everything ``query`` asks about in one statement (none when it asks nothing)."""
    freezes = bool(query.frozen_of)
    limits = bool(query.limit_assets)
    usage = limits and bool(query.usage_of)
    monitors = bool(query.monitor_assets and query.monitor_users)
    found = Protection()
    if not (freezes or limits or monitors):
        return found
    sql = _statement(session.backend, freezes, limits, usage, monitors)
    postgresql = session.backend is Backend.POSTGRESQL
    params: list[object] = []
    if freezes:
        params.append(_list(query.frozen_of, postgresql))
    if limits:
        params += [
            _list(query.limit_assets, postgresql),
            _list([EVERY_USER, *query.limit_users], postgresql),
        ]
    if usage:
        params.append(query.day_start_us)
        if postgresql:
            params += [list(column) for column in zip(*query.usage_of, strict=True)]
        else:
            params.append(orjson.dumps([list(account) for account in query.usage_of]).decode())
        params += [query.day_start_us, query.day_end_us]
    if monitors:
        assets = _list(query.monitor_assets, postgresql)
        params += [assets, assets, _list(query.monitor_users, postgresql)]
    frozen: dict[str, set[str]] = {}
    for kind, t1, t2, t3, t4, n1, n2, n3, n4 in session.all(sql, params):
        if kind == "f":
            frozen.setdefault(t1, set()).add(t2)
        elif kind == "l":
            found.limits.append(StoredLimit(t1, t2, n1, n2, n3))
        elif kind == "u":
            found.usage[int(n1)] = (int(n2), int(n3), int(n4))
        else:
            found.monitors.append(Monitor(t1, t2, t3, t4, int(n1), int(n2)))
    found.frozen = {user_id: frozenset(codes) for user_id, codes in frozen.items()}
    return found


def _list(values: Sequence[str], postgresql: bool) -> object:
    """A list parameter: an array on PostgreSQL, a JSON array (read by json_each) on SQLite."""
    return list(values) if postgresql else orjson.dumps(list(values)).decode()


@lru_cache(maxsize=32)
def _statement(backend: Backend, freezes: bool, limits: bool, usage: bool, monitors: bool) -> str:
    postgresql = backend is Backend.POSTGRESQL

    def within(column: str) -> str:
        if postgresql:
            return f"{column} = ANY(?::text[])"
        return f"{column} IN (SELECT value FROM json_each(?))"

    branches = []
    if freezes:
        users = (
            "freezes f WHERE f.user_id = ANY(?::text[])"
            if postgresql
            else "json_each(?) AS w CROSS JOIN freezes f ON f.user_id = w.value"
        )
        branches.append(
            f"SELECT 'f', f.user_id, f.asset_code, {_TEXT_NULL}, {_TEXT_NULL},"
            f" {_INT_NULL}, {_INT_NULL}, {_INT_NULL}, {_INT_NULL} FROM {users}"
        )
    if limits:
        branches.append(
            f"SELECT 'l', asset_code, user_id, {_TEXT_NULL}, {_TEXT_NULL},"
            f" debit_per_day_minor, credit_per_day_minor, updated_at_us, {_INT_NULL}"
            f" FROM daily_limits WHERE {within('asset_code')} AND {within('user_id')}"
        )
    if usage:
        accounts = (
            "unnest(?::bigint[], ?::bigint[], ?::text[], ?::text[])"
            " AS w(id, after_id, asset_code, user_id)"
            if postgresql
            else "(SELECT json_extract(value, '$[0]') AS id,"
            " json_extract(value, '$[1]') AS after_id,"
            " json_extract(value, '$[2]') AS asset_code,"
            " json_extract(value, '$[3]') AS user_id FROM json_each(?)) AS w"
        )
        columns = f"'u', {_TEXT_NULL}, {_TEXT_NULL}, {_TEXT_NULL}, {_TEXT_NULL},"
        branches.append(USAGE.replace("{columns}", columns).replace("{accounts}", accounts))
    if monitors:
        columns = (
            f"'m', id, asset_code, user_id, condition, threshold_minor, created_at_us,"
            f" {_INT_NULL}, {_INT_NULL}"
        )
        branches.append(
            f"SELECT {columns} FROM balance_monitors WHERE {within('asset_code')}"
            f" AND user_id IS NULL UNION ALL SELECT {columns} FROM balance_monitors"
            f" WHERE {within('asset_code')} AND {within('user_id')}"
        )
    return " UNION ALL ".join(branches)
