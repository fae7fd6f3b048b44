"""Replay for audits: every student's aid status from the whole log, live or as of any instant.

    python -m services.eligibility.replay --source jsonl:log.jsonl --out-json out.json --out-csv out.csv
    python -m services.eligibility.replay --source postgres --as-of 2026-12-01T00:00+08:00 --school 4101000001
    python -m services.eligibility.replay --source postgres --verify
    python -m services.eligibility.replay --source postgres --workers 2 --low-memory --out-json out.json

``--as-of`` keeps events with ``recorded_at`` <= that instant (a date alone means the end of that
day, Asia/Shanghai; an instant without offset is read as Asia/Shanghai). ``--verify`` replays the
log up to the live projection's high-water mark and lists every difference with the
``eligibility_status`` table (a status it lacks, a field that differs, a row no logged event
explains); it exits 1 on any. Exit 2: bad input (the message names the line).

Memory: only per-student facts are kept, never envelopes; statuses are written as derived.
``--workers N`` (PostgreSQL) folds and derives in N processes, students split by a stable hash
(:func:`replay_parallel`); with ``--low-memory`` each worker holds one student at a time.
"""

from __future__ import annotations

import argparse
import heapq
import multiprocessing
import os
import queue
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, time
from typing import Any

from contracts.eligibility_status import SCHEMA_ID, ReportHeader
from contracts.registry import ContractError
from services.eligibility.domain.calendar import SHANGHAI, CalendarError, parse_semester
from services.eligibility.domain.facts import Ledger, shared_types, student_types
from services.eligibility.domain.policy import PolicyBook, PolicyError
from services.eligibility.domain.rules import StudentStatus, derive, derive_all
from services.eligibility.logsource import (
    LogSourceError,
    Progress,
    RawEvent,
    fast_events,
    gc_tuned,
    open_source,
    partition_of,
)
from services.eligibility.output import (
    CsvWriter,
    JsonWriter,
    Rendered,
    render,
    write_rendered,
    write_statuses,
)
from services.eligibility.policyfile import load_policy_book


def default_dsn() -> str:
    from backbone import config

    return config.load().database_url


def parse_as_of(text: str) -> datetime:
    """``2026-12-01`` (end of that day, Shanghai), or an ISO instant (no offset = Shanghai)."""
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            return datetime.combine(day, time.max, SHANGHAI)
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date or ISO instant: {text!r}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=SHANGHAI)


class Filters:
    def __init__(self, students: Iterable[str] = (), schools: Iterable[str] = (),
                 semesters: Iterable[str] = ()) -> None:
        self.students = set(students) or None
        self.schools = set(schools) or None
        self.semesters = set(semesters) or None

    def wanted_student(self) -> Callable[[str], bool] | None:
        students = self.students
        return None if students is None else students.__contains__

    def keep(self, status: StudentStatus) -> bool:
        return (self.schools is None or status["school_id"] in self.schools) and (
            self.semesters is None or status["semester"] in self.semesters)


def fold_log(events: Iterable[RawEvent], ledger: Ledger, progress: Progress | None = None) -> Ledger:
    """The hot loop: fold raw events into ``ledger`` (dict dispatch, no envelope objects)."""
    apply = ledger.apply_fields
    with gc_tuned():
        if progress is None:
            for event_type, event_id, ts, payload, _ in events:
                apply(event_type, event_id, ts, payload)
            return ledger
        for event_type, event_id, ts, payload, _ in events:
            apply(event_type, event_id, ts, payload)
            if progress.tick():
                progress.report(f"{len(ledger.students):,} students")
    return ledger


def statuses(ledger: Ledger, book: PolicyBook, filters: Filters | None = None) -> Iterator[StudentStatus]:
    """Derived statuses, ordered by (student_id, semester), one student at a time."""
    filters = filters or Filters()
    for status in derive_all(ledger, book, filters.students):
        if filters.keep(status):
            yield status


