"""The command line: verify prints JSON, evaluate prints rates and a ROC table and plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from services.facematch.cli import main

pytestmark = pytest.mark.faces


def test_help_is_available_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["verify"], ["evaluate"]):
        with pytest.raises(SystemExit) as exited:
            main([*argv, "--help"])
        assert exited.value.code == 0
    assert "--plot" in capsys.readouterr().out


def test_verify_prints_a_match(faces_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", str(faces_dir / "obama/obama_1.jpg"), str(faces_dir / "obama/obama_4.jpg")])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["match"] is True
    assert set(result) == {"match", "distance", "threshold", "quality", "liveness", "reasons"}


def test_verify_with_frames_checks_liveness(faces_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    still = str(faces_dir / "obama/obama_2.jpg")
    code = main(["verify", str(faces_dir / "obama/obama_1.jpg"), still, "--frames", still, still])
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and result["reasons"] == ["LIVENESS_STATIC"]


def test_verify_reports_a_group_photo(faces_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["verify", str(faces_dir / "biden/biden_1.jpg"), str(faces_dir / "group/obama_and_biden.jpg")]
    )
    assert code == 1 and json.loads(capsys.readouterr().out)["reasons"] == ["MULTIPLE_FACES"]


def test_evaluate_prints_rates_roc_and_plot(
    faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [
        "obama/obama_1.jpg",
        "obama/obama_2.jpg",
        "biden/biden_1.jpg",
        "biden/biden_2.jpg",
        "group/two_people.jpg",
    ]:
        (tmp_path / "set" / Path(name).parent).mkdir(parents=True, exist_ok=True)
        shutil.copy(faces_dir / name, tmp_path / "set" / name)
    plot = tmp_path / "roc.png"
    assert main(["evaluate", str(tmp_path / "set"), "--plot", str(plot), "--id-card"]) == 0
    out = capsys.readouterr().out
    assert "genuine pairs: 2  impostor pairs: 4" in out
    assert "skipped 1 with MULTIPLE_FACES: group/two_people.jpg" in out
    assert "FAR 0.0000  FRR 0.0000" in out and "threshold      FAR      FRR" in out
    assert plot.read_bytes().startswith(b"\x89PNG")
