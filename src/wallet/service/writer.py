"""Group commit: one writer thread per process applies the writes that arrive together in one
unit of work, and answers them all once the commit is durable.

Why: a durable commit costs an fsync, and SQLite has a single writer anyway. Requests that arrive
while a commit is in flight wait in a bounded queue; the next batch takes all of them (up to
WRITE_BATCH_SIZE_MAX) and pays for one fsync. No answer leaves before its batch's commit returns.

Failure handling, per batch:
- a command the ledger refuses is refused alone, inside the batch (see posting.apply_commands);
- a transient database failure (lost connection, lock timeout, deadlock, full disk) rolls the
  unit of work back and tries it again, at most WRITE_RETRIES_MAX times, then answers 503;
- any other failure (a bug, a constraint the code should have caught) rolls back and re-applies
  the commands one by one, so that only the command at fault fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from wallet.domain.errors import Overloaded, Unavailable
from wallet.limits import (
    RETRY_AFTER_S,
    WRITE_BATCH_SIZE_MAX,
    WRITE_QUEUE_LENGTH_MAX,
    WRITE_RETRIES_MAX,
    WRITE_WAIT_TIMEOUT_S,
)
from wallet.storage import Database
from wallet.storage import ledger as store
from wallet.storage.database import WriterConnection

from .clock import SYSTEM_CLOCK, Clock
from .commands import Command, InternalError, Outcome, PostingCommand
from .limits import DayUsage
from .metrics import Metrics
from .notes import note_transaction
from .posting import apply_commands

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    command: Command
    future: asyncio.Future[Outcome]
    loop: asyncio.AbstractEventLoop = field(repr=False)
    # Set under GroupCommitWriter._claims: the writer took it into a batch, or its caller gave
    # up waiting before that. Exactly one of the two ever happens.
    taken: bool = False
    abandoned: bool = False


_STOP = object()


class GroupCommitWriter:
    def __init__(
        self,
        database: Database,
        scales: Callable[[], dict[str, int]],
        metrics: Metrics,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._database = database
        self._metrics = metrics
        self._clock = clock
        self._scales = scales
        self._queue: queue.Queue[_Pending | object] = queue.Queue(maxsize=WRITE_QUEUE_LENGTH_MAX)
        self._thread: threading.Thread | None = None
        self._connection: WriterConnection | None = None
        self._claims = threading.Lock()
        self._day_usage = DayUsage()
        self.batches_committed = 0
        # Called on the event loop after a command of this writer committed a change (and so
        # its events): the feed's waiting readers look at once (events.NewEvents.hint).
        self.on_change: Callable[[], None] = _nothing

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        assert self._thread is None, "the writer starts once"
        self._thread = threading.Thread(target=self._run, name="wallet-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish every queued write, then stop, and close the connection (apply_now may have
        opened it without the thread ever starting)."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def submit(self, command: Command) -> Outcome:
        """Queue ``command`` and wait for its unit of work's answer (counted, and noted for the
        request's log line). Raises Overloaded when the queue is full, Unavailable when the
        answer did not come in time, InternalError for a bug.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        pending = _Pending(command, future, loop)
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            raise Overloaded(
                f"the write queue is full ({WRITE_QUEUE_LENGTH_MAX} waiting); "
                f"retry after {RETRY_AFTER_S} s"
            ) from None
        # A timer rather than asyncio.wait_for, which costs every write a shielded future and
        # a second task switch.
        timer = loop.call_later(WRITE_WAIT_TIMEOUT_S, self._withdraw, pending)
        try:
            outcome = await future
        finally:
            timer.cancel()
        self._metrics.record_outcome(command, outcome)
        if outcome.transaction_id is not None:
            note_transaction(outcome.transaction_id)
            if not outcome.replayed:
                self.on_change()
        return outcome

    def _withdraw(self, pending: _Pending) -> None:
        """The caller has waited WRITE_WAIT_TIMEOUT_S: answer 503 if the command is still queued,
        withdrawing it, so that the 503 is true (nothing was decided). If the writer took it
        already, its unit of work is bounded by the database's timeouts and the retry limit, and
        its answer is the only true one: keep waiting for it.
        """
        with self._claims:
            if pending.taken or pending.future.done():
                return
            pending.abandoned = True
        pending.future.set_exception(Unavailable("the ledger did not answer in time"))

    def apply_now(self, commands: Sequence[PostingCommand]) -> list[Outcome]:
        """Apply commands synchronously (seeding, before the writer thread starts)."""
        assert self._thread is None, "apply_now is for start-up, before the writer runs"
        results = self._commit(list(commands))
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [result for result in results if isinstance(result, Outcome)]

    # --- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < WRITE_BATCH_SIZE_MAX:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            pending = self._claim([p for p in batch if isinstance(p, _Pending)])
            if not pending:
                continue
            try:
                outcomes = self._commit([p.command for p in pending])
            except Exception as error:  # the writer must outlive any one batch
                log.exception("batch failed outside the failure policy")
                outcomes = [InternalError(str(error))] * len(pending)
            _resolve(pending, outcomes)

    def _claim(self, batch: list[_Pending]) -> list[_Pending]:
        """Take the requests whose callers still wait; drop those that gave up."""
        with self._claims:
            for item in batch:
                item.taken = not item.abandoned
        return [item for item in batch if item.taken]

    def _commit(self, commands: list[Command]) -> list[Outcome | BaseException]:
        """Apply and commit ``commands`` in one unit of work, with the failure policy above."""
        failure: BaseException | None = None
        for attempt in range(WRITE_RETRIES_MAX + 1):
            if attempt:
                log.warning("unit of work failed (attempt %d): %s", attempt, _cause(failure))
                self._drop_connection()
                time.sleep(min(0.05 * 2 ** (attempt - 1), 1.0))
            try:
                connection = self._writer_connection()
                started = time.perf_counter()
                connection.begin()
                outcomes: list[Outcome | BaseException] = list(
                    apply_commands(
                        connection.session,
                        commands,
                        self._scales(),
                        self._clock.now_us(),
                        self._day_usage,
                    )
                )
            except Unavailable as error:
                failure = error
                continue
            except Exception as error:
                failure = error
                self._rollback()
                if not self._database.is_transient(error):
                    return self._commit_one_by_one(commands, error)
                continue
            try:
                connection.commit()
            except Exception as error:
                failure = error
                self._drop_connection()
                committed = self._was_committed(outcomes)
                if committed is None:
                    detail = (
                        "the database stopped answering during a commit; its outcome is unknown"
                    )
                    return [Unavailable(detail)] * len(commands)
                if committed:
                    log.warning("a commit that reported %r had in fact succeeded", error)
                    self._count_commit(len(commands), started)
                    return outcomes
                if not self._database.is_transient(error):
                    return self._commit_one_by_one(commands, error)
                continue
            self._count_commit(len(commands), started)
            return outcomes
        # The driver's message (which may name hosts and paths) is logged, never answered.
        log.warning("unit of work failed (attempt %d), giving up: %s", attempt + 1, _cause(failure))
        return [Unavailable("the database did not accept the write")] * len(commands)

    def _count_commit(self, commands: int, started: float) -> None:
        self._metrics.unit_of_work.observe(time.perf_counter() - started)
        self._metrics.batch_size.observe(commands)
        self.batches_committed += 1

    def _was_committed(self, outcomes: Sequence[Outcome | BaseException]) -> bool | None:
        """After COMMIT raised: did it happen? True, False, or None when we cannot tell.

        The connection may have died after the database committed and before it said so. The
        unit of work is re-applied only when it certainly did not commit; otherwise a command
        without an idempotency key would be applied twice. A unit of work that created no
        transaction wrote nothing that a second attempt would double (stored refusals replay).
        """
        probe = next(
            (
                o.transaction_id
                for o in outcomes
                if isinstance(o, Outcome) and o.transaction_id and not o.replayed and not o.error
            ),
            None,
        )
        if probe is None:
            return False
        for attempt in range(WRITE_RETRIES_MAX):
            try:
                with self._database.reading() as session:
                    return store.transaction_exists(session, probe)
            except Exception as error:
                log.warning("cannot tell whether a commit happened (%s): %s", attempt + 1, error)
                time.sleep(min(0.1 * 2**attempt, 1.0))
        return None

    def _commit_one_by_one(
        self, commands: list[Command], error: Exception
    ) -> list[Outcome | BaseException]:
        if len(commands) == 1:
            log.error("command failed: %r", commands[0], exc_info=error)
            return [InternalError(str(error))]
        results: list[Outcome | BaseException] = []
        for command in commands:
            results.extend(self._commit([command]))
        return results

    def _writer_connection(self) -> WriterConnection:
        if self._connection is None:
            self._connection = self._database.connect_writer(sustained=True)
        return self._connection

    def _rollback(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.rollback()
        except Exception:
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self._connection is not None:
            # A broken connection is being thrown away: errors are expected, and whatever the
            # rollback raises, the close (which stops a SQLite checkpointer thread) must run.
            with contextlib.suppress(Exception):
                self._connection.rollback()
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None


def _nothing() -> None:
    pass


def _resolve(pending: list[_Pending], outcomes: Sequence[Outcome | BaseException]) -> None:
    """Hand every answer of a batch to its event loop in one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Outcome], object]]] = {}
    for item, outcome in zip(pending, outcomes, strict=True):
        by_loop.setdefault(item.loop, []).append((item.future, outcome))
    for loop, answers in by_loop.items():
        # A closed loop raises RuntimeError: nobody is waiting there any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_set_all, answers)


def _set_all(answers: list[tuple[asyncio.Future[Outcome], object]]) -> None:
    for future, outcome in answers:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            assert isinstance(outcome, Outcome)
            future.set_result(outcome)


def _cause(failure: BaseException | None) -> BaseException | None:
    """What went wrong underneath: the driver's error an Unavailable was raised from."""
    return failure.__cause__ if isinstance(failure, Unavailable) and failure.__cause__ else failure