def replay(events: Iterable[RawEvent], book: PolicyBook | None = None, filters: Filters | None = None,
           progress: Progress | None = None) -> Iterator[StudentStatus]:
    """Fold the whole log, then derive. The library form of the CLI."""
    filters = filters or Filters()
    book = book or load_policy_book()
    ledger = fold_log(events, Ledger(wanted=filters.wanted_student()), progress)
    return statuses(ledger, book, filters)


def replay_by_student(dsn: str, book: PolicyBook, filters: Filters | None = None, *,
                      as_of: datetime | None = None,
                      progress: Progress | None = None) -> Iterator[StudentStatus]:
    """The same statuses as :func:`replay` over PostgreSQL, in flat memory.

    First the facts about many students (checks, closings, publications, rosters); then every
    other event ordered by student (the database sorts), folding one student at a time and
    forgetting them once derived. Memory holds the shared facts and one student, whatever the
    length of the log. Slower than :func:`replay` (the sort), for logs too big for memory.
    """
    from services.eligibility.logsource import postgres_events

    filters = filters or Filters()
    ledger = Ledger(wanted=filters.wanted_student())
    fold_log(postgres_events(dsn, as_of=as_of, types=shared_types()), ledger, progress)
    roster_only = sorted(ledger.student_ids())  # no student facts yet: the roster's ids
    if filters.students is not None:
        roster_only = [sid for sid in roster_only if sid in filters.students]

    def derived(student_id: str) -> Iterator[StudentStatus]:
        facts = ledger.students.pop(student_id, None)
        for status in derive(student_id, facts, ledger.shared, book):
            if filters.keep(status):
                yield status

    apply = ledger.apply_fields
    pending = 0  # index into roster_only
    current: str | None = None
    with gc_tuned():
        for event_type, event_id, ts, payload, _ in postgres_events(dsn, as_of=as_of, types=student_types(),
                                                                    by_student=True):
            student_id = payload["student_id"]
            if student_id != current:
                if current is not None:
                    yield from derived(current)
                while pending < len(roster_only) and roster_only[pending] < student_id:
                    yield from derived(roster_only[pending])
                    pending += 1
                if pending < len(roster_only) and roster_only[pending] == student_id:
                    pending += 1
                current = student_id
            apply(event_type, event_id, ts, payload)
            if progress is not None and progress.tick():
                progress.report(f"at student {current}")
    if current is not None:
        yield from derived(current)
    for student_id in roster_only[pending:]:
        yield from derived(student_id)


# --------------------------------------------------------------------------- both cores

BATCH = 500
"""Statuses per message from a worker to the merging process."""
QUEUE_BATCHES = 16
"""Messages a worker may have in flight: bounds memory whatever the log's length."""


