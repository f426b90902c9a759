"""The expiry sweep: finds open lots whose expiry has passed and expires what is left of each,
through the writer like any other write (service/expiring.py is the unit of work's part).

Off the request path and bounded: a pass reads at most LOT_SWEEP_BATCH_MAX due lots (a range of
the index of open lots by expiry) and submits them LOT_SWEEP_CHUNK at a time, waiting for each
chunk's answers, then pausing LOT_SWEEP_PAUSE_RATIO times as long as the chunk took before the
next, so that a million lots expiring at midnight take their turns in the writer's queue with
the requests instead of filling it: the requests keep most of the writer's time, whatever the
load (a chunk takes longer on a busy writer, and so does the pause after it). A pass that found a
full batch and expired something is followed at once by another (the app's task, api/app.py),
else the sweep sleeps LOT_SWEEP_INTERVAL_S: a lot expires within a few seconds of its expiry, and
lots that cannot be expired (a fault, logged) never keep the sweep spinning.

Exactly once, whatever the number of processes sweeping: a lot changes only under its account's
row lock, and the unit of work reads it again under that lock; a lot another process expired
first has nothing left, and its command does nothing. A sweep killed midway leaves each lot
expired or not, never half: the next pass (here or elsewhere) finds those still due.
"""

from __future__ import annotations

import asyncio
import logging
import time

import anyio.to_thread

from wallet.limits import LOT_SWEEP_BATCH_MAX, LOT_SWEEP_CHUNK, LOT_SWEEP_PAUSE_RATIO
from wallet.storage import Database
from wallet.storage import lots as lot_store

from .clock import Clock
from .commands import ExpiryCommand
from .writer import GroupCommitWriter

log = logging.getLogger(__name__)


class Expiry:
    def __init__(self, database: Database, writer: GroupCommitWriter, clock: Clock) -> None:
        self._database = database
        self._writer = writer
        self._clock = clock

    async def expire_due(self) -> tuple[int, int]:
        """One pass: expire up to LOT_SWEEP_BATCH_MAX due lots. Returns how many due lots it
        read (a full batch means there may be more) and how many it expired. A lot whose
        expiry failed (the writer overloaded, or a fault) is logged and left for a later pass;
        it does not stop the others."""
        due = await anyio.to_thread.run_sync(self._due)
        expired = 0
        took_s = 0.0
        for start in range(0, len(due), LOT_SWEEP_CHUNK):
            if start:
                await asyncio.sleep(took_s * LOT_SWEEP_PAUSE_RATIO)
            chunk = due[start : start + LOT_SWEEP_CHUNK]
            started = time.monotonic()
            outcomes = await asyncio.gather(
                *(
                    self._writer.submit(ExpiryCommand(lot.id, lot.user_id, lot.asset_code))
                    for lot in chunk
                ),
                return_exceptions=True,
            )
            took_s = time.monotonic() - started
            for lot, outcome in zip(chunk, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    if not isinstance(outcome, Exception):
                        raise outcome
                    log.warning(
                        "the expiry of lot %s failed: %r; a later pass retries", lot.id, outcome
                    )
                elif outcome.transaction_id is not None:
                    expired += 1
        return len(due), expired

    def _due(self) -> list[lot_store.DueLot]:
        with self._database.reading() as session:
            return lot_store.due_lots(session, self._clock.now_us(), LOT_SWEEP_BATCH_MAX)
