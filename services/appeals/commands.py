"""The appeals service's commands: typed requests, parsed at the edge, taken by the domain."""

from __future__ import annotations

from typing import Literal

from backbone.fields import Day, Id, Image, Model, Month


class FileAppeal(Model):
    """The school files a student's objection to a month's result, with the signed letter's scan."""

    student_id: Id
    month: Month
    objected_on: Day
    letter: Image


class Resolve(Model):
    """The school's same-level authority approves or rejects an appeal."""

    decision: Literal["approved", "rejected"]


class Filed(Model):
    appeal_id: str


class Resolved(Model):
    appeal_id: str
    decision: str
    decided_by: str
