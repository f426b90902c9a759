"""Events: the feed of what changed in the ledger, read from the outbox (storage/events.py).

``render_event`` is the one renderer of an event: the feed's items, a webhook's body and a NATS
message are its bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import orjson

from wallet.domain.errors import EventsPruned, Overloaded
from wallet.limits import (
    EVENT_POLL_INTERVAL_S,
    EVENT_PRUNE_BATCH,
    EVENT_WAITERS_MAX,
    RETRY_AFTER_S,
)
from wallet.storage import Database
from wallet.storage import events as event_store
from wallet.storage.events import StoredEvent

from .clock import Clock, format_us
from .metrics import Metrics

log = logging.getLogger(__name__)

# Every event type, in the order API.md ("Events") lists them.
EVENT_TYPES: tuple[str, ...] = (
    "transaction.created",
    "hold.placed",
    "hold.captured",
    "hold.released",
    "hold.expired",
    "account.frozen",
    "account.unfrozen",
    "balance.threshold_crossed",
)


def render_event(event: StoredEvent) -> bytes:
    """The Event as the API shows it: ``{"id", "position", "type", "created_at", "data"}``, its
    data spliced in as stored (the JSON the unit of work rendered)."""
    head = orjson.dumps(
        {
            "id": event.id,
            "position": event.position,
            "type": event.type,
            "created_at": format_us(event.created_at_us),
        }
    )
    return b'%s,"data":%s}' % (head[:-1], event.data.encode())


@dataclass(frozen=True, slots=True)
class EventPage:
    items: list[StoredEvent]
    # Where the reader goes on from: the last item's position, or, when the page is not full,
    # the newest position the read could see (nothing of the asked types up to there).
    next_after: int


# A page read after a wake: after, limit, types and the wake's number.
_PageKey = tuple[int, int, tuple[str, ...], int]


class Events:
    """The feed (GET /events) and its retention.

    A reader who asks to ``wait`` holds no thread and no database connection while it waits:
    it waits on a future of the NewEvents watcher, which looks for new events once for all the
    waiting readers (at once when this process's writer commits, else every
    EVENT_POLL_INTERVAL_S, for the events of other processes) and wakes those it concerns.
    """

    def __init__(
        self, database: Database, clock: Clock, metrics: Metrics, retention_days: int
    ) -> None:
        self._database = database
        self._clock = clock
        self._metrics = metrics
        self._retention_us = retention_days * 86_400 * 1_000_000
        self.watcher = NewEvents(self._newest, metrics)
        self._reads_after_wake: dict[_PageKey, asyncio.Future[EventPage]] = {}

    def page(self, after: int, limit: int, types: Sequence[str] = ()) -> EventPage:
        """The events after position ``after``, oldest first; EventsPruned if retention has
        deleted some of them."""
        with self._database.reading() as session:
            through = event_store.newest_position(session)
            items = event_store.read_events(session, after, through, limit, types)
            # Checked after the read: retention deletes from the oldest up, so if nothing after
            # ``after`` is missing now, nothing was missing when the page was read.
            oldest = event_store.oldest_position(session)
        if oldest is not None and after < oldest - 1:
            raise EventsPruned(
                f"the events after position {after} are no longer kept: the oldest kept is "
                f"{oldest}; resume from after={oldest - 1}",
                oldest_position=oldest,
            )
        if len(items) == limit:
            return EventPage(items, items[-1].position)
        return EventPage(items, max(after, through))

    async def wait_page(
        self,
        read: Callable[..., Awaitable[EventPage]],
        after: int,
        limit: int,
        types: Sequence[str],
        wait_s: float,
    ) -> EventPage:
        """A page as ``page`` reads it (through ``read``, the service's way to run a read), or,
        while it is empty, the next one written within ``wait_s`` seconds."""
        page = await read(self.page, after, limit, types)
        if page.items or wait_s <= 0:
            return page
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while not page.items:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self.watcher.wait_past(page.next_after, remaining):
                return page
            page = await self._read_after_wake(read, page.next_after, limit, types)
        return page

    async def _read_after_wake(
        self,
        read: Callable[..., Awaitable[EventPage]],
        after: int,
        limit: int,
        types: Sequence[str],
    ) -> EventPage:
        """The page after a wake, read once for all the readers of that wake who ask for it.

        One commit wakes every reader waiting at the head of the feed, and they all ask for the
        same page: each reading it for itself would take hundreds of reads from the process's
        time for its writes. A reader joins only a read started after its own wake (the key holds
        the wake's number), so the page it gets was read after the event that woke it was seen.
        The very first read of a request is never shared: it must see what its client just wrote.
        """
        key = (after, limit, tuple(types), self.watcher.wakes)
        shared = self._reads_after_wake.get(key)
        if shared is None:
            shared = asyncio.ensure_future(read(self.page, after, limit, types))
            self._reads_after_wake[key] = shared
            shared.add_done_callback(functools.partial(self._read_done, key))
        # A reader who leaves (its client went away) does not cancel the others' read.
        return await asyncio.shield(shared)

    def _read_done(self, key: _PageKey, shared: asyncio.Future[EventPage]) -> None:
        del self._reads_after_wake[key]
        if not shared.cancelled():
            # Retrieved here too, so that a read whose readers all left logs nothing.
            shared.exception()

    def _newest(self) -> int:
        with self._database.reading() as session:
            return event_store.newest_position(session)

    def prune(self, batch: int = EVENT_PRUNE_BATCH) -> int:
        """Delete up to ``batch`` of the events older than the retention; how many."""
        older_than_us = self._clock.now_us() - self._retention_us
        with self._database.unit_of_work() as session:
            return event_store.prune_events(session, older_than_us, batch)


class NewEvents:
    """Tells waiting readers that events were written after the position they wait past.

    One task (``run``) per process does the looking: when hinted (``hint``: this process's writer
    committed) or every EVENT_POLL_INTERVAL_S while anyone waits, it reads the newest position
    once and wakes the readers waiting below it. At most EVENT_WAITERS_MAX readers wait at once;
    one more is Overloaded (503, Retry-After), never a thread or a connection more.
    """

    def __init__(self, newest: Callable[[], int], metrics: Metrics) -> None:
        self._newest = newest
        self._metrics = metrics
        self._waiting: dict[asyncio.Future[bool], int] = {}
        self._wakeup: asyncio.Event | None = None
        self.newest_seen = 0
        # How many times ``run`` has woken readers: a read started after wake N saw at least
        # the newest position wake N was for.
        self.wakes = 0

    def hint(self) -> None:
        """Something was committed by this process: look soon. Called on the event loop."""
        if self._wakeup is not None and self._waiting:
            self._wakeup.set()

    async def wait_past(self, position: int, timeout_s: float) -> bool:
        """Wait until an event after ``position`` may exist (True), or ``timeout_s`` (False)."""
        if len(self._waiting) >= EVENT_WAITERS_MAX:
            raise Overloaded(
                f"{EVENT_WAITERS_MAX} readers wait for events already; retry after "
                f"{RETRY_AFTER_S} s"
            )
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[future] = position
        self._metrics.event_readers_waiting.set(len(self._waiting))
        if self._wakeup is not None:
            self._wakeup.set()
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return False
        finally:
            self._waiting.pop(future, None)
            self._metrics.event_readers_waiting.set(len(self._waiting))

    async def run(self, read: Callable[..., Awaitable[int]]) -> None:
        """Look for new events for as long as the app runs (``read``: the service's read)."""
        self._wakeup = asyncio.Event()
        while True:
            if not self._waiting:
                await self._wakeup.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), EVENT_POLL_INTERVAL_S)
            self._wakeup.clear()
            if not self._waiting:
                continue
            try:
                newest = await read(self._newest)
            except Exception:
                log.exception("looking for new events failed; trying again")
                await asyncio.sleep(EVENT_POLL_INTERVAL_S)
                continue
            self.newest_seen = max(self.newest_seen, newest)
            self.wakes += 1
            for future, position in list(self._waiting.items()):
                if position < newest and not future.done():
                    future.set_result(True)
