"""Dense landmarks with mediapipe face_mesh, measured on a crop around a detected face."""

from __future__ import annotations

from dataclasses import dataclass

import mediapipe as mp
import numpy as np

from services.facematch.decode import RGBImage
from services.facematch.detection import FaceBox
from services.facematch.geometry import Points, face_crop, mean_ear, yaw_from_mesh


@dataclass(frozen=True)
class MeshMeasures:
    yaw_deg: float
    ear: float
    points: Points  # 468 x 3, source pixels (z in the same units, relative to the face centre)


class FaceMesher:
    """Not thread-safe (mediapipe graph state): one per thread, or guard with a lock."""

    CROP = 256
    MARGIN = 1.8  # crop side relative to the detected box

    def __init__(self) -> None:
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=False, min_detection_confidence=0.3
        )

    def close(self) -> None:
        self._mesh.close()

    def measure(self, image: RGBImage, face: FaceBox) -> MeshMeasures | None:
        """Landmark measures of `face`, or None when the mesh finds no face in the crop."""
        side = self.MARGIN * max(face.width, face.height)
        crop = face_crop(image, face.center, side, self.CROP)
        result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        marks = result.multi_face_landmarks[0].landmark
        local = np.array([(m.x, m.y, m.z) for m in marks], dtype=np.float64) * side
        cx, cy = face.center
        points = local + np.array([cx - side / 2.0, cy - side / 2.0, 0.0])
        return MeshMeasures(
            yaw_deg=yaw_from_mesh(points),
            ear=mean_ear(points),
            points=points,
        )
