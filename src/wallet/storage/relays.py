"""The SQL of event relays (migration 0011): webhook endpoints, leases, cursors, attempts.

A relay is served by the process that holds its lease (``lease_owner``); every write the runner
makes about a relay is fenced by ``lease_owner = ?`` and, where it moves the cursor or the
backoff, by ``revision = ?`` too, so that a process that lost its lease, or a delivery that was
in flight while an operator replayed or changed the relay, changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from wallet.config import Backend

from .database import Session

ENABLED = "enabled"
DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Relay:
    id: str
    kind: str
    status: str
    event_types: tuple[str, ...]  # ("*",) for every type
    delivered_position: int
    revision: int
    lease_owner: str | None
    lease_expires_us: int | None
    next_attempt_us: int
    retry_delay_ms: int | None
    failing_since_us: int | None
    last_error: str | None
    created_at_us: int

    @property
    def every_type(self) -> bool:
        return "*" in self.event_types


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    relay: Relay
    url: str
    secret: str
    description: str | None


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    event_id: str
    position: int
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at_us: int


_RELAY = (
    "r.id, r.kind, r.status, r.event_types, r.delivered_position, r.revision, r.lease_owner,"
    " r.lease_expires_us, r.next_attempt_us, r.retry_delay_ms, r.failing_since_us, r.last_error,"
    " r.created_at_us"
)
_WEBHOOK = f"{_RELAY}, w.url, w.secret, w.description"
_WEBHOOKS = "event_relays r JOIN webhook_endpoints w ON w.id = r.id"


def _relay(row: Sequence[object]) -> Relay:
    types = orjson.loads(str(row[3]))
    return Relay(
        id=str(row[0]),
        kind=str(row[1]),
        status=str(row[2]),
        event_types=tuple(types),
        delivered_position=int(str(row[4])),
        revision=int(str(row[5])),
        lease_owner=None if row[6] is None else str(row[6]),
        lease_expires_us=None if row[7] is None else int(str(row[7])),
        next_attempt_us=int(str(row[8])),
        retry_delay_ms=None if row[9] is None else int(str(row[9])),
        failing_since_us=None if row[10] is None else int(str(row[10])),
        last_error=None if row[11] is None else str(row[11]),
        created_at_us=int(str(row[12])),
    )


def _webhook(row: Sequence[object]) -> WebhookEndpoint:
    url, secret, description = row[13:16]
    return WebhookEndpoint(
        relay=_relay(row[:13]),
        url=str(url),
        secret=str(secret),
        description=None if description is None else str(description),
    )


def types_json(event_types: Sequence[str]) -> str:
    return orjson.dumps(list(event_types)).decode()


# --- operators' side ----------------------------------------------------------------------------


def insert_relay(
    session: Session,
    relay_id: str,
    kind: str,
    event_types: Sequence[str],
    delivered_position: int,
    created_at_us: int,
    *,
    unless_exists: bool = False,
) -> None:
    """A new relay, enabled. ``unless_exists``: nothing if a relay with that id exists already
    (another process made it)."""
    session.run(
        "INSERT INTO event_relays (id, kind, status, event_types, delivered_position,"
        " created_at_us) VALUES (?, ?, 'enabled', ?, ?, ?)"
        + (" ON CONFLICT (id) DO NOTHING" if unless_exists else ""),
        (relay_id, kind, types_json(event_types), delivered_position, created_at_us),
    )


def insert_webhook(
    session: Session, relay_id: str, url: str, secret: str, description: str | None
) -> None:
    session.run(
        "INSERT INTO webhook_endpoints (id, url, secret, description) VALUES (?, ?, ?, ?)",
        (relay_id, url, secret, description),
    )


def count_relays(session: Session, kind: str) -> int:
    row = session.one("SELECT count(*) FROM event_relays WHERE kind = ?", (kind,))
    return 0 if row is None else int(row[0])


def get_relay(session: Session, relay_id: str) -> Relay | None:
    row = session.one(f"SELECT {_RELAY} FROM event_relays r WHERE r.id = ?", (relay_id,))
    return None if row is None else _relay(row)


def get_webhook(session: Session, relay_id: str) -> WebhookEndpoint | None:
    row = session.one(f"SELECT {_WEBHOOK} FROM {_WEBHOOKS} WHERE r.id = ?", (relay_id,))
    return None if row is None else _webhook(row)


def list_webhooks(session: Session) -> list[WebhookEndpoint]:
    rows = session.all(f"SELECT {_WEBHOOK} FROM {_WEBHOOKS} ORDER BY r.created_at_us, r.id")
    return [_webhook(row) for row in rows]


def change_relay(
    session: Session,
    relay_id: str,
    *,
    event_types: Sequence[str] | None = None,
    status: str | None = None,
    delivered_position: int | None = None,
) -> bool:
    """Change what an operator may change of a relay, and its revision; whether it exists.

    Enabling a disabled relay starts a new run: no failure yet, the next attempt now, from
    where it stopped. A replay (``delivered_position``) is tried at once too.
    """
    sets = ["revision = revision + 1"]
    params: list[object] = []
    if event_types is not None:
        sets.append("event_types = ?")
        params.append(types_json(event_types))
    if status == ENABLED:
        # The right-hand sides read the row as it was: its old status.
        sets.append(
            "next_attempt_us = CASE WHEN status = 'disabled' THEN 0 ELSE next_attempt_us END"
        )
        for column in ("failing_since_us", "retry_delay_ms"):
            sets.append(f"{column} = CASE WHEN status = 'disabled' THEN NULL ELSE {column} END")
    if status is not None:
        sets.append("status = ?")
        params.append(status)
    if delivered_position is not None:
        sets.extend(("delivered_position = ?", "next_attempt_us = 0"))
        params.append(delivered_position)
    row = session.one(
        f"UPDATE event_relays SET {', '.join(sets)} WHERE id = ? RETURNING id",
        (*params, relay_id),
    )
    return row is not None


def change_webhook_url(session: Session, relay_id: str, url: str) -> None:
    session.run("UPDATE webhook_endpoints SET url = ? WHERE id = ?", (url, relay_id))


def delete_relay(session: Session, relay_id: str) -> bool:
    """Delete a relay, its endpoint and its attempts (ON DELETE CASCADE); whether it existed."""
    return (
        session.one("DELETE FROM event_relays WHERE id = ? RETURNING id", (relay_id,)) is not None
    )


def list_attempts(session: Session, relay_id: str, limit: int) -> list[DeliveryAttempt]:
    """A relay's latest attempts, newest first."""
    rows = session.all(
        "SELECT event_id, position, status_code, error, duration_ms, attempted_at_us"
        " FROM delivery_attempts WHERE relay_id = ? ORDER BY seq DESC LIMIT ?",
        (relay_id, limit),
    )
    return [
        DeliveryAttempt(
            event_id=str(event_id),
            position=int(position),
            status_code=None if status_code is None else int(status_code),
            error=None if error is None else str(error),
            duration_ms=int(duration_ms),
            attempted_at_us=int(attempted_at_us),
        )
        for event_id, position, status_code, error, duration_ms, attempted_at_us in rows
    ]


