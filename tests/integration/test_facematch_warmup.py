"""facematch loads the province's template index at start-up, in the background, without any
enrolment (issue 10): /health keeps answering and reports the load's progress, the metrics
report the rows and templates loaded."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest

from backbone.config import DEV_SECRET
from services.facematch.calibration import MODEL_VERSION
from services.facematch.templates import Template, seal_template
from tests.support import System, http_json, wait_for

pytestmark = pytest.mark.integration
KEY = bytes.fromhex(DEV_SECRET)
ROWS = 20_000


def seed(database_url: str, rows: int) -> None:
    """`rows` synthetic sealed templates of the current model, and one of an older model."""
    rng = np.random.default_rng(7)
    now = datetime.now(UTC)
    values = []
    for i in range(rows + 1):
        model = MODEL_VERSION if i < rows else "older-model"
        template = Template(f"W{i:06d}", f"SC{i % 50}", model, rng.standard_normal(128) * 0.06, now)
        values.append((template.student_id, template.school_id, model, seal_template(KEY, template)))
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO face_templates (student_id, school_id, model_version, sealed,"
                        " updated_at) VALUES (%s, %s, %s, %s, clock_timestamp())", values)


def test_the_province_index_is_loaded_at_start_up_without_any_enrolment(system: System) -> None:
    seed(system.database_url, ROWS)
    proc = system.service("facematch").start(wait=False)
    seen: list[str] = []  # the progress texts /health gave, in order

    def loaded() -> bool:
        try:
            _, body = http_json("GET", f"http://127.0.0.1:{proc.metrics_port}/health", timeout=5)
        except OSError:  # not listening yet
            return False
        progress = body["checks"].get("progress facematch-index")
        if progress is not None and progress not in seen:
            seen.append(progress)
        return bool(progress and progress.startswith("ready"))

    wait_for(loaded, 180, interval=0.05, what="province index loaded")
    assert re.fullmatch(rf"ready: {ROWS} templates \(loaded in \d+\.\ds\)", seen[-1]), seen
    for earlier in seen[:-1]:  # whatever the polls caught before: the load under way
        assert earlier == "not loaded" or re.fullmatch(
            rf"loading province templates: \d+ of about {ROWS + 1} rows", earlier), seen
    proc.wait_healthy(timeout=60)  # a loaded index never makes the process unhealthy
    metrics = proc.metrics()
    assert "aid_facematch_index_ready 1.0" in metrics
    assert f"aid_facematch_index_templates {float(ROWS)}" in metrics
    assert f"aid_facematch_index_rows_loaded {float(ROWS + 1)}" in metrics
    assert f"aid_facematch_index_rows_expected {float(ROWS + 1)}" in metrics
    with psycopg.connect(system.database_url) as conn:  # nothing was enrolled or matched
        assert conn.execute("SELECT count(*) FROM events WHERE type LIKE 'Capture%'").fetchone() == (0,)
