"""The fold: envelopes in, facts out. No decision is taken here (see :mod:`.rules`).

Every fact is kept so that folding is *order-insensitive and idempotent*: a fact is either a
set member keyed by ``event_id``, or a register per natural key that keeps the greatest
``(occurred_at, event_id)`` (last writer wins, with a total tie-break). So the same events, in
any order, any number of times, give the same facts, and no list of seen event ids is needed
(memory grows with students, not with the log).

Per-student facts live in :class:`StudentFacts`; facts that concern many students (checks,
publications, the national roster) live in :class:`SharedFacts`. A :class:`Ledger` holds both.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from contracts.envelope import Envelope
from services.eligibility.domain.calendar import SHANGHAI

Payload = Mapping[str, Any]


def instant(value: str) -> float:
    """ISO-8601 instant -> epoch seconds (an instant without offset is read as Asia/Shanghai)."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=SHANGHAI)
    return parsed.timestamp()


# --------------------------------------------------------------------------- fact records
# Every record starts with (ts, eid): ts = occurred_at as epoch seconds, eid = event_id.


class Registration(NamedTuple):
    ts: float
    eid: str
    school_id: str
    city: str
    county: str
    grade: int
    class_name: str
    name_masked: str
    id_number_hash: str
    proposed_aid: bool


class Enrolment(NamedTuple):
    ts: float
    eid: str
    semester: str
    mode: str


class Capture(NamedTuple):
    ts: float
    eid: str


class Absence(NamedTuple):
    ts: float
    eid: str
    reason: str
    reported_ts: float
    internship_starts_on: str | None
    internship_ends_on: str | None


class Appeal(NamedTuple):
    ts: float
    eid: str
    month: str
    objected_on: str
    school_id: str


class Resolution(NamedTuple):
    ts: float
    eid: str
    decision: str


class Plan(NamedTuple):
    ts: float
    eid: str
    kind: str
    starts_on: str
    ends_on: str
    filed_on: str


class Placement(NamedTuple):
    ts: float
    eid: str
    grade: int
    starts_on: str
    ends_on: str
    filed_on: str | None


class PlacementChange(NamedTuple):
    ts: float
    eid: str
    placement_id: str
    changes: tuple[tuple[str, str], ...]


class Hardship(NamedTuple):
    ts: float
    eid: str
    level: str
    semester: str


class Revocation(NamedTuple):
    ts: float
    eid: str
    semester: str


class CheckFact(NamedTuple):
    ts: float
    eid: str
    check_id: str
    kind: str
    semester: str
    month: str
    opens_ts: float
    closes_ts: float
    school_ids: frozenset[str] | None
    student_ids: frozenset[str] | None


class Closing(NamedTuple):
    ts: float
    eid: str
    closed_ts: float


class Publication(NamedTuple):
    published_on: str
    eid: str


class RosterPart(NamedTuple):
    ts: float
    eid: str
    parts: int
    entries: Mapping[str, str]


_NONE: Mapping[str, Any] = MappingProxyType({})


def captures_of(value: Capture | tuple[Capture, ...] | None) -> tuple[Capture, ...]:
    """The verified captures of one check, as a tuple."""
    if value is None:
        return ()
    return (value,) if type(value) is Capture else value  # type: ignore[return-value]


def _plain(value: Any) -> Any:
    return {} if value is _NONE else value


def _own(facts: StudentFacts, name: str) -> dict[str, Any]:
    """The writable table ``name`` of ``facts`` (created on first write)."""
    table = getattr(facts, name)
    if table is _NONE:
        table = {}
        setattr(facts, name, table)
    return table  # type: ignore[no-any-return]


def _lww(table: dict[Any, Any], key: Any, record: Any) -> None:
    """Keep the record with the greatest (ts, eid): last writer wins, ties broken by event id."""
    old = table.get(key)
    if old is None or (record[0], record[1]) > (old[0], old[1]):
        table[key] = record


