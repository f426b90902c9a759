"""Use cases, one module per noun (ARCHITECTURE.md, "Where a use case lives"); the facade in
wallet.py wires them. The service decides where a unit of work begins and ends, and owns
idempotency and the write path.
"""
