"""Appeals (申诉): the school files a student's objection to a month's result; the same-level
authority approves or rejects it. Whether an approved appeal changes the month (and whether
the objection was late) is the eligibility fold's business; this service keeps the record."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from backbone.errors import Conflict, Forbidden, NotFound
from contracts.envelope import Envelope
from contracts.events import AppealFiled, AppealResolved
from contracts.readmodel import fold
from services.appeals.commands import FileAppeal, Resolve


@dataclass
class AppealView:
    appeal_id: str
    filed: AppealFiled | None = None
    decision: str | None = None
    version: int = 0


def appeal_stream(appeal_id: str) -> str:
    return f"appeal-{appeal_id}"


def appeal_view(appeal_id: str, events: list[Envelope]) -> AppealView:
    return fold(AppealView(appeal_id), events, {
        "AppealFiled": lambda view, p: replace(view, filed=AppealFiled(**p)),
        "AppealResolved": lambda view, p: replace(view, decision=p["decision"]),
    })


def file(command: FileAppeal, school_id: str, letter_ref: str) -> AppealFiled:
    return AppealFiled(appeal_id=str(uuid.uuid4()), student_id=command.student_id, school_id=school_id,
                       month=command.month, objected_on=command.objected_on.isoformat(),
                       letter_ref=letter_ref)


def resolve(view: AppealView, command: Resolve, level: str, school_level: str) -> AppealResolved:
    """The ruling of ``level`` (the caller's authority level) on the appeal of a school whose
    same-level authority is ``school_level``."""
    if view.filed is None:
        raise NotFound("UNKNOWN_APPEAL", f"no appeal {view.appeal_id}")
    if level != school_level:
        raise Forbidden("NOT_SAME_LEVEL", f"appeals of this school are ruled by the {school_level} authority")
    if view.decision is not None:
        raise Conflict("ALREADY_RESOLVED", f"appeal {view.appeal_id} was {view.decision} already")
    return AppealResolved(appeal_id=view.appeal_id, student_id=view.filed.student_id, month=view.filed.month,
                          decision=command.decision, decided_by=level)  # type: ignore[arg-type]
