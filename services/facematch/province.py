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

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from services.facematch.index import Hit, TemplateIndex
from services.facematch.repository import PostgresTemplateRepository

OVERLAP = timedelta(seconds=30)
PAUSE_EVERY = 5000


class ProvinceTemplates:
    """Not thread-safe: use from one (green) thread at a time."""

    def __init__(self, model_version: str) -> None:
        self.model_version = model_version
        self.index = TemplateIndex()
        self.seen: datetime | None = None

    def refresh(self, repo: PostgresTemplateRepository, pause: Callable[[], None] | None = None) -> int:
        """Apply the rows changed since the last refresh; how many rows were read. `pause` is
        called every `PAUSE_EVERY` rows (the service lets its other green threads run: the
        first load of a large province takes about 25 us a row)."""
        since = None if self.seen is None else self.seen - OVERLAP
        number = 0
        for number, (template, updated_at) in enumerate(repo.changed_since(since), 1):
            if pause is not None and number % PAUSE_EVERY == 0:
                pause()
            if template.model_version == self.model_version:
                self.index.put(template.student_id, template.school_id, template.vector)
            else:
                self.index.remove(template.student_id)
            if self.seen is None or updated_at > self.seen:
                self.seen = updated_at
        return number

    def duplicates(self, probe: NDArray[np.floating[Any]], threshold: float, student_id: str) -> list[Hit]:
        """Other students of the province whose template is within `threshold`, closest first."""
        return self.index.search(probe, threshold, exclude=student_id)
