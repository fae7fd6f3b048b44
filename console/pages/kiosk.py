"""The capture terminal (a browser in kiosk mode): check-in with a live burst, new capture with
the ID-card photo, the forced pass after three failures, and a clear screen when no check is
open or the terminal's credential is revoked. The page's script (static/kiosk.js) talks only to
these JSON endpoints; they call spotcheck and enrolment with the terminal's token."""

from __future__ import annotations

import os
import time
from typing import Any

from werkzeug.wrappers import Response

from console.web import Ctx, Upstream, json_response, page

#: ``off`` for terminals that facematch takes without a server-issued liveness challenge
#: (AID_FACE_UNCHALLENGED lists their channel): the burst then shows the generic prompts
CHALLENGES = os.environ.get("AID_CONSOLE_CHALLENGES", "on") != "off"

MAX_FRAMES = 10
#: times a verdict's long-poll is asked again when spotcheck answers 503 TOO_MANY_WAITING (1 s apart)
WAIT_RETRIES = 3
SCRIPT_TEXTS = ("prompt_front", "prompt_left", "prompt_right", "prompt_blink", "waiting", "verified",
                "rejected", "submitted", "attempt", "forced_done", "camera_error", "screen_closed",
                "screen_revoked", "error", "done")


def _json(ctx: Ctx) -> dict[str, Any]:
    body = ctx.request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Upstream(400, "MALFORMED_JSON", "send a JSON object")
    return body


def _open_checks(ctx: Ctx) -> list[dict[str, Any]]:
    return list(ctx.api.get("spotcheck", "/checks", state="open")["checks"])


def _verdict(ctx: Ctx, capture_id: str) -> dict[str, Any]:
    """Wait (long-poll, at most 10 s) for face matching's verdict; reasons in both languages."""
    for attempt in range(WAIT_RETRIES + 1):
        try:
            answer = ctx.api.call("GET", "spotcheck", f"/captures/{capture_id}", query={"wait": 10},
                                  timeout=20)
            break
        except Upstream as exc:  # spotcheck has as many long-polls waiting as it takes: ask again shortly
            if exc.code != "TOO_MANY_WAITING" or attempt == WAIT_RETRIES:
                raise
            time.sleep(1.0)
    return {"capture_id": capture_id, "status": answer["status"], "attempt": answer["attempt"],
            "reasons": [{"code": r["code"], "zh": r["message_zh"], "en": r["message_en"]}
                        for r in answer["reasons"]]}


@page("/kiosk", roles=("terminal",))
def kiosk(ctx: Ctx) -> Response:
    try:
        checks = _open_checks(ctx)
    except Upstream as exc:
        if exc.status == 401:
            return _page(ctx, "revoked", [])
        raise
    return _page(ctx, "ready" if checks else "closed", checks)


def _page(ctx: Ctx, screen: str, checks: list[dict[str, Any]]) -> Response:
    return ctx.render("kiosk.html", screen=screen, checks=checks, texts={k: ctx.t(k) for k in SCRIPT_TEXTS})


@page("/kiosk/api/state", roles=("terminal",))
def state(ctx: Ctx) -> Response:
    """Polled by the page: which checks are open, or why the terminal must stop."""
    try:
        checks = _open_checks(ctx)
    except Upstream as exc:
        if exc.status == 401:
            return json_response({"screen": "revoked", "checks": []})
        raise
    return json_response({"screen": "ready" if checks else "closed",
                          "checks": [{"check_id": c["check_id"], "month": c["month"]} for c in checks]})


@page("/kiosk/api/challenge", roles=("terminal",), methods=("POST",))
def challenge(ctx: Ctx) -> Response:
    """The liveness action the next burst must show, drawn by the service (spotcheck for a
    check-in, enrolment for a new capture); none when challenges are off or the service does
    not issue them yet (it answers 404 without a JSON error)."""

    def run() -> dict[str, Any]:
        body = _json(ctx)
        none: dict[str, Any] = {"challenge_id": None, "action": None}
        if not CHALLENGES:
            return none
        student = {"student_id": str(body.get("student_id", ""))}
        try:
            if body.get("mode") == "enrol":
                answer = ctx.api.post("enrolment", "/enrolments/challenges", student)
            else:
                answer = ctx.api.post("spotcheck", f"/checks/{body.get('check_id', '')}/challenges", student)
        except Upstream as exc:
            if exc.status in (404, 405) and exc.code == "UPSTREAM":
                return none
            raise
        return {"challenge_id": answer["challenge_id"], "action": answer["action"]}

    return _guarded(ctx, run)


