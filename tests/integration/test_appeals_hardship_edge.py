"""Hardship over the edge, as real processes with the real issuer, relay and eligibility: the
actor and the school taken from the token and the registry, idempotent retries, refused inputs
(a code and the field's path, never a 500), body limits, and the audit of personal-data reads.
(Appeals over the edge: tests/integration/test_appeals_edge.py.)"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.flows import operations_token, register_student, school_token, setup_school
from tests.support import Proc, System, throwaway_database, throwaway_vhost, wait_for

pytestmark = pytest.mark.integration

CITY, COUNTY, OTHER_COUNTY = "驻马店市", "驿城区", "西平县"


@dataclass
class Aid:
    system: System
    procs: dict[str, Proc]

    def __getattr__(self, name: str) -> Proc:  # aid.hardship, aid.enrolment...
        if name.startswith("_") or name not in self.__dict__.get("procs", {}):
            raise AttributeError(name)
        return self.procs[name]


@pytest.fixture(scope="module")
def aid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aid]:
    """SC1 (county-administered) and SC2 in two counties of one city, SC3 directly administered
    and SC4 administered by its city, in SC1's county; a student at each."""
    with throwaway_database() as db, throwaway_vhost() as vhost:
        system = System(db, vhost, Path(tmp_path_factory.mktemp("appeals-hardship")))
        try:
            names = ("enrolment", "hardship", "eligibility")
            procs = {name: system.service(name).start(wait=False) for name in names}
            procs["relay"] = system.relay().start(wait=False)
            for proc in procs.values():
                proc.wait_healthy()
            enrolment = procs["enrolment"]
            setup_school(system, enrolment, "SC1", CITY, COUNTY)
            setup_school(system, enrolment, "SC2", CITY, OTHER_COUNTY)
            others: tuple[tuple[str, dict[str, Any]], ...] = (("SC3", {"directly_administered": True}),
                                                               ("SC4", {"administered_by": "city"}))
            for school_id, over in others:
                status, body = enrolment.api("POST", "/schools", {
                    "school_id": school_id, "name": f"学校{school_id}", "city": CITY, "county": COUNTY,
                    **over,
                }, token=operations_token(system))
                assert status == 201, body
            for seq, (student_id, school_id) in enumerate((("A0001", "SC1"), ("B0001", "SC2"),
                                                           ("C0001", "SC3"), ("D0001", "SC4")), 1):
                register_student(system, enrolment, student_id, seq, school_id)
            yield Aid(system, procs)
        finally:
            system.stop_all()


def send(proc: Proc, method: str, path: str, body: Any = None, token: str | None = None,
         headers: dict[str, str] | None = None, chunked: bool = False) -> tuple[int, dict[str, str], Any]:
    """One HTTP call: (status, headers, JSON answer); ``body`` bytes go as they are."""
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {}),
            **(headers or {})}
    conn = http.client.HTTPConnection("127.0.0.1", proc.api_port, timeout=15)
    try:
        try:
            if chunked and data is not None:
                pieces = iter([data[i:i + 8192] for i in range(0, len(data), 8192)])
                conn.request(method, path, body=pieces, headers={**sent, "Transfer-Encoding": "chunked"},
                             encode_chunked=True)
            else:
                conn.request(method, path, body=data, headers=sent)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered before reading the whole body: read its answer
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), json.loads(resp.read() or b"null")
    finally:
        conn.close()


def refused(answer: tuple[int, dict[str, str], Any]) -> tuple[int, str]:
    status, _, body = answer
    return status, body["error"] if isinstance(body, dict) and "error" in body else body


Found = list[tuple[str, dict[str, Any], dict[str, Any]]]


def events(system: System, type_: str, key: str, value: str) -> Found:
    """(event_id, actor, payload) of the events of ``type_`` whose payload[key] is ``value``."""
    with psycopg.connect(system.database_url) as conn:
        rows = conn.execute("SELECT event_id::text, actor, payload FROM events WHERE type = %s"
                            " AND payload->>%s = %s ORDER BY position", (type_, key, value)).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def count(system: System, type_: str) -> int:
    with psycopg.connect(system.database_url) as conn:
        (n,) = conn.execute("SELECT count(*) FROM events WHERE type = %s", (type_,)).fetchall()[0]
    return int(n)


