"""Writes the live projection: statuses kept current in PostgreSQL as events arrive, and rebuilt
from a replay.

Tables (``migrations/0101_eligibility_projection.sql``, applied by ``aid migrate``):
``eligibility_facts`` (per-student facts), ``eligibility_shared`` (checks, closings,
publications, roster parts), ``eligibility_roster_entries``, ``eligibility_status`` (the read
model: one row per student and semester) and ``eligibility_meta``.

:meth:`Projection.apply_events` is idempotent and order-insensitive: in ONE transaction it
records the batch's event ids in ``processed_events`` (consumer ``eligibility``) and drops those
seen before, folds the new events into the stored facts, and re-derives exactly the students
the events can affect (:func:`domain.facts.impact`). A province-wide CheckOpened or a complete
roster import re-derives everyone (in chunks); a capture re-derives one student.

Locking (several consumers and instances apply at once): students fall into ``PARTITIONS`` (16)
partitions by a stable hash of their id (:func:`partition`, ``eligibility_part`` in SQL). A batch of
per-student events holds the shared-facts lock ``LOCK_KEY`` in SHARED mode and the locks of the
partitions its events name, taken in ascending order (no deadlock); batches of different partitions
run in parallel, and a large batch is applied range of partitions by range (``SPLIT``), one
transaction each, so that two writers' batches of random students pipeline instead of queueing.
A batch that writes shared facts (a check opened or closed, a publication, a filing, a roster part)
holds ``LOCK_KEY`` EXCLUSIVELY, alone. The summary counts' triggers take their own lock
(migrations/0103) for the few statements that write statuses, so counter rows are updated in turn.

With ``defer_everyone`` (the service), an event that touches every student (a province-wide check,
closing or publication, a roster part) does not re-derive everyone in its own transaction: it
stores its fact and marks a backlog, one cursor per partition (``eligibility_backlog``; the marker
``rederive_after`` in ``eligibility_meta`` while it runs); :meth:`Projection.rederive_step` then
re-derives the next chunk of one partition that nobody else holds (``pg_try_advisory_xact_lock``), in
one short transaction under the shared lock, so per-student batches keep flowing and several instances
re-derive different partitions at once. The students a batch names are re-derived at once as always
(with the new shared facts), so they never wait for the backlog. A second such event while a backlog
runs starts it again from the first student of every partition: a roster import in many parts
re-derives each student about once after its last part. :meth:`Projection.backlog` tells the progress
(metric and ``/health``).
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from psycopg.types.json import Jsonb, set_json_dumps, set_json_loads

from contracts.envelope import Envelope
from services.eligibility.domain.facts import (
    FOLDS,
    SHARED_KINDS,
    Impact,
    Ledger,
    SharedFacts,
    SharedKey,
    StudentFacts,
    check_impact,
    load_shared,
    shared_rows,
)
from services.eligibility.domain.policy import PolicyBook
from services.eligibility.domain.rules import derive, derive_all
from services.eligibility.policyfile import load_policy_book

CONSUMER = "eligibility"
#: the shared-facts lock: SHARED for a per-student batch or a backlog step, EXCLUSIVE for a batch that
#: writes shared facts (and for a rebuild), so it also excludes every other writer
LOCK_KEY = 727_104
#: a partition's lock: ``pg_advisory_xact_lock(PARTITION_LOCK, partition)``
PARTITION_LOCK = 727_105
#: students fall into this many partitions (``eligibility_part`` in migrations/0103; :func:`partition`)
PARTITIONS = 16
CHUNK = 2000
#: a batch of at least SPLIT_FROM per-student events is applied in SPLIT transactions (ranges of partitions)
SPLIT, SPLIT_FROM = 4, 100

_UPSERT_META = ("INSERT INTO eligibility_meta (key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value")
#: meta keys of the re-derivation backlog (see the module's docstring)
BACKLOG_AFTER, BACKLOG_TOTAL, BACKLOG_DONE = "rederive_after", "rederive_total", "rederive_done"
_BACKLOG_KEYS = [BACKLOG_AFTER, BACKLOG_TOTAL, BACKLOG_DONE]
_STATUS_COLUMNS = "student_id, semester, school_id, county, city, status, last_position"


@dataclass(frozen=True)
class ApplyResult:
    received: int
    applied: int
    duplicates: int
    rederived: int
    #: the ids of the events that were new (not processed before)
    new_ids: frozenset[uuid.UUID] = frozenset()


class Projection:
    """Applies batches of envelopes to the tables. Keeps shared facts cached between batches
    (reloaded whenever ``eligibility_meta.shared_token`` changed, e.g. by another process).
    One instance may serve several green threads (a batch and a backlog step at once): the cache is
    trusted only under the shared-facts lock, and only a batch holding it exclusively changes it."""

    def __init__(self, book: PolicyBook | None = None, chunk: int = CHUNK,
                 defer_everyone: bool = False, split: int = SPLIT, split_from: int = SPLIT_FROM) -> None:
        self.book = book or load_policy_book()
        self.chunk = chunk
        self.split, self.split_from = split, split_from
        self.defer_everyone = defer_everyone
        self._shared: SharedFacts | None = None
        self._token: str | None = None
        self._random = random.Random()
        #: called with the number of students after each backlog step that re-derived some
        self.on_rederive_step: Callable[[int], None] | None = None
        #: called with the students of every re-derivation (tests count them)
        self.on_rederive: Callable[[list[str]], None] | None = None

    def apply_events(self, conn: Any, envelopes: Sequence[Envelope]) -> ApplyResult:
        """Apply one batch (any order, duplicates allowed) in one transaction; a batch of at least
        ``split_from`` per-student events in ``split`` transactions, one per range of partitions in
        ascending order (each with its events' ``processed_events`` rows; a student's events stay in
        one), so that the batches of two writers follow each other range by range instead of waiting
        for each other whole. The cached shared facts are trusted again only once the batch has
        committed: a failed batch (or an outer rollback, which changes the stored token back) makes
        the next batch reload them."""
        _fast_json(conn)
        envelopes = list(envelopes)
        groups = self._split(envelopes)
        if len(groups) == 1:
            return self._apply_one(conn, envelopes)
        results = [self._apply_one(conn, group) for group in groups]
        return ApplyResult(sum(r.received for r in results), sum(r.applied for r in results),
                           sum(r.duplicates for r in results), sum(r.rederived for r in results),
                           frozenset().union(*(r.new_ids for r in results)))

    def _split(self, envelopes: list[Envelope]) -> list[list[Envelope]]:
        if self.split < 2 or len(envelopes) < self.split_from or _partitions_of(envelopes) is None:
            return [envelopes]
        width = -(-PARTITIONS // self.split)
        groups: dict[int, list[Envelope]] = {}
        for env in envelopes:  # in the batch's order; events that name no student go with the first range
            fold = FOLDS.get(env.type)
            students = fold.impact(env.payload).students if fold is not None else frozenset()
            group = min((partition(sid) // width for sid in students), default=0)
            groups.setdefault(group, []).append(env)
        return [groups[g] for g in sorted(groups)]

    def _apply_one(self, conn: Any, envelopes: list[Envelope]) -> ApplyResult:
        try:
            with conn.transaction():
                result, token = self._apply(conn, envelopes)
        except BaseException:
            self._shared, self._token = None, None
            raise
        if token is not None:  # this batch wrote shared facts: the cache holds them now
            self._token = token
        return result

    # ------------------------------------------------------------------ steps

    def _apply(self, conn: Any, envelopes: list[Envelope]) -> tuple[ApplyResult, str | None]:
        parts = _partitions_of(envelopes)
        if parts is None:  # shared facts written: this batch alone
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        else:
            _lock_partitions(conn, parts)
        unique = {e.event_id: e for e in envelopes}
        fresh = {r[0] for r in conn.execute(
            "INSERT INTO processed_events (consumer, event_id, position)"
            " SELECT %s, e, p FROM unnest(%s::uuid[], %s::bigint[]) AS t(e, p)"
            " ON CONFLICT DO NOTHING RETURNING event_id",
            (CONSUMER, list(unique), [e.position for e in unique.values()]),
        ).fetchall()}
        new = [e for e in unique.values() if e.event_id in fresh]
        if not new:
            return ApplyResult(len(envelopes), 0, len(envelopes), 0), None
        top = max((e.position or 0 for e in new), default=0) or None

        shared, token = self._load_shared_cached(conn)
        if parts is None:  # the cache is in flux until this batch commits (see apply_events)
            self._token = None

        ledger = Ledger()
        ledger.shared = shared
        own = {e.payload["student_id"] for e in new if e.type in FOLDS and FOLDS[e.type].shared is None}
        ledger.students.update(self._facts(conn, own))

        scope = _Scope()
        dirty: dict[tuple[str, SharedKey], Any] = {}
        for env in new:
            fold = FOLDS.get(env.type)
            if fold is None:
                continue
            found = fold.impact(env.payload)
            if found.check_id is not None:  # the check's students as known before this event
                scope.add(self._check_scope(found.check_id, shared))
            if fold.shared is not None and fold.key is not None:
                kind, key = fold.shared, fold.key(env.payload)
                before = SHARED_KINDS[kind].get(shared, key)
                ledger.apply(env)
                after = SHARED_KINDS[kind].get(shared, key)
                if after is not before:
                    dirty[(kind, key)] = after
            else:
                ledger.apply(env)
            scope.add(found)

        self._write_facts(conn, ledger, own, top)
        if dirty:
            token = self._write_shared(conn, shared, dirty)
        if scope.everyone and self.defer_everyone:
            scope.everyone = False  # the backlog re-derives everyone; the students named here go now
            self._start_backlog(conn)
        students = self._affected(conn, scope)
        self._rederive(conn, students, ledger, shared, top)
        return ApplyResult(len(envelopes), len(new), len(envelopes) - len(new), len(students),
                           frozenset(fresh)), (token if parts is None else None)

    # ------------------------------------------------------------------ the re-derivation backlog

    @staticmethod
    def _start_backlog(conn: Any) -> None:
        """(Re)start the backlog at the first student of every partition (under the exclusive lock)."""
        (total,) = conn.execute("SELECT count(*) FROM eligibility_facts").fetchone()
        conn.execute("DELETE FROM eligibility_backlog")
        conn.execute("INSERT INTO eligibility_backlog (part, after)"
                     " SELECT p, '' FROM generate_series(0, %s) AS p", (PARTITIONS - 1,))
        with conn.cursor() as cur:
            cur.executemany(_UPSERT_META,
                            [(BACKLOG_AFTER, ""), (BACKLOG_TOTAL, str(total)), (BACKLOG_DONE, "0")])

    @staticmethod
    def backlog(conn: Any) -> tuple[int, int] | None:
        """``(re-derived, total)`` of the running backlog, or None when there is none."""
        rows = dict(conn.execute("SELECT key, value FROM eligibility_meta WHERE key = ANY(%s)",
                                 (_BACKLOG_KEYS,)).fetchall())
        if BACKLOG_AFTER not in rows:
            return None
        (done,) = conn.execute("SELECT coalesce(sum(done), 0) FROM eligibility_backlog").fetchone()
        return int(done), int(rows.get(BACKLOG_TOTAL, 0))

    def rederive_step(self, conn: Any, limit: int | None = None, nowait: bool = False) -> int:
        """Re-derive the next ``limit`` students (default ``chunk``) of one partition of the backlog
        that no other transaction holds, in one transaction; returns how many (0: no backlog, or it has
        just ended). With ``nowait``, returns -1 at once when a batch that writes shared facts holds (or
        waits for) the shared-facts lock, or when every partition left is held by someone else."""
        _fast_json(conn)
        try:
            while True:
                with conn.transaction():
                    count, busy = self._rederive_step(conn, limit or self.chunk, nowait)
                if busy is None:
                    break
                with conn.transaction():  # every partition left is held: wait for one, holding no other
                    conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (LOCK_KEY,))
                    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (PARTITION_LOCK, busy))
                    count = self._step_partition(conn, busy, limit or self.chunk)
                if count:
                    break
        except BaseException:
            self._shared, self._token = None, None
            raise
        if count > 0 and self.on_rederive_step is not None:
            self.on_rederive_step(count)
        return count

    def _rederive_step(self, conn: Any, limit: int, nowait: bool = False) -> tuple[int, int | None]:
        """One step; ``(count, None)``, or ``(0, partition)`` when every partition left is held by
        others and the caller may wait (for that one, in a new transaction: waiting here, holding the
        partitions found done meanwhile, could deadlock with a batch)."""
        if nowait:
            if not conn.execute("SELECT pg_try_advisory_xact_lock_shared(%s)", (LOCK_KEY,)).fetchone()[0]:
                return -1, None
        else:
            conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (LOCK_KEY,))
        if conn.execute("SELECT 1 FROM eligibility_meta WHERE key = %s", (BACKLOG_AFTER,)).fetchone() is None:
            conn.execute("DELETE FROM eligibility_backlog")  # left by a tool that ended the backlog
            return 0, None
        pending = [r[0] for r in conn.execute(
            "SELECT part FROM eligibility_backlog WHERE after IS NOT NULL ORDER BY part")]
        self._random.shuffle(pending)  # instances spread over the partitions
        busy = []
        for part in pending:
            if conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", (PARTITION_LOCK, part)).fetchone()[0]:
                if count := self._step_partition(conn, part, limit):
                    return count, None
            else:
                busy.append(part)
        if busy:
            return (-1, None) if nowait else (0, busy[0])
        (left,) = conn.execute("SELECT count(*) FROM eligibility_backlog WHERE after IS NOT NULL").fetchone()
        if left == 0:  # every partition done: the backlog is over
            conn.execute("DELETE FROM eligibility_backlog")
            conn.execute("DELETE FROM eligibility_meta WHERE key = ANY(%s)", (_BACKLOG_KEYS,))
        return 0, None

    def _step_partition(self, conn: Any, part: int, limit: int) -> int:
        """Re-derive the next students of ``part`` (its lock held); 0 when it was done."""
        row = conn.execute("SELECT after FROM eligibility_backlog WHERE part = %s", (part,)).fetchone()
        if row is None or row[0] is None:
            return 0
        # the next students in the database's order: each side is complete only up to its last row
        # when it hit the limit (a student may have several roster entries)
        students = [r[0] for r in conn.execute(
            "WITH f AS (SELECT student_id FROM eligibility_facts"
            "           WHERE eligibility_part(student_id) = %(p)s AND student_id > %(a)s"
            "           ORDER BY eligibility_part(student_id), student_id LIMIT %(n)s),"
            " r AS (SELECT student_id FROM eligibility_roster_entries"
            "       WHERE eligibility_part(student_id) = %(p)s AND student_id > %(a)s"
            "       ORDER BY eligibility_part(student_id), student_id LIMIT %(n)s),"
            " bound AS (SELECT least((SELECT max(student_id) FROM f HAVING count(*) = %(n)s),"
            "                        (SELECT max(student_id) FROM r HAVING count(*) = %(n)s)) AS b)"
            " SELECT u.student_id FROM (SELECT student_id FROM f UNION SELECT student_id FROM r) u, bound"
            " WHERE bound.b IS NULL OR u.student_id <= bound.b ORDER BY 1",
            {"p": part, "a": row[0], "n": limit})]
        if not students:
            conn.execute("UPDATE eligibility_backlog SET after = NULL WHERE part = %s", (part,))
            return 0
        shared, _ = self._load_shared_cached(conn)
        self._rederive(conn, students, Ledger(), shared, None)
        conn.execute("UPDATE eligibility_backlog SET after = %s, done = done + %s WHERE part = %s",
                     (students[-1], len(students), part))
        return len(students)

    def _load_shared_cached(self, conn: Any) -> tuple[SharedFacts, str | None]:
        """The shared facts, from the cache when the stored token is the cached one. Called under the
        shared-facts lock (shared or exclusive): what is stored cannot change meanwhile, so a reload
        is cached at once (a batch that then changes them clears the token until it commits)."""
        row = conn.execute("SELECT value FROM eligibility_meta WHERE key = 'shared_token'").fetchone()
        token = row[0] if row else None
        if self._shared is None or self._token is None or token != self._token:
            rows = conn.execute("SELECT kind, key, fact FROM eligibility_shared").fetchall()
            self._shared, self._token = load_shared(rows), token
        return self._shared, token

    @staticmethod
    def _facts(conn: Any, student_ids: Iterable[str]) -> dict[str, StudentFacts]:
        ids = sorted(student_ids)
        if not ids:
            return {}
        rows = conn.execute("SELECT student_id, facts FROM eligibility_facts WHERE student_id = ANY(%s)",
                            (ids,)).fetchall()
        return {sid: StudentFacts.from_json(facts) for sid, facts in rows}

    @staticmethod
    def _check_scope(check_id: str, shared: SharedFacts) -> Impact:
        check = shared.checks.get(check_id)
        return Impact() if check is None else check_impact(check.student_ids, check.school_ids)

    @staticmethod
    def _write_facts(conn: Any, ledger: Ledger, student_ids: set[str], top: int | None) -> None:
        rows = []
        for sid in sorted(student_ids):
            facts = ledger.students.get(sid)
            if facts is not None:
                school = facts.registration.school_id if facts.registration else None
                rows.append((sid, school, Jsonb(facts.to_json()), top))
        if rows:  # one statement (executemany would run one INSERT per student)
            conn.execute(
                "INSERT INTO eligibility_facts (student_id, school_id, facts, last_position)"
                " SELECT * FROM unnest(%s::text[], %s::text[], %b::jsonb[], %s::bigint[])"
                " ON CONFLICT (student_id) DO UPDATE SET"
                " school_id = EXCLUDED.school_id, facts = EXCLUDED.facts,"
                " last_position = EXCLUDED.last_position",
                [list(column) for column in zip(*rows, strict=True)],
            )

    @staticmethod
    def _write_shared(conn: Any, shared: SharedFacts, dirty: dict[tuple[str, SharedKey], Any]) -> str:
        with conn.cursor() as cur:
            for (kind, key), record in dirty.items():
                row_key, fact = SHARED_KINDS[kind].encode(key, record)
                cur.execute(
                    "INSERT INTO eligibility_shared (kind, key, fact) VALUES (%s, %s, %s)"
                    " ON CONFLICT (kind, key) DO UPDATE SET fact = EXCLUDED.fact",
                    (kind, row_key, Jsonb(fact)),
                )
                if kind == "roster_part":
                    semester, import_id, part = key
                    cur.execute("DELETE FROM eligibility_roster_entries"
                                " WHERE semester = %s AND import_id = %s AND part = %s",
                                (semester, import_id, part))
                    _copy_roster_entries(cur, [(key, record)])
                    # the cache keeps parts without entries (they are read per student)
                    shared.rosters[semester][import_id][part] = record._replace(entries={})
            token = uuid.uuid4().hex
            cur.execute(_UPSERT_META, ("shared_token", token))
        shared.changed()
        return token

    @staticmethod
    def _affected(conn: Any, scope: _Scope) -> list[str]:
        students = set(scope.students)
        if scope.everyone:
            students.update(r[0] for r in conn.execute(
                "SELECT student_id FROM eligibility_facts"
                " UNION SELECT student_id FROM eligibility_roster_entries"))
        elif scope.schools:
            students.update(r[0] for r in conn.execute(
                "SELECT student_id FROM eligibility_facts WHERE school_id = ANY(%s)",
                (sorted(scope.schools),)))
        return sorted(students)

    def _rederive(self, conn: Any, students: list[str], ledger: Ledger, shared: SharedFacts,
                  top: int | None) -> None:
        if self.on_rederive is not None and students:
            self.on_rederive(students)
        for start in range(0, len(students), self.chunk):
            chunk = students[start:start + self.chunk]
            facts = {sid: ledger.students[sid] for sid in chunk if sid in ledger.students}
            facts.update(self._facts(conn, (sid for sid in chunk if sid not in facts)))
            entries: dict[tuple[str, str, int], dict[str, str]] = {}
            if shared.rosters:
                for semester, import_id, part, sid, digest in conn.execute(
                        "SELECT semester, import_id, part, student_id, id_number_hash"
                        " FROM eligibility_roster_entries WHERE student_id = ANY(%s)", (chunk,)):
                    entries.setdefault((semester, import_id, part), {})[sid] = digest
            view = shared.with_roster_entries(entries)
            rows: list[tuple[Any, ...]] = []
            keys: list[tuple[str, str]] = []
            for sid in chunk:
                for status in derive(sid, facts.get(sid), view, self.book):
                    keys.append((sid, status["semester"]))
                    rows.append((*_status_columns(status), Jsonb(status), top, contrib(status)))
            conn.execute(  # the semesters a student no longer has (a hashed anti-join, not a scan of keys)
                "DELETE FROM eligibility_status s WHERE s.student_id = ANY(%s)"
                " AND (s.student_id, s.semester) NOT IN"
                " (SELECT k.sid, k.sem FROM unnest(%s::text[], %s::text[]) AS k(sid, sem))",
                (chunk, [k[0] for k in keys], [k[1] for k in keys]))
            if rows:  # one statement per chunk (the summary counts' triggers run once per statement);
                # the statuses as a binary parameter (%b): the text form of a jsonb[] escapes with a regex
                conn.execute(
                    f"INSERT INTO eligibility_status ({_STATUS_COLUMNS}, contrib)"
                    " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
                    " %b::jsonb[], %s::bigint[], %s::text[])"
                    " ON CONFLICT (student_id, semester) DO UPDATE SET school_id = EXCLUDED.school_id,"
                    " county = EXCLUDED.county, city = EXCLUDED.city, status = EXCLUDED.status,"
                    " last_position = EXCLUDED.last_position, contrib = EXCLUDED.contrib, updated_at = now()"
                    " WHERE eligibility_status.status IS DISTINCT FROM EXCLUDED.status",
                    [list(column) for column in zip(*rows, strict=True)],
                )


class _Scope:
    def __init__(self) -> None:
        self.students: set[str] = set()
        self.schools: set[str] = set()
        self.everyone = False

    def add(self, found: Impact) -> None:
        self.students |= found.students
        self.schools |= found.schools
        self.everyone |= found.everyone or found.roster_semester is not None


_FAST_JSON: weakref.WeakSet[Any] = weakref.WeakSet()


def _orjson_dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


def _orjson_loads(data: Any) -> Any:
    return orjson.loads(data)


def _fast_json(conn: Any) -> None:
    """json/jsonb values of ``conn`` decoded and encoded by orjson (the facts and statuses: a few times
    faster than the json module; same values)."""
    if conn not in _FAST_JSON:
        set_json_loads(_orjson_loads, conn)
        set_json_dumps(_orjson_dumps, conn)
        _FAST_JSON.add(conn)


def partition(student_id: str) -> int:
    """The student's partition: as ``eligibility_part`` computes it in SQL (migrations/0103)."""
    return hashlib.md5(student_id.encode("utf-8")).digest()[0] % PARTITIONS


