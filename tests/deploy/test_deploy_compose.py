"""docker-compose.yml, deploy/.env.example and deploy/Dockerfile."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from .layout import (
    APP_ENV,
    BROKER_PASSWORDS,
    COMPOSE_FILE,
    DEPLOY,
    INFRA_TARGETS,
    PORTS,
    REPO,
    REQUIRED_ENV,
    SERVICES,
    TEST_SECRETS,
    compose_config,
    write_env_file,
)

INFRA = ("rabbitmq", "postgres", "postgres-exporter", "migrate", "broker-setup", "prometheus")


@pytest.fixture(scope="module")
def compose(tmp_path_factory) -> dict:
    env_file = write_env_file(tmp_path_factory.mktemp("compose") / "env", TEST_SECRETS)
    result = compose_config(env_file)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def scrape_targets() -> dict[str, list[str]]:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    return {
        s["job_name"]: [t for sc in s["static_configs"] for t in sc["targets"]]
        for s in config["scrape_configs"]
    }


def condition(service: dict, dependency: str) -> str | None:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short form: no condition
        return "service_started" if dependency in deps else None
    return (deps.get(dependency) or {}).get("condition")


def test_compose_has_every_service(compose):
    assert set(compose["services"]) >= set(PORTS) | set(INFRA)


def test_each_process_is_a_scrape_target_on_its_metrics_port(compose):
    jobs = scrape_targets()
    for process, (metrics_port, api_port) in PORTS.items():
        service = compose["services"][process]
        env = service["environment"]
        assert env["AID_METRICS_PORT"] == str(metrics_port), process
        # prometheus reaches it by compose service name on that port
        assert f"{process}:{metrics_port}" in jobs[process], process
        if api_port is None:
            assert "AID_API_PORT" not in env
        else:
            assert env["AID_API_PORT"] == str(api_port), process
    # and every scrape target host is a compose service
    for job, targets in jobs.items():
        for target in targets:
            host = target.rsplit(":", 1)[0]
            assert host == "localhost" or host in compose["services"], f"{job}: {target}"
    for job, target in INFRA_TARGETS.items():
        assert target.split(":")[0] in compose["services"], job


def test_commands(compose):
    services = compose["services"]
    assert services["relay"]["command"] == ["python", "-m", "backbone.relay"]
    assert services["migrate"]["command"] == ["python", "-m", "backbone.cli", "migrate"]
    assert services["broker-setup"]["command"] == ["python", "-m", "backbone.topology", "setup"]
    for name in SERVICES:
        assert services[name]["command"] == ["python", "-m", "backbone.runservice", name]


def test_one_image_built_from_deploy_dockerfile(compose):
    apps = [compose["services"][n] for n in (*PORTS, "migrate")]
    assert len({s["image"] for s in apps}) == 1
    for service in apps:
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert any(v.startswith("blobs:/var/lib/aid/blobs") for v in service["volumes"])


def test_startup_order(compose):
    services = compose["services"]
    assert condition(services["migrate"], "postgres") == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    assert condition(services["broker-setup"], "rabbitmq") == "service_healthy"
    assert services["broker-setup"]["restart"] == "no"
    for process in PORTS:
        assert condition(services[process], "migrate") == "service_completed_successfully", process
        assert condition(services[process], "broker-setup") == "service_completed_successfully", process
        assert condition(services[process], "rabbitmq") == "service_healthy", process
        assert "healthcheck" in services[process], process
    for infra in ("postgres", "rabbitmq"):
        assert services[infra]["healthcheck"]["test"], infra


def test_secrets_reach_every_app_process(compose):
    for name in (*PORTS, "migrate"):
        env = compose["services"][name]["environment"]
        assert set(APP_ENV) <= set(env), name
        assert env["AID_ENV"] == "production", name
        assert env["AID_SECRET_KEY"] == TEST_SECRETS["AID_SECRET_KEY"]
        assert env["AID_ID_HASH_KEY"] == TEST_SECRETS["AID_ID_HASH_KEY"]
        assert env["AID_DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:5432/" in env["AID_DATABASE_URL"]
        assert env["AID_AMQP_URL"] == "amqp://rabbitmq:5672/"  # no credentials: see below


def test_each_process_has_its_own_broker_account_and_only_its_own(compose):
    from backbone.topology import PROCESSES, user_name

    assert set(PORTS) == set(PROCESSES)
    services = compose["services"]
    users = set()
    for process in PORTS:
        env = services[process]["environment"]
        assert env["AID_AMQP_USER"] == user_name(process), process
        assert env["AID_AMQP_PASSWORD"] == TEST_SECRETS[BROKER_PASSWORDS[process]], process
        others = {TEST_SECRETS[v] for p, v in BROKER_PASSWORDS.items() if p != process}
        others.add(TEST_SECRETS["RABBITMQ_PASSWORD"])
        assert not others & set(map(str, env.values())), f"{process} sees another broker password"
        users.add(env["AID_AMQP_USER"])
    assert len(users) == len(PORTS)
    assert "AID_AMQP_USER" not in services["migrate"]["environment"]  # migrations never use the broker
    for name, service in services.items():
        assert "guest" not in str(service.get("environment", {})), name
    rabbitmq = services["rabbitmq"]["environment"]
    assert rabbitmq["RABBITMQ_DEFAULT_USER"] == "aid"
    setup = services["broker-setup"]["environment"]
    assert setup["AID_BROKER_ADMIN_URL"] == f"http://aid:{TEST_SECRETS['RABBITMQ_PASSWORD']}@rabbitmq:15672"
    for process, variable in BROKER_PASSWORDS.items():
        assert setup[f"AID_AMQP_PASSWORD_{process.upper()}"] == TEST_SECRETS[variable], process
    # the set-up needs the broker passwords and nothing else secret
    assert not {"AID_SECRET_KEY", "AID_ID_HASH_KEY", "AID_DATABASE_URL"} & set(setup)


def test_rabbitmq_and_prometheus_mounts(compose):
    services = compose["services"]
    rabbit_volumes = services["rabbitmq"]["volumes"]
    assert any(v.endswith(":/etc/rabbitmq/enabled_plugins:ro") for v in rabbit_volumes)
    assert "rabbitmq_prometheus" in (DEPLOY / "rabbitmq" / "enabled_plugins").read_text()
    prom_volumes = services["prometheus"]["volumes"]
    for name in ("prometheus.yml", "alerts.yml"):
        assert f"{DEPLOY / name}:/etc/prometheus/{name}:ro" in prom_volumes, name
    assert "pgdata" in compose["volumes"] and "blobs" in compose["volumes"]


@pytest.mark.parametrize("missing", REQUIRED_ENV)
def test_missing_required_secret_fails(tmp_path, missing):
    values = {k: v for k, v in TEST_SECRETS.items() if k != missing}
    result = compose_config(write_env_file(tmp_path / "env", values))
    assert result.returncode != 0, f"docker-compose config succeeded without {missing}"
    assert missing in result.stderr


def test_empty_secret_fails(tmp_path):
    # a copied-but-unedited .env.example leaves the values empty
    result = compose_config(write_env_file(tmp_path / "env", {**TEST_SECRETS, "AID_SECRET_KEY": ""}))
    assert result.returncode != 0
    assert "AID_SECRET_KEY" in result.stderr


def test_env_example_documents_every_variable():
    compose_text = "\n".join(
        line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", compose_text))
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", compose_text))
    assert required == set(REQUIRED_ENV)
    example = (DEPLOY / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, re.M))
    assert used <= documented, used - documented
    for name in REQUIRED_ENV:  # present, uncommented, and empty: no default secret in the repo
        assert re.search(rf"^{name}=$", example, re.M), name


def test_dockerfile():
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [
        line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    froms = [line for line in instructions if line.upper().startswith("FROM ")]
    assert froms and all(line.split()[1] == "python:3.11-slim-bookworm" for line in froms)
    for pkg in ("cmake", "build-essential", "libopenblas-dev", "liblapack-dev"):
        assert pkg in text, pkg
    assert "pip install ." in text
    users = [line.split()[1] for line in instructions if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    for line in instructions:
        if line.upper().startswith(("ENV ", "ARG ")):
            for secret in REQUIRED_ENV + ("AID_DATABASE_URL", "AID_AMQP_URL"):
                assert secret not in line, f"secret {secret} baked into the image: {line}"
    # every package setuptools installs is copied into the build context
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    copied = {
        line.split()[1] for line in instructions if line.upper().startswith("COPY ") and "--from" not in line
    }
    assert "pyproject.toml" in copied
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        top = pattern.split(".")[0].rstrip("*")
        assert top in copied, f"package {pattern} not COPY'd in deploy/Dockerfile"
