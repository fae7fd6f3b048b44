"""Frame sequences made from one real photo, for the challenged liveness tests.

- `head_turn`: the face turned about the vertical axis through its centre by moving the 468
  face-mesh points in 3-D (mediapipe's x, y, z) and warping the image piecewise-affinely from
  the old to the new positions (the nose and the cheeks move by different amounts, as on a
  real head); the background stays where it is.
- `blink`: the upper eyelid points moved onto the lower lid and back.
- `photo_moved`: the photo as a flat print in front of a fixed background, turned and shifted
  in perspective (what a person holding a photo to the camera shows).
All built in memory; the tests run them through the real detector, mesh and embedding.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

Pixels = NDArray[np.uint8]

# mediapipe face-mesh eyelid contours (upper lid, lower lid), subject's right and left eye
RIGHT_UPPER = (246, 161, 160, 159, 158, 157, 173)
RIGHT_LOWER = (7, 163, 144, 145, 153, 154, 155)
LEFT_UPPER = (466, 388, 387, 386, 385, 384, 398)
LEFT_LOWER = (249, 390, 373, 374, 380, 381, 382)


def jpeg(pixels: Pixels, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _anchors(points: NDArray[np.float64], shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Fixed points: a ring well outside the face and the image border (nothing there moves)."""
    height, width = shape[:2]
    centre = points[:, :2].mean(axis=0)
    radius = 1.35 * float(np.max(np.linalg.norm(points[:, :2] - centre, axis=1)))
    ring = [centre + radius * np.array([math.cos(a), math.sin(a)]) for a in np.linspace(0, 2 * math.pi, 24,
                                                                                           endpoint=False)]
    border = [(x, y) for x in (0, width / 2, width - 1) for y in (0, height / 2, height - 1) if (x, y) != (
        width / 2, height / 2)]
    return np.array([*ring, *border], dtype=np.float64)


def warp_piecewise(image: Pixels, src: NDArray[np.float64], dst: NDArray[np.float64]) -> Pixels:
    """Move the image content at `src` points to `dst` (triangles of a Delaunay triangulation of
    `dst`, each warped affinely); points outside the image are clipped."""
    height, width = image.shape[:2]
    out = image.copy()
    subdiv = cv2.Subdiv2D((-width, -height, 3 * width, 3 * height))
    lookup = {}
    for index, (x, y) in enumerate(dst):
        subdiv.insert((float(x), float(y)))
        lookup[(round(float(x), 3), round(float(y), 3))] = index
    for tri in subdiv.getTriangleList():
        corners = [(round(float(tri[i]), 3), round(float(tri[i + 1]), 3)) for i in (0, 2, 4)]
        if any(c not in lookup for c in corners):
            continue
        ids = [lookup[c] for c in corners]
        d = dst[ids].astype(np.float32)
        s = src[ids].astype(np.float32)
        x0, y0 = np.floor(d.min(axis=0)).astype(int)
        x1, y1 = np.ceil(d.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 <= x0 or y1 <= y0:
            continue
        matrix = cv2.getAffineTransform(d - np.float32([x0, y0]), s)
        patch = cv2.warpAffine(image, matrix, (x1 - x0, y1 - y0),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        cv2.fillConvexPoly(mask, np.round(d - np.float32([x0, y0])).astype(np.int32), 1)
        region = out[y0:y1, x0:x1]
        region[mask == 1] = patch[mask == 1]
    return out


def rotate_mesh(points: NDArray[np.float64], yaw_deg: float) -> NDArray[np.float64]:
    """The mesh turned by `yaw_deg` about the vertical axis through its centre, projected
    orthographically (x, y). Positive: to the person's own left (the nose moves towards the
    image's right, mediapipe's z grows away from the camera), as `liveness` counts a left turn."""
    centre = points.mean(axis=0)
    theta = -math.radians(yaw_deg)
    x, z = points[:, 0] - centre[0], points[:, 2] - centre[2]
    turned_x = x * math.cos(theta) + z * math.sin(theta)
    return np.stack([turned_x + centre[0], points[:, 1]], axis=1)


def head_turn(image: Pixels, mesh: NDArray[np.float64], yaws: Sequence[float]) -> list[Pixels]:
    anchors = _anchors(mesh, image.shape)
    src = np.vstack([mesh[:, :2], anchors])
    return [image.copy() if yaw == 0
            else warp_piecewise(image, src, np.vstack([rotate_mesh(mesh, yaw), anchors])) for yaw in yaws]


def close_eyes(mesh: NDArray[np.float64], closure: float) -> NDArray[np.float64]:
    """Mesh (x, y) with each upper-lid point moved `closure` of the way to the lower lid."""
    moved = mesh[:, :2].copy()
    for upper, lower in ((RIGHT_UPPER, RIGHT_LOWER), (LEFT_UPPER, LEFT_LOWER)):
        low = mesh[list(lower), :2]
        for index in upper:
            nearest = low[np.argmin(np.abs(low[:, 0] - mesh[index, 0]))]
            moved[index] = (1 - closure) * mesh[index, :2] + closure * nearest
    return moved


def closed_eyes(image: Pixels, mesh: NDArray[np.float64]) -> Pixels:
    """The eyes painted shut: each eye's opening (upper lid contour, lower lid contour) filled
    with the skin colour just above it, softened, with a dark lash line along the lower lid."""
    out = image.astype(np.float32)
    for upper, lower in ((RIGHT_UPPER, RIGHT_LOWER), (LEFT_UPPER, LEFT_LOWER)):
        ring = np.vstack([mesh[list(upper), :2], mesh[list(lower)[::-1], :2]])
        width = float(np.ptp(ring[:, 0]))
        height, img_w = image.shape[:2]
        mask = np.zeros((height, img_w), dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(ring).astype(np.int32)], 255)
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=max(1, round(width / 25)))
        ys, xs = np.nonzero(mask)
        band = image[max(0, ys.min() - round(width / 4)) : ys.min(), xs.min() : xs.max() + 1]
        skin = band.reshape(-1, 3).mean(axis=0) if band.size else np.array([128.0, 100.0, 90.0])
        soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), max(1.0, width / 20))[..., None]
        out = out * (1 - soft) + skin * soft
        lash = np.round(mesh[list(lower), :2]).astype(np.int32)
        cv2.polylines(out, [lash], False, (skin * 0.45).tolist(), max(1, round(width / 30)), cv2.LINE_AA)
    return np.clip(out, 0, 255).astype(np.uint8)


