"""The console without a browser: its imports, sessions and cookies, CSRF, the area check of
school pages, the language switch and the kiosk's answers, over a fake of the services' API."""

from __future__ import annotations

import ast
import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from console import web
from console.web import ConsoleApp

REPO = Path(__file__).resolve().parents[2]


def test_the_console_imports_no_service() -> None:
    for path in (REPO / "console").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "services" or n.startswith("services.") for n in names), path


class FakeServices:
    """Answers the console's calls; records them (method, path, token, body)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None, Any]] = []
        self.answers: dict[tuple[str, str], tuple[int, Any]] = {
            ("GET", "/checks"): (200, {"checks": []}),
            ("GET", "/schools/SC1/placements"): (200, {"school_id": "SC1", "month": None, "placements": []}),
            ("GET", "/schools/SC1"): (200, {"school_id": "SC1", "name": "测试学校", "city": "驻马店市",
                                            "county": "驿城区"}),
        }

    def __call__(self, method: str, url: str, body: Any = None, token: str | None = None,
                 timeout: float = 20) -> tuple[int, Any]:
        path = "/" + url.split("/", 3)[3].split("?")[0] if url.count("/") >= 3 else url
        self.calls.append((method, path, token, body))
        return self.answers.get((method, path), (200, {}))


@pytest.fixture()
def services(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeServices:
    fake = FakeServices()
    monkeypatch.setattr(web, "http_call", fake)
    monkeypatch.setattr("console.pages.common.http_call", fake)
    monkeypatch.setenv("AID_AUTH_KEY_FILE", str(tmp_path / "key.pem"))
    monkeypatch.delenv("AID_ENV", raising=False)
    from backbone.issuer import load_or_create_key

    load_or_create_key(tmp_path / "key.pem")
    return fake


@pytest.fixture()
def client(services: FakeServices) -> Client:
    return Client(ConsoleApp())


def sign_in(client: Client, role: str, **area: str) -> str:
    response = client.post("/signin", data={"role": role, "user": "u1", **area})
    assert response.status_code == 303, response.get_data(as_text=True)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = client.get(response.headers["Location"], follow_redirects=True).get_data(as_text=True)
    return page.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_signed_out_pages_send_to_sign_in(client: Client) -> None:
    assert client.get("/school").headers["Location"] == "/signin"
    assert client.get("/kiosk").headers["Location"] == "/kiosk/signin"
    assert client.post("/kiosk/api/checkin", json={}).status_code == 401


def test_sign_in_is_in_chinese_and_switches_to_english(client: Client) -> None:
    assert "登录" in client.get("/signin").get_data(as_text=True)
    response = client.get("/lang/en?next=/signin")
    assert response.headers["Location"] == "/signin"
    assert "Sign in" in client.get("/signin").get_data(as_text=True)
    assert client.get("/lang/en?next=//evil.example/").headers["Location"] == "/"


def test_a_school_user_cannot_open_another_schools_page(client: Client, services: FakeServices) -> None:
    sign_in(client, "school", school="SC1")
    before = len(services.calls)
    pages = ("/schools/SC2", "/schools/SC2/months/2026-11", "/schools/SC2/roster", "/authority", "/audit")
    for path in pages:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "无权访问" in response.get_data(as_text=True)
    assert len(services.calls) == before  # refused before any call to a service


def test_the_token_goes_to_the_services_never_to_the_browser(client: Client, services: FakeServices) -> None:
    sign_in(client, "school", school="SC1")
    services.answers[("GET", "/schools/SC1/months/2026-11")] = (200, {
        "school_id": "SC1", "month": "2026-11", "counts": {"passed": 1},
        "students": [{"student_id": "A0001", "name_masked": "张*", "class_name": "会计2班",
                      "status": "passed", "outcome": "passed", "excuse": None, "grant": "granted",
                      "grant_rule": None}]})
    page = client.get("/schools/SC1/months/2026-11").get_data(as_text=True)
    token = services.calls[-1][2]
    assert token and token.count(".") == 2
    assert token not in page and "张*" in page


def test_posts_need_the_csrf_token(client: Client, services: FakeServices) -> None:
    csrf = sign_in(client, "school", school="SC1")
    services.answers[("POST", "/results/publish")] = (201, {"school_id": "SC1", "month": "2026-11",
                                                            "published_on": "2026-11-26"})
    services.answers[("GET", "/schools/SC1/months/2026-11")] = (200, {"school_id": "SC1", "month": "2026-11",
                                                                      "counts": {}, "students": []})
    assert client.post("/schools/SC1/months/2026-11", data={}).status_code == 403
    response = client.post("/schools/SC1/months/2026-11", data={"csrf": csrf})
    assert response.status_code == 200 and "已公示" in response.get_data(as_text=True)
    method, path, _, body = [c for c in services.calls if c[0] == "POST"][-1]
    assert (path, body) == ("/results/publish", {"school_id": "SC1", "month": "2026-11"})


def test_a_refusal_is_shown_with_its_code(client: Client, services: FakeServices) -> None:
    csrf = sign_in(client, "province")
    services.answers[("POST", "/checks")] = (422, {"error": "BAD_WINDOW", "message": "10:00-15:00"})
    services.answers[("GET", "/checks")] = (200, {"checks": []})
    page = client.post("/authority", data={"csrf": csrf, "action": "open", "opens_at": "2026-11-26T09:00",
                                           "closes_at": "2026-11-26T10:00"}).get_data(as_text=True)
    assert "BAD_WINDOW" in page and "10:00-15:00" in page
    sent = [c for c in services.calls if c[1] == "/checks" and c[0] == "POST"][-1][3]
    assert sent["opens_at"] == "2026-11-26T09:00:00+08:00" and sent["kind"] == "routine"


def kiosk_client(services: FakeServices) -> tuple[Client, str]:
    from backbone import config
    from backbone.issuer import load_or_create_key, mint

    token = mint(load_or_create_key(config.auth_key_file()), "http://127.0.0.1:9000", "studentaid",
                 {"sub": "terminal:T1", "role": "terminal", "terminal": "T1", "school": "SC1"}, 900)
    services.answers[("POST", "/token")] = (200, {"access_token": token, "expires_in": 900})
    client = Client(ConsoleApp())
    response = client.post("/kiosk/signin", data={"terminal_id": "T1", "secret": "s3cret"})
    assert response.headers["Location"] == "/kiosk"
    return client, token


def test_kiosk_checks_in_and_answers_the_verdict_in_both_languages(services: FakeServices) -> None:
    client, token = kiosk_client(services)
    services.answers[("GET", "/checks")] = (200, {"checks": [{"check_id": "C1", "month": "2026-11"}]})
    page = client.get("/kiosk").get_data(as_text=True)
    csrf = page.split('data-csrf="', 1)[1].split('"', 1)[0]
    services.answers[("POST", "/checks/C1/captures")] = (202, {"capture_id": "K1", "status": "submitted"})
    services.answers[("GET", "/captures/K1")] = (200, {"status": "rejected", "attempt": 2, "reasons": [
        {"code": "NO_FACE", "message_zh": "未检测到人脸", "message_en": "No face"}]})
    body = {"check_id": "C1", "student_id": "A0001", "frames": ["AAAA"], "attempt": 2}
    assert client.post("/kiosk/api/checkin", json=body).status_code == 403  # no CSRF header
    answer = client.post("/kiosk/api/checkin", json=body, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200
    reasons = [{"code": "NO_FACE", "zh": "未检测到人脸", "en": "No face"}]
    assert json.loads(answer.get_data()) == {"capture_id": "K1", "status": "rejected", "attempt": 2,
                                             "reasons": reasons}
    sent = [c for c in services.calls if c[1] == "/checks/C1/captures"][-1]
    assert sent[2] == token and sent[3] == {"student_id": "A0001", "frames": ["AAAA"], "attempt": 2}


def test_kiosk_asks_again_when_spotcheck_has_too_many_waiting(services: FakeServices,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A 503 TOO_MANY_WAITING from the verdict long-poll is asked again (1 s apart, a few times),
    any other refusal is shown at once."""
    from console.pages import kiosk

    monkeypatch.setattr(kiosk.time, "sleep", lambda seconds: None)
    client, _ = kiosk_client(services)
    services.answers[("GET", "/checks")] = (200, {"checks": [{"check_id": "C1", "month": "2026-11"}]})
    csrf = client.get("/kiosk").get_data(as_text=True).split('data-csrf="', 1)[1].split('"', 1)[0]
    services.answers[("POST", "/checks/C1/captures")] = (202, {"capture_id": "K1", "status": "submitted"})
    busy = (503, {"error": "TOO_MANY_WAITING", "message": "too many waiting"})
    verdicts = [busy, busy, (200, {"status": "verified", "attempt": 1, "reasons": []})]
    answer_of = services.__call__

    def waiting(method: str, url: str, body: Any = None, token: str | None = None,
                timeout: float = 20) -> tuple[int, Any]:
        if "/captures/K1" in url:
            services.calls.append((method, "/captures/K1", token, body))
            return verdicts.pop(0)
        return answer_of(method, url, body, token, timeout)

    monkeypatch.setattr(web, "http_call", waiting)
    monkeypatch.setattr("console.pages.common.http_call", waiting)
    body = {"check_id": "C1", "student_id": "A0001", "frames": ["AAAA"], "attempt": 1}
    answer = client.post("/kiosk/api/checkin", json=body, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200 and json.loads(answer.get_data())["status"] == "verified"
    assert len([c for c in services.calls if c[1] == "/captures/K1"]) == 3
    verdicts[:] = [busy] * (kiosk.WAIT_RETRIES + 1)
    answer = client.post("/kiosk/api/checkin", json=body, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 503 and not verdicts  # asked WAIT_RETRIES + 1 times, then shown


def test_kiosk_shows_the_clear_screen_when_revoked_or_closed(services: FakeServices) -> None:
    client, _ = kiosk_client(services)
    services.answers[("GET", "/checks")] = (200, {"checks": []})
    assert 'data-screen="closed"' in client.get("/kiosk").get_data(as_text=True)
    services.answers[("GET", "/checks")] = (401, {"error": "TERMINAL_REVOKED", "message": "revoked"})
    assert json.loads(client.get("/kiosk/api/state").get_data())["screen"] == "revoked"
    page = client.get("/kiosk").get_data(as_text=True)
    assert 'data-screen="revoked"' in page and "吊销" in page


def test_pages_send_security_headers(client: Client) -> None:
    headers = client.get("/signin").headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"


def test_kiosk_asks_for_a_challenge_and_sends_the_frames_times(services: FakeServices) -> None:
    client, _ = kiosk_client(services)
    services.answers[("GET", "/checks")] = (200, {"checks": [{"check_id": "C1", "month": "2026-11"}]})
    csrf = client.get("/kiosk").get_data(as_text=True).split('data-csrf="', 1)[1].split('"', 1)[0]
    headers = {"X-CSRF-Token": csrf}
    services.answers[("POST", "/checks/C1/challenges")] = (201, {
        "challenge_id": "H1", "action": "turn_left", "issued_at": "x", "expires_at": "y"})
    asked = client.post("/kiosk/api/challenge", headers=headers,
                        json={"mode": "checkin", "check_id": "C1", "student_id": "A0001"})
    assert json.loads(asked.get_data()) == {"challenge_id": "H1", "action": "turn_left"}
    services.answers[("POST", "/checks/C1/captures")] = (202, {"capture_id": "H1", "status": "submitted"})
    services.answers[("GET", "/captures/H1")] = (200, {"status": "verified", "attempt": 1, "reasons": []})
    client.post("/kiosk/api/checkin", headers=headers, json={
        "check_id": "C1", "student_id": "A0001", "frames": ["AAAA", "BBBB", "CCCC"], "challenge_id": "H1",
        "frame_times_ms": [10, 310, 610]})
    sent = [c for c in services.calls if c[1] == "/checks/C1/captures"][-1][3]
    assert sent["challenge_id"] == "H1" and sent["frame_times_ms"] == [10, 310, 610]
    # a service that issues no challenges (404 without a JSON error): the generic prompts
    services.answers[("POST", "/enrolments/challenges")] = (404, {"error": "UPSTREAM",
                                                                  "message": "HTTP 404"})
    enrol = {"mode": "enrol", "student_id": "A0001"}
    asked = client.post("/kiosk/api/challenge", headers=headers, json=enrol)
    assert json.loads(asked.get_data()) == {"challenge_id": None, "action": None}


SUMMARY = {"month": "2026-11", "semester": "2026-autumn", "students": 3, "checked": 2,
           "passed": 1, "failed": 1, "pending": 0, "grant_granted": 1, "grant_yuan": 200, "grant_pending": 0,
           "grant_withheld": 1,
           "withheld_by_reason": {"check_failed": 1}}


@pytest.mark.parametrize("role, area", [
    ("school", {"school": "SC1"}), ("county", {"city": "驻马店市", "county": "驿城区"}),
    ("city", {"city": "驻马店市"}), ("province", {}), ("auditor", {}), ("operations", {})])
def test_every_nav_page_of_a_role_renders_in_both_languages(services: FakeServices, role: str,
                                                             area: dict[str, str]) -> None:
    from console.web import PAGES

    student = {"student_id": "A0001", "class_name": "会计2班", "name_masked": "张*",
               "objected_on": "2026-11-18", "reason": "病假", "ruling": None, "failed_checks": [],
               "other_checks": []}
    filing = {"filing_id": "F1", "school_id": "SC1", "month": "2026-11", "filed_on": "2026-11-20",
              "signed": True, "students": [student]}
    services.answers.update({
        ("GET", "/appeals/inbox"): (200, {"filings": [filing]}),
        ("GET", "/terminals"): (200, {"terminals": [{"terminal_id": "T1", "school_id": "SC1", "label": "大厅",
                                                     "revoked": False}]}),
        ("GET", "/audit/personal-data-reads"): (200, {"reads": []}),
        ("GET", "/schools/SC1/cases"): (200, {"school_id": "SC1", "cases": [
            {"case_id": "K1", "student_id": "A0001", "stage": "vocational", "status": "determined",
             "level": "difficult"}]}),
    })
    for month in ("2026-11", "2026-12", "2027-01"):
        services.answers[("GET", f"/summary/{month}")] = (200, {**SUMMARY, "month": month})
        services.answers[("GET", f"/summary/{month}/schools")] = (200, {"month": month, "schools": [
            {"school_id": "SC1", "county": "驿城区", "city": "驻马店市", "students": 3, "checked": 2,
             "passed": 1, "failed": 1, "pending": 0}]})
        services.answers[("GET", f"/schools/SC1/months/{month}")] = (200, {
            "school_id": "SC1", "month": month, "counts": {"passed": 1}, "students": []})
    client = Client(ConsoleApp())
    sign_in(client, role, **area)
    pages = [p for p in PAGES if p.nav and role in p.roles]
    assert pages, role
    for lang in ("zh", "en"):
        client.get(f"/lang/{lang}")
        for p in pages:
            path = p.rule.replace("<school_id>", "SC1")
            response = client.get(path, follow_redirects=True)
            assert response.status_code == 200, (role, path, response.get_data(as_text=True)[:300])
            html = response.get_data(as_text=True)
            assert 'lang="en"' in html if lang == "en" else True
            title = re.search(r"<title>(.*?)</title>", html, re.S)
            assert title and "<" not in title.group(1), (path, title)  # a title is text, not markup


def test_a_page_that_fails_shows_no_traceback(client: Client, services: FakeServices) -> None:
    sign_in(client, "auditor")
    services.answers[("GET", "/audit/personal-data-reads")] = (200, {"unexpected": True})
    response = client.get("/audit/reads")
    assert response.status_code == 500 and "Traceback" not in response.get_data(as_text=True)


def test_downloads_keep_their_chinese_names(client: Client, services: FakeServices) -> None:
    import base64

    sign_in(client, "school", school="SC1")
    services.answers[("GET", "/schools/SC1/placements/2026-11/attachment2")] = (200, {
        "filename": "附件2-SC1-2026-11.xlsx", "content_base64": base64.b64encode(b"PK\x03\x04").decode(),
        "rows": 0})
    response = client.get("/schools/SC1/placements/2026-11/attachment2")
    assert response.status_code == 200 and response.get_data() == b"PK\x03\x04"
    disposition = response.headers["Content-Disposition"]
    disposition.encode("latin-1")  # a header the server can send
    assert "filename*=UTF-8''%E9%99%84%E4%BB%B62-SC1-2026-11.xlsx" in disposition


def test_people_sign_in_at_the_oidc_provider_with_pkce(services: FakeServices,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import base64
    import hashlib
    import urllib.parse

    from console.pages import oidc

    monkeypatch.setenv("AID_ENV", "production")
    monkeypatch.setenv("AID_AUTH_ISSUER", "https://id.example.gov.cn/realms/aid")
    monkeypatch.setenv("AID_CONSOLE_OIDC_CLIENT_ID", "console")
    monkeypatch.setenv("AID_CONSOLE_PUBLIC_URL", "https://console.example.gov.cn")
    services.answers[("GET", "/realms/aid/.well-known/openid-configuration")] = (200, {
        "authorization_endpoint": "https://id.example.gov.cn/auth", "token_endpoint": "https://id.example.gov.cn/token"})
    sent: dict[str, str] = {}

    def token_endpoint(url: str, fields: dict[str, str], timeout: float = 10) -> tuple[int, Any]:
        sent.update(fields, url=url)
        return 200, {"access_token": "header.payload.signature", "token_type": "Bearer"}

    monkeypatch.setattr(oidc, "http_form", token_endpoint)
    monkeypatch.setattr(oidc, "verify", lambda token: {"sub": "staff:1", "role": "school", "school": "SC1",
                                                       "city": None, "county": None, "exp": 4102444800})
    client = Client(ConsoleApp())
    page = client.get("/signin").get_data(as_text=True)
    assert 'href="/signin/oidc"' in page and 'name="role"' not in page  # production: no development form
    started = client.get("/signin/oidc")
    target = urllib.parse.urlsplit(started.headers["Location"])
    query = dict(urllib.parse.parse_qsl(target.query))
    assert target.netloc == "id.example.gov.cn" and target.path == "/auth"
    assert query["redirect_uri"] == "https://console.example.gov.cn/signin/callback"
    assert query["code_challenge_method"] == "S256" and query["client_id"] == "console"
    assert client.get("/signin/callback?code=c1&state=forged").status_code == 400
    done = client.get(f"/signin/callback?code=c1&state={query['state']}")
    assert done.status_code == 303 and done.headers["Location"] == "/school"
    assert "HttpOnly" in done.headers["Set-Cookie"] and "Secure" in done.headers["Set-Cookie"]
    digest = hashlib.sha256(sent["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).decode().rstrip("=") == query["code_challenge"]
    assert (sent["url"], sent["code"], sent["grant_type"]) == ("https://id.example.gov.cn/token", "c1",
                                                                "authorization_code")
    assert client.get(f"/signin/callback?code=c1&state={query['state']}").status_code == 400  # used once


CASE = {"case_id": "A0001.2026-2027", "student_id": "A0001", "school_id": "SC1", "school_year": "2026-2027",
        "stage": "vocational", "route": "application", "household_registration": "in_province", "tier": None,
        "status": "determined", "application": {}, "comparison": [], "assessment": {
            "policy_version": "1", "score": 61, "suggested_level": "difficult"},
        "reviews": [{"review_id": "R1", "kind": "democratic_review", "proposed_level": "difficult",
                     "held_on": "2026-11-20"}],
        "determinations": [{"determination_id": "D1", "level": "difficult", "categories": [7],
                            "effective_semester": "2026-autumn", "effective_month": None,
                            "methods": [], "trigger": "initial"}],
        "changes": [], "objections": [], "revocation": None}


def test_hardship_case_steps_from_the_school_pages(client: Client, services: FakeServices) -> None:
    """Each step posts to its hardship route with the case id from the form (never in a URL of
    the console), the case's state is shown, the notice downloads; another school gets 403."""
    import base64

    csrf = sign_in(client, "school", school="SC1")
    recorded = {"case_id": CASE["case_id"], "event_id": "E1", "position": 9, "status": "opened"}
    services.answers.update({
        ("GET", "/schools/SC1/cases"): (200, {
            "school_id": "SC1", "school_year": "2026-2027", "notice_issued": True, "archived": False,
            "publications": [{"notice_id": "N-1", "published_on": "2026-11-25",
                              "objections_until": "2026-11-30", "cases": 1}],
            "cases": [{"case_id": CASE["case_id"], "student_id": "A0001", "stage": "vocational",
                       "status": "determined", "level": "difficult"}]}),
        ("POST", "/cases"): (201, recorded),
        ("POST", f"/cases/{CASE['case_id']}/determination"): (201, {**recorded, "status": "determined"}),
        ("POST", f"/cases/{CASE['case_id']}/reviews"): (201, recorded),
        ("POST", f"/cases/{CASE['case_id']}/assessment"): (201, recorded),
        ("GET", f"/cases/{CASE['case_id']}"): (200, CASE),
        ("GET", "/schools/SC1/public-notices/N-1/pdf"): (200, {
            "filename": "公示-SC1-N-1.pdf", "media_type": "application/pdf",
            "content_base64": base64.b64encode(b"%PDF-1.4").decode(), "rows": 1}),
    })
    page = client.get("/schools/SC1/hardship/steps?school_year=2026-2027").get_data(as_text=True)
    assert "/schools/SC1/hardship/notices/N-1/pdf?school_year=2026-2027" in page
    assert "A0001" not in "".join(p.split('"')[0] for p in page.split('href="')[1:])  # no student in links
    for control in page.split("<input ")[1:] + page.split("<select ")[1:]:
        name = control.split('id="', 1)[1].split('"', 1)[0] if 'id="' in control.split(">")[0] else None
        if name and 'type="hidden"' not in control.split(">")[0]:
            assert f'for="{name}"' in page, name  # every visible control has its label
    year = {"csrf": csrf, "school_year": "2026-2027"}
    opened = client.post("/schools/SC1/hardship/steps", data={
        **year, "action": "open", "student_id": "A0001", "stage": "vocational", "registration": "in_province",
        "categories": "7", "members": "4", "income": "12000", "housing": "rent"})
    assert opened.status_code == 200
    assert services.calls[-3][:2] == ("POST", "/cases")
    assert services.calls[-3][3] == {"student_id": "A0001", "school_year": "2026-2027", "stage": "vocational",
                                     "household_registration": "in_province", "claims": [{"category": 7}],
                                     "family": {"members": 4, "yearly_income_yuan": 12000, "housing": "rent"}}
    client.post("/schools/SC1/hardship/steps", data={
        **year, "action": "review", "case_id": CASE["case_id"], "kind": "democratic_review",
        "method": "class_vote", "held_on": "2026-11-20", "by": "王老师，李老师", "votes_for": "30",
        "votes_against": "", "findings": "同意", "proposed_level": "difficult"})
    assert [c[3] for c in services.calls if c[1].endswith("/reviews")][-1] == {
        "kind": "democratic_review", "held_on": "2026-11-20", "by": ["王老师", "李老师"],
        "method": "class_vote", "votes_for": 30, "findings": "同意", "proposed_level": "difficult"}
    shown = client.post("/schools/SC1/hardship/steps", data={
        **year, "action": "determine", "case_id": CASE["case_id"], "level": "difficult", "categories": "7",
        "semester": "2026-autumn", "trigger": "initial"})
    text = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "determined" in text and "61" in text and "困难" in text
    assert [c[3] for c in services.calls if c[1].endswith("/determination")][-1] == {
        "level": "difficult", "categories": [7], "effective_semester": "2026-autumn", "trigger": "initial"}
    steps = {
        "change": ({"reported_on": "2026-12-01", "description": "父亲失业"}, "/changes"),
        "objection": ({"notice_id": "N-1", "filed_on": "2026-11-27", "text": "等级偏低"}, "/objections"),
        "objection_review": ({"objection_id": "O-9", "outcome": "upheld", "reason": "核实",
                              "level": "especially_difficult", "semester": ""}, "/objections/O-9/review"),
        "revoke": ({"found_on": "2026-12-02", "reason": "虚假材料"}, "/revocation"),
    }
    for action, (fields, suffix) in steps.items():
        services.answers[("POST", f"/cases/{CASE['case_id']}{suffix}")] = (201, recorded)
        answer = client.post("/schools/SC1/hardship/steps", data={**year, "action": action,
                                                                  "case_id": CASE["case_id"], **fields})
        assert answer.status_code == 200 and "E1" in answer.get_data(as_text=True), action
        sent = [c for c in services.calls if c[0] == "POST"][-1]
        assert sent[1] == f"/cases/{CASE['case_id']}{suffix}", action
        expected = {k: v for k, v in fields.items() if k not in ("objection_id", "semester")}
        assert sent[3] == ({"outcome": "upheld", "reason": "核实", "level": "especially_difficult"}
                           if action == "objection_review" else expected), action
    bad = client.post("/schools/SC1/hardship/steps", data={
        **year, "action": "assess", "case_id": CASE["case_id"], "minimum_living": "x"})
    assert bad.status_code == 200 and "INVALID_REQUEST" in bad.get_data(as_text=True)
    pdf = client.get("/schools/SC1/hardship/notices/N-1/pdf?school_year=2026-2027")
    assert pdf.status_code == 200 and pdf.get_data() == b"%PDF-1.4"
    services.answers[("POST", "/schools/SC1/archive")] = (201, {"archive_id": "AR1", "cases": 1,
                                                                "event_id": "E9"})
    services.answers[("GET", "/schools/SC1/archive")] = (200, {
        "filename": "备案-SC1.xlsx", "media_type": "x", "content_base64": base64.b64encode(b"PK").decode(),
        "rows": 1})
    archived = client.post("/schools/SC1/hardship/steps", data={**year, "action": "archive",
                                                                "archived_on": "2026-12-05"})
    assert archived.status_code == 200 and "AR1" in archived.get_data(as_text=True)
    assert services.calls[-2][1:4:2] == ("/schools/SC1/archive", {"school_year": "2026-2027",
                                                                  "archived_on": "2026-12-05"})
    assert client.get("/schools/SC1/hardship/archive?school_year=2026-2027").get_data() == b"PK"
    assert client.get("/schools/SC1/hardship/archive?school_year=bad").status_code == 400
    before = len(services.calls)
    assert client.get("/schools/SC2/hardship/steps").status_code == 403
    assert client.post("/schools/SC2/hardship/steps", data={**year, "action": "archive"}).status_code == 403
    assert len(services.calls) == before


PLACEMENT = {"placement_id": "P1", "student_id": "A0001", "school_id": "SC1", "grade": 2,
             "class_name": "会计2班",
             "company": "宇通客车", "location": "郑州市管城区宇通路6号", "supervisor": "王老师",
             "supervisor_contact_masked": "138****5678", "starts_on": "2026-12-01", "ends_on": "2027-03-31",
             "filed_on": "2026-11-26", "remark": None, "ended_on": None, "name_masked": "张*",
             "id_number_masked": "110105********002X"}


def test_a_school_updates_and_ends_a_placement(client: Client, services: FakeServices) -> None:
    csrf = sign_in(client, "school", school="SC1")
    home = client.get("/schools/SC1").get_data(as_text=True)
    assert 'href="/schools/SC1/placements"' in home and 'href="/schools/SC1/internships"' in home
    assert "暂无顶岗实习记录" in client.get("/schools/SC1/placements").get_data(as_text=True)
    assert services.calls[-1][:2] == ("GET", "/schools/SC1/placements")
    services.answers[("GET", "/schools/SC1/placements")] = (200, {
        "school_id": "SC1", "month": None, "placements": [
            PLACEMENT, {**PLACEMENT, "placement_id": "P2", "student_id": "A0002", "ended_on": "2026-12-20"}]})
    listed = client.get("/schools/SC1/placements").get_data(as_text=True)
    row = listed.split('id="placement-1"', 1)[1].split("</tr>", 1)[0]
    assert all(text in row for text in ("A0001", "张*", "宇通客车", "王老师 138****5678", "2027-03-31"))
    assert row.count('name="placement_id" value="P1"') == 2  # its update form and its end form
    ended = listed.split('id="placement-2"', 1)[1].split("</tr>", 1)[0]
    assert "2026-12-20" in ended and 'name="placement_id"' not in ended  # ended: no more forms
    assert 'for="u1-supervisor"' in row and 'id="u1-supervisor"' in row and 'for="e1-ended_on"' in row
    services.answers[("POST", "/placements/P1/update")] = (200, {"placement_id": "P1",
                                                                 "supervisor": "李老师"})
    page = client.post("/schools/SC1/placements", data={
        "csrf": csrf, "action": "update", "placement_id": "P1", "supervisor": "李老师", "company": ""})
    assert page.status_code == 200 and "李老师" in page.get_data(as_text=True)
    assert services.calls[-2][:2] == ("POST", "/placements/P1/update")
    assert services.calls[-2][3] == {"supervisor": "李老师"}  # only what was filled in
    assert services.calls[-1][:2] == ("GET", "/schools/SC1/placements")  # then the list as it now stands
    client.post("/schools/SC1/placements", data={"csrf": csrf, "action": "end", "placement_id": "P1",
                                                 "ended_on": "2026-12-01"})
    assert services.calls[-2][1:] == ("/placements/P1/end", services.calls[-2][2], {"ended_on": "2026-12-01"})


FILING = {"filing_id": "SC1-2026-11", "school_id": "SC1", "month": "2026-11", "filed_on": "2026-11-20",
          "authority_level": "county", "signed": False, "status": "filed", "students": [
              {"student_id": "A0002", "class_name": "会计2班", "name_masked": "李*",
               "objected_on": "2026-11-18", "objection_ids": ["O1"], "reason": "病假", "outcome": "approved",
               "outcome_zh": "申诉成立",
               "outcome_en": "Appeal approved", "ruling_reason": "假条属实"}]}


def test_an_appeal_filing_in_detail_for_the_school_and_the_authority(services: FakeServices) -> None:
    services.answers[("GET", "/appeals/filings/SC1-2026-11")] = (200, FILING)
    services.answers[("POST", "/appeals/filings/SC1-2026-11/signed")] = (201, {"filing_id": "SC1-2026-11",
                                                                               "scan_ref": "s1"})
    school = Client(ConsoleApp())
    csrf = sign_in(school, "school", school="SC1")
    assert school.get("/schools/SC1/appeals/filing?month=2026-11").headers["Location"] == (
        "/schools/SC1/appeals/filings/SC1-2026-11")
    page = school.get("/schools/SC1/appeals/filings/SC1-2026-11").get_data(as_text=True)
    assert all(text in page for text in ("李*", "申诉成立", "假条属实", "尚未上传", 'for="f-scan"',
                                         "/schools/SC1/appeals/SC1-2026-11/letter"))
    from io import BytesIO

    signed = school.post("/schools/SC1/appeals/filings/SC1-2026-11", content_type="multipart/form-data",
                         data={"csrf": csrf, "scan": (BytesIO(b"\xff\xd8\xffscan"), "scan.jpg")})
    assert signed.status_code == 200 and "s1" in signed.get_data(as_text=True)
    assert services.calls[-2][1] == "/appeals/filings/SC1-2026-11/signed"
    assert school.get("/schools/SC2/appeals/filings/SC2-2026-11").status_code == 403
    assert school.get("/schools/SC1/appeals/filing?month=bad").status_code == 400
    county = Client(ConsoleApp())
    county_csrf = sign_in(county, "county", city="驻马店市", county="驿城区")
    county.get("/lang/en")
    page = county.get("/schools/SC1/appeals/filings/SC1-2026-11")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Appeal approved" in text and 'for="f-scan"' not in text
    refused = county.post("/schools/SC1/appeals/filings/SC1-2026-11", data={"csrf": county_csrf})
    assert refused.status_code == 403 and "ROLE_FORBIDDEN" in refused.get_data(as_text=True)
    assert county.get("/schools/SC9/appeals/filings/SC1-2026-11").status_code == 404  # path and filing agree


def test_the_signed_scan_of_a_filing_is_linked_once_attached_and_shown(services: FakeServices) -> None:
    services.answers[("GET", "/appeals/filings/SC1-2026-11")] = (200, FILING)
    school = Client(ConsoleApp())
    sign_in(school, "school", school="SC1")
    link = "/schools/SC1/appeals/filings/SC1-2026-11/signed"
    assert link not in school.get("/schools/SC1/appeals/filings/SC1-2026-11").get_data(as_text=True)
    services.answers[("GET", "/appeals/filings/SC1-2026-11")] = (200, {**FILING, "signed": True})
    page = school.get("/schools/SC1/appeals/filings/SC1-2026-11").get_data(as_text=True)
    assert f'href="{link}"' in page and "查看签字盖章扫描件" in page
    jpeg = b"\xff\xd8\xff\xe0scan"
    services.answers[("GET", "/appeals/filings/SC1-2026-11/signed")] = (200, {
        "filing_id": "SC1-2026-11", "filename": "申诉函签字盖章件-SC1-2026-11.jpg",
        "content_type": "image/jpeg", "content_base64": base64.b64encode(jpeg).decode()})
    shown = school.get(link)
    assert (shown.status_code, shown.headers["Content-Type"], shown.data) == (200, "image/jpeg", jpeg)
    assert shown.headers["Cache-Control"] == "no-store" and "Content-Disposition" not in shown.headers
    assert services.calls[-1][:2] == ("GET", "/appeals/filings/SC1-2026-11/signed")
    services.answers[("GET", "/appeals/filings/SC1-2026-11/signed")] = (200, {
        "filing_id": "SC1-2026-11", "filename": "申诉函签字盖章件-SC1-2026-11.bin",
        "content_type": "application/octet-stream", "content_base64": base64.b64encode(b"GIF89a").decode()})
    saved = school.get(link)
    assert saved.headers["Content-Type"] == "application/octet-stream" and saved.data == b"GIF89a"
    assert saved.headers["Content-Disposition"].startswith("attachment;")
    services.answers[("GET", "/appeals/filings/SC1-2026-11/signed")] = (403, {
        "error": "NOT_SAME_LEVEL", "message": "this filing is ruled by the county authority"})
    city = Client(ConsoleApp())
    sign_in(city, "city", city="驻马店市")
    refused = city.get(link)
    assert refused.status_code == 403 and "NOT_SAME_LEVEL" in refused.get_data(as_text=True)
    before = len(services.calls)
    assert school.get("/schools/SC2/appeals/filings/SC2-2026-11/signed").status_code == 403  # not its school
    assert len(services.calls) == before


def test_a_school_registers_a_student_and_records_one_leaving(client: Client, services: FakeServices) -> None:
    csrf = sign_in(client, "school", school="SC1")
    assert 'href="/schools/SC1/students"' in client.get("/schools/SC1").get_data(as_text=True)
    services.answers[("POST", "/students")] = (201, {"student_id": "A0009",
                                                     "id_number_masked": "110105********002X"})
    page = client.post("/schools/SC1/students", data={
        "csrf": csrf, "action": "register", "student_id": "A0009", "name": "张三",
        "id_number": "11010520080101002X", "grade": "2", "class_name": "会计2班", "major": "会计",
        "enrolment_year": "2025", "season": "autumn",
        "proposed_aid": "on"}).get_data(as_text=True)
    assert "110105********002X" in page and "11010520080101002X" not in page and "张三" not in page
    assert services.calls[-1][3] == {
        "student_id": "A0009", "school_id": "SC1", "name": "张三", "id_number": "11010520080101002X",
        "grade": 2, "class_name": "会计2班", "major": "会计", "enrolment_year": 2025,
        "enrolment_season": "autumn",
        "proposed_aid": True}
    services.answers[("POST", "/students/A0009/leave")] = (201, {
        "student_id": "A0009", "school_id": "SC1", "reason": "graduated", "left_on": "2026-11-20"})
    client.post("/schools/SC1/students", data={"csrf": csrf, "action": "leave", "student_id": "A0009",
                                               "reason": "graduated", "left_on": "2026-11-20",
                                               "to_school_id": ""})
    assert services.calls[-1][1] == "/students/A0009/leave"
    assert services.calls[-1][3] == {"reason": "graduated", "left_on": "2026-11-20"}
    bad = client.post("/schools/SC1/students", data={"csrf": csrf, "action": "register", "grade": "二"})
    assert bad.status_code == 200 and "INVALID_REQUEST" in bad.get_data(as_text=True)
    assert client.post("/schools/SC2/students", data={"csrf": csrf}).status_code == 403
