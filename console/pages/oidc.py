"""People sign in at the province's OpenID Connect provider (authorization-code flow with PKCE):
``/signin/oidc`` sends the browser to the provider's login, ``/signin/callback`` exchanges the
code for the access token, which is verified like any service verifies it (issuer, audience,
keys: backbone.auth) and must carry a person's role and area claims.

Configuration: ``AID_CONSOLE_OIDC_CLIENT_ID`` (the console's client at the provider; unset: no
OIDC sign-in), ``AID_CONSOLE_OIDC_CLIENT_SECRET`` (for a confidential client), and
``AID_CONSOLE_PUBLIC_URL`` (the console's address as browsers reach it, for the redirect URI).
The provider's endpoints come from ``<AID_AUTH_ISSUER>/.well-known/openid-configuration``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
import time
import urllib.parse
from typing import Any

from werkzeug.wrappers import Response

from console import web
from console.web import HOME, Ctx, Upstream, http_form, issuer_url, page, set_session_cookie

PERSON_ROLES = ("school", "county", "city", "province", "auditor", "operations")
PENDING_SECONDS = 600
_pending: dict[str, tuple[str, float]] = {}  # state -> (PKCE verifier, started)
_lock = threading.Lock()


def client_id() -> str | None:
    return os.environ.get("AID_CONSOLE_OIDC_CLIENT_ID") or None


def redirect_uri() -> str:
    return os.environ.get("AID_CONSOLE_PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/") + "/signin/callback"


def discovery() -> dict[str, Any]:
    status, body = web.http_call("GET", f"{issuer_url()}/.well-known/openid-configuration")
    if status != 200 or not isinstance(body, dict) or "authorization_endpoint" not in body:
        raise Upstream(503, "UNAVAILABLE", "the identity provider's discovery document cannot be read")
    return body


def verify(token: str) -> dict[str, Any]:
    """The access token's person claims, verified as the services verify them."""
    import jwt

    from backbone import config
    from backbone.auth import TokenVerifier

    principal = TokenVerifier(config.auth_settings()).verify(token)
    if principal.role not in PERSON_ROLES:
        raise ValueError("not a person's token")
    claims = {k: getattr(principal, k) for k in ("role", "school", "city", "county")}
    claims["sub"] = principal.subject
    claims["exp"] = jwt.decode(token, options={"verify_signature": False}).get("exp")
    return claims


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


@page("/signin/oidc", roles=())
def start(ctx: Ctx) -> Response:
    client = client_id()
    if client is None:
        return ctx.render("error.html", 404, message=ctx.t("signin_prod"))
    state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    with _lock:
        now = time.time()
        for old in [s for s, (_, t) in _pending.items() if now - t > PENDING_SECONDS]:
            del _pending[old]
        _pending[state] = (verifier, now)
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client, "redirect_uri": redirect_uri(), "scope": "openid",
        "state": state, "code_challenge": _challenge(verifier), "code_challenge_method": "S256"})
    return ctx.redirect(f"{discovery()['authorization_endpoint']}?{query}")


@page("/signin/callback", roles=())
def callback(ctx: Ctx) -> Response:
    args = ctx.request.args
    with _lock:
        pending = _pending.pop(str(args.get("state", "")), None)
    client = client_id()
    expired = pending is None or time.time() - pending[1] > PENDING_SECONDS
    if pending is None or expired or client is None or not args.get("code"):
        return ctx.render("error.html", 400, message=ctx.t("error"))
    fields = {"grant_type": "authorization_code", "code": str(args["code"]), "redirect_uri": redirect_uri(),
              "client_id": client, "code_verifier": pending[0]}
    secret = os.environ.get("AID_CONSOLE_OIDC_CLIENT_SECRET")
    if secret:
        fields["client_secret"] = secret
    status, body = http_form(str(discovery()["token_endpoint"]), fields)
    token = body.get("access_token") if status == 200 and isinstance(body, dict) else None
    try:
        claims = verify(str(token)) if token else None
    except Exception:  # noqa: BLE001 - any refusal of the token: no session
        claims = None
    if claims is None:
        return ctx.render("error.html", 401, message=ctx.t("error"))
    expires = float(claims.pop("exp") or time.time() + 3600)
    session = ctx.app.sessions.create(claims, str(token), expires)
    return set_session_cookie(ctx.redirect(HOME[claims["role"]]), session, ctx.app.secure_cookie)
