"""Resident ID numbers (身份证号码): validation, keyed hashing and masking.

The raw number never enters an event, a log line or a published list: events carry
``hash_id_number`` (HMAC-SHA256 under a configured key, so equal numbers match across
systems without being reversible by dictionary) and ``mask_id_number``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_FORMAT = re.compile(r"^\d{17}[\dX]$")


class InvalidIdNumber(ValueError):
    """Says what is wrong without repeating the number."""


def check_digit(first17: str) -> str:
    """GB 11643 / ISO 7064 MOD 11-2 check character of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def normalise_id_number(raw: str) -> str:
    """Validate an 18-character ID number; return it upper-cased. Raises :class:`InvalidIdNumber`."""
    value = raw.strip().replace(" ", "").upper()
    if len(value) != 18:
        raise InvalidIdNumber(f"an ID number has 18 characters, got {len(value)}")
    if not _FORMAT.match(value):
        raise InvalidIdNumber("an ID number is 17 digits followed by a digit or X")
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError as exc:
        raise InvalidIdNumber("the birth date inside the ID number is not a real date") from exc
    if check_digit(value[:17]) != value[17]:
        raise InvalidIdNumber("the check digit of the ID number is wrong (MOD 11-2)")
    return value


def id_number_problem(raw: str) -> str | None:
    """Why ``raw`` is not a valid ID number (never echoing it), or None when it is valid."""
    try:
        normalise_id_number(raw)
    except InvalidIdNumber as exc:
        return str(exc)
    return None


def is_valid_id_number(raw: str) -> bool:
    return id_number_problem(raw) is None


def hash_id_number(key: bytes, id_number: str) -> str:
    """HMAC-SHA256 (hex) of the validated, upper-cased number; every service hashes with this."""
    if not key:
        raise ValueError("empty hash key")
    return hmac.new(key, normalise_id_number(id_number).encode(), hashlib.sha256).hexdigest()


def mask_id_number(id_number: str) -> str:
    """``410102********123X``: region code and last four only."""
    value = id_number.strip().upper()
    return value[:6] + "*" * 8 + value[-4:] if len(value) == 18 else "*" * len(value)


def mask_name(name: str) -> str:
    """``张*``, ``欧阳**``-style: first character kept (two for four-character names)."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    keep = 2 if len(name) >= 4 else 1
    return name[:keep] + "*" * (len(name) - keep)
