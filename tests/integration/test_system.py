"""The whole system as local processes over the real RabbitMQ and PostgreSQL, with the real
face models on real photos: registration, new capture (verified and provisional), a spot
check with a genuine and a proxy check-in, two facematch instances sharing the load, health
and metrics of every process."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from contracts.identity import check_digit
from tests.support import System, metric_value, wait_for

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


def id_number(seq: int) -> str:
    first17 = f"11010120070307{seq:03d}"
    return first17 + check_digit(first17)


def events(url: str, type_: str, **payload: str) -> list[dict[str, Any]]:
    query = "SELECT payload FROM events WHERE type = %s"
    params: list[Any] = [type_]
    for key, value in payload.items():
        query += f" AND payload->>'{key}' = %s"
        params.append(value)
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(query + " ORDER BY position", params).fetchall()]


def register(enrolment: Any, student_id: str, seq: int) -> None:
    status, body = enrolment.api("POST", "/students", {
        "student_id": student_id, "name": "测试学生", "id_number": id_number(seq),
        "school": {"school_id": "SC1", "city": "驻马店市", "county": "驿城区"},
        "grade": 2, "class_name": "会计2班", "major": "会计", "enrolment_year": 2025, "enrolment_season": "秋季",
    })
    assert status == 201, body
    assert body["id_number_masked"].count("*") == 8


@pytest.fixture()
def running(system: System) -> System:
    offset = str((CHECK_DAY - datetime.now(UTC)).total_seconds())
    system.relay().start()
    system.service("enrolment", AID_CLOCK_OFFSET_SECONDS=str((CAPTURE_DAY - datetime.now(UTC)).total_seconds())
                   ).start(wait=False)
    for name in ("spotcheck", "appeals", "hardship", "eligibility"):
        system.service(name, AID_CLOCK_OFFSET_SECONDS=offset).start(wait=False)
    system.service("facematch", name="facematch-1", AID_CLOCK_OFFSET_SECONDS=offset).start(wait=False)
    system.service("facematch", name="facematch-2", AID_CLOCK_OFFSET_SECONDS=offset).start(wait=False)
    for proc in system.procs.values():
        proc.wait_healthy(timeout=120)
    return system


def test_every_process_is_healthy_and_exposes_metrics(running: System) -> None:
    for name, proc in running.procs.items():
        text = proc.metrics()
        assert "aid_" in text, name
        assert "python_info" in text or "process_cpu_seconds_total" in text, name


def test_new_capture_spot_check_and_proxy_detection_end_to_end(running: System) -> None:
    url = running.database_url
    enrolment, spotcheck = running.procs["enrolment"], running.procs["spotcheck"]
    register(enrolment, "A0001", 1)
    register(enrolment, "B0002", 2)

    # bad input gets specific errors and changes nothing
    assert enrolment.api("POST", "/students", {"student_id": "C0003", "id_number": "110101200703070011"})[1][
        "error"] in ("MISSING_FIELD", "INVALID_ID_NUMBER")
    status, body = enrolment.api("POST", "/enrolments", {"student_id": "NOPE1", "school_id": "SC1"})
    assert (status, body["error"]) == (404, "UNKNOWN_STUDENT")
    status, body = enrolment.api("POST", "/enrolments", {"student_id": "A0001", "school_id": "SC9"})
    assert (status, body["error"]) == (403, "WRONG_SCHOOL")

    # A: live burst matches the ID-card photo -> verified; B: ID photo of someone else -> provisional
    for student, frames, id_photo in (("A0001", ["obama_1.jpg", "obama_2.jpg", "obama_3.jpg"], "obama_4.jpg"),
                                      ("B0002", ["kit_harington_1.jpg", "kit_harington_2.jpg",
                                                 "kit_harington_3.jpg"], "rose_leslie_1.jpg")):
        status, body = enrolment.api("POST", "/enrolments", {
            "student_id": student, "school_id": "SC1", "terminal_id": "T1", "channel": "terminal",
            "frames": [photo(f) for f in frames], "id_photo": photo(id_photo)})
        assert status == 202, body
    wait_for(lambda: len(events(url, "StudentEnrolled")) == 2, timeout=120, what="both enrolments decided")
    modes = {e["student_id"]: e["mode"] for e in events(url, "StudentEnrolled")}
    assert modes == {"A0001": "verified", "B0002": "provisional"}
    assert "NO_MATCH" in events(url, "CaptureRejected", student_id="B0002")[0]["reasons"]

    status, body = spotcheck.api("POST", "/checks", {
        "opens_at": "2026-10-22T10:00:00+08:00", "closes_at": "2026-10-22T15:00:00+08:00",
        "school_ids": ["SC1"], "initiated_by": "province"})
    assert status == 201, body
    check_id = body["check_id"]
    status, body = spotcheck.api("POST", "/checks", {
        "opens_at": "2026-10-22T09:00:00+08:00", "closes_at": "2026-10-22T15:00:00+08:00"})
    assert (status, body["error"]) == (400, "BAD_WINDOW")

    # genuine check-in by A; a proxy: B's face claimed as A
    for frames in (["obama_720p.jpg", "obama_4.jpg", "obama_1.jpg"],
                   ["kit_harington_2.jpg", "kit_harington_3.jpg", "kit_harington_1.jpg"]):
        status, body = spotcheck.api("POST", f"/checks/{check_id}/captures", {
            "student_id": "A0001", "school_id": "SC1", "channel": "app", "frames": [photo(f) for f in frames]})
        assert status == 202, body
    wait_for(lambda: len(events(url, "CaptureVerified", purpose="spot_check"))
             + len(events(url, "CaptureRejected", purpose="spot_check")) == 2, timeout=120, what="check-ins matched")
    (verified,) = events(url, "CaptureVerified", purpose="spot_check")
    assert verified["student_id"] == "A0001" and verified["distance"] < verified["threshold"]
    (proxy,) = events(url, "CaptureRejected", purpose="spot_check")
    assert "PROXY_SUSPECT" in proxy["reasons"] and proxy["suspected_student_id"] == "B0002"

    # the check closes; the eligibility projection shows A passed October and B failed it
    assert spotcheck.api("POST", f"/checks/{check_id}/close")[0] == 200
    eligibility = running.procs["eligibility"]

    def october(student: str) -> Any:
        status, body = eligibility.api("GET", f"/students/{student}?semester=2026-autumn")
        if status != 200:
            return None
        months = {m["month"]: m for m in body["statuses"][0]["months"]}
        return months.get("2026-10", {}).get("outcome")

    wait_for(lambda: october("A0001") == "passed" and october("B0002") == "failed", timeout=60,
             what="eligibility projection updated")
    status, body = eligibility.api("GET", "/schools/SC1/months/2026-10")
    assert status == 200, body
    status, summary = eligibility.api("GET", "/summary/2026-10?city=驻马店市".replace("驻马店市", "%E9%A9%BB%E9%A9%AC%E5%BA%97%E5%B8%82"))
    assert status == 200 and summary["students"] == 2 and summary["passed"] == 1 and summary["failed"] == 1, summary
    assert eligibility.api("GET", "/summary/2026-13x")[1]["error"] == "BAD_MONTH"
    from nameko.standalone.rpc import ClusterRpcProxy

    with ClusterRpcProxy({"AMQP_URI": running.amqp_url}, timeout=30) as rpc:
        via_rpc = rpc.eligibility.student_status("A0001", "2026-autumn")
        assert via_rpc["statuses"][0]["semester"] == "2026-autumn"
        assert rpc.eligibility.province_summary("2026-10", school_id="SC1")["passed"] == 1
        assert rpc.eligibility.school_month("SC1", "2026-10")["counts"]
    assert eligibility.api("GET", "/students/NOPE")[0] == 404

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
    for i in range(8):
        register(enrolment, f"S{i:04d}", 10 + i)
    started = time.monotonic()
    for i in range(8):
        status, body = enrolment.api("POST", "/enrolments", {
            "student_id": f"S{i:04d}", "school_id": "SC1", "terminal_id": "T1",
            "frames": [photo("obama_1.jpg"), photo("obama_2.jpg"), photo("obama_3.jpg")],
            "id_photo": photo("obama_4.jpg")})
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

    running.procs["hardship"].api("POST", "/determinations", {
        "student_id": "A0001", "school_id": "SC1", "categories": [1], "effective_semester": "2026-autumn",
        "methods": ["information_comparison"]})
    targets = {name: f"127.0.0.1:{proc.metrics_port}" for name, proc in running.procs.items()}
    with running_prometheus(targets, tmp_path) as base:
        up = prom_wait(base, "sum(up)", timeout=30, predicate=lambda r: r and float(r[0]["value"][1]) == len(targets))
        assert float(up[0]["value"][1]) == len(targets)
        result = prom_wait(base, 'aid_http_requests_total{service="hardship",endpoint="determine",status="201"}')
        assert float(result[0]["value"][1]) == 1.0
