"""A semester end to end, over the real RabbitMQ and PostgreSQL with every service it needs as a
local process (relay, enrolment, spotcheck, facematch with the real models, eligibility,
hardship, the issuer), driven through the terminal simulator's client (simulator/client.py) as a
school terminal, the school's aid office and the province would drive it.

One directly administered school (直属), its roster imported from a CSV file, 16 students; the
ten who enrol have their own face (real photos of ../shared/faces and ../shared/faces-extra,
simulator/faces.py; the school's duplicate check allows no face twice). Enrolment in October
before the deadline (one impostor refused as a duplicate identity, two refused by liveness, one
provisional: the ID-card photo is someone else's), one late; three monthly checks (October,
November, December); a leave; an internship of more than three months whose plan was filed
too late; a placement internship (and a first-year student refused one); a forced pass after
three failed confirmations; a student who withdrew; a targeted check in December (and a
challenged burst of photos refused); October's list published.
Eligibility's statuses must then equal the table ``EXPECTED``.

The services' clock moves by restarting enrolment and spotcheck with ``AID_CLOCK_OFFSET_SECONDS``
(a check is opened on the day it runs, between 10:00 and 15:00); face matching and eligibility
read no clock (verdicts carry the capture's time). Real photos cannot answer facematch's
liveness challenge: the terminal is an "old client" (``AID_FACE_UNCHALLENGED=terminal``,
docs/liveness.md).
"""

from __future__ import annotations

import base64
import csv
import io
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from openpyxl import load_workbook

from simulator import faces
from simulator.client import AidClient, ApiError
from tests.flows import id_number
from tests.sim_support import sim_client
from tests.support import Proc, System, wait_for

pytestmark = pytest.mark.integration
SCHOOL = "ZMD0001"
SEMESTER = "2026-autumn"
ENROL_DAY = datetime.fromisoformat("2026-10-12T11:00:00+08:00")   # before the Oct 20 capture deadline
OCTOBER = datetime.fromisoformat("2026-10-22T11:00:00+08:00")
NOVEMBER = datetime.fromisoformat("2026-11-19T11:00:00+08:00")
DECEMBER = datetime.fromisoformat("2026-12-17T11:00:00+08:00")
NAMES = ["王小明", "李小红", "张伟", "刘洋", "陈静", "杨帆", "赵磊",
         "黄丽", "周杰", "吴敏", "徐强", "孙悦", "马超", "朱琳", "胡军", "郭芳"]
P = {p.folder: p for p in faces.PEOPLE}
#: student -> the person whose face it is (students without one never enrol with their own face)
FACE = {"S0001": P["obama"], "S0002": P["biden"], "S0003": P["kit_harington"],
        "S0004": P["alex_lacamoire"], "S0005": P["person01"], "S0006": P["person02"],
        "S0007": P["person05"], "S0008": P["person06"], "S0009": P["person07"],
        "S0010": P["lin_manuel_miranda"]}
STUDENTS = [f"S{n:04d}" for n in range(1, 17)]
#: students whose burst liveness refuses at enrolment (real photos of one person, too alike)
REFUSED_LIVE = {"S0015": ("rose_leslie", ["rose_leslie_1.jpg", "rose_leslie_2.jpg", "M:rose_leslie_1.jpg"],
                          "rose_leslie_2.jpg", False),
                "S0016": ("person08", ["img22.jpg", "img23.jpg", "M:img22.jpg"], "img22.jpg", True)}
FIRST_YEAR = "S0014"

# month statuses (October, November, December) and the semester's participation, as derived by
# eligibility from the log; "targeted:<outcome>" is a month whose result a targeted check replaced
EXPECTED = {
    "S0001": ("enrolled", "passed", "passed", "passed"),
    "S0002": ("enrolled", "passed", "passed", "targeted:failed"),          # missed the targeted check
    "S0003": ("enrolled", "passed", "passed", "passed"),
    "S0004": ("enrolled", "passed", "excused", "passed"),                  # leave in November
    "S0005": ("enrolled", "passed", "passed", "targeted:passed"),
    "S0006": ("enrolled", "passed", "failed", "failed"),                   # internship, plan filed late
    "S0007": ("enrolled", "passed", "placement_internship", "placement_internship"),
    "S0008": ("enrolled", "forced_pass", "passed", "passed"),
    "S0009": ("not_enrolled_in_time", "not_enrolled_in_time", "not_enrolled_in_time", "not_enrolled_in_time"),
    "S0010": ("provisional", "passed", "passed", "passed"),
    "S0011": ("not_enrolled", "not_enrolled_in_time", "not_enrolled_in_time", "not_enrolled_in_time"),
    "S0012": ("not_enrolled", "not_enrolled_in_time", "not_enrolled_in_time", "not_enrolled_in_time"),
    "S0013": ("not_enrolled", "not_enrolled_in_time", "left_school", "left_school"),  # withdrew Nov 5
    "S0014": ("not_enrolled", "not_enrolled_in_time", "not_enrolled_in_time", "not_enrolled_in_time"),
    "S0015": ("not_enrolled", "not_enrolled_in_time", "not_enrolled_in_time", "not_enrolled_in_time"),
    "S0016": ("not_enrolled", "not_enrolled_in_time", "not_enrolled_in_time", "not_enrolled_in_time"),
}


