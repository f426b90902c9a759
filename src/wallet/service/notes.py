"""Notes about the request being served, for its log line: what the service learned that the
HTTP layer cannot see (the transaction a write created).

The request log middleware sets a fresh dict per request in a context variable; the service adds
to it. Outside a request (the command line, the sweeper) there is no dict and nothing is noted.
"""

from contextvars import ContextVar

request_notes: ContextVar[dict[str, str] | None] = ContextVar("request_notes", default=None)


def note_transaction(transaction_id: str) -> None:
    notes = request_notes.get()
    if notes is not None:
        notes["transaction_id"] = transaction_id
