"""Eligibility tests. Unit tests replay events built with ``elig_builders`` through the pure
rules engine. Tests that take ``pg_dsn`` run against a throwaway database on this machine's
PostgreSQL (migrated like production, dropped after): without a reachable server they fail,
they never skip."""

from __future__ import annotations

import pytest


@pytest.fixture
def pg_dsn(fresh_database: str) -> str:
    """A fresh database with the event log and the eligibility projection tables, dropped after:
    the eligibility tests' name for the one test-database fixture (tests/conftest.py)."""
    return fresh_database
