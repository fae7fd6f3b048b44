"""The whole system as local processes over the real RabbitMQ and PostgreSQL, with the real
face models on real photos, through the authenticated API (tokens from the real issuer, a
terminal's through its client credentials): registration, new capture (verified and
provisional), a spot check with a genuine and a proxy check-in, two facematch instances
sharing the load, health and metrics of every process."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.flows import (
    id_number,
    province_token,
    register_student,
    school_token,
    setup_school,
    setup_terminal,
    student_body,
)
from tests.support import Proc, System, http_json, metric_value, wait_for

pytestmark = pytest.mark.integration
CHECK_DAY = datetime.fromisoformat("2026-10-22T11:00:00+08:00")
CAPTURE_DAY = datetime.fromisoformat("2026-10-12T11:00:00+08:00")  # new capture before the Oct 20 deadline


def faces_dir() -> Path:
    here = Path(__file__).resolve()
    for folder in here.parents:
        if (folder / "shared" / "faces").is_dir():
            return folder / "shared" / "faces"
    pytest.fail("shared/faces not found beside the repository")


def photo(name: str) -> str:
    folder = name.rsplit("_", 1)[0]
    return base64.b64encode((faces_dir() / folder / name).read_bytes()).decode()


def events(url: str, type_: str, **payload: str) -> list[dict[str, Any]]:
    query = "SELECT payload FROM events WHERE type = %s"
    params: list[Any] = [type_]
    for key, value in payload.items():
        query += f" AND payload->>'{key}' = %s"
        params.append(value)
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(query + " ORDER BY position", params).fetchall()]


def school_with_terminal(system: System, enrolment: Proc, school_id: str = "SC1", county: str = "驿城区",
                         terminal_id: str = "T1") -> str:
    """Register a school of 驻马店市 and a terminal there; the terminal's access token."""
    setup_school(system, enrolment, school_id, "驻马店市", county)
    return setup_terminal(system, enrolment, terminal_id, school_id)


@pytest.fixture()
def running(system: System) -> System:
    offset = str((CHECK_DAY - datetime.now(UTC)).total_seconds())
    system.relay().start()
    capture_offset = str((CAPTURE_DAY - datetime.now(UTC)).total_seconds())
    system.service("enrolment", AID_CLOCK_OFFSET_SECONDS=capture_offset).start(wait=False)
    for name in ("spotcheck", "appeals", "hardship", "eligibility"):
        system.service(name, AID_CLOCK_OFFSET_SECONDS=offset).start(wait=False)
    system.service("facematch", name="facematch-1", AID_CLOCK_OFFSET_SECONDS=offset).start(wait=False)
    system.service("facematch", name="facematch-2", AID_CLOCK_OFFSET_SECONDS=offset).start(wait=False)
    for proc in served(system).values():
        proc.wait_healthy(timeout=120)
    return system


def served(system: System) -> dict[str, Proc]:
    """The relay and the services: every process with metrics and health (the development
    issuer, a stand-in for the province's identity provider, has neither)."""
    return {name: proc for name, proc in system.procs.items() if proc.metrics_port}


def test_every_process_is_healthy_and_exposes_metrics(running: System) -> None:
    assert http_json("GET", f"{running.issuer_url}/health")[0] == 200
    assert len(served(running)) == 8
    for name, proc in served(running).items():
        text = proc.metrics()
        assert "aid_" in text, name
        assert "python_info" in text or "process_cpu_seconds_total" in text, name


