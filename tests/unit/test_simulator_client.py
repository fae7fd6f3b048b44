"""The simulator's client and CLI without services: configuration from the environment, the
credential file, one-line errors, tokens like ``aid auth token``, the retry of a write with the
same Idempotency-Key, and the exit codes of refusals."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest

from simulator import cli
from simulator.client import AidClient, ApiError, CredentialStore, Endpoints, Tokens


def test_endpoints_default_to_run_system_ports_and_follow_the_environment() -> None:
    default = Endpoints.from_env({})
    assert (default.enrolment, default.spotcheck, default.eligibility) == (
        "http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8004")
    assert (default.issuer, default.token_url) == ("http://127.0.0.1:9000", "http://127.0.0.1:9000/token")
    moved = Endpoints.from_env({"AID_SPOTCHECK_URL": "https://spot.example/", "AID_AUTH_ISSUER": "https://idp/x/"})
    assert (moved.spotcheck, moved.token_url) == ("https://spot.example", "https://idp/x/token")


def test_terminal_credentials_are_kept_private_and_a_missing_one_is_named(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "sim")
    store.put("T1", "T1", "secret-1", "SC1")
    store.put("T2", "T2", "secret-2", "SC1")
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.folder).st_mode) == 0o700
    assert store.get("T1")["client_secret"] == "secret-1" and set(store.all()) == {"T1", "T2"}
    with pytest.raises(ApiError) as missing:
        store.get("T9")
    assert missing.value.code == "UNKNOWN_TERMINAL" and "aid sim terminal register" in missing.value.message


def test_an_error_is_one_line_with_status_code_message_and_field_paths_never_values() -> None:
    error = ApiError(422, "INVALID_REQUEST", "2 field(s) are invalid",
                     [{"path": "body.frames.0", "code": "x", "message": "m"}, {"path": "body.student_id"}])
    assert error.line() == ("HTTP 422 INVALID_REQUEST: 2 field(s) are invalid"
                            " (fields: body.frames.0, body.student_id)")
    assert ApiError(0, "BAD_FILE", "a.jpg: No such file").line() == "BAD_FILE: a.jpg: No such file"


def test_a_person_token_is_the_development_issuers_or_the_given_one(tmp_path: Path) -> None:
    env = {"AID_AUTH_KEY_FILE": str(tmp_path / "key.pem"), "AID_AUTH_ISSUER": "http://127.0.0.1:9000"}
    from backbone.issuer import load_or_create_key

    load_or_create_key(tmp_path / "key.pem")
    tokens = Tokens(Endpoints.from_env(env), CredentialStore(tmp_path), env)
    token = tokens.person("school", school="SC1")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["role"], claims["school"], claims["iss"], claims["aud"]) == (
        "school", "SC1", "http://127.0.0.1:9000", "studentaid")
    assert tokens.person("school", school="SC1") == token  # reused until near expiry
    given = Tokens(Endpoints.from_env(env), CredentialStore(tmp_path), {**env, "AID_SIM_TOKEN": "abc"})
    assert given.person("province") == "abc"
    production = Tokens(Endpoints.from_env(env), CredentialStore(tmp_path), {**env, "AID_ENV": "production"})
    with pytest.raises(ApiError) as refused:
        production.person("province")
    assert refused.value.code == "NO_TOKEN"


class _Flaky(BaseHTTPRequestHandler):
    """503 on the first POST, then 201 with the Idempotency-Key it saw; 409 for /conflict."""

    seen: list[str] = []

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Flaky.seen.append(self.headers.get("Idempotency-Key", ""))
        if self.path == "/conflict":
            self._send(409, {"error": "ALREADY_CLOSED", "message": "check c1 is closed already"})
        elif len(_Flaky.seen) == 1:
            self._send(503, {"error": "UNAVAILABLE", "message": "try again"})
        else:
            self._send(201, {"key": _Flaky.seen[-1]})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def flaky() -> Iterator[str]:
    _Flaky.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_write_is_retried_after_a_503_with_the_same_idempotency_key(flaky: str, tmp_path: Path) -> None:
    endpoints = Endpoints.from_env({"AID_SPOTCHECK_URL": flaky})
    client = AidClient(endpoints, Tokens(endpoints, CredentialStore(tmp_path), {"AID_SIM_TOKEN": "t"}))
    answer = client.call("POST", "spotcheck", "/anything", {"a": 1}, "t")
    assert len(_Flaky.seen) == 2 and _Flaky.seen[0] == _Flaky.seen[1] == answer["key"] != ""


def test_a_refusal_exits_1_with_one_line(flaky: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    endpoints = Endpoints.from_env({"AID_SPOTCHECK_URL": flaky})
    client = AidClient(endpoints, Tokens(endpoints, CredentialStore(tmp_path), {"AID_SIM_TOKEN": "t"}))
    client.close_check = lambda check_id, by=None: client.call("POST", "spotcheck", "/conflict")  # type: ignore
    assert cli.main(["close", "c1"], client=client) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == "aid sim close: HTTP 409 ALREADY_CLOSED: check c1 is closed already\n"


def test_times_of_a_check_are_today_in_shanghai_or_iso() -> None:
    from datetime import date

    day = date(2026, 10, 22)
    assert cli._instant("10:00", day) == "2026-10-22T10:00:00+08:00"
    assert cli._instant("2026-10-22T11:30:00", day) == "2026-10-22T11:30:00+08:00"
    with pytest.raises(cli.Usage):
        cli._instant("ten", day)
