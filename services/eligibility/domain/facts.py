"""The fold: envelopes in, facts out. No decision is taken here (see :mod:`.rules`).

Every fact is kept so that folding is *order-insensitive and idempotent*: a fact is either a
set member keyed by ``event_id``, or a register per natural key that keeps the greatest
``(occurred_at, event_id)`` (last writer wins, with a total tie-break). So the same events, in
any order, any number of times, give the same facts, and no list of seen event ids is needed
(memory grows with students, not with the log).

Per-student facts live in :class:`StudentFacts`; facts that concern many students (checks,
publications, the national roster) live in :class:`SharedFacts`. A :class:`Ledger` holds both.

An event type enters the rules through ONE registration: its fold function decorated with
:func:`folds` (at the end of this module). The registry :data:`FOLDS` gives the store's type
filter (:func:`handled_types`), the low-memory replay's split (:func:`shared_types` first, then
:func:`student_types` by student) and whose status an event can change (:func:`impact`). A
shared event names the kind of shared fact it writes (:data:`SHARED_KINDS`, which also gives
that fact's stored form for the live projection).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
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


class Submission(NamedTuple):
    """A spot-check capture sent for matching (CaptureSubmitted); ``captured_ts`` is its
    ``captured_at``. Kept until its verdict is folded (then the table holds None for it)."""

    ts: float
    eid: str
    check_id: str
    captured_ts: float


class Absence(NamedTuple):
    ts: float
    eid: str
    reason: str
    reported_ts: float
    internship_starts_on: str | None
    internship_ends_on: str | None


class Resolution(NamedTuple):
    """AppealResolved: one student's ruling, keyed by the filing (``appeal_id``)."""

    ts: float
    eid: str
    decision: str
    decided_by: str | None = None


class FilingEntry(NamedTuple):
    """One student of an AppealFiled (v2, or v1 upcast). A filing is a shared fact (it names
    several students) kept as one entry per student, each last-writer-wins on its own, so that
    an event changes only the students it names."""

    ts: float
    eid: str
    student_id: str
    school_id: str
    month: str
    objected_on: str
    filed_on: str | None
    authority_level: str | None


class ClosedEntry(NamedTuple):
    """One student of an AppealClosedUnhandled: not ruled within the filing's month (当月未予处理)."""

    ts: float
    eid: str
    student_id: str
    closed_on: str


def merge_entries(old: tuple[Any, ...] | None, new: Iterable[Any]) -> tuple[Any, ...] | None:
    """``old`` entries (``ts, eid, student_id, ...``, sorted by student) with ``new`` ones, the
    greatest ``(ts, eid)`` per student winning; ``old`` itself (the same object) when unchanged."""
    by_student = {e.student_id: e for e in old or ()}
    changed = False
    for entry in new:
        known = by_student.get(entry.student_id)
        if known is None or (entry.ts, entry.eid) > (known.ts, known.eid):
            by_student[entry.student_id] = entry
            changed = True
    return tuple(sorted(by_student.values(), key=lambda e: e.student_id)) if changed else old


class Plan(NamedTuple):
    ts: float
    eid: str
    kind: str
    starts_on: str
    ends_on: str
    filed_on: str


class Movement(NamedTuple):
    """An internship plan's departure (InternshipDeparted) or return (InternshipReturned): ``day``
    is ``departed_on`` or ``returned_on``; keyed by the plan id."""

    ts: float
    eid: str
    day: str


class Leaving(NamedTuple):
    """StudentLeft: the student left school on ``left_on`` (withdrawn, graduated, transferred)."""

    ts: float
    eid: str
    left_on: str
    reason: str


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
    effective_month: str | None = None


