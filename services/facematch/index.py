"""The province's enrolled templates in memory, for 1:N duplicate searches (pure numpy).

One row per student: a float32 (or float16) matrix N x 128 and the rows' squared norms. A search
computes |t - p|^2 = |t|^2 - 2 t.p + |p|^2 block by block (one matrix-vector product per block,
`block_rows` rows), keeps the rows within the threshold and re-measures those few in float64
with `matching.distances`, so the answer is exact for what the matrix holds.

Memory: 4 bytes x 128 per template in float32 (512 MB for 1,000,000), half that in float16
(each block is then widened to float32 for the product), plus about 100 bytes per student id.
The index is built at start-up from the sealed rows of `face_templates` (opened one by one with
the service key) and kept up to date from the rows changed since (`updated_at`); it never
leaves the process: templates stay AES-GCM sealed at rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from services.facematch.matching import Match, distances

DIM = 128


@dataclass(frozen=True)
class Hit:
    student_id: str
    school_id: str
    distance: float


class TemplateIndex:
    """Exact 1:N search over one model version's templates. Not thread-safe: one writer (the
    service's consumer), searches on the same thread."""

    def __init__(self, dtype: DTypeLike = np.float32, capacity: int = 1024,
                 block_rows: int = 131_072) -> None:
        self.dtype = np.dtype(dtype)
        self.block_rows = block_rows
        self._matrix = np.zeros((max(capacity, 1), DIM), dtype=self.dtype)
        self._norms = np.zeros(max(capacity, 1), dtype=np.float32)
        self._students: list[str] = []
        self._schools: list[str] = []
        self._row: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._students)

    @property
    def nbytes(self) -> int:
        """Bytes of the matrix and norms as allocated (the capacity, not only the rows used)."""
        return int(self._matrix.nbytes + self._norms.nbytes)

    def put(self, student_id: str, school_id: str, vector: NDArray[np.floating[Any]]) -> None:
        """Add the student's template, or replace it."""
        row = self._row.get(student_id)
        if row is None:
            row = len(self._students)
            if row == len(self._matrix):
                self._grow(2 * row)
            self._students.append(student_id)
            self._schools.append(school_id)
            self._row[student_id] = row
        else:
            self._schools[row] = school_id
        stored = np.asarray(vector, dtype=np.float64).reshape(DIM).astype(self.dtype)
        self._matrix[row] = stored
        self._norms[row] = float(np.dot(stored.astype(np.float32), stored.astype(np.float32)))

    def put_many(self, rows: Iterable[tuple[str, str, NDArray[np.floating[Any]]]]) -> None:
        for student_id, school_id, vector in rows:
            self.put(student_id, school_id, vector)

    def remove(self, student_id: str) -> None:
        row = self._row.pop(student_id, None)
        if row is None:
            return
        last = len(self._students) - 1
        if row != last:  # move the last row into the hole
            moved = self._students[last]
            self._matrix[row] = self._matrix[last]
            self._norms[row] = self._norms[last]
            self._students[row] = moved
            self._schools[row] = self._schools[last]
            self._row[moved] = row
        self._students.pop()
        self._schools.pop()

    def search(self, probe: NDArray[np.floating[Any]], within: float, exclude: str | None = None,
               limit: int = 10) -> list[Hit]:
        """Students (other than `exclude`) whose template is within `within` of `probe`,
        closest first, at most `limit`."""
        count = len(self._students)
        if not count:
            return []
        p64 = np.asarray(probe, dtype=np.float64).reshape(DIM)
        p32 = p64.astype(np.float32)
        p_norm = float(np.dot(p32, p32))
        # float32 rounding of |t|^2 - 2 t.p + |p|^2 is far below this margin for unit-scale vectors
        bound = within * within + 1e-3
        candidates: list[int] = []
        for start in range(0, count, self.block_rows):
            stop = min(count, start + self.block_rows)
            block = self._matrix[start:stop]
            if block.dtype != np.float32:
                block = block.astype(np.float32)
            squared = self._norms[start:stop] - 2.0 * (block @ p32) + p_norm
            candidates.extend((np.flatnonzero(squared <= bound) + start).tolist())
        if not candidates:
            return []
        exact = distances(p64, [self._matrix[i].astype(np.float64) for i in candidates])
        hits = [Hit(self._students[i], self._schools[i], float(d))
                for i, d in zip(candidates, exact, strict=True)
                if d <= within and self._students[i] != exclude]
        return sorted(hits, key=lambda h: (h.distance, h.student_id))[:limit]

    def matches(self, probe: NDArray[np.floating[Any]], within: float,
                exclude: str | None = None) -> list[Match]:
        return [Match(h.student_id, h.distance) for h in self.search(probe, within, exclude)]

    def _grow(self, capacity: int) -> None:
        matrix = np.zeros((capacity, DIM), dtype=self.dtype)
        matrix[: len(self._matrix)] = self._matrix
        norms = np.zeros(capacity, dtype=np.float32)
        norms[: len(self._norms)] = self._norms
        self._matrix, self._norms = matrix, norms
