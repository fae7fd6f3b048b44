"""Property: for random event histories, incremental projection == full replay == replay of a
shuffled order with duplicates (and the per-student facts survive their JSON round trip)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.envelope import Envelope
from contracts.events import (
    AbsenceMarked,
    AppealFiled,
    AppealResolved,
    AppealStudent,
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
    PlacementUpdated,
    RosterEntry,
    SchoolRef,
    StudentEnrolled,
    StudentLeft,
    StudentRegistered,
)
from contracts.registry import build_envelope
from services.eligibility.domain import Ledger, StudentFacts, derive_all
from services.eligibility.domain.incremental import IncrementalView
from services.eligibility.policyfile import load_policy_book
from tests.eligibility.elig_builders import ACTOR, at

STUDENTS = ["S1", "S2", "S3"]
SCHOOLS = ["A", "B"]
CHECKS = ["C1", "C2", "C3", "C4"]
MONTHS = ["2026-10", "2026-11", "2026-12"]
SEMESTERS = ["2026-autumn", "2027-spring"]
DAYS = [date(2026, 9, 1) + timedelta(days=i) for i in range(0, 150, 3)]

sid = st.sampled_from(STUDENTS)
school = st.sampled_from(SCHOOLS)
check = st.sampled_from(CHECKS)
day = st.sampled_from(DAYS)
iso_day = day.map(date.isoformat)
hour = st.integers(min_value=7, max_value=17)
uid = st.uuids(version=4)


def _instant(d: date, h: int) -> str:
    return at(d, h).isoformat()


events_st = st.one_of(
    st.builds(
        lambda s, sc, proposed, grade: StudentRegistered(
            student_id=s,
            school=SchoolRef(sc, "C", "K"),
            name_masked="x*",
            id_number_hash=f"h{s}",
            id_number_masked="m",
            grade=grade,
            class_name="c",
            major="m",
            enrolment_year=2025,
            enrolment_season="autumn",
            proposed_aid=proposed,
        ),
        sid,
        school,
        st.booleans(),
        st.integers(1, 3),
    ),
    st.builds(
        lambda s, sem, mode: StudentEnrolled(
            student_id=s, school_id="A", semester=sem, mode=mode, capture_id="c"
        ),
        sid,
        st.sampled_from(SEMESTERS),
        st.sampled_from(["verified", "provisional", "evidence_filed"]),
    ),
    st.builds(
        lambda s, c, kind, m, d, scope, who: CheckOpened(
            check_id=c,
            kind=kind,
            semester="2026-autumn",
            month=m,
            opens_at=_instant(d, 10),
            closes_at=_instant(d, 15),
            initiated_by="province",
            school_ids=who[0] if scope == "school" else None,
            student_ids=who[1] if scope == "students" else None,
        ),
        sid,
        check,
        st.sampled_from(["routine", "targeted"]),
        st.sampled_from(MONTHS),
        day,
        st.sampled_from(["all", "school", "students"]),
        st.tuples(st.lists(school, min_size=1, max_size=2), st.lists(sid, min_size=1, max_size=2)),
    ),
    st.builds(lambda c, d: CheckClosed(check_id=c, closed_at=_instant(d, 15)), check, day),
    st.builds(
        lambda s, c: CaptureVerified(
            capture_id="x",
            student_id=s,
            school_id="A",
            purpose="spot_check",
            channel="app",
            distance=0.1,
            threshold=0.5,
            quality={},
            liveness={},
            model_version="m",
            check_id=c,
        ),
        sid,
        check,
    ),
    st.builds(
        lambda s, c, reason, d, h, a, b: AbsenceMarked(
            check_id=c,
            student_id=s,
            school_id="A",
            reason=reason,
            reported_at=_instant(d, h),
            internship_starts_on=a,
            internship_ends_on=b,
        ),
        sid,
        check,
        st.sampled_from(["leave", "cognitive_internship", "shadowing_internship"]),
        day,
        hour,
        st.one_of(st.none(), iso_day),
        st.one_of(st.none(), iso_day),
    ),
    st.builds(
        lambda s, c: ForcedPassRecorded(
            check_id=c, student_id=s, school_id="A", terminal_id="t", attempts=3, evidence_ref="e"
        ),
        sid,
        check,
    ),
    st.builds(
        lambda sc, m, d: MonthResultsPublished(school_id=sc, month=m, published_on=d),
        school,
        st.sampled_from(MONTHS),
        iso_day,
    ),
    st.builds(
        lambda s, a, m, d: AppealFiled(
            filing_id=a, school_id="A", month=m, letter_ref="l", filed_on=None, authority_level=None,
            city=None, county=None, students=[AppealStudent(student_id=s, objected_on=d, objection_ids=[],
                                                            reason=None, class_name=None, name_masked=None)],
        ),
        sid,
        st.sampled_from(["P1", "P2"]),
        st.sampled_from(MONTHS),
        iso_day,
    ),
    st.builds(
        lambda s, a, m, dec: AppealResolved(
            appeal_id=a, student_id=s, month=m, decision=dec, decided_by="county"
        ),
        sid,
        st.sampled_from(["P1", "P2"]),
        st.sampled_from(MONTHS),
        st.sampled_from(["approved", "rejected"]),
    ),
    st.builds(
        lambda s, a, b, f: InternshipPlanFiled(
            plan_id="pl", student_id=s, school_id="A", kind="shadowing", starts_on=a, ends_on=b, filed_on=f
        ),
        sid,
        iso_day,
        iso_day,
        iso_day,
    ),
    st.builds(
        lambda s, g, a, b, f: PlacementConfirmed(
            placement_id="pm",
            student_id=s,
            school_id="A",
            grade=g,
            class_name="c",
            company="co",
            location="l",
            supervisor="s",
            supervisor_contact_masked="m",
            starts_on=a,
            ends_on=b,
            filed_on=f,
        ),
        sid,
        st.integers(1, 3),
        iso_day,
        iso_day,
        st.one_of(st.none(), iso_day),
    ),
    st.builds(lambda s, d: PlacementEnded(placement_id="pm", student_id=s, ended_on=d), sid, iso_day),
    st.builds(lambda s, d: InternshipDeparted(plan_id="pl", student_id=s, school_id="A", departed_on=d),
              sid, iso_day),
    st.builds(lambda s, d: InternshipReturned(plan_id="pl", student_id=s, school_id="A", returned_on=d),
              sid, iso_day),
    st.builds(lambda s, d, r: StudentLeft(student_id=s, school_id="A", reason=r, left_on=d),
              sid, iso_day, st.sampled_from(["withdrawn", "graduated", "transferred"])),
    st.builds(
        lambda s, d: PlacementUpdated(
            placement_id="pm", student_id=s, changes={"ends_on": d, "company": "x"}
        ),
        sid,
        iso_day,
    ),
    st.builds(
        lambda s, lvl, det, sem: HardshipDetermined(
            determination_id=det,
            student_id=s,
            school_id="A",
            level=lvl,
            categories=[1],
            effective_semester=sem,
        ),
        sid,
        st.sampled_from(["especially_difficult", "difficult", "not_difficult"]),
        st.sampled_from(["D1", "D2"]),
        st.sampled_from(SEMESTERS),
    ),
    st.builds(
        lambda s, det: HardshipRevoked(
            determination_id=det, student_id=s, effective_semester="2026-autumn", reason="r"
        ),
        sid,
        st.sampled_from(["D1", "D2"]),
    ),
    st.builds(
        lambda imp, part, parts, who: NationalRosterImported(
            import_id=imp,
            semester="2026-autumn",
            part=part,
            parts=parts,
            source_sha256="s",
            entries=[RosterEntry(student_id=w, id_number_hash=f"h{w}") for w in who],
        ),
        st.sampled_from(["I1", "I2"]),
        st.integers(1, 2),
        st.integers(1, 2),
        st.lists(sid, max_size=3, unique=True),
    ),
)


@st.composite
def histories(draw: st.DrawFn) -> list[Envelope]:
    """Mostly registered, enrolled students with a hardship level and a few checks, then noise."""
    base: list[Event] = []
    for student in STUDENTS:
        base.append(
            StudentRegistered(
                student_id=student,
                school=SchoolRef(draw(school), "C", "K"),
                name_masked="x*",
                id_number_hash=f"h{student}",
                id_number_masked="m",
                grade=2,
                class_name="c",
                major="m",
                enrolment_year=2025,
                enrolment_season="autumn",
                proposed_aid=draw(st.sampled_from([True, True, True, False])),
            )
        )
        if draw(st.integers(0, 3)):
            base.append(
                StudentEnrolled(
                    student_id=student, school_id="A", semester="2026-autumn", mode="verified", capture_id="c"
                )
            )
        base.append(HardshipDetermined(determination_id="D0", student_id=student, school_id="A",
                                       level="difficult", categories=[1], effective_semester="2026-autumn"))
    for check_id, month in zip(CHECKS[:3], MONTHS, strict=True):
        check_day = draw(st.sampled_from([d for d in DAYS if d.isoformat()[:7] == month] or DAYS))
        base.append(CheckOpened(check_id=check_id, kind="routine", semester="2026-autumn", month=month,
                                opens_at=_instant(check_day, 10), closes_at=_instant(check_day, 15),
                                initiated_by="province"))
        base.append(CheckClosed(check_id=check_id, closed_at=_instant(check_day, 15)))
        for student in STUDENTS:
            if draw(st.integers(0, 3)):
                base.append(CaptureVerified(capture_id="x", student_id=student, school_id="A",
                                            purpose="spot_check", channel="app", distance=0.1, threshold=0.5,
                                            quality={}, liveness={}, model_version="m", check_id=check_id))
    items = [(e, date(2026, 9, 5), 9, draw(uid)) for e in base]
    items += draw(st.lists(st.tuples(events_st, day, hour, uid), min_size=0, max_size=40))
    out = []
    for event, d, h, event_id in items:
        if isinstance(event, StudentRegistered):
            occurred = datetime(2026, 8, 20, 9, tzinfo=at(d).tzinfo)
        elif (
            isinstance(event, CaptureVerified | CheckClosed)
            and event.check_id in CHECKS[:3]
            and d == date(2026, 9, 5)
        ):
            opened = next(b for b in base if isinstance(b, CheckOpened) and b.check_id == event.check_id)
            occurred = datetime.fromisoformat(opened.opens_at) + timedelta(
                hours=1 if isinstance(event, CaptureVerified) else 5
            )
        else:
            occurred = at(d, h)
        out.append(_envelope(event, occurred, event_id))
    return out


def _envelope(event: Event, occurred: datetime, event_id) -> Envelope:  # type: ignore[no-untyped-def]
    return build_envelope(event, stream="s", actor=ACTOR, occurred_at=occurred, event_id=event_id)


def _full(events: list[Envelope]) -> dict:  # type: ignore[type-arg]
    ledger = Ledger()
    for e in events:
        ledger.apply(e)
    return {(s["student_id"], s["semester"]): s for s in derive_all(ledger, load_policy_book())}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.randoms(use_true_random=False))
def test_incremental_equals_full_replay_equals_shuffled_replay(
    events: list[Envelope], rnd: random.Random
) -> None:
    full = _full(events)

    view = IncrementalView(load_policy_book())
    for e in events:
        view.apply(e)
    assert view.statuses == full

    noisy = events + [rnd.choice(events) for _ in range(len(events) // 2)]
    rnd.shuffle(noisy)
    assert _full(noisy) == full

    # The live projection stores per-student facts as JSON between batches.
    ledger = Ledger()
    for e in noisy:
        ledger.apply(e)
        for key, facts in list(ledger.students.items()):
            ledger.students[key] = StudentFacts.from_json(facts.to_json())
    assert {(s["student_id"], s["semester"]): s for s in derive_all(ledger, load_policy_book())} == full
