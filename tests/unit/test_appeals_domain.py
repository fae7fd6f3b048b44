"""The appeals rules on plain data (services/appeals/domain.py): the objection window counted
in working days (weekends, National Day and the Spring Festival with their swapped working
days), late and future objections refused naming the day, one filing per school and month
listing each student once, the letter's content (masked names only), rulings by the same-level
authority within the filing's month, and the closing of unruled students at month end."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import get_args

import pypdf
import pytest

from backbone.errors import DomainError
from contracts.envelope import Actor, Envelope
from contracts.events import Event, ObjectionRecorded, SchoolRef, SchoolRegistered, StudentRegistered
from contracts.reasons import APPEAL_OUTCOMES
from contracts.registry import build_envelope, parse_envelope
from contracts.workdays import load_work_calendar
from services.appeals import domain
from services.appeals.commands import FiledStudent
from services.appeals.letter import letter_pdf

CAL = load_work_calendar()
SCHOOL = SchoolRegistered(
    school_id="SC1", name="驻马店职业技术学校", city="驻马店市", county="驿城区", administered_by="county"
)
STAFF = Actor(kind="school", id="staff:SC1")


def registered(
    student_id: str, name_masked: str = "张*", class_name: str = "数控2101班"
) -> StudentRegistered:
    return StudentRegistered(
        student_id=student_id,
        name_masked=name_masked,
        id_number_hash="0" * 64,
        id_number_masked="410102********123X",
        grade=2,
        class_name=class_name,
        major="数控",
        enrolment_year=2025,
        enrolment_season="autumn",
        proposed_aid=True,
        school=SchoolRef(school_id="SC1", city="驻马店市", county="驿城区"),
    )


def objection(
    state: domain.MonthAppeals,
    student_id: str,
    received: str,
    *,
    published: str = "2026-11-05",
    today: str = "2026-11-26",
    reason: str = "病假",
    month: str = "2026-10",
) -> ObjectionRecorded:
    return domain.record_objection(
        state,
        objection_id=f"O-{student_id}-{received}",
        student_id=student_id,
        school_id="SC1",
        month=month,
        received_on=date.fromisoformat(received),
        reason=reason,
        published_on=published,
        today=date.fromisoformat(today),
        calendar=CAL,
    )


def refused(code: str, call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(DomainError) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    assert info.value.code == code, info.value.message
    return info.value.message


def stream(*events: Event) -> list[Envelope]:
    """``events`` as a stream reads them back: validated, upcast, versions 1, 2, ..."""
    return [
        replace(parse_envelope(build_envelope(e, stream="s", actor=STAFF).to_dict()), stream_version=i)
        for i, e in enumerate(events, 1)
    ]


# --------------------------------------------------------------------------- the window


@pytest.mark.parametrize(
    ("published", "last_in", "first_late"),
    [
        ("2026-11-05", "2026-11-12", "2026-11-13"),  # Thu: the weekend 11-07/08 does not count
        ("2026-09-30", "2026-10-13", "2026-10-14"),  # National Day 10-01..07 off, Sat 10-10 works
        ("2026-02-12", "2026-02-26", "2026-02-27"),  # Spring Festival 02-15..23 off, Sat 02-14 works
    ],
)
def test_the_window_is_five_working_days_after_publication(
    published: str, last_in: str, first_late: str
) -> None:
    state = domain.MonthAppeals()
    assert objection(state, "A1", last_in, published=published).window_ends_on == last_in
    message = refused("OBJECTION_LATE", objection, state, "A1", first_late, published=published)
    assert last_in in message  # the error names the window's last day


def test_an_objection_after_today_or_before_publication_is_refused() -> None:
    state = domain.MonthAppeals()
    assert "2026-11-10" in refused(
        "RECEIVED_IN_FUTURE", objection, state, "A1", "2026-11-11", today="2026-11-10"
    )
    refused("RECEIVED_BEFORE_PUBLICATION", objection, state, "A1", "2026-11-04")
    refused(
        "RESULTS_NOT_PUBLISHED",
        domain.record_objection,
        state,
        objection_id="x",
        student_id="A1",
        school_id="SC1",
        month="2026-10",
        received_on=date(2026, 11, 6),
        reason="r",
        published_on=None,
        today=date(2026, 11, 26),
        calendar=CAL,
    )


def test_a_year_the_calendar_lacks_is_an_error_not_a_weekday_count() -> None:
    message = refused(
        "CALENDAR_YEAR_MISSING",
        objection,
        domain.MonthAppeals(),
        "A1",
        "2028-01-03",
        published="2027-12-28",
        today="2028-01-05",
        month="2027-12",
    )
    assert "2028" in message


# --------------------------------------------------------------------------- the filing


def test_one_filing_per_month_lists_each_student_once_with_every_objection() -> None:
    state = domain.MonthAppeals()
    state.objections = [
        objection(state, "A1", "2026-11-09", reason="病假"),
        objection(state, "B2", "2026-11-06", reason="终端故障"),
        objection(state, "A1", "2026-11-06", reason="补充病历"),
    ]
    students = {"A1": registered("A1", "李*"), "B2": registered("B2", "王*", "会计2102班")}
    filed = domain.file_month(
        state,
        school=SCHOOL,
        month="2026-10",
        today=date(2026, 11, 26),
        students=students,
        letter_ref="blob:x",
    )
    assert (filed.filing_id, filed.authority_level, filed.city, filed.county, filed.filed_on) == (
        "SC1-2026-10",
        "county",
        "驻马店市",
        "驿城区",
        "2026-11-26",
    )
    assert [(s.student_id, s.objected_on, len(s.objection_ids), s.reason) for s in filed.students] == [
        ("A1", "2026-11-06", 2, "补充病历；病假"),
        ("B2", "2026-11-06", 1, "终端故障"),
    ]
    state.filed = filed
    refused(
        "ALREADY_FILED",
        domain.file_month,
        state,
        school=SCHOOL,
        month="2026-10",
        today=date(2026, 11, 26),
        students=students,
        letter_ref="blob:x",
    )
    refused("ALREADY_FILED", objection, state, "C3", "2026-11-10")
    refused(
        "NO_OBJECTIONS",
        domain.file_month,
        domain.MonthAppeals(),
        school=SCHOOL,
        month="2026-10",
        today=date(2026, 11, 26),
        students={},
        letter_ref="blob:x",
    )


def test_the_letter_prints_masked_names_and_extractable_chinese_text() -> None:
    state = domain.MonthAppeals()
    state.objections = [objection(state, "A1", "2026-11-09", reason="当天住院，附病历")]
    rows = domain.letter_students(state, {"A1": registered("A1", "李*")})
    pdf = letter_pdf(domain.letter(SCHOOL, "2026-10", rows, date(2026, 11, 26)))
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    compact = "".join(text.split())
    for expected in (
        "驻马店职业技术学校",
        "2026年10月",
        "数控2101班",
        "李*",
        "2026-11-09",
        "当天住院，附病历",
        "驿城区县级学生资助管理部门",
        "2026年11月26日",
    ):
        assert expected in compact, expected
    assert "410102" not in text and "A1" not in compact.replace("SC1", "")  # no ID number, no student id


# --------------------------------------------------------------------------- rulings, month end


def filed_state(filed_on: str = "2026-11-26") -> domain.MonthAppeals:
    state = domain.MonthAppeals()
    state.objections = [objection(state, "A1", "2026-11-09"), objection(state, "B2", "2026-11-10")]
    state.filed = domain.file_month(
        state,
        school=SCHOOL,
        month="2026-10",
        today=date.fromisoformat(filed_on),
        students={},
        letter_ref="blob:x",
    )
    return state


def test_rulings_by_the_same_level_within_the_filing_month_once_per_student() -> None:
    state = filed_state()
    today = date(2026, 11, 30)
    for level in ("city", "province"):
        refused(
            "NOT_SAME_LEVEL",
            domain.rule,
            state,
            student_id="A1",
            decision="approved",
            reason="r",
            level=level,
            school_level="county",
            today=today,
        )
    ruling = domain.rule(
        state,
        student_id="A1",
        decision="approved",
        reason="病历属实",
        level="county",
        school_level="county",
        today=today,
    )
    assert (ruling.appeal_id, ruling.month, ruling.decided_by, ruling.reason) == (
        "SC1-2026-10",
        "2026-10",
        "county",
        "病历属实",
    )
    state.rulings["A1"] = ruling
    refused(
        "ALREADY_RULED",
        domain.rule,
        state,
        student_id="A1",
        decision="rejected",
        reason="r",
        level="county",
        school_level="county",
        today=today,
    )
    refused(
        "NOT_IN_FILING",
        domain.rule,
        state,
        student_id="Z9",
        decision="rejected",
        reason="r",
        level="county",
        school_level="county",
        today=today,
    )
    refused(
        "FILING_CLOSED",
        domain.rule,
        state,
        student_id="B2",
        decision="approved",
        reason="r",
        level="county",
        school_level="county",
        today=date(2026, 12, 1),
    )


def test_unruled_students_are_closed_at_the_end_of_the_filing_month() -> None:
    state = filed_state()
    state.rulings["A1"] = domain.rule(
        state,
        student_id="A1",
        decision="rejected",
        reason="无证明",
        level="county",
        school_level="county",
        today=date(2026, 11, 27),
    )
    assert domain.close_unhandled(state, date(2026, 11, 30)) is None  # the month is not over
    closing = domain.close_unhandled(state, date(2026, 12, 1))
    assert closing is not None
    assert (closing.filing_id, closing.student_ids, closing.closed_on) == (
        "SC1-2026-10",
        ["B2"],
        "2026-11-30",
    )
    state.closed = closing
    assert domain.close_unhandled(state, date(2026, 12, 2)) is None  # once
    refused(
        "FILING_CLOSED",
        domain.rule,
        state,
        student_id="B2",
        decision="approved",
        reason="r",
        level="county",
        school_level="county",
        today=date(2026, 11, 30),
    )
    december = filed_state("2026-12-31")
    assert domain.close_unhandled(december, date(2027, 1, 1)).closed_on == "2026-12-31"  # type: ignore[union-attr]


def test_the_month_is_folded_from_its_stream_and_a_v1_appeal_reads_as_a_filing() -> None:
    state = filed_state()
    assert state.filed is not None and state.objections
    folded = domain.month_appeals(stream(*state.objections, state.filed))
    assert (folded.filed, folded.objections, folded.version) == (state.filed, state.objections, 3)
    v1 = {
        "event_id": "0c5b2d2e-7a4b-4d39-9b2a-4b0c6f1d3a11",
        "type": "AppealFiled",
        "schema_version": 1,
        "stream": "appeal-a1",
        "stream_version": 1,
        "occurred_at": datetime(2026, 11, 3, 2, tzinfo=UTC).isoformat(),
        "actor": STAFF.to_dict(),
        "correlation_id": "0c5b2d2e-7a4b-4d39-9b2a-4b0c6f1d3a11",
        "causation_id": None,
        "payload": {
            "appeal_id": "a1",
            "student_id": "A1",
            "school_id": "SC1",
            "month": "2026-10",
            "objected_on": "2026-11-03",
            "letter_ref": "blob:old",
        },
    }
    old = domain.month_appeals([parse_envelope(v1)])
    assert old.filed is not None and old.filed.filing_id == "a1" and old.filed_at == "2026-11-03"
    assert [s.student_id for s in old.filed.students] == ["A1"] and old.filed.authority_level is None
    ruling = domain.rule(
        old,
        student_id="A1",
        decision="approved",
        reason="r",
        level="county",
        school_level="county",
        today=date(2026, 11, 20),
    )
    assert ruling.appeal_id == "a1"


def test_every_appeal_outcome_has_chinese_and_english_text() -> None:
    outcomes = get_args(FiledStudent.model_fields["outcome"].annotation)
    assert set(outcomes) <= set(APPEAL_OUTCOMES)
    for zh, en in APPEAL_OUTCOMES.values():
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh) and en.isascii()
