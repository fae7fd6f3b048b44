"""The console's small web layer: sessions, the services' API, pages and their rendering.

- **Sessions** live in this process's memory, named by a random id in an HttpOnly,
  SameSite=Strict cookie; they hold the user's access token (and a terminal's client secret, to
  renew its short-lived token), never shown to the browser. Every POST carries the session's
  CSRF token (a form field, or the ``X-CSRF-Token`` header of the kiosk's requests).
- **The services** are called over HTTP with the session's bearer token (:class:`Api`); a
  refusal is shown with its code, never turned into more access.
- **Pages** register with :func:`page` (path, roles, optional nav entry); a school user opening
  a page of another school (``/schools/<school_id>/...``) gets 403 before any call is made.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from console.i18n import LANGS, translate

log = logging.getLogger("aid.console")
HERE = Path(__file__).resolve().parent
COOKIE = "aid_console"
SESSION_SECONDS = 8 * 3600
MAX_FORM_BYTES = 12 * 1024 * 1024
#: the services and their default local addresses (AID_CONSOLE_<NAME>_URL overrides)
SERVICES = {"enrolment": 8001, "spotcheck": 8002, "facematch": 8003, "eligibility": 8004, "appeals": 8005,
            "hardship": 8006}
HOME = {"terminal": "/kiosk", "school": "/school", "county": "/authority", "city": "/authority",
        "province": "/authority", "auditor": "/audit", "operations": "/operations"}
# Chinese messages for the refusals a person meets most; others show the service's message
ERRORS_ZH = {
    "OUTSIDE_AREA": "超出本账号的管辖范围。",
    "ROLE_FORBIDDEN": "本角色不能执行此操作。",
    "UNKNOWN_STUDENT": "没有该学号的登记学生。",
    "UNKNOWN_SCHOOL": "没有该学校。",
    "UNKNOWN_CHECK": "没有该抽查。",
    "CAPTURE_OUTSIDE_WINDOW": "不在抽查时间内（抽查未开始或已结束）。",
    "NOT_ENROLLED": "该学生尚未完成人脸采集，请先新增采集。",
    "NOT_IN_SCOPE": "该学生不在本次抽查范围内。",
    "TERMINAL_REVOKED": "本终端的凭证已被吊销。",
    "TOKEN_EXPIRED": "登录已过期，请重新登录。",
    "INVALID_REQUEST": "填写的内容有误。",
    "BAD_WINDOW": "抽查时间须在同一天 10:00-15:00 之间，最长 5 小时。",
    "ALREADY_PUBLISHED": "本月结果已经公示。",
    "UNAVAILABLE": "服务暂时不可用，请稍后重试。",
}


class Upstream(Exception):
    """A service refused (4xx/5xx) or could not be reached."""

    def __init__(self, status: int, code: str, message: str, fields: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []


# ----------------------------------------------------------------------------- sessions


@dataclass
class Session:
    sid: str
    claims: dict[str, Any]
    token: str
    token_expires: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    client_secret: str | None = None  # a terminal's, to renew its 15-minute token
    expires: float = field(default_factory=lambda: time.time() + SESSION_SECONDS)

    @property
    def role(self) -> str:
        return str(self.claims["role"])

    def get(self, claim: str) -> str | None:
        value = self.claims.get(claim)
        return str(value) if value is not None else None


class Sessions:
    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, claims: dict[str, Any], token: str, token_expires: float,
               client_secret: str | None = None) -> Session:
        session = Session(secrets.token_urlsafe(32), claims, token, token_expires,
                          client_secret=client_secret)
        with self._lock:
            now = time.time()
            for sid in [s for s, v in self._by_id.items() if v.expires < now]:
                del self._by_id[sid]
            self._by_id[session.sid] = session
        return session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            session = self._by_id.get(sid)
        if session is None or session.expires < time.time():
            return None
        return session

    def drop(self, sid: str) -> None:
        with self._lock:
            self._by_id.pop(sid, None)


# ----------------------------------------------------------------------------- the services' API


def service_url(name: str) -> str:
    return os.environ.get(f"AID_CONSOLE_{name.upper()}_URL", f"http://127.0.0.1:{SERVICES[name]}").rstrip("/")


def issuer_url() -> str:
    from backbone import config

    return config.auth_settings().issuer


def token_url() -> str:
    """Where a terminal exchanges its client credentials (``AID_AUTH_TOKEN_URL``; default the
    embedded issuer's ``/token``)."""
    return os.environ.get("AID_AUTH_TOKEN_URL") or f"{issuer_url()}/token"


def http_call(method: str, url: str, body: Any = None, token: str | None = None,
              timeout: float = 20) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw or b"null")
        except ValueError:
            return exc.code, {"error": "UPSTREAM", "message": f"HTTP {exc.code}"}
    except (OSError, ValueError) as exc:
        log.warning("service call failed: %s %s (%s)", method, url.split("?")[0], type(exc).__name__)
        return 503, {"error": "UNAVAILABLE", "message": "the service cannot be reached"}


