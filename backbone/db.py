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
from collections.abc import Iterator
from typing import Any

import psycopg


class Pool:
    def __init__(self, dsn: str, size: int = 4, connect_timeout: int = 5) -> None:
        self.dsn = dsn
        self.size = size
        self.connect_timeout = connect_timeout
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
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
            try:
                conn = self._idle.get_nowait()
                if conn.closed or conn.broken:
                    conn = self._connect()
            except queue.Empty:
                conn = self._connect()
            yield conn
        except BaseException:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
            raise
        finally:
            if conn is not None and not conn.closed:
                self._idle.put(conn)
            self._slots.put(slot)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self.connection() as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