def offset(when: datetime) -> str:
    return str((when - datetime.now(UTC)).total_seconds())


def set_clock(procs: list[Proc], when: datetime) -> None:
    """Restart the processes (same ports) with their clock at ``when``."""
    for proc in procs:
        proc.stop()
        proc.env["AID_CLOCK_OFFSET_SECONDS"] = offset(when)
        proc.start(wait=False)
    for proc in procs:
        proc.wait_healthy(timeout=120)


def roster_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["学号", "姓名", "身份证号", "年级", "班级", "专业", "入学年份", "入学季节"])
    for n, (student, name) in enumerate(zip(STUDENTS, NAMES, strict=True), start=1):
        first_year = student == FIRST_YEAR
        writer.writerow([student, name, id_number(100 + n), 1 if first_year else 2,
                         "机电1班" if first_year else "会计2班", "机电技术应用" if first_year else "会计",
                         2026 if first_year else 2025, "秋季"])
    return out.getvalue().encode("utf-8")


def month_table(client: AidClient) -> dict[str, tuple[str, ...]]:
    table = {}
    for student in STUDENTS:
        (status,) = client.aid_status(SCHOOL, student, SEMESTER)["statuses"]
        months = {m["month"]: m for m in status["months"]}
        row = [status["participation"]["status"]]
        for month in ("2026-10", "2026-11", "2026-12"):
            m = months[month]
            row.append(f"targeted:{m['outcome']}" if m["status"] == "replaced_by_targeted" else m["status"])
        table[student] = tuple(row)
    return table


def events(system: System, type_: str) -> list[dict[str, Any]]:
    with psycopg.connect(system.database_url) as conn:
        return [r[0] for r in conn.execute("SELECT payload FROM events WHERE type = %s ORDER BY position",
                                           (type_,)).fetchall()]


