"""Students and schools as every service reads them from the log: the one read model of a
student (registration, school, enrolment) and of a school (area, 直属). Pure code over events,
shared through ``contracts`` so that no service imports another."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from contracts.envelope import Envelope
from contracts.events import SchoolRef, SchoolRegistered, StudentLeft, StudentRegistered
from contracts.readmodel import fold


def student_stream(student_id: str) -> str:
    return f"student-{student_id}"


def school_stream(school_id: str) -> str:
    return f"school-{school_id}"


def results_stream(school_id: str, month: str) -> str:
    """A school's publication of one month's results (MonthResultsPublished, by spotcheck)."""
    return f"results-{school_id}-{month}"


def capture_stream(capture_id: str) -> str:
    """A capture's stream: CaptureSubmitted (enrolment or spotcheck), then facematch's verdict."""
    return f"capture-{capture_id}"


@dataclass
class StudentView:
    student_id: str
    registered: StudentRegistered | None = None
    enrolled_mode: str | None = None
    enrolled_semesters: list[str] = field(default_factory=list)
    left: StudentLeft | None = None
    version: int = 0

    @property
    def school_id(self) -> str | None:
        return self.registered.school.school_id if self.registered else None

    @property
    def has_left(self) -> bool:
        """Left school (StudentLeft: withdrawn, graduated or transferred)."""
        return self.left is not None


def student_view(student_id: str, events: Iterable[Envelope]) -> StudentView:
    return fold(StudentView(student_id), events, {
        "StudentRegistered": lambda view, p: replace(
            view, registered=StudentRegistered(**{**p, "school": SchoolRef(**p["school"])})),
        "StudentEnrolled": lambda view, p: replace(
            view, enrolled_mode=p["mode"], enrolled_semesters=[*view.enrolled_semesters, p["semester"]]),
        "StudentLeft": lambda view, p: replace(view, left=StudentLeft(**p)),
    })


@dataclass
class SchoolView:
    school_id: str
    registered: SchoolRegistered | None = None
    version: int = 0

    @property
    def ref(self) -> SchoolRef | None:
        r = self.registered
        return SchoolRef(school_id=r.school_id, city=r.city, county=r.county) if r else None


def school_view(school_id: str, events: Iterable[Envelope]) -> SchoolView:
    return fold(SchoolView(school_id), events, {
        "SchoolRegistered": lambda view, p: replace(view, registered=SchoolRegistered(**p)),
    })
