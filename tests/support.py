"""Test support: throwaway PostgreSQL databases and RabbitMQ vhosts, and service processes.

Everything here talks to the real PostgreSQL (127.0.0.1:5432) and RabbitMQ (127.0.0.1:5672)
of the machine. Each test session gets its own database and vhost, dropped at the end, so a
running development system is never touched. ``AID_TEST_PG`` (the one variable for the test
database server: an administrator's DSN) and ``AID_TEST_AMQP`` (the broker, as an administrator)
point elsewhere. A server that does not answer fails the tests: they never skip.

A throwaway vhost is set up like production (:func:`backbone.topology.setup_broker`): a broker
user per process with least privilege, named after the vhost, removed with it. Relay and
services run as their own user; the vhost URL a test gets is the administrator's (for tests that
publish or read as an operator, or as an attacker).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("AID_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_BASE = os.environ.get("AID_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")
#: services of the tests (not in production) that consume events, so need a user and a DLQ
TEST_CONSUMERS = ("probe", "recorder")


_next_port = 20000 + (os.getpid() * 37) % 8000


def free_port() -> int:
    """A port below the kernel's ephemeral range (so no outgoing connection takes it between
    now and the service binding it), never handed out twice by this process."""
    global _next_port
    while True:
        port = _next_port
        _next_port = 20000 if _next_port >= 31999 else _next_port + 1
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port


@contextlib.contextmanager
def throwaway_database(prefix: str = "aid_test") -> Iterator[str]:
    from backbone.migrate import migrate

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(PG_ADMIN, dbname=name)
    with open(os.devnull, "w") as devnull:
        migrate(url, out=devnull)
    try:
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rabbitmqctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=check,
                          timeout=120)


class VhostUrl(str):
    """The administrator's AMQP URL of a throwaway vhost, knowing the vhost's process users."""

    vhost: str
    users: dict[str, tuple[str, str]]  # process -> (user, password)

    def credentials(self, process: str) -> dict[str, str]:
        """The environment that makes ``process`` connect as its own broker user."""
        user, password = self.users[process]
        return {"AID_AMQP_USER": user, "AID_AMQP_PASSWORD": password}

    def url_for(self, process: str) -> str:
        user, password = self.users[process]
        parts = urllib.parse.urlsplit(str(self))
        host = parts.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def broker_admin() -> Any:
    """The management API of the test broker, as the administrator of ``AID_TEST_AMQP``."""
    from backbone.topology import ManagementApi

    parts = urllib.parse.urlsplit(AMQP_BASE)
    return ManagementApi(f"http://{parts.username or 'guest'}:{parts.password or 'guest'}@"
                         f"{parts.hostname or '127.0.0.1'}:15672")


@contextlib.contextmanager
def throwaway_vhost() -> Iterator[VhostUrl]:
    from backbone.topology import PROCESSES, delete_users, setup_broker, user_name

    vhost = f"aid_test_{uuid.uuid4().hex[:10]}"
    users = {p: (user_name(p, f".{vhost}"), secrets.token_hex(16)) for p in (*PROCESSES, *TEST_CONSUMERS)}
    api = broker_admin()
    admin = urllib.parse.unquote(urllib.parse.urlsplit(AMQP_BASE).username or "guest")
    try:
        setup_broker(api, vhost, users, consumers=TEST_CONSUMERS, admin=admin)
        url = VhostUrl(f"{AMQP_BASE}/{vhost}")
        url.vhost, url.users = vhost, users
        yield url
    finally:
        api.call("DELETE", f"/vhosts/{urllib.parse.quote(vhost, safe='')}", ok_missing=True)
        delete_users(api, [user for user, _ in users.values()])


def http_json(method: str, url: str, body: Any = None, timeout: float = 10, token: str | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # keep polling; report the last error on timeout
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Proc:
    """A service or relay running as a real local process."""

    def __init__(self, args: list[str], env: dict[str, str], name: str, metrics_port: int, api_port: int = 0,
                 log_dir: Path | None = None) -> None:
        self.args, self.env, self.name = args, env, name
        self.metrics_port, self.api_port = metrics_port, api_port
        self.log_path = (log_dir or Path("/tmp")) / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.popen = subprocess.Popen([sys.executable, *self.args], env=self.env, cwd=REPO,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 60.0) -> None:
        def healthy() -> bool:
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}: {self.log_tail()}")
            status, _ = http_json("GET", f"http://127.0.0.1:{self.metrics_port}/health", timeout=2)
            return status == 200

        try:
            wait_for(healthy, timeout, what=f"{self.name} healthy")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- {self.name} log ---\n{self.log_tail()}") from exc

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def api(self, method: str, path: str, body: Any = None, token: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """Call the service's HTTP API; ``token`` from :meth:`System.token` (None: anonymous)."""
        return http_json(method, f"http://127.0.0.1:{self.api_port}{path}", body, token=token,
                         headers=headers)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``, from Prometheus text."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            total += float(value)
    return total


