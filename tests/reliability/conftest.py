"""Fixtures of the reliability tests that stop, kill or replace the database server: a private
PostgreSQL cluster, or a primary with a synchronous standby (tests/support/clusters.py), removed
after the test whatever happened.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.support.clusters import PrivateCluster, ReplicatedPair, cannot_run, require_binaries


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    require_binaries()
    private = PrivateCluster()
    try:
        private.init()
    except (RuntimeError, OSError, psycopg.Error) as error:
        private.remove()
        cannot_run(f"cannot run a private PostgreSQL cluster here: {error}")
    yield private
    private.remove()


@pytest.fixture
def pair() -> Iterator[ReplicatedPair]:
    require_binaries()
    replicated = ReplicatedPair()
    try:
        replicated.create()
    except (RuntimeError, OSError, psycopg.Error) as error:
        replicated.remove()
        cannot_run(f"cannot run a primary and a standby here: {error}")
    yield replicated
    replicated.remove()
