"""Shared fixtures. What is real: PostgreSQL and RabbitMQ of this machine (a throwaway
database and vhost per session), the face models and ../shared/faces. What is replaced:
nothing in integration tests; unit tests use the in-memory event store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import System, throwaway_database, throwaway_vhost


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    with throwaway_vhost() as url:
        yield url


@pytest.fixture()
def fresh_database() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


@pytest.fixture()
def fresh_vhost() -> Iterator[str]:
    with throwaway_vhost() as url:
        yield url


@pytest.fixture()
def system(fresh_database: str, fresh_vhost: str, tmp_path: Path) -> Iterator[System]:
    sys_ = System(fresh_database, fresh_vhost, tmp_path)
    try:
        yield sys_
    finally:
        sys_.stop_all()
