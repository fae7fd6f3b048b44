"""Active liveness over a burst of frames: pure functions over per-frame measures.

A burst passes when its frames are not one still picture (repeated, shifted or rescaled: the
landmark geometry, with translation, scale and in-plane rotation removed, stays the same) and
the person did something a photo cannot: blinked (eye aspect ratio open -> closed -> open) or
turned the head (yaw changed by at least `min_yaw_delta_deg` between two frames).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from services.facematch.calibration import LivenessLimits
from services.facematch.geometry import Points, shape_disparity
from services.facematch.reasons import Code


@dataclass(frozen=True)
class FrameSignal:
    yaw_deg: float
    ear: float | None
    shape: Points  # landmarks of the face (x, y, ...), any pixel frame


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

    @property
    def passed(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, object]:
        def r(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return {
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
