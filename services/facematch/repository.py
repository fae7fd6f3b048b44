"""PostgreSQL adapter of the template port: rows hold only sealed (encrypted) templates.

It runs its SQL on the connection the caller gives it (service.py, reenrol.py), so it imports
no database driver itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from services.facematch.gallery import GalleryRepository
from services.facematch.templates import Template, TemplateRepository, open_template, seal_template

# updated_at is the time of the write itself (not of the transaction's start): writers hold the
# province-wide lock, so the order of updated_at is the order of the writes (province.py)
_UPSERT = (
    "INSERT INTO face_templates (student_id, school_id, model_version, sealed, source_ref, updated_at)"
    " VALUES (%s, %s, %s, %s, %s, clock_timestamp())"
    " ON CONFLICT (student_id) DO UPDATE SET school_id = EXCLUDED.school_id,"
    " model_version = EXCLUDED.model_version, sealed = EXCLUDED.sealed,"
    " source_ref = EXCLUDED.source_ref, updated_at = clock_timestamp()"
)


# a row's version for the gallery cache (gallery.py): the id of the transaction that wrote it
# (changes with every write of the row) and the write's time
_VERSION = "xmin::text || '/' || updated_at::text"


class PostgresTemplateRepository(TemplateRepository, GalleryRepository):
    """Works inside the caller's connection/transaction, so a template is stored in the same
    transaction as the event that reports it."""

    def __init__(self, conn: Any, key: bytes) -> None:
        self.conn = conn
        self.key = key

    def get(self, student_id: str) -> Template | None:
        row = self.conn.execute(
            "SELECT sealed FROM face_templates WHERE student_id = %s", (student_id,)
        ).fetchone()
        return open_template(self.key, bytes(row[0]), student_id) if row else None

    def put(self, template: Template) -> None:
        sealed = seal_template(self.key, template)
        self.conn.execute(
            _UPSERT,
            (template.student_id, template.school_id, template.model_version, sealed,
             template.source_photo_ref),
        )

    def list_by_school(self, school_id: str) -> list[Template]:
        rows = self.conn.execute(
            "SELECT student_id, sealed FROM face_templates WHERE school_id = %s ORDER BY student_id",
            (school_id,),
        ).fetchall()
        return [open_template(self.key, bytes(r[1]), r[0]) for r in rows]

    def school_versions(self, school_id: str) -> list[tuple[str, str]]:
        rows = self.conn.execute(
            f"SELECT student_id, {_VERSION} FROM face_templates WHERE school_id = %s ORDER BY student_id",
            (school_id,),
        ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def open_versions(self, student_ids: Sequence[str]) -> list[tuple[str, str, str, Template]]:
        rows = self.conn.execute(
            f"SELECT student_id, school_id, {_VERSION}, sealed FROM face_templates"
            " WHERE student_id = ANY(%s)",
            (list(student_ids),),
        ).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2]), open_template(self.key, bytes(r[3]), r[0])) for r in rows]

    def count(self) -> int:
        """How many templates are stored (any model version)."""
        return int(self.conn.execute("SELECT count(*) FROM face_templates").fetchone()[0])

    def changed_since(self, since: datetime | None) -> Iterator[tuple[Template, datetime]]:
        """Every template (with its updated_at) written after `since`, every template for None,
        in that order; each sealed row is opened as it is reached."""
        rows = self.conn.execute(
            "SELECT student_id, sealed, updated_at FROM face_templates"
            " WHERE %s::timestamptz IS NULL OR updated_at > %s ORDER BY updated_at",
            (since, since),
        ).fetchall()
        return ((open_template(self.key, bytes(r[1]), r[0]), r[2]) for r in rows)

    def stale(self, model_version: str) -> list[tuple[str, str | None]]:
        """(student_id, source photo ref) of templates made by another model version."""
        rows = self.conn.execute(
            "SELECT student_id, source_ref FROM face_templates WHERE model_version <> %s", (model_version,)
        ).fetchall()
        return [(r[0], r[1]) for r in rows]
