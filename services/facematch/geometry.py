"""Pure measures over landmarks and pixels (numpy and OpenCV only, no models)."""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

Points = NDArray[np.float64]  # N x 2 or N x 3

# mediapipe face-mesh indices (subject's left/right): p1..p6 of the eye-aspect-ratio formula
LEFT_EYE = (362, 385, 387, 263, 373, 380)
RIGHT_EYE = (33, 160, 158, 133, 153, 144)
RIGHT_CHEEK, LEFT_CHEEK = 234, 454


def eye_aspect_ratio(points: Points, eye: tuple[int, int, int, int, int, int]) -> float:
    """(|p2-p6| + |p3-p5|) / (2 |p1-p4|), on x, y (Soukupova and Cech, 2016)."""
    p1, p2, p3, p4, p5, p6 = (points[i, :2] for i in eye)
    width = float(np.linalg.norm(p1 - p4))
    if width <= 0.0:
        return 0.0
    return float((np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)) / (2.0 * width))


def mean_ear(points: Points) -> float:
    return (eye_aspect_ratio(points, LEFT_EYE) + eye_aspect_ratio(points, RIGHT_EYE)) / 2.0


def yaw_from_mesh(points: Points) -> float:
    """Head yaw in degrees from the cheek-to-cheek vector of 3-D mesh landmarks (x, y, z in the
    same pixel units); 0 is frontal, the sign tells the side."""
    v = points[LEFT_CHEEK] - points[RIGHT_CHEEK]
    return math.degrees(math.atan2(float(v[2]), float(v[0])))


def yaw_from_keypoints(keypoints: tuple[tuple[float, float], ...]) -> float:
    """Rough yaw from the detector's six keypoints (nose tip between the ear tragions), for
    when the mesh is unavailable: the nose at the middle is 0, at an ear is +-90 degrees."""
    nose_x = keypoints[2][0]
    right_ear_x, left_ear_x = keypoints[4][0], keypoints[5][0]
    span = left_ear_x - right_ear_x
    if abs(span) < 1e-6:
        return 90.0
    ratio = (nose_x - right_ear_x) / span  # 0.5 when frontal
    return math.degrees(math.asin(max(-1.0, min(1.0, 2.0 * ratio - 1.0))))


def normalise_shape(points: Points) -> Points:
    """Landmarks (x, y) with translation and scale removed: centred, unit RMS radius."""
    xy = np.asarray(points[:, :2], dtype=np.float64)
    centred = xy - xy.mean(axis=0)
    scale = math.sqrt(float((centred**2).sum()) / len(centred))
    normalised: Points = centred / scale if scale > 0 else centred
    return normalised


def shape_disparity(a: Points, b: Points) -> float:
    """Procrustes disparity of two landmark sets after removing translation, scale and
    in-plane rotation: 0 for the same geometry, about 1e-4..1e-3 for a re-detected still,
    larger for a moving face."""
    x, y = normalise_shape(a), normalise_shape(b)
    u, s, vt = np.linalg.svd(x.T @ y)
    rotation = u @ vt
    aligned = x @ rotation
    return float(((aligned - y) ** 2).sum() / len(x))


def face_crop(
    image: NDArray[np.uint8], center: tuple[float, float], side: float, out: int
) -> NDArray[np.uint8]:
    """Square crop of `side` source pixels around `center`, resized to out x out; parts outside
    the image are filled with grey."""
    height, width = image.shape[:2]
    side_px = max(2, round(side))
    x0 = round(center[0] - side_px / 2.0)
    y0 = round(center[1] - side_px / 2.0)
    x1, y1 = x0 + side_px, y0 + side_px
    crop = image[max(0, y0) : min(height, y1), max(0, x0) : min(width, x1)]
    top, left = max(0, -y0), max(0, -x0)
    bottom, right = max(0, y1 - height), max(0, x1 - width)
    if crop.size == 0:
        crop = np.full((side_px, side_px) + image.shape[2:], 128, dtype=np.uint8)
    elif top or left or bottom or right:
        bordered = cv2.copyMakeBorder(
            crop, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(128, 128, 128)
        )
        crop = np.asarray(bordered, dtype=np.uint8)
    interpolation = cv2.INTER_AREA if side_px > out else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(crop, (out, out), interpolation=interpolation), dtype=np.uint8)


def grey(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    if image.ndim == 2:
        return image
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), dtype=np.uint8)


def laplacian_variance(grey_image: NDArray[np.uint8]) -> float:
    return float(cv2.Laplacian(grey_image, cv2.CV_64F).var())