def determination(student_id: str = "A0001", **over: Any) -> dict[str, Any]:
    return {"student_id": student_id, "categories": [7], "effective_semester": "2026-autumn",
            "methods": ["school_review"], **over}


def county(aid: Aid, name: str = COUNTY) -> str:
    return aid.system.token("county", city=CITY, county=name, sub=f"county:{name}:officer")


def city(aid: Aid, name: str = CITY) -> str:
    return aid.system.token("city", city=name, sub=f"city:{name}:officer")


def province(aid: Aid) -> str:
    return aid.system.token("province", sub="province:officer-1")


def post_determination(aid: Aid, body: Any, token: str | None, **kw: Any) -> tuple[int, dict[str, str], Any]:
    return send(aid.hardship, "POST", "/determinations", body, token=token, **kw)


# ----------------------------------------------------------------------------- idempotency


@pytest.mark.parametrize("route, body, answer_id, type_", [
    ("/determinations", determination(categories=[8]), "determination_id", "HardshipDetermined"),
])
def test_an_idempotency_key_replays_the_first_answer_for_its_caller(
        aid: Aid, route: str, body: dict[str, Any], answer_id: str, type_: str) -> None:
    staff, key = school_token(aid.system, "SC1"), {"Idempotency-Key": f"retry-{type_}-1"}
    proc, before = aid.hardship, count(aid.system, type_)
    status, headers, first = send(proc, "POST", route, body, token=staff, headers=key)
    assert status == 201 and "Idempotent-Replayed" not in headers, first
    status, headers, again = send(proc, "POST", route, body, token=staff, headers=key)
    assert (status, again, headers.get("Idempotent-Replayed")) == (201, first, "true")
    assert count(aid.system, type_) == before + 1
    assert len(events(aid.system, type_, answer_id, first[answer_id])) == 1

    other_body = {**body, "categories": [7]}
    assert refused(send(proc, "POST", route, other_body, token=staff, headers=key)) == (
        422, "IDEMPOTENCY_KEY_REUSED")
    assert count(aid.system, type_) == before + 1

    # another caller (a colleague at the same school) with the same key and body: its own request
    colleague = aid.system.token("school", school="SC1", sub="staff:SC1:colleague")
    status, headers, theirs = send(proc, "POST", route, body, token=colleague, headers=key)
    assert status == 201 and "Idempotent-Replayed" not in headers, theirs
    assert theirs[answer_id] != first[answer_id]
    ((_, actor, _),) = events(aid.system, type_, answer_id, theirs[answer_id])
    assert actor["id"] == "staff:SC1:colleague"
    assert count(aid.system, type_) == before + 2


# ----------------------------------------------------------------------------- hardship


LEVELS: list[tuple[dict[str, Any], str]] = [
    ({"categories": [7]}, "difficult"),
    ({"categories": [8, 2, 8]}, "especially_difficult"),
    ({"categories": [8], "judged_especially_difficult": True}, "especially_difficult"),
    ({"categories": []}, "not_difficult"),
]


def test_a_school_determines_hardship_levels_of_its_students(aid: Aid) -> None:
    staff = school_token(aid.system, "SC1")
    for over, level in LEVELS:
        status, _, body = post_determination(aid, determination(**over), staff)
        assert (status, body.get("level")) == (201, level), (over, body)
        ((_, actor, payload),) = events(aid.system, "HardshipDetermined", "determination_id",
                                        body["determination_id"])
        assert (actor["id"], payload["school_id"], payload["level"]) == ("staff:SC1", "SC1", level)
        assert payload["categories"] == sorted(set(over["categories"]))
    for token, expected in ((school_token(aid.system, "SC2"), (403, "OUTSIDE_AREA")),
                            (county(aid), (403, "ROLE_FORBIDDEN")), (None, (401, "UNAUTHENTICATED"))):
        assert refused(post_determination(aid, determination(), token)) == expected
    assert refused(post_determination(aid, determination("NOPE1"), staff)) == (404, "UNKNOWN_STUDENT")


