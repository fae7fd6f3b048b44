"""Rules of hardship identification (issue 12) on plain values: the questionnaire's score and its
explanation, the policy file's validation, the comparison rule per category and household
registration, the level the records give, level changes, stage rules, re-assessment, revocation."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import date
from typing import Any

import pytest
import yaml

from backbone.errors import DomainError
from backbone.sealing import JsonSealer, SealError, purpose_key
from contracts.envelope import Actor
from contracts.registry import build_envelope
from services.hardship import domain as hardship
from services.hardship.commands import DetermineCase, OpenCase, Questionnaire, Review, Revoke
from services.hardship.domain import cases
from services.hardship.domain.policy import POLICY_FILE, PolicyError, load, parse
from services.hardship.domain.scoring import score

POLICY = load()[0]
SEALER = JsonSealer(purpose_key(b"k" * 32, "hardship"))
ACTOR = Actor(kind="school", id="staff:SC1", school="SC1")
YEAR = "2026-2027"


def q(**over: Any) -> Questionnaire:
    data: dict[str, Any] = {
        "local_minimum_living_yuan_per_year": 8000,
        "family_members": 4,
        "yearly_income_yuan": 30000,
        "debt_yuan": 0,
        "housing": "rent",
        "dependants": 2,
        "serious_illness": True,
        "student_monthly_spending_yuan": 500,
        "reference_monthly_spending_yuan": 800,
    }
    data.update(over)
    return Questionnaire(**data)


# ----------------------------------------------------------------------------- scoring


def test_each_factor_scores_its_band_times_its_weight_and_the_total_is_their_sum() -> None:
    a = score(q(), POLICY)
    by = {f.factor: f for f in a.factors}
    assert by["income_per_head_ratio"].value == 0.938 and by["income_per_head_ratio"].score == 30
    assert by["housing"].score == 6 and by["debt_ratio"].score == 0
    assert (by["dependants"].points, by["dependants"].weight, by["dependants"].score) == (4, 2.0, 8)
    assert by["serious_illness"].score == 10 and by["student_spending_ratio"].score == 5
    assert a.score == sum(f.score for f in a.factors) == 59
    assert a.suggested_level == "difficult" and a.policy_version == "2026.1"
    assert by["dependants"].band == "> 1 and <= 2"


@pytest.mark.parametrize(
    ("over", "level"),
    [
        ({}, "difficult"),  # 59
        ({"disaster": True}, "especially_difficult"),  # 69
        ({"yearly_income_yuan": 90000, "serious_illness": False}, "not_difficult"),  # 0+6+0+8+0+5 = 19
        ({"student_monthly_spending_yuan": 2000}, "difficult"),  # 59 - 5 - 10 = 44: lavish spending lowers it
        (
            {
                "yearly_income_yuan": 90000,
                "serious_illness": False,
                "dependants": 0,
                "student_monthly_spending_yuan": 2000,
            },
            "not_difficult",
        ),
    ],
)
def test_cut_offs_decide_the_suggested_level(over: dict[str, Any], level: str) -> None:
    assert score(q(**over), POLICY).suggested_level == level


def test_a_family_without_income_has_the_highest_debt_band_if_it_has_debt() -> None:
    by = {f.factor: f for f in score(q(yearly_income_yuan=0, debt_yuan=100), POLICY).factors}
    assert by["debt_ratio"].score == 12 and by["income_per_head_ratio"].score == 30


def test_the_policy_file_is_validated() -> None:
    data = yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))
    assert parse(data)[0].stages["preschool"].aid_yuan_per_year == {
        "especially_difficult": 2000,
        "difficult": 1000,
    }
    bad = copy.deepcopy(data)
    del bad["versions"][0]["questionnaire"]["factors"]["housing"]
    with pytest.raises(PolicyError, match="housing"):
        parse(bad)
    bad = copy.deepcopy(data)
    bad["versions"][0]["questionnaire"]["cut_offs"]["difficult"] = 99
    with pytest.raises(PolicyError, match="cut_offs"):
        parse(bad)
    bad = copy.deepcopy(data)
    bad["versions"][0]["stages"]["senior"]["required"] = ["astrology"]
    with pytest.raises(PolicyError, match="required"):
        parse(bad)


# ----------------------------------------------------------------------------- sealing


def test_sealed_values_open_only_with_their_key_and_place() -> None:
    text = SEALER.seal({"income": 23456}, "HardshipCaseOpened:X")
    assert "23456" not in text
    assert SEALER.open(text, "HardshipCaseOpened:X") == {"income": 23456}
    with pytest.raises(SealError):
        SEALER.open(text, "HardshipCaseOpened:Y")
    with pytest.raises(SealError):
        JsonSealer(purpose_key(b"k" * 32, "other")).open(text, "HardshipCaseOpened:X")


# ----------------------------------------------------------------------------- cases


class Case:
    """A case's stream under construction."""

    def __init__(
        self,
        stage: str = "vocational",
        registration: str = "in_province",
        claims: list[dict[str, Any]] | None = None,
        **over: Any,
    ) -> None:
        self.events: list[Any] = []
        body: dict[str, Any] = {
            "student_id": "S1",
            "school_year": YEAR,
            "stage": stage,
            "household_registration": registration,
            "claims": claims or [],
            "family": {"members": 3, "yearly_income_yuan": 10000},
        }
        body.update(over)
        year = cases.SchoolYearView("SC1", YEAR, notice={"notice_id": "N"})
        self.add(
            cases.open_case(
                OpenCase.model_validate_json(json.dumps(body)),
                "SC1",
                year,
                cases.CaseView("S1." + YEAR),
                POLICY,
                SEALER,
                None,
            )
        )

    def add(self, *events: Any) -> cases.CaseView:
        for e in events:
            env = build_envelope(e, stream="hardship-case-S1." + YEAR, actor=ACTOR)
            from dataclasses import replace

            self.events.append(replace(env, stream_version=len(self.events) + 1, event_id=uuid.uuid4()))
        return self.view

    @property
    def view(self) -> cases.CaseView:
        return cases.case_view("S1." + YEAR, self.events)

    def determine(self, level: str, categories: list[int], **over: Any) -> Any:
        cmd = DetermineCase.model_validate_json(
            json.dumps(
                {"level": level, "categories": categories, "effective_semester": "2026-autumn", **over}
            )
        )
        return cases.determine_case(self.view, cmd, POLICY, SEALER, date(2026, 9, 30))


