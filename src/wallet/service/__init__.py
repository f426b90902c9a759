"""Use cases: one function is one unit of work. The service owns idempotency and the write path."""
