"""Internal wallet service: players' virtual credits in a double-entry ledger."""

__version__ = "1.0.0"
