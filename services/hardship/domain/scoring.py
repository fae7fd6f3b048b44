"""Quantitative assessment (量化评估): the questionnaire scored under a policy version, factor by
factor, so the score explains itself (seed 004 第十一条: income, property, debt, burdens, illness,
disability, disasters, the student's own spending)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.hardship.commands import Questionnaire
from services.hardship.domain.policy import Factor, HardshipPolicy


@dataclass(frozen=True)
class FactorScore:
    factor: str
    value: float | str | bool
    band: str
    points: float
    weight: float

    @property
    def score(self) -> float:
        return round(self.points * self.weight, 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "value": self.value,
            "band": self.band,
            "points": self.points,
            "weight": self.weight,
            "score": self.score,
        }


@dataclass(frozen=True)
class Assessment:
    policy_version: str
    score: float
    suggested_level: str
    factors: tuple[FactorScore, ...]

    def explanation(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self.factors]


def answers(q: Questionnaire) -> dict[str, float | str | bool]:
    """The factor values of a questionnaire (ratios rounded to 3 places)."""
    per_head = q.yearly_income_yuan / q.family_members
    return {
        "income_per_head_ratio": round(per_head / q.local_minimum_living_yuan_per_year, 3),
        "housing": q.housing,
        "debt_ratio": round(q.debt_yuan / q.yearly_income_yuan, 3)
        if q.yearly_income_yuan
        else (0.0 if q.debt_yuan == 0 else 99.0),
        "dependants": float(q.dependants),
        "serious_illness": q.serious_illness,
        "disability": q.disability,
        "disaster": q.disaster,
        "student_spending_ratio": round(
            q.student_monthly_spending_yuan / q.reference_monthly_spending_yuan, 3
        ),
    }


def _band_name(factor: Factor, index: int) -> str:
    band = factor.bands[index]
    if band.equals is not None:
        return f"= {str(band.equals).lower()}"
    if band.max is not None:
        low = next((b.max for b in reversed(factor.bands[:index]) if b.max is not None), None)
        return f"<= {band.max:g}" if low is None else f"> {low:g} and <= {band.max:g}"
    low = next((b.max for b in reversed(factor.bands[:index]) if b.max is not None), None)
    return "any" if low is None else f"> {low:g}"


def score(q: Questionnaire, policy: HardshipPolicy) -> Assessment:
    values = answers(q)
    parts = []
    for factor in policy.factors:
        value = values[factor.name]
        index = next((i for i, b in enumerate(factor.bands) if b.matches(value)), None)
        if index is None:
            parts.append(FactorScore(factor.name, value, "no band", 0.0, factor.weight))
        else:
            parts.append(
                FactorScore(
                    factor.name, value, _band_name(factor, index), factor.bands[index].points, factor.weight
                )
            )
    total = round(sum(p.score for p in parts), 2)
    if total >= policy.cut_offs["especially_difficult"]:
        level = "especially_difficult"
    elif total >= policy.cut_offs["difficult"]:
        level = "difficult"
    else:
        level = "not_difficult"
    return Assessment(policy.version, total, level, tuple(parts))
