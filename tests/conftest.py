"""Shared fixtures. What is real: PostgreSQL and RabbitMQ of this machine (a throwaway
database and vhost per test), the face models and ../shared/faces. What is replaced:
nothing in integration tests; unit tests use the in-memory event store.

The test database: ONE fixture, :func:`fresh_database` (a database created on the server of
``AID_TEST_PG``, the one variable for it, migrated like production, dropped after the test);
``database_url`` and the eligibility tests' ``pg_dsn`` are other names for it. A PostgreSQL or
RabbitMQ that does not answer makes the tests that need it fail, never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import System, VhostUrl, throwaway_database, throwaway_vhost


@pytest.fixture()
def fresh_database() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


@pytest.fixture()
def database_url(fresh_database: str) -> str:
    return fresh_database


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[VhostUrl]:
    with throwaway_vhost() as url:
        yield url


@pytest.fixture()
def fresh_vhost() -> Iterator[VhostUrl]:
    """A vhost set up like production (one least-privilege user per process); its URL is the
    administrator's, ``url_for(process)`` a process's."""
    with throwaway_vhost() as url:
        yield url


@pytest.fixture()
def system(fresh_database: str, fresh_vhost: VhostUrl, tmp_path: Path) -> Iterator[System]:
    sys_ = System(fresh_database, fresh_vhost, tmp_path)
    try:
        yield sys_
    finally:
        sys_.stop_all()
