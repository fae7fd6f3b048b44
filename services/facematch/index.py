"""The province's enrolled templates in memory, for 1:N duplicate searches (pure numpy).

One row per student, kept as two float32 (or float16) matrices: the first `HEAD` coordinates
(N x 64) and the rest (N x 64), with each part's squared norms. A search computes, block by block
(`block_rows` rows), |t - p|^2 = |t|^2 - 2 t.p + |p|^2 over the head first: the head's share
of the squared distance is a lower bound of the whole, so rows already beyond the threshold
there are dropped (for templates about 0.9 apart, as impostors are, most of them) and the tail
is read only for the rest. The rows left within the threshold are re-measured in float64 with
`matching.distances`, so the answer is exact for what the matrices hold; the head filter only
saves reading about half of the memory per search.

Memory: 4 bytes x 128 per template in float32 (512 MB for 1,000,000), half that in float16
(each block is then widened to float32 for the product: slower), plus about 100 bytes per
student id.
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
HEAD = 64  # coordinates of the first pass (a lower bound of the distance)


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
        size = max(capacity, 1)
        self._head = np.zeros((size, HEAD), dtype=self.dtype)
        self._tail = np.zeros((size, DIM - HEAD), dtype=self.dtype)
        self._head_norms = np.zeros(size, dtype=np.float32)
        self._tail_norms = np.zeros(size, dtype=np.float32)
        self._students: list[str] = []
        self._schools: list[str] = []
        self._row: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._students)

    @property
    def nbytes(self) -> int:
        """Bytes of the matrices and norms as allocated (the capacity, not only the rows used)."""
        return int(self._head.nbytes + self._tail.nbytes + self._head_norms.nbytes + self._tail_norms.nbytes)

    def vector(self, student_id: str) -> NDArray[np.float64]:
        row = self._row[student_id]
        whole: NDArray[np.float64] = np.concatenate([self._head[row], self._tail[row]]).astype(np.float64)
        return whole

    def put(self, student_id: str, school_id: str, vector: NDArray[np.floating[Any]]) -> None:
        """Add the student's template, or replace it."""
        row = self._row.get(student_id)
        if row is None:
            row = len(self._students)
            if row == len(self._head):
                self._grow(2 * row)
            self._students.append(student_id)
            self._schools.append(school_id)
            self._row[student_id] = row
        else:
            self._schools[row] = school_id
        stored = np.asarray(vector, dtype=np.float64).reshape(DIM).astype(self.dtype)
        self._head[row], self._tail[row] = stored[:HEAD], stored[HEAD:]
        wide = stored.astype(np.float32)
        self._head_norms[row] = float(np.dot(wide[:HEAD], wide[:HEAD]))
        self._tail_norms[row] = float(np.dot(wide[HEAD:], wide[HEAD:]))

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
            for array in (self._head, self._tail, self._head_norms, self._tail_norms):
                array[row] = array[last]
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
        head_p, tail_p = p64[:HEAD].astype(np.float32), p64[HEAD:].astype(np.float32)
        head_pp, tail_pp = float(np.dot(head_p, head_p)), float(np.dot(tail_p, tail_p))
        # float32 rounding of |t|^2 - 2 t.p + |p|^2 is far below this margin for unit-scale vectors
        bound = within * within + 1e-3
        candidates: list[int] = []
        for start in range(0, count, self.block_rows):
            stop = min(count, start + self.block_rows)
            head = self._head[start:stop]
            if head.dtype != np.float32:
                head = head.astype(np.float32)
            partial = self._head_norms[start:stop] - 2.0 * (head @ head_p) + head_pp
            near = np.flatnonzero(partial <= bound)
            if not near.size:
                continue
            tail = self._tail[start + near]
            if tail.dtype != np.float32:
                tail = tail.astype(np.float32)
            whole = partial[near] + self._tail_norms[start + near] - 2.0 * (tail @ tail_p) + tail_pp
            candidates.extend((near[whole <= bound] + start).tolist())
        if not candidates:
            return []
        exact = distances(p64, [self.vector(self._students[i]) for i in candidates])
        hits = [Hit(self._students[i], self._schools[i], float(d))
                for i, d in zip(candidates, exact, strict=True)
                if d <= within and self._students[i] != exclude]
        return sorted(hits, key=lambda h: (h.distance, h.student_id))[:limit]

    def matches(self, probe: NDArray[np.floating[Any]], within: float,
                exclude: str | None = None) -> list[Match]:
        return [Match(h.student_id, h.distance) for h in self.search(probe, within, exclude)]

    def _grow(self, capacity: int) -> None:
        def grown(array: NDArray[Any]) -> NDArray[Any]:
            bigger = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
            bigger[: len(array)] = array
            return bigger

        self._head, self._tail = grown(self._head), grown(self._tail)
        self._head_norms, self._tail_norms = grown(self._head_norms), grown(self._tail_norms)
