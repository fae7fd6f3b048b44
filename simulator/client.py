"""A small HTTP client of the running services, as a school terminal, school staff, an authority
and operations would call them. The terminal simulator (``aid sim``), the semester test and the
load benchmark all go through it.

- Where the services are: :class:`Endpoints` (``AID_ENROLMENT_URL``, ``AID_SPOTCHECK_URL``,
  ``AID_ELIGIBILITY_URL``, ``AID_HARDSHIP_URL``, ``AID_APPEALS_URL``; defaults: the ports of
  ``scripts/run-system`` on 127.0.0.1) and the issuer (``AID_AUTH_ISSUER``, its token endpoint
  ``AID_AUTH_TOKEN_URL``, default ``<issuer>/token``).
- Who calls: :class:`Tokens`. A terminal exchanges its client credentials for a short-lived token
  at the issuer (OAuth 2 client-credentials grant), as a kiosk does; the credentials operations
  received when registering it are kept in :class:`CredentialStore` (a 0600 file). A person
  (school staff, authority, operations) uses ``AID_SIM_TOKEN`` when set (a token from the
  province's identity provider), else a token of the development issuer's key, exactly what
  ``aid auth token`` prints (refused in production).
- What goes wrong: every refusal is an :class:`ApiError` with the HTTP status, the service's
  error code and message (and the paths of refused fields, never their values); a service that
  does not answer is :class:`Unreachable`.

Writes carry an ``Idempotency-Key``; a connection failure or a 502/503/504 is retried with the
same key, so a retry never records twice.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_HOST = "http://127.0.0.1"
SERVICE_DEFAULTS = {"enrolment": 8001, "spotcheck": 8002, "eligibility": 8004, "appeals": 8005,
                    "hardship": 8006}
RETRY_STATUSES = (502, 503, 504)


class ApiError(Exception):
    """A service (or the issuer) refused the request, or could not be reached (status 0)."""

    def __init__(self, status: int, code: str, message: str,
                 fields: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.fields = [dict(f) for f in fields]

    def line(self) -> str:
        """One line for a person: status, code, message and the paths of refused fields."""
        text = f"{self.code}: {self.message}"
        text = f"HTTP {self.status} {text}" if self.status else text
        paths = [str(f.get("path")) for f in self.fields if f.get("path")]
        return text + (f" (fields: {', '.join(paths[:8])})" if paths else "")


class Unreachable(ApiError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, "UNREACHABLE", f"{url}: {reason}")


@dataclass(frozen=True)
class Endpoints:
    enrolment: str
    spotcheck: str
    eligibility: str
    appeals: str
    hardship: str
    issuer: str
    token_url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Endpoints:
        env = os.environ if environ is None else environ
        urls = {name: env.get(f"AID_{name.upper()}_URL", f"{DEFAULT_HOST}:{port}").rstrip("/")
                for name, port in SERVICE_DEFAULTS.items()}
        issuer = env.get("AID_AUTH_ISSUER", f"{DEFAULT_HOST}:9000").rstrip("/")
        return cls(issuer=issuer, token_url=env.get("AID_AUTH_TOKEN_URL", f"{issuer}/token"), **urls)


class CredentialStore:
    """Terminal client credentials, one JSON file (0600) in a folder (0700): ``AID_SIM_DIR``,
    default ``var/sim`` under the current directory."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or Path(os.environ.get("AID_SIM_DIR", "var/sim"))
        self.path = self.folder / "terminals.json"
        self._lock = threading.Lock()

    def all(self) -> dict[str, dict[str, str]]:
        try:
            return dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return {}

    def get(self, terminal_id: str) -> dict[str, str]:
        found = self.all().get(terminal_id)
        if found is None:
            raise ApiError(0, "UNKNOWN_TERMINAL", f"no credentials of terminal {terminal_id} in {self.path}"
                           " (register it with: aid sim terminal register)")
        return found

    def put(self, terminal_id: str, client_id: str, client_secret: str, school_id: str) -> None:
        with self._lock:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            stored = self.all()
            stored[terminal_id] = {"client_id": client_id, "client_secret": client_secret,
                                   "school_id": school_id}
            tmp = self.path.with_suffix(f".{uuid.uuid4().hex[:8]}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(stored, out, indent=1)
            tmp.replace(self.path)


def _send(method: str, url: str, body: Any = None, token: str | None = None,
          headers: Mapping[str, str] | None = None, timeout: float = 30) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Accept": "application/json", **(headers or {})}
    if data is not None:
        sent.setdefault("Content-Type", "application/json")
    if token:
        sent["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        code = str(answer.get("error") or exc.reason or "HTTP_ERROR")
        message = str(answer.get("message") or answer.get("error_description") or exc.reason or "")
        raise ApiError(exc.code, code, message, answer.get("fields") or ()) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(url.split("?", 1)[0], str(reason)) from None


class Tokens:
    """Access tokens: terminals by client credentials at the issuer, people from ``AID_SIM_TOKEN``
    or the development issuer's key. Tokens are reused until a minute before they expire."""

    def __init__(self, endpoints: Endpoints, credentials: CredentialStore | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.endpoints = endpoints
        self.credentials = credentials or CredentialStore()
        self.env = dict(os.environ if environ is None else environ)
        self._cache: dict[tuple[str, ...], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: tuple[str, ...]) -> str | None:
        with self._lock:
            found = self._cache.get(key)
        return found[0] if found and found[1] > time.monotonic() + 60 else None

    def _keep(self, key: tuple[str, ...], token: str, ttl: float) -> str:
        with self._lock:
            self._cache[key] = (token, time.monotonic() + ttl)
        return token

    def terminal(self, terminal_id: str) -> str:
        """The terminal's token from the issuer (client-credentials grant)."""
        key = ("terminal", terminal_id)
        token = self._cached(key)
        if token:
            return token
        stored = self.credentials.get(terminal_id)
        answer = _send("POST", self.endpoints.token_url, {
            "grant_type": "client_credentials", "client_id": stored["client_id"],
            "client_secret": stored["client_secret"]})
        return self._keep(key, str(answer["access_token"]), float(answer.get("expires_in", 300)))

    def person(self, role: str, **area: str | None) -> str:
        """A person's token: ``AID_SIM_TOKEN`` if set, else one minted like ``aid auth token``."""
        if self.env.get("AID_SIM_TOKEN"):
            return self.env["AID_SIM_TOKEN"]
        key = (role, *(f"{k}={v}" for k, v in sorted(area.items()) if v))
        token = self._cached(key)
        if token:
            return token
        if self.env.get("AID_ENV") == "production":
            raise ApiError(0, "NO_TOKEN", "production: set AID_SIM_TOKEN to a token of the province's"
                                          " identity provider")
        from backbone import config
        from backbone.issuer import load_or_create_key, mint, person_claims

        key_file = config.auth_key_file(self.env)
        if not key_file.exists():
            raise ApiError(0, "NO_TOKEN", f"no development signing key at {key_file}: run aid auth init"
                                          " (or set AID_SIM_TOKEN)")
        try:
            claims = person_claims(role, None, **area)
            auth = config.auth_settings(self.env)
            token = mint(load_or_create_key(key_file), auth.issuer, auth.audience, claims, 3600)
        except ValueError as exc:
            raise ApiError(0, "BAD_ROLE", str(exc)) from None
        return self._keep(key, token, 3600)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def read_files(paths: Sequence[str | Path]) -> list[bytes]:
    """The bytes of each file (a photo burst); a missing file is an ApiError naming it."""
    out = []
    for path in paths:
        try:
            out.append(Path(path).read_bytes())
        except OSError as exc:
            raise ApiError(0, "BAD_FILE", f"{path}: {exc.strerror or exc}") from None
    return out


@dataclass(frozen=True)
class Authority:
    """Who opens and closes checks: ``province``, or a ``city`` (with ``city``) or a ``county``
    (with ``city`` and ``county``)."""

    level: str = "province"
    city: str | None = None
    county: str | None = None


PROVINCE = Authority()


class AidClient:
    """The services' HTTP API, one method per thing a terminal, staff or authority does."""

    def __init__(self, endpoints: Endpoints | None = None, tokens: Tokens | None = None,
                 timeout: float = 30, retries: int = 2) -> None:
        self.endpoints = endpoints or Endpoints.from_env()
        self.tokens = tokens or Tokens(self.endpoints)
        self.timeout, self.retries = timeout, retries

    # ------------------------------------------------------------------ transport

    def call(self, method: str, service: str, path: str, body: Any = None, token: str | None = None,
             query: Mapping[str, Any] | None = None, timeout: float | None = None) -> Any:
        base = getattr(self.endpoints, service)
        qs = {k: v for k, v in (query or {}).items() if v is not None}
        url = base + urllib.parse.quote(path, safe="/") + (f"?{urllib.parse.urlencode(qs)}" if qs else "")
        headers = {"Idempotency-Key": uuid.uuid4().hex} if method == "POST" else {}
        for attempt in range(self.retries + 1):
            try:
                return _send(method, url, body, token, headers, timeout or self.timeout)
            except ApiError as exc:
                transient = isinstance(exc, Unreachable) or exc.status in RETRY_STATUSES
                if not transient or attempt == self.retries:
                    raise
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    def staff(self, school_id: str) -> str:
        return self.tokens.person("school", school=school_id)

    def authority(self, who: Authority) -> str:
        return self.tokens.person(who.level, city=who.city, county=who.county)

    def operations(self) -> str:
        return self.tokens.person("operations")

    # ------------------------------------------------------------------ operations

    def register_school(self, school_id: str, name: str, city: str, county: str,
                        directly_administered: bool = False) -> Any:
        return self.call("POST", "enrolment", "/schools", {
            "school_id": school_id, "name": name, "city": city, "county": county,
            "directly_administered": directly_administered}, self.operations())

    def register_terminal(self, terminal_id: str, school_id: str, label: str | None = None) -> Any:
        """Register a terminal; its client credentials are kept in the credential store."""
        answer = self.call("POST", "enrolment", "/terminals", {
            "terminal_id": terminal_id, "school_id": school_id, "label": label or f"terminal {terminal_id}"},
            self.operations())
        self.tokens.credentials.put(terminal_id, answer["client_id"], answer["client_secret"], school_id)
        return {k: v for k, v in answer.items() if k != "client_secret"}

    # ------------------------------------------------------------------ school staff

    def import_roster(self, school_id: str, content: bytes, fmt: str, dry_run: bool = False) -> Any:
        return self.call("POST", "enrolment", "/students/import", {
            "school_id": school_id, "format": fmt, "file": b64(content), "dry_run": dry_run},
            self.staff(school_id), timeout=max(self.timeout, 120))

    def register_student(self, student: Mapping[str, Any]) -> Any:
        return self.call("POST", "enrolment", "/students", dict(student),
                         self.staff(str(student["school_id"])))

    def record_leaving(self, school_id: str, student_id: str, reason: str, left_on: str,
                       to_school_id: str | None = None) -> Any:
        """The student withdrew, graduated or transferred on ``left_on``; aid stops the next month."""
        body = {"reason": reason, "left_on": left_on, "to_school_id": to_school_id}
        return self.call("POST", "enrolment", f"/students/{student_id}/leave",
                         {k: v for k, v in body.items() if v is not None}, self.staff(school_id))

    def mark_absence(self, school_id: str, check_id: str, student_id: str, reason: str,
                     reported_at: str | None = None) -> Any:
        body = {"student_id": student_id, "reason": reason, "reported_at": reported_at}
        return self.call("POST", "spotcheck", f"/checks/{check_id}/absences",
                         {k: v for k, v in body.items() if v is not None}, self.staff(school_id))

    def file_internship(self, school_id: str, student_id: str, kind: str, starts_on: str, ends_on: str,
                        education_filed_on: str, aid_authority_filed_on: str) -> Any:
        return self.call("POST", "spotcheck", "/internships", {
            "student_id": student_id, "kind": kind, "starts_on": starts_on, "ends_on": ends_on,
            "education_filed_on": education_filed_on, "aid_authority_filed_on": aid_authority_filed_on},
            self.staff(school_id))

    def internship_moved(self, school_id: str, plan_id: str, step: str, on: str) -> Any:
        """``step``: ``departed`` or ``returned``."""
        return self.call("POST", "spotcheck", f"/internships/{plan_id}/{step}", {"on": on},
                         self.staff(school_id))

    def update_placement(self, school_id: str, placement_id: str, changes: Mapping[str, Any]) -> Any:
        return self.call("POST", "spotcheck", f"/placements/{placement_id}/update", dict(changes),
                         self.staff(school_id))

    def end_placement(self, school_id: str, placement_id: str, ended_on: str) -> Any:
        return self.call("POST", "spotcheck", f"/placements/{placement_id}/end", {"ended_on": ended_on},
                         self.staff(school_id))

    def publish(self, school_id: str, month: str) -> Any:
        return self.call("POST", "spotcheck", "/results/publish", {"school_id": school_id, "month": month},
                         self.staff(school_id))

    def attachment2(self, school_id: str, month: str) -> Any:
        return self.call("GET", "spotcheck", f"/schools/{school_id}/placements/{month}/attachment2",
                         token=self.staff(school_id))

    def determine_hardship(self, school_id: str, student_id: str, categories: Sequence[int],
                           effective_semester: str, methods: Sequence[str]) -> Any:
        return self.call("POST", "hardship", "/determinations", {
            "student_id": student_id, "categories": list(categories),
            "effective_semester": effective_semester, "methods": list(methods)}, self.staff(school_id))

    # ------------------------------------------------------------------ authorities

    def open_check(self, opens_at: str, closes_at: str, school_ids: Sequence[str] | None = None,
                   student_ids: Sequence[str] | None = None, kind: str = "routine",
                   by: Authority = PROVINCE) -> Any:
        body: dict[str, Any] = {"opens_at": opens_at, "closes_at": closes_at, "kind": kind}
        if school_ids:
            body["school_ids"] = list(school_ids)
        if student_ids:
            body["student_ids"] = list(student_ids)
        return self.call("POST", "spotcheck", "/checks", body, self.authority(by))

    def close_check(self, check_id: str, by: Authority = PROVINCE) -> Any:
        return self.call("POST", "spotcheck", f"/checks/{check_id}/close", None, self.authority(by))

    # ------------------------------------------------------------------ terminals

    def challenge(self, terminal_id: str, student_id: str, check_id: str | None = None) -> Any:
        """A liveness challenge (the action the next burst must show: blink, turn_left or
        turn_right) for a check-in of ``check_id``, or for a new capture when ``check_id`` is None."""
        path = f"/checks/{check_id}/challenges" if check_id else "/enrolments/challenges"
        return self.call("POST", "spotcheck" if check_id else "enrolment", path, {"student_id": student_id},
                         self.tokens.terminal(terminal_id))

    @staticmethod
    def _answering(challenge_id: str | None, frame_times_ms: Sequence[int] | None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if challenge_id:
            body["challenge_id"] = challenge_id
        if frame_times_ms:
            body["frame_times_ms"] = list(frame_times_ms)
        return body

    def enrol(self, terminal_id: str, student_id: str, frames: Sequence[bytes], id_photo: bytes,
              challenge_id: str | None = None, frame_times_ms: Sequence[int] | None = None) -> Any:
        """New capture (新增采集): the live burst and the ID-card photo, answering a liveness
        challenge when given; answers the capture id."""
        return self.call("POST", "enrolment", "/enrolments", {
            "student_id": student_id, "frames": [b64(f) for f in frames], "id_photo": b64(id_photo),
            **self._answering(challenge_id, frame_times_ms)}, self.tokens.terminal(terminal_id))

    def capture(self, terminal_id: str, check_id: str, student_id: str, frames: Sequence[bytes],
                attempt: int = 1, challenge_id: str | None = None,
                frame_times_ms: Sequence[int] | None = None) -> Any:
        """A check-in at the terminal, answering a liveness challenge when given; answers the
        capture id (the verdict comes later)."""
        return self.call("POST", "spotcheck", f"/checks/{check_id}/captures", {
            "student_id": student_id, "frames": [b64(f) for f in frames], "attempt": attempt,
            **self._answering(challenge_id, frame_times_ms)}, self.tokens.terminal(terminal_id))

    def force_pass(self, terminal_id: str, check_id: str, student_id: str, evidence_photo: bytes) -> Any:
        return self.call("POST", "spotcheck", f"/checks/{check_id}/forced-passes", {
            "student_id": student_id, "evidence_photo": b64(evidence_photo)},
            self.tokens.terminal(terminal_id))

    def confirm_placement(self, terminal_id: str, placement: Mapping[str, Any]) -> Any:
        body = {k: v for k, v in placement.items() if v is not None}
        return self.call("POST", "spotcheck", "/placements", body, self.tokens.terminal(terminal_id))

    # ------------------------------------------------------------------ reads

    def verdict(self, capture_id: str, wait: int = 0, terminal_id: str | None = None,
                school_id: str | None = None) -> Any:
        """A capture's verdict (``status``: submitted, verified or rejected), waiting up to
        ``wait`` seconds (at most 30 a request) for face matching, as the terminal or as staff."""
        token = self.tokens.terminal(terminal_id) if terminal_id else self.staff(str(school_id))
        return self.call("GET", "spotcheck", f"/captures/{capture_id}", token=token,
                         query={"wait": wait or None}, timeout=wait + self.timeout)

    def wait_verdict(self, capture_id: str, timeout: float = 60, terminal_id: str | None = None,
                     school_id: str | None = None) -> Any:
        """Long-poll until the capture is decided or ``timeout`` seconds passed; the last answer."""
        deadline = time.monotonic() + timeout
        while True:
            left = int(min(30, max(0, deadline - time.monotonic())))
            answer = self.verdict(capture_id, left, terminal_id, school_id)
            if answer["status"] != "submitted" or left == 0:
                return answer

    def aid_status(self, school_id: str, student_id: str, semester: str | None = None) -> Any:
        """The student's eligibility statuses (per semester: months, grant, waiver), as staff."""
        return self.call("GET", "eligibility", f"/students/{student_id}", token=self.staff(school_id),
                         query={"semester": semester})

    def school_month(self, school_id: str, month: str) -> Any:
        return self.call("GET", "eligibility", f"/schools/{school_id}/months/{month}",
                         token=self.staff(school_id))

    def results_list(self, school_id: str, month: str, fmt: str = "json") -> Any:
        """The school's monthly results list (masked), ``draft`` or ``published``; for ``csv`` and
        ``xlsx`` the file is in ``content_base64``."""
        return self.call("GET", "eligibility", f"/schools/{school_id}/results/{month}",
                         token=self.staff(school_id), query={"format": fmt})

    def student(self, school_id: str, student_id: str) -> Any:
        return self.call("GET", "enrolment", f"/students/{student_id}", token=self.staff(school_id))