def test_new_capture_spot_check_and_proxy_detection_end_to_end(running: System) -> None:
    url = running.database_url
    enrolment, spotcheck = running.procs["enrolment"], running.procs["spotcheck"]
    terminal = school_with_terminal(running, enrolment)
    other_terminal = school_with_terminal(running, enrolment, "SC2", "西平县", "T2")
    register_student(running, enrolment, "A0001", 1)  # asserts the ID number comes back masked
    register_student(running, enrolment, "B0002", 2)

    # bad input gets specific errors and changes nothing
    staff = school_token(running)
    bad_number = "110101200703070011"
    status, body = enrolment.api("POST", "/students", {"student_id": "C0003", "id_number": bad_number},
                                 token=staff)
    assert (status, body["error"]) == (422, "INVALID_REQUEST") and body["fields"], body
    status, body = enrolment.api("POST", "/students", student_body("C0003", 3, id_number=bad_number),
                                 token=staff)
    assert (status, body["error"]) == (422, "INVALID_ID_NUMBER"), body
    one_frame = {"frames": [photo("obama_1.jpg")], "id_photo": photo("obama_4.jpg")}
    status, body = enrolment.api("POST", "/enrolments", {"student_id": "NOPE1", **one_frame}, token=terminal)
    assert (status, body["error"]) == (404, "UNKNOWN_STUDENT")
    status, body = enrolment.api("POST", "/enrolments", {"student_id": "A0001", **one_frame},
                                 token=other_terminal)
    assert (status, body["error"]) == (403, "OUTSIDE_AREA")
    assert not events(url, "CaptureSubmitted") and not events(url, "StudentRegistered", student_id="C0003")

    # A: live burst matches the ID-card photo -> verified; B: ID photo of someone else -> provisional
    for student, frames, id_photo in (("A0001", ["obama_1.jpg", "obama_2.jpg", "obama_3.jpg"], "obama_4.jpg"),
                                      ("B0002", ["kit_harington_1.jpg", "kit_harington_2.jpg",
                                                 "kit_harington_3.jpg"], "rose_leslie_1.jpg")):
        status, body = enrolment.api("POST", "/enrolments", {
            "student_id": student, "frames": [photo(f) for f in frames], "id_photo": photo(id_photo)},
            token=terminal)
        assert status == 202, body
    wait_for(lambda: len(events(url, "StudentEnrolled")) == 2, timeout=120, what="both enrolments decided")
    modes = {e["student_id"]: e["mode"] for e in events(url, "StudentEnrolled")}
    assert modes == {"A0001": "verified", "B0002": "provisional"}
    assert "NO_MATCH" in events(url, "CaptureRejected", student_id="B0002")[0]["reasons"]

    province = province_token(running)
    status, body = spotcheck.api("POST", "/checks", {
        "opens_at": "2026-10-22T10:00:00+08:00", "closes_at": "2026-10-22T15:00:00+08:00",
        "school_ids": ["SC1"]}, token=province)
    assert status == 201, body
    check_id = body["check_id"]
    status, body = spotcheck.api("POST", "/checks", {
        "opens_at": "2026-10-22T09:00:00+08:00", "closes_at": "2026-10-22T15:00:00+08:00"}, token=province)
    assert (status, body["error"]) == (400, "BAD_WINDOW")

    # genuine check-in by A; a proxy: B's face claimed as A (both in A's app)
    app = running.token("student", student="A0001")
    for frames in (["obama_720p.jpg", "obama_4.jpg", "obama_1.jpg"],
                   ["kit_harington_2.jpg", "kit_harington_3.jpg", "kit_harington_1.jpg"]):
        status, body = spotcheck.api("POST", f"/checks/{check_id}/captures", {
            "student_id": "A0001", "frames": [photo(f) for f in frames]}, token=app)
        assert status == 202, body
    wait_for(lambda: len(events(url, "CaptureVerified", purpose="spot_check"))
             + len(events(url, "CaptureRejected", purpose="spot_check")) == 2, timeout=120,
             what="check-ins matched")
    (verified,) = events(url, "CaptureVerified", purpose="spot_check")
    assert verified["student_id"] == "A0001" and verified["distance"] < verified["threshold"]
    (proxy,) = events(url, "CaptureRejected", purpose="spot_check")
    assert "PROXY_SUSPECT" in proxy["reasons"] and proxy["suspected_student_id"] == "B0002"
    status, verdict = spotcheck.api("GET", f"/captures/{proxy['capture_id']}", token=app)
    assert (status, verdict["status"]) == (200, "rejected")
    assert "PROXY_SUSPECT" in [r["code"] for r in verdict["reasons"]]

    # the check closes; the eligibility projection shows A passed October and B failed it
    assert spotcheck.api("POST", f"/checks/{check_id}/close", token=province)[0] == 200
    eligibility = running.procs["eligibility"]

    def october(student: str) -> Any:
        status, body = eligibility.api("GET", f"/students/{student}?semester=2026-autumn", token=province)
        if status != 200:
            return None
        months = {m["month"]: m for m in body["statuses"][0]["months"]}
        return months.get("2026-10", {}).get("outcome")

    wait_for(lambda: october("A0001") == "passed" and october("B0002") == "failed", timeout=60,
             what="eligibility projection updated")
    status, body = eligibility.api("GET", "/schools/SC1/months/2026-10", token=province)
    assert status == 200, body
    status, summary = eligibility.api("GET", "/summary/2026-10?city=%E9%A9%BB%E9%A9%AC%E5%BA%97%E5%B8%82",
                                      token=province)
    assert status == 200, summary
    assert (summary["students"], summary["passed"], summary["failed"]) == (2, 1, 1), summary
    status, body = eligibility.api("GET", "/summary/2026-13x", token=province)
    assert (status, body["error"], body["fields"][0]["path"]) == (422, "INVALID_REQUEST", "path.month"), body
    from nameko.standalone.rpc import ClusterRpcProxy

    with ClusterRpcProxy({"AMQP_URI": running.amqp_url}, timeout=30) as rpc:
        via_rpc = rpc.eligibility.student_status("A0001", "2026-autumn")
        assert via_rpc["statuses"][0]["semester"] == "2026-autumn"
        assert rpc.eligibility.province_summary("2026-10", school_id="SC1")["passed"] == 1
        assert rpc.eligibility.school_month("SC1", "2026-10")["counts"]
    assert eligibility.api("GET", "/students/NOPE", token=province)[0] == 404

    # no event carries an image, a template or a raw ID number
    with psycopg.connect(url) as conn:
        dump = " ".join(str(r[0]) for r in conn.execute("SELECT payload FROM events").fetchall())
    assert id_number(1) not in dump and "/9j/" not in dump and len(dump) < 200_000

    # both facematch instances took work (competing consumers on one queue)
    handled = [metric_value(running.procs[n].metrics(), "aid_consumer_handled_total", service="facematch",
                            outcome="ok") for n in ("facematch-1", "facematch-2")]
    assert sum(handled) == 4


