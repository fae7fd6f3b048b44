"""The terminal simulator (``aid sim``) against the real enrolment, spotcheck and eligibility
services, issuer, PostgreSQL and RabbitMQ: every command a person drives a school month with,
its JSON answer, its one-line refusals and its exit codes. Face matching is not running here
(the semester test, tests/integration/test_semester.py, drives captures through the same client)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from simulator.cli import main
from simulator.client import AidClient, Endpoints, Tokens
from tests.flows import id_number
from tests.sim_support import sim_client
from tests.support import System, wait_for

pytestmark = pytest.mark.integration
TODAY = datetime.fromisoformat("2026-10-22T11:00:00+08:00")
STAFF = ("--school", "SC1")
FACES = Path(__file__).resolve().parents[3] / "shared" / "faces"


def run(client: AidClient, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """Run ``aid sim ARGV``: exit code, the JSON it printed (None if nothing), its stderr."""
    code = main(list(argv), client=client)
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err.strip()


def events(system: System, type_: str) -> list[dict[str, Any]]:
    with psycopg.connect(system.database_url) as conn:
        return [r[0] for r in conn.execute("SELECT payload FROM events WHERE type = %s ORDER BY position",
                                           (type_,)).fetchall()]


def test_a_school_month_driven_through_the_simulator(system: System, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    offset = str((TODAY - datetime.now(UTC)).total_seconds())
    procs = {"enrolment": system.service("enrolment").start(wait=False),
             "spotcheck": system.service("spotcheck", AID_CLOCK_OFFSET_SECONDS=offset).start(wait=False),
             "eligibility": system.service("eligibility").start(wait=False)}
    system.relay().start()
    for proc in procs.values():
        proc.wait_healthy(timeout=120)
    client = sim_client(system, procs, tmp_path / "sim")

    def sim(*argv: str) -> tuple[int, Any, str]:
        return run(client, capsys, *argv)

    code, answer, _ = sim("school", "SC1", "--name", "驻马店职业技术学校", "--city", "驻马店市",
                          "--county", "驿城区")
    assert (code, answer) == (0, {"school_id": "SC1"})
    code, answer, err = sim(*STAFF, "terminal", "T1", "--label", "一楼大厅")
    assert code == 0 and answer["client_id"] and "client_secret" not in answer, answer
    kept = tmp_path / "sim" / "terminals.json"
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600 and "client_secret" in kept.read_text()

    roster = tmp_path / "roster.csv"
    rows = ["学号,姓名,身份证号,年级,班级,专业,入学年份,入学季节",
            f"S0001,王小明,{id_number(1)},2,会计2班,会计,2025,秋季",
            f"S0002,李小红,{id_number(2)},2,会计2班,会计,2025,秋季",
            f"S0003,张小刚,{id_number(3)[:17]}0,2,会计2班,会计,2025,秋季"]  # wrong check digit
    roster.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, report, _ = sim("roster", str(roster), "--school", "SC1")
    assert code == 0 and (report["registered"], report["refused"]) == (2, 1), report
    assert report["rows"][2]["errors"][0]["field"] == "id_number" and id_number(3)[:17] not in str(report)

    # a check of today (the service's clock: 2026-10-22 11:00 Shanghai)
    code, check, _ = sim(*STAFF, "open", "--day", "2026-10-22")
    assert code == 0 and check["month"] == "2026-10" and check["schools"] == 1, check
    check_id = check["check_id"]
    code, answer, err = sim(*STAFF, "open", "--day", "2026-10-22", "--opens", "09:00")
    assert (code, answer) == (1, None) and err.startswith("aid sim open: HTTP 400 BAD_WINDOW: "), err

    # the terminal takes its token from the issuer; a student never enrolled cannot check in
    frames = [str(FACES / "obama" / f"obama_{n}.jpg") for n in (1, 2, 3)]
    code, _, err = sim("capture", check_id, "S0001", *frames, "--terminal", "T1")
    assert code == 1 and "HTTP 409 NOT_ENROLLED" in err, err
    code, _, err = sim("capture", check_id, "S0001", "no-such-frame.jpg", "--terminal", "T1")
    assert code == 2 and "no-such-frame.jpg" in err, err
    code, _, err = sim("capture", check_id, "S0001", *frames, "--terminal", "T9")
    assert code == 2 and "UNKNOWN_TERMINAL" in err, err

    # liveness challenges: none for a check-in of a student without an enrolment; one for a new
    # capture, which the burst then names (with the frames' times)
    code, _, err = sim("challenge", "S0001", "--terminal", "T1", "--check", check_id)
    assert code == 1 and "HTTP 409 NOT_ENROLLED" in err, err
    code, drawn, _ = sim("challenge", "S0001", "--terminal", "T1")
    assert code == 0 and drawn["action"] in ("blink", "turn_left", "turn_right"), drawn
    code, _, err = sim("enrol", "S0001", *frames, "--id-photo", frames[0], "--terminal", "T1",
                       "--challenge", drawn["challenge_id"], "--frame-times", "0,400")
    assert code == 2 and "2 times for 3 frames" in err, err
    code, submitted, _ = sim("enrol", "S0001", *frames, "--id-photo", frames[0], "--terminal", "T1",
                             "--challenge", drawn["challenge_id"])
    assert code == 0 and submitted["status"] == "submitted", submitted
    (answered,) = [e for e in events(system, "CaptureSubmitted")
                   if e["capture_id"] == submitted["capture_id"]]
    assert answered.get("challenge_id") == drawn["challenge_id"], answered

    code, answer, _ = sim(*STAFF, "absence", check_id, "S0002", "--reason", "leave",
                          "--reported-at", "2026-10-22T10:30:00+08:00")
    assert code == 0 and (answer["reason"], answer["warnings"]) == ("leave", []), answer
    code, _, err = sim("absence", check_id, "S0002", "--reason", "leave")
    assert code == 2 and "--school" in err

    code, plan, _ = sim(*STAFF, "internship", "file", "S0001", "--kind", "shadowing",
                        "--starts", "2026-11-01", "--ends", "2027-03-31", "--education-filed", "2026-10-22",
                        "--aid-filed", "2026-10-22")
    assert code == 0 and plan["filed_late"] is True and plan["warnings"], plan   # 10 days before departure
    code, _, err = sim(*STAFF, "internship", "departed", plan["plan_id"],
                       "--on", "2026-11-01")
    assert code == 1 and "HTTP 400 BAD_DATE: the departure is in the future" in err, err

    code, placement, _ = sim("placement", "confirm", "S0002", "--terminal", "T1",
                             "--company", "驻马店市某某机械有限公司", "--location", "驻马店市驿城区某某路1号",
                             "--supervisor", "王老师", "--contact", "0396-1234567",
                             "--starts", "2026-11-01", "--ends", "2027-01-31")
    assert code == 0 and placement["student_id"] == "S0002", placement
    code, ended, _ = sim(*STAFF, "placement", "end", placement["placement_id"],
                         "--on", "2026-12-31")
    assert code == 0 and ended["ended_on"] == "2026-12-31", ended

    code, closed, _ = sim("close", check_id)
    assert code == 0 and closed["check_id"] == check_id
    code, _, err = sim("close", check_id)
    assert code == 1 and "HTTP 409 ALREADY_CLOSED" in err, err
    code, published, _ = sim(*STAFF, "publish", "2026-10")
    assert code == 0 and published["month"] == "2026-10", published
    assert [e["month"] for e in events(system, "MonthResultsPublished")] == ["2026-10"]

    # eligibility: neither was enrolled by the deadline (October failed, the leave changes nothing);
    # S0002's placement internship covers November and December
    def months(student: str) -> dict[str, str]:
        code, answer, _ = sim(*STAFF, "status", student, "--semester", "2026-autumn")
        return {m["month"]: m["status"] for m in answer["statuses"][0]["months"]} if code == 0 else {}

    wait_for(lambda: months("S0002").get("2026-11") == "placement_internship", 60,
             what="eligibility's months")
    assert months("S0001") == {"2026-10": "not_enrolled_in_time", "2026-11": "no_check",
                               "2026-12": "no_check"}
    assert months("S0002") == {"2026-10": "not_enrolled_in_time", "2026-11": "placement_internship",
                               "2026-12": "placement_internship"}
    code, month, _ = sim(*STAFF, "month", "2026-10")
    assert code == 0 and month["school_id"] == "SC1", month
    listing = tmp_path / "list.csv"
    code, listed, _ = sim(*STAFF, "results", "2026-10", "--format", "csv", "--out", str(listing))
    assert code == 0 and listed["state"] == "published" and "content_base64" not in listed, listed
    text = listing.read_bytes().decode("utf-8-sig")
    assert "王*" in text and "王小明" not in text and id_number(1) not in text
    code, left, _ = sim(*STAFF, "leave", "S0001", "--reason", "withdrawn", "--on", "2026-10-22")
    assert code == 0 and left["aid_stops_from"] == "2026-11", left
    code, _, err = sim(*STAFF, "leave", "S0001", "--reason", "withdrawn", "--on", "2026-10-22")
    assert code == 1 and "HTTP 409 ALREADY_LEFT" in err, err

    # usage and unreachable services: exit 2 and 3, one line each
    code, _, err = sim("verdict", "nope")
    assert code == 2 and "--terminal" in err
    nowhere = Endpoints.from_env({"AID_SPOTCHECK_URL": "http://127.0.0.1:9",
                                  "AID_AUTH_ISSUER": system.issuer_url})
    offline = AidClient(nowhere, Tokens(nowhere, client.tokens.credentials, client.tokens.env), retries=0)
    code, _, err = run(offline, capsys, "close", check_id)
    assert code == 3 and err.startswith("aid sim close: UNREACHABLE: http://127.0.0.1:9/checks/"), err
    assert len(err.splitlines()) == 1

    # the installed entry point, configured only by the environment (aid sim ...)
    env = {**os.environ, "AID_ELIGIBILITY_URL": f"http://127.0.0.1:{procs['eligibility'].api_port}",
           "AID_SPOTCHECK_URL": f"http://127.0.0.1:{procs['spotcheck'].api_port}",
           "AID_AUTH_ISSUER": system.issuer_url, "AID_AUTH_KEY_FILE": str(system.key_file),
           "AID_SIM_DIR": str(tmp_path / "sim"), "AID_SIM_SCHOOL": "SC1"}
    aid = [sys.executable, "-m", "backbone.cli", "sim"]
    done = subprocess.run([*aid, "status", "S0002"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and json.loads(done.stdout)["student_id"] == "S0002", done.stderr
    done = subprocess.run([*aid, "verdict", "nope", "--terminal", "T1"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.startswith("aid sim verdict: HTTP 404 UNKNOWN_CAPTURE"), done
