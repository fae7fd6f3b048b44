"""Resident ID numbers (身份证号码): the GB 11643 check digit, masking, and the keyed hash.

Payloads never carry an ID number: they carry ``hash_id_number(key, id_number)`` (HMAC-SHA256,
key from ``AID_ID_HASH_KEY``) and ``mask_id_number(id_number)``. Every service must hash with
this function so hashes compare across the log.
"""

from __future__ import annotations

import hashlib
import hmac

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def normalize_id_number(id_number: str) -> str:
    """Strip spaces and upper-case a trailing ``x``."""
    return id_number.strip().replace(" ", "").upper()


def check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def id_number_problem(id_number: str) -> str | None:
    """Why ``id_number`` is not a valid 18-character resident ID number, or None. Never echoes it."""
    value = normalize_id_number(id_number)
    if len(value) != 18:
        return f"must have 18 characters, has {len(value)}"
    if not (value[:17].isascii() and value[:17].isdigit()) or not (value[17].isdigit() or value[17] == "X"):
        return "must be 17 digits followed by a digit or X"
    if check_digit(value[:17]) != value[17]:
        return "check digit (MOD 11-2) does not match"
    return None


def is_valid_id_number(id_number: str) -> bool:
    return id_number_problem(id_number) is None


def hash_id_number(key: bytes, id_number: str) -> str:
    """HMAC-SHA256 of the normalised ID number, hex. ``key`` is ``AID_ID_HASH_KEY`` as bytes."""
    if not key:
        raise ValueError("empty hash key")
    return hmac.new(key, normalize_id_number(id_number).encode("ascii"), hashlib.sha256).hexdigest()


def mask_id_number(id_number: str) -> str:
    """``110105********1234`` style: first 6 and last 4 characters kept."""
    value = normalize_id_number(id_number)
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else "*" * len(value)
