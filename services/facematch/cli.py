"""Command line: `python -m services.facematch verify|evaluate ...` (JSON or tables on stdout,
progress on stderr)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from services.facematch.calibration import LivenessPolicy
from services.facematch.reasons import FaceError

if TYPE_CHECKING:
    from services.facematch.engine import FaceEngine
    from services.facematch.evaluation import Pair

CLI_CHANNEL = "cli"
#: what `verify` prints besides "match", from `Outcome.as_dict`
VERIFY_FIELDS = ("distance", "threshold", "quality", "liveness", "reasons")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.facematch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    verify = commands.add_parser(
        "verify",
        help="compare a capture with a reference photo",
        description="Match CAPTURE (plus optional burst frames, checked for liveness) against REFERENCE.",
        epilog="Exit status: 0 match, 1 no match or capture rejected, 2 reference unusable.",
    )
    verify.add_argument("reference", type=Path, help="enrolment photo, or the ID-card photo with --id-photo")
    verify.add_argument("capture", type=Path, help="the live capture")
    verify.add_argument(
        "--frames",
        nargs="+",
        type=Path,
        default=[],
        help="more frames of the burst; enables the liveness check",
    )
    verify.add_argument(
        "--id-photo", action="store_true", help="REFERENCE is an ID-card photo (own threshold)"
    )

    evaluate = commands.add_parser(
        "evaluate",
        help="FAR/FRR and ROC over a folder-per-person photo set",
        description="Embed every image of DIR/<person>/ and score all genuine and impostor pairs.",
    )
    evaluate.add_argument("directory", type=Path)
    evaluate.add_argument("--threshold", type=float, default=None, help="default: the calibrated one")
    evaluate.add_argument("--plot", type=Path, default=None, help="write the ROC curve to this PNG")
    evaluate.add_argument("--exclude", action="append", default=[], metavar="FOLDER", help="skip a folder")
    evaluate.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="FOLDER=PERSON",
        help="count FOLDER's images as PERSON's",
    )
    evaluate.add_argument(
        "--id-card",
        action="store_true",
        help="also score simulated ID-card photos (102x126 crops) against the live photos",
    )

    args = parser.parse_args(argv)
    if args.command == "verify":
        return _verify(args)
    return _evaluate(args)


def _engine(liveness: bool) -> FaceEngine:
    from services.facematch.engine import FaceEngine  # loads mediapipe and dlib: only when a command runs

    _progress("loading models")
    return FaceEngine(policy=LivenessPolicy(required={CLI_CHANNEL: liveness}))


def _verify(args: argparse.Namespace) -> int:
    from services.facematch.templates import Template

    engine = _engine(bool(args.frames))
    frames = [args.capture.read_bytes(), *(p.read_bytes() for p in args.frames)]
    reference = args.reference.read_bytes()
    if args.id_photo:
        outcome = engine.enrol(frames, reference, CLI_CHANNEL)
    else:
        try:
            analysis = engine.analyse(reference)
        except FaceError as error:
            print(
                json.dumps({"match": False, "reasons": [f"REFERENCE_{error.code}"], "message": error.message})
            )
            return 2
        template = Template("reference", "cli", engine.model_version, analysis.embedding, datetime.now(UTC))
        outcome = engine.verify(frames, template, [], CLI_CHANNEL)
    view = outcome.as_dict()
    result = {"match": view["accepted"], **{key: view[key] for key in VERIFY_FIELDS}}
    print(json.dumps(result, indent=2))
    return 0 if outcome.accepted else 1


def _evaluate(args: argparse.Namespace) -> int:
    from services.facematch import evaluation as ev
    from services.facematch.decode import decode_image

    alias = dict(item.split("=", 1) for item in args.alias)
    images = ev.labelled_images(args.directory, args.exclude, alias)
    engine = _engine(False)
    threshold = engine.live.threshold if args.threshold is None else args.threshold
    samples: list[ev.Sample] = []
    cards: list[ev.Sample] = []
    skipped: dict[str, list[str]] = {}
    low_quality = 0
    for index, (person, path) in enumerate(images, 1):
        _progress(f"[{index}/{len(images)}] {person}/{path.name}")
        data = path.read_bytes()
        try:
            analysis = engine.analyse(data)
        except FaceError as error:
            skipped.setdefault(error.code, []).append(f"{path.parent.name}/{path.name}")
            continue
        low_quality += not analysis.quality.ok
        samples.append(ev.Sample(person, path.name, analysis.embedding))
        if args.id_card:
            card = ev.simulated_id_card(decode_image(data), analysis.face)
            try:
                cards.append(ev.Sample(person, path.name, engine.analyse(card, id_photo=True).embedding))
            except FaceError as error:
                skipped.setdefault(f"ID_CARD_{error.code}", []).append(path.name)
    pairs = ev.all_pairs(samples)
    print(f"images: {len(images)}  embedded: {len(samples)}  below quality gate (kept): {low_quality}")
    for code, names in sorted(skipped.items()):
        print(f"skipped {len(names)} with {code}: {', '.join(names)}")
    curves: dict[str, tuple[list[ev.Pair], float]] = {"live vs live": (pairs, threshold)}
    if args.id_card:
        id_threshold = engine.id_card.threshold if args.threshold is None else args.threshold
        curves["ID card vs live"] = (ev.cross_pairs(samples, cards), id_threshold)
    for title, (scored, limit) in curves.items():
        _report(title, scored, limit)
    if args.plot is not None:
        _plot({title: scored for title, (scored, _) in curves.items()}, args.plot)
        print(f"ROC plot written to {args.plot}")
    return 0


def _report(title: str, scored: Sequence[Pair], threshold: float) -> None:
    from services.facematch import evaluation as ev

    genuine = sum(p.genuine for p in scored)
    at = ev.rates(scored, threshold)
    worst_genuine, nearest_impostor = ev.separation(scored)
    print(f"\n== {title} ==")
    print(f"genuine pairs: {genuine}  impostor pairs: {len(scored) - genuine}")
    print(f"threshold {threshold:.2f}: FAR {at.far:.4f}  FRR {at.frr:.4f}")
    print(
        f"largest genuine distance: {_fmt(worst_genuine)}"
        f"  smallest impostor distance: {_fmt(nearest_impostor)}"
    )
    print(f"{'threshold':>9}  {'FAR':>7}  {'FRR':>7}")
    for point in ev.roc(scored, ev.default_thresholds()):
        print(f"{point.threshold:9.2f}  {point.far:7.4f}  {point.frr:7.4f}")


def _plot(curves: dict[str, list[Pair]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from services.facematch import evaluation as ev

    thresholds = ev.default_thresholds(0.0, 1.2, 0.005)
    figure, axis = plt.subplots(figsize=(6, 4.5))
    for title, pairs in curves.items():
        points = ev.roc(pairs, thresholds)
        axis.plot([p.far for p in points], [1.0 - p.frr for p in points], label=title)
    axis.set_xlabel("false accept rate")
    axis.set_ylabel("true accept rate (1 - FRR)")
    axis.set_xlim(-0.01, 1.0)
    axis.set_ylim(0.0, 1.01)
    axis.grid(True, alpha=0.3)
    axis.legend(loc="lower right")
    axis.set_title("Face verification ROC")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
