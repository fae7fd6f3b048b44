"""The PostgreSQL event store: the shared contract, plus what only a database can show."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest

from backbone.eventstore import PostgresEventStore, append_in_transaction
from tests.eventstore_contract import EventStoreContract, event


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture(autouse=True)
    def _store(self, database_url: str) -> None:
        self.store = PostgresEventStore(database_url)
        self.url = database_url


@pytest.mark.parametrize("statement", [
    "UPDATE events SET type = 'X'",
    "DELETE FROM events",
    "TRUNCATE events",
])
def test_the_database_refuses_to_change_or_remove_events(database_url: str, statement: str) -> None:
    store = PostgresEventStore(database_url)
    store.append([event(f"s-{uuid.uuid4().hex[:6]}")])
    before = store.head_position()
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege,
                                                              match="append-only"):
        conn.execute(statement)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE position <= %s", (before,)).fetchone()[0] >= 1
    assert store.head_position() == before


def test_a_reader_tailing_the_log_never_skips_an_event_that_commits_late(database_url: str) -> None:
    """Writer A takes a position and commits late; writer B starts after A. Without the table
    lock B would get a higher position, commit first, and a tailing reader would move past A's
    position before A's row became visible."""
    store = PostgresEventStore(database_url)
    start = store.head_position()
    a_inserted = threading.Event()

    def slow_writer() -> None:
        with psycopg.connect(database_url) as conn, conn.transaction():
            append_in_transaction(conn, [event(f"a-{uuid.uuid4().hex[:6]}")])
            a_inserted.set()
            time.sleep(1.0)  # commit late

    def fast_writer() -> None:
        a_inserted.wait()
        store.append([event(f"b-{uuid.uuid4().hex[:6]}")])

    seen: list[int] = []
    stop = threading.Event()

    def tail() -> None:
        after = start
        while not stop.is_set():
            for e in store.read_all(after_position=after):
                assert e.position is not None
                seen.append(e.position)
                after = e.position
            time.sleep(0.01)

    threads = [threading.Thread(target=f) for f in (slow_writer, fast_writer, tail)]
    for t in threads:
        t.start()
    threads[0].join()
    threads[1].join()
    time.sleep(0.3)
    stop.set()
    threads[2].join()
    committed = [e.position for e in store.read_all(after_position=start)]
    assert seen == committed and len(committed) == 2


def test_concurrent_writers_to_one_stream_one_wins(database_url: str) -> None:
    from backbone.eventstore import ConcurrencyError

    store = PostgresEventStore(database_url)
    stream = f"race-{uuid.uuid4().hex[:6]}"
    results: list[str] = []

    def write() -> None:
        try:
            store.append([event(stream)], expected_version=0)
            results.append("ok")
        except ConcurrencyError:
            results.append("conflict")

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 7 + ["ok"]
    assert len(store.read_stream(stream)) == 1


def test_migrations_are_applied_once(database_url: str) -> None:
    import io

    from backbone.migrate import migrate

    out = io.StringIO()
    assert migrate(database_url, out=out) == []
    assert "up to date" in out.getvalue()


def test_raw_rows_can_be_filtered_by_type_and_skip_unread_columns(database_url: str) -> None:
    from contracts import Actor, build_envelope
    from contracts.events import MonthResultsPublished

    store = PostgresEventStore(database_url)
    start = store.head_position()
    stream = f"mixed-{uuid.uuid4().hex[:6]}"
    store.append([event(stream), build_envelope(MonthResultsPublished(school_id="S", month="2026-10",
                                                                      published_on="2026-11-01"),
                                                stream=stream, actor=Actor(kind="school", id="S"))])
    rows = list(store.read_rows(after_position=start, types=["MonthResultsPublished"], lean=True))
    assert [r[4] for r in rows] == ["MonthResultsPublished"]
    assert rows[0][2] is None and rows[0][8] is None and rows[0][11]["month"] == "2026-10"
