"""``python -m services.eligibility.replay`` on JSONL logs: outputs, filters, as-of, errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from services.eligibility.replay import main
from tests.eligibility.elig_builders import AUTUMN_2026, ROOT_DIR, Log, at, month, write_jsonl

SCHEMA = json.loads(
    (ROOT_DIR / "contracts" / "schemas" / "eligibility-status.v1.json").read_text(encoding="utf-8")
)


def _history() -> Log:
    log = Log()
    log.ordinary("S1")
    log.ordinary("S2", school="4101000002")
    log.ordinary("S3", level="especially_difficult")
    checks = log.routine_checks()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.pass_checks("S2", checks)
    log.pass_checks("S3", checks, except_months=["2026-10"])
    log.published("2026-11", "2026-12-01")
    # The appeal is approved on 2026-12-04 but the decision reaches the log only on 2026-12-20.
    log.appeal("S1", "2026-11", "2026-12-02", decision="approved", resolved=at("2026-12-04", 10),
               resolved_recorded=at("2026-12-20", 10))
    log.absent("S3", checks["2026-10"], "leave", at(AUTUMN_2026["2026-10"], 11))
    return log


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "log.jsonl"
    write_jsonl(path, _history().events)
    return path


def _run(*args: str) -> int:
    return main([*args, "--progress-every", "0"])


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_json_output_validates_against_the_documented_schema(log_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    assert _run("--source", f"jsonl:{log_file}", "--out-json", str(out)) == 0
    doc = _json(out)
    Draft202012Validator(SCHEMA, format_checker=FormatChecker()).validate(doc)
    assert doc["count"] == 3 == len(doc["statuses"])
    assert [s["student_id"] for s in doc["statuses"]] == ["S1", "S2", "S3"]
    assert month(doc["statuses"][0], "2026-11")["status"] == "passed_on_appeal"


def test_csv_output_has_one_row_per_student_and_semester(log_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    assert _run("--source", f"jsonl:{log_file}", "--out-csv", str(out)) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["student_id"], r["semester"]) for r in rows] == [("S1", "2026-autumn"), ("S2", "2026-autumn"),
                                                                 ("S3", "2026-autumn")]
    s3 = rows[2]
    assert (s3["check_1_month"], s3["check_1_status"]) == ("2026-10", "excused")
    assert (s3["grant_1_month"], s3["grant_1_decision"], s3["grant_1_yuan"]) == ("2026-09", "granted", "250")
    assert s3["grant_total_yuan"] == "1250" and s3["tuition_waiver"] == "granted"


def test_filters_by_student_school_and_semester(log_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    assert _run("--source", f"jsonl:{log_file}", "--out-json", str(out), "--student", "S3") == 0
    assert [s["student_id"] for s in _json(out)["statuses"]] == ["S3"]
    assert _run("--source", f"jsonl:{log_file}", "--out-json", str(out), "--school", "4101000002") == 0
    assert [s["student_id"] for s in _json(out)["statuses"]] == ["S2"]
    assert _run("--source", f"jsonl:{log_file}", "--out-json", str(out), "--semester", "2027-spring") == 0
    assert _json(out)["statuses"] == []


def test_student_filter_gives_the_same_status_as_a_full_replay(log_file: Path, tmp_path: Path) -> None:
    full, one = tmp_path / "full.json", tmp_path / "one.json"
    _run("--source", f"jsonl:{log_file}", "--out-json", str(full))
    _run("--source", f"jsonl:{log_file}", "--out-json", str(one), "--student", "S1")
    assert _json(one)["statuses"] == [s for s in _json(full)["statuses"] if s["student_id"] == "S1"]


def test_as_of_before_and_after_a_late_recorded_appeal(log_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    assert _run("--source", f"jsonl:{log_file}", "--out-json", str(out), "--as-of", "2026-12-10") == 0
    before = _json(out)
    assert before["as_of"].startswith("2026-12-10T23:59:59")
    assert month(before["statuses"][0], "2026-11")["status"] == "failed"
    assert month(before["statuses"][0], "2026-11")["notes"] == [
        "appeal A-S1-2026-11: not handled, original result stands"
    ]
    assert (
        _run("--source", f"jsonl:{log_file}", "--out-json", str(out), "--as-of", "2026-12-20T10:00:00+08:00")
        == 0
    )
    assert month(_json(out)["statuses"][0], "2026-11")["status"] == "passed_on_appeal"


def test_as_of_before_any_check_shows_what_was_known_then(log_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    assert _run("--source", f"jsonl:{log_file}", "--out-json", str(out), "--as-of", "2026-10-01") == 0
    st = _json(out)["statuses"][0]
    assert {m["outcome"] for m in st["months"]} == {"no_check"}
    assert {g["decision"] for g in st["grant"]} == {"pending"}


def test_bad_line_is_reported_with_its_line_number(
    log_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = log_file.read_text(encoding="utf-8").splitlines()
    lines.insert(4, '{"event_id": "x", "type": "CheckOpened", oops')
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _run("--source", f"jsonl:{bad}", "--out-json", str(tmp_path / "o.json")) == 2
    err = capsys.readouterr().err
    assert f"{bad}:5: not valid JSON" in err


def test_line_breaking_the_contract_is_reported_with_its_line_number(
    log_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = log_file.read_text(encoding="utf-8").splitlines()
    doc = json.loads(lines[2])
    del doc["payload"]
    lines[2] = json.dumps(doc)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _run("--source", f"jsonl:{bad}") == 2
    assert f"{bad}:3: not a contract envelope" in capsys.readouterr().err
    doc = json.loads(lines[0])
    doc["payload"]["grade"] = "two"
    lines[2] = json.dumps(doc)
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _run("--source", f"jsonl:{bad}", "--validate") == 2
    assert f"{bad}:3: StudentRegistered.v2.json: grade: type" in capsys.readouterr().err


def test_old_schema_versions_are_upcast_on_replay(tmp_path: Path) -> None:
    log = Log()
    log.ordinary("S1")
    log.pass_checks("S1", log.routine_checks())
    docs = [e.to_dict() for e in log.events]
    reg = docs[0]
    school = reg["payload"].pop("school")
    reg["payload"]["school_id"] = school["school_id"]
    reg["schema_version"] = 1
    path = tmp_path / "v1.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n", encoding="utf-8")
    out = tmp_path / "out.json"
    assert _run("--source", f"jsonl:{path}", "--out-json", str(out), "--validate") == 0
    st = _json(out)["statuses"][0]
    assert (st["school_id"], st["city"]) == (school["school_id"], "unknown")
    assert st["grant_total_yuan"] == 5 * 167


def test_progress_goes_to_stderr_with_a_rate(
    log_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "--source",
                f"jsonl:{log_file}",
                "--out-json",
                str(tmp_path / "o.json"),
                "--progress-every",
                "10",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "replay: 10 events in" in err and "ev/s" in err


def test_module_runs_as_a_command(log_file: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.eligibility.replay",
            "--source",
            f"jsonl:{log_file}",
            "--student",
            "S2",
            "--out-csv",
            "-",
            "--progress-every",
            "0",
        ],
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines()[1].startswith("S2,2026-autumn,4101000002")


def test_unknown_source_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--source", "ftp:somewhere") == 2
    assert "unknown source" in capsys.readouterr().err


def test_check_day_helper_is_a_weekday() -> None:
    assert all(d.weekday() < 5 for d in AUTUMN_2026.values())
    assert date(2026, 10, 22).weekday() == 3