class StudentFacts:
    """Everything the log says about one student, as compact records."""

    __slots__ = (
        "registration", "first_registered_ts", "enrolments", "captures", "absences", "forced",
        "appeals", "resolutions", "plans", "placements", "placement_changes", "hardship", "revocations",
    )

    def __init__(self) -> None:
        self.registration: Registration | None = None
        self.first_registered_ts: float | None = None
        # Tables start as one shared empty mapping and become dicts on first write (_own):
        # most students have no absence, appeal, plan, placement... (memory per student).
        self.enrolments: Mapping[str, Enrolment] = _NONE
        # check id -> the verified capture, or a sorted tuple of them when there are several
        self.captures: Mapping[str, Capture | tuple[Capture, ...]] = _NONE
        self.absences: Mapping[str, Absence] = _NONE
        self.forced: Mapping[str, Capture] = _NONE
        self.appeals: Mapping[str, Appeal] = _NONE
        self.resolutions: Mapping[str, Resolution] = _NONE
        self.plans: Mapping[str, Plan] = _NONE
        self.placements: Mapping[str, Placement] = _NONE
        self.placement_changes: Mapping[str, PlacementChange] = _NONE
        self.hardship: Mapping[str, Hardship] = _NONE
        self.revocations: Mapping[str, Revocation] = _NONE

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StudentFacts) and all(
            _plain(getattr(self, s)) == _plain(getattr(other, s)) for s in self.__slots__
        )

    __hash__ = None  # type: ignore[assignment]

    # -- serialisation for the live projection (JSON-ready, round-trips exactly)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.registration is not None:
            out["registration"] = list(self.registration)
            out["first_registered_ts"] = self.first_registered_ts
        for name in ("enrolments", "absences", "forced", "appeals", "resolutions", "plans",
                     "placements", "hardship", "revocations"):
            table: dict[str, tuple[Any, ...]] = getattr(self, name)
            if table:
                out[name] = {k: list(v) for k, v in table.items()}
        if self.captures:
            out["captures"] = {k: [list(c) for c in captures_of(v)] for k, v in self.captures.items()}
        if self.placement_changes:
            out["placement_changes"] = {
                k: [v.ts, v.eid, v.placement_id, [list(c) for c in v.changes]]
                for k, v in self.placement_changes.items()
            }
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StudentFacts:
        f = cls()
        if "registration" in data:
            f.registration = Registration(*data["registration"])
            f.first_registered_ts = data["first_registered_ts"]
        records: dict[str, Callable[..., Any]] = {
            "enrolments": Enrolment, "absences": Absence, "forced": Capture, "appeals": Appeal,
            "resolutions": Resolution, "plans": Plan, "placements": Placement, "hardship": Hardship,
            "revocations": Revocation,
        }
        for name, make in records.items():
            for k, v in data.get(name, {}).items():
                key = sys.intern(k) if name in ("absences", "forced") else k
                _own(f, name)[key] = make(*v)
        for k, v in data.get("captures", {}).items():
            _own(f, "captures")[sys.intern(k)] = Capture(*v[0]) if len(v) == 1 else tuple(Capture(*c) for c in v)
        for k, v in data.get("placement_changes", {}).items():
            _own(f, "placement_changes")[k] = PlacementChange(v[0], v[1], v[2], tuple((a, b) for a, b in v[3]))
        return f


