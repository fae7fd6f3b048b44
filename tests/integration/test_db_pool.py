"""backbone.db.Pool against the real PostgreSQL: a connection the server dropped while it sat
idle in the pool is not lent to a request (the request would fail with DATABASE_UNAVAILABLE for
nothing), and a request that meets a dead server empties the pool of its other idle connections."""

from __future__ import annotations

import psycopg
import pytest

from backbone.db import Pool


def _drop(database_url: str, pids: list[int]) -> None:
    with psycopg.connect(database_url, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_an_idle_connection_the_server_dropped_is_replaced_before_it_is_lent(database_url: str) -> None:
    pool = Pool(database_url, size=2, check_after=0.0)
    try:
        with pool.connection() as conn:
            first = conn.info.backend_pid
        _drop(database_url, [first])
        with pool.connection() as conn:  # checked before lending: a new connection, no error
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid != first
    finally:
        pool.close()


def test_without_the_check_a_dropped_connection_fails_once_and_the_pool_is_emptied(database_url: str) -> None:
    pool = Pool(database_url, size=2, check_after=3600.0)
    try:
        with pool.connection() as a, pool.connection() as b:
            pids = [a.info.backend_pid, b.info.backend_pid]
        _drop(database_url, pids)
        with pytest.raises(psycopg.OperationalError), pool.connection() as conn:
            conn.execute("SELECT 1")  # idle for less than check_after: lent as it was, and dead
        with pool.connection() as conn:  # the other dead idle connection went with the failure
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid not in pids
    finally:
        pool.close()
