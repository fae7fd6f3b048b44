"""The school gallery (services/facematch/gallery.py) when rows change between its two reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from services.facematch.gallery import GalleryRepository, SchoolGalleries
from services.facematch.templates import Template


class Rows(GalleryRepository):
    """student id -> (school, version); `between` runs after the versions are read."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, int]] = {}
        self.between = lambda: None

    def write(self, student_id: str, school_id: str) -> None:
        version = self.rows.get(student_id, ("", 0))[1] + 1
        self.rows[student_id] = (school_id, version)

    def school_versions(self, school_id: str) -> list[tuple[str, str]]:
        out = sorted((sid, str(v)) for sid, (school, v) in self.rows.items() if school == school_id)
        self.between()
        return out

    def open_versions(self, student_ids: Sequence[str]) -> list[tuple[str, str, str, Template]]:
        return [(sid, school, str(v), Template(sid, school, f"v{v}", np.zeros(2), datetime.now(UTC)))
                for sid, (school, v) in self.rows.items() if sid in student_ids]


def test_a_row_that_leaves_the_school_between_the_reads_is_left_out_and_a_rewritten_one_is_newest() -> None:
    rows, galleries = Rows(), SchoolGalleries()
    for sid in ("S1", "S2", "S3"):
        rows.write(sid, "SC1")
    rows.write("S3", "SC1")  # version 2

    def meanwhile() -> None:
        rows.write("S1", "SC2")  # moved away
        rows.write("S2", "SC1")  # written again
        rows.between = lambda: None

    rows.between = meanwhile
    got = galleries.school(rows, "SC1")
    assert [(t.student_id, t.model_version) for t in got] == [("S2", "v2"), ("S3", "v2")]
    again = galleries.school(rows, "SC1")
    assert [(t.student_id, t.model_version) for t in again] == [("S2", "v2"), ("S3", "v2")]
    assert galleries.opened == 2  # S2 (at version 2) and S3, kept: the second call opens nothing


def test_kept_templates_are_the_same_objects_until_their_row_changes() -> None:
    rows, galleries = Rows(), SchoolGalleries()
    rows.write("S1", "SC1")
    rows.write("S2", "SC1")
    first = galleries.school(rows, "SC1")
    second = galleries.school(rows, "SC1")
    assert first[0] is second[0] and first[1] is second[1]
    rows.write("S2", "SC1")
    third = galleries.school(rows, "SC1")
    assert third[0] is first[0] and third[1] is not first[1] and third[1].model_version == "v2"