def _partition_statuses(dsn: str, book: PolicyBook, filters: Filters, part: int, parts: int,
                        as_of: datetime | None, until_position: int | None,
                        low_memory: bool) -> Iterator[tuple[StudentStatus | None, int]]:
    """``(status, events folded since the last one)`` for the students of partition ``part``,
    ordered by student id then semester. The shared facts (checks, closings, publications,
    filings, roster parts) are folded whole; per-student events only for the partition's students.
    ``low_memory``: the events come ordered by student and each student is forgotten once derived
    (memory: the shared facts and one student); else the partition is folded, then derived."""
    wanted = filters.wanted_student()
    ledger = Ledger(wanted=wanted)
    apply = ledger.apply_fields
    events = 0

    def mine(student_id: str) -> bool:
        return partition_of(student_id, parts) == part

    with gc_tuned():
        shared = fast_events(dsn, as_of=as_of, until_position=until_position, types=shared_types(),
                             ordered=False)
        for event_type, event_id, ts, payload, _ in shared:
            apply(event_type, event_id, ts, payload)
            events += 1
        stream = fast_events(dsn, as_of=as_of, until_position=until_position, types=student_types(),
                             by_student=low_memory, partition=(part, parts), ordered=False)
        if not low_memory:
            for event_type, event_id, ts, payload, _ in stream:
                apply(event_type, event_id, ts, payload)
                events += 1
            ids = sorted(sid for sid in ledger.student_ids() if mine(sid))
            if filters.students is not None:
                ids = [sid for sid in ids if sid in filters.students]
            for student_id in ids:
                for status in derive(student_id, ledger.students.pop(student_id, None), ledger.shared, book):
                    if filters.keep(status):
                        yield status, events
                        events = 0
            yield None, events
            return
        roster_only = sorted(sid for sid in ledger.student_ids() if mine(sid))
        if filters.students is not None:
            roster_only = [sid for sid in roster_only if sid in filters.students]
        pending = 0
        current: str | None = None

        def derived(student_id: str) -> Iterator[StudentStatus]:
            for status in derive(student_id, ledger.students.pop(student_id, None), ledger.shared, book):
                if filters.keep(status):
                    yield status

        for event_type, event_id, ts, payload, _ in stream:
            student_id = payload["student_id"]
            if student_id != current:
                if current is not None:
                    for status in derived(current):
                        yield status, events
                        events = 0
                while pending < len(roster_only) and roster_only[pending] < student_id:
                    for status in derived(roster_only[pending]):
                        yield status, events
                        events = 0
                    pending += 1
                if pending < len(roster_only) and roster_only[pending] == student_id:
                    pending += 1
                current = student_id
            apply(event_type, event_id, ts, payload)
            events += 1
        rest = ([current] if current is not None else []) + roster_only[pending:]
        for student_id in rest:
            for status in derived(student_id):
                yield status, events
                events = 0
    yield None, events


def _worker(dsn: str, book: PolicyBook, filters: Filters, part: int, parts: int, as_of: datetime | None,
            until_position: int | None, low_memory: bool, rendering: str | None, out: Any) -> None:
    """A worker process: its partition's statuses to ``out`` in batches (rendered with
    :func:`.output.render` when ``rendering`` is ``json`` or ``json+csv``); ``("done", n)`` at the
    end, ``("error", message)`` on failure (the message names no payload)."""
    try:
        batch: list[StudentStatus | Rendered] = []
        events = 0
        csv_too = rendering == "json+csv"
        for status, folded in _partition_statuses(dsn, book, filters, part, parts, as_of, until_position,
                                                  low_memory):
            events += folded
            if status is not None:
                batch.append(status if rendering is None else render(status, csv_too))
            if len(batch) >= BATCH or status is None:
                out.put(("batch", batch, events))
                batch, events = [], 0
        out.put(("done", [], events))
    except BaseException as exc:  # noqa: BLE001 - reported to the merging process, which raises
        out.put(("error", f"{type(exc).__name__}: {exc}", 0))


def _drain(inbox: Any, process: Any, progress: Progress | None) -> Iterator[Any]:
    while True:
        try:
            kind, body, events = inbox.get(timeout=1.0)
        except queue.Empty:
            if not process.is_alive():
                raise LogSourceError(f"replay worker {process.name} ended without finishing"
                                     f" (exit code {process.exitcode})") from None
            continue
        if kind == "error":
            raise LogSourceError(f"replay worker {process.name} failed: {body}")
        if progress is not None and events:
            progress.advance(events)
        yield from body
        if kind == "done":
            return


def _student_key(status: StudentStatus) -> str:
    return str(status["student_id"])


def _rendered_key(item: Rendered) -> str:
    return item.student_id


