"""The fixed answers of the two baselines (bench/baseline_app.py, bench/fastapi_app.py): a
transaction, a balance and a history page the size the service answers, as plain data.

``BASELINE_HISTORY_ITEMS`` sets how many transactions a history page holds (bench/run.py sets it
to what the service's pages held in the same run).
"""

from __future__ import annotations

import os
from typing import Any

# A transaction as the service answers it (about 530 bytes).
TRANSACTION: dict[str, Any] = {
    "id": "019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d",
    "transaction_type": "purchase",
    "status": "completed",
    "user_id": "bench_00042",
    "asset_code": "GC",
    "amount": "25.00",
    "description": "Bought in-game item",
    "idempotency_key": None,
    "balance_after": "75.00",
    "created_at": "2026-11-25T08:00:00.123456Z",
    "entries": [
        {
            "account_type": "user",
            "account_id": "bench_00042",
            "amount": "-25.00",
            "balance_before": "100.00",
            "balance_after": "75.00",
        },
        {
            "account_type": "system",
            "account_id": "treasury",
            "amount": "25.00",
            "balance_before": "999999998000.00",
            "balance_after": "999999998025.00",
        },
    ],
}
BALANCE: dict[str, Any] = {"user_id": "bench_00042", "asset_code": "GC", "balance": "75.00"}
HISTORY_ITEMS = int(os.environ.get("BASELINE_HISTORY_ITEMS", "20"))
HISTORY: dict[str, Any] = {
    "user_id": "bench_00042",
    "items": [TRANSACTION] * HISTORY_ITEMS,
    "next_cursor": None,
}
