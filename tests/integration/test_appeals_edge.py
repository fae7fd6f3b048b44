"""A school's month of appeals through the real services (issuer, relay, enrolment, spotcheck,
appeals, eligibility; RabbitMQ and PostgreSQL): objections inside and outside the window
(across a weekend, National Day and the Spring Festival with their swapped working days; a day
after today), two objections of one student, one filing with its printed letter (the PDF's text
read back: masked names, nothing unmasked), the signed scan, the authority's inbox with the
evidence, rulings refused to another level or area, approve, reject, unhandled at month end
(the CLI a cron job runs), and eligibility: the live status, an "as of" replay before and after
the ruling, the notes naming the filing and the ruling.

Spotcheck publishes the results on the days the window tests need: one spotcheck process per
day, its clock shifted (``AID_CLOCK_OFFSET_SECONDS``)."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pypdf
import pytest

from backbone.eventstore import PostgresEventStore
from backbone.workdays import checked_calendar
from contracts.calendar import SHANGHAI
from contracts.envelope import Actor
from contracts.events import MonthResultsPublished
from contracts.registry import build_envelope
from contracts.workdays import WorkCalendarError
from tests.flows import school_token
from tests.integration.appeals_site import STUDENTS, XIPING, ZMD, Site, appeals_site, offset
from tests.support import REPO, throwaway_database, wait_for

pytestmark = pytest.mark.integration

# (a spotcheck clock, what it does): publications on the days the window tests need, and the
# October check the students fail (never enrolled: not_enrolled_in_time)
DAYS = {
    "check": datetime(2026, 10, 22, 10, 30, tzinfo=SHANGHAI),
    "2026-10": datetime(2026, 11, 5, 17, 0, tzinfo=SHANGHAI),  # Thursday: the window spans a weekend
    "2026-09": datetime(2026, 9, 30, 17, 0, tzinfo=SHANGHAI),  # before National Day
    "2026-01": datetime(2026, 2, 12, 17, 0, tzinfo=SHANGHAI),  # before the Spring Festival
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with appeals_site(Path(tmp_path_factory.mktemp("appeals")), ("enrolment", "appeals", "eligibility"), DAYS,
                      {month: month for month in ("2026-10", "2026-09", "2026-01")}) as site:
        yield site


def objection(
    site: Site,
    student_id: str,
    received_on: str,
    month: str = "2026-10",
    reason: str = "当天在医院就诊，附病历",
) -> tuple[int, Any]:
    return site.appeals.api(
        "POST",
        "/appeals/objections",
        {"student_id": student_id, "month": month, "received_on": received_on, "reason": reason},
        token=site.staff,
    )


def refused(answer: tuple[int, Any]) -> tuple[int, Any]:
    status, body = answer
    return status, body.get("error") if isinstance(body, dict) else body


def rule(site: Site, token: str, student_id: str, decision: str, reason: str = "经核实") -> tuple[int, Any]:
    return site.appeals.api(
        "POST",
        "/appeals/filings/SC1-2026-10/rulings",
        {"student_id": student_id, "decision": decision, "reason": reason},
        token=token,
    )


def status_of(site: Site, student_id: str) -> dict[str, Any]:
    """The live eligibility status of the student's 2026-10."""
    status, body = site.procs["eligibility"].api("GET", f"/students/{student_id}", token=site.staff)
    assert status == 200, body
    (semester,) = [s for s in body["statuses"] if s["semester"] == "2026-autumn"]
    return next(m for m in semester["months"] if m["month"] == "2026-10")


