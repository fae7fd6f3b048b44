"""Family-hardship identification (家庭经济困难学生认定): level from categories, as pure rules.

Categories (seed 004): 1 registered poor household (建档立卡), 2 minimum-living allowance or
extreme-poverty support (低保/特困供养), 3 orphan (孤儿), 4 disabled student (残疾学生),
5 child of martyrs/heroes or of soldiers, police, firefighters killed or disabled on duty,
6 child of entitled groups (优抚对象), 7 child of disabled parents, 8 other hardship.
Categories 1–6 are "especially difficult" (特别困难); 7–8 are "difficult" (困难) unless the school
judges them especially difficult. A student the school judges especially difficult without a
listed category is especially difficult too (第十二条: "及由本实施细则认定的其他特别困难学生").

The yearly procedure (cases from notice to archive) is in :mod:`services.hardship.domain.cases`;
the questionnaire in :mod:`.scoring`; the policy data in :mod:`.policy`.
"""

from __future__ import annotations

import uuid

from backbone.errors import DomainError
from contracts.calendar import parse_semester
from contracts.events import HardshipDetermined, HardshipRevoked
from services.hardship.commands import Determine

ESPECIALLY_DIFFICULT_CATEGORIES = frozenset({1, 2, 3, 4, 5, 6})
ALL_CATEGORIES = frozenset(range(1, 9))
METHODS = frozenset({"information_comparison", "quantitative_assessment", "school_review",
                     "school_investigation"})


def level_for(categories: tuple[int, ...], judged_especially_difficult: bool = False) -> str:
    if judged_especially_difficult or ESPECIALLY_DIFFICULT_CATEGORIES.intersection(categories):
        return "especially_difficult"
    return "difficult" if categories else "not_difficult"


def hardship_stream(student_id: str) -> str:
    return f"hardship-{student_id}"


def determine(app: Determine, school_id: str) -> HardshipDetermined:
    unknown = sorted(set(app.categories) - ALL_CATEGORIES)
    if unknown:
        raise DomainError("UNKNOWN_CATEGORY", f"hardship categories are 1..8; got {unknown}")
    bad_methods = sorted(set[str](app.methods) - METHODS)
    if bad_methods:
        raise DomainError("UNKNOWN_METHOD",
                          f"unknown identification methods {bad_methods}; use {sorted(METHODS)}")
    if not app.methods:
        raise DomainError("NO_METHOD", "say how the status was identified (methods)")
    try:
        parse_semester(app.effective_semester)
    except ValueError as exc:
        raise DomainError("BAD_SEMESTER", str(exc)) from exc
    return HardshipDetermined(
        determination_id=str(uuid.uuid4()),
        student_id=app.student_id,
        school_id=school_id,
        level=level_for(tuple(app.categories), app.judged_especially_difficult),  # type: ignore[arg-type]
        categories=sorted(set(app.categories)),
        effective_semester=app.effective_semester,
        methods=sorted(set(app.methods)),
    )


def revoke(determination_id: str, student_id: str, effective_semester: str, reason: str) -> HardshipRevoked:
    if not reason.strip():
        raise DomainError("NO_REASON", "a revocation needs a reason")
    return HardshipRevoked(determination_id=determination_id, student_id=student_id,
                           effective_semester=effective_semester, reason=reason.strip())
