"""The expiry sweep: finds the accounts that have open lots whose expiry has passed and expires
what is left of them, through the writer like any other write (service/expiring.py is the unit
of work's part): one ``expiry`` transaction per account, for all its due lots at once (at most
LOT_EXPIRY_LOTS_MAX of them), not one per lot.

Off the request path and bounded: a pass reads at most LOT_SWEEP_BATCH_MAX due lots (a range of
the index of open lots by expiry), and submits one command for each account among them,
LOT_SWEEP_CHUNK accounts at a time, waiting for each chunk's answers, then pausing
LOT_SWEEP_PAUSE_RATIO times as long as the chunk took, so that a million lots expiring at
midnight take their turns in the writer's queue with the requests instead of filling it: the
requests keep most of the writer's time, whatever the load (a chunk takes longer on a busy
writer, and so does the pause after it). The pause follows the last chunk of a pass too, since
the next pass may follow at once. A pass that read a full batch, or took as many lots of an
account as one transaction may (LOT_EXPIRY_LOTS_MAX: more may be due), and expired something is
followed at once by another (the app's task, api/app.py), else the sweep sleeps
LOT_SWEEP_INTERVAL_S: a lot expires within a few seconds of its expiry, and lots that cannot be
expired (a fault, logged) never keep the sweep spinning.

Exactly once, whatever the number of processes sweeping: a lot changes only under its account's
row lock, and the unit of work reads the account's due lots again under that lock; lots another
process expired first have nothing left, and a command that finds none does nothing. A sweep
killed midway leaves each account's expiry done or not, never half: the next pass (here or
elsewhere) finds the lots still due.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import NamedTuple

import anyio.to_thread

from wallet.limits import LOT_SWEEP_BATCH_MAX, LOT_SWEEP_CHUNK, LOT_SWEEP_PAUSE_RATIO
from wallet.storage import Database
from wallet.storage import lots as lot_store

from .clock import Clock
from .commands import ExpiryCommand
from .writer import GroupCommitWriter

log = logging.getLogger(__name__)


class SweepPass(NamedTuple):
    read: int  # due lots read (LOT_SWEEP_BATCH_MAX at most)
    expired: int  # lots expired: more than were read when accounts had more due than were read
    # Whether the next pass should follow at once: the batch was full, or an account had more
    # due than one transaction takes; and the pass got somewhere (lots that cannot be expired,
    # a fault that is logged, never keep the sweep spinning).
    more: bool


class Expiry:
    def __init__(self, database: Database, writer: GroupCommitWriter, clock: Clock) -> None:
        self._database = database
        self._writer = writer
        self._clock = clock

    async def expire_due(self) -> SweepPass:
        """One pass: expire the due lots of the accounts among the first LOT_SWEEP_BATCH_MAX due
        lots (at most LOT_EXPIRY_LOTS_MAX of each). An account whose expiry failed (the writer
        overloaded, or a fault) is logged and left for a later pass; it does not stop the
        others."""
        due = await anyio.to_thread.run_sync(self._due)
        accounts = list(dict.fromkeys((lot.user_id, lot.asset_code) for lot in due))
        expired = 0
        capped = False
        for start in range(0, len(accounts), LOT_SWEEP_CHUNK):
            chunk = accounts[start : start + LOT_SWEEP_CHUNK]
            started = time.monotonic()
            outcomes = await asyncio.gather(
                *(self._writer.submit(ExpiryCommand(*account)) for account in chunk),
                return_exceptions=True,
            )
            took_s = time.monotonic() - started
            for (user_id, asset_code), outcome in zip(chunk, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    if not isinstance(outcome, Exception):
                        raise outcome
                    log.warning(
                        "the expiry of the lots of %s %s failed: %r; a later pass retries",
                        user_id,
                        asset_code,
                        outcome,
                    )
                else:
                    expired += outcome.lots_expired
                    capped = capped or outcome.lots_capped
            await asyncio.sleep(took_s * LOT_SWEEP_PAUSE_RATIO)
        more = (len(due) >= LOT_SWEEP_BATCH_MAX or capped) and expired > 0
        return SweepPass(len(due), expired, more)

    def _due(self) -> list[lot_store.DueLot]:
        with self._database.reading() as session:
            return lot_store.due_lots(session, self._clock.now_us(), LOT_SWEEP_BATCH_MAX)
