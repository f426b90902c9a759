"""Pure ledger rules: money, assets, postings, errors. Standard library only; no I/O."""
