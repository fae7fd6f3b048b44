"""The HTTP edge of every service, one way for all routes.

A route is declared once, with everything the edge needs::

    @route("POST", "/checks", roles=AUTHORITIES, body=OpenCheck, returns=CheckOpenedAnswer, status=201)
    def open_check(self, call: Call) -> Answer:
        ...

and the edge, before any domain code runs:

1. authenticates the bearer token (:mod:`backbone.auth`; 401 without a valid one) and, for a
   terminal, checks that it is still registered (``TerminalRevoked`` in the log: 401);
2. refuses a role the route does not allow (403 ``ROLE_FORBIDDEN``); areas (which school,
   county, city) are checked by the handler with :meth:`Call.require_school` and friends;
3. parses path, query and body into the typed models (:mod:`backbone.fields`); a bad request
   is 400/413/415/422 with a code and each field's path, never a 500 and never the raw value;
4. replays the first answer to a retry that carries the same ``Idempotency-Key``;
5. after the answer, records every read of a student's personal data the handler declared
   (:meth:`Call.read_personal`).

The same declarations generate each service's OpenAPI 3.1 document (``GET /openapi.json``)
and the route x role table in the docs (``python -m backbone.openapi``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from nameko.web.handlers import http
from pydantic import BaseModel, ValidationError

from backbone import config, observability
from backbone.auth import AuthError, Principal, RevocationCache, TokenVerifier
from backbone.errors import DomainError, Forbidden, NotFound
from backbone.eventstore import ConcurrencyError, IdempotencyConflict
from backbone.fields import ID_PATTERN, Error, FieldError
from contracts.calendar import parse_month
from contracts.registry import ContractError
from contracts.students import (
    SchoolView,
    StudentView,
    school_stream,
    school_view,
    student_stream,
    student_view,
)
from contracts.terminals import terminal_active, terminal_stream

log = logging.getLogger("aid.http")

Answer = tuple[int, BaseModel | dict[str, Any] | list[Any]]
Response = tuple[int, dict[str, str], str]
JSON_TYPE = "application/json; charset=utf-8"
DEFAULT_MAX_BODY = 64 * 1024
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_PATH_ID = re.compile(ID_PATTERN)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    name: str
    summary: str
    roles: frozenset[str]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    returns: type[BaseModel] | None
    status: int
    idempotent: bool
    max_body: int
    personal: bool
    public: bool

    @property
    def openapi_path(self) -> str:
        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", self.path)

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"<(?:\w+:)?(\w+)>", self.path)


class Refusal(Exception):
    """An answer decided by the edge itself (auth, parsing, limits)."""

    def __init__(self, status: int, code: str, message: str, fields: list[FieldError] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields
        self.headers = headers or {}


@dataclass
class Call:
    """One authenticated, parsed request as a handler sees it."""

    caller: Principal
    route: Route
    body: Any = None
    query: Any = None
    path: dict[str, str] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    def actor(self) -> Any:
        return self.caller.actor()

    def read_personal(self, student_id: str) -> None:
        """Declare that the answer shows ``student_id``'s personal data (recorded for audit)."""
        self.reads.append(student_id)

    def require_school(self, school_id: str, *, city: str | None = None, county: str | None = None) -> None:
        """Refuse (403 ``OUTSIDE_AREA``) unless the caller may act for ``school_id``: its own
        school for staff and terminals, the school's city/county for authorities, anyone for
        the province, operations and auditors (whose routes are limited by role)."""
        c = self.caller
        if c.role in ("school", "terminal"):
            allowed = c.school == school_id
        elif c.role in ("county", "city"):
            allowed = city is not None and county is not None and c.covers_area(city, county)
        elif c.role == "student":
            allowed = False
        else:
            allowed = True
        if not allowed:
            raise Forbidden("OUTSIDE_AREA", f"this {c.role} credential does not cover school {school_id}")

    def require_student(self, student_id: str, school_id: str, city: str, county: str) -> None:
        """:meth:`require_school`, and an app token acts only for its own student."""
        if self.caller.role == "student":
            if self.caller.student != student_id:
                raise Forbidden("OUTSIDE_AREA", "an app token acts only for its own student")
            return
        self.require_school(school_id, city=city, county=county)


# ----------------------------------------------------------------------------- identity


_verifier: TokenVerifier | None = None
_revocations = RevocationCache()


def verifier() -> TokenVerifier:
    global _verifier
    if _verifier is None:
        _verifier = TokenVerifier(config.auth_settings())
    return _verifier


def authenticate(request: Any) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise AuthError("UNAUTHENTICATED", "send a bearer token: Authorization: Bearer <token>")
    if scheme.lower() != "bearer":
        raise AuthError("UNAUTHENTICATED", "the Authorization header takes a Bearer token")
    return verifier().verify(token.strip())


