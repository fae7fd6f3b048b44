"""Appeals (申诉): the school files a student's objection to a month's result; the same-level
authority approves or rejects it. Whether an approved appeal changes the month (and whether
the objection was late) is the eligibility fold's business; this service keeps the record."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from backbone.errors import Conflict, DomainError, NotFound
from contracts.envelope import Envelope
from contracts.events import AppealFiled, AppealResolved


def appeal_stream(appeal_id: str) -> str:
    return f"appeal-{appeal_id}"


@dataclass
class AppealView:
    appeal_id: str
    filed: AppealFiled | None = None
    decision: str | None = None
    version: int = 0


def appeal_view(appeal_id: str, events: list[Envelope]) -> AppealView:
    view = AppealView(appeal_id)
    for e in events:
        view.version = e.stream_version
        if e.type == "AppealFiled":
            view.filed = AppealFiled(**e.payload)
        elif e.type == "AppealResolved":
            view.decision = e.payload["decision"]
    return view


def file(body: dict[str, Any], letter_ref: str) -> AppealFiled:
    month = str(body.get("month", ""))
    if len(month) != 7 or month[4] != "-" or not month.replace("-", "").isdigit():
        raise DomainError("BAD_MONTH", "month is YYYY-MM")
    try:
        objected = date.fromisoformat(str(body.get("objected_on", "")))
    except ValueError as exc:
        raise DomainError("BAD_DATE", "objected_on is the date (YYYY-MM-DD) the student objected in writing") from exc
    return AppealFiled(appeal_id=str(uuid.uuid4()), student_id=str(body["student_id"]),
                       school_id=str(body["school_id"]), month=month, objected_on=objected.isoformat(),
                       letter_ref=letter_ref)


def resolve(view: AppealView, decision: str, decided_by: str) -> AppealResolved:
    if view.filed is None:
        raise NotFound("UNKNOWN_APPEAL", f"no appeal {view.appeal_id}")
    if view.decision is not None:
        raise Conflict("ALREADY_RESOLVED", f"appeal {view.appeal_id} was {view.decision} already")
    if decision not in ("approved", "rejected"):
        raise DomainError("BAD_DECISION", "decision is approved or rejected")
    if decided_by not in ("province", "city", "county"):
        raise DomainError("BAD_FIELD", "decided_by is the same-level authority: province, city or county")
    return AppealResolved(appeal_id=view.appeal_id, student_id=view.filed.student_id, month=view.filed.month,
                          decision=decision, decided_by=decided_by)  # type: ignore[arg-type]
