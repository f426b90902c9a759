"""Fuzzing: schemathesis against the service's own OpenAPI document, with every check it has
(server errors, status codes, content types, headers and bodies against the documented schema,
negative data refused, positive data accepted, undeclared methods, …), on a real server process.

Bounded for CI by ``FUZZ_EXAMPLES`` per operation and phase; ``bench/soak.py --fuzz-examples``
runs more. Zero failures means: no 500, no response that breaks the documented schema, and every
status the service answered is in the document.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import ServerProcess

from .checks import assert_ledger_ok

pytestmark = pytest.mark.slow

FUZZ_EXAMPLES = 25
FUZZ_TIME_S = 240
CONFIG = Path(__file__).with_name("schemathesis.toml")


def create_api_key(database_url: str) -> str:
    """A key with every scope, made with the service's own command line."""
    command = [
        str(Path(sys.executable).with_name("wallet")),
        "keys",
        "create",
        "--database-url",
        database_url,
        "--name",
        "fuzz",
        *("--scope", "read", "--scope", "write", "--scope", "admin"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


def run_schemathesis(
    base_url: str, examples: int, api_key: str, workdir: Path, seed: int | None = None
) -> tuple[int, str]:
    """Run the schemathesis CLI (in ``workdir``, where it keeps its cache); its exit code and
    report."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(examples),
        "--request-timeout",
        "20",
        "--no-color",
        "--header",
        f"Authorization: Bearer {api_key}",
    ]
    if seed is not None:
        command += ["--seed", str(seed)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=FUZZ_TIME_S, check=False, cwd=workdir
    )
    return result.returncode, result.stdout + result.stderr


def generated(report: str) -> int:
    match = re.search(r"(\d+) generated", report)
    return int(match.group(1)) if match else 0


def test_schemathesis_finds_nothing(database_url: str, tmp_path: Path, seed: int) -> None:
    """As deployed: authentication required, the fuzzer holding a key with every scope (so the
    ignored_auth check also proves that requests without it are refused)."""
    api_key = create_api_key(database_url)
    # A feed request may ask to wait up to 30 s for the next event: held 0.2 s at most here.
    server = ServerProcess(
        database_url,
        tmp_path / "server.log",
        WALLET_AUTH="required",
        WALLET_EVENTS_WAIT_S_MAX="0.2",
    ).start()
    try:
        code, report = run_schemathesis(server.url, FUZZ_EXAMPLES, api_key, tmp_path, seed)
    finally:
        server.kill()
    assert code == 0, report[-6000:]
    cases = generated(report)
    assert cases > 100, report[-2000:]
    print(f"schemathesis: {cases} test cases, no failure")
    assert_ledger_ok(database_url)
