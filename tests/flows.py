"""Flows other tests build on, over the real enrolment service and the real issuer: register a
school, connect a terminal (its token comes from the issuer's client-credentials grant, as a
kiosk gets it), register a student; and the tokens of the people who do it."""

from __future__ import annotations

from typing import Any

from contracts.identity import check_digit
from tests.support import System, http_json


def id_number(seq: int) -> str:
    """A valid resident ID number (MOD 11-2 check digit), distinct for each ``seq`` < 1000."""
    first17 = f"11010120070307{seq:03d}"
    return first17 + check_digit(first17)


def operations_token(system: System) -> str:
    return system.token("operations", sub="operations:ops-1")


def school_token(system: System, school_id: str = "SC1") -> str:
    """A school aid-office staff member of ``school_id``."""
    return system.token("school", school=school_id, sub=f"staff:{school_id}")


def province_token(system: System) -> str:
    return system.token("province", sub="province:officer-1")


def setup_school(system: System, enrolment_proc: Any, school_id: str = "SC1", city: str = "驻马店市",
                 county: str = "驿城区") -> None:
    status, body = enrolment_proc.api("POST", "/schools", {
        "school_id": school_id, "name": f"测试中等职业学校{school_id}", "city": city, "county": county,
    }, token=operations_token(system))
    assert status == 201, body


def register_terminal(system: System, enrolment_proc: Any, terminal_id: str,
                      school_id: str) -> dict[str, Any]:
    """Register a terminal; the answer holds its ``client_id`` and ``client_secret``."""
    status, body = enrolment_proc.api("POST", "/terminals", {
        "terminal_id": terminal_id, "school_id": school_id, "label": f"一楼大厅 {terminal_id}",
    }, token=operations_token(system))
    assert status == 201, body
    return dict(body)


def terminal_token(system: System, client_id: str, client_secret: str) -> tuple[int, Any]:
    """The issuer's answer to a terminal's client-credentials grant."""
    return http_json("POST", f"{system.issuer_url}/token", {
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret})


def setup_terminal(system: System, enrolment_proc: Any, terminal_id: str, school_id: str) -> str:
    """Register a terminal of ``school_id`` and return an access token the issuer gave it."""
    credential = register_terminal(system, enrolment_proc, terminal_id, school_id)
    status, body = terminal_token(system, credential["client_id"], credential["client_secret"])
    assert status == 200, body
    return str(body["access_token"])


def student_body(student_id: str, seq: int, school_id: str = "SC1", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "student_id": student_id, "school_id": school_id, "name": "测试学生", "id_number": id_number(seq),
        "grade": 2, "class_name": "会计2班", "major": "会计", "enrolment_year": 2025,
        "enrolment_season": "秋季", "proposed_aid": True,
    }
    body.update(over)
    return body


def register_student(system: System, enrolment_proc: Any, student_id: str, seq: int,
                     school_id: str = "SC1") -> None:
    status, body = enrolment_proc.api("POST", "/students", student_body(student_id, seq, school_id),
                                      token=school_token(system, school_id))
    assert status == 201, body
    assert body["id_number_masked"].count("*") == 8


def challenge(proc: Any, path: str, student_id: str, token: str) -> dict[str, Any]:
    """A liveness challenge for the next capture of ``student_id``: ``path`` is
    ``/enrolments/challenges`` (enrolment) or ``/checks/<check_id>/challenges`` (spotcheck).
    The capture then sends ``challenge_id`` and ``frame_times_ms`` (docs/liveness.md)."""
    status, body = proc.api("POST", path, {"student_id": student_id}, token=token)
    assert status == 201, body
    return dict(body)
