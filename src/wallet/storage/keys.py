"""The API keys' SQL. Keys are stored as SHA-256 hashes; nothing here ever sees a key itself."""

from dataclasses import dataclass

from .database import Session


@dataclass(frozen=True, slots=True)
class StoredKey:
    id: str
    name: str
    scopes: frozenset[str]
    key_sha256: str
    created_at_us: int
    revoked_at_us: int | None


def _key(row: tuple[object, ...]) -> StoredKey:
    key_id, name, scopes, key_sha256, created_at_us, revoked_at_us = row
    assert isinstance(scopes, str)
    return StoredKey(
        id=str(key_id),
        name=str(name),
        scopes=frozenset(scopes.split()),
        key_sha256=str(key_sha256),
        created_at_us=int(str(created_at_us)),
        revoked_at_us=None if revoked_at_us is None else int(str(revoked_at_us)),
    )


_COLUMNS = "id, name, scopes, key_sha256, created_at_us, revoked_at_us"


def list_keys(session: Session) -> list[StoredKey]:
    """Every key, revoked ones included, oldest first."""
    rows = session.all(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at_us, id")
    return [_key(row) for row in rows]


def insert_key(session: Session, key: StoredKey) -> None:
    session.run(
        f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (
            key.id,
            key.name,
            " ".join(sorted(key.scopes)),
            key.key_sha256,
            key.created_at_us,
            key.revoked_at_us,
        ),
    )


def revoke_key(session: Session, key_id: str, now_us: int) -> StoredKey | None:
    """Revoke a key; the key as it is afterwards, None when there is no such key. Revoking a
    revoked key changes nothing.
    """
    session.run(
        "UPDATE api_keys SET revoked_at_us = ? WHERE id = ? AND revoked_at_us IS NULL",
        (now_us, key_id),
    )
    row = session.one(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,))
    return None if row is None else _key(row)