def found(*entries: tuple[str, str, str]) -> dict[tuple[str, str], tuple[str, frozenset[str]]]:
    return {(r, s): ("imp-1", frozenset({who})) for r, s, who in entries}


@pytest.mark.parametrize(
    ("category", "registration", "system"),
    [
        (1, "in_province", "province"),
        (1, "out_of_province", "national"),
        (4, "in_province", "province"),
        (4, "out_of_province", "national"),
        (5, "in_province", "province"),
        (5, "out_of_province", None),
        (6, "in_province", "province"),
        (6, "out_of_province", None),
        (7, "in_province", None),
        (8, "out_of_province", None),
    ],
)
def test_the_comparison_system_follows_category_and_household_registration(
    category: int, registration: str, system: str | None
) -> None:
    case = Case(registration=registration, claims=[{"category": category}])
    ((c, used, registries),) = cases.comparison_plan(case.view)
    assert (c, used) == (category, system)
    assert bool(registries) == (system is not None)


def test_a_guardians_record_counts_for_household_categories_not_for_an_orphan_or_a_disabled_student() -> None:
    case = Case(claims=[{"category": 2}, {"category": 3}, {"category": 4}])
    result = cases.compare(
        case.view,
        found(
            ("minimum_living", "province", "guardian"),
            ("orphan", "province", "guardian"),
            ("disabled", "province", "student"),
        ),
    )
    assert [(r.category, r.outcome) for r in result.results] == [
        (2, "confirmed"),
        (3, "no_record"),
        (4, "confirmed"),
    ]


