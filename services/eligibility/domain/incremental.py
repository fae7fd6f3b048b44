"""Statuses kept up to date event by event: the in-memory model of the live projection.

Each event re-derives only the students it can affect (:func:`facts.impact`). Because the
fold is order-insensitive and ``derive`` is pure, the result equals a full replay; the
property test checks exactly that, and ``projection/writer.py`` does the same against PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable

from contracts.envelope import Envelope
from services.eligibility.domain.facts import Impact, Ledger, check_impact, impact
from services.eligibility.domain.policy import PolicyBook
from services.eligibility.domain.rules import StudentStatus, derive


class IncrementalView:
    def __init__(self, book: PolicyBook) -> None:
        self.book = book
        self.ledger = Ledger()
        self.by_student: dict[str, list[StudentStatus]] = {}

    @property
    def statuses(self) -> dict[tuple[str, str], StudentStatus]:
        return {(sid, s["semester"]): s for sid, found in self.by_student.items() for s in found}

    def apply(self, envelope: Envelope) -> set[str]:
        """Fold one envelope; return the students whose statuses were re-derived."""
        return self.apply_many([envelope])

    def apply_many(self, envelopes: Iterable[Envelope]) -> set[str]:
        affected: set[str] = set()
        for envelope in envelopes:
            found = impact(envelope.type, envelope.payload)
            if found is None:
                continue
            if found.check_id is not None:  # the check's students as known before this event
                check = self.ledger.shared.checks.get(found.check_id)
                if check is not None:
                    affected |= self.affected(check_impact(check.student_ids, check.school_ids))
            self.ledger.apply(envelope)
            affected |= self.affected(found)
        for student_id in affected:
            self.rederive(student_id)
        return affected

    def affected(self, found: Impact) -> set[str]:
        if found.everyone or found.roster_semester is not None:
            return self.ledger.student_ids()
        out = set(found.students)
        if found.schools:
            out |= {sid for sid, f in self.ledger.students.items()
                    if f.registration is not None and f.registration.school_id in found.schools}
        return out

    def rederive(self, student_id: str) -> None:
        found = derive(student_id, self.ledger.students.get(student_id), self.ledger.shared, self.book)
        if found:
            self.by_student[student_id] = found
        else:
            self.by_student.pop(student_id, None)
