"""What the deployment files must agree on: processes, their ports, required secrets."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = REPO / "docker-compose.yml"

SERVICES = ("enrolment", "spotcheck", "facematch", "eligibility", "appeals", "hardship")

# process -> (metrics port, API port or None)
PORTS: dict[str, tuple[int, int | None]] = {
    "relay": (9100, None),
    "enrolment": (9101, 8001),
    "spotcheck": (9102, 8002),
    "facematch": (9103, 8003),
    "eligibility": (9104, 8004),
    "appeals": (9105, 8005),
    "hardship": (9106, 8006),
}

# scrape job -> compose target for the infrastructure exporters
INFRA_TARGETS = {"rabbitmq": "rabbitmq:15692", "postgres": "postgres-exporter:9187"}

# one RabbitMQ account per process (backbone/topology.py), besides the administrator's
BROKER_PASSWORDS = {process: f"RABBITMQ_{process.upper()}_PASSWORD" for process in PORTS}
REQUIRED_ENV = ("AID_SECRET_KEY", "AID_ID_HASH_KEY", "POSTGRES_PASSWORD", "RABBITMQ_PASSWORD",
                *BROKER_PASSWORDS.values(), "AID_AUTH_ISSUER")
APP_ENV = ("AID_DATABASE_URL", "AID_AMQP_URL", "AID_SECRET_KEY", "AID_ID_HASH_KEY", "AID_BLOB_DIR")

TEST_SECRETS = {
    "AID_SECRET_KEY": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    "AID_ID_HASH_KEY": "5eedf00d5eedf00d5eedf00d5eedf00d",
    "POSTGRES_PASSWORD": "pgtestpw",
    "RABBITMQ_PASSWORD": "mqtestpw",
    "AID_AUTH_ISSUER": "https://id.example.gov.cn/realms/studentaid",
    **{variable: f"mq{process}pw" for process, variable in BROKER_PASSWORDS.items()},
}


def require_tool(name: str) -> str:
    """Path of a CLI tool; fails the test (never skips) when it is missing."""
    path = shutil.which(name)
    assert path, f"{name} not found on PATH: the project's install script must install it"
    return path


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)


def compose_env() -> dict[str, str]:
    """os.environ without anything that would leak into `docker-compose config`
    (the developer's own secrets, COMPOSE_* settings)."""
    drop = set(REQUIRED_ENV) | {"AID_IMAGE_TAG"}
    return {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.startswith("COMPOSE_") and not k.startswith("AID_")
    }


def compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with variables only from env_file (a root .env is ignored)."""
    return run(
        [require_tool("docker-compose"), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        cwd=REPO,
        env=compose_env(),
    )


def write_env_file(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path