def blink(image: Pixels, mesh: NDArray[np.float64], pattern: Sequence[bool]) -> list[Pixels]:
    """Frames of the face with the eyes open (False) or closed (True)."""
    shut = closed_eyes(image, mesh)
    return [shut.copy() if closed else image.copy() for closed in pattern]


def backdrop(width: int, height: int, seed: int = 7) -> Pixels:
    """A fixed room-like background: a smooth gradient with some large soft shapes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 90 + 60 * xx / width + 30 * yy / height
    canvas = np.stack([base, base * 0.95, base * 0.85], axis=2)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.05, 0.2) * width
        shade = rng.uniform(-40, 40)
        canvas += shade * np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))[..., None]
    return np.clip(canvas, 0, 255).astype(np.uint8)


def photo_moved(photo: Pixels, yaws: Sequence[float], size: tuple[int, int] = (960, 720),
                shift_px: float = 6.0) -> list[Pixels]:
    """The photo as a flat print (60 % of the frame height) before a fixed background, turned
    by each of `yaws` (degrees, about its vertical axis, in perspective) and shifted a little."""
    width, height = size
    back = backdrop(width, height)
    ph, pw = photo.shape[:2]
    print_h = 0.6 * height
    print_w = print_h * pw / ph
    frames = []
    for step, yaw in enumerate(yaws):
        theta = math.radians(yaw)
        focal = 2.5 * print_w
        corners = []
        for x, y in ((-print_w / 2, -print_h / 2), (print_w / 2, -print_h / 2), (print_w / 2, print_h / 2),
                     (-print_w / 2, print_h / 2)):
            X, Z = x * math.cos(theta), x * math.sin(theta)
            scale = focal / (focal + Z)
            corners.append((width / 2 + X * scale + step * shift_px, height / 2 + y * scale))
        src = np.float32([(0, 0), (pw, 0), (pw, ph), (0, ph)])
        matrix = cv2.getPerspectiveTransform(src, np.float32(corners))
        warped = cv2.warpPerspective(photo, matrix, (width, height))
        mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), matrix, (width, height))
        frame = back.copy()
        frame[mask > 127] = warped[mask > 127]
        frames.append(frame)
    return frames


def on_backdrop(photo: Pixels, size: tuple[int, int] = (960, 720)) -> Pixels:
    """The person photographed in front of the fixed background: the photo scaled to the frame's
    height and centred (the part of the frame it does not cover shows the background)."""
    width, height = size
    ph, pw = photo.shape[:2]
    scale = height / ph
    scaled = cv2.resize(photo, (round(pw * scale), height), interpolation=cv2.INTER_AREA)
    frame = backdrop(width, height)
    x0 = (width - scaled.shape[1]) // 2
    if x0 >= 0:
        frame[:, x0 : x0 + scaled.shape[1]] = scaled
    else:
        frame[:] = scaled[:, -x0 : -x0 + width]
    return frame