def _check_terminal(service: Any, principal: Principal) -> None:
    terminal = str(principal.terminal)
    active = _revocations.get(terminal)
    if active is None:
        events = service.store.read_stream(terminal_stream(terminal))
        active = terminal_active(events, principal.school)
        _revocations.put(terminal, active)
    if not active:
        raise AuthError("TERMINAL_REVOKED", "this terminal is not registered to the school, or was revoked")


# ----------------------------------------------------------------------------- parsing


def _field_errors(exc: ValidationError, where: str) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        path = ".".join([where, *(str(p) for p in err["loc"])])
        out.append(FieldError(path=path, code=str(err["type"]), message=str(err["msg"])[:200]))
    return out


def _parse(model: type[BaseModel], data: Any, where: str, *, json_text: bytes | None = None) -> Any:
    try:
        if json_text is not None:
            return model.model_validate_json(json_text, strict=True)
        return model.model_validate(data, strict=False)
    except ValidationError as exc:
        errors = _field_errors(exc, where)
        if any(e.code == "json_invalid" for e in errors):
            raise Refusal(400, "MALFORMED_JSON", "the request body is not valid JSON") from None
        raise Refusal(422, "INVALID_REQUEST", f"{len(errors)} field(s) are invalid", errors) from None


def _read_body(request: Any, route: Route) -> bytes:
    length = request.content_length
    if length is not None and length > route.max_body:
        raise Refusal(413, "BODY_TOO_LARGE", f"the request body is limited to {route.max_body} bytes")
    content_type = (request.mimetype or "").lower()
    if content_type and content_type != "application/json":
        raise Refusal(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json")
    raw = _body_stream(request).read(route.max_body + 1)  # read one byte past the limit to see a body over it
    if len(raw) > route.max_body:
        raise Refusal(413, "BODY_TOO_LARGE", f"the request body is limited to {route.max_body} bytes")
    if not raw.strip():
        raise Refusal(400, "MISSING_BODY", "this route takes a JSON object body")
    return bytes(raw)


def _is_month(value: str) -> bool:
    try:
        parse_month(value)
    except ValueError:
        return False
    return True


def _body_stream(request: Any) -> Any:
    if request.content_length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        # werkzeug reads a body without Content-Length only when the server says it ends the
        # input (wsgi.input_terminated); eventlet de-chunks but does not say so
        return request.environ["wsgi.input"]
    return request.stream


def _drain(request: Any, route: Route) -> None:
    """Read what is left of a refused request's body (within the route's limit), so that the
    client, still sending, reads the answer instead of a reset connection."""
    length = request.content_length
    if length is not None and length > route.max_body:
        return
    try:
        stream, left = _body_stream(request), route.max_body + 1
        while left > 0:
            chunk = stream.read(min(65536, left))
            if not chunk:
                return
            left -= len(chunk)
    except (OSError, ValueError):
        return


def parse_call(service: Any, route: Route, request: Any, path_values: dict[str, str]) -> tuple[Call, bytes]:
    caller = authenticate(request)
    if caller.role not in route.roles:
        raise Refusal(403, "ROLE_FORBIDDEN", f"the role {caller.role!r} may not {route.summary.lower()}")
    if caller.role == "terminal":
        _check_terminal(service, caller)
    bad = [FieldError(path=f"path.{k}", code="string_pattern_mismatch", message=f"{k} is an identifier")
           for k, v in path_values.items() if k != "month" and not _PATH_ID.match(v)]
    bad += [FieldError(path="path.month", code="month", message="month is YYYY-MM")
            for k, v in path_values.items() if k == "month" and not _is_month(v)]
    if bad:
        raise Refusal(422, "INVALID_REQUEST", "the path names an invalid identifier", bad)
    call = Call(caller=caller, route=route, path=dict(path_values))
    raw = b""
    if route.query is not None:
        repeated = [k for k in request.args if len(request.args.getlist(k)) > 1]
        if repeated:  # which one would count? refuse rather than guess (parameter pollution)
            raise Refusal(422, "INVALID_REQUEST", "a query parameter is given more than once",
                          [FieldError(path=f"query.{k}", code="repeated", message="given more than once")
                           for k in repeated[:10]])
        args = {k: request.args.get(k) for k in request.args}
        call.query = _parse(route.query, args, "query")
    elif request.args:
        raise Refusal(422, "INVALID_REQUEST", "this route takes no query parameters",
                      [FieldError(path=f"query.{k}", code="extra_forbidden", message="unknown parameter")
                       for k in list(request.args)[:10]])
    if route.body is not None:
        raw = _read_body(request, route)
        call.body = _parse(route.body, None, "body", json_text=raw)
    return call, raw


# ----------------------------------------------------------------------------- answers


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, BaseModel):
        text = body.model_dump_json(exclude_none=False)
    else:
        text = json.dumps(body, ensure_ascii=False, default=str)
    return status, {"Content-Type": JSON_TYPE, "Cache-Control": "no-store", **(headers or {})}, text


