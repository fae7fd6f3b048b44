"""The auditor's view: a student's status as of any instant (replayed from the log), each
decision with the events behind it, beside the live projection and the differences between a
replay and the projection. The student number is sent in the form body, never in the URL."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from console.pages.school import _instant, _post_form
from console.web import Ctx, page


@page("/audit", roles=("auditor",), methods=("GET", "POST"), nav="audit", section="audit")
def as_of(ctx: Ctx) -> Response:
    def run() -> Any:
        return ctx.api.get("eligibility", f"/audit/students/{ctx.form('student_id')}",
                           as_of=_instant(ctx.form("as_of")), semester=ctx.form("semester") or None)

    answer, error = _post_form(ctx, run)
    return ctx.render("audit.html", answer=answer, error=error)


@page("/audit/reads", roles=("auditor",), nav="reads", section="audit")
def reads(ctx: Ctx) -> Response:
    listed = ctx.api.get("eligibility", "/audit/personal-data-reads", limit=100)["reads"]
    return ctx.render("reads.html", reads=listed)
