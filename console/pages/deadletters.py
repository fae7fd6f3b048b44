"""Operations and the province: dead letters with their reasons, and a replay button."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from console import deadletters
from console.pages.school import _post_form
from console.web import Ctx, Upstream, page


@page("/deadletters", roles=("operations", "province"), methods=("GET", "POST"), nav="deadletters",
      section="operations")
def dead_letters(ctx: Ctx) -> Response:
    url = deadletters.broker_url()
    if url is None:
        return ctx.render("deadletters.html", configured=False, letters=[], answer=None, error=None)

    def run() -> Any:
        try:
            moved = deadletters.replay(url, ctx.form("service"), ctx.form("message_id") or None)
        except ValueError as exc:
            raise Upstream(422, "INVALID_REQUEST", str(exc)) from None
        return {"replayed": moved}

    answer, error = _post_form(ctx, run)
    try:
        letters = deadletters.listed(url)
    except OSError:
        letters, error = [], ctx.t("broker_unavailable")
    return ctx.render("deadletters.html", configured=True, letters=letters, answer=answer, error=error)
