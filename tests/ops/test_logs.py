"""The request log of a real server: one JSON line per request with the fields on-call needs, and
never an API key, a header or a body.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support.server import ServerProcess
from wallet.config import Settings
from wallet.service.keys import create_api_key
from wallet.storage import open_database

BODY_MARKER = "body-marker-7f3a"


def test_one_json_line_per_request_without_secrets(database_url: str, tmp_path: Path) -> None:
    database = open_database(Settings(database_url=database_url))
    try:
        _, key = create_api_key(database, "log-test-writer", ["read", "write"])
    finally:
        database.close()
    log_path = tmp_path / "server.log"
    server = ServerProcess(
        database_url, log_path, WALLET_LOG_LEVEL="info", WALLET_LOG_FORMAT="json"
    ).start()
    try:
        body = {
            "transaction_type": "topup",
            "user_id": "user_001",
            "asset_code": "GC",
            "amount": "1.00",
            "description": BODY_MARKER,
        }
        with httpx.Client(base_url=server.url, timeout=10) as http:
            created = http.post(
                "/transaction",
                json=body,
                headers={"Authorization": f"Bearer {key}", "X-Request-ID": "req-log-1"},
            )
            read = http.get("/balance/user_001", headers={"X-API-Key": key})
            refused = http.get("/balance/user_001", headers={"X-API-Key": key[:-2] + "zz"})
        assert (created.status_code, read.status_code, refused.status_code) == (201, 200, 401)
    finally:
        server.terminate()

    text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert key not in text
    assert key[:-2] not in text
    assert BODY_MARKER not in text
    requests = [line for line in lines if line["logger"] == "wallet.request"]
    post = next(line for line in requests if line["request_id"] == "req-log-1")
    assert post["method"] == "POST"
    assert post["route"] == "/transaction"
    assert post["status"] == 201
    assert post["api_key"] == "log-test-writer"
    assert post["transaction_id"] == created.json()["id"]
    assert isinstance(post["duration_ms"], float)
    assert post["level"] == "info"
    balance = [line for line in requests if line["route"] == "/balance/{user_id}"]
    assert [(line["status"], line["api_key"]) for line in balance] == [
        (200, "log-test-writer"),
        (401, None),
    ]
    assert all(line["transaction_id"] is None for line in balance)
    assert all(len(line["request_id"]) >= 8 for line in requests)
