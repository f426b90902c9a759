"""A real service process (``python main.py``) on a free port, for tests that need real HTTP,
real concurrency and real kills.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """``main.py`` of ``root`` (this checkout, or a copy of the source) as a real process."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        root: Path = ROOT,
        open_files_soft: int | None = None,
        **env: str,
    ) -> None:
        self.root = root
        # The soft limit of open files the process starts with (None: this process's).
        self.open_files_soft = open_files_soft
        self.database_url = database_url
        self.log_path = log_path
        self.env = env
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        env = {
            # The service's own default (a relay process) unless the test asks for another:
            # tests/conftest.py sets inline for the apps made in the test's process.
            **{k: v for k, v in os.environ.items() if k != "WALLET_EVENTS_RELAY"},
            "DATABASE_URL": self.database_url,
            "PORT": str(self.port),
            "WALLET_HOST": "127.0.0.1",
            "WALLET_LOG_LEVEL": "warning",
            # main.py puts its own src/ first; this makes sure no other copy comes before it.
            "PYTHONPATH": str(self.root / "src"),
            **self.env,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(self.root / "main.py")],
            env=env,
            stdout=log,
            stderr=log,
            cwd=self.root,
            preexec_fn=None if self.open_files_soft is None else self._limit_open_files,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not become healthy; see {self.log_path}")

    @property
    def rss_bytes(self) -> int:
        """The process's resident memory, from /proc (Linux)."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kilobytes = next(
            line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")
        )
        return int(kilobytes) * 1024

    def _limit_open_files(self) -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files_soft, hard))

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def terminate(self, timeout_s: float = 20.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout_s)
        self.process = None
        return code