BAD_DETERMINATIONS: list[tuple[dict[str, Any], str]] = [
    ({"categories": [0]}, "body.categories.0"),
    ({"categories": [7, 9]}, "body.categories.1"),
    ({"categories": ["7"]}, "body.categories.0"),
    ({"judged_especially_difficult": "false"}, "body.judged_especially_difficult"),
    ({"methods": ["telepathy"]}, "body.methods.0"),
    ({"methods": []}, "body.methods"),
    ({"effective_semester": "2026-winter"}, "body.effective_semester"),
    ({"student_id": "A0001\x00"}, "body.student_id"),
    ({"methods": ["school_review\x00"]}, "body.methods.0"),
    ({"effective_semester": "2026-autumn\x00"}, "body.effective_semester"),
    ({"school_id": "SC2"}, "body.school_id"),
]


def test_bad_determinations_name_the_field_and_never_fail_inside(aid: Aid) -> None:
    staff = school_token(aid.system, "SC1")
    before = count(aid.system, "HardshipDetermined")
    for over, path in BAD_DETERMINATIONS:
        status, _, body = post_determination(aid, determination(**over), staff)
        assert (status, body["error"]) == (422, "INVALID_REQUEST"), (over, body)
        assert [f["path"] for f in body["fields"]] == [path], (over, body)
    assert count(aid.system, "HardshipDetermined") == before
    assert "Traceback" not in aid.hardship.log_tail(200_000)


def test_bodies_over_the_limit_or_not_json_are_refused(aid: Aid) -> None:
    staff = school_token(aid.system, "SC1")
    big = json.dumps(determination(categories=[7] * 40_000)).encode()  # over the route's 64 KiB
    assert len(big) > 64 * 1024
    assert refused(post_determination(aid, big, staff)) == (413, "BODY_TOO_LARGE")
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"):
        answer = post_determination(aid, determination(), staff, headers={"Content-Type": content_type})
        assert refused(answer) == (415, "UNSUPPORTED_MEDIA_TYPE"), content_type
    assert refused(post_determination(aid, b"{", staff)) == (400, "MALFORMED_JSON")
    assert "Traceback" not in aid.hardship.log_tail(200_000)


def test_chunked_bodies_are_read_and_limited_like_any_other(aid: Aid) -> None:
    staff = school_token(aid.system, "SC1")
    big = json.dumps(determination(categories=[7] * 40_000)).encode()
    assert refused(post_determination(aid, big, staff, chunked=True)) == (413, "BODY_TOO_LARGE")
    status, _, body = post_determination(aid, determination(), staff, chunked=True)
    assert (status, body.get("level")) == (201, "difficult"), body


# ----------------------------------------------------------------------------- audit, eligibility


def test_personal_data_reads_are_listed_to_auditors(aid: Aid) -> None:
    staff = aid.system.token("school", school="SC2", sub="staff:SC2:reader")
    status, _, student = send(aid.enrolment, "GET", "/students/B0001", token=staff)
    assert status == 200 and student["student_id"] == "B0001", student
    auditor = aid.system.token("auditor", sub="auditor:a-1")
    reads = "/audit/personal-data-reads?student_id=B0001"
    status, _, body = send(aid.eligibility, "GET", reads, token=auditor)
    assert status == 200, body
    keys = ("caller", "caller_role", "service", "route", "student_id")
    assert [{k: r[k] for k in keys} for r in body["reads"]] == [{
        "caller": "staff:SC2:reader", "caller_role": "school", "service": "enrolment", "route": "student",
        "student_id": "B0001"}]
    for token in (province(aid), school_token(aid.system, "SC2"), operations_token(aid.system)):
        assert refused(send(aid.eligibility, "GET", reads, token=token)) == (403, "ROLE_FORBIDDEN")


def test_eligibility_receives_each_hardship_event_once(aid: Aid) -> None:
    status, _, body = post_determination(aid, determination(), school_token(aid.system, "SC1"))
    assert status == 201, body
    found = events(aid.system, "HardshipDetermined", "determination_id", body["determination_id"])
    ids = [e[0] for e in found]
    assert len(ids) == 1

    def processed() -> bool:
        with psycopg.connect(aid.system.database_url) as conn:
            ((done,),) = conn.execute("SELECT count(*) FROM processed_events WHERE consumer = 'eligibility'"
                                      " AND event_id = ANY(%s::uuid[])", (ids,)).fetchall()
        return bool(done == len(ids))

    wait_for(processed, timeout=30, what="eligibility to process the hardship event")
    assert "Traceback" not in aid.eligibility.log_tail(200_000)
