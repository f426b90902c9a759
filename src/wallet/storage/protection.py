"""The SQL of the player protection a unit of work reads (service/protection.py): the freezes of
the users it moves, the daily limits of the assets and users it debits or credits, and the
balance monitors of the accounts it touches.

On PostgreSQL in one statement instead of three, for each is a round trip: the parts are
branches of one ``UNION ALL`` whose rows say what they are by their first column (``'f'`` a
freeze, ``'l'`` a limit, ``'m'`` a monitor) and carry their values in four text and three integer
columns. On SQLite, where there is no round trip to save, the same parts run as statements of
their own: measured, the compound statement ran slower than its three parts (bench/README.md,
"Player protection"). A part with nothing to ask about is left out. Every part reads what its
module read before, on the same indexes: ranges of the primary keys of ``freezes`` (user_id,
asset_code) and ``daily_limits`` (asset_code, user_id), and two ranges of ``balance_monitors
(asset_code, user_id)``.

The caller runs it after the unit of work holds its accounts (PostgreSQL: their row locks;
SQLite: the database's write lock), so that it sees every freeze, limit and monitor committed
before that.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from wallet.config import Backend

from .database import Session
from .limits import EVERY_USER, StoredLimit
from .monitors import Monitor

_TEXT_NULL = "CAST(NULL AS TEXT)"
_INT_NULL = "CAST(NULL AS BIGINT)"


@dataclass(frozen=True, slots=True)
class ProtectionQuery:
    """What one unit of work asks about; an empty part is not read."""

    # Freezes: the users a request moves.
    frozen_of: Sequence[str] = ()
    # Limits: of these assets, for everyone and for each of these users.
    limit_assets: Sequence[str] = ()
    limit_users: Sequence[str] = ()
    # Monitors: every user's of these assets, and these users' own.
    monitor_assets: Sequence[str] = ()
    monitor_users: Sequence[str] = ()


@dataclass(slots=True)
class Protection:
    """What the statement found."""

    # The asset codes ('*': all) frozen for each user asked about that has a freeze in force.
    frozen: dict[str, frozenset[str]] = field(default_factory=dict)
    limits: list[StoredLimit] = field(default_factory=list)
    monitors: list[Monitor] = field(default_factory=list)


def read_protection(session: Session, query: ProtectionQuery) -> Protection:
    """Read everything ``query`` asks about: on PostgreSQL in one statement, on SQLite one
    statement per part (none when it asks nothing)."""
    postgresql = session.backend is Backend.POSTGRESQL
    parts: list[tuple[str, list[object]]] = []
    if query.frozen_of:
        parts.append((_FREEZES[postgresql], [_list(query.frozen_of, postgresql)]))
    if query.limit_assets:
        assets = _list(query.limit_assets, postgresql)
        users = _list([EVERY_USER, *query.limit_users], postgresql)
        parts.append((_LIMITS[postgresql], [assets, users]))
    if query.monitor_assets and query.monitor_users:
        assets = _list(query.monitor_assets, postgresql)
        users = _list(query.monitor_users, postgresql)
        # The users' branch takes its users first on PostgreSQL (a loop over them).
        params = [assets, users, assets] if postgresql else [assets, assets, users]
        parts.append((_MONITORS[postgresql], params))
    found = Protection()
    if postgresql and parts:
        # Each statement is a round trip: one for all.
        sql = " UNION ALL ".join(sql for sql, _ in parts)
        _collect(found, session.all(sql, [param for _, params in parts for param in params]))
    else:
        # No round trip to save, and a compound statement runs slower than its parts.
        for sql, params in parts:
            _collect(found, session.all(sql, params))
    return found


def _collect(found: Protection, rows: Sequence[Sequence[Any]]) -> None:
    for kind, t1, t2, t3, t4, n1, n2, n3 in rows:
        if kind == "f":
            codes = found.frozen.get(t1, frozenset())
            found.frozen[t1] = codes | {t2}
        elif kind == "l":
            found.limits.append(StoredLimit(t1, t2, n1, n2, n3))
        else:
            found.monitors.append(Monitor(t1, t2, t3, t4, int(n1), int(n2)))


def _list(values: Sequence[str], postgresql: bool) -> object:
    """A list parameter: an array on PostgreSQL, a JSON array (read by json_each) on SQLite."""
    return list(values) if postgresql else orjson.dumps(list(values)).decode()


def _within(column: str, postgresql: bool) -> str:
    if postgresql:
        return f"{column} = ANY(?::text[])"
    return f"{column} IN (SELECT value FROM json_each(?))"


def _freezes(postgresql: bool) -> str:
    users = (
        "freezes f WHERE f.user_id = ANY(?::text[])"
        if postgresql
        else "json_each(?) AS w CROSS JOIN freezes f ON f.user_id = w.value"
    )
    return (
        f"SELECT 'f', f.user_id, f.asset_code, {_TEXT_NULL}, {_TEXT_NULL},"
        f" {_INT_NULL}, {_INT_NULL}, {_INT_NULL} FROM {users}"
    )


def _limits(postgresql: bool) -> str:
    return (
        f"SELECT 'l', asset_code, user_id, {_TEXT_NULL}, {_TEXT_NULL},"
        " debit_per_day_minor, credit_per_day_minor, updated_at_us"
        f" FROM daily_limits WHERE {_within('asset_code', postgresql)}"
        f" AND {_within('user_id', postgresql)}"
    )


def _monitors(postgresql: bool) -> str:
    columns = (
        "'m', m.id, m.asset_code, m.user_id, m.condition, m.threshold_minor, m.created_at_us,"
        f" {_INT_NULL}"
    )
    everyone = (
        f"SELECT {columns} FROM balance_monitors m"
        f" WHERE {_within('m.asset_code', postgresql)} AND m.user_id IS NULL"
    )
    if postgresql:
        # One probe of the index per user: on a table this small the planner's generic plan
        # for ``user_id = ANY(…)`` is a scan of every monitor (0.3-0.8 ms at 1,000 against 0.1
        # for the probes, measured); OFFSET 0 keeps the subquery a loop over the users.
        users = (
            "unnest(?::text[]) AS w(user_id) CROSS JOIN LATERAL (SELECT * FROM balance_monitors"
            " WHERE asset_code = ANY(?::text[]) AND user_id = w.user_id OFFSET 0) AS m"
        )
    else:
        users = (
            "balance_monitors m WHERE m.asset_code IN (SELECT value FROM json_each(?))"
            " AND m.user_id IN (SELECT value FROM json_each(?))"
        )
    return f"{everyone} UNION ALL SELECT {columns} FROM {users}"


# Each part's SQL, by backend (index: True for PostgreSQL).
_FREEZES = (_freezes(False), _freezes(True))
_LIMITS = (_limits(False), _limits(True))
_MONITORS = (_monitors(False), _monitors(True))