def _error(status: int, code: str, message: str, fields: list[FieldError] | None = None,
           headers: dict[str, str] | None = None) -> Response:
    return _json(status, Error(error=code, message=message, fields=fields), headers)


def _run_idempotent(service: Any, call: Call, raw: bytes, run: Callable[[], Answer], key: str) -> Response:
    if not IDEMPOTENCY_KEY.match(key):
        raise Refusal(422, "INVALID_REQUEST", "Idempotency-Key is 1-128 letters, digits or _.:-",
                      [FieldError(path="header.Idempotency-Key", code="pattern", message="invalid key")])
    digest = hashlib.sha256(json.dumps([call.route.name, call.path]).encode() + b"\0" + raw).hexdigest()
    pool = service.store.pool
    with pool.connection() as conn:
        row = conn.execute(
            "INSERT INTO idempotency_keys (caller, key, route, request_hash, status, body)"
            " VALUES (%s, %s, %s, %s, 0, 'null') ON CONFLICT DO NOTHING RETURNING 1",
            (call.caller.subject, key, call.route.name, digest)).fetchone()
        if row is None:
            found = conn.execute("SELECT route, request_hash, status, body FROM idempotency_keys"
                                 " WHERE caller = %s AND key = %s", (call.caller.subject, key)).fetchone()
            if found is None or found[0] != call.route.name or found[1] != digest:
                raise Refusal(422, "IDEMPOTENCY_KEY_REUSED",
                              "this Idempotency-Key was used for a different request")
            if found[2] == 0:
                raise Refusal(409, "IDEMPOTENCY_IN_PROGRESS",
                              "the first request with this key is still running")
            return _json(int(found[2]), found[3], {"Idempotent-Replayed": "true"})
    try:
        status, body = run()
    except BaseException:
        with pool.connection() as conn:
            conn.execute("DELETE FROM idempotency_keys WHERE caller = %s AND key = %s AND status = 0",
                         (call.caller.subject, key))
        raise
    response = _json(status, body)
    with pool.connection() as conn:
        if 200 <= status < 300:
            conn.execute("UPDATE idempotency_keys SET status = %s, body = %s WHERE caller = %s AND key = %s",
                         (status, response[2], call.caller.subject, key))
        else:
            conn.execute("DELETE FROM idempotency_keys WHERE caller = %s AND key = %s",
                         (call.caller.subject, key))
    return response


def _record_reads(service: Any, call: Call) -> None:
    rows = [(service.name, call.route.name, call.caller.subject, call.caller.role, s)
            for s in dict.fromkeys(call.reads)]
    with service.store.pool.connection() as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO personal_data_reads (service, route, caller, caller_role, student_id)"
                        " VALUES (%s, %s, %s, %s, %s)", rows)