def http_form(url: str, fields: dict[str, str], timeout: float = 10) -> tuple[int, Any]:
    """POST an OAuth form (application/x-www-form-urlencoded), answer as JSON."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, {"error": "upstream"}
    except (OSError, ValueError) as exc:
        log.warning("token endpoint unreachable (%s)", type(exc).__name__)
        return 503, {"error": "unavailable"}


def renew_terminal_token(session: Session) -> None:
    """A terminal's token lasts 15 minutes: ask the issuer for a new one with its secret (a
    revoked terminal gets none: TERMINAL_REVOKED)."""
    status, body = http_call("POST", token_url(), {
        "grant_type": "client_credentials", "client_id": session.get("terminal"),
        "client_secret": session.client_secret})
    if status != 200:
        raise Upstream(401, "TERMINAL_REVOKED", str((body or {}).get("error_description", "no token")))
    session.token = str(body["access_token"])
    session.token_expires = time.time() + int(body.get("expires_in", 900))


class Api:
    """The services, called as the session's user."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def call(self, method: str, service: str, path: str, body: Any = None,
             query: dict[str, Any] | None = None, timeout: float = 20) -> Any:
        session = self.session
        if session.token_expires - time.time() < 60:
            if session.client_secret is None:
                raise Upstream(401, "TOKEN_EXPIRED", "the session's token has expired")
            renew_terminal_token(session)
        params = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        url = service_url(service) + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        status, answer = http_call(method, url, body, session.token, timeout)
        if status >= 400:
            answer = answer if isinstance(answer, dict) else {}
            raise Upstream(status, str(answer.get("error", "UPSTREAM")), str(answer.get("message", "")),
                           answer.get("fields"))
        return answer

    def get(self, service: str, path: str, **query: Any) -> Any:
        return self.call("GET", service, path, query=query)

    def post(self, service: str, path: str, body: Any = None) -> Any:
        return self.call("POST", service, path, body=body if body is not None else {})


# ----------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class Page:
    rule: str
    endpoint: str
    roles: tuple[str, ...]
    methods: tuple[str, ...]
    fn: Callable[..., Response]
    nav: str | None  # i18n key of its nav entry, for pages without path parameters
    section: str | None


PAGES: list[Page] = []


def page(rule: str, *, roles: tuple[str, ...], methods: tuple[str, ...] = ("GET",), nav: str | None = None,
         section: str | None = None) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Register a page: ``fn(ctx, **path_values) -> Response``. ``roles`` may open it; a
    ``<school_id>`` in the path is checked against a school user's own school."""

    def wrap(fn: Callable[..., Response]) -> Callable[..., Response]:
        PAGES.append(Page(rule, f"{fn.__module__}.{fn.__name__}", roles, methods, fn, nav, section))
        return fn

    return wrap


class Ctx:
    """What a page gets: the request, the session, the API as the user, rendering."""

    def __init__(self, app: ConsoleApp, request: Request, session: Session | None, lang: str) -> None:
        self.app, self.request, self.session, self.lang = app, request, session, lang

    @property
    def api(self) -> Api:
        assert self.session is not None
        return Api(self.session)

    def t(self, key: str, **values: object) -> str:
        return translate(self.lang, key, **values)

    def form(self, name: str, default: str = "") -> str:
        return str(self.request.form.get(name, default)).strip()

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        return self.app.render(self, template, status, **values)

    def error_text(self, exc: Upstream) -> str:
        if self.lang == "zh" and exc.code in ERRORS_ZH:
            return f"{ERRORS_ZH[exc.code]}（{exc.code}）"
        fields = "; ".join(f"{f.get('path')}: {f.get('message')}" for f in exc.fields[:5])
        return f"{exc.code}: {exc.message}" + (f" ({fields})" if fields else "")

    def redirect(self, location: str) -> Response:
        return Response(status=303, headers={"Location": location})

    def school_id(self) -> str | None:
        return self.session.get("school") if self.session else None


def file_base64(upload: Any, limit: int) -> str:
    data = upload.read(limit + 1) if upload else b""
    if not data:
        raise Upstream(422, "INVALID_REQUEST", "choose a file")
    if len(data) > limit:
        raise Upstream(413, "BODY_TOO_LARGE", f"the file is limited to {limit // (1024 * 1024)} MiB")
    return base64.b64encode(data).decode()


SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data: blob:;"
                                " media-src 'self' blob: mediastream:; style-src 'self'; script-src 'self';"
                                " frame-ancestors 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(self)",
}


