"""`wallet relay`: a process that delivers events and serves no API, beside service processes
started with WALLET_EVENTS_RELAY=false, on both backends: it is the one that delivers (it holds
the endpoint's lease), every event arrives, and SIGTERM ends it and gives its lease back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.flows.factories import query
from tests.support.receiver import WebhookReceiver, verify
from tests.support.server import ServerProcess

FAST_RELAY = {"WALLET_EVENTS_LEASE_S": "2", "WALLET_EVENTS_RELAY_POLL_S": "0.05"}


def test_a_relay_process_delivers_for_service_processes_that_do_not(
    database_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(
        database_url, tmp_path / "server.log", WALLET_EVENTS_RELAY="false", **FAST_RELAY
    ).start()
    receiver = WebhookReceiver()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "WALLET_DATABASE_URL")},
        "WALLET_LOG_LEVEL": "warning",
        **FAST_RELAY,
    }
    log = (tmp_path / "relay.log").open("wb")
    relay = subprocess.Popen(
        [sys.executable, "-m", "wallet.cli", "relay", "--database-url", database_url],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            created = client.post("/admin/webhooks", json={"url": receiver.url})
            assert created.status_code == 201, created.text
            endpoint = created.json()
            for amount in range(1, 11):
                topup = {"transaction_type": "topup", "user_id": "relayed",
                         "asset_code": "GC", "amount": f"{amount}.00"}  # fmt: skip
                assert client.post("/transaction", json=topup).status_code == 201
        start = endpoint["last_delivered_position"]
        [(last,)] = query(database_url, "SELECT max(position) FROM events")

        received = receiver.wait_for(lambda got: {r.position for r in got} >= {last})
        assert sorted({r.position for r in received}) == list(range(start + 1, last + 1))
        assert all(verify(r, endpoint["secret"]) for r in received)
        [(owner,)] = query(
            database_url, f"SELECT lease_owner FROM event_relays WHERE id = '{endpoint['id']}'"
        )
        # The relay process delivered, not the service (the lease names its process id).
        assert int(owner.split(":")[-2]) == relay.pid

        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=60) == 0
        released = query(
            database_url, f"SELECT lease_owner FROM event_relays WHERE id = '{endpoint['id']}'"
        )
        assert released == [(None,)]
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait(timeout=30)
        log.close()
        receiver.close()
        server.kill()
