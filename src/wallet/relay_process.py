"""The service's relay in a process of its own: `wallet relay`, started as a child of the service
(WALLET_EVENTS_RELAY=process, the default), restarted when it dies, stopped with the service.

Why a process: a delivery costs CPU (rendering, signing, an HTTP exchange), and in the service's
own process it would take the interpreter lock and the CPU from the requests; a child takes
neither, and the machine's other CPUs serve it (bench/README.md, "Events").

Invariants it owns:

- **One child at a time**, run by one supervising thread: it starts the child, waits for it, and
  when it ends without being asked to, starts it again after RELAY_PROCESS_RESTART_S, a delay that
  doubles (up to RELAY_PROCESS_RESTART_MAX_S) while the child keeps dying within
  RELAY_PROCESS_STEADY_S of its start. The relay's leases keep deliveries safe meanwhile: an
  endpoint held by a child that died is taken up by its successor, or any other process, once
  the lease expires.
- **It does not outlive the service.** ``stop`` asks it to stop (SIGTERM: it gives its leases
  back) and kills it after RELAY_PROCESS_STOP_S. If the service dies without stopping it (a
  SIGKILL), the child sees its standard input, a pipe from the service, end, and stops.
- **The same settings.** The child reads the settings the service was given, passed in its
  environment, with the same import path.

The supervising thread is started before the event loop lowers its own priority
(priority.py): a thread inherits its creator's priority, and so does a process, so the child
runs at the service's priority, not the loop's.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from wallet.config import Settings
from wallet.limits import (
    RELAY_PROCESS_RESTART_MAX_S,
    RELAY_PROCESS_RESTART_S,
    RELAY_PROCESS_STEADY_S,
    RELAY_PROCESS_STOP_S,
)

log = logging.getLogger(__name__)

# Where the wallet package is imported from: the child imports the same copy.
_IMPORT_ROOT = str(Path(__file__).resolve().parents[1])
# How often the supervising thread looks up from waiting for its child.
_WAIT_STEP_S = 0.5
# Environment names the settings read besides their WALLET_ ones (config.py's aliases).
_ALIASES = ("DATABASE_URL", "PORT", "HOST")


def relay_environment(settings: Settings) -> dict[str, str]:
    """The child's environment: this one, with every setting as ``settings`` has it."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("WALLET_") and name not in _ALIASES
    }
    for name, value in settings.model_dump().items():
        if value is not None:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            environment[f"WALLET_{name.upper()}"] = text
    # The child is the relay: it starts no other.
    environment["WALLET_EVENTS_RELAY"] = "off"
    path = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = _IMPORT_ROOT if not path else _IMPORT_ROOT + os.pathsep + path
    return environment


class RelayProcess:
    """Runs `wallet relay` as a child of this process while started."""

    def __init__(self, settings: Settings) -> None:
        self._environment = relay_environment(settings)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self.starts = 0  # how many children were started: tests and logs

    @property
    def pid(self) -> int | None:
        """The running child's process id, if one runs."""
        child = self._child
        return None if child is None or child.poll() is not None else child.pid

    def start(self) -> None:
        assert self._thread is None, "the relay process is stopped before it starts again"
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._supervise, name="wallet-relay-process", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after RELAY_PROCESS_STOP_S) and start no
        other. Blocks until it has ended."""
        if self._thread is None:
            return
        with self._lock:
            self._stopping.set()
            child = self._child
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
        self._thread.join()
        self._thread = None

    def _supervise(self) -> None:
        delay_s = RELAY_PROCESS_RESTART_S
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                self._child = child = self._spawn()
            if child is not None:
                started = time.monotonic()
                code = self._wait(child)
                self._child = None
                if self._stopping.is_set():
                    return
                steady = time.monotonic() - started >= RELAY_PROCESS_STEADY_S
                delay_s = RELAY_PROCESS_RESTART_S if steady else delay_s * 2
                log.warning("the relay process exited (%s); starting another", code)
            if self._stopping.wait(min(delay_s, RELAY_PROCESS_RESTART_MAX_S)):
                return

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "wallet.cli", "relay", "--supervised"],
                env=self._environment,
                stdin=subprocess.PIPE,
            )
        except OSError:
            log.exception("the relay process could not be started; trying again")
            return None
        self.starts += 1
        return child

    def _wait(self, child: subprocess.Popen[bytes]) -> int:
        """Wait for the child to end; once stopping, at most RELAY_PROCESS_STOP_S, then kill
        it."""
        while not self._stopping.is_set():
            try:
                return child.wait(timeout=_WAIT_STEP_S)
            except subprocess.TimeoutExpired:
                pass
        try:
            return child.wait(timeout=RELAY_PROCESS_STOP_S)
        except subprocess.TimeoutExpired:
            log.warning("the relay process did not stop in %g s; killing it", RELAY_PROCESS_STOP_S)
            child.kill()
            return child.wait()