def service_name(target: str) -> str:
    """The nameko service name of ``target`` (a service, or ``module:SERVICE`` of a test service)."""
    if ":" not in target:
        return target
    import importlib

    module, _, attr = target.partition(":")
    return str(getattr(importlib.import_module(module), attr).name)


class System:
    """Relay and services started as processes against one database and one vhost."""

    def __init__(self, database_url: str, amqp_url: str, tmp: Path) -> None:
        self.database_url, self.amqp_url, self.tmp = database_url, amqp_url, tmp
        self.procs: dict[str, Proc] = {}
        self.issuer_port = free_port()
        self.issuer_url = f"http://127.0.0.1:{self.issuer_port}"
        self.key_file = tmp / "auth" / "issuer-key.pem"

    def start_issuer(self) -> Proc:
        """The embedded identity provider (``aid auth serve``): JWKS and terminal tokens."""
        if "issuer" not in self.procs:
            proc = Proc(["-m", "backbone.cli", "auth", "serve", "--port", str(self.issuer_port)], self.env(),
                        "issuer", 0, self.issuer_port, log_dir=self.tmp)
            self.procs["issuer"] = proc
            proc.start(wait=False)
            wait_for(lambda: http_json("GET", f"{self.issuer_url}/health", timeout=2)[0] == 200, 30,
                     what="issuer healthy")
        return self.procs["issuer"]

    def token(self, role: str, ttl: int = 3600, **area: str) -> str:
        """A signed token for ``role`` and its area (``school=``, ``city=``, ``county=``,
        ``student=``, ``terminal=``, ``sub=``), from the same key the issuer publishes."""
        from backbone.issuer import load_or_create_key, mint, person_claims

        sub = area.pop("sub", None)
        claims = person_claims(role, sub, **area)
        return mint(load_or_create_key(self.key_file), self.issuer_url, "studentaid", claims, ttl)

    def env(self, *, process: str | None = None, **extra: str) -> dict[str, str]:
        """Environment of a process; with ``process``, it connects to the broker as that
        process's own user (else as the vhost's administrator, like an operator)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AID_")}
        env.update(AID_AUTH_ISSUER=self.issuer_url, AID_AUTH_KEY_FILE=str(self.key_file))
        env.update(AID_DATABASE_URL=self.database_url, AID_AMQP_URL=self.amqp_url,
                   AID_BLOB_DIR=str(self.tmp / "blobs"), PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        if process is not None and isinstance(self.amqp_url, VhostUrl):
            env.update(self.amqp_url.credentials(process))
        env.update(extra)
        return env

    def relay(self, name: str = "relay", **extra: str) -> Proc:
        port = free_port()
        proc = Proc(["-m", "backbone.relay"], self.env(process="relay", AID_METRICS_PORT=str(port), **extra),
                    name, port, log_dir=self.tmp)
        self.procs[name] = proc
        return proc

    def service(self, service: str, name: str | None = None, module: str = "backbone.runservice",
                **extra: str) -> Proc:
        self.start_issuer()
        metrics, api = free_port(), free_port()
        proc = Proc(["-m", module, service],
                    self.env(process=service_name(service), AID_METRICS_PORT=str(metrics),
                             AID_API_PORT=str(api), **extra),
                    name or service, metrics, api, log_dir=self.tmp)
        self.procs[name or service] = proc
        return proc

    def console(self, name: str = "console", **extra: str) -> Proc:
        """The web console (``python -m console``), calling this system's services: those
        started so far, by their API ports."""
        self.start_issuer()
        metrics, api = free_port(), free_port()
        urls = {f"AID_CONSOLE_{svc.upper()}_URL": f"http://127.0.0.1:{proc.api_port}"
                for svc, proc in self.procs.items() if proc.api_port and svc != "issuer"}
        proc = Proc(["-m", "console"], self.env(AID_METRICS_PORT=str(metrics), AID_API_PORT=str(api),
                                                AID_CONSOLE_HOST="127.0.0.1", **urls, **extra),
                    name, metrics, api, log_dir=self.tmp)
        self.procs[name] = proc
        return proc

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.stop()