def _answer_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The challenge a burst answers and its frames' times, when there is one."""
    challenge_id, times = body.get("challenge_id"), body.get("frame_times_ms")
    if not isinstance(challenge_id, str) or not challenge_id:
        return {}
    if not isinstance(times, list) or not all(isinstance(t, int) for t in times):
        raise Upstream(422, "INVALID_REQUEST", "frame_times_ms: one integer per frame")
    return {"challenge_id": challenge_id, "frame_times_ms": times}


def _frames(body: dict[str, Any]) -> list[str]:
    frames = body.get("frames")
    if not isinstance(frames, list) or not 1 <= len(frames) <= MAX_FRAMES \
            or not all(isinstance(f, str) for f in frames):
        raise Upstream(422, "INVALID_REQUEST", f"send 1..{MAX_FRAMES} frames")
    return frames


def _screen_of(exc: Upstream) -> str | None:
    if exc.status == 401:
        return "revoked"
    if exc.code in ("CAPTURE_OUTSIDE_WINDOW", "UNKNOWN_CHECK"):
        return "closed"
    return None


def _guarded(ctx: Ctx, run: Any) -> Response:
    try:
        return json_response(run())
    except Upstream as exc:
        screen = _screen_of(exc)
        return json_response({"error": exc.code, "message": ctx.error_text(exc), "screen": screen},
                             exc.status)


@page("/kiosk/api/checkin", roles=("terminal",), methods=("POST",))
def checkin(ctx: Ctx) -> Response:
    def run() -> dict[str, Any]:
        body = _json(ctx)
        check_id, student_id = str(body.get("check_id", "")), str(body.get("student_id", ""))
        attempt = body.get("attempt", 1)
        attempt = attempt if isinstance(attempt, int) and 1 <= attempt <= 10 else 1
        accepted = ctx.api.call("POST", "spotcheck", f"/checks/{check_id}/captures", {
            "student_id": student_id, "frames": _frames(body), "attempt": attempt, **_answer_fields(body)},
            timeout=30)
        return _verdict(ctx, str(accepted["capture_id"]))

    return _guarded(ctx, run)


@page("/kiosk/api/enrol", roles=("terminal",), methods=("POST",))
def enrol(ctx: Ctx) -> Response:
    def run() -> dict[str, Any]:
        body = _json(ctx)
        id_photo = body.get("id_photo")
        if not isinstance(id_photo, str) or not id_photo:
            raise Upstream(422, "INVALID_REQUEST", "the ID-card photo is missing")
        submitted = ctx.api.call("POST", "enrolment", "/enrolments", {
            "student_id": str(body.get("student_id", "")), "frames": _frames(body), "id_photo": id_photo,
            **_answer_fields(body)}, timeout=30)
        return _verdict(ctx, str(submitted["capture_id"]))

    return _guarded(ctx, run)


@page("/kiosk/api/forced-pass", roles=("terminal",), methods=("POST",))
def forced_pass(ctx: Ctx) -> Response:
    def run() -> dict[str, Any]:
        body = _json(ctx)
        check_id = str(body.get("check_id", ""))
        answer = ctx.api.call("POST", "spotcheck", f"/checks/{check_id}/forced-passes", {
            "student_id": str(body.get("student_id", "")),
            "evidence_photo": str(body.get("evidence_photo", ""))})
        return {"forced_pass": bool(answer["forced_pass"]), "attempts": answer["attempts"]}

    return _guarded(ctx, run)


@page("/kiosk/placement", roles=("terminal",), methods=("GET", "POST"))
def placement(ctx: Ctx) -> Response:
    """The placement internship (顶岗实习) confirmed at the terminal before the student leaves:
    every field of Attachment 2 the registration does not hold."""
    from console.pages.school import _post_form

    def run() -> Any:
        fields = ("student_id", "company", "location", "supervisor", "supervisor_contact", "starts_on",
                  "ends_on")
        body = {k: ctx.form(k) for k in fields}
        if ctx.form("remark"):
            body["remark"] = ctx.form("remark")
        return ctx.api.post("spotcheck", "/placements", body)

    answer, error = _post_form(ctx, run)
    return ctx.render("kiosk_placement.html", answer=answer, error=error)
