"""Reads ``policy/policy.yml`` (the one policy file) into a validated :class:`PolicyBook`."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from services.eligibility.domain.policy import PolicyBook, PolicyError, policy_book_from_dict

POLICY_FILE = Path(__file__).parent / "policy" / "policy.yml"


def load_policy_book(path: Path | str | None = None) -> PolicyBook:
    """Load and validate a policy file (default: the shipped one). Raises :class:`PolicyError`."""
    if path is None:
        return _default()
    return _load(Path(path))


@cache
def _default() -> PolicyBook:
    return _load(POLICY_FILE)


def _load(path: Path) -> PolicyBook:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return policy_book_from_dict(data)
    except PolicyError as exc:
        raise PolicyError(f"{path}: {exc}") from exc
