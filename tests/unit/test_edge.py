"""The edge's pure parts: token verification against a JWKS (served from a file here; the
integration tests use the real issuer process), the field types, and area rules."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from backbone.auth import AuthError, AuthSettings, Principal, TokenVerifier, principal_from_claims
from backbone.edge import Call, Route
from backbone.errors import Forbidden
from backbone.fields import Day, Id, Image, Instant, Model, Month, Name
from backbone.issuer import SigningKey, load_or_create_key, mint, person_claims

ISSUER, AUDIENCE = "http://issuer.test", "studentaid"


@pytest.fixture()
def key(tmp_path: Path) -> SigningKey:
    return load_or_create_key(tmp_path / "auth" / "key.pem")


def verifier_for(key: SigningKey, tmp_path: Path, **over: Any) -> TokenVerifier:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(key.jwks()))
    settings = AuthSettings(issuer=ISSUER, jwks_url=jwks.as_uri(), audience=AUDIENCE, **over)
    return TokenVerifier(settings)


def test_a_token_of_the_issuer_gives_its_role_and_area(key: SigningKey, tmp_path: Path) -> None:
    token = mint(key, ISSUER, AUDIENCE, person_claims("county", city="驻马店市", county="驿城区"))
    principal = verifier_for(key, tmp_path).verify(token)
    assert principal.role == "county" and principal.county == "驿城区" and principal.city == "驻马店市"
    assert principal.covers_area("驻马店市", "驿城区") and not principal.covers_area("驻马店市", "西平县")


def test_the_key_file_is_private(key: SigningKey, tmp_path: Path) -> None:
    assert (tmp_path / "auth" / "key.pem").stat().st_mode & 0o077 == 0
    assert key.kid.startswith("dev-")


@pytest.mark.parametrize(("change", "code"), [
    ({"aud": "another-system"}, "WRONG_AUDIENCE"),
    ({"iss": "http://evil.test"}, "WRONG_ISSUER"),
    ({"exp": int(time.time()) - 120}, "TOKEN_EXPIRED"),
])
def test_tokens_for_another_audience_issuer_or_time_are_refused(key: SigningKey, tmp_path: Path,
                                                                change: dict[str, Any], code: str) -> None:
    now = int(time.time())
    claims = {"sub": "x", "role": "province", "iss": ISSUER, "aud": AUDIENCE, "iat": now - 200,
              "exp": now + 60, **change}
    token = jwt.encode(claims, key.private, algorithm="ES256", headers={"kid": key.kid})
    with pytest.raises(AuthError) as err:
        verifier_for(key, tmp_path).verify(token)
    assert err.value.code == code


def test_clock_skew_within_the_leeway_is_accepted(key: SigningKey, tmp_path: Path) -> None:
    now = int(time.time())
    claims = {"sub": "x", "role": "auditor", "iss": ISSUER, "aud": AUDIENCE, "iat": now - 100,
              "exp": now - 10}
    token = jwt.encode(claims, key.private, algorithm="ES256", headers={"kid": key.kid})
    assert verifier_for(key, tmp_path, leeway_seconds=30).verify(token).role == "auditor"


def test_a_token_signed_by_another_key_is_refused(key: SigningKey, tmp_path: Path) -> None:
    other = load_or_create_key(tmp_path / "other.pem")
    forged = jwt.encode({"sub": "x", "role": "province", "iss": ISSUER, "aud": AUDIENCE,
                         "iat": int(time.time()), "exp": int(time.time()) + 60},
                        other.private, algorithm="ES256", headers={"kid": key.kid})
    with pytest.raises(AuthError) as err:
        verifier_for(key, tmp_path).verify(forged)
    assert err.value.code == "BAD_TOKEN"


def test_unsigned_and_garbage_tokens_are_refused(key: SigningKey, tmp_path: Path) -> None:
    unsigned = jwt.encode({"sub": "x", "role": "province"}, key=None, algorithm="none")  # type: ignore[arg-type]
    for token in (unsigned, "not-a-jwt", "", "a.b.c"):
        with pytest.raises(AuthError):
            verifier_for(key, tmp_path).verify(token)


def test_production_refuses_the_development_key(key: SigningKey, tmp_path: Path) -> None:
    token = mint(key, ISSUER, AUDIENCE, person_claims("province"))
    with pytest.raises(AuthError) as err:
        verifier_for(key, tmp_path, allow_dev_keys=False).verify(token)
    assert err.value.code == "DEV_KEY_REFUSED"


def test_production_configuration_refuses_the_embedded_issuer() -> None:
    from backbone.config import ConfigError, auth_settings

    with pytest.raises(ConfigError):
        auth_settings({"AID_ENV": "production"})
    assert not auth_settings({"AID_ENV": "production", "AID_AUTH_ISSUER": "https://id.gov.example"}).allow_dev_keys


@pytest.mark.parametrize(("claims", "missing"), [
    ({"sub": "t", "role": "terminal", "school": "SC1"}, "terminal"),
    ({"sub": "s", "role": "school"}, "school"),
    ({"sub": "a", "role": "student"}, "student"),
    ({"sub": "c", "role": "county", "county": "驿城区"}, "city"),
])
def test_a_role_without_its_area_claims_is_refused(claims: dict[str, Any], missing: str) -> None:
    with pytest.raises(AuthError, match=missing):
        principal_from_claims(claims)


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(AuthError):
        principal_from_claims({"sub": "x", "role": "admin"})


def _call(principal: Principal) -> Call:
    route = Route("GET", "/x", "x", "x", frozenset({principal.role}), None, None, None, 200, False, 1,
                  False, False)
    return Call(caller=principal, route=route)


def test_areas_school_staff_their_school_authorities_their_area() -> None:
    staff = _call(Principal("s", "school", school="SC1"))
    staff.require_school("SC1")
    with pytest.raises(Forbidden):
        staff.require_school("SC2")
    county = _call(Principal("c", "county", city="C1", county="K1"))
    county.require_school("SC9", city="C1", county="K1")
    with pytest.raises(Forbidden):
        county.require_school("SC9", city="C1", county="K2")
    city = _call(Principal("c", "city", city="C1"))
    city.require_school("SC9", city="C1", county="K2")
    with pytest.raises(Forbidden):
        city.require_school("SC9", city="C2", county="K2")
    app = _call(Principal("a", "student", student="S1"))
    app.require_student("S1", "SC1", "C1", "K1")
    with pytest.raises(Forbidden):
        app.require_student("S2", "SC1", "C1", "K1")


class Sample(Model):
    student_id: Id
    name: Name
    month: Month
    day: Day
    at: Instant
    flag: bool = False
    count: int = 1
    photo: Image | None = None


GOOD = {"student_id": "A0001", "name": "张三", "month": "2026-10", "day": "2026-10-22",
        "at": "2026-10-22T11:00:00+08:00"}


def parse(**over: Any) -> Sample:
    return Sample.model_validate_json(json.dumps({**GOOD, **over}), strict=True)


def test_a_good_request_parses() -> None:
    assert parse(flag=True, count=3).count == 3


@pytest.mark.parametrize("over", [
    {"flag": "false"}, {"count": "3"}, {"count": 1.5}, {"month": "2026-13"}, {"month": "0001-01"},
    {"day": "0001-01-01"}, {"day": "9999-12-31"}, {"at": "2026-10-22T11:00:00"}, {"name": "a\u0000b"},
    {"name": "x" * 65}, {"name": ""}, {"student_id": "../etc"}, {"photo": "not base64!"}, {"unknown": 1},
])
def test_bad_fields_are_refused(over: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse(**over)


def test_lone_surrogates_are_refused() -> None:
    raw = json.dumps({**GOOD, "name": "x"}).replace('"x"', '"\\ud800"')
    with pytest.raises(ValidationError):
        Sample.model_validate_json(raw, strict=True)


def test_images_arrive_as_bytes() -> None:
    assert parse(photo="aGVsbG8=").photo == b"hello"
