"""The school console: today's checks and who has not passed, absences, the roster import with
its per-row report, the month's list and its publication, internships, placements with the
Attachment 2 export, appeals and hardship determinations. A school user sees only the pages of
its own school (the path's school is checked before any call, and the services check again)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Response

from console.web import Ctx, Upstream, download, file_base64, page

SHANGHAI = ZoneInfo("Asia/Shanghai")
READERS = ("school", "county", "city", "province", "auditor")
ROSTER_LIMIT = 3 * 1024 * 1024
PHOTO_LIMIT = 6 * 1024 * 1024


def this_month() -> str:
    from backbone import config

    return config.now().astimezone(SHANGHAI).strftime("%Y-%m")


def _instant(text: str) -> str | None:
    """A datetime-local field (Asia/Shanghai) as an ISO instant with offset."""
    if not text:
        return None
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).isoformat()


@page("/school", roles=("school",), nav="home", section="school")
def school_home_redirect(ctx: Ctx) -> Response:
    return ctx.redirect(f"/schools/{ctx.school_id()}")


@page("/schools/<school_id>", roles=("school",))
def school_home(ctx: Ctx, school_id: str) -> Response:
    school = ctx.api.get("enrolment", f"/schools/{school_id}")
    checks = ctx.api.get("spotcheck", "/checks", state="open")["checks"]
    return ctx.render("school_home.html", school=school, checks=checks, month=this_month())


@page("/schools/<school_id>/checks/<check_id>", roles=("school",), methods=("GET", "POST"))
def school_check(ctx: Ctx, school_id: str, check_id: str) -> Response:
    notice, warnings = None, []
    if ctx.request.method == "POST":
        answer = ctx.api.call("POST", "spotcheck", f"/checks/{check_id}/absences", {
            "student_id": ctx.form("student_id"), "reason": ctx.form("reason"),
            **({"reported_at": _instant(ctx.form("reported_at"))} if ctx.form("reported_at") else {})})
        notice, warnings = ctx.t("done"), answer.get("warnings", [])
    listed = ctx.api.get("spotcheck", "/checks", state="all")["checks"]
    checks = [c for c in listed if c["check_id"] == check_id]
    if not checks:
        raise Upstream(404, "UNKNOWN_CHECK", check_id)
    check = checks[0]
    month = ctx.api.get("eligibility", f"/schools/{school_id}/months/{check['month']}")
    missing = [s for s in month["students"] if s.get("outcome") != "passed"]
    return ctx.render("school_check.html", school_id=school_id, check=check, missing=missing,
                      counts=month["counts"], notice=notice, warnings=warnings)


@page("/schools/<school_id>/roster", roles=("school",), methods=("GET", "POST"), nav="roster",
      section="school")
def roster(ctx: Ctx, school_id: str) -> Response:
    report = None
    if ctx.request.method == "POST":
        upload = ctx.request.files.get("file")
        name = (upload.filename or "").lower() if upload else ""
        report = ctx.api.call("POST", "enrolment", "/students/import", {
            "school_id": school_id, "format": "xlsx" if name.endswith(".xlsx") else "csv",
            "file": file_base64(upload, ROSTER_LIMIT), "dry_run": ctx.form("dry_run") == "on"}, timeout=60)
    return ctx.render("roster.html", school_id=school_id, report=report)


@page("/schools/<school_id>/months/<month>", roles=READERS, methods=("GET", "POST"))
def month_list(ctx: Ctx, school_id: str, month: str) -> Response:
    notice = None
    if ctx.request.method == "POST":
        if ctx.session is None or ctx.session.role != "school":
            raise Upstream(403, "ROLE_FORBIDDEN", "only the school publishes")
        answer = ctx.api.post("spotcheck", "/results/publish", {"school_id": school_id, "month": month})
        notice = f"{ctx.t('published')}: {answer['published_on']}"
    data = ctx.api.get("eligibility", f"/schools/{school_id}/months/{month}")
    return ctx.render("month.html", school_id=school_id, month=month, data=data, notice=notice)


@page("/schools/<school_id>/month", roles=("school",), nav="month_list", section="school")
def month_redirect(ctx: Ctx, school_id: str) -> Response:
    month = ctx.request.args.get("month") or this_month()
    return ctx.redirect(f"/schools/{school_id}/months/{month}")


def _post_form(ctx: Ctx, run: Any) -> tuple[Any, str | None]:
    if ctx.request.method != "POST":
        return None, None
    try:
        return run(), None
    except Upstream as exc:
        return None, ctx.error_text(exc)


@page("/schools/<school_id>/internships", roles=("school",), methods=("GET", "POST"), nav="internships",
      section="school")
def internships(ctx: Ctx, school_id: str) -> Response:
    def run() -> Any:
        action = ctx.form("action")
        if action in ("departed", "returned"):
            return ctx.api.post("spotcheck", f"/internships/{ctx.form('plan_id')}/{action}",
                                {"on": ctx.form("on")})
        return ctx.api.post("spotcheck", "/internships", {
            "student_id": ctx.form("student_id"), "kind": ctx.form("kind"),
            "starts_on": ctx.form("starts_on"), "ends_on": ctx.form("ends_on"),
            "education_filed_on": ctx.form("education_filed_on"),
            "aid_authority_filed_on": ctx.form("aid_authority_filed_on")})

    answer, error = _post_form(ctx, run)
    return ctx.render("internships.html", school_id=school_id, answer=answer, error=error)


@page("/schools/<school_id>/placements", roles=("school",), methods=("GET", "POST"), nav="placements",
      section="school")
def placements(ctx: Ctx, school_id: str) -> Response:
    def run() -> Any:
        if ctx.form("action") == "update":  # only the fields filled in change
            changes = {k: ctx.form(k) for k in ("company", "location", "supervisor", "supervisor_contact",
                                                "starts_on", "ends_on") if ctx.form(k)}
            return ctx.api.post("spotcheck", f"/placements/{ctx.form('placement_id')}/update", changes)
        return ctx.api.post("spotcheck", f"/placements/{ctx.form('placement_id')}/end",
                            {"ended_on": ctx.form("ended_on")})

    answer, error = _post_form(ctx, run)
    listed = ctx.api.get("spotcheck", f"/schools/{school_id}/placements")["placements"]
    return ctx.render("placements.html", school_id=school_id, answer=answer, error=error, month=this_month(),
                      placements=listed)


@page("/schools/<school_id>/placements/<month>/attachment2", roles=READERS)
def attachment2(ctx: Ctx, school_id: str, month: str) -> Response:
    answer = ctx.api.get("spotcheck", f"/schools/{school_id}/placements/{month}/attachment2")
    return download(base64.b64decode(answer["content_base64"]), str(answer["filename"]),
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@page("/schools/<school_id>/attachment2", roles=READERS)
def attachment2_month(ctx: Ctx, school_id: str) -> Response:
    month = str(ctx.request.args.get("month") or this_month())[:7]
    return ctx.redirect(f"/schools/{school_id}/placements/{month}/attachment2")


@page("/schools/<school_id>/appeals", roles=("school",), methods=("GET", "POST"), nav="appeals",
      section="school")
def appeals(ctx: Ctx, school_id: str) -> Response:
    """Objections to a published month (within its window), the month's filing with the letter to
    print and sign, and the signed scan (appeals service)."""

    def run() -> Any:
        action = ctx.form("action")
        if action == "file":
            return ctx.api.post("appeals", "/appeals/filings", {"month": ctx.form("month")})
        if action == "signed":
            return ctx.api.post("appeals", f"/appeals/filings/{ctx.form('filing_id')}/signed",
                                {"scan": file_base64(ctx.request.files.get("scan"), PHOTO_LIMIT)})
        return ctx.api.post("appeals", "/appeals/objections", {
            "student_id": ctx.form("student_id"), "month": ctx.form("month"),
            "received_on": ctx.form("received_on"), "reason": ctx.form("reason")})

    answer, error = _post_form(ctx, run)
    return ctx.render("appeals.html", school_id=school_id, answer=answer, error=error, month=this_month())


@page("/schools/<school_id>/appeals/<filing_id>/letter", roles=READERS)
def appeal_letter(ctx: Ctx, school_id: str, filing_id: str) -> Response:
    answer = ctx.api.get("appeals", f"/appeals/filings/{filing_id}/letter")
    return download(base64.b64decode(answer["content_base64"]), str(answer["filename"]), "application/pdf")


@page("/schools/<school_id>/hardship", roles=("school",), methods=("GET", "POST"), nav="hardship",
      section="school")
def hardship(ctx: Ctx, school_id: str) -> Response:
    def run() -> Any:
        try:
            categories = [int(c) for c in ctx.form("categories").replace("，", ",").split(",") if c.strip()]
        except ValueError:
            raise Upstream(422, "INVALID_REQUEST", "categories are numbers 1-8") from None
        return ctx.api.post("hardship", "/determinations", {
            "student_id": ctx.form("student_id"), "categories": categories,
            "effective_semester": ctx.form("semester"), "methods": ctx.request.form.getlist("methods"),
            "judged_especially_difficult": ctx.form("especially") == "on"})

    answer, error = _post_form(ctx, run)
    year = school_year()
    try:
        listed = ctx.api.get("hardship", f"/schools/{school_id}/cases", school_year=year)
    except Upstream as exc:  # the year's notice is not out yet, or the service is older
        listed = {"cases": [], "note": ctx.error_text(exc)}
    return ctx.render("hardship.html", school_id=school_id, answer=answer, error=error, year=year,
                      listed=listed)


def school_year() -> str:
    """The school year (September to August) of today, Asia/Shanghai: ``2026-2027``."""
    from backbone import config

    today = config.now().astimezone(SHANGHAI)
    first = today.year if today.month >= 9 else today.year - 1
    return f"{first}-{first + 1}"
