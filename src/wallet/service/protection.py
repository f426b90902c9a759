"""What a unit of work reads of player protection: the freezes of the users it moves, the daily
limits of the users it debits or credits (and then, if one applies, their usage of the day),
and the balance monitors of the accounts it touches, after its accounts' locks.

The freezes, limits and monitors are read together (storage/protection.py: one statement on
PostgreSQL, where each is a round trip). Each rule stays in its own module, which says what it
needs and what it makes of the rows: freezes.py (``users_moved``, then ``check_not_frozen`` as
commands are applied), limits.py (``limited_pairs``, ``allowances_of``) and monitors.py
(``watched``, ``index_of``). Nothing is cached: every unit of work reads what is in force as it
begins, after the locks, so a freeze, limit or monitor committed by any process before it binds
it, and the usage it reads cannot change before its commit.
"""

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from wallet.domain.ledger import AccountRef, PostedTransaction
from wallet.storage import Session
from wallet.storage.protection import ProtectionQuery, read_protection

from .commands import HoldCommand, PostingCommand
from .freezes import FrozenAccounts, users_moved
from .limits import Allowances, DayUsage, allowances_of, limited_pairs
from .monitors import MonitorIndex, index_of, watched


class Protection(NamedTuple):
    frozen: FrozenAccounts
    # None when no daily limit applies to the unit of work's users.
    allowances: Allowances | None
    monitors: MonitorIndex


def load_protection(
    session: Session,
    postings: Sequence[PostingCommand],
    holding: Sequence[HoldCommand],
    originals: Mapping[str, PostedTransaction],
    account_ids: Mapping[AccountRef, int],
    now_us: int,
    day_usage: DayUsage | None = None,
) -> Protection:
    """The protection of a unit of work that holds the accounts of ``account_ids``: one read
    (none when it moves no user), and a second when a daily limit applies."""
    pairs = limited_pairs(postings, holding)
    monitor_assets, monitor_users = watched(account_ids)
    found = read_protection(
        session,
        ProtectionQuery(
            frozen_of=users_moved(postings, holding, originals),
            limit_assets=sorted({asset for _, asset in pairs}),
            limit_users=sorted({user for user, _ in pairs}),
            monitor_assets=monitor_assets,
            monitor_users=monitor_users,
        ),
    )
    return Protection(
        frozen=found.frozen,
        allowances=allowances_of(session, pairs, found.limits, account_ids, now_us, day_usage),
        monitors=index_of(found.monitors),
    )
