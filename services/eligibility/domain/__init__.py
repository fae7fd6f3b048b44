"""The pure rules engine: fold envelopes into facts, derive statuses. No I/O here."""

from services.eligibility.domain.facts import (
    FOLDS,
    Impact,
    Ledger,
    SharedFacts,
    StudentFacts,
    folds,
    handled_types,
    impact,
    shared_types,
    student_types,
)
from services.eligibility.domain.policy import Policy, PolicyBook, PolicyError, policy_book_from_dict
from services.eligibility.domain.rules import StudentStatus, derive, derive_all

__all__ = [
    "FOLDS",
    "Impact",
    "Ledger",
    "Policy",
    "PolicyBook",
    "PolicyError",
    "SharedFacts",
    "StudentFacts",
    "StudentStatus",
    "derive",
    "derive_all",
    "folds",
    "handled_types",
    "impact",
    "policy_book_from_dict",
    "shared_types",
    "student_types",
]