def test_a_semester_end_to_end(system: System, tmp_path: Path) -> None:
    started = time.monotonic()
    system.relay().start()
    procs = {"enrolment": system.service("enrolment", AID_CLOCK_OFFSET_SECONDS=offset(ENROL_DAY)),
             "spotcheck": system.service("spotcheck", AID_CLOCK_OFFSET_SECONDS=offset(ENROL_DAY)),
             "facematch": system.service("facematch", AID_FACE_UNCHALLENGED="terminal"),
             "eligibility": system.service("eligibility"), "hardship": system.service("hardship")}
    for proc in procs.values():
        proc.start(wait=False)
    for proc in procs.values():
        proc.wait_healthy(timeout=180)
    clocked = [procs["enrolment"], procs["spotcheck"]]
    sim = sim_client(system, procs, tmp_path / "sim", timeout=60)
    terminal = "T1"

    def verdict(capture: dict[str, Any]) -> dict[str, Any]:
        decided = sim.wait_verdict(capture["capture_id"], 120, terminal_id=terminal)
        assert decided["status"] != "submitted", decided
        return dict(decided)

    def parallel(job: Callable[[str], dict[str, Any]], students: list[str]) -> list[dict[str, Any]]:
        """``job`` for each student, four at a time (several terminals); the verdicts in order."""
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(job, students))

    def check_in(check_id: str) -> Callable[[str], dict[str, Any]]:
        return lambda student: verdict(sim.capture(terminal, check_id, student, faces.burst(FACE[student])))

    # ---- 12 October: the school, its terminal, the roster, hardship, enrolment
    assert sim.register_school(SCHOOL, "驻马店财经职业学校", "驻马店市", "驿城区", directly_administered=True)
    sim.register_terminal(terminal, SCHOOL, "教学楼一楼")
    report = sim.import_roster(SCHOOL, roster_csv(), "csv")
    assert (report["registered"], report["refused"]) == (len(STUDENTS), 0), report
    for student in STUDENTS:
        sim.determine_hardship(SCHOOL, student, [1], SEMESTER, ["information_comparison"])

    def enrol(student: str, frames: list[bytes], id_photo: bytes) -> dict[str, Any]:
        return verdict(sim.enrol(terminal, student, frames, id_photo))

    on_time = [s for s in FACE if s not in ("S0009", "S0010")]
    results = parallel(lambda s: enrol(s, faces.burst(FACE[s]), faces.id_photo(FACE[s])), on_time)
    assert [r["status"] for r in results] == ["verified"] * len(on_time), [r["reasons"] for r in results]
    rose = faces.photo("rose_leslie", "rose_leslie_1.jpg")  # someone else's ID-card photo
    provisional = enrol("S0010", faces.burst(FACE["S0010"]), rose)
    assert [r["code"] for r in provisional["reasons"]] == ["NO_MATCH"], provisional
    impostor = enrol("S0011", faces.burst(P["obama"]), faces.id_photo(P["obama"]))  # S0001's face
    assert impostor["status"] == "rejected"
    assert "DUPLICATE_IDENTITY" in [r["code"] for r in impostor["reasons"]], impostor
    for student, (folder, names, id_name, extra) in REFUSED_LIVE.items():
        refused_live = enrol(student, [faces.photo(folder, n, extra) for n in names],
                             faces.photo(folder, id_name, extra))
        assert refused_live["status"] == "rejected", refused_live
        assert any(r["code"].startswith("LIVENESS_") for r in refused_live["reasons"]), refused_live
    wait_for(lambda: all(sim.student(SCHOOL, s)["enrolled"] for s in [*on_time, "S0010"]), 60,
             what="StudentEnrolled of every accepted capture")
    assert sim.student(SCHOOL, "S0010")["enrolled"] == "provisional"
    assert sim.student(SCHOOL, "S0011")["enrolled"] is None

    # ---- 22 October: a late enrolment, the October check, a forced pass, plans, publication
    set_clock(clocked, OCTOBER)
    assert enrol("S0009", faces.burst(FACE["S0009"]), faces.id_photo(FACE["S0009"]))["status"] == "verified"
    check = sim.open_check("2026-10-22T10:00:00+08:00", "2026-10-22T15:00:00+08:00", [SCHOOL])
    october = check["check_id"]
    attending = [s for s in FACE if s not in ("S0008", "S0009")]
    results = parallel(check_in(october), attending)
    assert [r["status"] for r in results] == ["verified"] * len(attending), results
    for attempt in (1, 2, 3):  # the terminal cannot confirm S0008: a still picture, three times
        failed = verdict(sim.capture(terminal, october, "S0008", faces.still_burst(FACE["S0008"]), attempt))
        assert [r["code"] for r in failed["reasons"]] == ["LIVENESS_STATIC"], failed
    forced = sim.force_pass(terminal, october, "S0008", faces.id_photo(FACE["S0008"]))
    assert (forced["forced_pass"], forced["attempts"]) == (True, 3), forced
    plan = sim.file_internship(SCHOOL, "S0006", "shadowing", "2026-11-01", "2027-02-28",
                               "2026-10-22", "2026-10-22")
    assert plan["filed_late"] is True, plan  # 10 days before departure, not 15
    placement = {"company": "驻马店市天中机械制造有限公司", "location": "驻马店市驿城区开源大道18号",
                 "supervisor": "王建国", "supervisor_contact": "0396-2345678", "starts_on": "2026-11-01",
                 "ends_on": "2027-01-31"}
    confirmed = sim.confirm_placement(terminal, {"student_id": "S0007", **placement})
    assert confirmed["student_id"] == "S0007", confirmed
    with pytest.raises(ApiError) as refused:
        sim.confirm_placement(terminal, {"student_id": FIRST_YEAR, **placement})
    assert (refused.value.status, refused.value.code) == (409, "FIRST_YEAR")
    sim.close_check(october)
    published = sim.publish(SCHOOL, "2026-10")
    assert published["month"] == "2026-10"

    # ---- 19 November: the withdrawal, the departure, a leave, the November check
    set_clock(clocked, NOVEMBER)
    left = sim.record_leaving(SCHOOL, "S0013", "withdrawn", "2026-11-05")
    assert left["aid_stops_from"] == "2026-12", left
    sim.internship_moved(SCHOOL, plan["plan_id"], "departed", "2026-11-01")
    november = sim.open_check("2026-11-19T10:00:00+08:00", "2026-11-19T15:00:00+08:00", [SCHOOL])["check_id"]
    sim.mark_absence(SCHOOL, november, "S0004", "leave", "2026-11-19T10:30:00+08:00")
    sim.mark_absence(SCHOOL, november, "S0006", "shadowing_internship", "2026-11-19T10:30:00+08:00")
    attending = [s for s in FACE if s not in ("S0004", "S0006", "S0007")]
    results = parallel(check_in(november), attending)
    assert [r["status"] for r in results] == ["verified"] * len(attending), results
    with pytest.raises(ApiError) as gone:
        sim.mark_absence(SCHOOL, november, "S0013", "leave")
    assert (gone.value.status, gone.value.code) == (409, "STUDENT_LEFT")
    sim.close_check(november)

    # ---- 17 December: the routine check and the province's targeted check
    set_clock(clocked, DECEMBER)
    december = sim.open_check("2026-12-17T10:00:00+08:00", "2026-12-17T15:00:00+08:00", [SCHOOL])["check_id"]
    targeted = sim.open_check("2026-12-17T10:00:00+08:00", "2026-12-17T15:00:00+08:00",
                              student_ids=["S0002", "S0005"], kind="targeted")
    assert targeted["kind"] == "targeted" and targeted["students"] == 2, targeted
    sim.mark_absence(SCHOOL, december, "S0006", "shadowing_internship", "2026-12-17T10:30:00+08:00")
    # a kiosk that asks for a liveness challenge: three photos cannot show the action as one take
    drawn = sim.challenge(terminal, "S0003", december)
    photos = verdict(sim.capture(terminal, december, "S0003", faces.burst(FACE["S0003"]),
                                 challenge_id=drawn["challenge_id"], frame_times_ms=[0, 400, 800]))
    assert photos["status"] == "rejected", photos
    assert any(r["code"].startswith("LIVENESS_") for r in photos["reasons"]), photos
    attending = [s for s in FACE if s not in ("S0006", "S0007")]
    results = parallel(check_in(december), attending) + [check_in(targeted["check_id"])("S0005")]
    assert [r["status"] for r in results] == ["verified"] * (len(attending) + 1), results
    sim.close_check(december)
    sim.close_check(targeted["check_id"])

    # ---- what eligibility derived from the log
    try:
        wait_for(lambda: month_table(sim) == EXPECTED, 120, what="eligibility's statuses")
    except AssertionError:
        assert month_table(sim) == EXPECTED  # shows the difference
    s0006 = sim.aid_status(SCHOOL, "S0006", SEMESTER)["statuses"][0]
    assert s0006["suspension"] is not None, s0006   # unfiled long internship: the semester's aid stops
    s0001 = sim.aid_status(SCHOOL, "S0001", SEMESTER)["statuses"][0]
    assert s0001["tuition_waiver"]["decision"] == "granted", s0001["tuition_waiver"]

    # ---- October's list, published and masked; Attachment 2 of November
    listed = sim.results_list(SCHOOL, "2026-10", "csv")
    assert listed["state"] == "published" and listed["objection_ends_on"], listed
    assert len(listed["rows"]) == len(STUDENTS)
    text = base64.b64decode(listed["content_base64"]).decode("utf-8-sig")
    assert all(name not in text for name in NAMES) and "王*" in text
    assert id_number(101) not in text and f"{id_number(101)[:6]}********{id_number(101)[-4:]}" in text
    attachment2 = base64.b64decode(sim.attachment2(SCHOOL, "2026-11")["content_base64"])
    sheet = load_workbook(io.BytesIO(attachment2))
    samples = os.environ.get("AID_SAMPLES_DIR")  # keep the published files for a person to read
    if samples:
        Path(samples).mkdir(parents=True, exist_ok=True)
        (Path(samples) / "results-2026-10.csv").write_bytes(base64.b64decode(listed["content_base64"]))
        (Path(samples) / "attachment2-2026-11.xlsx").write_bytes(attachment2)
    assert "天中机械" in " ".join(str(c.value) for row in sheet.active.iter_rows() for c in row if c.value)

    # every accepted capture got exactly one verdict, and no event holds a photo or an ID number
    submitted = {e["capture_id"] for e in events(system, "CaptureSubmitted")}
    decided = [e["capture_id"] for t in ("CaptureVerified", "CaptureRejected") for e in events(system, t)]
    assert sorted(decided) == sorted(submitted)
    with psycopg.connect(system.database_url) as conn:
        dump = " ".join(str(r[0]) for r in conn.execute("SELECT payload FROM events").fetchall())
    assert id_number(101) not in dump and "/9j/" not in dump
    assert time.monotonic() - started < 420