class SharedFacts:
    """Facts about many students: checks, their closing, results publications, national rosters."""

    def __init__(self) -> None:
        self.checks: dict[str, CheckFact] = {}
        self.closings: dict[str, Closing] = {}
        self.publications: dict[tuple[str, str], Publication] = {}
        # semester -> import_id -> part number -> part
        self.rosters: dict[str, dict[str, dict[int, RosterPart]]] = {}
        self._index: _CheckIndex | None = None
        self._winners: dict[str, tuple[str, list[RosterPart]] | None] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SharedFacts) and (
            self.checks, self.closings, self.publications, self.rosters
        ) == (other.checks, other.closings, other.publications, other.rosters)

    __hash__ = None  # type: ignore[assignment]

    def changed(self) -> None:
        self._index = None
        self._winners.clear()

    # -- checks

    def checks_for(self, student_id: str, school_id: str | None) -> list[CheckFact]:
        """Every check (routine or targeted) that the student is expected to take part in."""
        index = self._index
        if index is None:
            index = self._index = _CheckIndex(self.checks.values())
        found: list[CheckFact] = list(index.everyone)
        if school_id is not None:
            found.extend(index.by_school.get(school_id, ()))
        for check in index.by_student.get(student_id, ()):
            if check.school_ids is None or (school_id is not None and school_id in check.school_ids):
                found.append(check)
        return found

    # -- roster

    def roster_winner(self, semester: str) -> tuple[str, list[RosterPart]] | None:
        """The import in force for ``semester``: the latest *complete* one (all parts received)."""
        if semester in self._winners:
            return self._winners[semester]
        best: tuple[tuple[float, str], str, list[RosterPart]] | None = None
        for import_id, parts in self.rosters.get(semester, {}).items():
            declared = max(p.parts for p in parts.values())
            if set(parts) != set(range(1, declared + 1)):
                continue
            key = (max(p.ts for p in parts.values()), import_id)
            if best is None or key > best[0]:
                best = (key, import_id, [parts[i] for i in sorted(parts)])
        winner = None if best is None else (best[1], best[2])
        self._winners[semester] = winner
        return winner

    def roster_semesters(self) -> list[str]:
        return sorted(self.rosters)

    def with_roster_entries(self, entries: Mapping[tuple[str, str, int], Mapping[str, str]]) -> SharedFacts:
        """A view sharing every fact but the roster entries, taken from ``entries``
        (keyed by semester, import id, part). The live projection loads entries per student."""
        view = SharedFacts()
        view.checks, view.closings, view.publications = self.checks, self.closings, self.publications
        if self._index is None:
            self._index = _CheckIndex(self.checks.values())
        view._index = self._index
        view.rosters = {
            semester: {
                import_id: {n: p._replace(entries=entries.get((semester, import_id, n), {})) for n, p in parts.items()}
                for import_id, parts in imports.items()
            }
            for semester, imports in self.rosters.items()
        }
        return view


class _CheckIndex:
    def __init__(self, checks: Iterable[CheckFact]) -> None:
        self.everyone: list[CheckFact] = []
        self.by_school: dict[str, list[CheckFact]] = {}
        self.by_student: dict[str, list[CheckFact]] = {}
        for check in checks:
            if check.student_ids is not None:
                for sid in check.student_ids:
                    self.by_student.setdefault(sid, []).append(check)
            elif check.school_ids is not None:
                for school in check.school_ids:
                    self.by_school.setdefault(school, []).append(check)
            else:
                self.everyone.append(check)


# --------------------------------------------------------------------------- the fold


class Ledger:
    """The whole log folded into facts. ``wanted`` keeps only some students (replay filters)."""

    def __init__(self, wanted: Callable[[str], bool] | None = None) -> None:
        self.students: dict[str, StudentFacts] = {}
        self.shared = SharedFacts()
        self.wanted = wanted

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ledger) and self.students == other.students and self.shared == other.shared

    __hash__ = None  # type: ignore[assignment]

    def student(self, student_id: str) -> StudentFacts | None:
        if self.wanted is not None and not self.wanted(student_id):
            return None
        facts = self.students.get(student_id)
        if facts is None:
            facts = self.students[student_id] = StudentFacts()
        return facts

    def apply(self, envelope: Envelope) -> None:
        """Fold one envelope (already upcast to the current schema version)."""
        self.apply_fields(envelope.type, str(envelope.event_id), envelope.occurred_at.timestamp(),
                          envelope.payload)

    def apply_fields(self, event_type: str, event_id: str, occurred_ts: float, payload: Payload) -> None:
        """The hot path of :meth:`apply`, for readers that skip building envelopes."""
        handler = HANDLERS.get(event_type)
        if handler is not None:
            handler(self, event_id, occurred_ts, payload)

    def student_ids(self) -> set[str]:
        """Students known from their own events or from a national roster."""
        ids = set(self.students)
        for imports in self.shared.rosters.values():
            for parts in imports.values():
                for part in parts.values():
                    ids.update(part.entries)
        return ids


def apply(ledger: Ledger, envelope: Envelope) -> Ledger:
    """Functional form of :meth:`Ledger.apply` (mutates and returns ``ledger``)."""
    ledger.apply(envelope)
    return ledger


