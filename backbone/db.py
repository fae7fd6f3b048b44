"""A small connection pool that works both in plain threads and under eventlet.

Under eventlet the services set ``PSYCOPG_WAIT_FUNC=wait_select`` before psycopg is imported
(see :mod:`backbone.runservice`): psycopg then waits on the green ``select`` and a query
yields to other green threads instead of blocking the hub (psycopg's default C wait
function blocks it; ``tests/integration/test_no_blocking.py`` shows both).
``queue.Queue`` is green too once eventlet has monkey-patched the standard library.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Iterator
from typing import Any

import psycopg


class Pool:
    def __init__(self, dsn: str, size: int = 4, connect_timeout: int = 5, check_after: float = 5.0) -> None:
        self.dsn = dsn
        self.size = size
        self.connect_timeout = connect_timeout
        #: a connection idle for longer than this is checked (``SELECT 1``) before it is lent: the
        #: server may have restarted or dropped it meanwhile, and the request would fail for that
        self.check_after = check_after
        self._idle: queue.LifoQueue[tuple[psycopg.Connection[Any], float]] = queue.LifoQueue()
        self._slots = queue.Queue[int]()
        for i in range(size):
            self._slots.put(i)

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, connect_timeout=self.connect_timeout, autocommit=True)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        slot = self._slots.get()
        conn: psycopg.Connection[Any] | None = None
        try:
            conn = self._lend()
            yield conn
        except BaseException as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
            if isinstance(exc, psycopg.OperationalError):
                self.close()  # the server went away: the idle connections are most likely dead too
            raise
        finally:
            if conn is not None and not conn.closed:
                self._idle.put((conn, time.monotonic()))
            self._slots.put(slot)

    def _lend(self) -> psycopg.Connection[Any]:
        """An idle connection that works, or a new one."""
        while True:
            try:
                conn, since = self._idle.get_nowait()
            except queue.Empty:
                return self._connect()
            if conn.closed or conn.broken:
                continue
            if time.monotonic() - since > self.check_after:
                try:
                    conn.execute("SELECT 1")
                except psycopg.Error:
                    with contextlib.suppress(Exception):
                        conn.close()
                    continue
            return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self.connection() as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        """Close the idle connections (those lent out are closed or returned by their users)."""
        while True:
            try:
                conn, _ = self._idle.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(Exception):
                conn.close()
