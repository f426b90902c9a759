#!/usr/bin/env python3
"""One command to run the service, one to test it, one for the command line. Standard library
only: a fresh machine needs nothing but Python 3.11+.

    python3 dev.py serve                 # python main.py, in .venv
    python3 dev.py test [pytest args]    # ruff check, ruff format --check, mypy, then pytest
    python3 dev.py wallet ARGS...        # the `wallet` command line (keys, seed, verify, ...)

Each first makes sure .venv exists and holds the pinned requirements and the package (editable).
They install only when requirements*.txt or pyproject.toml changed since the last install: a hash
of those files is kept in .venv. The environment passes through (DATABASE_URL, PORT, CI, ...).
What dev.py itself prints, and what pip prints, goes to stderr, so that the standard output of
`wallet` stays the command's alone: `KEY=$(python3 dev.py wallet keys create ...)` holds the key.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
WALLET = VENV / ("Scripts/wallet.exe" if os.name == "nt" else "bin/wallet")
# The files an install is made from: a change to any of them calls for a new install.
INSTALL_INPUTS = ("requirements.txt", "requirements-dev.txt", "pyproject.toml")


def main(argv: list[str]) -> int:
    # Checked here, not left to pyproject: dev.py is what a fresh machine runs first.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit("dev.py: the wallet needs Python 3.11 or newer")
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "serve" and not args:
        ensure_venv("requirements.txt")
        # The service replaces this process, so that signals (Ctrl-C, a supervisor's SIGTERM)
        # reach it directly and its exit code is ours.
        os.chdir(ROOT)
        os.execv(PYTHON, [str(PYTHON), "main.py"])  # noqa: S606 - no shell, by design
    if command == "test":
        ensure_venv("requirements-dev.txt")
        return test(args)
    if command == "wallet":
        ensure_venv("requirements.txt")
        # Unlike serve, this keeps the caller's directory, as the command itself would: a
        # relative path (export --output, the default sqlite:///wallet_service.db) is theirs.
        os.execv(WALLET, [str(WALLET), *args])  # noqa: S606 - no shell, by design
    sys.exit(__doc__)


def ensure_venv(requirements: str) -> None:
    """Create .venv if missing; install ``requirements`` and the package if the inputs changed."""
    if not PYTHON.exists():
        print(f"dev.py: creating {VENV}", file=sys.stderr, flush=True)
        venv.create(VENV, with_pip=True)
    digest = hashlib.sha256(requirements.encode())
    for name in INSTALL_INPUTS:
        digest.update((ROOT / name).read_bytes())
    stamp = VENV / f"dev-stamp-{requirements}.sha256"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    for install in (["-r", ROOT / requirements], ["--no-deps", "-e", ROOT]):
        if run(PYTHON, "-m", "pip", "install", "--quiet", *install, stdout=sys.stderr) != 0:
            sys.exit("dev.py: pip install failed")
    stamp.write_text(digest.hexdigest())


def test(pytest_args: list[str]) -> int:
    """Run every check, then pytest; exit with pytest's code, or 1 if only a check failed."""
    checks = [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]]
    failed = [" ".join(check) for check in checks if run(PYTHON, "-m", *check) != 0]
    code = run(PYTHON, "-m", "pytest", "-p", "no:cacheprovider", *parallel(pytest_args))
    if failed:
        print(f"dev.py: failed: {', '.join(failed)}", file=sys.stderr)
    return code or (1 if failed else 0)


def parallel(pytest_args: list[str]) -> list[str]:
    """Spread the tests over one worker per CPU (pytest-xdist), unless the caller chose.

    Safe: every worker has its own temporary directory, and the PostgreSQL databases it creates
    are named after its process id (tests/support/databases.py).
    """
    chose = any(arg.startswith(("-n", "--numprocesses", "no:xdist")) for arg in pytest_args)
    return pytest_args if chose else ["-n", "auto", *pytest_args]


def run(*command: object, stdout: TextIO | None = None) -> int:
    print("+", " ".join(str(part) for part in command), file=sys.stderr, flush=True)
    return subprocess.call([str(part) for part in command], cwd=ROOT, stdout=stdout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
