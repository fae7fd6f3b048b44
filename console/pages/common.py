"""Sign-in, sign-out, the language switch and the home redirect."""

from __future__ import annotations

import os
import time
import urllib.parse

from werkzeug.wrappers import Response

from console.web import HOME, Ctx, http_call, page, set_session_cookie, token_url

PERSON_ROLES = ("school", "county", "city", "province", "auditor", "operations")
PERSON_TOKEN_SECONDS = 8 * 3600


@page("/", roles=())
def home(ctx: Ctx) -> Response:
    if ctx.session is None:
        return ctx.redirect("/signin")
    return ctx.redirect(HOME.get(ctx.session.role, "/signin"))


def _dev_issuer_key() -> tuple[object, str, str] | None:
    """The embedded issuer's key, issuer and audience; None in production or without the key."""
    from backbone import config
    from backbone.issuer import load_or_create_key

    if os.environ.get("AID_ENV") == "production":
        return None
    path = config.auth_key_file()
    if not path.exists():
        return None
    settings = config.auth_settings()
    return load_or_create_key(path), settings.issuer, settings.audience


@page("/signin", roles=(), methods=("GET", "POST"))
def signin(ctx: Ctx) -> Response:
    """Development sign-in: the embedded issuer's key signs a token for the chosen role and area
    (a province deployment signs people in at its OIDC provider instead)."""
    from backbone.issuer import mint, person_claims
    from console.pages.oidc import client_id

    dev = _dev_issuer_key()
    oidc = client_id() is not None
    if ctx.request.method == "GET" or dev is None:
        return ctx.render("signin.html", 200 if dev or oidc else 503, dev=dev is not None, oidc=oidc,
                          roles=PERSON_ROLES, error=None)
    role = ctx.form("role")
    area = {k: ctx.form(k) or None for k in ("school", "city", "county")}
    user = ctx.form("user")[:40] or None
    try:
        if role not in PERSON_ROLES:
            raise ValueError(role)
        claims = person_claims(role, f"{role}:{user}" if user else None, **area)
        key, issuer, audience = dev
        token = mint(key, issuer, audience, claims, PERSON_TOKEN_SECONDS)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a missing area claim, an unknown role: ask again
        return ctx.render("signin.html", 422, dev=True, oidc=oidc, roles=PERSON_ROLES, error=ctx.t("error"))
    session = ctx.app.sessions.create(claims, token, time.time() + PERSON_TOKEN_SECONDS)
    return set_session_cookie(ctx.redirect(HOME[role]), session, ctx.app.secure_cookie)


@page("/kiosk/signin", roles=(), methods=("GET", "POST"))
def kiosk_signin(ctx: Ctx) -> Response:
    """A terminal signs in with the client id and secret operations gave it (the issuer's
    client-credentials grant); the console renews its token with them."""
    if ctx.request.method == "GET":
        return ctx.render("kiosk_signin.html", error=None)
    terminal_id, secret = ctx.form("terminal_id")[:64], ctx.form("secret")[:128]
    status, body = http_call("POST", token_url(), {
        "grant_type": "client_credentials", "client_id": terminal_id, "client_secret": secret})
    if status != 200:
        return ctx.render("kiosk_signin.html", 401, error=ctx.t("screen_revoked")
                          if "revoked" in str(body.get("error_description", "")) else ctx.t("error"))
    import jwt

    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    expires = time.time() + int(body.get("expires_in", 900))
    session = ctx.app.sessions.create({k: claims.get(k) for k in ("sub", "role", "school", "terminal")},
                                      str(body["access_token"]), expires, client_secret=secret)
    return set_session_cookie(ctx.redirect("/kiosk"), session, ctx.app.secure_cookie)


@page("/signout", roles=(), methods=("POST",))
def signout(ctx: Ctx) -> Response:
    if ctx.session is not None and ctx.app.csrf_ok(ctx.request, ctx.session):
        ctx.app.sessions.drop(ctx.session.sid)
    response = ctx.redirect("/signin")
    response.delete_cookie("aid_console", path="/")
    return response


@page("/lang/<code>", roles=())
def language(ctx: Ctx, code: str) -> Response:
    target = ctx.request.args.get("next", "/")
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        target = "/"
    response = ctx.redirect(target)
    response.set_cookie("lang", "en" if code == "en" else "zh", max_age=365 * 86400, samesite="Strict",
                        httponly=True, path="/")
    return response
