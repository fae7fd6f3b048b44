"""A single appeal filing (a school's month): its students with their objections and outcomes,
the authority's ruling reasons, the letter (PDF) and whether the signed scan is attached (and,
once it is, the scan itself: for the school, the same-level authority and the auditor); the
school attaches the scan here. The school opens its own filings, an authority or auditor the
filings of schools in its area (the appeals service checks the area again). A filing id names a
school and a month, never a student."""

from __future__ import annotations

import base64
import re

from werkzeug.wrappers import Response

from console.pages.school import PHOTO_LIMIT, READERS
from console.web import Ctx, Upstream, download, file_base64, page

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@page("/schools/<school_id>/appeals/filings/<filing_id>", roles=READERS, methods=("GET", "POST"))
def filing_detail(ctx: Ctx, school_id: str, filing_id: str) -> Response:
    answer, error = None, None
    if ctx.request.method == "POST":
        if ctx.session is None or ctx.session.role != "school":
            raise Upstream(403, "ROLE_FORBIDDEN", "only the school attaches the signed letter")
        try:
            answer = ctx.api.post("appeals", f"/appeals/filings/{filing_id}/signed",
                                  {"scan": file_base64(ctx.request.files.get("scan"), PHOTO_LIMIT)})
        except Upstream as exc:
            error = ctx.error_text(exc)
    filing = ctx.api.get("appeals", f"/appeals/filings/{filing_id}")
    if filing.get("school_id") != school_id:  # the path names the filing's school
        raise Upstream(404, "UNKNOWN_FILING", filing_id)
    return ctx.render("appeal_filing.html", school_id=school_id, filing=filing, answer=answer, error=error)


@page("/schools/<school_id>/appeals/filing", roles=READERS)
def filing_of_month(ctx: Ctx, school_id: str) -> Response:
    """The filing of a school's month (``?month=YYYY-MM``): one per school and month."""
    month = str(ctx.request.args.get("month") or "")
    if not _MONTH.match(month):
        raise Upstream(422, "INVALID_REQUEST", "month is YYYY-MM")
    return ctx.redirect(f"/schools/{school_id}/appeals/filings/{school_id}-{month}")


@page("/schools/<school_id>/appeals/filings/<filing_id>/signed", roles=READERS)
def signed_scan(ctx: Ctx, school_id: str, filing_id: str) -> Response:
    """The signed scan as attached: shown in the browser (JPEG, PNG), else saved as a file."""
    answer = ctx.api.get("appeals", f"/appeals/filings/{filing_id}/signed")
    content, kind = base64.b64decode(answer["content_base64"]), str(answer["content_type"])
    if kind not in ("image/jpeg", "image/png"):
        return download(content, str(answer["filename"]), "application/octet-stream")
    return Response(content, content_type=kind)
