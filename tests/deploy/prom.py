"""Run a real Prometheus server inside a test.

    from tests.deploy.prom import running_prometheus, query, wait_for   # or: from .prom import ...

    def test_relay_exports_lag(tmp_path):
        with running_prometheus({"relay": "127.0.0.1:9100"}, tmp_path) as base_url:
            result = wait_for(base_url, 'aid_relay_lag_events{job="relay"}')
            assert float(result[0]["value"][1]) == 0

The server scrapes each job's single "host:port" target every second (path /metrics) and, if
``rule_files`` are given, evaluates them every second too (so ``ALERTS`` and ``/api/v1/rules``
work). It listens on a free 127.0.0.1 port and keeps its config, TSDB and log in a fresh
directory under ``tmp_path``. The ``prometheus`` binary is taken from $AID_PROMETHEUS_BIN or
PATH; if there is none, RuntimeError is raised (tests fail, they do not skip).

Only the standard library (urllib) plus PyYAML is used. Proxies from the environment are ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "PrometheusError",
    "api",
    "free_port",
    "prometheus_binary",
    "query",
    "running_prometheus",
    "wait_for",
]

# Never send requests for 127.0.0.1 through an http_proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PrometheusError(RuntimeError):
    """Prometheus failed to start, or answered an API call with an error."""


def prometheus_binary() -> str:
    """Path of the prometheus server binary ($AID_PROMETHEUS_BIN, else PATH)."""
    path = os.environ.get("AID_PROMETHEUS_BIN") or shutil.which("prometheus")
    if not path:
        raise RuntimeError(
            "prometheus binary not found (set AID_PROMETHEUS_BIN or install the Debian package "
            "'prometheus'; the project's install script does)"
        )
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_json(url: str, timeout: float) -> Any:
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:  # 4xx/5xx from the API still carry a JSON error body
        body = exc.read().decode("utf-8", "replace")
        try:
            data = json.loads(body)
        except ValueError:
            raise PrometheusError(f"GET {url}: HTTP {exc.code}: {body[:500]}") from exc
        raise PrometheusError(
            f"GET {url}: HTTP {exc.code}: {data.get('errorType')}: {data.get('error')}"
        ) from exc


def api(base_url: str, path: str, params: Mapping[str, str] | None = None, *, timeout: float = 5.0) -> Any:
    """GET an /api/v1 endpoint (e.g. "rules", "targets", "query") and return its ``data``."""
    url = f"{base_url.rstrip('/')}/api/v1/{path.lstrip('/')}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    payload = _read_json(url, timeout)
    if payload.get("status") != "success":
        raise PrometheusError(f"GET {url}: {payload.get('errorType')}: {payload.get('error')}")
    return payload["data"]


def query(base_url: str, promql: str, *, at: float | None = None, timeout: float = 5.0) -> list:
    """Instant query. Returns ``data.result``: for a vector, a list of
    ``{"metric": {label: value}, "value": [unix_ts, "string value"]}``; for a scalar or string,
    ``[unix_ts, "value"]``."""
    params = {"query": promql}
    if at is not None:
        params["time"] = repr(at)
    return list(api(base_url, "query", params, timeout=timeout)["result"])


def wait_for(
    base_url: str,
    promql: str,
    *,
    timeout: float = 20.0,
    interval: float = 0.25,
    predicate: Callable[[list], bool] = bool,
) -> list:
    """Poll ``query`` until ``predicate(result)`` is true (default: non-empty) and return the result.
    Raises AssertionError with the last result after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    result: list = []
    while True:
        result = query(base_url, promql)
        if predicate(result):
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{promql!r} not satisfied within {timeout}s; last result: {result!r}")
        time.sleep(interval)


def _write_config(
    path: Path, targets: Mapping[str, str | Sequence[str]], rule_files: Sequence[str | os.PathLike[str]]
) -> None:
    scrape_configs = []
    for job, target in targets.items():
        hosts = [target] if isinstance(target, str) else list(target)
        scrape_configs.append({"job_name": job, "static_configs": [{"targets": hosts}]})
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": scrape_configs,
    }
    if rule_files:
        config["rule_files"] = [str(Path(f).resolve()) for f in rule_files]
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def running_prometheus(
    targets: Mapping[str, str | Sequence[str]],
    tmp_path: str | os.PathLike[str],
    *,
    rule_files: Sequence[str | os.PathLike[str]] = (),
    startup_timeout: float = 30.0,
) -> Iterator[str]:
    """Start Prometheus scraping ``targets`` (job name -> "host:port", or a list of them) every
    second; yield its base URL ("http://127.0.0.1:<port>") once /-/ready answers 200; stop it on
    exit. Config, data and ``prometheus.log`` live in a new directory under ``tmp_path``."""
    binary = prometheus_binary()
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-", dir=tmp_path))
    config = workdir / "prometheus.yml"
    log = workdir / "prometheus.log"
    _write_config(config, targets, rule_files)

    last_error = ""
    for _attempt in range(3):  # the free port can be taken between free_port() and bind
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        with log.open("ab") as log_file:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        try:
            deadline = time.monotonic() + startup_timeout
            ready = False
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    with _OPENER.open(f"{base_url}/-/ready", timeout=1) as resp:
                        if resp.status == 200:
                            ready = True
                            break
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(0.1)
            if ready:
                yield base_url
                return
            last_error = (
                f"prometheus exited with {proc.returncode}"
                if proc.poll() is not None
                else f"prometheus not ready within {startup_timeout}s"
            )
            if proc.poll() is None or "address already in use" not in _log_tail(log):
                break
        finally:
            _stop(proc)
    raise PrometheusError(f"{last_error}; log {log}:\n{_log_tail(log)}")
