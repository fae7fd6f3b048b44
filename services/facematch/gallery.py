"""The school's enrolled templates for a spot-check capture (the 1:N proxy search of `verify`),
kept opened in memory between captures.

Reading the gallery the plain way (`list_by_school`) fetches every sealed row of the school and
opens each one (AES-GCM, the header's JSON) for every capture: about 16 us a template, 24 ms of
CPU per capture at a school of 1,500 enrolled students, plus ~1 MB from the database. Here each
capture asks only for the school's (student id, row version) pairs and opens only the rows that
are new or changed since this process last opened them; the list it returns is the one
`list_by_school` returns at that moment (same templates, same order), which
tests/facematch/test_facematch_gallery.py checks.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence

from services.facematch.templates import Template

#: opened templates kept by one process before it starts again from nothing (~1.3 KB each)
MAX_KEPT = 200_000


class GalleryRepository(ABC):
    """What the gallery needs from the template storage (repository.py implements it)."""

    @abstractmethod
    def school_versions(self, school_id: str) -> list[tuple[str, str]]:
        """(student id, row version) of the school's templates, by student id; the version
        changes with every write of the row."""

    @abstractmethod
    def open_versions(self, student_ids: Sequence[str]) -> list[tuple[str, str, str, Template]]:
        """(student id, school id, row version, opened template) of those students' rows."""


class SchoolGalleries:
    """Opened templates by student, each with the row version it was opened from. Thread-safe."""

    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self._kept: dict[str, tuple[str, Template]] = {}
        self._max_kept = max_kept
        self._lock = threading.Lock()
        self.opened = 0  # templates opened so far (tests and metrics)

    def school(self, repo: GalleryRepository, school_id: str) -> list[Template]:
        """The school's templates now, in student id order, as `list_by_school` gives them."""
        versions = repo.school_versions(school_id)
        known: dict[str, Template] = {}
        stale: list[str] = []
        with self._lock:
            for sid, version in versions:
                kept = self._kept.get(sid)
                if kept is not None and kept[0] == version:
                    known[sid] = kept[1]
                else:
                    stale.append(sid)
        fresh: dict[str, tuple[str, Template]] = {}
        if stale:
            # a row written between the two reads comes back newer (the later state is as good);
            # one that left the school or was removed in between is left out, as a later read would
            for sid, school, version, template in repo.open_versions(stale):
                if school == school_id:
                    fresh[sid] = (version, template)
        with self._lock:
            if len(self._kept) + len(fresh) > self._max_kept:
                self._kept.clear()
            self._kept.update(fresh)
            self.opened += len(fresh)
        opened = {sid: template for sid, (_, template) in fresh.items()}
        return [known.get(sid) or opened[sid] for sid, _ in versions if sid in known or sid in opened]
