"""API keys: creating, listing and revoking them, and recognising them on every request.

A key looks like ``wk_<id>_<secret>``: ``wk_`` makes a leaked key easy to spot (and to scan
for), ``<id>`` (12 hex digits) names the key in lists and logs and owns the idempotency keys it
sends, and ``<secret>`` is 32 random bytes (URL-safe base64). Only the SHA-256 of the whole key
is stored: the secret has 256 bits of entropy, so a fast hash is enough and needs no salt. A
presented key is found by its id and its hash compared in constant time
(``hmac.compare_digest``).

Every request is checked against ``KeyRing``, an in-memory copy of the keys table refreshed at
most every AUTH_KEYS_REFRESH_S seconds: a key created or revoked with the command line takes
effect within that bound, and a request costs one SHA-256 and a dict lookup, never a query.

The ring fails closed: the service runs open (no key required) only when its last read of the
keys table succeeded and found it empty. Before a first successful read, or when a read fails
while the copy holds no key, nobody is recognised and the protected routes answer 503
``unavailable`` until a read succeeds.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from wallet.domain.errors import ValidationFailed, WalletError
from wallet.limits import AUTH_KEYS_REFRESH_S, KEY_NAME_PATTERN
from wallet.storage import Database
from wallet.storage import keys as key_store
from wallet.storage.keys import StoredKey

from .clock import now_us

log = logging.getLogger(__name__)

KEY_PREFIX = "wk_"
_KEY = re.compile(r"^wk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the key's id (the scope of its idempotency keys), name and scopes."""

    key_id: str
    name: str | None
    scopes: frozenset[str]


# Open mode (no key exists, auth not required): local development, everything allowed, and
# idempotency keys under the one unnamed owner.
OPEN_CALLER = Caller(key_id="", name=None, scopes=frozenset(Scope))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(database: Database, name: str, scopes: Iterable[str]) -> tuple[StoredKey, str]:
    """Create a key; the stored record and the key itself, which is never seen again."""
    wanted = frozenset(scopes)
    unknown = wanted - set(Scope)
    if not wanted or unknown:
        allowed = ", ".join(Scope)
        raise ValidationFailed.at("scope", f"scopes are one or more of {allowed}")
    if not re.match(KEY_NAME_PATTERN, name):
        raise ValidationFailed.at("name", f"a key name matches {KEY_NAME_PATTERN}")
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = StoredKey(key_id, name, wanted, hash_key(key), now_us(), None)
    with database.unit_of_work() as session:
        key_store.insert_key(session, record)
    return record, key


def list_api_keys(database: Database) -> list[StoredKey]:
    with database.reading() as session:
        return key_store.list_keys(session)


def revoke_api_key(database: Database, key_id: str) -> StoredKey | None:
    """Revoke a key (revoking it again changes nothing); None when there is no such key."""
    with database.unit_of_work() as session:
        return key_store.revoke_key(session, key_id, now_us())


class KeyRing:
    """The keys as this process last read them, refreshed at most every ``refresh_s`` seconds.

    Auth is enforced when ``required``, as soon as any key exists, revoked or not (revoking the
    last key does not open the service again), and whenever the last read failed with no key in
    the copy (``unknown``: no caller can be recognised, the edge answers 503).
    """

    def __init__(
        self,
        database: Database,
        required: bool,
        refresh_s: float = AUTH_KEYS_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self.required = required
        self._refresh_s = refresh_s
        self._clock = clock
        self._by_id: dict[str, StoredKey] = {}
        self._loaded_at: float | None = None
        # Whether the last read found the table empty (and so, with auth not required, open).
        self._read_empty = False
        self._refreshing = threading.Lock()

    @property
    def has_keys(self) -> bool:
        return bool(self._by_id)

    @property
    def enforced(self) -> bool:
        return self.required or not self._read_empty

    @property
    def unknown(self) -> bool:
        """No key is known, and the table could not be read: no caller can be recognised."""
        return not self._by_id and not self._read_empty

    def stale(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= self._refresh_s

    def refresh(self) -> None:
        """Read the keys again; on a failure keep the last copy (closed if it holds no key) and
        try again after ``refresh_s``."""
        if not self._refreshing.acquire(blocking=False):
            return  # another thread is reading them right now
        try:
            self._by_id = {key.id: key for key in list_api_keys(self._database)}
            self._read_empty = not self._by_id
        except Exception as error:
            # Whatever went wrong, the table's content is not known: never open on that.
            self._read_empty = False
            cause = error.__cause__ if isinstance(error, WalletError) else error
            log.warning(
                "could not read the API keys (%s); %s",
                cause or error,
                "keeping the last copy" if self._by_id else "protected routes answer 503",
            )
        finally:
            self._loaded_at = self._clock()
            self._refreshing.release()

    def caller(self, presented: str) -> Caller | None:
        """The caller a presented key names; None when it is malformed, unknown or revoked."""
        match = _KEY.match(presented)
        if match is None:
            return None
        key = self._by_id.get(match.group(1))
        if key is None:
            return None
        # Constant time, so that the time taken says nothing about how much of a hash matched.
        if not hmac.compare_digest(hash_key(presented), key.key_sha256) or key.revoked_at_us:
            return None
        return Caller(key_id=key.id, name=key.name, scopes=key.scopes)
