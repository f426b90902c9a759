"""Event relays: the consumers the service pushes events to (webhook endpoints, a NATS stream),
each with its cursor in the outbox, its lease, and its failure state.

- ``event_relays``: one row per consumer. ``delivered_position`` is the last position it
  acknowledged (events after it are delivered next, in position order). ``lease_owner`` and
  ``lease_expires_us`` say which process serves it, until when (both set, or neither).
  ``revision`` grows at every change an operator makes (URL, types, status, replay): the runner
  advances the cursor only if it is unchanged, so a replay is never overwritten by a delivery
  that was in flight. While deliveries fail, ``failing_since_us`` (the first failure of the
  run) and ``retry_delay_ms`` (the last backoff) are both set, and cleared together by the next
  success. ``attempts_made`` numbers the rows of ``delivery_attempts``.
- ``webhook_endpoints``: a webhook relay's URL (http or https only), signing secret
  (``whsec_…``) and description; deleted with its relay.
- ``delivery_attempts``: the latest attempts of each relay, numbered per relay; the runner keeps
  only the newest DELIVERY_ATTEMPTS_KEPT of each (limits.py). ``error`` is NULL for an
  acknowledgement; ``status_code`` is the HTTP status, if there was an answer.

Online on a live database: new tables only.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_SCHEMA = [
    """CREATE TABLE event_relays (
        id TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
        kind TEXT NOT NULL CHECK (kind IN ('webhook', 'nats')),
        status TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
        event_types TEXT NOT NULL CHECK (length(event_types) BETWEEN 5 AND 1000),
        delivered_position BIGINT NOT NULL CHECK (delivered_position >= 0),
        revision BIGINT NOT NULL DEFAULT 0 CHECK (revision >= 0),
        lease_owner TEXT CHECK (length(lease_owner) BETWEEN 1 AND 200),
        lease_expires_us BIGINT,
        next_attempt_us BIGINT NOT NULL DEFAULT 0,
        retry_delay_ms BIGINT CHECK (retry_delay_ms BETWEEN 1 AND 3600000),
        failing_since_us BIGINT,
        last_error TEXT CHECK (length(last_error) <= 1000),
        attempts_made BIGINT NOT NULL DEFAULT 0 CHECK (attempts_made >= 0),
        created_at_us BIGINT NOT NULL,
        CHECK ((lease_owner IS NULL) = (lease_expires_us IS NULL)),
        CHECK ((failing_since_us IS NULL) = (retry_delay_ms IS NULL))
    )""",
    """CREATE TABLE webhook_endpoints (
        id TEXT PRIMARY KEY REFERENCES event_relays (id) ON DELETE CASCADE,
        url TEXT NOT NULL CHECK (
            length(url) <= 2048
            AND (lower(substr(url, 1, 7)) = 'http://' OR lower(substr(url, 1, 8)) = 'https://')
        ),
        secret TEXT NOT NULL CHECK (substr(secret, 1, 6) = 'whsec_' AND length(secret) >= 38),
        description TEXT CHECK (length(description) <= 500)
    )""",
    """CREATE TABLE delivery_attempts (
        relay_id TEXT NOT NULL REFERENCES event_relays (id) ON DELETE CASCADE,
        seq BIGINT NOT NULL CHECK (seq > 0),
        event_id TEXT NOT NULL,
        position BIGINT NOT NULL CHECK (position > 0),
        status_code INTEGER CHECK (status_code BETWEEN 100 AND 599),
        error TEXT CHECK (length(error) <= 1000),
        duration_ms BIGINT NOT NULL CHECK (duration_ms >= 0),
        attempted_at_us BIGINT NOT NULL,
        PRIMARY KEY (relay_id, seq)
    )""",
]


def upgrade() -> None:
    for statement in _SCHEMA:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: there is no downgrade")
