"""The monthly results list (issue 9 point 5): rows from derived statuses, masked, the check
result and the aid outcome in Chinese, as CSV and XLSX."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from openpyxl import load_workbook

from services.eligibility import results
from services.eligibility.policyfile import load_policy_book
from tests.eligibility.elig_builders import SCHOOL, Log, at, replay


def school_statuses() -> list[dict[str, Any]]:
    log = Log()
    for sid in ("S1", "S2", "S3", "S4", "S5"):
        log.ordinary(sid)
    checks = log.routine_checks()
    log.pass_checks("S1", checks)
    log.pass_checks("S2", checks, except_months=["2026-11"])  # missed November
    log.pass_checks("S3", checks, except_months=["2026-11"])
    log.absent("S3", checks["2026-11"], "leave", at("2026-11-12", 9))
    log.pass_checks("S4", checks, except_months=["2026-11"])
    log.forced("S4", checks["2026-11"], date(2026, 11, 12))
    log.pass_checks("S5", checks, except_months=["2026-11", "2026-12"])
    log.left("S5", "2026-11-05")
    return list(replay(log.events).values())


def test_each_student_of_the_school_has_one_row_in_chinese() -> None:
    rows = results.list_rows(school_statuses(), {"S1": "410102********0011"}, SCHOOL, "2026-11")
    assert [r["number"] for r in rows] == [1, 2, 3, 4, 5]
    by_outcome = [(r["check_result"], r["aid_outcome"]) for r in rows]
    assert by_outcome == [
        ("通过", "享受国家助学金 167 元"),
        ("未通过（未参加抽查）", "不予资助（抽查未通过）"),
        ("通过（请假）", "享受国家助学金 167 元"),
        ("强行确认通过", "享受国家助学金 167 元"),
        ("已离校", "享受国家助学金 167 元"),  # the leaving month is paid
    ]
    assert rows[0]["id_number_masked"] == "410102********0011"
    assert rows[1]["id_number_masked"] == "*" * 18  # no registration found: nothing shown
    assert {r["name_masked"] for r in rows} == {"张*"}
    december = results.list_rows(school_statuses(), {}, SCHOOL, "2026-12")
    assert december[4]["aid_outcome"] == "不予资助（已离校）"
    assert results.list_rows(school_statuses(), {}, "OTHER", "2026-11") == []
    assert results.list_rows(school_statuses(), {}, SCHOOL, "2026-09")[0]["check_result"] == "非抽查月"


def test_labels_of_the_other_outcomes() -> None:
    assert results.check_result_zh({"status": "pending", "outcome": "pending", "checks": []}) == \
        "待定（抽查未结束或核验结果未出）"
    failed_late = {"status": "failed", "outcome": "failed", "excuse": None,
                   "checks": [{"result": "failed", "reason": "internship_filed_late"}]}
    assert results.check_result_zh(failed_late) == "未通过（实习计划未在外出实习15日前备案）"
    targeted = {"status": "replaced_by_targeted", "outcome": "passed", "excuse": None,
                "checks": [{"result": "passed", "reason": None}]}
    assert results.check_result_zh(targeted) == "定向抽查通过"
    assert results.check_result_zh({"status": "passed_on_appeal", "outcome": "passed", "checks": []}) == \
        "通过（申诉通过）"
    assert results.aid_outcome_zh({"decision": "pending", "rules": []}) == "待定"
    assert results.aid_outcome_zh(None) == "非资助月"


def test_csv_and_xlsx_hold_the_caption_the_header_and_the_rows() -> None:
    rows = results.list_rows(school_statuses(), {}, SCHOOL, "2026-11")
    caption = results._caption("测试学校", "2026-11", "published", "2026-11-26", "2026-12-03")
    assert "2026-12-03" in caption and "公示日期 2026-11-26" in caption
    data = results.to_csv(rows, caption)
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert table[0] == [caption] and table[1] == list(results.HEADER) and len(table) == 2 + len(rows)
    sheet = load_workbook(io.BytesIO(results.to_xlsx(rows, caption))).active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[1] == list(results.HEADER) and values[2][4] == "通过"
    assert results.filename("SC1", "2026-11", "draft", "csv") == "抽查结果公示名单-SC1-2026-11-草稿.csv"
    assert "草稿" in results._caption("测试学校", "2026-11", "draft", None, None)


def test_the_objection_window_ends_on_the_fifth_working_day() -> None:
    book = load_policy_book()
    assert results.objection_ends_on(book, "2026-11-26") == "2026-12-03"  # Thu -> next Thu
    # Sep 29, Sep 30, then the National Day holiday, then Oct 9 and Saturday Oct 10 (调休, a working day)
    assert results.objection_ends_on(book, "2026-09-28") == "2026-10-10"


def test_every_check_reason_and_withholding_rule_has_chinese_and_english_text() -> None:
    from typing import get_args, get_type_hints

    from contracts.eligibility_status import CheckResult, unwrap
    from contracts.reasons import AID_RULES, CHECK_REASONS

    reasons = {r for r in get_args(unwrap(get_type_hints(CheckResult, include_extras=True)["reason"]))
               if r is not None}
    assert reasons == set(CHECK_REASONS)
    assert set(results.GRANT_RULES) == set(AID_RULES) == {
        "left_school", "roster_mismatch", "unfiled_internship", "no_hardship_determination",
        "placement_internship", "failed_check_month"}
    assert all(zh and en and zh != en for zh, en in [*CHECK_REASONS.values(), *AID_RULES.values()])
