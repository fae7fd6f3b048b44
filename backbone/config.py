"""The one place that reads configuration (environment variables, ``AID_*``).

Development defaults point at the local PostgreSQL and RabbitMQ. With ``AID_ENV=production``
start-up fails fast when a secret is missing or still has its development value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

DEV_SECRET = "00" * 32
DEV_HASH_KEY = "dev-id-hash-key"

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
        amqp_url=env.get("AID_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        secret_key=secret,
        id_hash_key=hash_key.encode(),
        blob_dir=Path(env.get("AID_BLOB_DIR", "var/blobs")),
        exchange=env.get("AID_EXCHANGE", "aid.events"),
        dead_letter_exchange=env.get("AID_DLX", "aid.dlx"),
    )


def ports(service: str, environ: dict[str, str] | None = None) -> tuple[int, int]:
    env = os.environ if environ is None else environ
    metrics, api = SERVICE_PORTS.get(service, (0, 0))
    return int(env.get("AID_METRICS_PORT", metrics)), int(env.get("AID_API_PORT", api))


def now() -> datetime:
    """The service clock. Outside production, ``AID_CLOCK_OFFSET_SECONDS`` shifts it, so tests
    and demos can run a 10:00-15:00 check at any hour of the day."""
    offset = 0.0 if os.environ.get("AID_ENV") == "production" else float(os.environ.get("AID_CLOCK_OFFSET_SECONDS", "0"))
    return datetime.now(UTC) + timedelta(seconds=offset)
