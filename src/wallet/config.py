"""Settings from the environment, every default named.

``PORT`` and ``DATABASE_URL`` keep the names the seed README documents; the rest carry the
``WALLET_`` prefix.
"""

from enum import StrEnum
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wallet.limits import (
    BODY_TIMEOUT_S,
    CONNECTIONS_MAX,
    EVENT_RETENTION_DAYS_DEFAULT,
    EVENT_WAIT_S_MAX,
    EVENTS_LEASE_S,
    EVENTS_RELAY_POLL_S,
    HEADERS_TIMEOUT_S,
    KEEP_ALIVE_S,
    LOT_SWEEP_INTERVAL_S,
    WEBHOOK_TIMEOUT_S,
)

DEFAULT_DATABASE_URL = "sqlite:///wallet_service.db"


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WALLET_", extra="ignore", frozen=True)

    host: str = Field(default="0.0.0.0", validation_alias=AliasChoices("HOST", "WALLET_HOST"))  # noqa: S104
    port: int = Field(
        default=8000, ge=1, le=65535, validation_alias=AliasChoices("PORT", "WALLET_PORT")
    )
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "WALLET_DATABASE_URL"),
    )
    # Create the seed assets, treasuries and demo users on start (idempotent).
    seed: bool = True
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # One line per record: `json` for log collectors, `text` for people.
    log_format: Literal["json", "text"] = "json"
    # `required`: every protected route needs an API key, even before any key exists. `auto`:
    # the same once any key exists; with none, the service runs open (local development only).
    auth: Literal["auto", "required"] = "auto"
    # How often the sweeper looks for expired pending holds to release.
    hold_sweep_interval_s: float = Field(default=2.0, gt=0)
    # How often the expiry sweep looks for lots whose expiry has passed (service/expiry.py).
    lot_sweep_interval_s: float = Field(default=LOT_SWEEP_INTERVAL_S, gt=0)
    # Events older than this are deleted (GET /events answers 410 events_pruned below them).
    events_retention_days: int = Field(default=EVENT_RETENTION_DAYS_DEFAULT, ge=1, le=36_500)
    # The longest a GET /events?wait= is held (a request may ask for up to EVENT_WAIT_S_MAX):
    # lower it behind a proxy that cuts idle requests sooner.
    events_wait_s_max: float = Field(default=EVENT_WAIT_S_MAX, ge=0, le=EVENT_WAIT_S_MAX)
    # How many nice steps (Linux) the event loop's thread yields to the writer thread, which is on
    # every write's critical path (priority.py). 0 keeps them equal.
    loop_nice: int = Field(default=10, ge=0, le=19)
    # Slow clients (limits.py): seconds a request's headers may take from its first byte, and its
    # body from its headers; and how many connections are served at once.
    headers_timeout_s: float = Field(default=HEADERS_TIMEOUT_S, gt=0)
    body_timeout_s: float = Field(default=BODY_TIMEOUT_S, gt=0)
    connections_max: int = Field(default=CONNECTIONS_MAX, ge=1)
    # Seconds an idle keep-alive connection stays open (limits.py).
    keep_alive_s: int = Field(default=KEEP_ALIVE_S, ge=1, le=3600)
    # The event stream (service/stream.py): a NATS server with JetStream, e.g.
    # nats://127.0.0.1:4222; None publishes no stream. Events go to the JetStream stream named
    # `events_nats_stream` (created if missing, with the subjects `<prefix>.>`; an existing one is
    # left as it is), each on the subject `<prefix>.<event type>`.
    events_nats_url: str | None = None
    events_nats_stream: str = Field(default="WALLET_EVENTS", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    events_nats_subject_prefix: str = Field(
        default="wallet.events", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", max_length=200
    )
    # Event relays (limits.py): the lease a process holds on a relay it serves (renewed every
    # third of it), how often the runner looks for work, and one webhook delivery's deadline.
    events_lease_s: float = Field(default=EVENTS_LEASE_S, gt=0)
    # Who pushes this service's events to the relays (webhooks, the stream): `process`, a
    # `wallet relay` child of the service (relay_process.py), so that deliveries take none of the
    # API's CPU or interpreter lock (bench/README.md, "Events"); `inline`, the service's own event
    # loop (tests that move the service's clock need it); `off`, none: `wallet relay` processes
    # run beside it. `true` and `false` (the older values) mean `process` and `off`.
    events_relay: Literal["process", "inline", "off"] = "process"
    events_relay_poll_s: float = Field(default=EVENTS_RELAY_POLL_S, gt=0)
    webhook_timeout_s: float = Field(default=WEBHOOK_TIMEOUT_S, gt=0)

    @field_validator("log_level", "log_format", "auth", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("events_relay", mode="before")
    @classmethod
    def _relay_mode(cls, value: object) -> object:
        if isinstance(value, bool):
            return "process" if value else "off"
        if isinstance(value, str):
            value = value.lower()
            return {"true": "process", "false": "off"}.get(value, value)
        return value

    @property
    def backend(self) -> Backend:
        scheme = self.database_url.split(":", 1)[0].split("+", 1)[0].lower()
        if scheme == "sqlite":
            return Backend.SQLITE
        if scheme in ("postgresql", "postgres"):
            return Backend.POSTGRESQL
        raise ValueError(
            f"DATABASE_URL must start with sqlite:// or postgresql://, not {scheme}://"
        )
