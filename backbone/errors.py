"""Errors that domain code raises and entry points turn into clear answers.

Messages must never contain personal data (ID numbers, names, photos)."""

from __future__ import annotations


class DomainError(Exception):
    """A request the rules refuse. ``code`` is stable and machine-readable."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Forbidden(DomainError):
    status = 403
