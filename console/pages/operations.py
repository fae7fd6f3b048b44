"""Operations: schools, and terminals with their credentials (register: the secret is shown
once; rotate; revoke: the terminal's kiosk shows its clear screen within seconds)."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from console.pages.school import _post_form
from console.web import Ctx, page


@page("/operations", roles=("operations",), methods=("GET", "POST"), nav="terminals", section="operations")
def terminals(ctx: Ctx) -> Response:
    def run() -> Any:
        action, terminal_id = ctx.form("action"), ctx.form("terminal_id")
        if action == "revoke":
            return ctx.api.post("enrolment", f"/terminals/{terminal_id}/revoke",
                                {"reason": ctx.form("reason") or "revoked by operations"})
        if action == "rotate":
            return ctx.api.post("enrolment", f"/terminals/{terminal_id}/secret")
        return ctx.api.post("enrolment", "/terminals", {"terminal_id": terminal_id,
                                                        "school_id": ctx.form("school_id"),
                                                        "label": ctx.form("label")})

    answer, error = _post_form(ctx, run)
    school_id = str(ctx.request.args.get("school_id", ""))[:64] or None
    listed = ctx.api.get("enrolment", "/terminals", school_id=school_id)["terminals"]
    return ctx.render("terminals.html", terminals=listed, answer=answer, error=error)


@page("/operations/schools", roles=("operations",), methods=("GET", "POST"), nav="schools",
      section="operations")
def schools(ctx: Ctx) -> Response:
    def run() -> Any:
        return ctx.api.post("enrolment", "/schools", {
            "school_id": ctx.form("school_id"), "name": ctx.form("name"), "city": ctx.form("city"),
            "county": ctx.form("county")})

    answer, error = _post_form(ctx, run)
    return ctx.render("schools.html", answer=answer, error=error)
