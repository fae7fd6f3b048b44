"""Blocking calls are detected: a 0.5 s query must not stall the eventlet hub.

With psycopg's default C wait function the hub freezes for the whole query (the control
case, which shows the probe can see blocking); with ``PSYCOPG_WAIT_FUNC=wait_select`` as set by
``backbone.runservice``, other green threads (AMQP heartbeats, HTTP) keep running. CPU-bound
work sent through ``eventlet.tpool`` (as face inference is) does not stall the hub either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support import REPO

pytestmark = pytest.mark.integration


def max_gap(work: str, database_url: str, wait_func: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PSYCOPG_WAIT_FUNC"}
    env.update(AID_DATABASE_URL=database_url, PYTHONPATH=str(REPO))
    if wait_func:
        env["PSYCOPG_WAIT_FUNC"] = wait_func
    out = subprocess.run([sys.executable, "-m", "tests.hub_probe", work], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["max_gap"])


def test_the_probe_detects_a_blocking_database_call(database_url: str) -> None:
    assert max_gap("pg_sleep", database_url, "wait_c") >= 0.4


def test_database_calls_in_services_do_not_block_the_hub(database_url: str) -> None:
    assert max_gap("pg_sleep", database_url, "wait_select") < 0.1


def test_cpu_work_through_tpool_does_not_block_the_hub(database_url: str) -> None:
    assert max_gap("tpool_cpu", database_url, "wait_select") < 0.1
