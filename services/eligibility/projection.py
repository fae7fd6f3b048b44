"""The live projection: statuses kept current in PostgreSQL as events arrive, and its queries.

Tables (``migrations/0101_eligibility_projection.sql``, created by :func:`ensure_schema`):
``eligibility_facts`` (per-student facts), ``eligibility_shared`` (checks, closings,
publications, roster parts), ``eligibility_roster_entries``, ``eligibility_status`` (the read
model: one row per student and semester) and ``eligibility_meta``.

:func:`apply_events` is idempotent and order-insensitive: in ONE transaction it records the
batch's event ids in ``processed_events`` (consumer ``eligibility``) and drops those seen
before, folds the new events into the stored facts, and re-derives exactly the students the
events can affect (:func:`domain.facts.impact`). A province-wide CheckOpened or a complete
roster import re-derives everyone (in chunks); a capture re-derives one student.
Batches are serialised by an advisory lock, so several consumers may call it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from contracts.envelope import Envelope
from services.eligibility.domain.facts import (
    CheckFact,
    Closing,
    Impact,
    Ledger,
    Publication,
    RosterPart,
    SharedFacts,
    StudentFacts,
    check_impact,
    impact,
)
from services.eligibility.domain.policy import PolicyBook
from services.eligibility.domain.rules import StudentStatus, derive
from services.eligibility.policyfile import load_policy_book
from services.eligibility.queries import school_month as _school_month
from services.eligibility.queries import semester_of_month

CONSUMER = "eligibility"
LOCK_KEY = 727_104
CHUNK = 2000
SCHEMA_FILE = Path(__file__).parent / "migrations" / "0101_eligibility_projection.sql"
SHARED_TYPES = ("CheckOpened", "CheckClosed", "MonthResultsPublished", "NationalRosterImported")


def ensure_schema(conn: Any) -> None:
    """Create the projection's tables if missing (the SQL is idempotent)."""
    with conn.transaction():
        conn.execute(SCHEMA_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class ApplyResult:
    received: int
    applied: int
    duplicates: int
    rederived: int


# --------------------------------------------------------------------------- shared facts <-> rows


def _shared_row(kind: str, record: Any, extra: dict[str, Any] | None = None) -> Any:
    values = [sorted(v) if isinstance(v, frozenset) else v for v in record]
    if kind == "roster_part":
        values = list(record[:3])  # ts, eid, parts (entries live in their own table)
    return Jsonb({"v": values, **(extra or {})})


def _load_shared(rows: Iterable[tuple[str, str, dict[str, Any]]]) -> SharedFacts:
    shared = SharedFacts()
    for kind, key, fact in rows:
        v = fact["v"]
        if kind == "check":
            shared.checks[key] = CheckFact(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                                           None if v[8] is None else frozenset(v[8]),
                                           None if v[9] is None else frozenset(v[9]))
        elif kind == "closing":
            shared.closings[key] = Closing(*v)
        elif kind == "publication":
            shared.publications[(fact["school_id"], fact["month"])] = Publication(*v)
        elif kind == "roster_part":
            parts = shared.rosters.setdefault(fact["semester"], {}).setdefault(fact["import_id"], {})
            parts[int(fact["part"])] = RosterPart(v[0], v[1], v[2], {})
    return shared


def _shared_slot(envelope: Envelope, shared: SharedFacts) -> tuple[str, str, Callable[[], Any], dict[str, Any]]:
    """(kind, key, read current record, extra columns) of the shared fact an event writes."""
    p = envelope.payload
    if envelope.type == "CheckOpened":
        return "check", p["check_id"], lambda: shared.checks.get(p["check_id"]), {}
    if envelope.type == "CheckClosed":
        return "closing", p["check_id"], lambda: shared.closings.get(p["check_id"]), {}
    if envelope.type == "MonthResultsPublished":
        key = (p["school_id"], p["month"])
        return "publication", json.dumps(key), lambda: shared.publications.get(key), \
            {"school_id": p["school_id"], "month": p["month"]}
    semester, import_id, part = p["semester"], p["import_id"], int(p["part"])
    return "roster_part", json.dumps([semester, import_id, part]), \
        lambda: shared.rosters.get(semester, {}).get(import_id, {}).get(part), \
        {"semester": semester, "import_id": import_id, "part": part}


# --------------------------------------------------------------------------- the projection


class Projection:
    """Applies batches of envelopes to the tables. Keeps shared facts cached between batches
    (reloaded whenever ``eligibility_meta.shared_token`` changed, e.g. by another process)."""

    def __init__(self, book: PolicyBook | None = None, chunk: int = CHUNK) -> None:
        self.book = book or load_policy_book()
        self.chunk = chunk
        self._shared: SharedFacts | None = None
        self._token: str | None = None
        self._pending_token: str | None = None

    def apply_events(self, conn: Any, envelopes: Sequence[Envelope]) -> ApplyResult:
        """Apply one batch in one transaction. The cached shared facts are trusted again only
        once the batch has committed: a failed batch (or an outer rollback, which changes the
        stored token back) makes the next batch reload them."""
        self._pending_token = self._token
        try:
            with conn.transaction():
                result = self._apply(conn, list(envelopes))
        except BaseException:
            self._shared, self._token = None, None
            raise
        self._token = self._pending_token
        return result

    # ------------------------------------------------------------------ steps

    def _apply(self, conn: Any, envelopes: list[Envelope]) -> ApplyResult:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        unique = {e.event_id: e for e in envelopes}
        fresh = {r[0] for r in conn.execute(
            "INSERT INTO processed_events (consumer, event_id, position)"
            " SELECT %s, e, p FROM unnest(%s::uuid[], %s::bigint[]) AS t(e, p)"
            " ON CONFLICT DO NOTHING RETURNING event_id",
            (CONSUMER, list(unique), [e.position for e in unique.values()]),
        ).fetchall()}
        new = [e for e in unique.values() if e.event_id in fresh]
        if not new:
            return ApplyResult(len(envelopes), 0, len(envelopes), 0)
        top = max((e.position or 0 for e in new), default=0) or None

        shared, token = self._load_shared_cached(conn)
        self._token = None  # the cache is in flux until this batch commits (see apply_events)
        ledger = Ledger()
        ledger.shared = shared
        own = {e.payload["student_id"] for e in new if e.type not in SHARED_TYPES and impact(e.type, e.payload)}
        ledger.students.update(self._facts(conn, own))

        scope = _Scope()
        dirty: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}
        for env in new:
            found = impact(env.type, env.payload)
            if found is None:
                continue
            if env.type == "CheckOpened":
                scope.add(self._resolve(Impact(check_id=env.payload["check_id"]), shared))
            if env.type in SHARED_TYPES:
                kind, key, read, extra = _shared_slot(env, shared)
                before = read()
                ledger.apply(env)
                after = read()
                if after is not before:
                    dirty[(kind, key)] = (after, extra)
            else:
                ledger.apply(env)
            scope.add(self._resolve(found, shared))

        self._write_facts(conn, ledger, own, top)
        if dirty:
            token = self._write_shared(conn, shared, dirty)
        students = self._affected(conn, scope)
        self._rederive(conn, students, ledger, shared, top)
        self._pending_token = token
        return ApplyResult(len(envelopes), len(new), len(envelopes) - len(new), len(students))

    def _load_shared_cached(self, conn: Any) -> tuple[SharedFacts, str | None]:
        row = conn.execute("SELECT value FROM eligibility_meta WHERE key = 'shared_token'").fetchone()
        token = row[0] if row else None
        if self._shared is None or self._token is None or token != self._token:
            self._shared = _load_shared(conn.execute("SELECT kind, key, fact FROM eligibility_shared").fetchall())
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
    def _resolve(found: Impact, shared: SharedFacts) -> Impact:
        if found.check_id is not None:
            check = shared.checks.get(found.check_id)
            return Impact() if check is None else check_impact(check.student_ids, check.school_ids)
        return found

    @staticmethod
    def _write_facts(conn: Any, ledger: Ledger, student_ids: set[str], top: int | None) -> None:
        rows = []
        for sid in sorted(student_ids):
            facts = ledger.students.get(sid)
            if facts is not None:
                school = facts.registration.school_id if facts.registration else None
                rows.append((sid, school, Jsonb(facts.to_json()), top))
        if rows:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO eligibility_facts (student_id, school_id, facts, last_position)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (student_id) DO UPDATE SET"
                    " school_id = EXCLUDED.school_id, facts = EXCLUDED.facts, last_position = EXCLUDED.last_position",
                    rows,
                )

    def _write_shared(self, conn: Any, shared: SharedFacts,
                      dirty: dict[tuple[str, str], tuple[Any, dict[str, Any]]]) -> str:
        with conn.cursor() as cur:
            for (kind, key), (record, extra) in dirty.items():
                cur.execute(
                    "INSERT INTO eligibility_shared (kind, key, fact) VALUES (%s, %s, %s)"
                    " ON CONFLICT (kind, key) DO UPDATE SET fact = EXCLUDED.fact",
                    (kind, key, _shared_row(kind, record, extra)),
                )
                if kind == "roster_part":
                    semester, import_id, part = extra["semester"], extra["import_id"], extra["part"]
                    cur.execute("DELETE FROM eligibility_roster_entries"
                                " WHERE semester = %s AND import_id = %s AND part = %s", (semester, import_id, part))
                    with cur.copy("COPY eligibility_roster_entries (semester, import_id, part, student_id,"
                                  " id_number_hash) FROM STDIN") as copy:
                        for sid, digest in record.entries.items():
                            copy.write_row((semester, import_id, part, sid, digest))
                    # the cache keeps parts without entries (they are read per student)
                    shared.rosters[semester][import_id][part] = record._replace(entries={})
            token = uuid.uuid4().hex
            cur.execute("INSERT INTO eligibility_meta (key, value) VALUES ('shared_token', %s)"
                        " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (token,))
        shared.changed()
        return token

    @staticmethod
    def _affected(conn: Any, scope: _Scope) -> list[str]:
        students = set(scope.students)
        if scope.everyone:
            students.update(r[0] for r in conn.execute(
                "SELECT student_id FROM eligibility_facts UNION SELECT student_id FROM eligibility_roster_entries"))
        elif scope.schools:
            students.update(r[0] for r in conn.execute(
                "SELECT student_id FROM eligibility_facts WHERE school_id = ANY(%s)", (sorted(scope.schools),)))
        return sorted(students)

    def _rederive(self, conn: Any, students: list[str], ledger: Ledger, shared: SharedFacts,
                  top: int | None) -> None:
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
            keys: list[str] = []
            for sid in chunk:
                for status in derive(sid, facts.get(sid), view, self.book):
                    keys.append(f"{sid}\x1f{status['semester']}")
                    rows.append((sid, status["semester"], status["school_id"], status["county"], status["city"],
                                 Jsonb(status), top))
            conn.execute(
                "DELETE FROM eligibility_status WHERE student_id = ANY(%s)"
                " AND NOT (student_id || chr(31) || semester = ANY(%s))", (chunk, keys))
            if rows:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO eligibility_status (student_id, semester, school_id, county, city, status,"
                        " last_position) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT (student_id, semester) DO UPDATE SET school_id = EXCLUDED.school_id,"
                        " county = EXCLUDED.county, city = EXCLUDED.city, status = EXCLUDED.status,"
                        " last_position = EXCLUDED.last_position, updated_at = now()"
                        " WHERE eligibility_status.status IS DISTINCT FROM EXCLUDED.status",
                        rows,
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


_default: Projection | None = None


def apply_events(conn: Any, envelopes: Sequence[Envelope], projection: Projection | None = None) -> ApplyResult:
    """Apply a batch (any order, duplicates allowed) in one transaction. The service's entry point."""
    global _default
    if projection is None:
        if _default is None:
            _default = Projection()
        projection = _default
    return projection.apply_events(conn, envelopes)


# --------------------------------------------------------------------------- rebuild


def rebuild(conn: Any, ledger: Ledger, book: PolicyBook | None = None, *, through_position: int) -> int:
    """Replace the whole projection with a replay's result, in one transaction (bootstrap, or
    after a rules or policy change). ``ledger`` must hold the log up to ``through_position``.

    Events up to that position may still arrive from the broker afterwards: folding a fact twice
    changes nothing, so they only cost a re-derivation. Returns the number of status rows.
    """
    book = book or load_policy_book()
    shared = ledger.shared
    count = 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute("TRUNCATE eligibility_facts, eligibility_shared, eligibility_roster_entries, eligibility_status")
        with conn.cursor() as cur:
            with cur.copy("COPY eligibility_facts (student_id, school_id, facts, last_position) FROM STDIN") as copy:
                for sid, facts in ledger.students.items():
                    school = facts.registration.school_id if facts.registration else None
                    copy.write_row((sid, school, json.dumps(facts.to_json(), ensure_ascii=False), through_position))
            rows: list[tuple[str, str, Any]] = []
            rows += [("check", k, _shared_row("check", v)) for k, v in shared.checks.items()]
            rows += [("closing", k, _shared_row("closing", v)) for k, v in shared.closings.items()]
            rows += [("publication", json.dumps(list(k)), _shared_row("publication", v,
                                                                       {"school_id": k[0], "month": k[1]}))
                     for k, v in shared.publications.items()]
            for semester, imports in shared.rosters.items():
                for import_id, parts in imports.items():
                    for part, record in parts.items():
                        extra = {"semester": semester, "import_id": import_id, "part": part}
                        rows.append(("roster_part", json.dumps([semester, import_id, part]),
                                     _shared_row("roster_part", record, extra)))
            cur.executemany("INSERT INTO eligibility_shared (kind, key, fact) VALUES (%s, %s, %s)", rows)
            with cur.copy("COPY eligibility_roster_entries (semester, import_id, part, student_id, id_number_hash)"
                          " FROM STDIN") as copy:
                for semester, imports in shared.rosters.items():
                    for import_id, parts in imports.items():
                        for part, record in parts.items():
                            for sid, digest in record.entries.items():
                                copy.write_row((semester, import_id, part, sid, digest))
            with cur.copy("COPY eligibility_status (student_id, semester, school_id, county, city, status,"
                          " last_position) FROM STDIN") as copy:
                for sid in sorted(ledger.student_ids()):
                    for status in derive(sid, ledger.students.get(sid), shared, book):
                        copy.write_row((sid, status["semester"], status["school_id"], status["county"],
                                        status["city"], json.dumps(status, ensure_ascii=False), through_position))
                        count += 1
            for key, value in (("shared_token", uuid.uuid4().hex), ("rebuilt_through", str(through_position))):
                cur.execute("INSERT INTO eligibility_meta (key, value) VALUES (%s, %s)"
                            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, value))
    return count


def rebuilt_through(conn: Any) -> int:
    row = conn.execute("SELECT value FROM eligibility_meta WHERE key = 'rebuilt_through'").fetchone()
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------- queries


def student_status(conn: Any, student_id: str, semester: str | None = None) -> list[StudentStatus]:
    """One student's statuses (every semester, or one), oldest semester first."""
    sql = "SELECT status FROM eligibility_status WHERE student_id = %s"
    params: list[Any] = [student_id]
    if semester is not None:
        sql += " AND semester = %s"
        params.append(semester)
    rows = conn.execute(sql + " ORDER BY semester", params).fetchall()
    return sorted((r[0] for r in rows), key=lambda s: (int(s["semester"][:4]), s["semester"][5:] == "autumn"))


def school_month(conn: Any, school_id: str, month: str) -> dict[str, Any]:
    """One school's month: counts by check status and the student list (names masked)."""
    rows = conn.execute("SELECT status FROM eligibility_status WHERE semester = %s AND school_id = %s",
                        (semester_of_month(month), school_id)).fetchall()
    return _school_month((r[0] for r in rows), school_id, month)


def province_summary(conn: Any, month: str, *, school_id: str | None = None, county: str | None = None,
                     city: str | None = None) -> dict[str, Any]:
    """Per month: students, checked, passed, failed, pending, grant paid (count, yuan), withheld by reason."""
    where = ["s.semester = %(semester)s"]
    params: dict[str, Any] = {"semester": semester_of_month(month), "month": month}
    for column, value in (("school_id", school_id), ("county", county), ("city", city)):
        if value is not None:
            where.append(f"s.{column} = %({column})s")
            params[column] = value
    base = (
        " FROM eligibility_status s"
        " LEFT JOIN LATERAL (SELECT e AS m FROM jsonb_array_elements(s.status->'months') e"
        "   WHERE e->>'month' = %(month)s LIMIT 1) mm ON true"
        " LEFT JOIN LATERAL (SELECT e AS g FROM jsonb_array_elements(s.status->'grant') e"
        "   WHERE e->>'month' = %(month)s LIMIT 1) gg ON true"
        " WHERE " + " AND ".join(where)
    )
    row = conn.execute(
        "SELECT count(*),"
        " count(*) FILTER (WHERE jsonb_array_length(m->'checks') > 0),"
        " count(*) FILTER (WHERE m->>'outcome' = 'passed'),"
        " count(*) FILTER (WHERE m->>'outcome' = 'failed'),"
        " count(*) FILTER (WHERE m->>'outcome' = 'pending'),"
        " count(*) FILTER (WHERE g->>'decision' = 'granted'),"
        " coalesce(sum((g->>'amount_yuan')::int) FILTER (WHERE g->>'decision' = 'granted'), 0),"
        " count(*) FILTER (WHERE g->>'decision' = 'pending'),"
        " count(*) FILTER (WHERE g->>'decision' = 'withheld')" + base, params).fetchone()
    reasons = conn.execute(
        "SELECT g->'rules'->0->>'rule', count(*)" + base + " AND g->>'decision' = 'withheld' GROUP BY 1 ORDER BY 1",
        params).fetchall()
    names = ("students", "checked", "passed", "failed", "pending", "grant_granted", "grant_yuan",
             "grant_pending", "grant_withheld")
    return {"month": month, "semester": params["semester"], **{n: int(v) for n, v in zip(names, row, strict=True)},
            "withheld_by_reason": {r: int(c) for r, c in reasons}}


# --------------------------------------------------------------------------- audit support


def high_water(conn: Any) -> int:
    """The highest log position the projection reflects (processed, or covered by a rebuild)."""
    row = conn.execute("SELECT coalesce(max(position), 0) FROM processed_events WHERE consumer = %s",
                       (CONSUMER,)).fetchone()
    return max(int(row[0]), rebuilt_through(conn))


def processed_count(conn: Any, after: int, up_to: int) -> int:
    """Events with ``after < position <= up_to`` the projection has processed."""
    row = conn.execute("SELECT count(*) FROM processed_events WHERE consumer = %s AND position > %s"
                       " AND position <= %s", (CONSUMER, after, up_to)).fetchone()
    return int(row[0])


def iter_statuses(conn: Any) -> Iterator[tuple[str, str, StudentStatus]]:
    """Every projection row ordered by (student_id, semester), through a server-side cursor."""
    with conn.transaction(), conn.cursor(name="eligibility_verify") as cur:
        cur.itersize = 2000
        cur.execute("SELECT student_id, semester, status FROM eligibility_status ORDER BY student_id, semester")
        yield from cur


def differences(replayed: Iterable[StudentStatus], live: Iterable[tuple[str, str, StudentStatus]]) -> Iterator[str]:
    """Every difference between a replay and the projection; both ordered by (student_id, semester)."""
    left = iter(replayed)
    right = iter(live)
    a = next(left, None)
    b = next(right, None)
    while a is not None or b is not None:
        ka = (a["student_id"], a["semester"]) if a is not None else None
        kb = (b[0], b[1]) if b is not None else None
        if kb is None or (ka is not None and ka < kb):
            yield f"{ka[0]} {ka[1]}: missing from the projection"  # type: ignore[index]
            a = next(left, None)
        elif ka is None or kb < ka:
            yield f"{kb[0]} {kb[1]}: in the projection but not in the replay"
            b = next(right, None)
        else:
            for path, x, y in _diff(a, b[2], ""):  # type: ignore[index]
                yield f"{ka[0]} {ka[1]}: {path or '(status)'}: replay={_short(x)} projection={_short(y)}"
            a, b = next(left, None), next(right, None)


def _diff(x: Any, y: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(x, dict) and isinstance(y, dict):
        for key in sorted(set(x) | set(y)):
            yield from _diff(x.get(key, "<absent>"), y.get(key, "<absent>"), f"{path}.{key}" if path else key)
    elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            yield from _diff(u, v, f"{path}[{i}]")
    elif x != y:
        yield path, x, y


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:197] + "..."
