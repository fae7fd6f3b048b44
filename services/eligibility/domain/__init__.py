"""The pure rules engine: fold envelopes into facts, derive statuses. No I/O here."""

from services.eligibility.domain.facts import (
    HANDLERS,
    Impact,
    Ledger,
    SharedFacts,
    StudentFacts,
    apply,
    fold,
    impact,
)
from services.eligibility.domain.policy import Policy, PolicyBook, PolicyError, policy_book_from_dict
from services.eligibility.domain.rules import SCHEMA, StudentStatus, derive, derive_all, derive_student

__all__ = [
    "HANDLERS",
    "SCHEMA",
    "Impact",
    "Ledger",
    "Policy",
    "PolicyBook",
    "PolicyError",
    "SharedFacts",
    "StudentFacts",
    "StudentStatus",
    "apply",
    "derive",
    "derive_all",
    "derive_student",
    "fold",
    "impact",
    "policy_book_from_dict",
]
