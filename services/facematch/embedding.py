"""Alignment and embedding with dlib: 5-point landmarks, then the 128-d ResNet descriptor.

Model files come from the `face_recognition_models` wheel; nothing is downloaded. Its
`*_location()` helpers import `pkg_resources`, which setuptools >= 81 no longer ships, so the
same files are located through the import system instead (`model_file`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import dlib  # type: ignore[import-not-found, unused-ignore]
import numpy as np
from numpy.typing import NDArray

from services.facematch.decode import RGBImage
from services.facematch.detection import FaceBox, resize_longest

Embedding = NDArray[np.float64]  # shape (128,)
CHIP_SIZE = 150  # the input size of dlib's ResNet
CHIP_PADDING = 0.25

# mediapipe's box -> the box dlib's landmark model was trained on (its HOG detector's boxes),
# set on ../shared/faces: with it every genuine pair there matches and no impostor pair does
# (tests/facematch/test_facematch_engine.py)
_BOX_DX, _BOX_DY, _BOX_SIDE = 0.0, 0.0, 0.9


FIVE_POINT_MODEL = "shape_predictor_5_face_landmarks.dat"  # = pose_predictor_five_point_model_location()
RESNET_MODEL = "dlib_face_recognition_resnet_model_v1.dat"  # = face_recognition_model_location()


def model_file(name: str) -> str:
    """Path of a model file inside the installed face_recognition_models package."""
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or ()) if spec else []
    for location in locations:
        path = Path(location) / "models" / name
        if path.is_file():
            return str(path)
    raise RuntimeError(f"model file {name} not found: is face-recognition-models installed?")


@dataclass(frozen=True)
class Aligned:
    landmarks: NDArray[np.float64]  # 5 x 2, source pixels
    chip: NDArray[np.uint8]  # 150 x 150 x 3 RGB, aligned


def dlib_rectangle(face: FaceBox) -> object:
    cx, cy = face.center
    side = _BOX_SIDE * max(face.width, face.height)
    x = cx + _BOX_DX * face.width - side / 2.0
    y = cy + _BOX_DY * face.height - side / 2.0
    return dlib.rectangle(round(x), round(y), round(x + side), round(y + side))


class FaceEncoder:
    """dlib's models. Not thread-safe (the network keeps buffers): one per thread or a lock."""

    def __init__(self) -> None:
        self._predictor = dlib.shape_predictor(model_file(FIVE_POINT_MODEL))
        self._net = dlib.face_recognition_model_v1(model_file(RESNET_MODEL))
        self._hog = dlib.get_frontal_face_detector()

    def align(self, image: RGBImage, face: FaceBox) -> Aligned:
        shape = self._predictor(image, dlib_rectangle(face))
        points = np.array(
            [(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], dtype=np.float64
        )
        chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        return Aligned(points, np.asarray(chip, dtype=np.uint8))

    def embed(self, aligned: Aligned) -> Embedding:
        descriptor = self._net.compute_face_descriptor(aligned.chip, 1)
        return np.asarray(descriptor, dtype=np.float64)

    def hog_detect(self, image: RGBImage) -> list[FaceBox]:
        """dlib's HOG detector, the last-resort fallback of the face detector."""
        small, scale = resize_longest(image, 640) if max(image.shape[:2]) > 640 else (image, 1.0)
        upsample = 1 if max(small.shape[:2]) < 400 else 0
        rects, scores, _ = self._hog.run(small, upsample, 0.0)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            x0, y0 = rect.left() / scale, rect.top() / scale
            side = rect.width() / scale
            # back to mediapipe's box convention
            width = side / _BOX_SIDE
            faces.append(
                FaceBox(
                    x=x0 + side / 2.0 - _BOX_DX * width - width / 2.0,
                    y=y0 + side / 2.0 - _BOX_DY * width - width / 2.0,
                    width=width,
                    height=width,
                    score=min(1.0, 0.5 + float(score) / 4.0),
                    detector="dlib-hog",
                )
            )
        return faces
