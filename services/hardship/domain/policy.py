"""The hardship policy file (``services/hardship/policy/hardship-policy.yml``): questionnaire
weights and cut-offs, the levels of each school stage and their aid, as versioned data.
Validated on load; a bad file is refused with the place of the first error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

POLICY_FILE = Path(__file__).resolve().parents[1] / "policy" / "hardship-policy.yml"
FACTORS = (
    "income_per_head_ratio",
    "housing",
    "debt_ratio",
    "dependants",
    "serious_illness",
    "disability",
    "disaster",
    "student_spending_ratio",
)
STAGES = ("preschool", "primary", "junior", "senior", "vocational")
LEVELS = ("especially_difficult", "difficult")
METHOD_NAMES = ("quantitative_assessment", "investigation", "democratic_review")


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Band:
    points: float
    max: float | None = None
    equals: str | bool | None = None

    def matches(self, value: float | str | bool) -> bool:
        if self.equals is not None:
            return value == self.equals
        if self.max is not None:
            return not isinstance(value, str | bool) and value <= self.max
        return True


@dataclass(frozen=True)
class Factor:
    name: str
    weight: float
    bands: tuple[Band, ...]


@dataclass(frozen=True)
class StageRules:
    stage: str
    application: str
    required: tuple[str, ...]
    levels: Mapping[str, str]
    aid_yuan_per_year: Mapping[str, int]
    aid_yuan_per_month: Mapping[str, int]
    aid_months: tuple[int, ...]


@dataclass(frozen=True)
class HardshipPolicy:
    version: str
    effective_from: date
    factors: tuple[Factor, ...]
    cut_offs: Mapping[str, float]
    stages: Mapping[str, StageRules]
    objection_days: int


def _need(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise PolicyError(f"{where}: missing {key!r}")
    return data[key]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(f"{where}: expected a number")
    return float(value)


def _band(raw: Any, where: str) -> Band:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: a band is a mapping")
    unknown = set(raw) - {"points", "max", "equals"}
    if unknown:
        raise PolicyError(f"{where}: unknown keys {sorted(unknown)}")
    equals = raw.get("equals")
    if equals is not None and not isinstance(equals, str | bool):
        raise PolicyError(f"{where}.equals: a word or true/false")
    return Band(
        points=_number(_need(raw, "points", where), f"{where}.points"),
        max=None if raw.get("max") is None else _number(raw["max"], f"{where}.max"),
        equals=equals,
    )


def _stage(name: str, raw: Any, where: str) -> StageRules:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: a mapping")
    application = _need(raw, "application", where)
    if application not in ("application", "home_visit", "none"):
        raise PolicyError(f"{where}.application: application, home_visit or none")
    required = tuple(_need(raw, "required", where))
    if set(required) - set(METHOD_NAMES):
        raise PolicyError(f"{where}.required: methods are {METHOD_NAMES}")
    levels = _need(raw, "levels", where)
    if not isinstance(levels, dict) or set(levels) != set(LEVELS):
        raise PolicyError(f"{where}.levels: names for {LEVELS}")
    ints = {}
    for key in ("aid_yuan_per_year", "aid_yuan_per_month"):
        table = raw.get(key, {})
        if not isinstance(table, dict) or set(table) - set(LEVELS):
            raise PolicyError(f"{where}.{key}: amounts per level")
        ints[key] = {k: int(_number(v, f"{where}.{key}.{k}")) for k, v in table.items()}
    months = tuple(int(m) for m in raw.get("aid_months", ()))
    if any(not 1 <= m <= 12 for m in months):
        raise PolicyError(f"{where}.aid_months: months 1..12")
    return StageRules(
        name,
        application,
        required,
        {k: str(v) for k, v in levels.items()},
        ints["aid_yuan_per_year"],
        ints["aid_yuan_per_month"],
        months,
    )


def parse(data: Any) -> tuple[HardshipPolicy, ...]:
    """Every version of the file's data, oldest first."""
    if not isinstance(data, dict) or data.get("format") != "hardship-policy/1":
        raise PolicyError("format: expected hardship-policy/1")
    out = []
    for i, raw in enumerate(_need(data, "versions", "file")):
        where = f"versions[{i}]"
        q = _need(raw, "questionnaire", where)
        factors = []
        for name in FACTORS:
            f = _need(_need(q, "factors", f"{where}.questionnaire"), name, f"{where}.questionnaire.factors")
            bands = tuple(
                _band(b, f"{where}.{name}.bands[{j}]")
                for j, b in enumerate(_need(f, "bands", f"{where}.{name}"))
            )
            if not bands:
                raise PolicyError(f"{where}.{name}.bands: at least one")
            factors.append(
                Factor(name, _number(_need(f, "weight", f"{where}.{name}"), f"{where}.{name}"), bands)
            )
        cut = _need(q, "cut_offs", f"{where}.questionnaire")
        cut_offs = {
            lvl: _number(_need(cut, lvl, f"{where}.cut_offs"), f"{where}.cut_offs.{lvl}") for lvl in LEVELS
        }
        if cut_offs["especially_difficult"] < cut_offs["difficult"]:
            raise PolicyError(f"{where}.cut_offs: especially_difficult must not be below difficult")
        stages_raw = _need(raw, "stages", where)
        stages = {
            s: _stage(s, _need(stages_raw, s, f"{where}.stages"), f"{where}.stages.{s}") for s in STAGES
        }
        effective = _need(raw, "effective_from", where)
        if not isinstance(effective, date):
            raise PolicyError(f"{where}.effective_from: a date")
        notice = _need(raw, "public_notice", where)
        out.append(
            HardshipPolicy(
                str(_need(raw, "version", where)),
                effective,
                tuple(factors),
                cut_offs,
                stages,
                int(_number(_need(notice, "objection_days", where), where)),
            )
        )
    if not out:
        raise PolicyError("versions: at least one")
    if [p.effective_from for p in out] != sorted(p.effective_from for p in out):
        raise PolicyError("versions: in order of effective_from")
    return tuple(out)


def load(path: Path = POLICY_FILE) -> tuple[HardshipPolicy, ...]:
    return parse(yaml.safe_load(path.read_text(encoding="utf-8")))


def in_force(versions: Sequence[HardshipPolicy], day: date) -> HardshipPolicy:
    """The version in force on ``day`` (the first version before any)."""
    current = versions[0]
    for version in versions:
        if version.effective_from <= day:
            current = version
    return current