def replay_parallel(dsn: str, book: PolicyBook, filters: Filters | None = None, *, workers: int = 2,
                    as_of: datetime | None = None, until_position: int | None = None,
                    low_memory: bool = True, progress: Progress | None = None) -> Iterator[StudentStatus]:
    """The same statuses as :func:`replay` over PostgreSQL, in the same order, from ``workers``
    processes (both cores). :func:`replay_rendered` gives them rendered for the writers.

    Students are split by a stable hash of their id (:func:`.logsource.partition_of`); each worker
    reads the shared facts whole and its own students' events straight from the database (no
    reader in between), folds and derives them, and sends the statuses back in batches through a
    bounded queue; this process merges the workers' sorted streams by student id. With
    ``low_memory`` (default) each worker reads its students ordered by student and forgets each
    one once derived: memory stays flat whatever the length of the log.
    """
    return _run_workers(dsn, book, filters or Filters(), workers, as_of, until_position, low_memory, None,
                        progress)


def replay_rendered(dsn: str, book: PolicyBook, filters: Filters | None = None, *, workers: int = 2,
                    as_of: datetime | None = None, until_position: int | None = None,
                    low_memory: bool = True, csv_too: bool = False,
                    progress: Progress | None = None) -> Iterator[Rendered]:
    """:func:`replay_parallel`, each status built through the model and rendered (JSON, and the
    CSV row with ``csv_too``) by the worker that derived it (:func:`.output.render`): the process
    writing the report only writes text (:func:`.output.write_rendered`)."""
    return _run_workers(dsn, book, filters or Filters(), workers, as_of, until_position, low_memory,
                        "json+csv" if csv_too else "json", progress)


