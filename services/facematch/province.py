"""Every enrolled template of the province, for the 1:N duplicate search of a new capture.

`ProvinceTemplates` keeps a `TemplateIndex` of the current model version's templates in the
process and brings it up to date from `face_templates` before each search: the first call reads
every row (start-up; each sealed row is opened with the service key), later calls only the rows
changed since the last one seen (minus `OVERLAP`, for writers that committed late). Rows are
written with `clock_timestamp()` under the province-wide advisory lock (service.py), so their
`updated_at` order is their commit order. Nothing of the index is written anywhere: at rest the
templates stay AES-GCM sealed rows.

The service loads the index at start-up in the background (`service.py`, `ProvinceWarmup`), so
the first enrolment does not pay for it. Every refresh holds `lock`, so an enrolment that
arrives during that first load waits for it and then reads only the rows changed since: the
province is never loaded twice. `report()` and `rows_loaded` / `rows_expected` tell how far the
first load is (``progress facematch-index`` in ``/health``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from services.facematch.index import Hit, TemplateIndex
from services.facematch.repository import PostgresTemplateRepository

OVERLAP = timedelta(seconds=30)
PAUSE_EVERY = 500  # about 15 ms of work between pauses: a /health check needs several hub turns


class ProvinceTemplates:
    """Refreshes take `lock` (a green lock in the service, which monkey-patches threading);
    searches do not yield, so they never see a refresh half-applied within one green thread."""

    def __init__(self, model_version: str) -> None:
        self.model_version = model_version
        self.index = TemplateIndex()
        self.seen: datetime | None = None
        self.lock = threading.Lock()
        self.loaded = False  # the first (whole-province) load has finished
        self.full_loads = 0  # whole-province loads started (1 in a healthy process)
        self.rows_loaded = 0  # rows read by the first load so far
        self.rows_expected: int | None = None  # rows the first load expects (counted before it)
        self.load_seconds: float | None = None

    def refresh(self, repo: PostgresTemplateRepository, pause: Callable[[], None] | None = None) -> int:
        """Apply the rows changed since the last refresh; how many rows were read. `pause` is
        called every `PAUSE_EVERY` rows (the service lets its other green threads run: the
        first load of a large province takes about 25 us a row). A refresh that finds another
        one running waits for it, then reads only what changed since."""
        with self.lock:
            return self._refresh(repo, pause)

    def report(self) -> str:
        """One line for ``/health``: how far the first load is, or how many templates are held."""
        if self.loaded:
            return f"ready: {len(self.index)} templates (loaded in {self.load_seconds or 0.0:.1f}s)"
        if not self.full_loads:
            return "not loaded"
        expected = "?" if self.rows_expected is None else str(self.rows_expected)
        return f"loading province templates: {self.rows_loaded} of about {expected} rows"

    def _refresh(self, repo: PostgresTemplateRepository, pause: Callable[[], None] | None) -> int:
        first = not self.loaded  # (a first load that failed half-way goes on from `seen`)
        if first:
            self.full_loads += 1
            self.rows_loaded = 0
            self.rows_expected = repo.count()
            started = time.monotonic()
        since = None if self.seen is None else self.seen - OVERLAP
        number = 0
        for number, (template, updated_at) in enumerate(repo.changed_since(since), 1):
            if first:
                self.rows_loaded = number
            if pause is not None and number % PAUSE_EVERY == 0:
                pause()
            if template.model_version == self.model_version:
                self.index.put(template.student_id, template.school_id, template.vector)
            else:
                self.index.remove(template.student_id)
            if self.seen is None or updated_at > self.seen:
                self.seen = updated_at
        if first:
            self.load_seconds = time.monotonic() - started
            self.loaded = True
        return number

    def duplicates(self, probe: NDArray[np.floating[Any]], threshold: float, student_id: str) -> list[Hit]:
        """Other students of the province whose template is within `threshold`, closest first."""
        return self.index.search(probe, threshold, exclude=student_id)