# --- the runner's side --------------------------------------------------------------------------


def claim_relays(
    session: Session, owner: str, kinds: Sequence[str], now_us: int, expires_us: int
) -> list[str]:
    """Take or renew the leases of enabled relays of ``kinds`` that are free, expired or already
    ``owner``'s, until ``expires_us``; the ids ``owner`` holds now. Give back those of its
    relays that are no longer enabled.

    On PostgreSQL two processes claiming at once cannot both win a relay: the second UPDATE
    waits for the first's row lock, then evaluates its WHERE again on the row as committed.
    """
    session.run(
        "UPDATE event_relays SET lease_owner = NULL, lease_expires_us = NULL"
        " WHERE lease_owner = ? AND status <> 'enabled'",
        (owner,),
    )
    if not kinds:
        return []
    marks = ", ".join("?" * len(kinds))
    rows = session.all(
        "UPDATE event_relays SET lease_owner = ?, lease_expires_us = ?"
        f" WHERE status = 'enabled' AND kind IN ({marks})"
        " AND (lease_owner IS NULL OR lease_expires_us < ? OR lease_owner = ?)"
        " RETURNING id",
        (owner, expires_us, *kinds, now_us, owner),
    )
    return sorted(str(row[0]) for row in rows)


def release_relays(session: Session, owner: str) -> None:
    """Give back every lease ``owner`` holds (a clean shutdown)."""
    session.run(
        "UPDATE event_relays SET lease_owner = NULL, lease_expires_us = NULL WHERE lease_owner = ?",
        (owner,),
    )