def _run_workers(dsn: str, book: PolicyBook, filters: Filters, workers: int, as_of: datetime | None,
                 until_position: int | None, low_memory: bool, rendering: str | None,
                 progress: Progress | None) -> Iterator[Any]:
    context = multiprocessing.get_context("spawn")
    inboxes = [context.Queue(maxsize=QUEUE_BATCHES) for _ in range(workers)]
    processes = [context.Process(target=_worker, name=f"replay-{k + 1}/{workers}", daemon=True,
                                 args=(dsn, book, filters, k, workers, as_of, until_position, low_memory,
                                       rendering, inboxes[k]))
                 for k in range(workers)]
    for process in processes:
        process.start()
    try:
        streams = [_drain(inbox, process, progress)
                   for inbox, process in zip(inboxes, processes, strict=True)]
        yield from heapq.merge(*streams, key=_student_key if rendering is None else _rendered_key)
        for process in processes:
            process.join()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
        for inbox in inboxes:
            inbox.close()
            inbox.cancel_join_thread()


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.eligibility.replay",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default="postgres", help="jsonl:PATH or postgres (default)")
    p.add_argument("--dsn", default=None,
                   help="PostgreSQL DSN (default: $AID_DATABASE_URL, else the local studentaid database)")
    p.add_argument("--as-of", type=parse_as_of, default=None, help="only events recorded on or before this")
    p.add_argument("--student", action="append", default=[], help="only this student (repeatable)")
    p.add_argument("--school", action="append", default=[], help="only this school (repeatable)")
    p.add_argument("--semester", action="append", default=[], help="only this semester, e.g. 2026-autumn")
    p.add_argument("--out-json", help="write statuses as JSON (- for stdout)")
    p.add_argument("--out-csv", help="write statuses as CSV (- for stdout)")
    p.add_argument("--policy", help="policy file (default: the shipped policy.yml)")
    p.add_argument("--validate", action="store_true", help="JSON-Schema-validate every JSONL line (slower)")
    p.add_argument("--verify", action="store_true",
                   help="compare with the live projection; exit 1 on differences")
    p.add_argument("--low-memory", action="store_true",
                   help="postgres source: fold one student at a time"
                   " (flat memory, slower: the database sorts)")
    p.add_argument("--workers", type=int, default=1,
                   help="postgres source: fold and derive in this many processes (students split by a"
                   " stable hash; same output), e.g. the number of cores; 1 (default): this process")
    p.add_argument("--progress-every", type=int, default=500_000,
                   help="progress line every N events (0: none)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dsn = args.dsn or default_dsn()
    try:
        for semester in args.semester:
            parse_semester(semester)
        book = load_policy_book(args.policy)
        if args.verify:
            return _verify(args, dsn, book)
        filters = Filters(args.student, args.school, args.semester)
        progress = Progress(args.progress_every) if args.progress_every else None
        if args.workers > 1:
            if args.source != "postgres":
                print("replay: error: --workers needs --source postgres", file=sys.stderr)
                return 2
            rendered = replay_rendered(dsn, book, filters, workers=args.workers, as_of=args.as_of,
                                       low_memory=args.low_memory, csv_too=bool(args.out_csv),
                                       progress=progress)
            count = write_rendered(rendered, _writers(args, book))
            if progress is not None:
                progress.report(f"{count:,} statuses written")
            return 0
        if args.low_memory:
            if args.source != "postgres":
                print("replay: error: --low-memory needs --source postgres", file=sys.stderr)
                return 2
            derived = replay_by_student(dsn, book, filters, as_of=args.as_of, progress=progress)
        else:
            events = open_source(args.source, dsn=dsn, as_of=args.as_of, validate=args.validate)
            derived = replay(events, book, filters, progress)
        count = _write(derived, args, book)
        if progress is not None:
            progress.report(f"{count:,} statuses written")
        return 0
    except (LogSourceError, PolicyError, CalendarError, ContractError) as exc:
        print(f"replay: error: {exc}", file=sys.stderr)
        return 2


def _write(derived: Iterator[StudentStatus], args: argparse.Namespace, book: PolicyBook) -> int:
    return write_statuses(derived, _writers(args, book))


def _writers(args: argparse.Namespace, book: PolicyBook) -> list[JsonWriter | CsvWriter]:
    header = ReportHeader(
        schema=SCHEMA_ID, generated_at=datetime.now(SHANGHAI).isoformat(timespec="seconds"),
        as_of=args.as_of.isoformat() if args.as_of else None, source=args.source,
        policy_versions=[p.version for p in book.versions],
        filters={"student": args.student, "school": args.school, "semester": args.semester},
    )
    json_path = args.out_json or (None if args.out_csv else "-")
    writers: list[JsonWriter | CsvWriter] = []
    if json_path:
        writers.append(JsonWriter(json_path, header=header))
    if args.out_csv:
        writers.append(CsvWriter(args.out_csv, book))
    return writers


def _verify(args: argparse.Namespace, dsn: str, book: PolicyBook) -> int:
    import psycopg

    from services.eligibility.projection import audit

    with psycopg.connect(dsn) as conn:
        top = audit.high_water(conn)
        rebuilt = audit.rebuilt_through(conn)
        progress = Progress(args.progress_every, label="verify") if args.progress_every else None
        positioned = [0]

        def counted(source: Iterable[RawEvent]) -> Iterator[RawEvent]:
            for event in source:
                positioned[0] += event[4] is not None and event[4] > rebuilt
                yield event

        if args.workers > 1 and args.source == "postgres":
            derived = replay_parallel(dsn, book, None, workers=args.workers, until_position=top,
                                      low_memory=args.low_memory, progress=progress)
            row = conn.execute("SELECT count(*) FROM events WHERE position > %s AND position <= %s",
                               (rebuilt, top)).fetchone()
            positioned[0] = int(row[0]) if row else 0
        else:
            events = open_source(args.source, dsn=dsn, until_position=top, validate=args.validate,
                                 only_handled=False)
            derived = replay(counted(events), book, None, progress)
        problems = 0
        for line in audit.differences(derived, audit.iter_statuses(conn)):
            print(line)
            problems += 1
        processed = audit.processed_count(conn, rebuilt, top)
        if positioned[0] and processed != positioned[0]:
            print(f"log has {positioned[0]:,} events in positions {rebuilt + 1:,}..{top:,};"
                  f" the projection processed {processed:,}")
            problems += 1
    verdict = "no differences" if problems == 0 else f"{problems} difference(s)"
    print(f"verify: replay up to position {top:,} vs projection: {verdict}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
