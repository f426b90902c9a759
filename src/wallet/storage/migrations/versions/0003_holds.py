"""Holds: funds set aside now, captured or released later, each hold settled exactly once.

- Three transaction kinds: ``hold`` (user -> the asset's system ``holds`` account), ``capture``
  (holds -> treasury) and ``release`` (holds -> user, also on expiry). None is refundable.
- ``holds`` keeps each hold's state. The CHECK ties every status to the columns it needs
  (a pending hold has captured nothing and no settling transaction; a captured one has a capture
  and, if it took less than all, a release; a released or expired one has a release), and a
  trigger makes the state machine one-way: a hold is inserted pending, may move only out of
  pending, once, and its amount, owner, expiry and placing transaction never change. Nothing is
  ever deleted.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SCHEMA = """
INSERT INTO transaction_types (name, refundable) VALUES
    ('hold', 0), ('capture', 0), ('release', 0);
CREATE TABLE holds (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    asset_code TEXT NOT NULL REFERENCES assets (code),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    captured_minor BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('pending', 'captured', 'released', 'expired')),
    description TEXT CHECK (description IS NULL OR length(description) <= 500),
    idempotency_key TEXT CHECK (idempotency_key IS NULL OR length(idempotency_key) <= 255),
    expires_at_us BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL,
    settled_at_us BIGINT,
    hold_transaction_id TEXT NOT NULL
        REFERENCES transactions (id) DEFERRABLE INITIALLY DEFERRED,
    capture_transaction_id TEXT REFERENCES transactions (id) DEFERRABLE INITIALLY DEFERRED,
    release_transaction_id TEXT REFERENCES transactions (id) DEFERRABLE INITIALLY DEFERRED,
    CHECK (expires_at_us > created_at_us),
    CHECK (
        (status = 'pending' AND captured_minor = 0 AND settled_at_us IS NULL
            AND capture_transaction_id IS NULL AND release_transaction_id IS NULL)
        OR (status = 'captured' AND captured_minor BETWEEN 1 AND amount_minor
            AND settled_at_us IS NOT NULL AND capture_transaction_id IS NOT NULL
            AND (release_transaction_id IS NULL) = (captured_minor = amount_minor))
        OR (status IN ('released', 'expired') AND captured_minor = 0
            AND settled_at_us IS NOT NULL AND capture_transaction_id IS NULL
            AND release_transaction_id IS NOT NULL)
    )
);
CREATE INDEX holds_user ON holds (user_id, id);
CREATE INDEX holds_user_status ON holds (user_id, status, id);
CREATE INDEX holds_user_asset_pending ON holds (user_id, asset_code) WHERE status = 'pending';
CREATE INDEX holds_pending_expiry ON holds (expires_at_us) WHERE status = 'pending'
"""

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER holds_open_pending BEFORE INSERT ON holds
       WHEN NEW.status <> 'pending'
       BEGIN SELECT RAISE(ABORT, 'a hold opens pending'); END""",
    """CREATE TRIGGER holds_settle_once BEFORE UPDATE ON holds
       WHEN OLD.status <> 'pending' OR NEW.status = 'pending' OR NEW.id <> OLD.id
         OR NEW.user_id <> OLD.user_id OR NEW.asset_code <> OLD.asset_code
         OR NEW.amount_minor <> OLD.amount_minor OR NEW.expires_at_us <> OLD.expires_at_us
         OR NEW.created_at_us <> OLD.created_at_us
         OR NEW.hold_transaction_id <> OLD.hold_transaction_id
       BEGIN SELECT RAISE(ABORT, 'a hold moves once, out of pending'); END""",
    """CREATE TRIGGER holds_no_delete BEFORE DELETE ON holds
       BEGIN SELECT RAISE(ABORT, 'holds are never deleted'); END""",
]

_POSTGRESQL_TRIGGERS = [
    """CREATE FUNCTION wallet_hold_moves() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'DELETE' THEN
           RAISE EXCEPTION 'holds are never deleted' USING ERRCODE = 'check_violation';
         END IF;
         IF TG_OP = 'INSERT' THEN
           IF NEW.status <> 'pending' THEN
             RAISE EXCEPTION 'a hold opens pending' USING ERRCODE = 'check_violation';
           END IF;
           RETURN NEW;
         END IF;
         IF OLD.status <> 'pending' OR NEW.status = 'pending' OR NEW.id <> OLD.id
            OR NEW.user_id <> OLD.user_id OR NEW.asset_code <> OLD.asset_code
            OR NEW.amount_minor <> OLD.amount_minor OR NEW.expires_at_us <> OLD.expires_at_us
            OR NEW.created_at_us <> OLD.created_at_us
            OR NEW.hold_transaction_id <> OLD.hold_transaction_id THEN
           RAISE EXCEPTION 'a hold moves once, out of pending' USING ERRCODE = 'check_violation';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER holds_state_machine BEFORE INSERT OR UPDATE OR DELETE ON holds
       FOR EACH ROW EXECUTE FUNCTION wallet_hold_moves()""",
]


def upgrade() -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE_TRIGGERS if sqlite else _POSTGRESQL_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: there is no downgrade")
