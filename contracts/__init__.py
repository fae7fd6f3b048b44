"""Versioned event contracts shared by every service.

- ``contracts.events``: payload models, one dataclass per (type, version);
- ``contracts/schemas/*.json``: the JSON Schemas generated from them (the wire contract);
- ``contracts.registry``: validation and upcasting of envelopes read from the log or the broker.
"""

from contracts.envelope import Actor, Envelope
from contracts.registry import (
    ContractError,
    build_envelope,
    current_version,
    parse_envelope,
    upcast,
    validate_envelope,
)

__all__ = [
    "Actor",
    "ContractError",
    "Envelope",
    "build_envelope",
    "current_version",
    "parse_envelope",
    "upcast",
    "validate_envelope",
]
