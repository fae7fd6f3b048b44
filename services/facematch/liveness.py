"""Active liveness over a burst of frames: pure functions over per-frame measures.

Two modes.

*Challenged* (`assess_challenge`, the protocol of the terminals and the app): the service the
device talks to issued a random challenge (blink, turn left, turn right) just before the
capture, and the burst must be one continuous take that shows that action, in order:
1. timing: one client timestamp per frame, increasing, consecutive frames at most
   `max_frame_gap_ms` apart, the whole take at most `max_take_ms`;             LIVENESS_TIMING
2. one take: between consecutive frames the face moves and rescales little and what is
   around it (background, lighting) stays the same;                          LIVENESS_DISCONTINUOUS
3. not one still picture (landmark geometry unchanged and no blink);           LIVENESS_STATIC
4. not a flat picture moved in front of the camera: when the face's landmarks change by more
   than a similarity (a turn, a tilt), a plane's perspective (a homography) must not explain
   the change, as it does for a photo or a screen;                               LIVENESS_FLAT
5. the action: blink = eyes open -> closed -> open (the eye aspect ratio falls to at most
   `blink_ear_drop` of the open frames') with the face's own proportions unchanged
   (a tilted photo shortens the eyes too); turn left / right = from a near-frontal first frame
   the yaw moves at least `min_yaw_delta_deg` to the asked side. Another action than the one
   asked is LIVENESS_WRONG_ACTION, none LIVENESS_NO_ACTION.

*Unchallenged* (`assess_liveness`, old clients, only for channels configured to accept them):
not one still picture, and a blink or a head turn of any kind.

Direction: "turn left" is the student's own left. In the camera's (not mirrored) image the nose
then moves towards the image's right and the mesh yaw (`geometry.yaw_from_mesh`) grows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import combinations

import cv2
import numpy as np
from numpy.typing import NDArray

from services.facematch.calibration import LivenessLimits
from services.facematch.geometry import Points, shape_disparity
from services.facematch.reasons import Code

# mediapipe face-mesh indices used for proportions
_EYE_OUTER_RIGHT, _EYE_OUTER_LEFT, _CHIN, _NOSE_TIP = 33, 263, 152, 1
MESH_POINTS = 468


class Action(StrEnum):
    BLINK = "blink"
    TURN_LEFT = "turn_left"
    TURN_RIGHT = "turn_right"


ACTIONS = tuple(a.value for a in Action)


@dataclass(frozen=True)
class Challenge:
    """What the device was asked to show, and when its frames were taken (client clock, ms)."""

    action: str
    frame_times_ms: tuple[int, ...] | None = None


@dataclass(frozen=True)
class FrameSignal:
    yaw_deg: float
    ear: float | None
    shape: Points  # landmarks of the face (x, y, ...), pixels of the frame; 468 x 3 with the mesh
    #: face box (x, y, width, height) in pixels of the frame
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    #: grey thumbnail of the whole frame, NaN where a face (with margin) is; `context_of`
    context: NDArray[np.float32] | None = field(default=None, repr=False)
    frame_size: tuple[int, int] = (0, 0)  # width, height

    @property
    def has_mesh(self) -> bool:
        return self.shape.shape[0] == MESH_POINTS


@dataclass(frozen=True)
class LivenessResult:
    reasons: tuple[Code, ...]
    frames: int
    max_yaw_delta: float
    min_ear: float | None
    max_ear: float | None
    blink: bool
    head_turn: bool
    min_shape_disparity: float
    max_shape_disparity: float
    challenge: str | None = None
    #: measures of the challenged checks (JSON-safe), empty for unchallenged bursts
    details: dict[str, object] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, object]:
        def r(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        view: dict[str, object] = {
            "required": True,
            "passed": self.passed,
            "frames": self.frames,
            "blink": self.blink,
            "head_turn": self.head_turn,
            "max_yaw_delta": r(self.max_yaw_delta, 1),
            "min_ear": r(self.min_ear, 3),
            "max_ear": r(self.max_ear, 3),
            "min_shape_disparity": r(self.min_shape_disparity, 5),
            "max_shape_disparity": r(self.max_shape_disparity, 5),
        }
        if self.challenge is not None:
            view["challenge"] = self.challenge
            view.update(self.details)
        return view


# ----------------------------------------------------------------------------- measures


def blinked(ears: Sequence[float | None], closed: float, opened: float) -> bool:
    """Some frame with EAR <= closed has an open frame (EAR >= opened) before and after it."""
    values = [e for e in ears if e is not None]
    for i, ear in enumerate(values):
        if (
            ear <= closed
            and any(v >= opened for v in values[:i])
            and any(v >= opened for v in values[i + 1 :])
        ):
            return True
    return False


def yaw_delta(yaws: Sequence[float]) -> float:
    """Largest yaw change between any two frames, degrees."""
    return max(yaws) - min(yaws) if yaws else 0.0


def context_of(grey_frame: NDArray[np.uint8], box: tuple[float, float, float, float],
               width: int = 64, margin: float = 0.6) -> NDArray[np.float32]:
    """A `width`-pixel-wide grey thumbnail of the frame with the face and `margin` face sizes
    around it (head, hair, neck) set to NaN: what must stay the same in one take."""
    height = max(1, round(grey_frame.shape[0] * width / grey_frame.shape[1]))
    thumb = cv2.resize(grey_frame, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    scale = width / grey_frame.shape[1]
    x, y, w, h = box
    x0, x1 = (x - margin * w) * scale, (x + w + margin * w) * scale
    y0, y1 = (y - margin * h) * scale, (y + h + 2.0 * margin * h) * scale  # neck and shoulders below
    rows = slice(max(0, math.floor(y0)), max(0, math.ceil(y1)))
    thumb[rows, max(0, math.floor(x0)) : max(0, math.ceil(x1))] = np.nan
    return thumb


def _iod(points: Points) -> float:
    return float(np.linalg.norm(points[_EYE_OUTER_LEFT, :2] - points[_EYE_OUTER_RIGHT, :2])) or 1.0


def face_height_ratio(points: Points) -> float:
    """Eye line to chin over the eye-to-eye width: changes when a flat picture is tilted."""
    eyes = (points[_EYE_OUTER_LEFT, :2] + points[_EYE_OUTER_RIGHT, :2]) / 2.0
    return float(np.linalg.norm(points[_CHIN, :2] - eyes)) / _iod(points)


def planar_residuals(a: Points, b: Points) -> tuple[float, float]:
    """(similarity residual, homography residual) of b's landmarks predicted from a's, RMS over
    the points, in eye-to-eye widths of b. A plane (photo, screen) moved or tilted: the
    homography explains the change; a head turning: it does not (the nose and the cheeks are
    at different depths)."""
    src = np.ascontiguousarray(a[:, :2], dtype=np.float32)
    dst = np.ascontiguousarray(b[:, :2], dtype=np.float32)
    scale = _iod(b)
    similarity, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    homography, _ = cv2.findHomography(src, dst, 0)
    if similarity is None or homography is None:
        return 0.0, 0.0
    by_similarity = src.astype(np.float64) @ similarity[:, :2].T + similarity[:, 2]
    projected = cv2.perspectiveTransform(src.reshape(-1, 1, 2), homography).reshape(-1, 2).astype(np.float64)
    r_sim = float(np.sqrt(((by_similarity - dst) ** 2).sum(axis=1).mean())) / scale
    r_h = float(np.sqrt(((projected - dst) ** 2).sum(axis=1).mean())) / scale
    return r_sim, r_h


def background_change(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    """Mean absolute grey difference of two context thumbnails where neither has a face."""
    if a.shape != b.shape:
        return float("inf")
    both = ~(np.isnan(a) | np.isnan(b))
    if both.sum() < 0.1 * a.size:  # the face fills the frame: nothing to compare
        return 0.0
    return float(np.abs(a[both] - b[both]).mean())


# ----------------------------------------------------------------------------- unchallenged


def assess_liveness(signals: Sequence[FrameSignal], limits: LivenessLimits) -> LivenessResult:
    n = len(signals)
    disparities = [shape_disparity(a.shape, b.shape) for a, b in combinations(signals, 2)]
    ears = [s.ear for s in signals]
    known_ears = [e for e in ears if e is not None]
    delta = yaw_delta([s.yaw_deg for s in signals])
    blink = blinked(ears, limits.ear_closed, limits.ear_open)
    turn = delta >= limits.min_yaw_delta_deg
    reasons: list[Code] = []
    if not limits.min_frames <= n <= limits.max_frames:
        reasons.append(Code.LIVENESS_FRAME_COUNT)
    elif max(disparities) < limits.static_shape_disparity and not blink:
        reasons.append(Code.LIVENESS_STATIC)
    elif not (blink or turn):
        reasons.append(Code.LIVENESS_NO_ACTION)
    return LivenessResult(
        reasons=tuple(reasons),
        frames=n,
        max_yaw_delta=delta,
        min_ear=min(known_ears) if known_ears else None,
        max_ear=max(known_ears) if known_ears else None,
        blink=blink,
        head_turn=turn,
        min_shape_disparity=min(disparities) if disparities else 0.0,
        max_shape_disparity=max(disparities) if disparities else 0.0,
    )


# ----------------------------------------------------------------------------- challenged


def timing_problem(times: Sequence[int] | None, frames: int, limits: LivenessLimits) -> str | None:
    if times is None or len(times) != frames:
        return "one client timestamp per frame is required"
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    if any(g <= 0 for g in gaps):
        return "timestamps do not increase"
    if any(g > limits.max_frame_gap_ms for g in gaps):
        return "frames too far apart"
    if times[-1] - times[0] > limits.max_take_ms:
        return "take too long"
    return None


def continuity_problem(
    signals: Sequence[FrameSignal], limits: LivenessLimits
) -> tuple[str | None, float, float]:
    """(problem, largest face jump in face widths, largest background change) between
    consecutive frames."""
    jump = change = 0.0
    problem = None
    for a, b in zip(signals, signals[1:], strict=False):
        if a.frame_size != b.frame_size:
            return "frame size changed", jump, change
        ax, ay, aw, ah = a.box
        bx, by, bw, bh = b.box
        width = max(aw, bw, 1.0)
        shift = math.hypot((ax + aw / 2) - (bx + bw / 2), (ay + ah / 2) - (by + bh / 2)) / width
        scale = max(aw, bw) / max(min(aw, bw), 1.0)
        jump = max(jump, shift)
        if a.context is not None and b.context is not None:
            change = max(change, background_change(a.context, b.context))
        if problem is None and (shift > limits.max_face_shift or scale > limits.max_face_scale):
            problem = "face jumped between frames"
        if problem is None and change > limits.max_background_change:
            problem = "background or lighting changed"
    return problem, jump, change


def _blink_shown(signals: Sequence[FrameSignal], limits: LivenessLimits) -> bool:
    """Open -> closed -> open: a frame whose eye aspect ratio is at most `blink_ear_drop` of
    an earlier and a later frame's (relative, as open eyes differ from person to person), with
    the face's height-to-width proportion within `blink_face_tolerance` of those frames' (a
    tilted flat picture shortens the eyes and the face alike)."""
    for i, closed in enumerate(signals):
        if closed.ear is None:
            continue
        opened = closed.ear / limits.blink_ear_drop
        before = [s for s in signals[:i] if s.ear is not None and s.ear >= opened]
        after = [s for s in signals[i + 1 :] if s.ear is not None and s.ear >= opened]
        if not before or not after:
            continue
        ratio = face_height_ratio(closed.shape)
        if all(abs(face_height_ratio(s.shape) / ratio - 1.0) <= limits.blink_face_tolerance
               for s in (before[-1], after[0])):
            return True
    return False


def _turn_shown(signals: Sequence[FrameSignal], limits: LivenessLimits) -> str | None:
    """turn_left / turn_right when, from a near-frontal first frame, the yaw moves at least
    `min_yaw_delta_deg` to one side (the larger side wins), else None."""
    start = signals[0].yaw_deg
    if abs(start) > limits.start_max_abs_yaw_deg:
        return None
    left = max(s.yaw_deg for s in signals) - start
    right = start - min(s.yaw_deg for s in signals)
    if max(left, right) < limits.min_yaw_delta_deg:
        return None
    return Action.TURN_LEFT if left >= right else Action.TURN_RIGHT


def assess_challenge(signals: Sequence[FrameSignal], challenge: Challenge, limits: LivenessLimits,
                     frames: int | None = None) -> LivenessResult:
    """The challenged liveness decision over the frames with a face (`frames`: how many frames
    the burst had, faces or not; a frame without a face breaks the take)."""
    n = len(signals)
    total = n if frames is None else frames
    disparities = [shape_disparity(a.shape, b.shape) for a, b in combinations(signals, 2)] or [0.0]
    ears = [s.ear for s in signals]
    known_ears = [e for e in ears if e is not None]
    delta = yaw_delta([s.yaw_deg for s in signals])
    details: dict[str, object] = {}
    reasons: list[Code] = []
    if not limits.min_frames <= total <= limits.max_frames:
        reasons.append(Code.LIVENESS_FRAME_COUNT)
    else:
        timing = timing_problem(challenge.frame_times_ms, total, limits)
        if timing is not None:
            details["timing"] = timing
            reasons.append(Code.LIVENESS_TIMING)
        if n < total or not all(s.has_mesh for s in signals):
            details["continuity"] = "a frame without a measurable face"
            reasons.append(Code.LIVENESS_DISCONTINUOUS)
        else:
            problem, jump, change = continuity_problem(signals, limits)
            details["max_face_jump"] = round(jump, 3)
            details["max_background_change"] = round(min(change, 999.0), 1)
            if problem is not None:
                details["continuity"] = problem
                reasons.append(Code.LIVENESS_DISCONTINUOUS)
    blink = turn = False
    if not reasons:
        blink = _blink_shown(signals, limits)
        shown_turn = _turn_shown(signals, limits)
        turn = shown_turn is not None
        flat = _flat(signals, limits, details)
        if max(disparities) < limits.static_shape_disparity and not blink:
            reasons.append(Code.LIVENESS_STATIC)
        elif flat:
            reasons.append(Code.LIVENESS_FLAT)
        else:
            shown = {Action.BLINK} if blink else set()
            if shown_turn is not None:
                shown.add(Action(shown_turn))
            details["shown"] = sorted(shown)
            if challenge.action not in shown:
                reasons.append(Code.LIVENESS_WRONG_ACTION if shown else Code.LIVENESS_NO_ACTION)
    return LivenessResult(
        reasons=tuple(reasons),
        frames=total,
        max_yaw_delta=delta,
        min_ear=min(known_ears) if known_ears else None,
        max_ear=max(known_ears) if known_ears else None,
        blink=blink,
        head_turn=turn,
        min_shape_disparity=min(disparities),
        max_shape_disparity=max(disparities),
        challenge=challenge.action,
        details=details,
    )


def _flat(signals: Sequence[FrameSignal], limits: LivenessLimits, details: dict[str, object]) -> bool:
    """A flat picture: some frame's landmarks differ from the first frame's by more than a
    similarity, and a homography explains most of that difference."""
    worst_ratio = None
    largest = 0.0
    for later in signals[1:]:
        r_sim, r_h = planar_residuals(signals[0].shape, later.shape)
        if r_sim > largest:
            largest = r_sim
            worst_ratio = r_h / r_sim if r_sim > 0 else 1.0
    details["max_nonrigid_change"] = round(largest, 4)
    details["plane_explains"] = None if worst_ratio is None else round(1.0 - worst_ratio, 3)
    return (largest >= limits.flat_min_change and worst_ratio is not None
            and worst_ratio <= limits.flat_max_residual_ratio)
