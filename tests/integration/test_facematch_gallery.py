"""A spot check's school gallery kept opened between captures (services/facematch/gallery.py)
gives what reading every sealed row gives (`list_by_school`), on the real database, through
enrolments, re-enrolments, a student moving school and a removed row; and opens only the rows
that changed."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest

from backbone.config import DEV_SECRET
from services.facematch.gallery import SchoolGalleries
from services.facematch.repository import PostgresTemplateRepository
from services.facematch.templates import Template

pytestmark = pytest.mark.integration
KEY = bytes.fromhex(DEV_SECRET)
RNG = np.random.default_rng(9)


def template(student_id: str, school_id: str, model: str = "m1") -> Template:
    return Template(student_id=student_id, school_id=school_id, model_version=model,
                    vector=RNG.standard_normal(128).astype(np.float32).astype(np.float64),
                    created_at=datetime.now(UTC))


def same(a: list[Template], b: list[Template]) -> bool:
    return [(t.student_id, t.school_id, t.model_version, t.vector.tobytes()) for t in a] == \
        [(t.student_id, t.school_id, t.model_version, t.vector.tobytes()) for t in b]


def test_the_gallery_equals_reading_every_row_and_opens_only_what_changed(fresh_database: str) -> None:
    galleries = SchoolGalleries()
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        repo = PostgresTemplateRepository(conn, KEY)
        for n in range(12):
            repo.put(template(f"S{n:02d}", "SC1" if n < 9 else "SC2"))
        first = galleries.school(repo, "SC1")
        assert same(first, repo.list_by_school("SC1")) and len(first) == 9
        assert galleries.opened == 9
        assert same(galleries.school(repo, "SC1"), repo.list_by_school("SC1"))
        assert galleries.opened == 9  # nothing changed: nothing opened again

        repo.put(template("S03", "SC1", model="m2"))  # re-enrolled: a new vector and model
        repo.put(template("S20", "SC1"))  # a new enrolment
        repo.put(template("S05", "SC2"))  # moved to another school
        conn.execute("DELETE FROM face_templates WHERE student_id = 'S07'")
        again = galleries.school(repo, "SC1")
        assert same(again, repo.list_by_school("SC1"))
        assert [t.student_id for t in again] == ["S00", "S01", "S02", "S03", "S04", "S06", "S08", "S20"]
        assert galleries.opened == 9 + 2  # S03 and S20
        assert same(galleries.school(repo, "SC2"), repo.list_by_school("SC2"))
        assert galleries.opened == 11 + 4  # SC2: S09-S11 and S05 (now there)

        with conn.transaction():  # the same row written twice by one transaction
            repo.put(template("S04", "SC1"))
            repo.put(template("S04", "SC1", model="m3"))
        assert same(galleries.school(repo, "SC1"), repo.list_by_school("SC1"))
        assert repo.get("S04") is not None and galleries.school(repo, "SC1")[4].model_version == "m3"


def test_a_full_gallery_starts_again_without_losing_the_answer(fresh_database: str) -> None:
    galleries = SchoolGalleries(max_kept=5)
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        repo = PostgresTemplateRepository(conn, KEY)
        for n in range(4):
            repo.put(template(f"A{n}", "SCA"))
            repo.put(template(f"B{n}", "SCB"))
        for school in ("SCA", "SCB", "SCA", "SCB"):
            assert same(galleries.school(repo, school), repo.list_by_school(school))
        assert galleries.opened == 16  # each school's four opened again after the other's