def replayed(site: Site, student_id: str, as_of: datetime) -> dict[str, Any]:
    """The 2026-10 of an "as of" replay of the log (the auditors' CLI)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.eligibility.replay",
            "--dsn",
            site.system.database_url,
            "--as-of",
            as_of.isoformat(),
            "--student",
            student_id,
            "--out-json",
            "-",
            "--progress-every",
            "0",
        ],
        cwd=REPO,
        env=site.system.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    (semester,) = [s for s in json.loads(out.stdout)["statuses"] if s["semester"] == "2026-autumn"]
    return next(m for m in semester["months"] if m["month"] == "2026-10")


def recorded_at(site: Site, event_type: str, student_id: str) -> datetime:
    ((when,),) = site.rows(
        "SELECT recorded_at FROM events WHERE type = %s AND payload->>'student_id' = %s",
        event_type,
        student_id,
    )
    return when  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- the window


@pytest.mark.parametrize(
    ("month", "last_in", "first_late"),
    [
        ("2026-10", "2026-11-12", "2026-11-13"),  # published Thu 11-05: the weekend 11-07/08 does not count
        ("2026-09", "2026-10-13", "2026-10-14"),  # published 09-30: 10-01..07 off, Saturday 10-10 works
        ("2026-01", "2026-02-26", "2026-02-27"),  # published 02-12: Sat 02-14 works, 02-15..23 off
    ],
)
def test_objections_inside_the_window_are_recorded_and_late_ones_refused_naming_its_last_day(
    site: Site, month: str, last_in: str, first_late: str
) -> None:
    status, body = objection(site, "A0003", first_late, month)
    assert (status, body["error"]) == (422, "OBJECTION_LATE"), body
    assert last_in in body["message"], body
    status, body = objection(site, "A0003", last_in, month)
    assert status == 201, body
    assert (body["window_ends_on"], body["filing_id"]) == (last_in, f"SC1-{month}")
    ((payload,),) = site.rows(
        "SELECT payload FROM events WHERE type = 'ObjectionRecorded' AND payload->>'objection_id' = %s",
        body["objection_id"],
    )
    assert (payload["received_on"], payload["published_on"], payload["working_days"]) == (
        last_in,
        DAYS[month].date().isoformat(),
        5,
    )


def test_objections_dated_after_today_before_publication_or_elsewhere_are_refused(site: Site) -> None:
    tomorrow = (datetime.now(SHANGHAI).date() + timedelta(days=1)).isoformat()
    assert refused(objection(site, "A0001", tomorrow)) == (422, "RECEIVED_IN_FUTURE")
    assert refused(objection(site, "A0001", "2026-11-04")) == (422, "RECEIVED_BEFORE_PUBLICATION")
    assert refused(objection(site, "A0001", "2026-12-01", month="2026-12")) == (409, "RESULTS_NOT_PUBLISHED")
    other = site.appeals.api(
        "POST",
        "/appeals/objections",
        {"student_id": "A0001", "month": "2026-10", "received_on": "2026-11-06", "reason": "x"},
        token=school_token(site.system, "SC2"),
    )
    assert refused(other) == (403, "OUTSIDE_AREA")
    assert refused(
        site.appeals.api(
            "POST",
            "/appeals/objections",
            {"student_id": "A0001", "month": "2026-10", "received_on": "2026-11-06", "reason": "x"},
            token=site.county(),
        )
    ) == (403, "ROLE_FORBIDDEN")
    assert site.rows(
        "SELECT count(*) FROM events WHERE type = 'ObjectionRecorded' AND payload->>'student_id' = 'A0001'"
    ) == [(0,)]


# ----------------------------------------------------------------------------- a month, filed and ruled


def test_a_month_of_appeals_filed_printed_ruled_and_closed(site: Site) -> None:
    # objections: two for A0001 (the earlier one counts), A0002 on the window's last day
    for student_id, day, reason in (
        ("A0001", "2026-11-09", "补充材料：请假条"),
        ("A0001", "2026-11-06", "当天住院"),
        ("A0002", "2026-11-12", "终端故障未能签到"),
        ("A0003", "2026-11-10", "病假"),
    ):
        status, body = objection(site, student_id, day, reason=reason)
        assert status == 201, body

    status, filing = site.appeals.api("POST", "/appeals/filings", {"month": "2026-10"}, token=site.staff)
    assert status == 201, filing
    assert (filing["filing_id"], filing["authority_level"], filing["status"]) == (
        "SC1-2026-10",
        "county",
        "waiting",
    )
    students = {s["student_id"]: s for s in filing["students"]}
    assert list(students) == ["A0001", "A0002", "A0003"]  # each student once
    assert (students["A0001"]["objected_on"], len(students["A0001"]["objection_ids"])) == ("2026-11-06", 2)
    assert students["A0001"]["reason"] == "当天住院；补充材料：请假条"
    assert (students["A0002"]["name_masked"], students["A0002"]["class_name"]) == ("王**", "会计2班")
    assert refused(site.appeals.api("POST", "/appeals/filings", {"month": "2026-10"}, token=site.staff)) == (
        409,
        "ALREADY_FILED",
    )
    assert refused(objection(site, "A0001", "2026-11-10")) == (409, "ALREADY_FILED")
    ((filed_payload, actor),) = site.rows("SELECT payload, actor FROM events WHERE type = 'AppealFiled'")
    assert [s["student_id"] for s in filed_payload["students"]] == ["A0001", "A0002", "A0003"]
    assert (actor["kind"], actor["school"]) == ("school", "SC1")

    # the letter: a PDF whose text names the school, the month, the classes and MASKED names only
    status, body = site.appeals.api("GET", "/appeals/filings/SC1-2026-10/letter", token=site.county())
    assert status == 200, body
    pdf = base64.b64decode(body["content_base64"])
    assert pdf.startswith(b"%PDF")
    text = "".join("".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    for expected in (
        "驻马店",
        "2026年10月",
        "会计2班",
        "李**",
        "王**",
        "赵*",
        "2026-11-06",
        "当天住院",
        "终端故障未能签到",
        "驿城区县级学生资助管理部门",
    ):
        assert expected in text, expected
    for name in STUDENTS.values():
        assert name not in text and name[1:] not in text, "a full name is in the letter"
    assert "110101" not in text and "********" not in text  # no ID number, even masked

    # the signed scan, once
    scan = {"scan": base64.b64encode(b"\xff\xd8\xff\xe0signed-and-stamped" * 10).decode()}
    signed_path = "/appeals/filings/SC1-2026-10/signed"
    assert refused(site.appeals.api("GET", signed_path, token=site.staff)) == (404, "NOT_SIGNED")
    status, body = site.appeals.api("POST", "/appeals/filings/SC1-2026-10/signed", scan, token=site.staff)
    assert status == 201, body
    assert refused(
        site.appeals.api("POST", "/appeals/filings/SC1-2026-10/signed", scan, token=site.staff)
    ) == (409, "ALREADY_SIGNED")

    # the signed scan read back, as attached: the school, the county that rules, the auditor
    for token in (site.staff, site.county(), site.system.token("auditor")):
        status, body = site.appeals.api("GET", signed_path, token=token)
        assert status == 200, body
        assert (body["filing_id"], body["content_type"], body["filename"]) == (
            "SC1-2026-10", "image/jpeg", "申诉函签字盖章件-SC1-2026-10.jpg")
        assert body["content_base64"] == scan["scan"]
    for token, answer in (
        (site.system.token("city", city=ZMD), (403, "NOT_SAME_LEVEL")),
        (site.system.token("province"), (403, "NOT_SAME_LEVEL")),
        (site.county(XIPING), (403, "OUTSIDE_AREA")),
        (school_token(site.system, "SC2"), (403, "OUTSIDE_AREA")),
    ):
        assert refused(site.appeals.api("GET", signed_path, token=token)) == answer
    assert refused(site.appeals.api("GET", "/appeals/filings/SC1-2026-09/signed", token=site.staff)) == (
        404, "UNKNOWN_FILING")

    # the inbox: the county of the school's area sees it, with the failed check as evidence
    status, inbox = site.appeals.api("GET", "/appeals/inbox", token=site.county())
    assert status == 200, inbox
    (waiting,) = inbox["filings"]
    assert (waiting["filing_id"], waiting["signed"]) == ("SC1-2026-10", True)
    for student in waiting["students"]:
        (failed,) = student["failed_checks"]
        assert (failed["check_id"], failed["closed"], failed["verdicts"], failed["absences"]) == (
            site.check_id,
            True,
            [],
            [],
        )
    for outsider in (site.county(XIPING), site.system.token("city", city=ZMD), site.system.token("province")):
        status, body = site.appeals.api("GET", "/appeals/inbox", token=outsider)
        assert (status, body) == (200, {"filings": []})

    # rulings: another level or another area is refused; the county approves one and rejects one
    for token, answer in (
        (site.system.token("city", city=ZMD), (403, "NOT_SAME_LEVEL")),
        (site.system.token("province"), (403, "NOT_SAME_LEVEL")),
        (site.county(XIPING), (403, "OUTSIDE_AREA")),
        (site.staff, (403, "ROLE_FORBIDDEN")),
    ):
        assert refused(rule(site, token, "A0001", "approved")) == answer
    assert site.rows("SELECT count(*) FROM events WHERE type = 'AppealResolved'") == [(0,)]
    status, body = rule(site, site.county(), "A0001", "approved", "病历属实")
    assert (status, body) == (
        200,
        {"filing_id": "SC1-2026-10", "student_id": "A0001", "decision": "approved", "decided_by": "county"},
    )
    assert refused(rule(site, site.county(), "A0001", "rejected")) == (409, "ALREADY_RULED")
    assert rule(site, site.county(), "A0002", "rejected", "无相关证明")[0] == 200

    # month end: the cron job's CLI, run as on the first day of the next month, closes A0003
    today = datetime.now(SHANGHAI).date()
    first_of_next = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    at = datetime(first_of_next.year, first_of_next.month, 1, 0, 5, tzinfo=SHANGHAI)
    run = subprocess.run(
        [sys.executable, "-m", "services.appeals", "close-unhandled"],
        cwd=REPO,
        env=site.system.env(AID_CLOCK_OFFSET_SECONDS=offset(at)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and "closed 1 filing(s) unhandled: SC1-2026-10" in run.stdout, run.stderr
    ((closing,),) = site.rows("SELECT payload FROM events WHERE type = 'AppealClosedUnhandled'")
    assert (closing["student_ids"], closing["closed_on"]) == (
        ["A0003"],
        (first_of_next - timedelta(days=1)).isoformat(),
    )
    assert refused(rule(site, site.county(), "A0003", "approved")) == (409, "FILING_CLOSED")
    run = subprocess.run(
        [sys.executable, "-m", "services.appeals", "close-unhandled"],
        cwd=REPO,
        env=site.system.env(AID_CLOCK_OFFSET_SECONDS=offset(at)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "closed 0 filing(s)" in run.stdout, run.stderr  # once
    status, body = site.appeals.api("GET", "/appeals/filings/SC1-2026-10", token=site.county())
    assert (status, body["status"]) == (200, "closed_unhandled"), body
    outcomes = [
        (s["student_id"], s["outcome"], s["outcome_zh"], s["ruling_reason"]) for s in body["students"]
    ]
    assert outcomes == [
        ("A0001", "approved", "申诉已通过，该月状态改为正常", "病历属实"),
        ("A0002", "rejected", "申诉被驳回，依然记为原有状态", "无相关证明"),
        ("A0003", "closed_unhandled", "当月未予处理，依然记为原有状态", None),
    ]
    assert site.appeals.api("GET", "/appeals/inbox", token=site.county()) == (200, {"filings": []})

    # eligibility: every outcome reached it; the notes name the filing and the ruling
    ids = [r[0] for r in site.rows("SELECT event_id::text FROM events WHERE type LIKE 'Appeal%%'")]

    def processed() -> bool:
        done = site.rows(
            "SELECT count(*) FROM processed_events WHERE consumer = 'eligibility'"
            " AND event_id = ANY(%s::uuid[])",
            ids,
        )
        return bool(done == [(len(ids),)])

    wait_for(processed, timeout=60, what="eligibility to apply the filing, the rulings and the closing")
    ((approval,),) = site.rows(
        "SELECT event_id::text FROM events WHERE type = 'AppealResolved' AND payload->>'student_id' = 'A0001'"
    )
    approved = status_of(site, "A0001")
    assert (approved["status"], approved["replaced"]) == (
        "passed_on_appeal",
        {"status": "not_enrolled_in_time", "outcome": "failed"},
    )
    assert approved["notes"] == [f"appeal SC1-2026-10: approved by the county authority (ruling {approval})"]
    assert approval in approved["event_ids"]
    rejected = status_of(site, "A0002")
    assert (rejected["status"], rejected["outcome"]) == ("not_enrolled_in_time", "failed")
    assert "appeal SC1-2026-10: rejected by the county authority" in rejected["notes"][0]
    unhandled = status_of(site, "A0003")
    assert (unhandled["status"], unhandled["outcome"]) == ("not_enrolled_in_time", "failed")
    assert (
        "closed unhandled on" in unhandled["notes"][0] and "original result stands" in unhandled["notes"][0]
    )

    # the audit replay "as of" just before the approval shows the old status, just after the new one
    ruled = recorded_at(site, "AppealResolved", "A0001")
    before = replayed(site, "A0001", ruled - timedelta(milliseconds=1))
    assert (before["status"], before["notes"]) == (
        "not_enrolled_in_time",
        ["appeal SC1-2026-10: not handled, original result stands"],
    )
    after = replayed(site, "A0001", ruled)
    assert (after["status"], after["notes"]) == ("passed_on_appeal", approved["notes"])
    for name in ("appeals", "eligibility"):
        assert "Traceback" not in site.procs[name].log_tail(200_000), name


@pytest.mark.parametrize("service", ["appeals", "eligibility"])
def test_a_service_does_not_start_when_the_calendar_lacks_the_current_year(site: Site, service: str) -> None:
    far = datetime(2031, 3, 2, 10, 0, tzinfo=SHANGHAI)  # contracts/data/working-calendar.yml ends earlier
    proc = site.system.service(service, name=f"{service}-2031", AID_CLOCK_OFFSET_SECONDS=offset(far)).start(
        wait=False
    )
    assert proc.popen is not None
    code = proc.popen.wait(timeout=60)
    assert code != 0
    assert "the working-day calendar lacks 2031" in proc.log_tail(20_000)


def test_the_start_up_check_also_needs_every_year_results_were_published_in() -> None:
    with throwaway_database() as db:
        assert checked_calendar(db).covers(date(2026, 11, 26))
        published = MonthResultsPublished(school_id="SC1", month="2024-12", published_on="2024-12-30")
        PostgresEventStore(db).append(
            [
                build_envelope(
                    published, stream="results-SC1-2024-12", actor=Actor(kind="school", id="staff:SC1")
                )
            ]
        )
        with pytest.raises(WorkCalendarError, match="lacks 2024"):
            checked_calendar(db)
