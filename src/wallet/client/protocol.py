"""The part of the client that both transports share: what a call is, and what to make of each
attempt's outcome. Pure: it builds and reads, and never sends, sleeps or reads a clock.

A :class:`Call` is one operation of the contract: method, path, query, body, and the function that
turns a successful answer into a typed result. An :class:`Exchange` walks one call through its
attempts: after each answer or transport error it says "done, here is the result", "wait this
long and try again", or raises. :class:`~wallet.client.WalletClient` and
:class:`~wallet.client.AsyncWalletClient` are thin loops around it that only send and sleep.

Invariant: a write carries one idempotency key for all of its attempts, so a retry of a write
that did reach the ledger replays the first answer instead of moving the money twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

import httpx

from wallet import __version__

from .errors import WalletAPIError, WalletConnectionError, error_from_problem
from .retry import RetryPolicy, is_retryable_answer, is_retryable_error

T = TypeVar("T")

BASE_URL_DEFAULT = "http://127.0.0.1:8000"
BASE_URL_ENV = "WALLET_URL"
API_KEY_ENV = "WALLET_API_KEY"
CONNECT_TIMEOUT_S_DEFAULT = 5.0
# Above the service's own 30 s wait for a commit, so a slow write is answered (503) by the
# service rather than abandoned by the client.
READ_TIMEOUT_S_DEFAULT = 35.0
# A long poll (GET /events with a wait) is answered within its wait; its read timeout allows this
# much more for the answer to travel. The feed's iterator waits this long by default (the
# service's longest wait).
LONG_POLL_MARGIN_S = 10.0
EVENTS_WAIT_S_DEFAULT = 30.0
USER_AGENT = f"wallet-client/{__version__}"
# How much of an answer that is not a problem (say, a proxy's HTML page) goes into the error.
NON_PROBLEM_DETAIL_CHARS_MAX = 500


@dataclass(frozen=True)
class Connection:
    """Where the service is and how to talk to it; the same for both transports."""

    base_url: str
    headers: Mapping[str, str]
    timeout: httpx.Timeout

    @classmethod
    def resolve(
        cls,
        base_url: str | None,
        api_key: str | None,
        connect_timeout_s: float,
        read_timeout_s: float,
    ) -> Connection:
        """Arguments first, then ``WALLET_URL`` and ``WALLET_API_KEY``, then the defaults."""
        url = base_url or os.environ.get(BASE_URL_ENV) or BASE_URL_DEFAULT
        key = api_key or os.environ.get(API_KEY_ENV)
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        return cls(url.rstrip("/"), headers, timeout)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One operation: the request to send and how to read a successful answer.

    ``idempotency_key`` is set on every write (``POST``) and sent as the ``Idempotency-Key``
    header on each attempt. ``read_timeout_s`` is the least read timeout the call needs (a long
    poll: the service holds the answer that long); the client's own is used when longer.
    """

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, str | int] | None = None
    body: Mapping[str, Any] | None = None
    idempotency_key: str | None = None
    read_timeout_s: float | None = None

    @property
    def is_write(self) -> bool:
        return self.method != "GET"

    def headers(self) -> dict[str, str]:
        if self.idempotency_key is None:
            return {}
        return {"Idempotency-Key": self.idempotency_key}

    def timeout(self, client_timeout: httpx.Timeout) -> httpx.Timeout:
        """The client's timeout, its read timeout raised to the call's ``read_timeout_s``."""
        needed = self.read_timeout_s
        if needed is None or (client_timeout.read is not None and client_timeout.read >= needed):
            return client_timeout
        return httpx.Timeout(
            connect=client_timeout.connect,
            read=needed,
            write=client_timeout.write,
            pool=client_timeout.pool,
        )


@dataclass(frozen=True)
class Done(Generic[T]):
    """The call is over: here is its result."""

    value: T


@dataclass(frozen=True)
class Wait:
    """Try the call again after ``delay_s`` seconds."""

    delay_s: float


class Exchange(Generic[T]):
    """The attempts of one call, and the decision after each of them."""

    def __init__(
        self, call: Call[T], policy: RetryPolicy, jitter: Callable[[], float] = random.random
    ) -> None:
        self.call = call
        self.policy = policy
        self.jitter = jitter
        self.attempts = 0

    def after_response(self, response: httpx.Response) -> Done[T] | Wait:
        """A 2xx is parsed; a retryable problem waits if attempts remain; else it is raised."""
        self.attempts += 1
        if response.is_success:
            return Done(self.call.parse(response))
        error = error_from_response(response)
        if is_retryable_answer(error.status) and self._attempts_remain():
            retry_after_s = self.policy.retry_after_s(response.headers.get("Retry-After"))
            return Wait(retry_after_s if retry_after_s is not None else self._backoff_s())
        raise error

    def after_error(self, error: httpx.TransportError) -> Wait:
        """A transport error waits if it is retryable and attempts remain; else it is raised."""
        self.attempts += 1
        if is_retryable_error(error, self.call.is_write) and self._attempts_remain():
            return Wait(self._backoff_s())
        what = f"{self.call.method} {self.call.path}"
        raise WalletConnectionError(
            f"{what}: no answer after {self.attempts} attempt(s): {error!r}"
        ) from error

    def _attempts_remain(self) -> bool:
        return self.attempts < self.policy.attempts_max

    def _backoff_s(self) -> float:
        return self.policy.backoff_s(self.attempts, self.jitter())


def decode_json(response: httpx.Response) -> Any:
    """The answer's JSON, with any JSON number that has a fraction read as an exact Decimal."""
    return json.loads(response.content, parse_float=Decimal)


def error_from_response(response: httpx.Response) -> WalletAPIError:
    """The exception for a non-2xx answer, a problem or not."""
    request_id = response.headers.get("X-Request-ID")
    problem: Any = None
    with contextlib.suppress(ValueError):
        problem = decode_json(response)
    if not isinstance(problem, dict) or "code" not in problem:
        problem = {
            "type": "about:blank",
            "title": response.reason_phrase,
            "status": response.status_code,
            "detail": response.text[:NON_PROBLEM_DETAIL_CHARS_MAX],
        }
    return error_from_problem(response.status_code, problem, request_id)
