"""Wake waiting requests as soon as the event log holds a new event of their stream.

A long-poll (``GET /captures/<id>?wait=``) registers the stream it waits on and sleeps; ONE
listener connection per process (``LISTEN aid_events``, the channel every append notifies on
commit with the position of its last event, see :mod:`backbone.eventstore`) reads, per burst of
notifications, which of the waited-on streams got events between the last position it saw and
the notified one (one query for all waiters) and wakes those waiters. The waiter then re-reads
its stream itself, so its answer is exactly what a plain read gives.

Nothing is lost in between: a waiter registers first and then re-reads its stream, and appends
commit in position order (the store's table lock), so an event committed after that re-read is
notified after the registration. If the listener is not connected (database restarted, a
notification missed), waiters fall back to re-reading every ``fallback_poll`` seconds; while it
is connected they still re-read every ``listening_poll`` seconds, and the listener compares the
log's head with what it saw every ``heartbeat`` seconds (a missed notification costs at most that).

At most ``max_waiters`` wait at once in a process (:class:`TooManyWaiting` beyond: the route
answers 503 with a code). Works in plain threads and under eventlet: the listener is a thread
(green once eventlet patched ``threading``) and psycopg waits on the green ``select`` when
``PSYCOPG_WAIT_FUNC=wait_select`` (set by :mod:`backbone.runservice`), so waiting for
notifications never blocks the hub (``tests/integration/test_verdict_wait.py``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from nameko.extensions import DependencyProvider

from backbone import config
from backbone.eventstore import NOTIFY_CHANNEL

log = logging.getLogger("aid.logwatch")
APPLICATION_NAME = "aid-logwatch"


class TooManyWaiting(RuntimeError):
    """``max_waiters`` requests wait already in this process."""


class Waiter:
    """One waiting request: :meth:`wait` returns when its stream may have changed."""

    def __init__(self, watch: LogWatch, stream: str) -> None:
        self.watch = watch
        self.stream = stream
        self.woken = threading.Event()

    def wait(self, timeout: float) -> bool:
        """Sleep until woken or ``timeout`` (at most the current poll interval); True if woken."""
        woken = self.woken.wait(max(0.0, min(timeout, self.watch.poll_interval())))
        self.woken.clear()
        return woken


class LogWatch:
    def __init__(self, dsn: str, max_waiters: int = 64, heartbeat: float = 2.0, fallback_poll: float = 0.5,
                 listening_poll: float = 5.0, connect_timeout: int = 5) -> None:
        self.dsn = dsn
        self.max_waiters = max_waiters
        self.heartbeat = heartbeat
        self.fallback_poll = fallback_poll
        self.listening_poll = listening_poll
        self.connect_timeout = connect_timeout
        self.listening = False
        self.wakes = 0  # waiters woken by the log (for tests and metrics)
        self.connects = 0  # listener connections made (1, and one more after each reconnect)
        self._waiters: dict[str, set[Waiter]] = {}
        self._count = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ waiters
    def poll_interval(self) -> float:
        return self.listening_poll if self.listening else self.fallback_poll

    @property
    def waiting(self) -> int:
        return self._count

    @contextlib.contextmanager
    def watching(self, stream: str) -> Iterator[Waiter]:
        """Register a waiter on ``stream`` (re-read the stream AFTER entering, then wait)."""
        waiter = Waiter(self, stream)
        with self._lock:
            if self._count >= self.max_waiters:
                raise TooManyWaiting(f"{self._count} requests wait already")
            self._count += 1
            self._waiters.setdefault(stream, set()).add(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                self._count -= 1
                waiters = self._waiters.get(stream)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._waiters[stream]

    def _streams(self) -> list[str]:
        with self._lock:
            return list(self._waiters)

    def _wake(self, streams: Any) -> None:
        with self._lock:
            woken = [w for s in streams for w in self._waiters.get(s, ())]
        for waiter in woken:
            waiter.woken.set()
        self.wakes += len(woken)

    # ------------------------------------------------------------------ the listener
    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="logwatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.listening = False

    def _run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                self._listen()
                backoff = 0.5
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                log.warning("log listener disconnected (%s); waiters poll; retrying in %.1fs",
                            type(exc).__name__, backoff)
            except Exception:  # never let the listener die: waiters would only poll
                log.exception("log listener failed; waiters poll")
            self.listening = False
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def _listen(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=self.connect_timeout,
                             application_name=APPLICATION_NAME) as conn:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            seen = self._head(conn)
            self.connects += 1
            self.listening = True
            self._wake(self._streams())  # who registered before LISTEN re-reads once
            last_check = time.monotonic()
            while not self._stopping.is_set():
                time.sleep(0)  # under eventlet: yield to the hub between waits, whatever the wait function
                heads = []
                for notify in conn.notifies(timeout=self.heartbeat, stop_after=1):
                    with contextlib.suppress(ValueError):
                        heads.append(int(notify.payload))
                if time.monotonic() - last_check >= self.heartbeat:
                    heads.append(self._head(conn))  # a missed notification, and a liveness check
                    last_check = time.monotonic()
                head = max(heads, default=seen)
                if head <= seen:
                    continue
                streams = self._streams()
                if streams:
                    rows = conn.execute(
                        "SELECT DISTINCT stream FROM events WHERE position > %s AND position <= %s"
                        " AND stream = ANY(%s)", (seen, head, streams)).fetchall()
                    self._wake(r[0] for r in rows)
                seen = head

    @staticmethod
    def _head(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()
        return int(row[0]) if row else 0


class LogWatchProvider(DependencyProvider):  # type: ignore[misc]
    """nameko dependency: ``self.log`` in a service is the process's :class:`LogWatch`."""

    def __init__(self, max_waiters: int = 64) -> None:
        self.max_waiters = max_waiters

    def setup(self) -> None:
        self.watch = LogWatch(config.load().database_url, max_waiters=self.max_waiters)

    def start(self) -> None:
        self.watch.start()

    def stop(self) -> None:
        self.watch.stop()

    def kill(self) -> None:
        self.watch.stop()

    def get_dependency(self, worker_ctx: Any) -> LogWatch:
        return self.watch
