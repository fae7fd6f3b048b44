"""Hardship identification step by step (docs/hardship.md): the year's advance notice, a case
(application or comparison), information comparison, the questionnaire, a democratic review or
investigation, the school's determination with a level, the public notice (PDF/XLSX), a family
change, an objection and its review, a revocation, and the archive (XLSX); the state of a case.
School staff act only for their own school (the path's school is checked before any call; the
services check again).

A case id holds the student number, so it travels in form bodies only: a case is chosen from
the year's list (a select) and opened with a POST; URLs carry the school code, the school year
and the public notice's opaque id."""

from __future__ import annotations

import base64
import re
from typing import Any

from werkzeug.wrappers import Response

from console.pages.school import READERS, _post_form, school_year
from console.web import Ctx, Upstream, download, page

_YEAR = re.compile(r"^20\d{2}-20\d{2}$")
_LIST = re.compile(r"[\s,，、]+")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STAGES = ("preschool", "primary", "junior", "senior", "vocational")
LEVELS = ("especially_difficult", "difficult", "not_difficult")
REVIEW_METHODS = ("class_vote", "home_visit", "interview", "phone", "data_analysis")
CASE_ACTIONS = ("show", "compare", "assess", "review", "determine", "change", "objection", "objection_review",
                "revoke")


def _year(text: str | None) -> str:
    year = (text or "").strip() or school_year()
    if not _YEAR.match(year):
        raise Upstream(422, "INVALID_REQUEST", "school year is YYYY-YYYY")
    return year


def _words(text: str) -> list[str]:
    return [w for w in _LIST.split(text) if w]


def _ints(text: str) -> list[int]:
    try:
        return [int(w) for w in _words(text)]
    except ValueError:
        raise Upstream(422, "INVALID_REQUEST", "numbers expected") from None


def _int(ctx: Ctx, name: str, default: int | None = None) -> int | None:
    text = ctx.form(name)
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise Upstream(422, "INVALID_REQUEST", f"{name} is a number") from None


def _opt(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v not in (None, "", [])}


def _open_body(ctx: Ctx, year: str) -> dict[str, Any]:
    family = None
    if ctx.form("members"):
        family = _opt({"members": _int(ctx, "members"), "yearly_income_yuan": _int(ctx, "income", 0),
                       "housing": ctx.form("housing") or "own"})
    return _opt({"student_id": ctx.form("student_id"), "school_year": year, "stage": ctx.form("stage"),
                 "household_registration": ctx.form("registration"),
                 "claims": [{"category": c} for c in _ints(ctx.form("categories"))], "family": family})


def _assessment(ctx: Ctx) -> dict[str, Any]:
    return {"local_minimum_living_yuan_per_year": _int(ctx, "minimum_living"),
            "family_members": _int(ctx, "family_members"), "yearly_income_yuan": _int(ctx, "income"),
            "debt_yuan": _int(ctx, "debt", 0), "housing": ctx.form("housing"),
            "dependants": _int(ctx, "dependants", 0),
            **{k: ctx.form(k) == "on" for k in ("serious_illness", "disability", "disaster")},
            "student_monthly_spending_yuan": _int(ctx, "spending"),
            "reference_monthly_spending_yuan": _int(ctx, "reference_spending")}


def _review(ctx: Ctx) -> dict[str, Any]:
    return _opt({"kind": ctx.form("kind"), "held_on": ctx.form("held_on"), "by": _words(ctx.form("by")),
                 "method": ctx.form("method"), "votes_for": _int(ctx, "votes_for"),
                 "votes_against": _int(ctx, "votes_against"), "findings": ctx.form("findings"),
                 "proposed_level": ctx.form("proposed_level")})


def _determination(ctx: Ctx) -> dict[str, Any]:
    return _opt({"level": ctx.form("level"), "categories": _ints(ctx.form("categories")),
                 "effective_semester": ctx.form("semester"), "reason": ctx.form("reason"),
                 "trigger": ctx.form("trigger") or "initial", "effective_month": ctx.form("effective_month")})


@page("/schools/<school_id>/hardship/steps", roles=("school",), methods=("GET", "POST"), nav="hardship_steps",
      section="school")