def test_two_facematch_instances_share_a_burst_of_captures(running: System) -> None:
    url = running.database_url
    enrolment = running.procs["enrolment"]
    terminal = school_with_terminal(running, enrolment)
    for i in range(8):
        register_student(running, enrolment, f"S{i:04d}", 10 + i)
    started = time.monotonic()
    for i in range(8):
        status, body = enrolment.api("POST", "/enrolments", {
            "student_id": f"S{i:04d}", "frames": [photo(f"obama_{n}.jpg") for n in (1, 2, 3)],
            "id_photo": photo("obama_4.jpg")}, token=terminal)
        assert status == 202, body
    wait_for(lambda: len(events(url, "CaptureVerified")) + len(events(url, "CaptureRejected")) == 8,
             timeout=180, what="eight captures matched")
    elapsed = time.monotonic() - started
    handled = [metric_value(running.procs[n].metrics(), "aid_consumer_handled_total", service="facematch",
                            outcome="ok") for n in ("facematch-1", "facematch-2")]
    assert sum(handled) == 8 and min(handled) >= 1, (handled, elapsed)
    # the same face under eight identities: all but the first are flagged
    rejected = events(url, "CaptureRejected")
    assert len(rejected) >= 7 and all("DUPLICATE_IDENTITY" in r["reasons"] for r in rejected)


def test_a_real_prometheus_scrapes_every_process(running: System, tmp_path: Path) -> None:
    from tests.deploy.prom import running_prometheus
    from tests.deploy.prom import wait_for as prom_wait

    setup_school(running, running.procs["enrolment"], "SC1")
    register_student(running, running.procs["enrolment"], "A0001", 1)
    status, body = running.procs["hardship"].api("POST", "/determinations", {
        "student_id": "A0001", "categories": [1], "effective_semester": "2026-autumn",
        "methods": ["information_comparison"]}, token=school_token(running))
    assert status == 201, body
    targets = {name: f"127.0.0.1:{proc.metrics_port}" for name, proc in served(running).items()}
    with running_prometheus(targets, tmp_path) as base:
        up = prom_wait(base, "sum(up)", timeout=30,
                       predicate=lambda r: r and float(r[0]["value"][1]) == len(targets))
        assert float(up[0]["value"][1]) == len(targets)
        result = prom_wait(base, 'aid_http_requests_total{service="hardship",endpoint="determine",'
                                 'status="201"}')
        assert float(result[0]["value"][1]) == 1.0
