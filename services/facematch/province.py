"""Every enrolled template of the province, for the 1:N duplicate search of a new capture.

`ProvinceTemplates` keeps a `TemplateIndex` of the current model version's templates in the
process and brings it up to date from `face_templates` before each search: the first call reads
every row (start-up; each sealed row is opened with the service key), later calls only the rows
changed since the last one seen (minus `OVERLAP`, for writers that committed late). Rows are
written with `clock_timestamp()` under the province-wide advisory lock (service.py), so their
`updated_at` order is their commit order. Nothing of the index is written anywhere: at rest the
templates stay AES-GCM sealed rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from services.facematch.index import Hit, TemplateIndex
from services.facematch.repository import PostgresTemplateRepository

OVERLAP = timedelta(seconds=30)


class ProvinceTemplates:
    """Not thread-safe: use from one (green) thread at a time."""

    def __init__(self, model_version: str) -> None:
        self.model_version = model_version
        self.index = TemplateIndex()
        self.seen: datetime | None = None

    def refresh(self, repo: PostgresTemplateRepository) -> int:
        """Apply the rows changed since the last refresh; how many rows were read."""
        since = None if self.seen is None else self.seen - OVERLAP
        rows = repo.changed_since(since)
        for template, updated_at in rows:
            if template.model_version == self.model_version:
                self.index.put(template.student_id, template.school_id, template.vector)
            else:
                self.index.remove(template.student_id)
            if self.seen is None or updated_at > self.seen:
                self.seen = updated_at
        return len(rows)

    def duplicates(self, probe: NDArray[np.floating[Any]], threshold: float, student_id: str) -> list[Hit]:
        """Other students of the province whose template is within `threshold`, closest first."""
        return self.index.search(probe, threshold, exclude=student_id)
