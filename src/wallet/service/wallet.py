"""The facade: builds the service's parts and wires them together; it holds no use case.

Each use case lives in the module named for its noun (ARCHITECTURE.md, "Where a use case
lives"): ``assets`` (AssetCatalog), ``transactions``, ``balances``, ``holds``,
``activity``, ``events``, ``webhooks``, ``freezes``, ``limits``, ``monitors``; the relay runner
(``relays``) pushes events out; the HTTP API and the command line reach them through the
facade's attributes, so that both share one instance of each, one writer and one clock.
``read`` runs a read use case from the event loop.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread

from wallet.config import Settings
from wallet.storage import Database, open_database

from .activity import Activity
from .assets import AssetCatalog
from .balances import Balances
from .clock import SYSTEM_CLOCK, Clock
from .events import Events
from .expiry import Expiry
from .freezes import Freezes
from .holds import Holds
from .keys import KeyRing
from .limits import Limits
from .metrics import Metrics
from .monitors import Monitors
from .relays import RelayRunner
from .seed import seed_demo_ledger
from .stream import STREAM_KIND, ensure_stream_relay, stream_sink
from .transactions import Transactions
from .webhooks import KIND as WEBHOOK_KIND
from .webhooks import Webhooks, webhook_sink
from .writer import GroupCommitWriter

T = TypeVar("T")


class WalletService:
    def __init__(
        self,
        settings: Settings,
        database: Database | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.database = database or open_database(settings)
        self.metrics = Metrics()
        self.assets = AssetCatalog(self.database, clock)
        self.writer = GroupCommitWriter(self.database, self.assets.scales, self.metrics, clock)
        self.metrics.watch_queue(lambda: self.writer.queue_depth)
        self.keys = KeyRing(self.database, required=settings.auth == "required")
        self.transactions = Transactions(self.database, self.assets, self.writer, clock)
        self.balances = Balances(self.database, self.assets)
        self.freezes = Freezes(self.database, self.assets, clock)
        self.holds = Holds(self.database, self.assets, self.writer, clock, self.metrics)
        self.expiry = Expiry(self.database, self.writer, clock)
        self.activity = Activity(self.database, self.assets, clock)
        self.limits = Limits(self.database, self.assets, clock)
        self.events = Events(self.database, clock, self.metrics, settings.events_retention_days)
        self.writer.on_change = self.events.watcher.hint
        self.webhooks = Webhooks(self.database, clock)
        self.monitors = Monitors(self.database, self.assets, clock)
        # Pushes events to webhook endpoints (and whatever else registers a sink); started by
        # the app's lifespan. ``rng``: the retries' jitter, seeded by tests.
        self.relays = RelayRunner(self.database, clock, self.metrics, settings, rng)
        self.relays.register_sink(WEBHOOK_KIND, webhook_sink)
        if settings.events_nats_url is not None:
            self.relays.register_sink(STREAM_KIND, stream_sink)

    def start(self) -> None:
        """Migrate, load assets, seed if asked, and start the writer."""
        self.prepare_relays()
        self.assets.refresh()
        if self.settings.seed:
            seed_demo_ledger(self.assets, self.writer)
        self.keys.refresh()
        self.writer.start()

    def prepare_relays(self) -> None:
        """Migrate, and make the stream's relay if the settings name a stream: what a process
        that only delivers events (`wallet relay`) needs before its runner starts."""
        self.database.migrate()
        if self.settings.events_nats_url is not None:
            ensure_stream_relay(self.database, self.clock)

    def stop(self) -> None:
        self.writer.stop()
        self.database.close()

    async def read(self, function: Callable[..., T], *args: Any) -> T:
        """Run a read use case from the event loop: inline where the database's reads are
        cheaper than a hop to a worker thread (SQLite), else on a worker thread (PostgreSQL,
        whose round trips must never stall the loop).
        """
        if self.database.reads_inline:
            return function(*args)
        return await anyio.to_thread.run_sync(function, *args)
