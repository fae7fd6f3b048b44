"""Eligibility tests. Unit tests replay events built with ``elig_builders`` through the pure
rules engine. Tests that take ``pg_dsn`` run against a throwaway database on this machine's
PostgreSQL (migrated like production, dropped after): without a reachable server they fail,
they never skip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import throwaway_database


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A fresh database with the event log and the eligibility projection tables; dropped after."""
    with throwaway_database("elig_test") as url:
        yield url
