"""Monthly results lists (每月抽查结果公布名单, issue 9 point 5): a school's month as it is published
in the school (规程 十.4), one row per student: class, name and ID number masked (张*,
110105********002X, as registered: the log holds only masked forms), the month's check result
and the month's aid outcome, in Chinese; as JSON, CSV (UTF-8 with BOM, for spreadsheet programs)
or XLSX (openpyxl). The list is a ``draft`` until the school publishes the month
(MonthResultsPublished, spotcheck ``POST /results/publish``), then ``published`` with the day and
the last day of the 5-working-day objection window.

The route lives in :class:`ResultsRoutes`, a base of the eligibility service; the rows come from
the live projection's statuses (:mod:`.projection`), the masked ID numbers from the students'
registrations in the log.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, Literal

from pydantic import Field

from backbone.edge import Answer, Call, route, school_for
from backbone.errors import DomainError
from backbone.fields import Model
from backbone.xlsx import table_xlsx
from contracts.calendar import parse_month
from contracts.envelope import Envelope
from contracts.reasons import AID_RULES, CHECK_REASONS
from contracts.students import results_stream, student_stream
from contracts.workdays import WorkCalendarError
from services.eligibility.domain.calendar import semester_of_month
from services.eligibility.domain.policy import PolicyBook

READERS = ("school", "county", "city", "province", "auditor")
HEADER = ("序号", "班级", "姓名", "身份证号码", "本月抽查结果", "本月资助结果")
TITLE = "学生资助面部识别抽查结果公示名单"
MAX_FILE_B64 = 32 * 1024 * 1024

CHECK_TEXT = {code: zh for code, (zh, _) in CHECK_REASONS.items()}
EXCUSES = {code: CHECK_TEXT[code] for code in ("leave", "cognitive_internship", "shadowing_internship")}
GRANT_RULES = {code: zh for code, (zh, _) in AID_RULES.items()}


# ----------------------------------------------------------------------------- what a row says


def check_result_zh(month: Mapping[str, Any] | None) -> str:
    """The month's check result (本月抽查结果) in Chinese, from a status's ``months`` entry."""
    if month is None:
        return "非抽查月"
    status, outcome = month["status"], month["outcome"]
    if status == "left_school":
        return "已离校"
    if status == "passed_on_appeal":
        return "通过（申诉通过）"
    if status == "placement_internship":
        return "顶岗实习（停止例行抽查）"
    if outcome == "no_check":
        return "本月未抽查"
    if outcome == "pending":
        return "待定（抽查未结束或核验结果未出）"
    prefix = "定向抽查" if status == "replaced_by_targeted" else ""
    if outcome == "passed":
        if status == "forced_pass" or any(c["result"] == "forced_pass" for c in month["checks"]):
            return f"{prefix}强行确认通过"
        excuse = month.get("excuse")
        return f"{prefix}通过（{EXCUSES[excuse]}）" if excuse in EXCUSES else f"{prefix}通过"
    reasons = sorted({CHECK_TEXT.get(c["reason"], "未通过") for c in month["checks"]
                      if c["result"] == "failed" and c["reason"]})
    if status == "not_enrolled_in_time" and not reasons:
        reasons = [CHECK_TEXT["not_enrolled_in_time"]]
    return f"{prefix}未通过" + (f"（{'；'.join(reasons)}）" if reasons else "")


def aid_outcome_zh(grant: Mapping[str, Any] | None) -> str:
    """The month's aid outcome (本月资助结果, the national grant) in Chinese."""
    if grant is None:
        return "非资助月"
    if grant["decision"] == "granted":
        return f"享受国家助学金 {grant['amount_yuan']} 元"
    if grant["decision"] == "pending":
        return "待定"
    rules = grant["rules"]
    reason = GRANT_RULES.get(rules[0]["rule"], "") if rules else ""
    return f"不予资助（{reason}）" if reason else "不予资助"


def _entry(items: Iterable[Mapping[str, Any]], month: str) -> Mapping[str, Any] | None:
    return next((i for i in items if i["month"] == month), None)


def list_rows(statuses: Iterable[Mapping[str, Any]], id_numbers: Mapping[str, str], school_id: str,
              month: str) -> list[dict[str, Any]]:
    """One row per student of ``school_id`` with a status for ``month``'s semester, by class then
    student number (the number is not shown); names and ID numbers masked."""
    semester = semester_of_month(month)
    found = [s for s in statuses if s["school_id"] == school_id and s["semester"] == semester]
    found.sort(key=lambda s: (s["class_name"] or "", s["student_id"]))
    rows = []
    for number, s in enumerate(found, start=1):
        rows.append({
            "number": number,
            "class_name": s["class_name"] or "",
            "name_masked": s["name_masked"] or "*",
            "id_number_masked": id_numbers.get(s["student_id"], "*" * 18),
            "check_result": check_result_zh(_entry(s["months"], month)),
            "aid_outcome": aid_outcome_zh(_entry(s["grant"], month)),
        })
    return rows


def _cells(row: Mapping[str, Any]) -> list[Any]:
    return [row["number"], row["class_name"], row["name_masked"], row["id_number_masked"],
            row["check_result"], row["aid_outcome"]]


def _caption(school_name: str, month: str, state: str, published_on: str | None,
             objection_ends_on: str | None) -> str:
    if state == "published":
        tail = f"公示日期 {published_on}，如有异议请于 {objection_ends_on} 前书面报学校资助管理中心" \
            if objection_ends_on else f"公示日期 {published_on}"
    else:
        tail = "草稿（尚未公示）"
    return f"{TITLE}（{school_name} {month}）{tail}"


