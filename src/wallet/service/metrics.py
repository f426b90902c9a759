"""What the service counts, for Prometheus (``GET /metrics``).

Each WalletService has its own registry (several apps in one process, as in the tests, never
clash). Everything on the request path is a counter or histogram increment — a lock and an add;
the write queue's depth and the pending holds are read only when Prometheus scrapes.

Names (all prefixed ``wallet_``):
- ``http_requests_total{method, route, status}``, ``http_request_duration_seconds{method, route}``:
  ``route`` is the route's template (``/balance/{user_id}``), never the raw path;
- ``transactions_total{transaction_type, asset_code}``: transactions the ledger committed;
- ``refusals_total{code}``: every problem answered, by error code (``insufficient_funds``, …);
- ``idempotent_replays_total``: answers replayed for a repeated idempotency key;
- ``db_unit_of_work_seconds``: one unit of work of the writer, begin to durable commit;
- ``write_batch_size``: commands per unit of work; ``write_queue_depth``: commands waiting;
- ``holds_pending{asset_code}``: pending holds now; ``holds_expired_total``: holds the sweeper
  released on expiry;
- ``relay_deliveries_total{relay, result}``: events a relay (a webhook endpoint's id, ``nats``)
  tried to deliver, ``acknowledged`` or ``failed``; ``relay_failures_total{relay}``: its failed
  attempts alone;
- ``relay_lag_positions{relay}``: the newest position minus the relay's cursor;
  ``relay_lag_seconds{relay}``: the age of the oldest event it has yet to deliver (0 when none).
  Both are set by the process that serves the relay, as it goes; the relays are bounded
  (WEBHOOK_ENDPOINTS_MAX), and a relay's series are dropped when this process stops serving it
  (deleted, disabled, or taken over by another).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from wallet.storage import Database
from wallet.storage import events as event_store
from wallet.storage import holds as hold_store

from .commands import BatchCommand, Command, ExpiryCommand, HoldCommand, Outcome

_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "wallet_http_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=r,
        )  # fmt: skip
        self.http_duration = Histogram(
            "wallet_http_request_duration_seconds", "Time to answer an HTTP request",
            ["method", "route"], buckets=_LATENCY_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.transactions = Counter(
            "wallet_transactions", "Transactions committed",
            ["transaction_type", "asset_code"], registry=r,
        )  # fmt: skip
        self.refusals = Counter(
            "wallet_refusals", "Problems answered, by error code", ["code"], registry=r
        )
        self.replays = Counter(
            "wallet_idempotent_replays", "Answers replayed for a repeated idempotency key",
            registry=r,
        )  # fmt: skip
        self.unit_of_work = Histogram(
            "wallet_db_unit_of_work_seconds", "One unit of work of the writer, to durable commit",
            buckets=_LATENCY_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "wallet_write_batch_size", "Commands per unit of work (group commit)",
            buckets=_BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "wallet_write_queue_depth", "Commands waiting for the writer", registry=r
        )
        self.holds_pending = Gauge(
            "wallet_holds_pending", "Pending holds", ["asset_code"], registry=r
        )
        self.holds_expired = Counter("wallet_holds_expired", "Holds released on expiry", registry=r)
        self.events_position = Gauge(
            "wallet_events_newest_position",
            "Position of the newest event: how many events were ever written (by any process)",
            registry=r,
        )
        self.event_readers_waiting = Gauge(
            "wallet_event_readers_waiting", "GET /events requests waiting for an event", registry=r
        )
        self.relay_deliveries = Counter(
            "wallet_relay_deliveries", "Event deliveries tried, by relay and result",
            ["relay", "result"], registry=r,
        )  # fmt: skip
        self.relay_failures = Counter(
            "wallet_relay_failures", "Event deliveries that failed, by relay", ["relay"], registry=r
        )
        self.relay_lag_positions = Gauge(
            "wallet_relay_lag_positions", "Newest event position minus the relay's cursor",
            ["relay"], registry=r,
        )  # fmt: skip
        self.relay_lag_seconds = Gauge(
            "wallet_relay_lag_seconds", "Age of the oldest event the relay has yet to deliver",
            ["relay"], registry=r,
        )  # fmt: skip
        # labels() takes a lock and checks its arguments each call; the children are kept (the
        # label sets are bounded: transaction types by assets).
        self._committed: dict[tuple[str, str], Counter] = {}

    def watch_queue(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(depth)

    def record_outcome(self, command: Command, outcome: Outcome) -> None:
        """Count what one command did: a replay, a refusal, or the transactions it committed."""
        if outcome.replayed:
            self.replays.inc()
        elif outcome.error is not None:
            self.refusals.labels(outcome.error.code).inc()
        elif outcome.transaction_id is not None:
            for labels in _transactions_of(command):
                counted = self._committed.get(labels)
                if counted is None:
                    counted = self._committed[labels] = self.transactions.labels(*labels)
                counted.inc()

    def count_deliveries(self, relay: str, *, acknowledged: int, failed: int) -> None:
        if acknowledged:
            self.relay_deliveries.labels(relay, "acknowledged").inc(acknowledged)
        if failed:
            self.relay_deliveries.labels(relay, "failed").inc(failed)
            self.relay_failures.labels(relay).inc(failed)

    def observe_relay_lag(
        self, relay: str, positions: int, oldest_pending_us: int | None, now_us: int
    ) -> None:
        self.relay_lag_positions.labels(relay).set(max(0, positions))
        age_s = 0.0 if oldest_pending_us is None else max(0, now_us - oldest_pending_us) / 1e6
        self.relay_lag_seconds.labels(relay).set(age_s)

    def forget_relay(self, relay: str) -> None:
        """Drop a deleted relay's series."""
        for metric in (self.relay_failures, self.relay_lag_positions, self.relay_lag_seconds):
            with contextlib.suppress(KeyError):
                metric.remove(relay)
        for result in ("acknowledged", "failed"):
            with contextlib.suppress(KeyError):
                self.relay_deliveries.remove(relay, result)

    def exposition(self, database: Database) -> bytes:
        """The Prometheus exposition, with the pending holds counted now."""
        with database.reading() as session:
            pending = hold_store.pending_by_asset(session)
            self.events_position.set(event_store.newest_position(session))
        self.holds_pending.clear()
        for asset_code, (count, _) in pending.items():
            self.holds_pending.labels(asset_code).set(count)
        return generate_latest(self.registry)


def _transactions_of(command: Command) -> list[tuple[str, str]]:
    if isinstance(command, BatchCommand):
        return [(i.transaction_type.value, i.asset_code) for i in command.items]
    if isinstance(command, HoldCommand):
        # Placing writes a `hold` transaction; capturing a `capture` (and a `release` of the rest,
        # not counted apart); releasing and expiring a `release`.
        kind = {"place": "hold", "capture": "capture"}.get(command.action.value, "release")
        return [(kind, command.asset_code)]
    if isinstance(command, ExpiryCommand):
        return [("expiry", command.asset_code)]
    return [(command.transaction_type.value, command.asset_code)]
