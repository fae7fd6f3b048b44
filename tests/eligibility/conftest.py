"""Eligibility tests. Unit tests replay events built with ``elig_builders`` through the pure
rules engine. Tests marked ``postgres`` use a throwaway database ``elig_test_<random>`` on
127.0.0.1:5432 (user postgres), created for the session and dropped after; they are skipped
when PostgreSQL is not reachable."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

ADMIN_DSN = os.environ.get("ELIG_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[object]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    yield admin
    admin.close()


@pytest.fixture
def pg_dsn(pg_admin: object) -> Iterator[str]:
    """A fresh database with the event log and the eligibility projection tables; dropped after."""
    from psycopg import connect, sql
    from psycopg.conninfo import make_conninfo

    from backbone.migrate import migrate
    from services.eligibility.projection import ensure_schema

    name = f"elig_test_{uuid.uuid4().hex[:10]}"
    pg_admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))  # type: ignore[attr-defined]
    dsn = make_conninfo(ADMIN_DSN, dbname=name)
    try:
        migrate(dsn, out=open(os.devnull, "w"))  # noqa: SIM115
        with connect(dsn) as conn:
            ensure_schema(conn)
        yield dsn
    finally:
        pg_admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))  # type: ignore[attr-defined]