def _partitions_of(envelopes: Iterable[Envelope]) -> list[int] | None:
    """The partitions a batch writes, sorted; None when it writes shared facts (or may touch students
    beyond the ones its events name): such a batch takes the shared-facts lock exclusively."""
    parts: set[int] = set()
    for env in envelopes:
        fold = FOLDS.get(env.type)
        if fold is None:
            continue
        if fold.shared is not None:
            return None
        found = fold.impact(env.payload)
        if found.schools or found.everyone or found.roster_semester is not None or found.check_id is not None:
            return None
        parts.update(partition(sid) for sid in found.students)
    return sorted(parts)


def _lock_partitions(conn: Any, parts: list[int]) -> None:
    """The shared-facts lock in shared mode, then the partitions' locks in ascending order (every
    writer takes them in that order: no deadlock between writers)."""
    conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (LOCK_KEY,))
    if parts:
        conn.execute("SELECT pg_advisory_xact_lock(%s, p) FROM unnest(%s::int[]) AS p",
                     (PARTITION_LOCK, parts))


def contrib(status: dict[str, Any]) -> str:
    """What a status row adds to the summary counts (``eligibility_counts``), as the triggers read it from
    ``eligibility_status.contrib`` (migrations/0104): "month<US>metric<US>n" entries joined by <RS>. The same
    as ``eligibility_contrib(status)`` in SQL (0102), which the tests check on every row they write."""
    out = ["*\x1fstudents\x1f1"]
    for m in status.get("months") or ():
        month = m["month"]
        if m.get("checks"):
            out.append(f"{month}\x1fchecked\x1f1")
        if m.get("outcome") in ("passed", "failed", "pending"):
            out.append(f"{month}\x1f{m['outcome']}\x1f1")
    for g in status.get("grant") or ():
        month, decision = g["month"], g.get("decision")
        if decision == "granted":
            out.append(f"{month}\x1fgrant_granted\x1f1")
            out.append(f"{month}\x1fgrant_yuan\x1f{int(g.get('amount_yuan') or 0)}")
        elif decision == "pending":
            out.append(f"{month}\x1fgrant_pending\x1f1")
        elif decision == "withheld":
            rules = g.get("rules") or ()
            first = rules[0].get("rule") if rules and isinstance(rules[0], dict) else None
            out.append(f"{month}\x1fgrant_withheld\x1f1")
            out.append(f"{month}\x1fwithheld:{first if first is not None else ''}\x1f1")
    return "\x1e".join(out)