def record_attempts(
    session: Session, relay_id: str, attempts: Sequence[DeliveryAttempt], kept: int
) -> None:
    """Add attempts to a relay's list (only the newest ``kept`` of them: the others would go at
    once), and drop those beyond the newest ``kept``. Nothing if the relay was deleted."""
    row = session.one(
        "UPDATE event_relays SET attempts_made = attempts_made + ? WHERE id = ?"
        " RETURNING attempts_made",
        (len(attempts), relay_id),
    )
    if row is None:
        return
    last = int(row[0])
    first = last - len(attempts) + 1
    session.run_many(
        "INSERT INTO delivery_attempts (relay_id, seq, event_id, position, status_code, error,"
        " duration_ms, attempted_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                relay_id,
                first + offset,
                attempt.event_id,
                attempt.position,
                attempt.status_code,
                attempt.error,
                attempt.duration_ms,
                attempt.attempted_at_us,
            )
            for offset, attempt in enumerate(attempts)
            if first + offset > last - kept
        ],
    )
    session.run(
        "DELETE FROM delivery_attempts WHERE relay_id = ? AND seq <= ?", (relay_id, last - kept)
    )


def advance_relay(
    session: Session, relay: Relay, owner: str, position: int, *, delivered: bool
) -> bool:
    """Move the cursor to ``position``; after a delivery (``delivered``) also end a run of
    failures. Whether it moved: not if ``owner`` lost the lease or the relay changed since it was
    read (``relay.revision``)."""
    ended = (
        ", failing_since_us = NULL, retry_delay_ms = NULL, last_error = NULL, next_attempt_us = 0"
        if delivered
        else ""
    )
    row = session.one(
        f"UPDATE event_relays SET delivered_position = ?{ended}"
        " WHERE id = ? AND lease_owner = ? AND revision = ? RETURNING id",
        (position, relay.id, owner, relay.revision),
    )
    return row is not None


def record_failure(
    session: Session,
    relay: Relay,
    owner: str,
    *,
    error: str,
    retry_delay_ms: int,
    next_attempt_us: int,
    failing_since_us: int,
    disable: bool,
) -> bool:
    """Note a failed delivery: the error, the backoff, since when the relay fails, and whether it
    is now disabled. Fenced like advance_relay."""
    row = session.one(
        "UPDATE event_relays SET last_error = ?, retry_delay_ms = ?, next_attempt_us = ?,"
        " failing_since_us = ?, status = ?"
        " WHERE id = ? AND lease_owner = ? AND revision = ? RETURNING id",
        (
            error,
            retry_delay_ms,
            next_attempt_us,
            failing_since_us,
            DISABLED if disable else relay.status,
            relay.id,
            owner,
            relay.revision,
        ),
    )
    return row is not None


def lighten_commits(session: Session) -> None:
    """Let the runner's commits skip the wait for the disk (SQLite ``synchronous=NORMAL`` in WAL
    mode, PostgreSQL ``synchronous_commit=off``): a cursor or lease lost in a crash only means
    an event delivered again, which at-least-once allows, and the writer's own commits keep
    their fsync. Call it outside a unit of work, on the runner's own connection."""
    if session.backend is Backend.SQLITE:
        session.run("PRAGMA synchronous = NORMAL")
    else:
        session.run("SET synchronous_commit = off")
