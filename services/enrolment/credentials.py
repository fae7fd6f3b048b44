"""The ``terminal_credentials`` table (backbone/migrations/0003_access.sql): the hash of each
terminal's client secret, which the issuer's token endpoint checks. The terminal itself (school,
label, revocation) is its event stream; this table only holds the credential and, through
``school_id``, finds a school's terminals. Secrets are never stored, only
:func:`backbone.issuer.secret_hash`."""

from __future__ import annotations

from backbone.db import Pool


class TerminalCredentials:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def create(self, terminal_id: str, school_id: str, secret_hash: str) -> bool:
        """Store a new terminal's credential; False when the terminal id has one already."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO terminal_credentials (terminal_id, school_id, secret_hash) VALUES (%s, %s, %s)"
                " ON CONFLICT (terminal_id) DO NOTHING RETURNING 1", (terminal_id, school_id, secret_hash),
            ).fetchone()
        return row is not None

    def forget(self, terminal_id: str, secret_hash: str) -> None:
        """Undo :meth:`create` when the registration event could not be recorded."""
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM terminal_credentials WHERE terminal_id = %s AND secret_hash = %s"
                         " AND revoked_at IS NULL", (terminal_id, secret_hash))

    def rotate(self, terminal_id: str, secret_hash: str) -> bool:
        """Replace an unrevoked terminal's secret; False when there is none to replace."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "UPDATE terminal_credentials SET secret_hash = %s"
                " WHERE terminal_id = %s AND revoked_at IS NULL RETURNING 1", (secret_hash, terminal_id),
            ).fetchone()
        return row is not None

    def revoke(self, terminal_id: str) -> None:
        """The issuer gives the terminal no new token from now on (idempotent)."""
        with self.pool.connection() as conn:
            conn.execute("UPDATE terminal_credentials SET revoked_at = coalesce(revoked_at, now())"
                         " WHERE terminal_id = %s", (terminal_id,))

    def terminal_ids(self, school_id: str | None) -> list[str]:
        """The terminals of ``school_id`` (every school's for None), in registration order."""
        with self.pool.connection() as conn:
            if school_id is None:
                rows = conn.execute("SELECT terminal_id FROM terminal_credentials"
                                    " ORDER BY created_at, terminal_id").fetchall()
            else:
                rows = conn.execute("SELECT terminal_id FROM terminal_credentials WHERE school_id = %s"
                                    " ORDER BY created_at, terminal_id", (school_id,)).fetchall()
        return [str(r[0]) for r in rows]