def hardship_steps(ctx: Ctx, school_id: str) -> Response:
    year = _year(ctx.form("school_year") or str(ctx.request.args.get("school_year") or ""))
    action = ctx.form("action")
    case_id = ctx.form("case_id")

    def run() -> Any:
        if action == "notice":
            return ctx.api.post("hardship", f"/schools/{school_id}/hardship-notice", {
                "school_year": year, "issued_on": ctx.form("issued_on"),
                "channels": _words(ctx.form("channels"))})
        if action == "open":
            return ctx.api.post("hardship", "/cases", _open_body(ctx, year))
        if action == "publish":
            return ctx.api.post("hardship", f"/schools/{school_id}/public-notices",
                                {"school_year": year, "published_on": ctx.form("published_on")})
        if action == "archive":
            return ctx.api.post("hardship", f"/schools/{school_id}/archive",
                                {"school_year": year, "archived_on": ctx.form("archived_on")})
        if action not in CASE_ACTIONS or not case_id:
            raise Upstream(422, "INVALID_REQUEST", "choose a case")
        path = f"/cases/{case_id}"
        if action == "compare":
            return ctx.api.post("hardship", f"{path}/comparison")
        if action == "assess":
            return ctx.api.post("hardship", f"{path}/assessment", _assessment(ctx))
        if action == "review":
            return ctx.api.post("hardship", f"{path}/reviews", _review(ctx))
        if action == "determine":
            return ctx.api.post("hardship", f"{path}/determination", _determination(ctx))
        if action == "change":
            return ctx.api.post("hardship", f"{path}/changes", {
                "reported_on": ctx.form("reported_on"), "description": ctx.form("description")})
        if action == "objection":
            return ctx.api.post("hardship", f"{path}/objections", {
                "notice_id": ctx.form("notice_id"), "filed_on": ctx.form("filed_on"),
                "text": ctx.form("text")})
        if action == "objection_review":
            return ctx.api.post("hardship", f"{path}/objections/{ctx.form('objection_id')}/review", _opt({
                "outcome": ctx.form("outcome"), "reason": ctx.form("reason"), "level": ctx.form("level"),
                "effective_semester": ctx.form("semester")}))
        if action == "revoke":
            return ctx.api.post("hardship", f"{path}/revocation",
                                {"found_on": ctx.form("found_on"), "reason": ctx.form("reason")})
        return None  # show

    answer, error = _post_form(ctx, run)
    chosen = (answer or {}).get("case_id") or (case_id if action in CASE_ACTIONS else "")
    case = None
    if chosen:
        try:
            case = ctx.api.get("hardship", f"/cases/{chosen}")
        except Upstream as exc:
            error = error or ctx.error_text(exc)
    try:
        listed = ctx.api.get("hardship", f"/schools/{school_id}/cases", school_year=year)
    except Upstream as exc:
        listed = {"cases": [], "publications": [], "note": ctx.error_text(exc)}
    return ctx.render("hardship_steps.html", school_id=school_id, year=year, answer=answer, error=error,
                      case=case, chosen=chosen, listed=listed, stages=STAGES, levels=LEVELS,
                      review_methods=REVIEW_METHODS)


@page("/schools/<school_id>/hardship/notices/<notice_id>/<kind>", roles=READERS)
def hardship_notice_file(ctx: Ctx, school_id: str, notice_id: str, kind: str) -> Response:
    """The public notice (masked name, class, level) as PDF or XLSX."""
    if kind not in ("pdf", "xlsx"):
        raise Upstream(404, "NOT_FOUND", kind)
    year = _year(str(ctx.request.args.get("school_year") or ""))
    answer = ctx.api.get("hardship", f"/schools/{school_id}/public-notices/{notice_id}/{kind}",
                         school_year=year)
    return download(base64.b64decode(answer["content_base64"]), str(answer["filename"]),
                    "application/pdf" if kind == "pdf" else XLSX)


@page("/schools/<school_id>/hardship/archive", roles=READERS)
def hardship_archive_file(ctx: Ctx, school_id: str) -> Response:
    """The school year's archive (XLSX, masked names)."""
    year = _year(str(ctx.request.args.get("school_year") or ""))
    answer = ctx.api.get("hardship", f"/schools/{school_id}/archive", school_year=year)
    return download(base64.b64decode(answer["content_base64"]), str(answer["filename"]), XLSX)