def to_csv(rows: Sequence[Mapping[str, Any]], caption: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([caption])
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow(_cells(row))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(rows: Sequence[Mapping[str, Any]], caption: str) -> bytes:
    return table_xlsx("公示名单", caption, HEADER, (_cells(row) for row in rows))


def filename(school_id: str, month: str, state: str, fmt: str) -> str:
    draft = "-草稿" if state == "draft" else ""
    return f"抽查结果公示名单-{school_id}-{month}{draft}.{fmt}"


def publication(events: Iterable[Envelope]) -> str | None:
    """The day of the school's first publication of the month (the one that starts the window)."""
    days = [str(e.payload["published_on"]) for e in events if e.type == "MonthResultsPublished"]
    return days[0] if days else None


def objection_ends_on(book: PolicyBook, published_on: str) -> str | None:
    """The last working day of the objection window (the 5th working day after publication, by
    the policy in force that day); None when the working-day calendar lacks that year."""
    day = date.fromisoformat(published_on)
    try:
        return book.calendar.add_working_days(day, book.policy_at(day).appeal_objection_working_days) \
            .isoformat()
    except WorkCalendarError:
        return None


# ----------------------------------------------------------------------------- HTTP


class ResultsQuery(Model):
    format: Literal["json", "csv", "xlsx"] = Field(
        "json", description="json: the rows only; csv (UTF-8 with BOM) or xlsx: also the file, base64")


class ResultRow(Model):
    number: int
    class_name: str
    name_masked: str = Field(description="张*: the first character (two of a four-character name)")
    id_number_masked: str = Field(description="110105********002X: region code and last four")
    check_result: str = Field(description="本月抽查结果")
    aid_outcome: str = Field(description="本月资助结果 (national grant)")


class ResultsList(Model):
    """A school's monthly results list: ``draft`` until the month is published, then
    ``published`` with the day and the last day to object (5 working days)."""

    school_id: str
    month: str
    semester: str
    state: Literal["draft", "published"]
    published_on: str | None
    objection_ends_on: str | None = Field(description="the last working day of the objection window")
    header: list[str]
    rows: list[ResultRow]
    format: str
    filename: str | None
    content_base64: str | None = Field(max_length=MAX_FILE_B64,
                                       json_schema_extra={"contentEncoding": "base64"})


class ResultsRoutes:
    """The results-list route of the eligibility service (a base class of it)."""

    store: Any
    projection: Any
    _book: PolicyBook | None = None

    def _policy_book(self) -> PolicyBook:
        if ResultsRoutes._book is None:
            from services.eligibility.policyfile import load_policy_book

            ResultsRoutes._book = load_policy_book()
        return ResultsRoutes._book

    def _masked_id_numbers(self, student_ids: Sequence[str]) -> dict[str, str]:
        """Each student's masked ID number as registered (latest registration), one query."""
        if not student_ids:
            return {}
        with self.store.pool.connection() as conn:
            found = conn.execute(
                "SELECT DISTINCT ON (stream) payload->>'student_id', payload->>'id_number_masked' FROM events"
                " WHERE stream = ANY(%s) AND type = 'StudentRegistered' ORDER BY stream, stream_version DESC",
                ([student_stream(s) for s in student_ids],)).fetchall()
        return {str(s): str(m) for s, m in found if m}

    @route("GET", "/schools/<school_id>/results/<month>", roles=READERS, query=ResultsQuery,
           returns=ResultsList, name="results_list")
    def results_list(self, call: Call) -> Answer:
        """A school's monthly results list (公示名单), masked, as JSON, CSV or XLSX.

        One row per student: class, masked name, masked ID number, the month's check result and
        aid outcome in Chinese. ``state`` is ``draft`` before the school published the month
        (spotcheck ``POST /results/publish``), ``published`` after, with ``objection_ends_on``."""
        school_id, month = call.path["school_id"], call.path["month"]
        try:
            parse_month(month)
        except ValueError as exc:
            raise DomainError("BAD_MONTH", str(exc)) from None
        school = school_for(call, self.store, school_id).registered
        assert school is not None  # school_for refuses an unregistered school
        semester = semester_of_month(month)
        with self.projection.pool.connection() as conn:
            statuses = [r[0] for r in conn.execute(
                "SELECT status FROM eligibility_status WHERE semester = %s AND school_id = %s",
                (semester, school_id)).fetchall()]
        ids = self._masked_id_numbers(sorted({s["student_id"] for s in statuses}))
        rows = list_rows(statuses, ids, school_id, month)
        published_on = publication(self.store.read_stream(results_stream(school_id, month)))
        state = "published" if published_on else "draft"
        ends = objection_ends_on(self._policy_book(), published_on) if published_on else None
        fmt: str = call.query.format
        content = None
        if fmt != "json":
            caption = _caption(school.name, month, state, published_on, ends)
            data = to_csv(rows, caption) if fmt == "csv" else to_xlsx(rows, caption)
            content = base64.b64encode(data).decode()
        return 200, ResultsList(
            school_id=school_id, month=month, semester=semester, state=state,  # type: ignore[arg-type]
            published_on=published_on, objection_ends_on=ends, header=list(HEADER),
            rows=[ResultRow(**r) for r in rows], format=fmt,
            filename=filename(school_id, month, state, fmt) if fmt != "json" else None,
            content_base64=content)