class Revocation(NamedTuple):
    ts: float
    eid: str
    semester: str
    effective_month: str | None = None


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
        "resolutions", "plans", "placements", "placement_changes", "hardship", "revocations",
        "submissions", "departures", "returns", "leaving",
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
        self.resolutions: Mapping[str, Resolution] = _NONE
        self.plans: Mapping[str, Plan] = _NONE
        self.placements: Mapping[str, Placement] = _NONE
        self.placement_changes: Mapping[str, PlacementChange] = _NONE
        self.hardship: Mapping[str, Hardship] = _NONE
        self.revocations: Mapping[str, Revocation] = _NONE
        # capture id -> the spot-check capture awaiting its verdict, or None once a verdict
        # (verified or rejected) is known: kept so that a late-folded submission stays answered
        self.submissions: Mapping[str, Submission | None] = _NONE
        # internship plan id -> the departure / the return (InternshipDeparted / InternshipReturned)
        self.departures: Mapping[str, Movement] = _NONE
        self.returns: Mapping[str, Movement] = _NONE
        self.leaving: Leaving | None = None

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
        for name in _PLAIN_TABLES:
            table: Mapping[str, tuple[Any, ...]] = getattr(self, name)
            if table:
                out[name] = {k: list(v) for k, v in table.items()}
        if self.leaving is not None:
            out["leaving"] = list(self.leaving)
        if self.captures:
            out["captures"] = {k: [list(c) for c in captures_of(v)] for k, v in self.captures.items()}
        if self.submissions:
            out["submissions"] = {k: None if v is None else list(v) for k, v in self.submissions.items()}
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
        get = data.get
        intern = sys.intern
        for name, make, interned in _TABLE_RECORDS:
            rows = get(name)
            if rows:
                setattr(f, name, {intern(k): make(*v) for k, v in rows.items()} if interned
                        else {k: make(*v) for k, v in rows.items()})
        rows = get("captures")
        if rows:
            f.captures = {intern(k): Capture(*v[0]) if len(v) == 1 else tuple(Capture(*c) for c in v)
                          for k, v in rows.items()}
        if get("leaving") is not None:
            f.leaving = Leaving(*data["leaving"])
        rows = get("submissions")
        if rows:
            f.submissions = {k: None if v is None else Submission(*v) for k, v in rows.items()}
        rows = get("placement_changes")
        if rows:
            f.placement_changes = {k: PlacementChange(v[0], v[1], v[2], tuple((a, b) for a, b in v[3]))
                                   for k, v in rows.items()}
        return f


_PLAIN_TABLES = ("enrolments", "absences", "forced", "resolutions", "plans", "placements", "hardship",
                 "revocations", "departures", "returns")
"""The tables of :class:`StudentFacts` stored as ``{key: record as a list}``."""

_TABLE_RECORDS: tuple[tuple[str, Callable[..., Any], bool], ...] = (
    ("enrolments", Enrolment, False), ("absences", Absence, True), ("forced", Capture, True),
    ("resolutions", Resolution, False), ("plans", Plan, False), ("placements", Placement, False),
    ("hardship", Hardship, False), ("revocations", Revocation, False), ("departures", Movement, False),
    ("returns", Movement, False),
)
"""Each plain table, the record it holds, and whether its keys (check ids) are interned."""