def test_a_record_in_the_wrong_system_is_no_record() -> None:
    case = Case(registration="out_of_province", claims=[{"category": 1}])
    (r,) = cases.compare(case.view, found(("poor_household", "province", "student"))).results
    assert (r.outcome, r.system) == ("no_record", "national")


def test_categories_one_to_six_confirmed_make_especially_difficult_and_no_questionnaire_is_needed() -> None:
    case = Case(claims=[{"category": 1}])
    case.add(cases.compare(case.view, found(("poor_household", "province", "student"))))
    event = case.determine("especially_difficult", [1])
    assert (event.level, event.methods, event.trigger) == (
        "especially_difficult",
        ["information_comparison"],
        "initial",
    )
    with pytest.raises(DomainError) as exc:
        case.determine("difficult", [1])
    assert exc.value.code == "LEVEL_CHANGE_NEEDS_REASON"


def test_a_level_change_needs_both_a_written_reason_and_a_review_that_proposed_it() -> None:
    case = Case(claims=[{"category": 8}])
    case.add(cases.assess(case.view, q(), POLICY, SEALER))  # difficult
    review = Review(
        kind="democratic_review",
        held_on=date(2026, 9, 20),
        by=["班主任"],
        method="class_vote",
        findings="全班评议",
        proposed_level="especially_difficult",
    )
    for add_review, reason, ok in ((False, "理由", False), (True, None, False), (True, "理由", True)):
        if add_review and not case.view.reviews:
            case.add(cases.record_review(case.view, review, SEALER))
        if ok:
            assert case.determine("especially_difficult", [8], reason=reason).level == "especially_difficult"
        else:
            with pytest.raises(DomainError) as exc:
                case.determine("especially_difficult", [8], reason=reason)
            assert exc.value.code == "LEVEL_CHANGE_NEEDS_REASON"


def test_a_review_must_use_its_own_kind_of_method() -> None:
    case = Case()
    with pytest.raises(DomainError) as exc:
        cases.record_review(
            case.view,
            Review(
                kind="investigation", held_on=date(2026, 9, 20), by=["王"], method="class_vote", findings="x"
            ),
            SEALER,
        )
    assert exc.value.code == "BAD_REVIEW_METHOD"


def test_stage_rules_application_home_visit_and_tiers() -> None:
    with pytest.raises(DomainError) as exc:
        Case(family=None)
    assert exc.value.code == "APPLICATION_REQUIRED"
    with pytest.raises(DomainError) as exc:
        Case(stage="preschool")
    assert exc.value.code == "HOME_VISIT_FORM_REQUIRED"
    visit = {
        "form": "phone",
        "teachers": ["张"],
        "visited_on": "2026-09-10",
        "guardian_relation": "other",
        "wishes_aid": True,
    }
    assert Case(stage="preschool", home_visit=visit, claims=[{"category": 6}]).view.opened["tier"] == 1  # type: ignore[index]
    tier2 = Case(stage="preschool", home_visit=visit, claims=[{"category": 7}])
    assert tier2.view.opened["tier"] == 2  # type: ignore[index]
    assert tier2.determine("difficult", [7]).level == "difficult"  # the form is the investigation
    assert Case(stage="junior", family=None).view.opened["route"] == "comparison"  # type: ignore[index]


def test_re_assessment_needs_a_trigger_a_reason_and_for_a_family_change_a_report() -> None:
    case = Case(claims=[{"category": 8}])
    case.add(cases.assess(case.view, q(), POLICY, SEALER))
    case.add(case.determine("difficult", [8]))
    for over, code in (
        ({}, "ALREADY_DETERMINED"),
        ({"trigger": "semester_review"}, "REASON_REQUIRED"),
        ({"trigger": "family_change", "reason": "病"}, "NO_CHANGE_REPORTED"),
    ):
        with pytest.raises(DomainError) as exc:
            case.determine("difficult", [8], **over)
        assert exc.value.code == code
    from services.hardship.commands import ReportChange

    case.add(
        cases.report_change(
            case.view, ReportChange(reported_on=date(2026, 11, 2), description="父亲住院"), SEALER
        )
    )
    assert cases.status_of(case.view, cases.SchoolYearView("SC1", YEAR)) == "reassessment_due"
    event = case.determine("difficult", [8], trigger="family_change", reason="病", effective_month="2026-11")
    assert (event.trigger, event.effective_month) == ("family_change", "2026-11")


