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


def _copy_set(faces_dir: Path, root: Path, files: dict[str, str]) -> Path:
    """root/<target> <- faces_dir/<source> for each target: source."""
    for target, source in files.items():
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(faces_dir / source, root / target)
    return root


def test_evaluate_pairs_by_identity_not_by_file_name(
    faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # both people's folders hold 1.jpg and 2.jpg: four images, two people, 2 genuine + 4 impostor pairs
    root = _copy_set(faces_dir, tmp_path / "set", {
        "obama/1.jpg": "obama/obama_1.jpg", "obama/2.jpg": "obama/obama_2.jpg",
        "biden/1.jpg": "biden/biden_1.jpg", "biden/2.jpg": "biden/biden_2.jpg"})
    assert main(["evaluate", str(root), "--id-card"]) == 0
    out = capsys.readouterr().out
    assert "embedded: 4 of 2 people" in out
    assert out.count("genuine pairs: 2  impostor pairs: 4") == 1  # live vs live
    # ID card of each image against every other image (not its own): 4 genuine, 8 impostor
    assert "genuine pairs: 4  impostor pairs: 8" in out


def test_evaluate_finds_the_operating_point_and_draws_a_det_curve(
    faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy_set(faces_dir, tmp_path / "set", {
        f"{person}/{name}": f"{person}/{name}" for person, name in [
            ("obama", "obama_1.jpg"), ("obama", "obama_2.jpg"), ("obama", "obama_4.jpg"),
            ("biden", "biden_1.jpg"), ("biden", "biden_2.jpg"), ("kit_harington", "kit_harington_1.jpg"),
            ("kit_harington", "kit_harington_2.jpg"), ("kit_harington", "kit_harington_3.jpg")]})
    plot = tmp_path / "det.png"
    code = main(["evaluate", str(root), "--target-far", "0.001", "--burst", "3", "--plot", str(plot)])
    out = capsys.readouterr().out
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("operating point for FAR <= 0.001"))
    threshold = float(line.split("threshold ")[1].split()[0])
    nearest_impostor = float(out.split("smallest impostor distance: ")[1].split()[0])
    assert threshold < nearest_impostor and "FAR 0.0000 (0/" in line and "upper bound" in line
    assert "single frame" in out and "fused (mean)" in out and "best frame" in out
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_evaluate_checks_a_pair_list_against_the_folders(
    faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy_set(faces_dir, tmp_path / "set", {
        "p1/a.jpg": "obama/obama_1.jpg", "p1/b.jpg": "obama/obama_2.jpg", "p2/c.jpg": "biden/biden_1.jpg"})
    (root / "pairs.csv").write_text("a,b,same_person\np1/a.jpg,p1/b.jpg,yes\np1/a.jpg,p2/c.jpg,no\n")
    assert main(["evaluate", str(root)]) == 0
    out = capsys.readouterr().out
    assert "2 pairs (1 same person), labels agree" in out
    assert "genuine pairs: 1  impostor pairs: 1" in out  # p1/b.jpg,p2/c.jpg is not listed
    (root / "pairs.csv").write_text("a,b,same_person\np1/a.jpg,p2/c.jpg,yes\n")
    assert main(["evaluate", str(root)]) == 2
    assert "labelled same but the folders say otherwise" in capsys.readouterr().err


def test_missing_files_are_one_line_errors_with_exit_2(
    faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no such photo folder") and err.count("\n") == 1
    assert main(["verify", str(tmp_path / "missing.jpg"), str(faces_dir / "obama/obama_1.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read") and "Traceback" not in err and err.count("\n") == 1
    assert main(["evaluate", str(tmp_path), "--target-far", "2"]) == 2


def test_evaluate_with_one_person_has_nothing_to_measure(
    faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy_set(faces_dir, tmp_path / "set", {"obama/1.jpg": "obama/obama_1.jpg",
                                                   "obama/2.jpg": "obama/obama_2.jpg"})
    assert main(["evaluate", str(root)]) == 1
    assert "nothing to measure" in capsys.readouterr().out


def test_help_states_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("verify", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "Exit status: 0" in capsys.readouterr().out


def test_verify_checks_a_burst_against_a_challenge(
    faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.facematch.engine import FaceEngine
    from tests.facematch import sequences as sq
    from tests.facematch.conftest import rgb_of

    image = sq.on_backdrop(rgb_of((faces_dir / "obama/obama_1.jpg").read_bytes()))
    engine = FaceEngine()
    mesh = engine.analyse(sq.jpeg(image)).mesh
    engine.close()
    assert mesh is not None
    files = []
    for i, frame in enumerate(sq.head_turn(image, mesh.points, [0.0, 10.0, 20.0, 28.0])):
        files.append(tmp_path / f"f{i}.jpg")
        files[-1].write_bytes(sq.jpeg(frame))
    reference = str(faces_dir / "obama/obama_4.jpg")
    frames = [str(f) for f in files]
    assert main(["verify", reference, frames[0], "--frames", *frames[1:], "--challenge", "turn_left"]) == 0
    assert json.loads(capsys.readouterr().out)["liveness"]["shown"] == ["turn_left"]
    assert main(["verify", reference, frames[0], "--frames", *frames[1:], "--challenge", "turn_right"]) == 1
    assert json.loads(capsys.readouterr().out)["reasons"] == ["LIVENESS_WRONG_ACTION"]
    late = ["verify", reference, frames[0], "--frames", *frames[1:], "--challenge", "turn_left",
            "--frame-times", "0,200,5000,5200"]
    assert main(late) == 1 and json.loads(capsys.readouterr().out)["reasons"] == ["LIVENESS_TIMING"]
    assert main([*late[:-1], "0,x"]) == 2