def serve(service: Any, route: Route, fn: Callable[..., Answer], request: Any,
          path_values: dict[str, str]) -> Response:
    started = time.perf_counter()
    code = ""
    try:
        if route.public:
            response = _json(*fn(service, Call(caller=Principal("anonymous", "auditor"), route=route)))
        else:
            call, raw = parse_call(service, route, request, path_values)
            key = request.headers.get("Idempotency-Key") if route.idempotent else None
            if key is not None:
                response = _run_idempotent(service, call, raw, lambda: fn(service, call), key)
            else:
                response = _json(*fn(service, call))
            if call.reads and response[0] < 300:
                _record_reads(service, call)
    except AuthError as exc:
        code = exc.code
        response = _error(401, exc.code, exc.message, headers={
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc.code}"'})
    except Refusal as exc:
        code = exc.code
        response = _error(exc.status, exc.code, exc.message, exc.fields, exc.headers)
    except DomainError as exc:
        code = exc.code
        response = _error(exc.status, exc.code, exc.message)
    except ContractError as exc:
        code = "CONTRACT_VIOLATION"
        response = _error(422, code, exc.reason)
    except ConcurrencyError:
        code = "CONCURRENT_CHANGE"
        response = _error(409, code, "the record changed while this request was decided; retry")
    except IdempotencyConflict:
        code = "IDEMPOTENCY_CONFLICT"
        response = _error(409, code, "some of these events were recorded already")
    except psycopg.DataError as exc:  # the data, not the server: a 4xx, and nothing was written
        code = "UNSTORABLE_VALUE"
        response = _error(422, code, f"a value cannot be stored ({type(exc).__name__})")
    except psycopg.OperationalError as exc:  # database restarted or unreachable: retry, not a bug
        code = "DATABASE_UNAVAILABLE"
        log.warning("database unavailable in %s.%s (%s)", getattr(service, "name", "?"), route.name,
                    type(exc).__name__)
        response = _error(503, code, "the database is unavailable; retry shortly",
                          headers={"Retry-After": "1"})
    except Exception:
        code = "INTERNAL"
        log.exception("unhandled error in %s.%s", getattr(service, "name", "?"), route.name)
        response = _error(500, code, "internal error; see the service log")
    if route.body is not None and response[0] >= 400:
        _drain(request, route)
    name = getattr(service, "name", "?")
    observability.HTTP_REQUESTS.labels(service=name, endpoint=route.name, status=str(response[0])).inc()
    observability.HTTP_SECONDS.labels(service=name, endpoint=route.name).observe(
        time.perf_counter() - started)
    if code:
        observability.HTTP_REFUSALS.labels(service=name, code=code).inc()
    return response


def route(method: str, path: str, *, roles: Iterable[str] = (), body: type[BaseModel] | None = None,
          query: type[BaseModel] | None = None, returns: type[BaseModel] | None = None, status: int = 200,
          idempotent: bool = False, max_body: int = DEFAULT_MAX_BODY, personal: bool = False,
          public: bool = False, name: str | None = None) -> Callable[[Callable[..., Answer]], Any]:
    """Declare an HTTP route (see the module docstring). ``personal`` marks routes whose answer
    shows one student's personal data; ``public`` routes (the OpenAPI document) take no token."""

    def wrap(fn: Callable[..., Answer]) -> Any:
        spec = Route(method=method, path=path, name=name or fn.__name__,
                     summary=(fn.__doc__ or fn.__name__).strip().splitlines()[0].rstrip("."),
                     roles=frozenset(roles), body=body, query=query, returns=returns, status=status,
                     idempotent=idempotent, max_body=max_body, personal=personal, public=public)
        if not public and not spec.roles:
            raise ValueError(f"route {spec.name} names no role")

        @functools.wraps(fn)
        def handler(self: Any, request: Any, **path_values: str) -> Response:
            return serve(self, spec, fn, request, path_values)

        handler.aid_route = spec  # type: ignore[attr-defined]
        return http(method, path)(handler)

    return wrap


def routes_of(service_cls: type) -> list[Route]:
    found = []
    for attr in dir(service_cls):
        spec = getattr(getattr(service_cls, attr, None), "aid_route", None)
        if isinstance(spec, Route):
            found.append(spec)
    return sorted(found, key=lambda r: (r.path, r.method))


class EdgeService:
    """Base of every service with an HTTP API: serves its OpenAPI document."""

    name = "service"

    @route("GET", "/openapi.json", public=True, name="openapi")
    def openapi_document(self, call: Call) -> Answer:
        """The OpenAPI 3.1 description of this service."""
        from backbone.openapi import document

        return 200, document(type(self))


def student_for(call: Call, store: Any, student_id: str) -> StudentView:
    """The registered student ``student_id``, if the caller may act for them (404 / 403)."""
    view = student_view(student_id, store.read_stream(student_stream(student_id)))
    if view.registered is None:
        raise NotFound("UNKNOWN_STUDENT", f"no registered student {student_id}")
    school = view.registered.school
    call.require_student(student_id, school.school_id, school.city, school.county)
    return view


def school_for(call: Call, store: Any, school_id: str) -> SchoolView:
    """The registered school ``school_id``, if the caller may act for it (404 / 403)."""
    view = school_view(school_id, store.read_stream(school_stream(school_id)))
    if view.registered is None:
        raise NotFound("UNKNOWN_SCHOOL", f"no registered school {school_id}")
    call.require_school(school_id, city=view.registered.city, county=view.registered.county)
    return view


def personal_data_reads(conn: Any, *, student_id: str | None = None, caller: str | None = None,
                        since: Any = None, limit: int = 100) -> list[dict[str, Any]]:
    """The read log (``personal_data_reads``), newest first, for auditors."""
    where, params = ["true"], []
    for column, value in (("student_id", student_id), ("caller", caller)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if since is not None:
        where.append("read_at >= %s")
        params.append(since)
    rows = conn.execute("SELECT read_at, service, route, caller, caller_role, student_id"
                        " FROM personal_data_reads"
                        f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s",
                        [*params, limit]).fetchall()
    names = ("read_at", "service", "route", "caller", "caller_role", "student_id")
    return [{**dict(zip(names, r, strict=True)), "read_at": r[0].isoformat()} for r in rows]
