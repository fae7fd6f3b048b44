"""Terminals (school capture kiosks) as every service sees them: one stream per terminal in the
log, registered to one school, possibly revoked. Pure code over events."""

from __future__ import annotations

from collections.abc import Iterable

from contracts.envelope import Envelope


def terminal_stream(terminal_id: str) -> str:
    return f"terminal-{terminal_id}"


def terminal_school(events: Iterable[Envelope]) -> tuple[str | None, bool]:
    """(the school the terminal is registered to, whether it is revoked)."""
    school: str | None = None
    revoked = False
    for e in events:
        if e.type == "TerminalRegistered":
            school, revoked = str(e.payload["school_id"]), False
        elif e.type == "TerminalRevoked":
            revoked = True
    return school, revoked


def terminal_active(events: Iterable[Envelope], school_id: str | None) -> bool:
    """Is the terminal registered to ``school_id`` and not revoked?"""
    school, revoked = terminal_school(events)
    return school is not None and school == school_id and not revoked
