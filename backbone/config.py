"""The one place that reads configuration (environment variables, ``AID_*``).

Development defaults point at the local PostgreSQL and RabbitMQ. With ``AID_ENV=production``
start-up fails fast when a secret is missing or still has its development value.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backbone.auth import AuthSettings

DEV_SECRET = "00" * 32
DEV_HASH_KEY = "dev-id-hash-key"
DEV_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

SERVICE_PORTS: dict[str, tuple[int, int]] = {
    # name: (metrics/health port, HTTP API port)
    "relay": (9100, 0),
    "enrolment": (9101, 8001),
    "spotcheck": (9102, 8002),
    "facematch": (9103, 8003),
    "eligibility": (9104, 8004),
    "appeals": (9105, 8005),
    "hardship": (9106, 8006),
}


class ConfigError(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    env: str
    database_url: str
    amqp_url: str
    secret_key: bytes
    id_hash_key: bytes
    blob_dir: Path
    exchange: str = "aid.events"
    dead_letter_exchange: str = "aid.dlx"
    #: ``classic`` (one broker) or ``quorum`` (a RabbitMQ cluster): type of the work and dead-letter queues
    queue_type: str = "classic"
    #: capture channels whose bursts may come without a liveness challenge (old clients; they get
    #: the weaker unchallenged check): ``AID_FACE_UNCHALLENGED``, comma-separated ``app``,
    #: ``terminal``; default none in production, both in development and tests
    face_unchallenged: tuple[str, ...] = ()

    @property
    def production(self) -> bool:
        return self.env == "production"


def load(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    mode = env.get("AID_ENV", "development")
    secret_hex = env.get("AID_SECRET_KEY", DEV_SECRET)
    try:
        secret = bytes.fromhex(secret_hex)
    except ValueError as exc:
        raise ConfigError("AID_SECRET_KEY must be 64 hex characters (a 256-bit AES key)") from exc
    if len(secret) != 32:
        raise ConfigError("AID_SECRET_KEY must be 64 hex characters (a 256-bit AES key)")
    hash_key = env.get("AID_ID_HASH_KEY", DEV_HASH_KEY)
    if mode == "production":
        if secret_hex == DEV_SECRET or "AID_SECRET_KEY" not in env:
            raise ConfigError("AID_SECRET_KEY is missing or has its development value")
        if hash_key == DEV_HASH_KEY or "AID_ID_HASH_KEY" not in env:
            raise ConfigError("AID_ID_HASH_KEY is missing or has its development value")
    return Settings(
        env=mode,
        database_url=env.get("AID_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/studentaid"),
        amqp_url=_amqp_url(env, mode == "production"),
        secret_key=secret,
        id_hash_key=hash_key.encode(),
        blob_dir=Path(env.get("AID_BLOB_DIR", "var/blobs")),
        exchange=env.get("AID_EXCHANGE", "aid.events"),
        dead_letter_exchange=env.get("AID_DLX", "aid.dlx"),
        queue_type=_queue_type(env),
        face_unchallenged=_face_unchallenged(env, mode == "production"),
    )


def _face_unchallenged(env: dict[str, str], production: bool) -> tuple[str, ...]:
    value = env.get("AID_FACE_UNCHALLENGED", "" if production else "app,terminal")
    channels = tuple(sorted({c.strip() for c in value.split(",") if c.strip()}))
    if set(channels) - {"app", "terminal"}:
        raise ConfigError("AID_FACE_UNCHALLENGED lists channels: app, terminal (comma-separated)")
    return channels


QUEUE_TYPES = ("classic", "quorum")


def _queue_type(env: dict[str, str]) -> str:
    """``AID_QUEUE_TYPE``: ``classic`` (default, a single broker) or ``quorum`` (a cluster)."""
    value = env.get("AID_QUEUE_TYPE", "classic")
    if value not in QUEUE_TYPES:
        raise ConfigError(f"AID_QUEUE_TYPE must be one of {', '.join(QUEUE_TYPES)}")
    return value


def _amqp_url(env: dict[str, str], production: bool) -> str:
    """``AID_AMQP_URL`` (broker address and vhost), with the process's own broker account
    ``AID_AMQP_USER`` / ``AID_AMQP_PASSWORD`` when given (they replace the URL's credentials)."""
    url = env.get("AID_AMQP_URL", DEV_AMQP_URL)
    user, password = env.get("AID_AMQP_USER"), env.get("AID_AMQP_PASSWORD")
    if (user is None) != (password is None):
        raise ConfigError("AID_AMQP_USER and AID_AMQP_PASSWORD go together")
    parts = urllib.parse.urlsplit(url)
    if user is not None and password is not None:
        host = parts.netloc.rpartition("@")[2]
        quoted = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
        url = urllib.parse.urlunsplit(parts._replace(netloc=f"{quoted}@{host}"))
        parts = urllib.parse.urlsplit(url)
    if production and (parts.username == "guest" or (parts.username and not parts.password)
                       or parts.password == "guest"):
        raise ConfigError("the broker account is guest or has no password: set AID_AMQP_USER and "
                          "AID_AMQP_PASSWORD (the process's own account, see backbone/topology.py)")
    return url


@dataclass(frozen=True)
class BrokerSetup:
    """What ``python -m backbone.topology setup`` needs: the management API with an
    administrator's credentials, the vhost, and the password of each process's broker user."""

    admin_url: str
    admin_user: str
    vhost: str
    passwords: dict[str, str]


def broker_setup(environ: dict[str, str] | None = None) -> BrokerSetup:
    """``AID_BROKER_ADMIN_URL`` (``http://user:password@host:15672``, default the local guest),
    the vhost of ``AID_AMQP_URL``, and ``AID_AMQP_PASSWORD_<PROCESS>`` for every process of
    :data:`SERVICE_PORTS` (``AID_AMQP_PASSWORD_RELAY`` ...): required, never empty."""
    env = os.environ if environ is None else environ
    admin_url = env.get("AID_BROKER_ADMIN_URL", "http://guest:guest@127.0.0.1:15672")
    path = urllib.parse.urlsplit(env.get("AID_AMQP_URL", DEV_AMQP_URL)).path
    vhost = urllib.parse.unquote(path[1:]) if path not in ("", "/") else "/"
    passwords = {}
    for process in SERVICE_PORTS:
        value = env.get(f"AID_AMQP_PASSWORD_{process.upper()}", "")
        if not value:
            raise ConfigError(f"AID_AMQP_PASSWORD_{process.upper()} is missing or empty")
        passwords[process] = value
    admin_user = urllib.parse.unquote(urllib.parse.urlsplit(admin_url).username or "guest")
    return BrokerSetup(admin_url=admin_url, admin_user=admin_user, vhost=vhost, passwords=passwords)


def ports(service: str, environ: dict[str, str] | None = None) -> tuple[int, int]:
    env = os.environ if environ is None else environ
    metrics, api = SERVICE_PORTS.get(service, (0, 0))
    return int(env.get("AID_METRICS_PORT", metrics)), int(env.get("AID_API_PORT", api))


def now() -> datetime:
    """The service clock. Outside production, ``AID_CLOCK_OFFSET_SECONDS`` shifts it, so tests
    and demos can run a 10:00-15:00 check at any hour of the day."""
    production = os.environ.get("AID_ENV") == "production"
    offset = 0.0 if production else float(os.environ.get("AID_CLOCK_OFFSET_SECONDS", "0"))
    return datetime.now(UTC) + timedelta(seconds=offset)


DEV_ISSUER = "http://127.0.0.1:9000"


def auth_settings(environ: dict[str, str] | None = None) -> AuthSettings:
    """Where tokens come from: the province's OIDC issuer, or the embedded ``aid auth`` one.

    ``AID_AUTH_ISSUER`` (the ``iss`` claim), ``AID_AUTH_JWKS_URL`` (default: the issuer's
    ``/.well-known/jwks.json``), ``AID_AUTH_AUDIENCE`` (``studentaid``), ``AID_AUTH_LEEWAY_SECONDS``
    (30) and ``AID_AUTH_JWKS_CACHE_SECONDS`` (300). In production the embedded issuer's default
    address and its development keys are refused.
    """
    from backbone.auth import AuthSettings

    env = os.environ if environ is None else environ
    production = env.get("AID_ENV", "development") == "production"
    issuer = env.get("AID_AUTH_ISSUER", DEV_ISSUER).rstrip("/")
    if production and ("AID_AUTH_ISSUER" not in env or issuer == DEV_ISSUER):
        raise ConfigError("AID_AUTH_ISSUER must name the province's identity provider in production")
    try:
        leeway = int(env.get("AID_AUTH_LEEWAY_SECONDS", "30"))
        cache = int(env.get("AID_AUTH_JWKS_CACHE_SECONDS", "300"))
    except ValueError as exc:
        raise ConfigError("AID_AUTH_LEEWAY_SECONDS and AID_AUTH_JWKS_CACHE_SECONDS"
                          " are whole seconds") from exc
    return AuthSettings(issuer=issuer,
                        jwks_url=env.get("AID_AUTH_JWKS_URL", f"{issuer}/.well-known/jwks.json"),
                        audience=env.get("AID_AUTH_AUDIENCE", "studentaid"), leeway_seconds=leeway,
                        jwks_cache_seconds=cache, allow_dev_keys=not production)


def auth_key_file(environ: dict[str, str] | None = None) -> Path:
    """The embedded issuer's signing key (``AID_AUTH_KEY_FILE``, default ``var/auth/issuer-key.pem``)."""
    env = os.environ if environ is None else environ
    return Path(env.get("AID_AUTH_KEY_FILE", "var/auth/issuer-key.pem"))
