"""Small builders: a test states its history as events, replays them, and reads the statuses.

Times are Asia/Shanghai. Checks open at 10:00 and close at 15:00 on the given day.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from contracts.envelope import Actor, Envelope
from contracts.events import (
    AbsenceMarked,
    AppealFiled,
    AppealResolved,
    AppealStudent,
    CaptureRejected,
    CaptureSubmitted,
    CaptureVerified,
    CheckClosed,
    CheckOpened,
    Event,
    ForcedPassRecorded,
    HardshipDetermined,
    HardshipRevoked,
    InternshipDeparted,
    InternshipPlanFiled,
    InternshipReturned,
    MonthResultsPublished,
    NationalRosterImported,
    PlacementConfirmed,
    PlacementEnded,
    RosterEntry,
    SchoolRef,
    StudentEnrolled,
    StudentLeft,
    StudentRegistered,
)
from contracts.identity import hash_id_number
from contracts.registry import build_envelope
from services.eligibility.domain import Ledger, PolicyBook, derive_all, policy_book_from_dict
from services.eligibility.domain.calendar import SHANGHAI
from services.eligibility.policyfile import load_policy_book

KEY = b"test-key"
ROOT_DIR = Path(__file__).resolve().parents[2]
SCHOOL = "4101000001"
ACTOR = Actor(kind="system", id="test")

# Check days used by the tests (all weekdays).
AUTUMN_2026 = {"2026-10": date(2026, 10, 22), "2026-11": date(2026, 11, 12), "2026-12": date(2026, 12, 10)}
SPRING_2027 = {"2027-04": date(2027, 4, 22), "2027-05": date(2027, 5, 13), "2027-06": date(2027, 6, 10)}


def at(day: date | str, hour: int = 9, minute: int = 0) -> datetime:
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=SHANGHAI)


def id_number_for(student_id: str) -> str:
    import hashlib

    from contracts.identity import check_digit

    body = "410102" + "20080101" + f"{int(hashlib.sha1(student_id.encode()).hexdigest(), 16) % 1000:03d}"
    return body + check_digit(body)


class Log:
    """An event history under construction. ``events`` are contract envelopes."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []
        self._recorded_offset: dict[uuid.UUID, timedelta] = {}

    def add(self, event: Event, when: datetime, stream: str, recorded: datetime | None = None) -> Envelope:
        env = build_envelope(event, stream=stream, actor=ACTOR, occurred_at=when)
        from dataclasses import replace

        env = replace(env, recorded_at=recorded or when, position=len(self.events) + 1)
        self.events.append(env)
        return env

    # ----------------------------------------------------------------- students

    def registered(
        self,
        sid: str,
        *,
        school: str = SCHOOL,
        grade: int = 2,
        proposed: bool = True,
        when: date | str = "2026-09-01",
        city: str = "Zhumadian",
        county: str = "Yicheng",
    ) -> Envelope:
        return self.add(StudentRegistered(
            student_id=sid, school=SchoolRef(school_id=school, city=city, county=county),
            name_masked="张*", id_number_hash=hash_id_number(KEY, id_number_for(sid)),
            id_number_masked="410102********0001", grade=grade, class_name="1班", major="会计",
            enrolment_year=2025, enrolment_season="autumn", proposed_aid=proposed,
        ), at(when), f"student-{sid}")

    def enrolled(self, sid: str, semester: str = "2026-autumn", *, mode: str = "verified",
                 when: date | str = "2026-09-10", school: str = SCHOOL) -> Envelope:
        return self.add(
            StudentEnrolled(
                student_id=sid,
                school_id=school,
                semester=semester,
                mode=mode,  # type: ignore[arg-type]
                capture_id=str(uuid.uuid4()),
            ),
            at(when, 11),
            f"student-{sid}",
        )

    def hardship(self, sid: str, level: str = "difficult", semester: str = "2026-autumn",
                 determination: str | None = None, when: date | str = "2026-09-05",
                 effective_month: str | None = None) -> Envelope:
        return self.add(HardshipDetermined(
            determination_id=determination or f"det-{sid}-{semester}", student_id=sid, school_id=SCHOOL,
            level=level, categories=[2], effective_semester=semester,  # type: ignore[arg-type]
            effective_month=effective_month,
        ), at(when), f"hardship-{sid}")

    def revoked(self, sid: str, determination: str, semester: str = "2026-autumn",
                when: date | str = "2026-11-01", effective_month: str | None = None) -> Envelope:
        return self.add(HardshipRevoked(determination_id=determination, student_id=sid,
                                        effective_semester=semester, reason="false information",
                                        effective_month=effective_month),
                        at(when), f"hardship-{sid}")

    def ordinary(self, sid: str, *, level: str = "difficult", semester: str = "2026-autumn",
                 school: str = SCHOOL, grade: int = 2) -> None:
        """Registered, enrolled well before the deadline, hardship in force."""
        self.registered(sid, school=school, grade=grade)
        self.enrolled(sid, school=school)
        self.hardship(sid, level=level, semester=semester)

    # ----------------------------------------------------------------- checks

    def check(self, check_id: str, month: str, day: date, *, semester: str = "2026-autumn",
              kind: str = "routine", schools: list[str] | None = None, students: list[str] | None = None,
              closed: bool = True) -> str:
        self.add(CheckOpened(
            check_id=check_id, kind=kind, semester=semester, month=month,  # type: ignore[arg-type]
            opens_at=at(day, 10).isoformat(), closes_at=at(day, 15).isoformat(),
            initiated_by="province", school_ids=schools, student_ids=students,
        ), at(day, 8), f"check-{check_id}")
        if closed:
            self.closed(check_id, day)
        return check_id

    def closed(self, check_id: str, day: date) -> Envelope:
        return self.add(CheckClosed(check_id=check_id, closed_at=at(day, 15).isoformat()),
                        at(day, 15), f"check-{check_id}")

    def routine_checks(self, semester: str = "2026-autumn", **kwargs: Any) -> dict[str, str]:
        """One province-wide routine check per check month: month -> check_id."""
        days = AUTUMN_2026 if semester == "2026-autumn" else SPRING_2027
        return {m: self.check(f"R-{m}", m, d, semester=semester, **kwargs) for m, d in days.items()}

    def passed(self, sid: str, check_id: str, day: date, *, hour: int = 11,
               captured_at: datetime | None = None, capture_id: str | None = None) -> Envelope:
        """A verified spot-check capture: ``occurred_at`` at ``hour`` of ``day``; ``captured_at``
        (the field, absent by default as in older logs) when given."""
        return self.add(CaptureVerified(
            capture_id=capture_id or str(uuid.uuid4()), student_id=sid, school_id=SCHOOL,
            purpose="spot_check", channel="app", distance=0.3, threshold=0.6, quality={}, liveness={},
            model_version="t",
            check_id=check_id, captured_at=None if captured_at is None else captured_at.isoformat(),
        ), at(day, hour), f"capture-{sid}")

    def submitted(self, sid: str, check_id: str, captured: datetime, capture_id: str) -> Envelope:
        """A spot-check capture sent for matching (its verdict comes later, or never)."""
        return self.add(CaptureSubmitted(
            capture_id=capture_id, student_id=sid, school_id=SCHOOL, purpose="spot_check", channel="app",
            frame_refs=["blob:" + "2" * 64], captured_at=captured.isoformat(), check_id=check_id,
        ), captured, f"capture-{capture_id}")

    def rejected(self, sid: str, check_id: str, capture_id: str, *, when: datetime,
                 captured_at: datetime | None = None) -> Envelope:
        return self.add(CaptureRejected(
            capture_id=capture_id, student_id=sid, school_id=SCHOOL, purpose="spot_check", channel="app",
            reasons=["NO_MATCH"], quality={}, liveness={}, model_version="t", check_id=check_id,
            captured_at=None if captured_at is None else captured_at.isoformat(),
        ), when, f"capture-{capture_id}")

    def pass_checks(self, sid: str, checks: dict[str, str], *, except_months: Iterable[str] = (),
                    semester: str = "2026-autumn") -> None:
        days = AUTUMN_2026 if semester == "2026-autumn" else SPRING_2027
        for month, check_id in checks.items():
            if month not in except_months:
                self.passed(sid, check_id, days[month])

    def absent(self, sid: str, check_id: str, reason: str, reported_at: datetime,
               starts_on: str | None = None, ends_on: str | None = None) -> Envelope:
        return self.add(AbsenceMarked(
            check_id=check_id, student_id=sid, school_id=SCHOOL, reason=reason,  # type: ignore[arg-type]
            reported_at=reported_at.isoformat(), internship_starts_on=starts_on, internship_ends_on=ends_on,
        ), reported_at, f"absence-{sid}")

    def forced(self, sid: str, check_id: str, day: date, *, attempts: int = 3) -> Envelope:
        return self.add(ForcedPassRecorded(check_id=check_id, student_id=sid, school_id=SCHOOL,
                                           terminal_id="T1", attempts=attempts,
                                           evidence_ref="blob:" + "0" * 64),
                        at(day, 12), f"capture-{sid}")

    # ----------------------------------------------------------------- appeals, internships

    def published(self, month: str, on: str, school: str = SCHOOL) -> Envelope:
        return self.add(MonthResultsPublished(school_id=school, month=month, published_on=on),
                        at(on, 17), f"results-{school}-{month}")

    def appeal(self, sid: str, month: str, objected_on: str, *, decision: str | None = None,
               filed: datetime | None = None, resolved: datetime | None = None,
               resolved_recorded: datetime | None = None, appeal_id: str | None = None) -> str:
        appeal_id = appeal_id or f"A-{sid}-{month}"
        filed = filed or at(objected_on, 16)
        self.add(
            AppealFiled(
                filing_id=appeal_id,
                school_id=SCHOOL,
                month=month,
                students=[AppealStudent(student_id=sid, objected_on=objected_on, objection_ids=[],
                                        reason=None, class_name=None, name_masked=None)],
                letter_ref="blob:" + "1" * 64,
                filed_on=None,
                authority_level="county",
                city=None,
                county=None,
            ),
            filed,
            f"appeal-{appeal_id}",
        )
        if decision is not None:
            when = resolved or filed + timedelta(days=2)
            self.add(
                AppealResolved(
                    appeal_id=appeal_id,
                    student_id=sid,
                    month=month,
                    decision=decision,  # type: ignore[arg-type]
                    decided_by="county",
                ),
                when,
                f"appeal-{appeal_id}",
                recorded=resolved_recorded,
            )
        return appeal_id

    def plan(
        self, sid: str, starts_on: str, ends_on: str, filed_on: str, kind: str = "shadowing"
    ) -> Envelope:
        return self.add(
            InternshipPlanFiled(
                plan_id=f"P-{sid}-{starts_on}",
                student_id=sid,
                school_id=SCHOOL,
                kind=kind,
                starts_on=starts_on,
                ends_on=ends_on,  # type: ignore[arg-type]
                filed_on=filed_on,
            ),
            at(filed_on),
            f"plan-{sid}",
        )

    def departed(self, sid: str, starts_on: str, departed_on: str) -> Envelope:
        """The departure for the plan :meth:`plan` filed for ``sid`` starting ``starts_on``."""
        return self.add(InternshipDeparted(plan_id=f"P-{sid}-{starts_on}", student_id=sid, school_id=SCHOOL,
                                           departed_on=departed_on), at(departed_on, 8), f"plan-{sid}")

    def returned(self, sid: str, starts_on: str, returned_on: str) -> Envelope:
        return self.add(InternshipReturned(plan_id=f"P-{sid}-{starts_on}", student_id=sid, school_id=SCHOOL,
                                           returned_on=returned_on), at(returned_on, 8), f"plan-{sid}")

    def left(self, sid: str, left_on: str, reason: str = "withdrawn", *, to_school: str | None = None,
             recorded: datetime | None = None) -> Envelope:
        """StudentLeft, occurring at 17:00 of ``left_on`` (recorded then, or at ``recorded``)."""
        return self.add(StudentLeft(student_id=sid, school_id=SCHOOL, reason=reason,  # type: ignore[arg-type]
                                    left_on=left_on, to_school_id=to_school),
                        at(left_on, 17), f"student-{sid}", recorded=recorded)

    def placement(self, sid: str, starts_on: str, ends_on: str, *, grade: int = 2,
                  filed_on: str | None = "auto", placement_id: str | None = None) -> str:
        placement_id = placement_id or f"PL-{sid}"
        filed = (
            (date.fromisoformat(starts_on) - timedelta(days=3)).isoformat()
            if filed_on == "auto"
            else filed_on
        )
        self.add(PlacementConfirmed(
            placement_id=placement_id, student_id=sid, school_id=SCHOOL, grade=grade, class_name="1班",
            company="某公司", location="河南省驻马店市驿城区某街道1号", supervisor="李老师",
            supervisor_contact_masked="138****0000", starts_on=starts_on, ends_on=ends_on, filed_on=filed,
        ), at(date.fromisoformat(starts_on) - timedelta(days=5)), f"placement-{placement_id}")
        return placement_id

    def placement_ended(self, sid: str, placement_id: str, ended_on: str) -> Envelope:
        return self.add(PlacementEnded(placement_id=placement_id, student_id=sid, ended_on=ended_on),
                        at(ended_on, 17), f"placement-{placement_id}")

    # ----------------------------------------------------------------- roster

    def roster(self, semester: str, students: Iterable[str], *, parts: int = 1,
               when: date | str = "2027-01-20", import_id: str | None = None,
               hashes: dict[str, str] | None = None) -> str:
        import_id = import_id or str(uuid.uuid4())
        entries = [RosterEntry(student_id=s, id_number_hash=(hashes or {}).get(s) or
                               hash_id_number(KEY, id_number_for(s))) for s in students]
        size = max(1, -(-len(entries) // parts))
        for part in range(parts):
            chunk = entries[part * size:(part + 1) * size]
            self.add(
                NationalRosterImported(
                    import_id=import_id,
                    semester=semester,
                    part=part + 1,
                    parts=parts,
                    source_sha256="f" * 64,
                    entries=chunk,
                ),
                at(when, 9, part),
                f"roster-{import_id}",
            )
        return import_id


def replay(
    events: Iterable[Envelope], book: PolicyBook | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    """(student_id, semester) -> status, from a full replay (default: the shipped policy)."""
    ledger = Ledger()
    for env in events:
        ledger.apply(env)
    return {(s["student_id"], s["semester"]): s for s in derive_all(ledger, book or load_policy_book())}


def status(
    log: Log, sid: str, semester: str = "2026-autumn", book: PolicyBook | None = None
) -> dict[str, Any]:
    return replay(log.events, book)[(sid, semester)]


def policy_data() -> dict[str, Any]:
    """The shipped policy file as data, to derive variants from."""
    import yaml

    from services.eligibility.policyfile import POLICY_FILE

    return yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))


def book_from(data: dict[str, Any]) -> PolicyBook:
    return policy_book_from_dict(data)


def month(st: dict[str, Any], month: str) -> dict[str, Any]:
    return next(m for m in st["months"] if m["month"] == month)


def grant(st: dict[str, Any]) -> dict[str, str]:
    """aid month -> decision (granted / withheld / pending)."""
    return {g["month"]: g["decision"] for g in st["grant"]}


def withheld(st: dict[str, Any]) -> list[str]:
    return [g["month"] for g in st["grant"] if g["decision"] == "withheld"]


def write_jsonl(path: Path, events: Iterable[Envelope]) -> Path:
    path.write_text(
        "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in events), encoding="utf-8"
    )
    return path