def _status_columns(status: dict[str, Any]) -> tuple[Any, ...]:
    return status["student_id"], status["semester"], status["school_id"], status["county"], status["city"]


def _copy_roster_entries(cur: Any, parts: Iterable[tuple[SharedKey, Any]]) -> None:
    with cur.copy("COPY eligibility_roster_entries (semester, import_id, part, student_id, id_number_hash)"
                  " FROM STDIN") as copy:
        for (semester, import_id, part), record in parts:
            for sid, digest in record.entries.items():
                copy.write_row((semester, import_id, part, sid, digest))


# --------------------------------------------------------------------------- rebuild


def rebuild(conn: Any, ledger: Ledger, book: PolicyBook | None = None, *, through_position: int) -> int:
    """Replace the whole projection with a replay's result, in one transaction (bootstrap, or
    after a rules or policy change). ``ledger`` must hold the log up to ``through_position``.

    Events up to that position may still arrive from the broker afterwards: folding a fact twice
    changes nothing, so they only cost a re-derivation. Returns the number of status rows.
    """
    book = book or load_policy_book()
    count = 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute("TRUNCATE eligibility_facts, eligibility_shared, eligibility_roster_entries,"
                     " eligibility_status, eligibility_counts")
        conn.execute("DELETE FROM eligibility_meta WHERE key = ANY(%s)", (_BACKLOG_KEYS,))
        conn.execute("DELETE FROM eligibility_backlog")
        with conn.cursor() as cur:
            with cur.copy("COPY eligibility_facts (student_id, school_id, facts, last_position)"
                          " FROM STDIN") as copy:
                for sid, facts in ledger.students.items():
                    school = facts.registration.school_id if facts.registration else None
                    copy.write_row((sid, school, json.dumps(facts.to_json(), ensure_ascii=False),
                                    through_position))
            cur.executemany("INSERT INTO eligibility_shared (kind, key, fact) VALUES (%s, %s, %s)",
                            [(kind, key, Jsonb(fact)) for kind, key, fact in shared_rows(ledger.shared)])
            _copy_roster_entries(cur, SHARED_KINDS["roster_part"].items(ledger.shared))
            with cur.copy(f"COPY eligibility_status ({_STATUS_COLUMNS}, contrib) FROM STDIN") as copy:
                for status in derive_all(ledger, book):  # with its count contribution, as batches write it
                    copy.write_row((*_status_columns(status), json.dumps(status, ensure_ascii=False),
                                    through_position, contrib(status)))
                    count += 1
            cur.execute(_UPSERT_META, ("shared_token", uuid.uuid4().hex))
            cur.execute(_UPSERT_META, ("rebuilt_through", str(through_position)))
    return count
