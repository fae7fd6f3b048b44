"""The typed status model (``contracts.eligibility_status``) and the schema generated from it."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from contracts import __main__ as contracts_cli
from contracts.eligibility_status import EligibilityStatus, MonthStatus, StatusDocument
from contracts.registry import SCHEMA_DIR
from contracts.schema_gen import all_schemas, status_schema
from tests.eligibility.elig_builders import Log, at, replay

FILE = "eligibility-status.v1.json"


def _statuses() -> list[dict[str, Any]]:
    log = Log()
    log.ordinary("S1")
    log.ordinary("S2", level="especially_difficult")
    checks = log.routine_checks()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.pass_checks("S2", checks, except_months=["2026-10"])
    log.absent("S2", checks["2026-10"], "leave", at("2026-10-22", 10, 30))
    log.published("2026-11", "2026-12-01")
    log.appeal("S1", "2026-11", "2026-12-02", decision="approved")
    log.placement("S2", "2026-12-01", "2026-12-31")
    log.roster("2026-autumn", ["S1", "S3"])
    return list(replay(log.events).values())


def test_the_schema_file_is_the_one_generated_from_the_model() -> None:
    assert FILE in all_schemas()
    assert (SCHEMA_DIR / FILE).read_text(encoding="utf-8") == contracts_cli.render(status_schema())


def test_a_stale_schema_file_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, copy)
    monkeypatch.setattr(contracts_cli, "SCHEMA_DIR", copy)
    assert contracts_cli.main(["check"]) == 0
    stale = json.loads((copy / FILE).read_text(encoding="utf-8"))
    del stale["$defs"]["status"]["properties"]["grant_total_yuan"]
    (copy / FILE).write_text(contracts_cli.render(stale), encoding="utf-8")
    assert contracts_cli.main(["check"]) == 1
    assert f"stale or missing: {FILE}" in capsys.readouterr().err
    assert contracts_cli.main(["generate"]) == 0
    assert contracts_cli.main(["check"]) == 0


def test_the_schema_follows_the_dataclasses() -> None:
    schema = status_schema()
    status = schema["$defs"]["status"]
    assert status["required"] == [f.name for f in dataclasses.fields(EligibilityStatus)]
    assert schema["required"] == [f.name for f in dataclasses.fields(StatusDocument) if f.name != "filters"]
    assert schema["properties"]["statuses"]["items"] == {"$ref": "#/$defs/status"}
    assert status["properties"]["months"]["items"] == {"$ref": "#/$defs/month"}
    month = schema["$defs"]["month"]
    assert month["required"] == [f.name for f in dataclasses.fields(MonthStatus)]
    assert month["properties"]["month"] == {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}
    assert month["properties"]["excuse"]["enum"] == [None, "leave", "cognitive_internship",
                                                     "shadowing_internship"]
    assert month["properties"]["event_ids"]["items"] == {"type": "string", "format": "uuid"}


def test_derived_statuses_read_into_the_model_and_back_unchanged_and_validate() -> None:
    schema = status_schema()
    row = Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/status"},
                               format_checker=FormatChecker())
    statuses = _statuses()
    assert {s["roster"]["status"] for s in statuses} >= {"matched", "system_only", "national_only"}
    for status in statuses:
        row.validate(status)
        model = EligibilityStatus.from_dict(status)
        assert model.to_dict() == status
        assert model.to_json() == json.dumps(status, ensure_ascii=False)
    s1 = EligibilityStatus.from_dict(statuses[0])
    assert s1.months[1].status == "passed_on_appeal" and s1.months[1].replaced is not None
    assert s1.grant[0].rules == [] and s1.tuition_waiver.decision == "granted"


def test_the_model_refuses_a_status_it_does_not_describe() -> None:
    status = _statuses()[0]
    with pytest.raises(TypeError, match="EligibilityStatus: unknown field"):
        EligibilityStatus.from_dict({**status, "bonus": 1})
    broken = json.loads(json.dumps(status))
    del broken["months"][0]["outcome"]
    with pytest.raises(TypeError, match="MonthStatus: missing field 'outcome'"):
        EligibilityStatus.from_dict(broken)
