"""Hardship identification (issue 12) over the real hardship, enrolment and eligibility processes,
RabbitMQ and PostgreSQL: advance notice, cases per stage, registry comparison per category in and
out of province, a certificate without a record, the scored questionnaire and its explanation,
reviews that change a level only with a reason, public notice files with nothing sensitive,
objections, archive, re-assessment, revocation, privacy, and eligibility's grant."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.flows import id_number, register_student, setup_school
from tests.support import Proc, System, throwaway_database, throwaway_vhost, wait_for

pytestmark = pytest.mark.integration

YEAR = "2026-2027"
CITY, COUNTY, OTHER_COUNTY = "驻马店市", "驿城区", "西平县"
GUARDIAN = "110101197001011238"  # a valid ID number (MOD 11-2), a guardian's
FAMILY = {"members": 4, "yearly_income_yuan": 23456, "income_source": "务农", "housing": "rent"}
CERT = {"type": "低保证", "number": "DB-4101-778899", "issuer": "驿城区民政局"}


@dataclass
class Aid:
    system: System
    hardship: Proc
    eligibility: Proc
    seq: int = 100

    def token(self, role: str = "school", school: str = "SC1", **area: Any) -> str:
        if role == "school":
            return self.system.token("school", school=school, sub=f"staff:{school}")
        return self.system.token(role, **area)

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None) -> tuple[int, Any]:
        return self.hardship.api(method, path, body, token=token or self.token())

    def student(self, school: str = "SC1") -> str:
        """A newly registered student at ``school``."""
        self.seq += 1
        sid = f"H{self.seq:04d}"
        register_student(self.system, self.enrolment, sid, self.seq, school)
        return sid

    enrolment: Proc = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def aid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aid]:
    with throwaway_database() as db, throwaway_vhost() as vhost:
        system = System(db, vhost, Path(tmp_path_factory.mktemp("hardship")))
        try:
            procs = {
                name: system.service(name).start(wait=False)
                for name in ("enrolment", "hardship", "eligibility")
            }
            procs["relay"] = system.relay().start(wait=False)
            for proc in procs.values():
                proc.wait_healthy()
            setup_school(system, procs["enrolment"], "SC1", CITY, COUNTY)
            setup_school(system, procs["enrolment"], "SC2", CITY, OTHER_COUNTY)
            out = Aid(system, procs["hardship"], procs["eligibility"])
            out.enrolment = procs["enrolment"]
            # advance notice first: no case before it
            sid = out.student()
            status, body = out.call("POST", "/cases", case_body(sid))
            assert (status, body["error"]) == (409, "NOTICE_NOT_ISSUED")
            for school in ("SC1", "SC2"):
                status, body = out.call(
                    "POST",
                    f"/schools/{school}/hardship-notice",
                    {"school_year": YEAR, "issued_on": "2026-09-01", "channels": ["家长会"]},
                    token=out.token(school=school),
                )
                assert status == 201, body
            yield out
        finally:
            system.stop_all()


def case_body(
    sid: str,
    *,
    stage: str = "vocational",
    registration: str = "in_province",
    claims: list[dict[str, Any]] | None = None,
    **over: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "student_id": sid,
        "school_year": YEAR,
        "stage": stage,
        "household_registration": registration,
        "claims": claims or [],
        "family": FAMILY,
    }
    body.update(over)
    return body


def open_case(aid: Aid, sid: str, **kw: Any) -> str:
    status, body = aid.call("POST", "/cases", case_body(sid, **kw))
    assert status == 201, body
    return str(body["case_id"])


def questionnaire(**over: Any) -> dict[str, Any]:
    q = {
        "local_minimum_living_yuan_per_year": 8000,
        "family_members": 4,
        "yearly_income_yuan": 23456,
        "debt_yuan": 30000,
        "housing": "rent",
        "dependants": 2,
        "serious_illness": True,
        "disability": False,
        "disaster": False,
        "student_monthly_spending_yuan": 500,
        "reference_monthly_spending_yuan": 800,
    }
    q.update(over)
    return q


def determine(aid: Aid, case_id: str, level: str, categories: list[int], **over: Any) -> tuple[int, Any]:
    body = {"level": level, "categories": categories, "effective_semester": "2026-autumn", **over}
    return aid.call("POST", f"/cases/{case_id}/determination", body)


def import_registry(aid: Aid, registry: str, system: str, numbers: list[str]) -> None:
    status, body = aid.call(
        "POST",
        "/registries",
        {"registry": registry, "system": system, "school_year": YEAR, "id_numbers": numbers},
        token=aid.token("province"),
    )
    assert status == 201, body


def events(aid: Aid, type_: str, key: str, value: str) -> list[dict[str, Any]]:
    with psycopg.connect(aid.system.database_url) as conn:
        rows = conn.execute(
            "SELECT payload FROM events WHERE type = %s AND payload->>%s = %s ORDER BY position",
            (type_, key, value),
        ).fetchall()
    return [r[0] for r in rows]


def case_of(aid: Aid, case_id: str, **kw: Any) -> dict[str, Any]:
    status, body = aid.call("GET", f"/cases/{case_id}", **kw)
    assert status == 200, body
    return dict(body)


# ----------------------------------------------------------------------------- comparison


@pytest.mark.parametrize(
    ("category", "registry", "registration", "system", "who"),
    [
        (1, "poor_household", "in_province", "province", "guardian"),
        (1, "poor_household", "out_of_province", "national", "student"),
        (2, "minimum_living", "in_province", "province", "guardian"),
        (2, "extreme_poverty", "out_of_province", "national", "student"),
        (3, "orphan", "in_province", "province", "student"),
        (3, "orphan", "out_of_province", "national", "student"),
        (4, "disabled", "in_province", "province", "student"),
        (4, "disabled", "out_of_province", "national", "student"),
        (5, "public_security", "in_province", "province", "guardian"),
        (5, "emergency_management", "in_province", "province", "student"),
        (6, "veterans_affairs", "in_province", "province", "guardian"),
    ],
)
def test_each_category_is_confirmed_in_the_registry_the_seed_names(
    aid: Aid, category: int, registry: str, registration: str, system: str, who: str
) -> None:
    sid = aid.student()
    guardian = id_number(900 + aid.seq % 100)
    listed = id_number(aid.seq) if who == "student" else guardian
    import_registry(aid, registry, system, [listed])
    # the same number in the other system's list does not count for this student
    other = "national" if system == "province" else "province"
    case_id = open_case(
        aid,
        sid,
        registration=registration,
        guardian_id_number=guardian,
        claims=[{"category": category, "certificate": CERT}],
    )
    status, body = aid.call("POST", f"/cases/{case_id}/comparison")
    assert (status, body["status"]) == (201, "compared"), body
    (result,) = case_of(aid, case_id)["comparison"]
    assert (result["category"], result["outcome"], result["system"], result["registry"]) == (
        category,
        "confirmed",
        system,
        registry,
    )
    import_registry(aid, registry, other, [listed])  # a later import of the other system changes nothing
    sid2 = aid.student()
    case2 = open_case(
        aid,
        sid2,
        registration="out_of_province" if registration == "in_province" else "in_province",
        guardian_id_number=guardian,
        claims=[{"category": category, "certificate": CERT}],
    )
    assert aid.call("POST", f"/cases/{case2}/comparison")[0] == 201
    (result2,) = case_of(aid, case2)["comparison"]
    if category in (5, 6) and registration == "in_province":  # out of province: the school decides (第十四条)
        assert result2["outcome"] == "school_methods"
    elif who == "student":  # the student's own number is not in the second student's lists
        assert result2["outcome"] == "no_record"
    else:
        assert result2["outcome"] == "confirmed"


def test_a_later_import_of_a_list_replaces_the_earlier(aid: Aid) -> None:
    status, body = aid.call(
        "POST",
        "/registries",
        {"registry": "orphan", "system": "province", "school_year": YEAR, "id_numbers": [GUARDIAN]},
        token=aid.token("county", city=CITY, county=COUNTY),
    )
    assert (status, body["error"]) == (403, "ROLE_FORBIDDEN")  # lists come from the province's systems
    sid = aid.student()
    import_registry(aid, "orphan", "province", [id_number(aid.seq)])
    import_registry(aid, "orphan", "province", [id_number(999)])
    case_id = open_case(aid, sid, claims=[{"category": 3, "certificate": CERT}])
    aid.call("POST", f"/cases/{case_id}/comparison")
    assert [r["outcome"] for r in case_of(aid, case_id)["comparison"]] == ["no_record"]


@pytest.mark.parametrize("category", [7, 8])
def test_categories_seven_and_eight_are_left_to_the_school(aid: Aid, category: int) -> None:
    sid = aid.student()
    case_id = open_case(aid, sid, claims=[{"category": category}])
    aid.call("POST", f"/cases/{case_id}/comparison")
    assert case_of(aid, case_id)["comparison"] == [
        {
            "category": category,
            "outcome": "school_methods",
            "system": None,
            "registry": None,
            "import_id": None,
        }
    ]
    status, body = determine(aid, case_id, "difficult", [category])
    assert (status, body["error"]) == (400, "CATEGORY_NOT_ESTABLISHED")
    moderate = questionnaire(yearly_income_yuan=30000, debt_yuan=0)  # 30+6+0+8+10+5 = 59: difficult
    assert aid.call("POST", f"/cases/{case_id}/assessment", moderate)[0] == 201
    status, body = determine(aid, case_id, "difficult", [category])
    assert (status, body["status"]) == (201, "determined"), body


def test_a_certificate_without_a_registry_record_goes_to_the_schools_own_methods(aid: Aid) -> None:
    sid = aid.student()
    case_id = open_case(aid, sid, claims=[{"category": 4, "certificate": {**CERT, "type": "残疾人证"}}])
    aid.call("POST", f"/cases/{case_id}/comparison")
    assert case_of(aid, case_id)["comparison"][0]["outcome"] == "no_record"
    status, body = determine(aid, case_id, "especially_difficult", [4])
    assert (status, body["error"]) == (400, "CATEGORY_NOT_ESTABLISHED")
    status, body = aid.call(
        "POST",
        f"/cases/{case_id}/reviews",
        {
            "kind": "investigation",
            "held_on": "2026-09-20",
            "by": ["王老师", "李老师"],
            "method": "home_visit",
            "findings": "持有效残疾人证，残联档案缺失，入户核实属实",
        },
    )
    assert status == 201, body
    status, body = determine(aid, case_id, "especially_difficult", [4])  # vocational: a questionnaire too
    assert (status, body["error"]) == (400, "METHOD_REQUIRED")
    aid.call("POST", f"/cases/{case_id}/assessment", questionnaire())
    status, body = determine(aid, case_id, "especially_difficult", [4])
    assert status == 201, body
    (det,) = events(aid, "HardshipDetermined", "case_id", case_id)
    assert (det["level"], det["categories"]) == ("especially_difficult", [4])
    assert "school_investigation" in det["methods"] and "information_comparison" not in det["methods"]


# ----------------------------------------------------------------------------- scoring, reviews


def test_the_questionnaire_score_explains_itself_factor_by_factor(aid: Aid) -> None:
    sid = aid.student()
    case_id = open_case(aid, sid)
    status, body = aid.call("POST", f"/cases/{case_id}/assessment", questionnaire())
    assert (status, body["status"]) == (201, "assessed")
    assessment = case_of(aid, case_id)["assessment"]
    factors = {f["factor"]: f for f in assessment["explanation"]}
    assert set(factors) == {
        "income_per_head_ratio",
        "housing",
        "debt_ratio",
        "dependants",
        "serious_illness",
        "disability",
        "disaster",
        "student_spending_ratio",
    }
    # 23456 / 4 / 8000 = 0.733 (<= 1: 30); rent 6; debt 30000/23456 = 1.279 (> 1: 12); 2 dependants 4 x 2;
    # illness 10; spending 500/800 = 0.625 (<= 0.8: 5)
    assert (
        factors["income_per_head_ratio"]["value"] == 0.733 and factors["income_per_head_ratio"]["score"] == 30
    )
    assert factors["debt_ratio"]["score"] == 12 and factors["dependants"]["score"] == 8
    assert assessment["score"] == sum(f["score"] for f in factors.values()) == 71
    assert (assessment["suggested_level"], assessment["policy_version"]) == ("especially_difficult", "2026.1")
    (stored,) = events(aid, "HardshipAssessed", "case_id", case_id)
    assert stored["score"] == 71 and "23456" not in json.dumps(stored) and "explanation" not in stored
    # no category: the questionnaire's level is the rule; another needs a reason and a review proposing it
    status, body = determine(aid, case_id, "difficult", [])
    assert (status, body["error"]) == (400, "LEVEL_CHANGE_NEEDS_REASON")
    status, body = aid.call(
        "POST",
        f"/cases/{case_id}/reviews",
        {
            "kind": "democratic_review",
            "held_on": "2026-09-25",
            "by": ["班主任", "学生代表"],
            "method": "class_vote",
            "votes_for": 30,
            "votes_against": 12,
            "findings": "评议认为家庭有稳定收入来源",
            "proposed_level": "difficult",
        },
    )
    assert status == 201, body
    status, body = determine(aid, case_id, "difficult", [])
    assert (status, body["error"]) == (400, "LEVEL_CHANGE_NEEDS_REASON")
    status, body = determine(aid, case_id, "difficult", [], reason="民主评议：父亲务工收入稳定")
    assert status == 201, body
    case = case_of(aid, case_id)
    assert case["determinations"][-1]["level"] == "difficult"
    assert case["determinations"][-1]["rule_level"] == "especially_difficult"
    assert case["reviews"][0]["votes_for"] == 30


# ----------------------------------------------------------------------------- stages


def test_level_rules_per_school_stage(aid: Aid) -> None:
    # pre-school: the guardian's home-visit form (附件1); tiers from the categories
    sid = aid.student()
    status, body = aid.call("POST", "/cases", case_body(sid, stage="preschool"))
    assert (status, body["error"]) == (400, "HOME_VISIT_FORM_REQUIRED")
    visit = {
        "form": "in_person",
        "teachers": ["张老师", "刘老师"],
        "visited_on": "2026-09-12",
        "guardian_relation": "mother",
        "wishes_aid": True,
        "findings": "家中有长期病人",
    }
    import_registry(aid, "minimum_living", "province", [GUARDIAN])
    case_id = open_case(
        aid,
        sid,
        stage="preschool",
        home_visit=visit,
        guardian_id_number=GUARDIAN,
        claims=[{"category": 2, "certificate": CERT}],
    )
    aid.call("POST", f"/cases/{case_id}/comparison")
    case = case_of(aid, case_id)
    assert (case["tier"], case["route"], case["comparison"][0]["outcome"]) == (1, "home_visit", "confirmed")
    assert case["application"]["home_visit"]["teachers"] == ["张老师", "刘老师"]
    assert determine(aid, case_id, "especially_difficult", [2])[0] == 201
    sid = aid.student()
    tier2 = open_case(aid, sid, stage="preschool", home_visit=visit, claims=[{"category": 8}])
    assert case_of(aid, tier2)["tier"] == 2
    status, body = determine(aid, tier2, "especially_difficult", [8])
    assert (status, body["error"]) == (400, "LEVEL_CHANGE_NEEDS_REASON")  # tier II is "difficult"
    assert determine(aid, tier2, "difficult", [8])[0] == 201  # the home-visit form is the investigation
    # compulsory education: no application, the school's comparison
    sid = aid.student()
    primary = open_case(aid, sid, stage="primary", family=None, guardian_id_number=GUARDIAN)
    assert case_of(aid, primary)["route"] == "comparison"
    aid.call("POST", f"/cases/{primary}/comparison")  # every list 1-6: the guardian's 低保 record is found
    assert [(r["category"], r["outcome"]) for r in case_of(aid, primary)["comparison"]] == [(2, "confirmed")]
    assert determine(aid, primary, "especially_difficult", [2])[0] == 201
    # vocational and senior: the student applies, and a questionnaire is needed for category 8
    sid = aid.student()
    status, body = aid.call("POST", "/cases", case_body(sid, family=None))
    assert (status, body["error"]) == (400, "APPLICATION_REQUIRED")
    senior = open_case(aid, sid, stage="senior", claims=[{"category": 8}])
    aid.call(
        "POST",
        f"/cases/{senior}/reviews",
        {
            "kind": "investigation",
            "held_on": "2026-09-20",
            "by": ["王老师"],
            "method": "phone",
            "findings": "属实",
        },
    )
    status, body = determine(aid, senior, "difficult", [8])
    assert (status, body["error"]) == (400, "METHOD_REQUIRED")
    status, body = determine(aid, senior, "difficult", [8], effective_semester="2027-autumn")
    assert (status, body["error"]) == (400, "SEMESTER_OUTSIDE_YEAR")


# ----------------------------------------------------------------------------- notice, objections, archive


def pdf_text(content: bytes) -> str:
    import pypdf

    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages)


def xlsx_text(content: bytes) -> str:
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(content)).active
    assert sheet is not None
    return "\n".join(
        " ".join("" if v is None else str(v) for v in row) for row in sheet.iter_rows(values_only=True)
    )


def test_public_notice_objections_and_archive_of_a_school_year(aid: Aid) -> None:
    school = "SC2"
    staff = aid.token(school=school)
    sids = [aid.student(school) for _ in range(2)]
    import_registry(aid, "poor_household", "province", [id_number(aid.seq - 1)])
    first = open_case_at(aid, sids[0], staff, claims=[{"category": 1, "certificate": CERT}])
    aid.call("POST", f"/cases/{first}/comparison", token=staff)
    assert determine_at(aid, first, staff, "especially_difficult", [1])[0] == 201
    second = open_case_at(aid, sids[1], staff, claims=[{"category": 8, "certificate": CERT}])
    aid.call(
        "POST",
        f"/cases/{second}/assessment",
        questionnaire(yearly_income_yuan=50000, debt_yuan=0),
        token=staff,
    )
    assert determine_at(aid, second, staff, "difficult", [8])[0] == 201
    status, body = aid.call(
        "POST", f"/schools/{school}/archive", {"school_year": YEAR, "archived_on": "2026-10-20"}, token=staff
    )
    assert (status, body["error"]) == (409, "NOT_NOTICED")
    status, notice = aid.call(
        "POST",
        f"/schools/{school}/public-notices",
        {"school_year": YEAR, "published_on": "2026-10-08"},
        token=staff,
    )
    assert (status, notice["cases"], notice["objections_until"]) == (201, 2, "2026-10-12"), notice
    notice_id = notice["notice_id"]
    assert case_of(aid, first, token=staff)["status"] == "noticed"
    # the files: masked name, class, level; nothing sensitive
    texts = []
    for kind in ("pdf", "xlsx"):
        status, file = aid.call(
            "GET", f"/schools/{school}/public-notices/{notice_id}/{kind}?school_year={YEAR}", token=staff
        )
        assert (status, file["rows"]) == (200, 2), file
        content = base64.b64decode(file["content_base64"])
        text = pdf_text(content) if kind == "pdf" else xlsx_text(content)
        texts.append(text)
        assert "测试**" in text and "测试学生" not in text and "会计2班" in text
        cells = text.split() if kind == "pdf" else [c for line in text.splitlines() for c in line.split(" ")]
        assert cells.count("特别困难") == 1 and cells.count("困难") == 1  # one of each level
        for seq, sid in zip((aid.seq - 1, aid.seq), sids, strict=True):
            number = id_number(seq)
            assert number not in text and number[:6] + "********" not in text and sid not in text
        for secret in (
            "23456",
            "50000",
            CERT["number"],
            CERT["type"],
            CERT["issuer"],
            "建档立卡",
            "低保",
            "类别",
            "务农",
            "收入",
        ):
            assert secret not in text, (kind, secret)
    assert "异议期至 2026-10-12" in texts[0]
    # objections: within the period, reviewed; an upheld one is a new determination, noticed again
    status, body = aid.call(
        "POST",
        f"/cases/{second}/objections",
        {"notice_id": notice_id, "filed_on": "2026-10-13", "text": "晚了"},
        token=staff,
    )
    assert (status, body["error"]) == (400, "OBJECTION_PERIOD_OVER")
    status, body = aid.call(
        "POST",
        f"/cases/{second}/objections",
        {"notice_id": notice_id, "filed_on": "2026-10-10", "text": "该生家庭新购车辆"},
        token=staff,
    )
    assert (status, body["status"]) == (201, "objection_under_review"), body
    (objection,) = case_of(aid, second, token=staff)["objections"]
    status, body = aid.call(
        "POST", f"/schools/{school}/archive", {"school_year": YEAR, "archived_on": "2026-10-20"}, token=staff
    )
    assert (status, body["error"]) == (409, "OBJECTIONS_OPEN")
    status, body = aid.call(
        "POST",
        f"/cases/{second}/objections/{objection['objection_id']}/review",
        {"outcome": "upheld", "reason": "调查属实，家庭新购车辆", "level": "not_difficult"},
        token=staff,
    )
    assert (status, body["status"]) == (201, "determined"), body
    assert events(aid, "HardshipDetermined", "case_id", second)[-1]["level"] == "not_difficult"
    status, body = aid.call(
        "POST", f"/schools/{school}/archive", {"school_year": YEAR, "archived_on": "2026-10-20"}, token=staff
    )
    assert (status, body["error"]) == (409, "NOT_NOTICED")  # the changed level is noticed again
    status, again = aid.call(
        "POST",
        f"/schools/{school}/public-notices",
        {"school_year": YEAR, "published_on": "2026-10-14"},
        token=staff,
    )
    assert (status, again["cases"]) == (201, 1)
    status, file = aid.call(
        "GET", f"/schools/{school}/public-notices/{again['notice_id']}/pdf?school_year={YEAR}", token=staff
    )
    assert (status, file["rows"]) == (
        200,
        0,
    )  # not difficult after review: not listed, no one learns who applied
    assert "测试**" not in pdf_text(base64.b64decode(file["content_base64"]))
    status, body = aid.call(
        "POST", f"/schools/{school}/archive", {"school_year": YEAR, "archived_on": "2026-10-18"}, token=staff
    )
    assert (status, body["error"]) == (409, "OBJECTION_PERIOD_OPEN")
    status, body = aid.call(
        "POST", f"/schools/{school}/archive", {"school_year": YEAR, "archived_on": "2026-10-20"}, token=staff
    )
    assert (status, body["cases"]) == (201, 2), body
    assert case_of(aid, first, token=staff)["status"] == "archived"
    status, file = aid.call(
        "GET",
        f"/schools/{school}/archive?school_year={YEAR}",
        token=aid.token("county", city=CITY, county=OTHER_COUNTY),
    )
    assert (status, file["rows"]) == (200, 2), file
    archive = xlsx_text(base64.b64decode(file["content_base64"]))
    assert (
        sids[0] in archive
        and "especially" not in archive
        and "特别困难" in archive
        and "2026-10-08" in archive
    )
    status, listing = aid.call("GET", f"/schools/{school}/cases?school_year={YEAR}", token=staff)
    assert status == 200 and listing["archived"] is True and len(listing["publications"]) == 2
    assert {c["semester_review_due"] for c in listing["cases"]} == {False}  # today is in 2026-autumn
    assert {c["case_id"]: c["level"] for c in listing["cases"]} == {
        first: "especially_difficult",
        second: "not_difficult",
    }


def open_case_at(aid: Aid, sid: str, token: str, **kw: Any) -> str:
    status, body = aid.call("POST", "/cases", case_body(sid, **kw), token=token)
    assert status == 201, body
    return str(body["case_id"])


def determine_at(aid: Aid, case_id: str, token: str, level: str, categories: list[int]) -> tuple[int, Any]:
    return aid.call(
        "POST",
        f"/cases/{case_id}/determination",
        {"level": level, "categories": categories, "effective_semester": "2026-autumn"},
        token=token,
    )


# ----------------------------------------------------------------------------- re-assessment, revocation


def test_re_assessment_on_a_family_change_takes_effect_from_its_month(aid: Aid) -> None:
    sid = aid.student()
    case_id = open_case(aid, sid, claims=[{"category": 8}])
    aid.call(
        "POST",
        f"/cases/{case_id}/assessment",
        questionnaire(yearly_income_yuan=60000, debt_yuan=0, serious_illness=False),
    )
    assert determine(aid, case_id, "not_difficult", [])[0] == 201
    status, body = determine(
        aid,
        case_id,
        "difficult",
        [8],
        trigger="family_change",
        reason="父亲重病住院",
        effective_month="2026-11",
    )
    assert (status, body["error"]) == (409, "NO_CHANGE_REPORTED")
    status, body = aid.call(
        "POST",
        f"/cases/{case_id}/changes",
        {"reported_on": "2026-10-28", "description": "父亲重病住院，收入中断"},
    )
    assert (status, body["status"]) == (201, "reassessment_due")
    status, body = determine(
        aid, case_id, "especially_difficult", [8], trigger="family_change", effective_month="2026-11"
    )
    assert (status, body["error"]) == (400, "REASON_REQUIRED")
    aid.call("POST", f"/cases/{case_id}/assessment", questionnaire(yearly_income_yuan=8000, disaster=True))
    status, body = determine(
        aid,
        case_id,
        "especially_difficult",
        [8],
        trigger="family_change",
        reason="父亲重病住院",
        effective_month="2026-11",
    )
    assert (status, body["status"]) == (201, "determined"), body
    dets = events(aid, "HardshipDetermined", "case_id", case_id)
    assert [(d["level"], d["trigger"], d["effective_month"]) for d in dets] == [
        ("not_difficult", "initial", None),
        ("especially_difficult", "family_change", "2026-11"),
    ]
    # the next semester's review: the records still say especially difficult until re-assessed
    status, body = determine(
        aid,
        case_id,
        "difficult",
        [8],
        trigger="semester_review",
        effective_semester="2027-spring",
        reason="学期动态调整",
    )
    assert (status, body["error"]) == (400, "LEVEL_CHANGE_NEEDS_REASON")
    aid.call("POST", f"/cases/{case_id}/assessment", questionnaire(yearly_income_yuan=30000, debt_yuan=0))
    status, body = determine(
        aid,
        case_id,
        "difficult",
        [8],
        trigger="semester_review",
        effective_semester="2027-spring",
        reason="学期动态调整",
    )
    assert (status, body["status"]) == (201, "determined"), body
    assert events(aid, "HardshipDetermined", "case_id", case_id)[-1]["effective_semester"] == "2027-spring"


def test_revocation_stops_aid_from_the_next_month_and_records_the_amount_to_recover(aid: Aid) -> None:
    sid = aid.student()
    import_registry(aid, "poor_household", "province", [id_number(aid.seq)])
    case_id = open_case(aid, sid, claims=[{"category": 1, "certificate": CERT}])
    aid.call("POST", f"/cases/{case_id}/comparison")
    assert determine(aid, case_id, "especially_difficult", [1])[0] == 201
    status, body = aid.call(
        "POST", f"/cases/{case_id}/revocation", {"found_on": "2026-11-15", "reason": "提供虚假扶贫手册"}
    )
    assert (status, body["status"]) == (201, "revoked"), body
    (revoked,) = events(aid, "HardshipRevoked", "case_id", case_id)
    assert revoked["effective_month"] == "2026-12"
    assert revoked["recover_months"] == ["2026-09", "2026-10", "2026-11"]
    assert revoked["recover_yuan"] == 3 * 250
    status, body = aid.call(
        "POST", f"/cases/{case_id}/revocation", {"found_on": "2026-11-16", "reason": "再次"}
    )
    assert (status, body["error"]) == (409, "REVOKED")
    assert case_of(aid, case_id)["revocation"]["recover_yuan"] == 750


# ----------------------------------------------------------------------------- privacy


def test_only_the_schools_staff_and_its_authorities_read_a_case_and_every_read_is_recorded(aid: Aid) -> None:
    sid = aid.student()
    case_id = open_case(
        aid,
        sid,
        guardian_id_number=GUARDIAN,
        claims=[{"category": 2, "certificate": CERT, "third_party_proof": "村委会证明"}],
    )
    for token in (aid.token(school="SC2"), aid.token("county", city=CITY, county=OTHER_COUNTY)):
        status, body = aid.call("GET", f"/cases/{case_id}", token=token)
        assert (status, body["error"]) == (403, "OUTSIDE_AREA")
    status, body = aid.call("GET", f"/cases/{case_id}", token=aid.token("student", student=sid))
    assert (status, body["error"]) == (403, "ROLE_FORBIDDEN")
    status, body = aid.call(
        "POST", f"/cases/{case_id}/assessment", questionnaire(), token=aid.token(school="SC2")
    )
    assert (status, body["error"]) == (403, "OUTSIDE_AREA")
    county = aid.token("county", city=CITY, county=COUNTY)
    case = case_of(aid, case_id, token=county)
    assert case["application"]["claims"][0]["certificate"] == CERT
    assert case["application"]["family"]["yearly_income_yuan"] == 23456
    with psycopg.connect(aid.system.database_url) as conn:
        reads = conn.execute(
            "SELECT caller_role, route FROM personal_data_reads WHERE student_id = %s"
            " AND service = 'hardship'",
            (sid,),
        ).fetchall()
        (payload,) = conn.execute(
            "SELECT payload::text FROM events WHERE type = 'HardshipCaseOpened' AND payload->>'case_id' = %s",
            (case_id,),
        ).fetchone() or ("",)
    assert ("county", "get_case") in reads
    # at rest: no income, certificate, proof or guardian number in the log, only sealed
    for secret in ("23456", CERT["number"], CERT["issuer"], "村委会证明", GUARDIAN, "务农"):
        assert secret not in payload
    assert json.loads(payload)["claims"] == [{"category": 2, "certificate": True}]


# ----------------------------------------------------------------------------- eligibility


def test_eligibility_grants_only_determined_students_at_their_levels_amount(aid: Aid) -> None:
    from contracts.events import HardshipDetermined, HardshipRevoked
    from tests.eligibility.elig_builders import Log, at
    from tests.eligibility.elig_builders import status as derive

    levels = {
        "especially_difficult": aid.student(),
        "difficult": aid.student(),
        "not_difficult": aid.student(),
        "revoked": aid.student(),
        "none": aid.student(),
    }
    cases = {}
    for label, sid in levels.items():
        if label == "none":
            continue
        case_id = open_case(aid, sid, claims=[{"category": 8}])
        cases[label] = case_id
        aid.call(
            "POST",
            f"/cases/{case_id}/assessment",
            questionnaire(
                yearly_income_yuan={"especially_difficult": 8000, "difficult": 30000}.get(label, 90000),
                debt_yuan=0,
                serious_illness=label == "especially_difficult",
                disaster=label == "especially_difficult",
            ),
        )
        level = "especially_difficult" if label == "revoked" else label
        reason = {} if label != "revoked" else {"reason": "评议"}
        if label == "revoked":
            aid.call(
                "POST",
                f"/cases/{case_id}/reviews",
                {
                    "kind": "democratic_review",
                    "held_on": "2026-09-25",
                    "by": ["班主任"],
                    "method": "class_vote",
                    "findings": "评议",
                    "proposed_level": level,
                },
            )
        status, body = determine(aid, case_id, level, [8] if level != "not_difficult" else [], **reason)
        assert status == 201, (label, body)
    assert (
        aid.call(
            "POST", f"/cases/{cases['revoked']}/revocation", {"found_on": "2026-10-20", "reason": "虚假信息"}
        )[0]
        == 201
    )

    # the eligibility process reads each event once and shows the status in force
    def seen() -> bool:
        with psycopg.connect(aid.system.database_url) as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT event_id FROM events WHERE type IN ('HardshipDetermined', 'HardshipRevoked')"
                    " AND payload->>'student_id' = ANY(%s)",
                    (list(levels.values()),),
                ).fetchall()
            ]
            done = conn.execute(
                "SELECT count(*) FROM processed_events WHERE consumer LIKE 'eligibility%%'"
                " AND event_id = ANY(%s)",
                (ids,),
            ).fetchone()
        return bool(ids) and done is not None and done[0] >= len(ids)

    wait_for(seen, timeout=40, what="eligibility to process the hardship events")
    for label in ("especially_difficult", "revoked"):
        status, body = aid.eligibility.api(
            "GET", f"/students/{levels[label]}?semester=2026-autumn", token=aid.token()
        )
        assert status == 200, body
        (state,) = body["statuses"]
        assert (state["hardship"]["status"], state["hardship"]["level"]) == (
            ("in_force", "especially_difficult")
            if label != "revoked"
            else ("revoked", "especially_difficult")
        )
    # the grant, derived by eligibility's rules from the events the hardship service wrote
    log = Log()
    with psycopg.connect(aid.system.database_url) as conn:
        rows = conn.execute(
            "SELECT type, payload FROM events WHERE type IN ('HardshipDetermined',"
            " 'HardshipRevoked') AND payload->>'student_id' = ANY(%s) ORDER BY position",
            (list(levels.values()),),
        ).fetchall()
    for sid in levels.values():
        log.registered(sid)
        log.enrolled(sid)
    for type_, payload in rows:
        model = HardshipDetermined if type_ == "HardshipDetermined" else HardshipRevoked
        when = at("2026-09-05") if type_ == "HardshipDetermined" else at("2026-10-20")
        log.add(model(**payload), when, f"hardship-case-{payload['case_id']}")
    checks = log.routine_checks()
    for sid in levels.values():
        log.pass_checks(sid, checks)
    amounts = {
        label: {g["month"]: g["amount_yuan"] for g in derive(log, sid)["grant"]}
        for label, sid in levels.items()
    }
    assert set(amounts["especially_difficult"].values()) == {250}
    assert set(amounts["difficult"].values()) == {167}
    assert set(amounts["not_difficult"].values()) == {0}
    assert set(amounts["none"].values()) == {0}
    assert amounts["revoked"] == {"2026-09": 250, "2026-10": 250, "2026-11": 0, "2026-12": 0, "2027-01": 0}


def test_the_registry_projection_is_rebuilt_from_the_log_with_the_same_answers(aid: Aid) -> None:
    from backbone.config import DEV_HASH_KEY
    from contracts.identity import hash_id_number
    from services.hardship import registry

    aid.student()
    import_registry(aid, "disabled", "national", [id_number(aid.seq)])
    import_registry(aid, "minimum_living", "province", [GUARDIAN])
    key = DEV_HASH_KEY.encode()  # the key the test system runs with
    own, guardian = hash_id_number(key, id_number(aid.seq)), hash_id_number(key, GUARDIAN)
    with psycopg.connect(aid.system.database_url) as conn:
        before = registry.lookup(conn, YEAR, own, guardian)
        assert before[("disabled", "national")][1] == frozenset({"student"})
        assert before[("minimum_living", "province")][1] == frozenset({"guardian"})
        n = registry.rebuild(conn)
        assert (
            n
            == conn.execute("SELECT count(*) FROM events WHERE type = 'HardshipRegistryImported'").fetchone()[
                0
            ]
        )  # type: ignore[index]
        assert registry.lookup(conn, YEAR, own, guardian) == before
        conn.rollback()