def test_revocation_stops_from_the_next_month_and_recovers_the_aid_months_in_force() -> None:
    case = Case(claims=[{"category": 1}])
    case.add(cases.compare(case.view, found(("poor_household", "province", "student"))))
    case.add(case.determine("especially_difficult", [1]))
    event = cases.revoke_case(
        case.view, Revoke(found_on=date(2027, 3, 31), reason="虚假"), POLICY, date(2027, 4, 1)
    )
    assert event.effective_month == "2027-04"
    assert event.recover_months == ["2026-09", "2026-10", "2026-11", "2026-12", "2027-01", "2027-03"]
    assert event.recover_yuan == 6 * 250
    with pytest.raises(DomainError) as exc:
        cases.revoke_case(
            case.view, Revoke(found_on=date(2027, 4, 2), reason="虚假"), POLICY, date(2027, 4, 1)
        )
    assert exc.value.code == "FOUND_IN_FUTURE"
    assert json.dumps(event.to_payload())  # a valid payload


def test_revocation_of_a_pre_school_status_recovers_half_the_yearly_aid_per_semester() -> None:
    visit = {
        "form": "in_person",
        "teachers": ["张"],
        "visited_on": "2026-09-10",
        "guardian_relation": "mother",
        "wishes_aid": True,
    }
    case = Case(stage="preschool", home_visit=visit, claims=[{"category": 8}])
    case.add(case.determine("difficult", [8]))
    event = cases.revoke_case(
        case.view, Revoke(found_on=date(2026, 12, 1), reason="虚假"), POLICY, date(2026, 12, 1)
    )
    assert (event.recover_months, event.recover_yuan) == (["2026-09"], 500)


def test_judged_especially_difficult_without_a_category_is_especially_difficult() -> None:
    # seed 004 第十二条: 特别困难 covers categories 1-6 "及由本实施细则认定的其他特别困难学生"
    assert hardship.level_for((), True) == "especially_difficult"
    assert hardship.level_for((), False) == "not_difficult"


def test_a_case_determined_for_autumn_is_due_for_review_in_spring() -> None:
    case = Case(claims=[{"category": 8}])
    case.add(cases.assess(case.view, q(), POLICY, SEALER))
    assert not cases.semester_review_due(case.view, "2027-spring")  # not determined yet
    case.add(case.determine("difficult", [8]))
    assert not cases.semester_review_due(case.view, "2026-autumn")
    assert cases.semester_review_due(case.view, "2027-spring")
    assert not cases.semester_review_due(case.view, "2027-autumn")  # another school year: a new case
    case.add(
        case.determine(
            "difficult",
            [8],
            trigger="semester_review",
            reason="学期动态调整",
            effective_semester="2027-spring",
        )
    )
    assert not cases.semester_review_due(case.view, "2027-spring")


def test_without_an_application_every_category_one_to_six_is_compared_and_only_findings_are_reported() -> (
    None
):
    case = Case(stage="primary", family=None, claims=[{"category": 3}])
    plan = cases.comparison_plan(case.view)
    assert [c for c, _, _ in plan] == [1, 2, 3, 4, 5, 6]
    result = cases.compare(case.view, found(("minimum_living", "province", "guardian")))
    assert [(r.category, r.outcome) for r in result.results] == [(2, "confirmed"), (3, "no_record")]
    case.add(result)
    assert case.determine("especially_difficult", [2]).categories == [2]
    with pytest.raises(DomainError) as exc:
        case.determine("especially_difficult", [1])
    assert exc.value.code == "CATEGORY_NOT_CLAIMED"
