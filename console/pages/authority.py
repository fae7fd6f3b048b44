"""The authorities' console (province, and a city or county within its area): open and close
routine and targeted checks, the live progress of a check day, the month's summary with its
drill-down to a school, and the appeals to resolve."""

from __future__ import annotations

import re
import time
from typing import Any

from werkzeug.wrappers import Response

from console.pages.school import _instant, _post_form, this_month
from console.web import Ctx, Upstream, json_response, page

AUTHORITIES = ("county", "city", "province")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_IDS = re.compile(r"[\s,，]+")


def _ids(text: str) -> list[str] | None:
    ids = [i for i in _IDS.split(text) if i]
    return ids or None


@page("/authority", roles=AUTHORITIES, methods=("GET", "POST"), nav="checks", section="authority")
def checks(ctx: Ctx) -> Response:
    def run() -> Any:
        if ctx.form("action") == "close":
            return ctx.api.post("spotcheck", f"/checks/{ctx.form('check_id')}/close")
        targeted = bool(ctx.form("student_ids"))
        body: dict[str, Any] = {"opens_at": _instant(ctx.form("opens_at")),
                                "closes_at": _instant(ctx.form("closes_at")),
                                "kind": "targeted" if targeted else "routine"}
        if targeted:
            body["student_ids"] = _ids(ctx.form("student_ids"))
        elif _ids(ctx.form("school_ids")):
            body["school_ids"] = _ids(ctx.form("school_ids"))
        return ctx.api.post("spotcheck", "/checks", body)

    answer, error = _post_form(ctx, run)
    listed = ctx.api.get("spotcheck", "/checks", state="all")["checks"]
    return ctx.render("authority_checks.html", checks=listed, answer=answer, error=error, month=this_month())


def _scope(ctx: Ctx) -> dict[str, str]:
    args = ctx.request.args
    return {k: str(args.get(k, ""))[:64] for k in ("school_id", "county", "city") if args.get(k)}


def _summary(ctx: Ctx, month: str) -> dict[str, Any]:
    if not _MONTH.match(month):
        raise Upstream(422, "INVALID_REQUEST", "month is YYYY-MM")
    return dict(ctx.api.get("eligibility", f"/summary/{month}", **_scope(ctx)))


COUNTS = ("students", "checked", "passed", "failed", "pending")


def _live(ctx: Ctx, month: str) -> dict[str, Any]:
    """The month's counts in the scope, and the same school by school and county by county."""
    summary = _summary(ctx, month)
    scope = _scope(ctx)
    area = {k: v for k, v in scope.items() if k in ("county", "city")}
    try:
        schools = list(ctx.api.get("eligibility", f"/summary/{month}/schools", **area)["schools"])
    except Upstream as exc:
        if exc.code != "UPSTREAM":  # an eligibility without the per-school list: the totals only
            raise
        schools = []
    if scope.get("school_id"):
        schools = [s for s in schools if s["school_id"] == scope["school_id"]]
    counties: dict[tuple[str, str], dict[str, Any]] = {}
    for row in schools:
        row["not_checked"] = row["students"] - row["checked"]
        total = counties.setdefault((row["city"], row["county"]), {
            "city": row["city"], "county": row["county"], **dict.fromkeys((*COUNTS, "not_checked"), 0)})
        for key in (*COUNTS, "not_checked"):
            total[key] += row[key]
    summary["not_checked"] = summary["students"] - summary["checked"]
    summary["updated_at"] = time.strftime("%H:%M:%S")
    return {**summary, "schools": schools, "counties": sorted(counties.values(), key=lambda c: (c["city"],
                                                                                                c["county"]))}


@page("/authority/live", roles=(*AUTHORITIES, "auditor"), nav="live", section="authority")
def live(ctx: Ctx) -> Response:
    month = str(ctx.request.args.get("month") or this_month())
    return ctx.render("live.html", month=month, summary=_live(ctx, month), scope=_scope(ctx))


@page("/authority/live.json", roles=(*AUTHORITIES, "auditor"))
def live_json(ctx: Ctx) -> Response:
    month = str(ctx.request.args.get("month") or this_month())
    return json_response(_live(ctx, month))


@page("/authority/summary", roles=(*AUTHORITIES, "auditor"), nav="summary", section="authority")
def summary(ctx: Ctx) -> Response:
    month = str(ctx.request.args.get("month") or this_month())
    school_id = str(ctx.request.args.get("school_id") or "")
    if school_id:
        return ctx.redirect(f"/schools/{school_id}/months/{month}")
    return ctx.render("summary.html", month=month, summary=_summary(ctx, month), scope=_scope(ctx))


@page("/authority/appeals", roles=AUTHORITIES, methods=("GET", "POST"), nav="appeals", section="authority")
def appeals_inbox(ctx: Ctx) -> Response:
    """The filings waiting for this authority's ruling, each student with the checks of the
    month; a ruling per student with its reason."""

    def run() -> Any:
        return ctx.api.post("appeals", f"/appeals/filings/{ctx.form('filing_id')}/rulings", {
            "student_id": ctx.form("student_id"), "decision": ctx.form("decision"),
            "reason": ctx.form("reason")})

    answer, error = _post_form(ctx, run)
    inbox = ctx.api.get("appeals", "/appeals/inbox")["filings"]
    return ctx.render("resolve.html", answer=answer, error=error, filings=inbox)