def fold(envelopes: Iterable[Envelope], ledger: Ledger | None = None) -> Ledger:
    ledger = Ledger() if ledger is None else ledger
    for envelope in envelopes:
        ledger.apply(envelope)
    return ledger


# --------------------------------------------------------------------------- handlers

Handler = Callable[[Ledger, str, float, Payload], None]


def _registered(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    f = ledger.student(p["student_id"])
    if f is None:
        return
    school = p.get("school") or {"school_id": p["school_id"], "city": "unknown", "county": "unknown"}
    _lww_attr(f, "registration", Registration(
        ts, eid, sys.intern(school["school_id"]), sys.intern(school["city"]), sys.intern(school["county"]),
        int(p["grade"]), sys.intern(p["class_name"]), sys.intern(p["name_masked"]), p["id_number_hash"],
        bool(p["proposed_aid"]),
    ))
    if f.first_registered_ts is None or ts < f.first_registered_ts:
        f.first_registered_ts = ts


def _lww_attr(f: StudentFacts, name: str, record: Registration) -> None:
    old: Registration | None = getattr(f, name)
    if old is None or (record.ts, record.eid) > (old.ts, old.eid):
        setattr(f, name, record)


def _enrolled(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    f = ledger.student(p["student_id"])
    if f is not None:
        _own(f, "enrolments")[eid] = Enrolment(ts, eid, sys.intern(p["semester"]), p["mode"])


def _capture_verified(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    check_id = p.get("check_id")
    if not check_id or p["purpose"] != "spot_check":
        return
    f = ledger.students.get(p["student_id"]) if ledger.wanted is None else None
    if f is None:
        f = ledger.student(p["student_id"])
        if f is None:
            return
    check_id = sys.intern(check_id)
    known = f.captures.get(check_id)
    if known is None:  # the common case: one capture per check, stored bare
        _own(f, "captures")[check_id] = Capture(ts, eid)
        return
    several = captures_of(known)
    if all(c.eid != eid for c in several):
        _own(f, "captures")[check_id] = tuple(sorted((*several, Capture(ts, eid))))


def _absence(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    f = ledger.student(p["student_id"])
    if f is not None:
        _lww(_own(f, "absences"), sys.intern(p["check_id"]), Absence(
            ts, eid, p["reason"], instant(p["reported_at"]),
            p.get("internship_starts_on"), p.get("internship_ends_on"),
        ))


def _forced(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    f = ledger.student(p["student_id"])
    if f is None:
        return
    check_id = sys.intern(p["check_id"])
    old = f.forced.get(check_id)
    record = Capture(ts, eid)
    if old is None or record < old:  # the first force-pass is the one on record
        _own(f, "forced")[check_id] = record


def _appeal_filed(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    f = ledger.student(p["student_id"])
    if f is not None:
        _lww(_own(f, "appeals"), p["appeal_id"], Appeal(ts, eid, p["month"], p["objected_on"], p["school_id"]))


def _appeal_resolved(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    f = ledger.student(p["student_id"])
    if f is not None:
        _lww(_own(f, "resolutions"), p["appeal_id"], Resolution(ts, eid, p["decision"]))


def _plan_filed(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    f = ledger.student(p["student_id"])
    if f is not None:
        _lww(_own(f, "plans"), p["plan_id"], Plan(ts, eid, p["kind"], p["starts_on"], p["ends_on"], p["filed_on"]))


def _placement_confirmed(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    f = ledger.student(p["student_id"])
    if f is not None:
        _lww(_own(f, "placements"), p["placement_id"],
             Placement(ts, eid, int(p["grade"]), p["starts_on"], p["ends_on"], p.get("filed_on")))


_PLACEMENT_FIELDS = ("starts_on", "ends_on", "filed_on", "grade")


def _placement_updated(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    changes = tuple(sorted((k, str(v)) for k, v in p["changes"].items() if k in _PLACEMENT_FIELDS))
    f = ledger.student(p["student_id"]) if changes else None
    if f is not None:
        _own(f, "placement_changes")[eid] = PlacementChange(ts, eid, p["placement_id"], changes)


def _placement_ended(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    f = ledger.student(p["student_id"])
    if f is not None:
        _own(f, "placement_changes")[eid] = PlacementChange(ts, eid, p["placement_id"], (("ended_on", p["ended_on"]),))


def _hardship(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    f = ledger.student(p["student_id"])
    if f is not None:
        _lww(_own(f, "hardship"), p["determination_id"], Hardship(ts, eid, p["level"], p["effective_semester"]))


def _revoked(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    f = ledger.student(p["student_id"])
    if f is not None:
        _lww(_own(f, "revocations"), p["determination_id"], Revocation(ts, eid, p["effective_semester"]))


def _check_opened(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    schools, students = p.get("school_ids"), p.get("student_ids")
    check_id = sys.intern(p["check_id"])
    _lww(ledger.shared.checks, check_id, CheckFact(
        ts, eid, check_id, p["kind"], sys.intern(p["semester"]), sys.intern(p["month"]),
        instant(p["opens_at"]), instant(p["closes_at"]),
        None if schools is None else frozenset(schools), None if students is None else frozenset(students),
    ))
    ledger.shared.changed()


def _check_closed(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    _lww(ledger.shared.closings, sys.intern(p["check_id"]), Closing(ts, eid, instant(p["closed_at"])))


def _published(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    key = (sys.intern(p["school_id"]), sys.intern(p["month"]))
    record = Publication(p["published_on"], eid)
    old = ledger.shared.publications.get(key)
    if old is None or record < old:  # the first publication starts the objection period
        ledger.shared.publications[key] = record


def _roster(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    wanted = ledger.wanted
    entries = {e["student_id"]: e["id_number_hash"] for e in p["entries"]
               if wanted is None or wanted(e["student_id"])}
    imports = ledger.shared.rosters.setdefault(sys.intern(p["semester"]), {})
    _lww(imports.setdefault(p["import_id"], {}), int(p["part"]), RosterPart(ts, eid, int(p["parts"]), entries))
    ledger.shared.changed()


HANDLERS: dict[str, Handler] = {
    "StudentRegistered": _registered,
    "StudentEnrolled": _enrolled,
    "CaptureVerified": _capture_verified,
    "AbsenceMarked": _absence,
    "ForcedPassRecorded": _forced,
    "AppealFiled": _appeal_filed,
    "AppealResolved": _appeal_resolved,
    "InternshipPlanFiled": _plan_filed,
    "PlacementConfirmed": _placement_confirmed,
    "PlacementUpdated": _placement_updated,
    "PlacementEnded": _placement_ended,
    "HardshipDetermined": _hardship,
    "HardshipRevoked": _revoked,
    "CheckOpened": _check_opened,
    "CheckClosed": _check_closed,
    "MonthResultsPublished": _published,
    "NationalRosterImported": _roster,
}
"""Event types the rules read; every other type (CaptureSubmitted, CaptureRejected, ...) is ignored."""


# --------------------------------------------------------------------------- impact


class Impact(NamedTuple):
    """Whose status an event can change: used by the live projection to re-derive only them."""

    students: frozenset[str] = frozenset()
    schools: frozenset[str] = frozenset()
    everyone: bool = False
    roster_semester: str | None = None
    check_id: str | None = None


def impact(event_type: str, payload: Payload) -> Impact | None:
    """``None`` for events the rules ignore."""
    if event_type not in HANDLERS:
        return None
    if event_type == "CheckClosed":
        # Carries only the check id: whoever holds the checks resolves it (see check_impact).
        return Impact(check_id=payload["check_id"])
    if event_type == "CheckOpened":
        return check_impact(payload.get("student_ids"), payload.get("school_ids"))
    if event_type == "MonthResultsPublished":
        return Impact(schools=frozenset([payload["school_id"]]))
    if event_type == "NationalRosterImported":
        return Impact(roster_semester=payload["semester"])
    return Impact(students=frozenset([payload["student_id"]]))


def check_impact(student_ids: Iterable[str] | None, school_ids: Iterable[str] | None) -> Impact:
    if student_ids is not None:
        return Impact(students=frozenset(student_ids))
    if school_ids is not None:
        return Impact(schools=frozenset(school_ids))
    return Impact(everyone=True)


def iter_students(ledger: Ledger) -> Iterator[str]:
    """Every student id to derive a status for, in sorted order."""
    yield from sorted(ledger.student_ids())
