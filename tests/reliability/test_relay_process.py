"""`wallet relay`: a process that delivers events and serves no API, on both backends.

- Beside service processes started with WALLET_EVENTS_RELAY=off: it is the one that delivers (it
  holds the endpoint's lease), every event arrives, and SIGTERM ends it and gives its lease back.
- As the service's child (WALLET_EVENTS_RELAY=process, the default): the child delivers; killed
  with SIGKILL, it is started again and every event arrives; the service's SIGTERM stops it and
  gives its lease back; the service's SIGKILL ends it too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.flows.factories import query
from tests.support.receiver import WebhookReceiver, verify, wait_until
from tests.support.server import ServerProcess
from wallet.config import Settings
from wallet.relay_process import relay_environment

FAST_RELAY = {"WALLET_EVENTS_LEASE_S": "2", "WALLET_EVENTS_RELAY_POLL_S": "0.05"}
# API.md: the endpoints of a process that died are taken up again within 30 s.
TAKEOVER_MAX_S = 30.0


def test_a_relay_process_delivers_for_service_processes_that_do_not(
    database_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(
        database_url, tmp_path / "server.log", WALLET_EVENTS_RELAY="off", **FAST_RELAY
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


def post_topups(client: httpx.Client, user_id: str, count: int) -> None:
    for amount in range(1, count + 1):
        topup = {"transaction_type": "topup", "user_id": user_id,
                 "asset_code": "GC", "amount": f"{amount}.00"}  # fmt: skip
        assert client.post("/transaction", json=topup).status_code == 201


def lease_pid(database_url: str, relay_id: str) -> int | None:
    [(owner,)] = query(
        database_url, f"SELECT lease_owner FROM event_relays WHERE id = '{relay_id}'"
    )
    return None if owner is None else int(owner.split(":")[-2])


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_service_s_relay_process_delivers_and_is_started_again_after_a_sigkill(
    database_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(database_url, tmp_path / "server.log", **FAST_RELAY).start()
    receiver = WebhookReceiver()
    try:
        assert server.process is not None
        with httpx.Client(base_url=server.url, timeout=30) as client:
            created = client.post("/admin/webhooks", json={"url": receiver.url})
            assert created.status_code == 201, created.text
            endpoint = created.json()
            start = endpoint["last_delivered_position"]
            post_topups(client, "relayed", 10)
            first = wait_until(lambda: lease_pid(database_url, endpoint["id"]))
            # The service's child delivers, not the service.
            assert first in children(server.process.pid)

            os.kill(first, signal.SIGKILL)
            post_topups(client, "relayed", 10)
            second = wait_until(
                lambda: (
                    {lease_pid(database_url, endpoint["id"])}
                    & children(server.process.pid) - {first}
                ),
                deadline_s=TAKEOVER_MAX_S,
            )
            post_topups(client, "relayed", 5)
        [(last,)] = query(database_url, "SELECT max(position) FROM events")
        received = receiver.wait_for(lambda got: {r.position for r in got} >= {last})
        assert sorted({r.position for r in received}) == list(range(start + 1, last + 1))
        assert all(verify(r, endpoint["secret"]) for r in received)

        # SIGTERM stops the service, which stops its relay process: the lease is given back.
        # (uvicorn ends a graceful shutdown by raising the signal again: -15.)
        assert server.terminate() in (0, -15)
        [child] = second
        assert not alive(child)
        assert lease_pid(database_url, endpoint["id"]) is None
    finally:
        receiver.close()
        server.kill()


def test_the_service_s_relay_process_ends_when_the_service_is_killed(
    database_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(database_url, tmp_path / "server.log", **FAST_RELAY).start()
    try:
        assert server.process is not None
        [child] = wait_until(lambda: children(server.process.pid))
        server.kill()
        # Its standard input, a pipe from the service, ends: it stops by itself.
        wait_until(lambda: not alive(child), deadline_s=TAKEOVER_MAX_S)
    finally:
        server.kill()


def test_the_relay_setting_takes_its_modes_and_the_older_booleans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for given, mode in [("process", "process"), ("INLINE", "inline"), ("off", "off"),
                        ("true", "process"), ("false", "off")]:  # fmt: skip
        monkeypatch.setenv("WALLET_EVENTS_RELAY", given)
        assert Settings().events_relay == mode
    monkeypatch.setenv("WALLET_EVENTS_RELAY", "sometimes")
    with pytest.raises(ValueError, match="events_relay"):
        Settings()


def test_the_relay_process_reads_the_settings_the_service_was_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        database_url="sqlite:////tmp/elsewhere.db", events_lease_s=4, webhook_timeout_s=3
    )
    environment = relay_environment(settings)
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.database_url == settings.database_url
    assert (child.events_lease_s, child.webhook_timeout_s) == (4, 3)
    assert child.events_relay == "off"
