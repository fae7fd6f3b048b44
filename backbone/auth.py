"""Who is calling: bearer tokens (OpenID Connect access tokens, JWT) verified against the
issuer's JWKS, turned into a :class:`Principal` with a role and an area.

Library: PyJWT. It verifies signatures with ``cryptography`` (already a dependency for the
sealed photos), checks ``iss``, ``aud``, ``exp``, ``nbf`` and ``iat`` with a leeway, and its
``PyJWKClient`` fetches and caches the issuer's JWKS (keys by ``kid``, the set for
``AID_AUTH_JWKS_CACHE_SECONDS``) and refetches when a token names an unknown ``kid``, so key
rotation at the identity provider needs no restart. It is small, widely used and maintained;
authlib and joserfc do more (OAuth flows, JWE) than a resource server needs.

Any OIDC provider (Keycloak, the province's own) plugs in through configuration
(``AID_AUTH_ISSUER``, ``AID_AUTH_JWKS_URL``, ``AID_AUTH_AUDIENCE``); its tokens carry the claims
below (in Keycloak: protocol mappers). The embedded development issuer (``aid auth``,
``backbone/issuer.py``) issues the same claims.

Claims read:

=========  ===============================================================================
``sub``    who (a person's account, ``terminal:<id>``, ``student:<id>``)
``role``   one of :data:`ROLES`
``school`` the school of a school-staff member or a terminal
``city``   the city of a city or county authority
``county`` the county of a county authority
``student`` the one student an app token is bound to
``terminal`` the terminal id of a terminal token
=========  ===============================================================================
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Literal, get_args

import jwt

from contracts.envelope import Actor

Role = Literal["terminal", "school", "county", "city", "province", "auditor", "operations", "student"]
ROLES: tuple[str, ...] = get_args(Role)
AUTHORITIES = ("county", "city", "province")
ALGORITHMS = ["ES256", "RS256", "EdDSA"]
DEV_KEY_PREFIX = "dev-"  # key ids of the embedded development issuer; refused in production


class AuthError(Exception):
    """The credential is missing or not acceptable (HTTP 401)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Principal:
    """The verified caller. Every write records :meth:`actor`, never a name from the body."""

    subject: str
    role: Role
    school: str | None = None
    city: str | None = None
    county: str | None = None
    student: str | None = None
    terminal: str | None = None

    def actor(self) -> Actor:
        kind: Any = {"terminal": "terminal", "school": "school", "student": "student",
                     "operations": "operator", "auditor": "operator"}.get(self.role, "authority")
        return Actor(kind=kind, id=self.subject, school=self.school)

    @property
    def authority_level(self) -> str | None:
        return self.role if self.role in AUTHORITIES else None

    def covers_area(self, city: str, county: str) -> bool:
        """Is a school in ``city``/``county`` inside this authority's area?"""
        if self.role == "province":
            return True
        if self.role == "city":
            return self.city == city
        if self.role == "county":
            return self.city == city and self.county == county
        return False


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    role = claims.get("role")
    if role not in ROLES:
        raise AuthError("UNKNOWN_ROLE", "the token names no role this system knows")

    def text(name: str) -> str | None:
        value = claims.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not 0 < len(value) <= 64:
            raise AuthError("BAD_CLAIM", f"claim {name!r} is not a short string")
        return value

    principal = Principal(subject=str(text("sub")), role=role, school=text("school"), city=text("city"),
                          county=text("county"), student=text("student"), terminal=text("terminal"))
    needs = {"terminal": ("school", "terminal"), "school": ("school",), "student": ("student",),
             "city": ("city",), "county": ("city", "county")}.get(role, ())
    missing = [n for n in needs if getattr(principal, n) is None]
    if missing:
        raise AuthError("BAD_CLAIM", f"a {role} token needs the claims {missing}")
    return principal


@dataclass(frozen=True)
class AuthSettings:
    issuer: str
    jwks_url: str
    audience: str
    leeway_seconds: int = 30
    jwks_cache_seconds: int = 300
    allow_dev_keys: bool = True


class TokenVerifier:
    """Verifies bearer tokens; one per process (the JWKS cache is shared by all workers)."""

    def __init__(self, settings: AuthSettings, jwks_client: jwt.PyJWKClient | None = None) -> None:
        self.settings = settings
        self._client = jwks_client or jwt.PyJWKClient(settings.jwks_url, cache_keys=True,
                                                      lifespan=settings.jwks_cache_seconds, timeout=5)
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        if not token or len(token) > 8192:
            raise AuthError("BAD_TOKEN", "the bearer token is empty or too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError("BAD_TOKEN", "the bearer token is not a JWT") from exc
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise AuthError("BAD_TOKEN", "the token names no signing key (kid)")
        if kid.startswith(DEV_KEY_PREFIX) and not self.settings.allow_dev_keys:
            raise AuthError("DEV_KEY_REFUSED", "tokens of the development issuer are refused in production")
        try:
            with self._lock:  # PyJWKClient's cache is not safe for concurrent refresh
                key = self._client.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthError("JWKS_UNAVAILABLE", "the identity provider's keys cannot be fetched") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("UNKNOWN_KEY",
                            "the token is signed by a key the issuer does not publish") from exc
        try:
            claims = jwt.decode(
                token, key.key, algorithms=ALGORITHMS, audience=self.settings.audience,
                issuer=self.settings.issuer, leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("TOKEN_EXPIRED", "the token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("WRONG_AUDIENCE", "the token is not meant for this system") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("WRONG_ISSUER", "the token comes from another issuer") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("BAD_TOKEN", f"the token is not valid ({type(exc).__name__})") from exc
        return principal_from_claims(claims)


class RevocationCache:
    """A short-lived cache of "is this terminal still registered?" answers (seconds)."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._answers: dict[str, tuple[float, bool]] = {}

    def get(self, terminal_id: str) -> bool | None:
        hit = self._answers.get(terminal_id)
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            return None
        return hit[1]

    def put(self, terminal_id: str, active: bool) -> None:
        if len(self._answers) > 10_000:
            self._answers.clear()
        self._answers[terminal_id] = (time.monotonic(), active)