class SharedFacts:
    """Facts about many students: checks, their closing, results publications, national rosters."""

    def __init__(self) -> None:
        self.checks: dict[str, CheckFact] = {}
        self.closings: dict[str, Closing] = {}
        self.publications: dict[tuple[str, str], Publication] = {}
        # appeal filings (filing id -> filing) and those closed unhandled at their month's end
        self.filings: dict[str, tuple[FilingEntry, ...]] = {}
        self.filings_closed: dict[str, tuple[ClosedEntry, ...]] = {}
        self._filings_by_student: dict[str, list[tuple[str, FilingEntry]]] | None = None
        # semester -> import_id -> part number -> part
        self.rosters: dict[str, dict[str, dict[int, RosterPart]]] = {}
        self._index: _CheckIndex | None = None
        self._winners: dict[str, tuple[str, list[RosterPart]] | None] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SharedFacts) and (
            self.checks, self.closings, self.publications, self.rosters, self.filings, self.filings_closed
        ) == (other.checks, other.closings, other.publications, other.rosters, other.filings,
              other.filings_closed)

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

    # -- appeal filings

    def filings_of(self, student_id: str, month: str) -> list[tuple[str, FilingEntry]]:
        """``(filing id, the student's entry)`` of every filing naming ``student_id`` for ``month``."""
        index = self._filings_by_student
        if index is None:
            index = {}
            for filing_id, entries in sorted(self.filings.items()):
                for entry in entries:
                    index.setdefault(entry.student_id, []).append((filing_id, entry))
            self._filings_by_student = index
        return [(f, e) for f, e in index.get(student_id, ()) if e.month == month]

    def closed_for(self, filing_id: str, student_id: str) -> ClosedEntry | None:
        """The closing (unhandled at month end) of ``filing_id`` for ``student_id``, if any."""
        return next((e for e in self.filings_closed.get(filing_id, ()) if e.student_id == student_id), None)

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
        view.filings, view.filings_closed = self.filings, self.filings_closed
        if self._index is None:
            self._index = _CheckIndex(self.checks.values())
        view._index = self._index
        view.rosters = {
            semester: {
                import_id: {n: p._replace(entries=entries.get((semester, import_id, n), {}))
                            for n, p in parts.items()}
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


# --------------------------------------------------------------------------- shared facts as rows

SharedKey = tuple[Any, ...]


def _values(record: tuple[Any, ...]) -> list[Any]:
    return [sorted(v) if isinstance(v, frozenset) else v for v in record]


def _load_check(shared: SharedFacts, key: str, fact: Mapping[str, Any]) -> None:
    v = fact["v"]
    shared.checks[key] = CheckFact(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                                   None if v[8] is None else frozenset(v[8]),
                                   None if v[9] is None else frozenset(v[9]))


def _load_closing(shared: SharedFacts, key: str, fact: Mapping[str, Any]) -> None:
    shared.closings[key] = Closing(*fact["v"])


def _load_publication(shared: SharedFacts, key: str, fact: Mapping[str, Any]) -> None:
    shared.publications[(fact["school_id"], fact["month"])] = Publication(*fact["v"])


def _load_filing(shared: SharedFacts, key: str, fact: Mapping[str, Any]) -> None:
    shared.filings[key] = tuple(FilingEntry(*e) for e in fact["v"])
    shared._filings_by_student = None


def _load_filing_closed(shared: SharedFacts, key: str, fact: Mapping[str, Any]) -> None:
    shared.filings_closed[key] = tuple(ClosedEntry(*e) for e in fact["v"])


def _load_roster_part(shared: SharedFacts, key: str, fact: Mapping[str, Any]) -> None:
    parts = shared.rosters.setdefault(fact["semester"], {}).setdefault(fact["import_id"], {})
    ts, eid, count = fact["v"]
    parts[int(fact["part"])] = RosterPart(ts, eid, count, {})


def _roster_parts(shared: SharedFacts) -> Iterator[tuple[SharedKey, RosterPart]]:
    for semester, imports in shared.rosters.items():
        for import_id, parts in imports.items():
            for part, record in parts.items():
                yield (semester, import_id, part), record


class SharedKind(NamedTuple):
    """One kind of shared fact: where it lives in :class:`SharedFacts` and its stored form (a
    row ``(kind, key, fact)`` of the live projection's ``eligibility_shared``; reads back
    exactly; a roster part is stored without its entries, which the projection keeps per student)."""

    get: Callable[[SharedFacts, SharedKey], Any]
    items: Callable[[SharedFacts], Iterable[tuple[SharedKey, Any]]]
    encode: Callable[[SharedKey, Any], tuple[str, dict[str, Any]]]
    load: Callable[[SharedFacts, str, Mapping[str, Any]], None]


SHARED_KINDS: dict[str, SharedKind] = {
    "check": SharedKind(
        lambda s, k: s.checks.get(k[0]), lambda s: (((k,), v) for k, v in s.checks.items()),
        lambda k, r: (k[0], {"v": _values(r)}), _load_check),
    "closing": SharedKind(
        lambda s, k: s.closings.get(k[0]), lambda s: (((k,), v) for k, v in s.closings.items()),
        lambda k, r: (k[0], {"v": _values(r)}), _load_closing),
    "publication": SharedKind(
        lambda s, k: s.publications.get((k[0], k[1])), lambda s: s.publications.items(),
        lambda k, r: (json.dumps(list(k)), {"v": _values(r), "school_id": k[0], "month": k[1]}),
        _load_publication),
    "filing": SharedKind(
        lambda s, k: s.filings.get(k[0]), lambda s: (((k,), v) for k, v in s.filings.items()),
        lambda k, r: (k[0], {"v": [list(e) for e in r]}), _load_filing),
    "filing_closed": SharedKind(
        lambda s, k: s.filings_closed.get(k[0]), lambda s: (((k,), v) for k, v in s.filings_closed.items()),
        lambda k, r: (k[0], {"v": [list(e) for e in r]}), _load_filing_closed),
    "roster_part": SharedKind(
        lambda s, k: s.rosters.get(k[0], {}).get(k[1], {}).get(k[2]), _roster_parts,
        lambda k, r: (json.dumps(list(k)), {"v": list(r[:3]), "semester": k[0], "import_id": k[1],
                                            "part": k[2]}),
        _load_roster_part),
}


def shared_rows(shared: SharedFacts) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every shared fact as ``(kind, key, fact)`` (the projection's rebuild writes these)."""
    for kind, spec in SHARED_KINDS.items():
        for key, record in spec.items(shared):
            yield (kind, *spec.encode(key, record))


def load_shared(rows: Iterable[tuple[str, str, Mapping[str, Any]]]) -> SharedFacts:
    """The inverse of :func:`shared_rows` (roster parts come back without entries)."""
    shared = SharedFacts()
    for kind, key, fact in rows:
        SHARED_KINDS[kind].load(shared, key, fact)
    return shared


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
        fold = FOLDS.get(event_type)
        if fold is not None:
            fold.apply(self, event_id, occurred_ts, payload)

    def student_ids(self) -> set[str]:
        """Students known from their own events or from a national roster."""
        ids = set(self.students)
        for imports in self.shared.rosters.values():
            for parts in imports.values():
                for part in parts.values():
                    ids.update(part.entries)
        return ids


# --------------------------------------------------------------------------- impact


class Impact(NamedTuple):
    """Whose status an event can change: the live projection re-derives only them.

    ``check_id``: also the students the check covers as known *before* the event is folded (a
    CheckOpened that corrects a check may narrow its scope; CheckClosed names only the check);
    whoever holds the checks resolves it (:func:`check_impact`) before folding the event.
    """

    students: frozenset[str] = frozenset()
    schools: frozenset[str] = frozenset()
    everyone: bool = False
    roster_semester: str | None = None
    check_id: str | None = None


def check_impact(student_ids: Iterable[str] | None, school_ids: Iterable[str] | None) -> Impact:
    if student_ids is not None:
        return Impact(students=frozenset(student_ids))
    if school_ids is not None:
        return Impact(schools=frozenset(school_ids))
    return Impact(everyone=True)


def _own_student(p: Payload) -> Impact:
    return Impact(students=frozenset([p["student_id"]]))


# --------------------------------------------------------------------------- the registry

Handler = Callable[[Ledger, str, float, Payload], None]


@dataclass(frozen=True, slots=True)
class Fold:
    """How one event type is folded. ``shared`` is None for an event about the student named by
    its payload's ``student_id`` (folded into that student's facts); otherwise it names the
    kind of shared fact the event writes (:data:`SHARED_KINDS`) and ``key`` says which one."""

    event_type: str
    apply: Handler
    impact: Callable[[Payload], Impact]
    shared: str | None = None
    key: Callable[[Payload], SharedKey] | None = None


FOLDS: dict[str, Fold] = {}
"""Event type -> its fold. Every other type (SchoolRegistered, TerminalRegistered, ...) is ignored."""


def folds(event_type: str, *, shared: str | None = None, key: Callable[[Payload], SharedKey] | None = None,
          impact: Callable[[Payload], Impact] | None = None) -> Callable[[Handler], Handler]:
    """Register the decorated function as the fold of ``event_type``: the one place that adds an
    event type to the rules' input. The store's type filter (:func:`handled_types`), the
    low-memory replay's split (:func:`shared_types`, :func:`student_types`) and the live
    projection's re-derivation scope (:func:`impact`) all follow from it."""
    if event_type in FOLDS:
        raise ValueError(f"{event_type} already has a fold")
    if shared is not None and (shared not in SHARED_KINDS or key is None or impact is None):
        raise ValueError(f"{event_type}: a shared fold names one of {sorted(SHARED_KINDS)},"
                         " a key and an impact")

    def register(handler: Handler) -> Handler:
        FOLDS[event_type] = Fold(event_type, handler, impact or _own_student, shared, key)
        return handler

    return register


def handled_types() -> list[str]:
    """The event types the rules read (the filter of every store read), sorted."""
    return sorted(FOLDS)


def shared_types() -> list[str]:
    """Types folded into :class:`SharedFacts` (the low-memory replay reads them first)."""
    return sorted(t for t, f in FOLDS.items() if f.shared is not None)


def student_types() -> list[str]:
    """Types about one student (payload ``student_id``): the low-memory replay reads them by student."""
    return sorted(t for t, f in FOLDS.items() if f.shared is None)


def impact(event_type: str, payload: Payload) -> Impact | None:
    """Whose status the event can change; ``None`` for events the rules ignore."""
    fold = FOLDS.get(event_type)
    return None if fold is None else fold.impact(payload)


# --------------------------------------------------------------------------- the folds


def _keep_latest(ledger: Ledger, p: Payload, table: str, key: str, record: tuple[Any, ...]) -> None:
    """Into table ``table`` of the payload's student: ``record`` under ``key``, unless a later
    one is there (:func:`_lww`)."""
    f = ledger.student(p["student_id"])
    if f is not None:
        _lww(_own(f, table), key, record)


@folds("StudentRegistered")
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


@folds("StudentEnrolled")
def _enrolled(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    f = ledger.student(p["student_id"])
    if f is not None:
        _own(f, "enrolments")[eid] = Enrolment(ts, eid, sys.intern(p["semester"]), p["mode"])


def _captured_ts(ts: float, p: Payload) -> float:
    """When the face was taken: the verdict's ``captured_at`` (copied from the CaptureSubmitted),
    else, for verdicts written before the field existed, their ``occurred_at`` (facematch has
    always set it to the capture's time)."""
    captured = p.get("captured_at")
    return instant(captured) if captured else ts


@folds("CaptureSubmitted")
def _capture_submitted(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    check_id = p.get("check_id")
    if not check_id or p["purpose"] != "spot_check":
        return
    f = ledger.student(p["student_id"])
    if f is None:
        return
    table = _own(f, "submissions")
    capture_id = p["capture_id"]
    record = Submission(ts, eid, sys.intern(check_id), _captured_ts(ts, p))
    if capture_id not in table:
        table[capture_id] = record
        return
    old = table[capture_id]
    if old is not None and record < old:  # None (a verdict is known) stays None
        table[capture_id] = record


def _answered(f: StudentFacts, p: Payload) -> None:
    _own(f, "submissions")[p["capture_id"]] = None


@folds("CaptureRejected")
def _capture_rejected(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    if not p.get("check_id") or p["purpose"] != "spot_check":
        return
    f = ledger.student(p["student_id"])
    if f is not None:
        _answered(f, p)


@folds("CaptureVerified")
def _capture_verified(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    check_id = p.get("check_id")
    if not check_id or p["purpose"] != "spot_check":
        return
    f = ledger.students.get(p["student_id"]) if ledger.wanted is None else None
    if f is None:
        f = ledger.student(p["student_id"])
        if f is None:
            return
    _answered(f, p)
    ts = _captured_ts(ts, p)
    check_id = sys.intern(check_id)
    known = f.captures.get(check_id)
    if known is None:  # the common case: one capture per check, stored bare
        _own(f, "captures")[check_id] = Capture(ts, eid)
        return
    several = captures_of(known)
    if all(c.eid != eid for c in several):
        _own(f, "captures")[check_id] = tuple(sorted((*several, Capture(ts, eid))))


@folds("AbsenceMarked")
def _absence(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    _keep_latest(ledger, p, "absences", sys.intern(p["check_id"]), Absence(
        ts, eid, p["reason"], instant(p["reported_at"]),
        p.get("internship_starts_on"), p.get("internship_ends_on"),
    ))


FORCED_PASS_MIN_ATTEMPTS = 3
"""The seed (十.3): force-passed after three failed confirmations at a terminal."""


@folds("ForcedPassRecorded")
def _forced(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    if int(p["attempts"]) < FORCED_PASS_MIN_ATTEMPTS:
        return  # not a forced pass under the seed's rule: the replay does not count it
    f = ledger.student(p["student_id"])
    if f is None:
        return
    check_id = sys.intern(p["check_id"])
    old = f.forced.get(check_id)
    record = Capture(ts, eid)
    if old is None or record < old:  # the first force-pass is the one on record
        _own(f, "forced")[check_id] = record


def _filing_students(p: Payload) -> Impact:
    return Impact(students=frozenset(s["student_id"] for s in p["students"]))


@folds("AppealFiled", shared="filing", key=lambda p: (p["filing_id"],), impact=_filing_students)
def _appeal_filed(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    """A filing names several students: a shared fact, like a publication (one per school and month)."""
    shared, key = ledger.shared, sys.intern(p["filing_id"])
    school, month = sys.intern(p["school_id"]), sys.intern(p["month"])
    merged = merge_entries(shared.filings.get(key), (
        FilingEntry(ts, eid, s["student_id"], school, month, s["objected_on"], p.get("filed_on"),
                    p.get("authority_level")) for s in p["students"]))
    if merged is not None and merged is not shared.filings.get(key):
        shared.filings[key] = merged
        shared._filings_by_student = None


@folds("AppealClosedUnhandled", shared="filing_closed", key=lambda p: (p["filing_id"],),
       impact=lambda p: Impact(students=frozenset(p["student_ids"])))
def _appeal_closed(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    shared, key = ledger.shared, sys.intern(p["filing_id"])
    merged = merge_entries(shared.filings_closed.get(key),
                           (ClosedEntry(ts, eid, sid, p["closed_on"]) for sid in p["student_ids"]))
    if merged is not None:
        shared.filings_closed[key] = merged


@folds("AppealResolved")
def _appeal_resolved(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    _keep_latest(ledger, p, "resolutions", p["appeal_id"],
                 Resolution(ts, eid, p["decision"], p.get("decided_by")))


@folds("InternshipPlanFiled")
def _plan_filed(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    _keep_latest(ledger, p, "plans", p["plan_id"],
                 Plan(ts, eid, p["kind"], p["starts_on"], p["ends_on"], p["filed_on"]))


@folds("InternshipDeparted")
def _departed(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    _keep_latest(ledger, p, "departures", p["plan_id"], Movement(ts, eid, p["departed_on"]))


@folds("InternshipReturned")
def _returned(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    _keep_latest(ledger, p, "returns", p["plan_id"], Movement(ts, eid, p["returned_on"]))


@folds("StudentLeft")
def _left(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    f = ledger.student(p["student_id"])
    if f is None:
        return
    record = Leaving(ts, eid, p["left_on"], p["reason"])
    old = f.leaving
    if old is None or (record.ts, record.eid) > (old.ts, old.eid):
        f.leaving = record


@folds("PlacementConfirmed")
def _placement_confirmed(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    _keep_latest(ledger, p, "placements", p["placement_id"],
                 Placement(ts, eid, int(p["grade"]), p["starts_on"], p["ends_on"], p.get("filed_on")))


_PLACEMENT_FIELDS = ("starts_on", "ends_on", "filed_on", "grade")


@folds("PlacementUpdated")
def _placement_updated(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    changes = tuple(sorted((k, str(v)) for k, v in p["changes"].items() if k in _PLACEMENT_FIELDS))
    f = ledger.student(p["student_id"]) if changes else None
    if f is not None:
        _own(f, "placement_changes")[eid] = PlacementChange(ts, eid, p["placement_id"], changes)


@folds("PlacementEnded")
def _placement_ended(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    f = ledger.student(p["student_id"])
    if f is not None:
        change = PlacementChange(ts, eid, p["placement_id"], (("ended_on", p["ended_on"]),))
        _own(f, "placement_changes")[eid] = change


@folds("HardshipDetermined")
def _hardship(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    _keep_latest(ledger, p, "hardship", p["determination_id"],
                 Hardship(ts, eid, p["level"], p["effective_semester"], p.get("effective_month")))


@folds("HardshipRevoked")
def _revoked(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    _keep_latest(ledger, p, "revocations", p["determination_id"],
                 Revocation(ts, eid, p["effective_semester"], p.get("effective_month")))


@folds("CheckOpened", shared="check", key=lambda p: (p["check_id"],),
       impact=lambda p: check_impact(p.get("student_ids"), p.get("school_ids"))
       ._replace(check_id=p["check_id"]))
def _check_opened(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    schools, students = p.get("school_ids"), p.get("student_ids")
    check_id = sys.intern(p["check_id"])
    _lww(ledger.shared.checks, check_id, CheckFact(
        ts, eid, check_id, p["kind"], sys.intern(p["semester"]), sys.intern(p["month"]),
        instant(p["opens_at"]), instant(p["closes_at"]),
        None if schools is None else frozenset(schools), None if students is None else frozenset(students),
    ))
    ledger.shared.changed()


@folds("CheckClosed", shared="closing", key=lambda p: (p["check_id"],),
       impact=lambda p: Impact(check_id=p["check_id"]))
def _check_closed(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    _lww(ledger.shared.closings, sys.intern(p["check_id"]), Closing(ts, eid, instant(p["closed_at"])))


@folds("MonthResultsPublished", shared="publication", key=lambda p: (p["school_id"], p["month"]),
       impact=lambda p: Impact(schools=frozenset([p["school_id"]])))
def _published(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    key = (sys.intern(p["school_id"]), sys.intern(p["month"]))
    record = Publication(p["published_on"], eid)
    old = ledger.shared.publications.get(key)
    if old is None or record < old:  # the first publication starts the objection period
        ledger.shared.publications[key] = record


@folds("NationalRosterImported", shared="roster_part",
       key=lambda p: (p["semester"], p["import_id"], int(p["part"])),
       impact=lambda p: Impact(roster_semester=p["semester"]))
def _roster(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
    wanted = ledger.wanted
    entries = {e["student_id"]: e["id_number_hash"] for e in p["entries"]
               if wanted is None or wanted(e["student_id"])}
    imports = ledger.shared.rosters.setdefault(sys.intern(p["semester"]), {})
    part = RosterPart(ts, eid, int(p["parts"]), entries)
    _lww(imports.setdefault(p["import_id"], {}), int(p["part"]), part)
    ledger.shared.changed()
