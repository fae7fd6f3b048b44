"""Schema migrations: ``backbone/migrations/NNNN_name.sql`` applied in order, once each,
each in its own transaction, under an advisory lock so concurrent starts are safe."""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
from psycopg import sql

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_MIGRATIONS = Path(__file__).resolve().parent.parent / "services"
LOCK_KEY = 727_001


def available(directories: list[Path] | None = None) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    if directories is None:
        directories = [MIGRATIONS, *sorted(SERVICE_MIGRATIONS.glob("*/migrations"))]
    for directory in directories:
        found.extend((p.stem, p) for p in directory.glob("*.sql"))
    return sorted(found)


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (needs CREATEDB)."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    name = info.get("dbname")
    if not name:
        return
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))


def migrate(url: str, directories: list[Path] | None = None, out=sys.stdout) -> list[str]:  # type: ignore[no-untyped-def]
    ensure_database(url)
    applied: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations").fetchall()}
            for name, path in available(directories):
                if name in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text(encoding="utf-8"))  # type: ignore[arg-type]
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
                applied.append(name)
                print(f"applied {name}", file=out)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    if not applied:
        print("schema is up to date", file=out)
    return applied
