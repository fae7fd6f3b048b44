"""Audits the live projection against a replay of the log (``replay --verify``): how far the
projection has read, and every difference between its rows and the statuses the log gives.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from services.eligibility.domain.calendar import CalendarError, semester_key
from services.eligibility.domain.rules import StudentStatus
from services.eligibility.projection.writer import CONSUMER

Row = tuple[str, str, StudentStatus]


def rebuilt_through(conn: Any) -> int:
    """The log position the last :func:`~.writer.rebuild` covered (0: never rebuilt)."""
    row = conn.execute("SELECT value FROM eligibility_meta WHERE key = 'rebuilt_through'").fetchone()
    return int(row[0]) if row else 0


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


def iter_statuses(conn: Any) -> Iterator[Row]:
    """Every projection row as ``(student_id, semester, status)``, ordered by student id in byte
    order (as a replay orders them, whatever the database's collation), server-side cursor."""
    with conn.transaction(), conn.cursor(name="eligibility_verify") as cur:
        cur.itersize = 2000
        cur.execute('SELECT student_id, semester, status FROM eligibility_status'
                    ' ORDER BY student_id COLLATE "C", semester COLLATE "C"')
        yield from cur


def differences(replayed: Iterable[StudentStatus], live: Iterable[Row]) -> Iterator[str]:
    """Every difference between a replay and the projection, student by student: a status the
    projection lacks, a projection row no logged event explains (a student or a semester the
    replay does not produce), and every field that differs. Both inputs are ordered by student
    id (byte order); the semesters of one student may come in any order."""
    left = _by_student((s["student_id"], s["semester"], s) for s in replayed)
    right = _by_student(live)
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            yield from _compare(a[0], a[1], {})
            a = next(left, None)
        elif a is None or b[0] < a[0]:
            yield from _compare(b[0], {}, b[1])
            b = next(right, None)
        else:
            yield from _compare(a[0], a[1], b[1])
            a, b = next(left, None), next(right, None)


def _by_student(rows: Iterable[Row]) -> Iterator[tuple[str, dict[str, StudentStatus]]]:
    previous: str | None = None
    for student_id, group in itertools.groupby(rows, key=lambda r: r[0]):
        if previous is not None and student_id <= previous:
            raise ValueError(f"statuses not ordered by student id: {student_id!r} after {previous!r}")
        previous = student_id
        yield student_id, {semester: status for _, semester, status in group}


def _semester_order(semester: str) -> tuple[int, str]:
    try:
        return semester_key(semester), semester
    except CalendarError:  # a forged row may hold anything
        return 1 << 30, semester


def _compare(student_id: str, replayed: dict[str, StudentStatus],
             live: dict[str, StudentStatus]) -> Iterator[str]:
    for semester in sorted(replayed.keys() | live.keys(), key=_semester_order):
        where = f"{student_id} {semester}"
        if semester not in live:
            yield f"{where}: missing from the projection"
        elif semester not in replayed:
            yield f"{where}: in the projection but not in the replay"
        else:
            for path, x, y in _diff(replayed[semester], live[semester], ""):
                yield f"{where}: {path or '(status)'}: replay={_short(x)} projection={_short(y)}"


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
