"""Face detection with mediapipe's BlazeFace models (CPU, weights shipped in the wheel).

Strategy, cheapest first:
1. the full-range model on a copy whose longest side is at most 640 px (boxes mapped back);
2. if it finds nothing: the short-range model on that copy padded with a grey border, which
   finds faces cropped so tightly that they fill the frame (ID photos, close selfies);
3. if still nothing and a fallback is given (dlib's HOG detector): that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import mediapipe as mp
import numpy as np

from services.facematch.decode import RGBImage
from services.facematch.reasons import Code, FaceError


@dataclass(frozen=True)
class FaceBox:
    """A detected face in source-image pixels. Keypoints: right eye, left eye, nose tip,
    mouth, right ear, left ear (the subject's right/left); empty for fallback detections."""

    x: float
    y: float
    width: float
    height: float
    score: float
    keypoints: tuple[tuple[float, float], ...] = ()
    detector: str = "mediapipe-full"

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.width / 2.0, self.y + self.height / 2.0)


Fallback = Callable[[RGBImage], list[FaceBox]]


def resize_longest(image: RGBImage, side: int) -> tuple[RGBImage, float]:
    """Resize so that the longest side is `side`; returns the image and the scale applied."""
    height, width = image.shape[:2]
    scale = side / float(max(height, width))
    if abs(scale - 1.0) < 1e-6:
        return image, 1.0
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=interpolation), dtype=np.uint8), scale


class FaceDetector:
    """Not thread-safe (mediapipe graphs keep state): one per thread, or guard with a lock."""

    def __init__(
        self,
        min_confidence: float = 0.5,
        work_side: int = 640,
        pad_fraction: float = 0.3,
        fallback: Fallback | None = None,
    ) -> None:
        solutions = mp.solutions.face_detection
        self._full = solutions.FaceDetection(model_selection=1, min_detection_confidence=min_confidence)
        self._short = solutions.FaceDetection(model_selection=0, min_detection_confidence=min_confidence)
        self._work_side = work_side
        self._pad_fraction = pad_fraction
        self._fallback = fallback

    def close(self) -> None:
        self._full.close()
        self._short.close()

    def detect(self, image: RGBImage) -> list[FaceBox]:
        """All faces found, best score first."""
        height, width = image.shape[:2]
        if max(height, width) > self._work_side:
            small, scale = resize_longest(image, self._work_side)
        else:
            small, scale = image, 1.0
        faces = _run(self._full, small, 0, 1.0 / scale, "mediapipe-full")
        if not faces:
            pad = round(self._pad_fraction * max(small.shape[:2]))
            padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
            faces = _run(self._short, np.asarray(padded, dtype=np.uint8), pad, 1.0 / scale, "mediapipe-short")
        if not faces and self._fallback is not None:
            faces = self._fallback(image)
        return sorted((_clip(f, width, height) for f in faces), key=lambda f: -f.score)


def _run(model: object, image: RGBImage, pad: int, to_source: float, name: str) -> list[FaceBox]:
    result = model.process(image)  # type: ignore[attr-defined]
    height, width = image.shape[:2]
    faces: list[FaceBox] = []
    for detection in result.detections or ():
        box = detection.location_data.relative_bounding_box
        points = tuple(
            ((kp.x * width - pad) * to_source, (kp.y * height - pad) * to_source)
            for kp in detection.location_data.relative_keypoints
        )
        faces.append(
            FaceBox(
                x=(box.xmin * width - pad) * to_source,
                y=(box.ymin * height - pad) * to_source,
                width=box.width * width * to_source,
                height=box.height * height * to_source,
                score=float(detection.score[0]),
                keypoints=points,
                detector=name,
            )
        )
    return faces


def _clip(face: FaceBox, width: int, height: int) -> FaceBox:
    """Keep boxes that stick out of the frame (partial faces) but not absurdly far."""
    x0 = max(face.x, -face.width / 2.0)
    y0 = max(face.y, -face.height / 2.0)
    x1 = min(face.x + face.width, width + face.width / 2.0)
    y1 = min(face.y + face.height, height + face.height / 2.0)
    return FaceBox(x0, y0, x1 - x0, y1 - y0, face.score, face.keypoints, face.detector)


def single_face(faces: Sequence[FaceBox], competing_ratio: float = 0.35) -> FaceBox:
    """The one face of a capture. Faces narrower than `competing_ratio` of the largest one
    (a distant passer-by) are ignored; two or more comparable faces are MULTIPLE_FACES."""
    if not faces:
        raise FaceError(Code.NO_FACE, "no face found in the image")
    largest = max(face.width for face in faces)
    competing = [face for face in faces if face.width >= competing_ratio * largest]
    if len(competing) > 1:
        raise FaceError(Code.MULTIPLE_FACES, f"{len(competing)} faces found; exactly one is required")
    return competing[0]
