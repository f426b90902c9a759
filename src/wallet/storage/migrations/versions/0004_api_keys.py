"""API keys: who may call the service, with which scopes.

Only a SHA-256 hash of each key is stored; the key itself is shown once, when it is created. A
key is never deleted: revoking it sets ``revoked_at_us``, once (a trigger keeps everything else
as it was), so the table is also the record of who could call the service when.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SCHEMA = """
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    scopes TEXT NOT NULL CHECK (length(scopes) BETWEEN 1 AND 100),
    key_sha256 TEXT NOT NULL UNIQUE CHECK (length(key_sha256) = 64),
    created_at_us BIGINT NOT NULL,
    revoked_at_us BIGINT,
    CHECK (revoked_at_us IS NULL OR revoked_at_us >= created_at_us)
)
"""

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER api_keys_revoke_once BEFORE UPDATE ON api_keys
       WHEN OLD.revoked_at_us IS NOT NULL OR NEW.id <> OLD.id OR NEW.name <> OLD.name
         OR NEW.scopes <> OLD.scopes OR NEW.key_sha256 <> OLD.key_sha256
         OR NEW.created_at_us <> OLD.created_at_us
       BEGIN SELECT RAISE(ABORT, 'an API key only changes when it is revoked, once'); END""",
    """CREATE TRIGGER api_keys_no_delete BEFORE DELETE ON api_keys
       BEGIN SELECT RAISE(ABORT, 'API keys are revoked, never deleted'); END""",
]

_POSTGRESQL_TRIGGERS = [
    """CREATE FUNCTION wallet_api_key_changes() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'DELETE' THEN
           RAISE EXCEPTION 'API keys are revoked, never deleted' USING ERRCODE = 'check_violation';
         END IF;
         IF OLD.revoked_at_us IS NOT NULL OR NEW.id <> OLD.id OR NEW.name <> OLD.name
            OR NEW.scopes <> OLD.scopes OR NEW.key_sha256 <> OLD.key_sha256
            OR NEW.created_at_us <> OLD.created_at_us THEN
           RAISE EXCEPTION 'an API key only changes when it is revoked, once'
             USING ERRCODE = 'check_violation';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER api_keys_revoke_once BEFORE UPDATE OR DELETE ON api_keys
       FOR EACH ROW EXECUTE FUNCTION wallet_api_key_changes()""",
]


def upgrade() -> None:
    op.execute(_SCHEMA)
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE_TRIGGERS if sqlite else _POSTGRESQL_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: there is no downgrade")
