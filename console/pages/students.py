"""One student at a time, beside the roster import: register a proposed-aid student (the ID
number goes to enrolment in the form body and comes back masked only) and record that a student
left school (withdrawn, graduated, transferred: aid stops from the next month). The student number
travels in form bodies, never in a URL."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from console.pages.school import _post_form, this_month
from console.web import Ctx, Upstream, page

LEAVING_REASONS = ("withdrawn", "graduated", "transferred")


def _number(ctx: Ctx, name: str) -> int:
    try:
        return int(ctx.form(name))
    except ValueError:
        raise Upstream(422, "INVALID_REQUEST", f"{name} is a number") from None


@page("/schools/<school_id>/students", roles=("school",), methods=("GET", "POST"), nav="students_page",
      section="school")
def students(ctx: Ctx, school_id: str) -> Response:
    def run() -> Any:
        if ctx.form("action") == "leave":
            body = {"reason": ctx.form("reason"), "left_on": ctx.form("left_on")}
            if ctx.form("to_school_id"):
                body["to_school_id"] = ctx.form("to_school_id")
            return ctx.api.post("enrolment", f"/students/{ctx.form('student_id')}/leave", body)
        return ctx.api.post("enrolment", "/students", {
            "student_id": ctx.form("student_id"), "school_id": school_id, "name": ctx.form("name"),
            "id_number": ctx.form("id_number"), "grade": _number(ctx, "grade"),
            "class_name": ctx.form("class_name"), "major": ctx.form("major"),
            "enrolment_year": _number(ctx, "enrolment_year"), "enrolment_season": ctx.form("season"),
            "proposed_aid": ctx.form("proposed_aid") == "on"})

    answer, error = _post_form(ctx, run)
    return ctx.render("students.html", school_id=school_id, answer=answer, error=error,
                      reasons=LEAVING_REASONS, year=this_month()[:4])
