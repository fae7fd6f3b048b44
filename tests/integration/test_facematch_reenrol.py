"""A model change: stale templates are rebuilt from the stored, sealed enrolment photos."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest

from backbone.blobs import BlobStore
from backbone.config import DEV_SECRET
from services.facematch.calibration import MODEL_VERSION
from services.facematch.repository import PostgresTemplateRepository
from services.facematch.templates import Template
from tests.support import REPO

pytestmark = pytest.mark.integration
KEY = bytes.fromhex(DEV_SECRET)


def faces() -> Path:
    for folder in Path(__file__).resolve().parents:
        if (folder / "shared" / "faces").is_dir():
            return folder / "shared" / "faces"
    pytest.fail("shared/faces not found")


def test_stale_templates_are_rebuilt_from_the_enrolment_photo(fresh_database: str, tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs", KEY)
    good = blobs.put((faces() / "obama" / "obama_1.jpg").read_bytes())
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        repo = PostgresTemplateRepository(conn, KEY)
        for sid, ref in (("S1", good), ("S2", "blob:" + "0" * 64)):
            repo.put(Template(student_id=sid, school_id="SC1", model_version="old-model",
                              vector=np.zeros(128), created_at=datetime.now(UTC), source_photo_ref=ref))
    env = {"AID_DATABASE_URL": fresh_database, "AID_BLOB_DIR": str(tmp_path / "blobs"),
           "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    dry = subprocess.run([sys.executable, "-m", "services.facematch.reenrol", "--dry-run"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0 and "2 template(s)" in dry.stderr
    run = subprocess.run([sys.executable, "-m", "services.facematch.reenrol"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr  # S2's photo is gone: reported, not fatal
    assert "rebuilt 1, failed 1" in run.stderr and "student S2" in run.stderr
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        repo = PostgresTemplateRepository(conn, KEY)
        s1, s2 = repo.get("S1"), repo.get("S2")
    assert s1 is not None and s1.model_version == MODEL_VERSION and float(np.linalg.norm(s1.vector)) > 0.5
    assert s2 is not None and s2.model_version == "old-model"
