"""The hardship service's commands: typed requests, parsed at the edge, taken by the domain."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from backbone.fields import Id, Model

Semester = Annotated[str, Field(pattern=r"^20\d{2}-(autumn|spring)$", examples=["2026-autumn"])]
Method = Literal["information_comparison", "quantitative_assessment", "school_review", "school_investigation"]


class Determine(Model):
    """A school's determination of a student's family-hardship level (from categories 1-8)."""

    student_id: Id
    categories: list[Annotated[int, Field(ge=1, le=8)]] = Field(max_length=8)
    effective_semester: Semester
    methods: list[Method] = Field(min_length=1, max_length=4)
    judged_especially_difficult: bool = False


class Determined(Model):
    determination_id: str
    level: str
    position: int
