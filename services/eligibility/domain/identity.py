"""Resident ID numbers for the eligibility code: the shared rules of :mod:`contracts.identity`
(MOD 11-2 check digit, keyed hash, masking), under the names this package uses."""

from __future__ import annotations

from contracts.identity import (
    check_digit,
    hash_id_number,
    id_number_problem,
    is_valid_id_number,
    mask_id_number,
)


def normalize_id_number(id_number: str) -> str:
    """Strip spaces and upper-case a trailing ``x`` (no validation)."""
    return id_number.strip().replace(" ", "").upper()


__all__ = ["check_digit", "hash_id_number", "id_number_problem", "is_valid_id_number", "mask_id_number",
           "normalize_id_number"]
