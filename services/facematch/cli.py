"""Command line: `python -m services.facematch verify|evaluate ...` (JSON or tables on stdout,
progress on stderr). A file or folder that cannot be read is one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from services.facematch.calibration import LivenessPolicy
from services.facematch.reasons import FaceError

if TYPE_CHECKING:
    from services.facematch.engine import FaceEngine
    from services.facematch.evaluation import OperatingPoint, Pair, Sample

CLI_CHANNEL = "cli"
#: what `verify` prints besides "match", from `Outcome.as_dict`
VERIFY_FIELDS = ("distance", "threshold", "quality", "liveness", "reasons")
EXIT_OK, EXIT_NO, EXIT_INPUT = 0, 1, 2
VERIFY_EXIT = (
    "Exit status: 0 match; 1 no match or capture rejected; 2 reference unusable or a file unreadable."
)
EVALUATE_EXIT = (
    "Exit status: 0 rates printed; 1 nothing to measure (no genuine or no impostor pair); "
    "2 a folder, file or pair list cannot be used."
)


class InputProblem(Exception):
    """Bad command-line input: printed as one line, exit 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.facematch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    verify = commands.add_parser(
        "verify",
        help="compare a capture with a reference photo",
        description="Match CAPTURE (plus optional burst frames, checked for liveness) against REFERENCE.",
        epilog=VERIFY_EXIT,
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
    verify.add_argument(
        "--challenge",
        choices=("blink", "turn_left", "turn_right"),
        default=None,
        help="check the burst as an answer to this liveness challenge (else: any blink or turn)",
    )
    verify.add_argument(
        "--frame-times",
        default=None,
        metavar="MS,MS,...",
        help="client timestamps of CAPTURE and the frames in ms (default: 200 ms apart)",
    )

    evaluate = commands.add_parser(
        "evaluate",
        help="FAR/FRR, operating point and DET curve over folder-per-person photo sets",
        description=(
            "Embed every image of DIR/<person>/ (several DIRs: people of different sets are different "
            "people) and score all genuine and impostor pairs, paired by identity. A DIR/pairs.csv "
            "(a,b,same_person) is checked against the folders and restricts the pairs within DIR to "
            "those it lists."
        ),
        epilog=EVALUATE_EXIT,
    )
    evaluate.add_argument("directory", type=Path, nargs="+")
    evaluate.add_argument("--threshold", type=float, default=None, help="default: the shipped ones")
    evaluate.add_argument(
        "--target-far",
        type=float,
        default=None,
        metavar="FAR",
        help="report the threshold whose measured false-accept rate is at most FAR (e.g. 0.001)",
    )
    evaluate.add_argument("--plot", type=Path, default=None, help="write the DET curve to this PNG")
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
    evaluate.add_argument(
        "--burst",
        type=int,
        default=0,
        metavar="N",
        help="also decide bursts of N photos of one person (best frame, fused, min, median)",
    )
    evaluate.add_argument(
        "--camera",
        type=_camera_box,
        default=None,
        metavar="WxH",
        help="first fit each photo inside a camera frame of this size, JPEG 90 (the kiosk: 640x480)",
    )

    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            return _verify(args)
        return _evaluate(args)
    except InputProblem as problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_INPUT


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise InputProblem(f"cannot read {path}: {error.strerror or error}") from None


def _engine(liveness: bool) -> FaceEngine:
    from services.facematch.engine import FaceEngine  # loads mediapipe and dlib: only when a command runs

    _progress("loading models")
    policy = LivenessPolicy(required={CLI_CHANNEL: liveness}, unchallenged=frozenset({CLI_CHANNEL}))
    return FaceEngine(policy=policy)


def _verify(args: argparse.Namespace) -> int:
    from services.facematch.liveness import Challenge
    from services.facematch.templates import Template

    frames = [_read(args.capture), *(_read(p) for p in args.frames)]
    reference = _read(args.reference)
    challenge = None
    if args.challenge is not None:
        try:
            times = (tuple(int(t) for t in args.frame_times.split(",")) if args.frame_times
                     else tuple(200 * i for i in range(len(frames))))
        except ValueError:
            raise InputProblem("--frame-times takes integers separated by commas") from None
        challenge = Challenge(args.challenge, times)
    engine = _engine(bool(args.frames))
    if args.id_photo:
        outcome = engine.enrol(frames, reference, CLI_CHANNEL, challenge=challenge)
    else:
        try:
            analysis = engine.analyse(reference)
        except FaceError as error:
            print(
                json.dumps({"match": False, "reasons": [f"REFERENCE_{error.code}"], "message": error.message})
            )
            return EXIT_INPUT
        template = Template("reference", "cli", engine.model_version, analysis.embedding, datetime.now(UTC))
        outcome = engine.verify(frames, template, [], CLI_CHANNEL, challenge)
    view = outcome.as_dict()
    result = {"match": view["accepted"], **{key: view[key] for key in VERIFY_FIELDS}}
    print(json.dumps(result, indent=2))
    return EXIT_OK if outcome.accepted else EXIT_NO


@dataclass
class _Curve:
    title: str
    pairs: list[Pair]
    threshold: float


def _camera_box(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        box = (int(width), int(height))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: WIDTHxHEIGHT, e.g. 640x480") from None
    if min(box) < 48:
        raise argparse.ArgumentTypeError(f"{text!r}: too small for a camera frame")
    return box


def _evaluate(args: argparse.Namespace) -> int:
    from services.facematch import evaluation as ev
    from services.facematch.decode import decode_image
    from services.facematch.engine import frame_rank

    if args.target_far is not None and not 0.0 < args.target_far < 1.0:
        raise InputProblem("--target-far must be between 0 and 1")
    try:
        alias = dict(item.split("=", 1) for item in args.alias)
    except ValueError:
        raise InputProblem("--alias takes FOLDER=PERSON") from None
    several = len(args.directory) > 1
    images: list[ev.LabelledImage] = []
    listed: dict[frozenset[str], bool] = {}
    notes: list[str] = []
    try:
        for root in args.directory:
            prefix = f"{root.name}/" if several else ""
            found = ev.labelled_images(root, args.exclude, alias, prefix)
            images += found
            if (root / ev.PAIR_LIST).is_file():
                pairs_of_set = ev.read_pair_list(root / ev.PAIR_LIST, prefix)
                known = {image.name for image in found}
                pairs_of_set = {k: v for k, v in pairs_of_set.items() if k <= known or not args.exclude}
                problems = ev.check_pair_list(pairs_of_set, found)
                if problems:
                    raise InputProblem(f"{root / ev.PAIR_LIST}: {problems[0]} ({len(problems)} problem(s))")
                same = sum(pairs_of_set.values())
                notes.append(f"pair list {root / ev.PAIR_LIST}: {len(pairs_of_set)} pairs"
                             f" ({same} same person), labels agree with the folders")
                listed.update(pairs_of_set)
    except ev.EvaluationInputError as error:
        raise InputProblem(str(error)) from None
    if not images:
        raise InputProblem("no images (.jpg, .jpeg, .png) in " + ", ".join(map(str, args.directory)))
    engine = _engine(False)
    samples: list[ev.Sample] = []
    cards: list[ev.Sample] = []
    skipped: dict[str, list[str]] = {}
    low_quality = 0
    for index, image in enumerate(images, 1):
        _progress(f"[{index}/{len(images)}] {image.name}")
        data = _read(image.path)
        if args.camera is not None:
            data = ev.camera_frame(data, *args.camera)
        try:
            analysis = engine.analyse(data)
        except FaceError as error:
            skipped.setdefault(error.code, []).append(image.name)
            continue
        low_quality += not analysis.quality.ok
        samples.append(ev.Sample(image.person, image.name, analysis.embedding, frame_rank(analysis)))
        if args.id_card:
            card = ev.simulated_id_card(decode_image(data), analysis.face)
            try:
                card_embedding = engine.analyse(card, id_photo=True).embedding
                cards.append(ev.Sample(image.person, image.name, card_embedding))
            except FaceError as error:
                skipped.setdefault(f"ID_CARD_{error.code}", []).append(image.name)
    people = len({s.person for s in samples})
    print(f"images: {len(images)}  embedded: {len(samples)} of {people} people"
          f"  below quality gate (kept): {low_quality}")
    for note in notes:
        print(note)
    for code, names in sorted(skipped.items()):
        print(f"skipped {len(names)} with {code}: {', '.join(names)}")
    live = engine.live.threshold if args.threshold is None else args.threshold
    curves = [_Curve("live vs live", ev.all_pairs(samples, listed or None), live)]
    if args.id_card:
        id_threshold = engine.id_card.threshold if args.threshold is None else args.threshold
        curves.append(_Curve("ID card vs live", ev.cross_pairs(samples, cards), id_threshold))
    measurable = True
    points: dict[str, OperatingPoint] = {}
    for curve in curves:
        measurable &= _report(curve, args.target_far, points)
    if args.burst:
        _report_bursts(samples, args.burst, live, args.target_far)
        if args.id_card:
            id_threshold = engine.id_card.threshold if args.threshold is None else args.threshold
            _report_bursts(samples, args.burst, id_threshold, args.target_far, cards)
    if args.plot is not None:
        _plot(curves, points, args.plot)
        print(f"DET plot written to {args.plot}")
    return EXIT_OK if measurable else EXIT_NO


def _report(curve: _Curve, target_far: float | None, points: dict[str, OperatingPoint]) -> bool:
    from services.facematch import evaluation as ev

    scored = curve.pairs
    genuine = sum(p.genuine for p in scored)
    at = ev.rates(scored, curve.threshold)
    worst_genuine, nearest_impostor = ev.separation(scored)
    print(f"\n== {curve.title} ==")
    print(f"genuine pairs: {genuine}  impostor pairs: {len(scored) - genuine}")
    if not genuine or genuine == len(scored):
        print("nothing to measure: need genuine and impostor pairs")
        return False
    print(f"threshold {curve.threshold:.2f}: FAR {at.far:.4f}  FRR {at.frr:.4f}")
    print(
        f"largest genuine distance: {_fmt(worst_genuine)}"
        f"  smallest impostor distance: {_fmt(nearest_impostor)}"
    )
    if target_far is not None:
        point = ev.operating_point(scored, target_far)
        points[curve.title] = point
        print(_operating_line(point))
    print(f"{'threshold':>9}  {'FAR':>7}  {'FRR':>7}")
    for row in ev.roc(scored, ev.default_thresholds()):
        print(f"{row.threshold:9.2f}  {row.far:7.4f}  {row.frr:7.4f}")
    return True


def _operating_line(point: OperatingPoint) -> str:
    return (
        f"operating point for FAR <= {point.target_far:g}: threshold {point.threshold:.3f}"
        f"  FAR {point.far:.4f} ({point.accepted_impostors}/{point.impostor_pairs})"
        f"  FRR {point.frr:.4f} ({point.rejected_genuine}/{point.genuine_pairs})"
        f"  FAR 95% upper bound {point.far_upper95:.4f}"
    )


def _report_bursts(samples: Sequence[Sample], size: int, threshold: float, target_far: float | None,
                   cards: Sequence[Sample] | None = None) -> None:
    from services.facematch import evaluation as ev

    against = "one reference photo" if cards is None else "one simulated ID card (enrolment)"
    print(f"\n== single frame vs burst of {size} photos of one person, against {against} ==")
    header = (f"{'decision':<16} {'genuine':>7} {'impostor':>8} {'FAR@' + format(threshold, '.2f'):>9} "
              f"{'FRR@' + format(threshold, '.2f'):>9} {'max gen':>7} {'min imp':>7}")
    if target_far is not None:
        header += f" {'thr@FAR' + format(target_far, 'g'):>13} {'FRR there':>9}"
    print(header)
    single = ev.all_pairs(samples) if cards is None else ev.cross_pairs(samples, cards)
    rows: list[tuple[str, list[Pair]]] = [("single frame", single)]
    rows += [(name, ev.burst_trials(samples, size, rule, references=cards))
             for name, rule in ev.BURST_RULES.items()]
    for name, pairs in rows:
        genuine = sum(p.genuine for p in pairs)
        if not genuine or genuine == len(pairs):
            print(f"{name:<16} not enough people with {size} photos")
            continue
        at = ev.rates(pairs, threshold)
        worst, nearest = ev.separation(pairs)
        line = (f"{name:<16} {genuine:>7} {len(pairs) - genuine:>8} {at.far:>9.4f} {at.frr:>9.4f}"
                f" {_fmt(worst):>7} {_fmt(nearest):>7}")
        if target_far is not None:
            point = ev.operating_point(pairs, target_far)
            line += f" {point.threshold:>13.3f} {point.frr:>9.4f}"
        print(line)


def _plot(curves: Sequence[_Curve], points: dict[str, OperatingPoint], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from services.facematch import evaluation as ev

    figure, axis = plt.subplots(figsize=(7, 5))
    far_floor = frr_floor = 1.0
    target = None
    for curve in curves:
        impostors = sum(not p.genuine for p in curve.pairs)
        genuine = len(curve.pairs) - impostors
        if not impostors or not genuine:
            continue
        x_low, y_low = 0.5 / impostors, 0.5 / genuine  # a rate of 0 is drawn at half a pair
        far_floor, frr_floor = min(far_floor, x_low), min(frr_floor, y_low)
        det = ev.det_points(curve.pairs)
        (line,) = axis.plot([max(p.far, x_low) for p in det], [max(p.frr, y_low) for p in det],
                            label=f"{curve.title} ({genuine} genuine, {impostors} impostor pairs)")
        shipped = ev.rates(curve.pairs, curve.threshold)
        spot = (max(shipped.far, x_low), max(shipped.frr, y_low))
        axis.plot(*spot, "o", color=line.get_color(), markersize=8)
        axis.annotate(f"shipped {curve.threshold:.2f}: FAR {shipped.far:.4f} FRR {shipped.frr:.4f}", spot,
                      textcoords="offset points", xytext=(8, 4), fontsize=8, color=line.get_color())
        if curve.title in points:
            point = points[curve.title]
            target = point.target_far
            spot = (max(point.far, x_low), max(point.frr, y_low))
            axis.plot(*spot, "s", color=line.get_color(), fillstyle="none", markersize=10)
            axis.annotate(f"FAR<={point.target_far:g} at {point.threshold:.3f}", spot,
                          textcoords="offset points", xytext=(8, -12), fontsize=8, color=line.get_color())
    if target is not None:
        axis.axvline(target, linestyle="--", color="grey", linewidth=1)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlim(far_floor * 0.7, 1.0)
    axis.set_ylim(frr_floor * 0.7, 1.05)
    axis.set_xlabel("false accept rate (log; 0 drawn at half a pair)")
    axis.set_ylabel("false reject rate (log; 0 drawn at half a pair)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(loc="upper right", fontsize=8)
    axis.set_title("DET: o shipped threshold, \u25a1 target-FAR threshold, -- target FAR")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

