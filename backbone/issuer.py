"""The embedded development identity provider (``aid auth``): one machine's stand-in for the
province's OpenID Connect server.

- ``aid auth init`` creates an ES256 signing key (``AID_AUTH_KEY_FILE``, mode 0600). Its key id
  starts with ``dev-``: services refuse such keys when ``AID_ENV=production``.
- ``aid auth serve`` publishes ``/.well-known/openid-configuration`` and the JWKS, and answers
  ``POST /token`` with the OAuth 2 client-credentials grant for terminals (``client_id`` is the
  terminal id, ``client_secret`` the secret operations received when registering it). A revoked
  terminal gets no token, and services refuse the tokens it already has (they read
  ``TerminalRevoked`` from the log).
- ``aid auth token --role school --school 4101000001`` prints a token for a person (staff,
  authority, auditor, operations) or a student's app; a real deployment gets these from its
  identity provider's login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backbone.auth import DEV_KEY_PREFIX, ROLES, principal_from_claims

log = logging.getLogger("aid.issuer")
TERMINAL_TOKEN_SECONDS = 900


@dataclass(frozen=True)
class SigningKey:
    private: ec.EllipticCurvePrivateKey
    kid: str

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        jwk.update(kid=self.kid, use="sig", alg="ES256")
        return {"keys": [jwk]}


def _kid(public: ec.EllipticCurvePublicKey) -> str:
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return DEV_KEY_PREFIX + base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:12]).decode().rstrip("=")


def load_or_create_key(path: Path) -> SigningKey:
    """The signing key in ``path``, created (0600, parent 0700) when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} does not hold an EC private key")
    return SigningKey(loaded, _kid(loaded.public_key()))


def mint(key: SigningKey, issuer: str, audience: str, claims: dict[str, Any], ttl: int = 3600) -> str:
    """A signed access token with ``claims`` (``sub``, ``role`` and the area claims)."""
    principal_from_claims(claims)  # refuse to mint what no service would accept
    now = int(time.time())
    body = {**claims, "iss": issuer, "aud": audience, "iat": now, "nbf": now, "exp": now + ttl,
            "jti": secrets.token_hex(8)}
    return jwt.encode(body, key.private, algorithm="ES256", headers={"kid": key.kid})


def person_claims(role: str, sub: str | None = None, **area: str | None) -> dict[str, Any]:
    if role not in ROLES:
        raise ValueError(f"role is one of {', '.join(ROLES)}")
    claims: dict[str, Any] = {k: v for k, v in area.items() if v}
    claims["role"] = role
    claims["sub"] = sub or ":".join([role, *(str(v) for v in claims.values() if v != role)])
    return claims


def secret_hash(secret: str) -> str:
    """Terminal secrets are 256-bit random strings: a plain SHA-256 is enough to store them."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_terminal_secret() -> str:
    return secrets.token_urlsafe(32)


class TerminalCredentials:
    """The ``terminal_credentials`` table (written by enrolment when operations register a
    terminal; read here). A revoked terminal keeps its row with ``revoked_at`` set."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def lookup(self, terminal_id: str) -> tuple[str, str, bool] | None:
        import psycopg

        with psycopg.connect(self.database_url, connect_timeout=5) as conn:
            row = conn.execute("SELECT school_id, secret_hash, revoked_at IS NOT NULL"
                               " FROM terminal_credentials WHERE terminal_id = %s",
                               (terminal_id,)).fetchone()
        return (str(row[0]), str(row[1]), bool(row[2])) if row else None


def terminal_token(key: SigningKey, issuer: str, audience: str, credentials: TerminalCredentials,
                   client_id: str, client_secret: str) -> dict[str, Any]:
    """The OAuth 2 token response for a terminal, or ``{"error": ...}`` (RFC 6749 5.2)."""
    found = credentials.lookup(client_id) if 0 < len(client_id) <= 64 else None
    if found is None or not hmac.compare_digest(found[1], secret_hash(client_secret)):
        return {"error": "invalid_client", "error_description": "unknown terminal or wrong secret"}
    school, _, revoked = found
    if revoked:
        return {"error": "invalid_client", "error_description": "the terminal's credential is revoked"}
    token = mint(key, issuer, audience, {"sub": f"terminal:{client_id}", "role": "terminal",
                                         "terminal": client_id, "school": school}, TERMINAL_TOKEN_SECONDS)
    return {"access_token": token, "token_type": "Bearer", "expires_in": TERMINAL_TOKEN_SECONDS}


def make_server(host: str, port: int, key: SigningKey, issuer: str, audience: str,
                credentials: TerminalCredentials) -> ThreadingHTTPServer:
    discovery = {"issuer": issuer, "jwks_uri": f"{issuer}/.well-known/jwks.json",
                 "token_endpoint": f"{issuer}/token", "grant_types_supported": ["client_credentials"],
                 "id_token_signing_alg_values_supported": ["ES256"]}

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            if path == "/.well-known/jwks.json":
                self._send(200, key.jwks())
            elif path == "/.well-known/openid-configuration":
                self._send(200, discovery)
            elif path == "/health":
                self._send(200, {"status": "ok"})
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path.split("?", 1)[0] != "/token":
                self._send(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > 4096:
                self._send(413, {"error": "invalid_request", "error_description": "body too large"})
                return
            raw = self.rfile.read(length).decode("utf-8", "replace")
            if (self.headers.get("Content-Type") or "").startswith("application/json"):
                try:
                    form = {k: str(v) for k, v in dict(json.loads(raw or "{}")).items()}
                except (ValueError, TypeError):
                    form = {}
            else:
                form = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
            basic = self.headers.get("Authorization", "")
            if basic.startswith("Basic "):
                try:
                    user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
                    form.setdefault("client_id", urllib.parse.unquote(user))
                    form.setdefault("client_secret", urllib.parse.unquote(password))
                except ValueError:
                    pass
            if form.get("grant_type") != "client_credentials":
                self._send(400, {"error": "unsupported_grant_type"})
                return
            answer = terminal_token(key, issuer, audience, credentials, form.get("client_id", ""),
                                    form.get("client_secret", ""))
            self._send(401 if "error" in answer else 200, answer)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - no request values in logs
            log.debug("issuer %s", self.command)

    return ThreadingHTTPServer((host, port), Handler)
