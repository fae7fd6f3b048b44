"""Quality gate: measured values and the reasons a face is not good enough to match."""

from __future__ import annotations

from dataclasses import dataclass

from services.facematch.calibration import QualityLimits
from services.facematch.decode import RGBImage
from services.facematch.detection import FaceBox
from services.facematch.geometry import face_crop, grey, laplacian_variance, yaw_from_keypoints
from services.facematch.mesh import MeshMeasures
from services.facematch.reasons import Code

SHARPNESS_SIDE = 128


@dataclass(frozen=True)
class QualityReport:
    face_px: float
    sharpness: float
    brightness: float
    yaw_deg: float
    ear: float | None
    reasons: tuple[Code, ...]

    @property
    def ok(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, float | None]:
        return {
            "face_px": round(self.face_px, 1),
            "sharpness": round(self.sharpness, 1),
            "brightness": round(self.brightness, 1),
            "yaw_deg": round(self.yaw_deg, 1),
            "ear": None if self.ear is None else round(self.ear, 3),
        }


def measure_quality(
    image: RGBImage,
    face: FaceBox,
    mesh: MeshMeasures | None,
    limits: QualityLimits,
    source_scale: float = 1.0,
) -> QualityReport:
    """Measure one face. `source_scale` converts working pixels back to the pixels of the image
    as received (below 1 when a small ID photo was upsampled)."""
    side = max(face.width, face.height)
    patch = grey(face_crop(image, face.center, side, SHARPNESS_SIDE))
    sharpness = laplacian_variance(patch)
    brightness = float(patch.mean())
    if mesh is not None:
        yaw, ear = mesh.yaw_deg, mesh.ear
    else:
        yaw = yaw_from_keypoints(face.keypoints) if len(face.keypoints) == 6 else 0.0
        ear = None
    return judge(face.width * source_scale, sharpness, brightness, yaw, ear, limits)


def judge(
    face_px: float, sharpness: float, brightness: float, yaw: float, ear: float | None, limits: QualityLimits
) -> QualityReport:
    reasons: list[Code] = []
    if face_px < limits.min_face_px:
        reasons.append(Code.FACE_TOO_SMALL)
    if sharpness < limits.min_sharpness:
        reasons.append(Code.BLURRED)
    if brightness < limits.min_brightness:
        reasons.append(Code.TOO_DARK)
    elif brightness > limits.max_brightness:
        reasons.append(Code.TOO_BRIGHT)
    if abs(yaw) > limits.max_abs_yaw_deg:
        reasons.append(Code.HEAD_TURNED)
    if ear is not None and ear < limits.min_ear:
        reasons.append(Code.EYES_CLOSED)
    return QualityReport(face_px, sharpness, brightness, yaw, ear, tuple(reasons))
