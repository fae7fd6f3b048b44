"""Appeal filings in the eligibility rules (issue 11): one filing (AppealFiled v2) lists several
students, each ruled on their own; a filing closed unhandled at month end keeps the original
status and says so; the notes name the filing and the ruling's (or closing's) event; the window
is counted with the one working-day calendar; an event changes only the students it names."""

from __future__ import annotations

from datetime import datetime

from contracts.events import AppealClosedUnhandled, AppealFiled, AppealResolved, AppealStudent
from services.eligibility.domain.facts import Ledger
from tests.eligibility.elig_builders import SCHOOL, Log, at, month, status

FILING = f"{SCHOOL}-2026-11"
FILED, RULED = at("2026-12-09", 10), at("2026-12-15", 10)


def failed_november(*students: str) -> Log:
    log = Log()
    for sid in students:
        log.ordinary(sid)
    checks = log.routine_checks()
    for sid in students:
        log.pass_checks(sid, checks, except_months=["2026-11"])
    log.published("2026-11", "2026-12-01")  # Tue: the window ends Tue 2026-12-08
    return log


def file(log: Log, objections: dict[str, str], when: datetime = FILED) -> str:
    """The school's filing of November: student -> day the objection was received."""
    log.add(
        AppealFiled(
            filing_id=FILING,
            school_id=SCHOOL,
            month="2026-11",
            letter_ref="blob:" + "1" * 64,
            filed_on=when.date().isoformat(),
            authority_level="county",
            city="Zhumadian",
            county="Yicheng",
            students=[
                AppealStudent(
                    student_id=sid,
                    objected_on=day,
                    objection_ids=[f"O-{sid}"],
                    reason="病假",
                    class_name="1班",
                    name_masked="张*",
                )
                for sid, day in objections.items()
            ],
        ),
        when,
        f"appeals-{FILING}",
    )
    return FILING


def ruling(log: Log, sid: str, decision: str, when: datetime = RULED) -> str:
    env = log.add(
        AppealResolved(
            appeal_id=FILING,
            student_id=sid,
            month="2026-11",
            decision=decision,  # type: ignore[arg-type]
            decided_by="county",
            reason="经核实",
        ),
        when,
        f"appeals-{FILING}",
    )
    return str(env.event_id)


def test_one_filing_rules_each_of_its_students_on_their_own() -> None:
    log = failed_november("S1", "S2", "S3")
    file(log, {"S1": "2026-12-02", "S2": "2026-12-08", "S3": "2026-12-09"})  # S3: a day late
    approved = ruling(log, "S1", "approved")
    rejected = ruling(log, "S2", "rejected")
    ruling(log, "S3", "approved")
    s1, s2, s3 = (month(status(log, sid), "2026-11") for sid in ("S1", "S2", "S3"))
    assert (s1["status"], s1["notes"]) == (
        "passed_on_appeal",
        [f"appeal {FILING}: approved by the county authority (ruling {approved})"],
    )
    assert approved in s1["event_ids"]
    assert (s2["status"], s2["notes"]) == (
        "failed",
        [f"appeal {FILING}: rejected by the county authority (ruling {rejected})"],
    )
    assert (s3["status"], s3["notes"]) == (
        "failed",
        [f"appeal {FILING}: objection of 2026-12-09 late (the window ended 2026-12-08), not handled"],
    )


def test_a_filing_closed_unhandled_keeps_the_original_status_and_says_why() -> None:
    log = failed_november("S1", "S2")
    file(log, {"S1": "2026-12-02", "S2": "2026-12-03"})
    ruling(log, "S1", "approved")
    closing = log.add(
        AppealClosedUnhandled(
            filing_id=FILING,
            school_id=SCHOOL,
            month="2026-11",
            student_ids=["S2"],
            closed_on="2026-12-31",
            reason="not ruled",
        ),
        at("2027-01-01", 0),
        f"appeals-{FILING}",
    )
    s1, s2 = (month(status(log, sid), "2026-11") for sid in ("S1", "S2"))
    assert s1["status"] == "passed_on_appeal"  # ruled before the closing: not concerned by it
    assert s2["status"] == "failed" and str(closing.event_id) in s2["event_ids"]
    assert s2["notes"] == [
        f"appeal {FILING}: not handled in the month it was filed in, closed unhandled on"
        f" 2026-12-31 (event {closing.event_id}); original result stands"
    ]


def test_a_filing_event_changes_only_the_students_it_names() -> None:
    log = failed_november("S1", "S2")
    file(log, {"S1": "2026-12-02"})
    file(log, {"S2": "2026-12-03"}, at("2026-12-10", 10))  # the same filing id, another student
    ledger = Ledger()
    for e in reversed(log.events):  # order-insensitive
        ledger.apply(e)
    entries = ledger.shared.filings[FILING]
    assert [(e.student_id, e.objected_on) for e in entries] == [("S1", "2026-12-02"), ("S2", "2026-12-03")]
    assert [e.objected_on for _, e in ledger.shared.filings_of("S1", "2026-11")] == ["2026-12-02"]
    assert ledger.shared.filings_of("S1", "2026-10") == []
