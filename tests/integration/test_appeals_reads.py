"""The appeals service's reads over the real services (issuer, relay, enrolment, spotcheck,
appeals; RabbitMQ and PostgreSQL):

- a school lists the objections it recorded for a month before filing (``GET
  /appeals/schools/{school_id}/objections?month=``): its own school, the same-level authority
  of its area; another level, another area, another school refused; names masked; every
  student shown logged as a personal-data read;
- the authority's inbox and the month-end closing are complete however long the log: more than
  5000 filings (closed) before the school's filing, more than 5000 filings (ruled) and checks
  after it, and the inbox still lists the filing with its failed check, the month-end closes it
  (they used to read "the newest 5000 events of a type").

The many events are appended straight into the log with the event store's append, in batches."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backbone.eventstore import PostgresEventStore, read_unclosed_filings_in
from contracts.calendar import SHANGHAI
from contracts.envelope import Actor, Envelope
from contracts.events import (
    AppealClosedUnhandled,
    AppealFiled,
    AppealFiledV1,
    AppealResolved,
    AppealStudent,
    CheckOpened,
    Event,
)
from contracts.registry import build_envelope
from tests.flows import school_token
from tests.integration.appeals_site import STUDENTS, XIPING, ZMD, Site, appeals_site, offset
from tests.support import REPO

pytestmark = pytest.mark.integration

MANY = 5001  # more than the 5000 the old reads took
DAYS = {
    "check": datetime(2026, 10, 22, 10, 30, tzinfo=SHANGHAI),
    "publish": datetime(2026, 11, 5, 17, 0, tzinfo=SHANGHAI),  # 2026-10 published: window to 11-12
}
OTHERS = Actor(kind="school", id="staff:bulk")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with appeals_site(Path(tmp_path_factory.mktemp("appeals-reads")), ("enrolment", "appeals"), DAYS,
                      {"2026-10": "publish"}) as site:
        yield site


def objection(site: Site, student_id: str, received_on: str, reason: str) -> None:
    status, body = site.appeals.api("POST", "/appeals/objections", {
        "student_id": student_id, "month": "2026-10", "received_on": received_on, "reason": reason},
        token=site.staff)
    assert status == 201, body


def refused(answer: tuple[int, Any]) -> tuple[int, Any]:
    status, body = answer
    return status, body.get("error") if isinstance(body, dict) else body


def append_in_batches(site: Site, events: list[tuple[Event, str, datetime]], batch: int = 1000) -> None:
    """Append ``events`` (event, stream, occurred_at) straight into the log."""
    store = PostgresEventStore(site.system.database_url)
    envelopes: list[Envelope] = [build_envelope(e, stream=stream, actor=OTHERS, occurred_at=at)
                                 for e, stream, at in events]
    for i in range(0, len(envelopes), batch):
        store.append(envelopes[i:i + batch])


def other_filing(n: int, filed_on: str, month: str) -> AppealFiled:
    """A filing of another school (another city: no authority of 驻马店 rules it)."""
    return AppealFiled(
        filing_id=f"X{n:05d}-{month}", school_id=f"X{n:05d}", month=month,
        students=[AppealStudent(student_id=f"S{n:05d}", objected_on=filed_on, objection_ids=[f"O{n}"],
                                reason="病假", class_name="1班", name_masked="张*")],
        letter_ref="blob:" + "c" * 64, filed_on=filed_on, authority_level="county", city="郑州市",
        county="金水区")


# ----------------------------------------------------------------------------- objections listed


def test_a_school_lists_its_months_objections_before_filing(site: Site) -> None:
    objection(site, "A0001", "2026-11-09", "补充材料：请假条")
    objection(site, "A0001", "2026-11-06", "当天住院")
    objection(site, "A0002", "2026-11-12", "终端故障未能签到")
    path = "/appeals/schools/SC1/objections?month=2026-10"

    status, body = site.appeals.api("GET", path, token=site.staff)
    assert status == 200, body
    assert (body["school_id"], body["month"], body["filing_id"], body["filed"]) == (
        "SC1", "2026-10", "SC1-2026-10", False)
    listed = [(o["student_id"], o["name_masked"], o["class_name"], o["received_on"], o["reason"],
               o["window_ends_on"]) for o in body["objections"]]
    assert listed == [
        ("A0001", "李**", "会计2班", "2026-11-09", "补充材料：请假条", "2026-11-12"),
        ("A0001", "李**", "会计2班", "2026-11-06", "当天住院", "2026-11-12"),
        ("A0002", "王**", "会计2班", "2026-11-12", "终端故障未能签到", "2026-11-12"),
    ]
    assert len({o["objection_id"] for o in body["objections"]}) == 3
    for name in STUDENTS.values():
        assert name not in str(body) and name[1:] not in str(body), "a full name is in the list"

    # the same-level authority of the school's area reads it too; each student shown is logged
    status, by_county = site.appeals.api("GET", path, token=site.county())
    assert (status, by_county["objections"]) == (200, body["objections"])
    logged = site.rows("SELECT caller_role, student_id FROM personal_data_reads"
                       " WHERE service = 'appeals' AND route = 'objections' ORDER BY id")
    assert logged == [("school", "A0001"), ("school", "A0002"), ("county", "A0001"), ("county", "A0002")]

    # others are refused; nothing of theirs is logged
    for token, answer in (
        (site.system.token("city", city=ZMD), (403, "NOT_SAME_LEVEL")),
        (site.system.token("province"), (403, "NOT_SAME_LEVEL")),
        (site.county(XIPING), (403, "OUTSIDE_AREA")),
        (school_token(site.system, "SC2"), (403, "OUTSIDE_AREA")),
        (site.system.token("auditor"), (403, "ROLE_FORBIDDEN")),
    ):
        assert refused(site.appeals.api("GET", path, token=token)) == answer
    assert len(site.rows("SELECT 1 FROM personal_data_reads WHERE route = 'objections'")) == 4
    assert refused(site.appeals.api("GET", "/appeals/schools/SC1/objections?month=2026-13",
                                    token=site.staff))[0] == 422
    assert refused(site.appeals.api("GET", "/appeals/schools/SC1/objections", token=site.staff))[0] == 422
    assert refused(site.appeals.api("GET", "/appeals/schools/NOPE/objections?month=2026-10",
                                    token=site.county())) == (404, "UNKNOWN_SCHOOL")
    status, empty = site.appeals.api("GET", "/appeals/schools/SC1/objections?month=2026-09", token=site.staff)
    assert (status, empty["objections"], empty["filed"]) == (200, [], False)


# ----------------------------------------------------------------------------- a long log


def test_the_inbox_and_the_month_end_see_a_filing_among_more_than_5000_of_each_type(site: Site) -> None:
    today = datetime.now(SHANGHAI).date()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    earlier = datetime.combine(last_month, datetime.min.time(), SHANGHAI) + timedelta(hours=12)
    started = time.perf_counter()
    # before the filing: MANY filings of other schools, filed last month and closed at its end
    before: list[tuple[Event, str, datetime]] = []
    for n in range(MANY):
        filing = other_filing(n, last_month.isoformat(), "2026-09")
        stream = f"appeals-{filing.filing_id}"
        before.append((filing, stream, earlier))
        closed = AppealClosedUnhandled(
            filing_id=filing.filing_id, school_id=filing.school_id, month="2026-09",
            student_ids=[f"S{n:05d}"], closed_on=(today.replace(day=1) - timedelta(days=1)).isoformat(),
            reason="not ruled")
        before.append((closed, stream, earlier))
    append_in_batches(site, before)

    objection(site, "A0003", "2026-11-10", "病假")
    status, filing = site.appeals.api("POST", "/appeals/filings", {"month": "2026-10"}, token=site.staff)
    assert status == 201, filing
    status, listed = site.appeals.api("GET", "/appeals/schools/SC1/objections?month=2026-10",
                                      token=site.staff)
    assert (status, listed["filed"], len(listed["objections"])) == (200, True, 4)

    # after it: MANY filings of other schools this month, each ruled, and MANY checks of September
    now = datetime.now(SHANGHAI)
    after: list[tuple[Event, str, datetime]] = []
    for n in range(MANY, 2 * MANY):
        other = other_filing(n, today.isoformat(), "2026-10")
        stream = f"appeals-{other.filing_id}"
        after.append((other, stream, now))
        after.append((AppealResolved(appeal_id=other.filing_id, student_id=f"S{n:05d}", month="2026-10",
                                     decision="rejected", decided_by="county", reason="无证明"), stream, now))
        after.append((CheckOpened(check_id=f"K{n}", kind="routine", semester="2026-autumn", month="2026-09",
                                  opens_at="2026-09-15T10:00:00+08:00", closes_at="2026-09-15T15:00:00+08:00",
                                  initiated_by="county", school_ids=[f"X{n:05d}"]), f"check-K{n}", now))
    append_in_batches(site, after)
    generated = time.perf_counter() - started
    counts = dict(site.rows("SELECT type, count(*) FROM events WHERE type IN"
                            " ('AppealFiled', 'CheckOpened', 'AppealResolved', 'AppealClosedUnhandled')"
                            " GROUP BY type"))
    assert counts == {"AppealFiled": 2 * MANY + 1, "CheckOpened": MANY + 1, "AppealResolved": MANY,
                      "AppealClosedUnhandled": MANY}
    ((ours,),) = site.rows("SELECT position FROM events WHERE type = 'AppealFiled'"
                           " AND payload->>'filing_id' = 'SC1-2026-10'")
    assert site.rows("SELECT count(*) FROM events WHERE type = 'AppealFiled' AND position > %s",
                     ours) == [(MANY,)]  # the newest 5000 filings would not hold it

    # the inbox: the county sees the filing, each student with the closed check failed
    started = time.perf_counter()
    status, inbox = site.appeals.api("GET", "/appeals/inbox", token=site.county())
    inbox_seconds = time.perf_counter() - started
    assert status == 200, inbox
    (waiting,) = inbox["filings"]
    assert waiting["filing_id"] == "SC1-2026-10"
    assert [s["student_id"] for s in waiting["students"]] == ["A0001", "A0002", "A0003"]
    for student in waiting["students"]:
        (failed,) = student["failed_checks"]
        assert (failed["check_id"], failed["closed"], failed["result"]) == (site.check_id, True, "failed")
        assert student["other_checks"] == []
    assert site.appeals.api("GET", "/appeals/inbox", token=site.county(XIPING)) == (200, {"filings": []})

    # the month end (the cron job's CLI as on the 1st of next month) closes exactly this filing
    first_of_next = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    at = datetime(first_of_next.year, first_of_next.month, 1, 0, 5, tzinfo=SHANGHAI)
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "services.appeals", "close-unhandled"], cwd=REPO,
                         env=site.system.env(AID_CLOCK_OFFSET_SECONDS=offset(at)), capture_output=True,
                         text=True, timeout=120)
    close_seconds = time.perf_counter() - started
    assert run.returncode == 0 and "closed 1 filing(s) unhandled: SC1-2026-10" in run.stdout, run.stderr
    ((closing,),) = site.rows("SELECT payload FROM events WHERE type = 'AppealClosedUnhandled'"
                              " AND payload->>'filing_id' = 'SC1-2026-10'")
    assert closing["student_ids"] == ["A0001", "A0002", "A0003"]
    assert "Traceback" not in site.appeals.log_tail(200_000)
    print(f"\n{len(before) + len(after)} events appended in {generated:.1f}s;"
          f" inbox {inbox_seconds * 1000:.0f} ms; close-unhandled CLI {close_seconds:.2f}s")


def test_the_unclosed_filings_read_takes_a_v1_appeal_by_its_day_and_its_ruling(site: Site) -> None:
    """``read_unclosed_filings_in`` on a v1 appeal (no filed_on, one student at the top level):
    not listed while the month of its occurred_at runs; listed after it while unruled; not once
    ruled."""
    old = datetime(2026, 8, 20, 10, 0, tzinfo=SHANGHAI)
    legacy = AppealFiledV1(appeal_id="V1-A", student_id="A0001", school_id="SC1", month="2026-07",
                           objected_on="2026-08-05", letter_ref="blob:" + "d" * 64)
    append_in_batches(site, [(legacy, "appeal-V1-A", old)])

    def unclosed(before: str) -> list[str]:
        with psycopg.connect(site.system.database_url) as conn:
            return [e.payload["filing_id"] for e in read_unclosed_filings_in(conn, before)]

    assert "V1-A" not in unclosed("2026-08-01")  # filed on 08-20: August is not over on 08-01
    assert "V1-A" in unclosed("2026-09-01")
    append_in_batches(site, [(AppealResolved(appeal_id="V1-A", student_id="A0001", month="2026-07",
                                             decision="approved", decided_by="county"), "appeal-V1-A", old)])
    assert "V1-A" not in unclosed("2026-09-01")
