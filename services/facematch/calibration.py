"""Calibrated thresholds and limits of the face-matching pipeline (one place for every number):
match thresholds per path, decode (pixel budget), quality and liveness limits, and the model tag.

The match thresholds were calibrated on ../shared/faces with `python -m services.facematch
evaluate` (see docs/benchmarks-facematch.md); the quality and liveness limits were set from the
values measured on the same photos.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: Tag stored with every template; a template with another tag must be re-enrolled.
MODEL_VERSION = "dlib-resnet-v1+mp0.10.21"


@dataclass(frozen=True)
class DecodeLimits:
    #: Pixel budget, compared with the dimensions in the header before any pixel is decoded.
    #: Decoding takes up to about 14 bytes a pixel (a transparent PNG; measured by
    #: tests/facematch/test_facematch_decode.py), so 40 Mpx stay under 600 MB.
    max_pixels: int = 40_000_000
    max_side: int = 20_000
    min_side: int = 48
    #: JPEGs larger than this are decoded at a reduced DCT scale (fast, still sharper than needed).
    work_side: int = 1600


@dataclass(frozen=True)
class QualityLimits:
    min_face_px: float = 60.0  # detected face box width in source pixels
    min_sharpness: float = 40.0  # Laplacian variance of the face resized to 128 px
    min_brightness: float = 45.0  # mean grey level of the face, 0..255
    max_brightness: float = 215.0
    max_abs_yaw_deg: float = 30.0
    min_ear: float = 0.13  # eye aspect ratio below which the eyes count as closed


@dataclass(frozen=True)
class PathConfig:
    """Limits for one kind of image: live captures, or the photo read from an ID card."""

    threshold: float
    quality: QualityLimits
    #: Images whose longest side is below this are upsampled (bicubic) before detection.
    upsample_below: int


LIVE = PathConfig(threshold=0.55, quality=QualityLimits(), upsample_below=320)
ID_CARD = PathConfig(
    threshold=0.60,
    quality=QualityLimits(min_face_px=40.0, min_sharpness=15.0, max_abs_yaw_deg=25.0),
    upsample_below=400,
)


@dataclass(frozen=True)
class LivenessLimits:
    min_frames: int = 3
    max_frames: int = 10
    min_yaw_delta_deg: float = 12.0  # head turn between two frames
    ear_closed: float = 0.15  # a blink: EAR at or below this ...
    ear_open: float = 0.20  # ... between frames at or above this
    #: Frames whose normalised landmark geometry differs by less than this are "the same still"
    #: (measured: a re-detected still, shifted or rescaled, <= 0.0003; two poses >= 0.003).
    static_shape_disparity: float = 0.0015


@dataclass(frozen=True)
class LivenessPolicy:
    """Per channel: is active liveness required?"""

    required: Mapping[str, bool] = field(
        default_factory=lambda: MappingProxyType({"app": True, "terminal": True})
    )
    limits: LivenessLimits = LivenessLimits()

    def requires_liveness(self, channel: str) -> bool:
        try:
            return self.required[channel]
        except KeyError:
            raise ValueError(f"unknown channel {channel!r}") from None
