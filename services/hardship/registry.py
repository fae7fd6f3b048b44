"""Registry lists: the projection of HardshipRegistryImported (tables of migration 0107), written
in the same transaction as the event, and the comparison lookup: which list in force for a school
year (the latest import of each list and system) holds a student's or a guardian's keyed hash."""

from __future__ import annotations

from typing import Any

from backbone.eventstore import append_in_transaction
from contracts.envelope import Envelope

Found = dict[tuple[str, str], tuple[str, frozenset[str]]]

LOOKUP = (
    "SELECT l.registry, l.system, l.import_id,"
    " EXISTS (SELECT 1 FROM hardship_registry_hashes h WHERE h.import_id = l.import_id AND h.id_hash = %s),"
    " EXISTS (SELECT 1 FROM hardship_registry_hashes h WHERE h.import_id = l.import_id AND h.id_hash = %s)"
    " FROM hardship_registry_latest l WHERE l.school_year = %s"
)


def lookup(conn: Any, school_year: str, student_hash: str | None, guardian_hash: str | None) -> Found:
    """``(registry, system) -> (import_id, {"student", "guardian"} found in it)`` for every list of
    the year (an empty set: neither is listed)."""
    rows = conn.execute(LOOKUP, (student_hash or "", guardian_hash or "", school_year)).fetchall()
    found: Found = {}
    for registry, system, import_id, has_student, has_guardian in rows:
        who = {
            w
            for w, hit in (
                ("student", has_student and student_hash),
                ("guardian", has_guardian and guardian_hash),
            )
            if hit
        }
        found[(registry, system)] = (import_id, frozenset(who))
    return found


def project(conn: Any, p: dict[str, Any], position: int) -> None:
    """Apply one stored HardshipRegistryImported (payload, log position) to the projection."""
    with conn.cursor() as cur:
        with cur.copy("COPY hardship_registry_hashes (import_id, id_hash) FROM STDIN") as copy:
            for h in p["id_number_hashes"]:
                copy.write_row((p["import_id"], h))
        cur.execute(
            "INSERT INTO hardship_registry_latest (school_year, registry, system, import_id, position)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (school_year, registry, system) DO UPDATE"
            " SET import_id = EXCLUDED.import_id, position = EXCLUDED.position"
            " WHERE hardship_registry_latest.position < EXCLUDED.position",
            (p["school_year"], p["registry"], p["system"], p["import_id"], position),
        )


def record_import(conn: Any, envelope: Envelope) -> Envelope:
    """Append the import to the log and project it, in the caller's transaction."""
    (stored,) = append_in_transaction(conn, [envelope])
    project(conn, stored.payload, int(stored.position or 0))
    return stored


def rebuild(conn: Any) -> int:
    """Rebuild the projection from the log (after a restore); the number of imports applied."""
    conn.execute("TRUNCATE hardship_registry_hashes, hardship_registry_latest")
    rows = conn.execute(
        "SELECT position, payload FROM events WHERE type = 'HardshipRegistryImported' ORDER BY position"
    ).fetchall()
    for position, payload in rows:
        project(conn, payload, position)
    return len(rows)