class ConsoleApp:
    def __init__(self) -> None:
        import console.pages  # noqa: F401 - the pages register themselves

        self.sessions = Sessions()
        self.secure_cookie = os.environ.get("AID_ENV") == "production"
        self.jinja = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                                        autoescape=True, undefined=jinja2.StrictUndefined)
        self.jinja.filters["tojson_compact"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)
        rules = [Rule(p.rule, endpoint=p.endpoint, methods=list(p.methods)) for p in PAGES]
        self.pages = {p.endpoint: p for p in PAGES}
        self.url_map = Map([*rules, Rule("/static/<path:name>", endpoint="static")], strict_slashes=False)

    # -------------------------------------------------------------------- rendering
    def nav(self, session: Session | None) -> list[tuple[str, str]]:
        if session is None:
            return []
        out = []
        for p in PAGES:
            if p.nav and session.role in p.roles:
                rule = p.rule.replace("<school_id>", session.get("school") or "")
                if "<" not in rule:
                    out.append((rule, p.nav))
        return out

    def render(self, ctx: Ctx, template: str, status: int = 200, **values: Any) -> Response:
        body = self.jinja.get_template(template).render(
            t=ctx.t, lang=ctx.lang, session=ctx.session, nav=self.nav(ctx.session),
            csrf=ctx.session.csrf if ctx.session else "", path=ctx.request.path, **values)
        return Response(body, status=status, content_type="text/html; charset=utf-8")

    # -------------------------------------------------------------------- WSGI
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        request.max_content_length = MAX_FORM_BYTES
        request.max_form_memory_size = MAX_FORM_BYTES
        response = self.dispatch(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        lang = request.cookies.get("lang", "zh")
        lang = lang if lang in LANGS else "zh"
        session = self.sessions.get(request.cookies.get(COOKIE))
        ctx = Ctx(self, request, session, lang)
        try:
            endpoint, values = self.url_map.bind_to_environ(request.environ).match()
            if endpoint == "static":
                return self.static(values["name"])
            p = self.pages[endpoint]
            if p.roles and session is None:
                if request.path.startswith("/kiosk/api/"):
                    return json_response({"screen": "signed_out"}, 401)
                return ctx.redirect("/kiosk/signin" if request.path.startswith("/kiosk") else "/signin")
            if p.roles and session is not None and not self.may_open(p, session, values):
                return ctx.render("error.html", 403, message=ctx.t("forbidden"))
            if request.method == "POST" and p.roles and not self.csrf_ok(request, session):
                return ctx.render("error.html", 403, message="CSRF")
            return p.fn(ctx, **values)
        except Upstream as exc:
            if request.path.startswith("/kiosk/api/"):
                return json_response({"error": exc.code, "message": ctx.error_text(exc)}, exc.status)
            return ctx.render("error.html", exc.status if exc.status in (401, 403, 404) else 400,
                              message=ctx.error_text(exc))
        except HTTPException as exc:
            return ctx.render("error.html", exc.code or 400, message=f"{exc.code} {exc.name}")
        except Exception:  # a bug: logged here, never shown (no traceback reaches the browser)
            log.exception("page %s failed", request.path.split("/")[1] if request.path else "?")
            return Response("500", status=500, content_type="text/plain; charset=utf-8")

    @staticmethod
    def may_open(p: Page, session: Session, values: Mapping[str, Any]) -> bool:
        """The page's role, and for a school user only its own school's pages."""
        if session.role not in p.roles:
            return False
        return session.role != "school" or values.get("school_id") in (None, session.get("school"))

    @staticmethod
    def csrf_ok(request: Request, session: Session | None) -> bool:
        if session is None:
            return False
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf", "")
        return secrets.compare_digest(str(sent), session.csrf)

    @staticmethod
    def static(name: str) -> Response:
        path = (HERE / "static" / name).resolve()
        if not path.is_file() or (HERE / "static") not in path.parents:
            raise NotFound()
        kinds = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        kind = kinds.get(path.suffix, "application/octet-stream")
        response = Response(path.read_bytes(), content_type=kind)
        response.headers["Cache-Control"] = "max-age=300"
        return response


def download(content: bytes, filename: str, content_type: str) -> Response:
    """A file to save: the name in ASCII and, for Chinese names, in RFC 5987 form (a header is
    Latin-1: a raw Chinese name would break the response)."""
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in filename)
    quoted = urllib.parse.quote(filename, safe="")
    return Response(content, content_type=content_type, headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name or 'file'}\"; filename*=UTF-8''{quoted}"})


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    content_type="application/json; charset=utf-8")


def set_session_cookie(response: Response, session: Session, secure: bool) -> Response:
    response.set_cookie(COOKIE, session.sid, max_age=SESSION_SECONDS, httponly=True, samesite="Strict",
                        secure=secure, path="/")
    return response
