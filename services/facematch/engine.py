"""The face-matching engine the facematch service, its CLI and re-enrolment call: `FaceEngine`
and its `Outcome`.

Pipeline per image: decode -> detect (mediapipe) -> exactly one face -> face mesh (yaw, eye
aspect ratio) -> quality gate -> 5-point alignment (dlib) -> 128-d embedding (dlib ResNet).
Per capture (a burst of frames): the header of every frame is checked against the pixel budget
before any frame is decoded; the best frame that passes the quality gate is matched; the burst
as a whole is checked for liveness when the channel's policy requires it.

Image problems are not exceptions here: they come back as `Outcome.reasons` (codes of
`reasons.Code`). Caller bugs (unknown channel, no frames) raise `FaceError(INVALID_REQUEST)`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import cv2
import numpy as np
from numpy.typing import NDArray

from services.facematch import matching
from services.facematch.calibration import (
    BURST_FUSE_FRAMES,
    ID_CARD,
    LIVE,
    MODEL_VERSION,
    DecodeLimits,
    LivenessPolicy,
    PathConfig,
)
from services.facematch.decode import RGBImage, decode_image, open_header
from services.facematch.detection import FaceBox, FaceDetector, single_face
from services.facematch.embedding import Aligned, Embedding, FaceEncoder
from services.facematch.geometry import grey
from services.facematch.liveness import Challenge, FrameSignal, assess_challenge, assess_liveness, context_of
from services.facematch.mesh import FaceMesher, MeshMeasures
from services.facematch.quality import QualityReport, measure_quality
from services.facematch.reasons import Code, FaceError
from services.facematch.templates import Template

__all__ = ["FaceAnalysis", "FaceEngine", "Outcome", "frame_rank"]

# a frame with one of these makes the whole capture unusable; NO_FACE frames are only skipped
_FATAL_FRAME_CODES = frozenset(
    {
        Code.EMPTY_IMAGE,
        Code.CORRUPT_IMAGE,
        Code.UNSUPPORTED_FORMAT,
        Code.IMAGE_TOO_SMALL,
        Code.IMAGE_TOO_LARGE,
        Code.MULTIPLE_FACES,
    }
)


@dataclass(frozen=True)
class Outcome:
    """Result of enrol/verify. `quality` and `liveness` are JSON-safe; `embedding` is the live
    capture's 128-d vector whenever the capture itself was usable (face, quality, liveness),
    even when the identity was not confirmed: the caller decides whether to store it."""

    accepted: bool
    reasons: list[str]
    distance: float | None
    threshold: float
    quality: dict[str, float | None]
    liveness: dict[str, object]
    embedding: NDArray[np.float64] | None = field(repr=False)
    suspected_student_id: str | None = None
    model_version: str = MODEL_VERSION

    def as_dict(self) -> dict[str, object]:
        """JSON-safe view without the embedding (what the CLI prints)."""
        return {
            "accepted": self.accepted,
            "reasons": list(self.reasons),
            "distance": None if self.distance is None else round(self.distance, 4),
            "threshold": self.threshold,
            "quality": dict(self.quality),
            "liveness": dict(self.liveness),
            "suspected_student_id": self.suspected_student_id,
            "model_version": self.model_version,
        }


@dataclass(frozen=True)
class FaceAnalysis:
    """One image taken through the whole per-image pipeline (`face` in the pixels of the image
    as received)."""

    face: FaceBox
    quality: QualityReport
    mesh: MeshMeasures | None
    aligned: Aligned
    embedding: Embedding
    #: grey thumbnail of the frame around the face (`liveness.context_of`) and the frame's size
    context: NDArray[np.float32] | None = field(default=None, repr=False)
    frame_size: tuple[int, int] = (0, 0)

    @property
    def signal(self) -> FrameSignal:
        shape = self.mesh.points if self.mesh is not None else self.aligned.landmarks
        box = (self.face.x, self.face.y, self.face.width, self.face.height)
        return FrameSignal(yaw_deg=self.quality.yaw_deg, ear=self.quality.ear, shape=shape, box=box,
                           context=self.context, frame_size=self.frame_size)


@dataclass
class _Capture:
    probe: Embedding | None  # the decision embedding (fused burst), None when the capture is refused
    reasons: list[str]
    quality: dict[str, float | None]
    liveness: dict[str, object]


class FaceEngine:
    """Loads the models once (about 1 s). Thread-safe: calls are serialised by an internal lock
    because the mediapipe graphs and dlib's network keep state. For parallel throughput run one
    engine per process (each uses ~150 MB)."""

    def __init__(
        self,
        policy: LivenessPolicy | None = None,
        live: PathConfig = LIVE,
        id_card: PathConfig = ID_CARD,
        decode_limits: DecodeLimits | None = None,
    ) -> None:
        self.policy = policy or LivenessPolicy()
        self.live = live
        self.id_card = id_card
        self.decode_limits = decode_limits or DecodeLimits()
        self.model_version = MODEL_VERSION
        # OpenCV's own thread pool: its resizes here are small, and a facematch process serialises
        # its inferences anyway (one engine, one lock); scale out with processes, not threads
        cv2.setNumThreads(1)
        self._encoder = FaceEncoder()
        self._detector = FaceDetector(fallback=self._encoder.hog_detect)
        self._mesher = FaceMesher()
        self._lock = threading.RLock()

    def close(self) -> None:
        self._detector.close()
        self._mesher.close()

    # ---- per image -------------------------------------------------------------------------

    def analyse(
        self, data: bytes, id_photo: bool = False, timings: dict[str, float] | None = None
    ) -> FaceAnalysis:
        """Decode, detect, measure and embed one image. Raises FaceError (decode codes, NO_FACE,
        MULTIPLE_FACES). `timings`, if given, receives seconds per stage."""
        path = self.id_card if id_photo else self.live
        clock = _Clock(timings)
        with self._lock:
            image = decode_image(data, self.decode_limits)
            image, source_scale = _upsample(image, path.upsample_below)
            clock.lap("decode")
            face = single_face(self._detector.detect(image))
            clock.lap("detect")
            mesh = self._mesher.measure(image, face)
            quality = measure_quality(image, face, mesh, path.quality, source_scale)
            clock.lap("mesh_quality")
            aligned = self._encoder.align(image, face)
            clock.lap("align")
            embedding = self._encoder.embed(aligned)
            clock.lap("embed")
            received = _rescale(face, source_scale)
            context = context_of(grey(image), (face.x, face.y, face.width, face.height))
            size = (round(image.shape[1] * source_scale), round(image.shape[0] * source_scale))
        return FaceAnalysis(received, quality, mesh, aligned, embedding, context, size)

    def reenrol(self, template: Template, photo: bytes, now: datetime) -> Template:
        """A template of the current model version made from the stored enrolment photo of an
        old one (listed by `PostgresTemplateRepository.stale`). Raises FaceError if the photo is unusable."""
        analysis = self.analyse(photo)
        if not analysis.quality.ok:
            raise FaceError(analysis.quality.reasons[0], "stored enrolment photo fails the quality gate")
        return replace(template, model_version=self.model_version, vector=analysis.embedding, created_at=now)

    # ---- per capture -----------------------------------------------------------------------

    def enrol(
        self,
        frames: list[bytes],
        id_photo: bytes | None,
        channel: str,
        *,
        existing_templates: Sequence[Template] = (),
        student_id: str | None = None,
        challenge: Challenge | None = None,
    ) -> Outcome:
        """New capture: the live burst, optionally confirmed against the ID-card photo (with the
        ID-card threshold). The template is the fused embedding of the burst's usable frames.
        `existing_templates` (the province's) are searched for the same face under another
        student id: DUPLICATE_IDENTITY."""
        capture = self._capture(frames, channel, challenge)
        threshold = self.id_card.threshold if id_photo is not None else self.live.threshold
        if capture.probe is None:
            return _outcome(capture, threshold)
        probe = capture.probe
        reasons: list[str] = []
        dist: float | None = None
        if id_photo is not None:
            try:
                reference = self.analyse(id_photo, id_photo=True)
            except FaceError as error:
                reasons += [Code.ID_PHOTO_UNUSABLE, error.code]
            else:
                if not reference.quality.ok:
                    reasons += [Code.ID_PHOTO_UNUSABLE, *reference.quality.reasons]
                else:
                    dist = float(matching.distances(probe, [reference.embedding])[0])
                    if not matching.is_match(dist, threshold):
                        reasons.append(Code.NO_MATCH)
        dupes = matching.duplicates(
            probe, existing_templates, self.live.threshold, self.model_version, student_id
        )
        if dupes:
            reasons.append(Code.DUPLICATE_IDENTITY)
        return _outcome(capture, threshold, dist, reasons, dupes[0].student_id if dupes else None)

    def verify(
        self,
        frames: list[bytes],
        template: Template,
        school_templates: list[Template],
        channel: str,
        challenge: Challenge | None = None,
    ) -> Outcome:
        """Spot-check capture against the student's enrolled template (1:1), and against the
        other templates of the school (1:N): PROXY_SUSPECT when another student's template is
        within the threshold and at least as close as the claimed student's."""
        threshold = self.live.threshold
        if template.model_version != self.model_version:
            capture = _Capture(None, [Code.MODEL_VERSION_MISMATCH], {}, {})
            return _outcome(capture, threshold)
        capture = self._capture(frames, channel, challenge)
        if capture.probe is None:
            return _outcome(capture, threshold)
        probe = capture.probe
        dist = float(matching.distances(probe, [template.vector])[0])
        reasons: list[str] = [] if matching.is_match(dist, threshold) else [Code.NO_MATCH]
        proxy = matching.proxy_suspect(probe, template, school_templates, threshold)
        if proxy is not None:
            reasons.append(Code.PROXY_SUSPECT)
        return _outcome(capture, threshold, dist, reasons, proxy.student_id if proxy else None)

    def _capture(self, frames: Sequence[bytes], channel: str, challenge: Challenge | None = None) -> _Capture:
        try:
            liveness_required = self.policy.requires_liveness(channel)
        except ValueError as error:
            raise FaceError(Code.INVALID_REQUEST, str(error)) from None
        if not frames:
            raise FaceError(Code.INVALID_REQUEST, "no frames given")
        limits = self.policy.limits
        if len(frames) > limits.max_frames or (liveness_required and len(frames) < limits.min_frames):
            return _Capture(None, [Code.LIVENESS_FRAME_COUNT], {}, {"required": liveness_required})
        if liveness_required and challenge is None and channel not in self.policy.unchallenged:
            return _Capture(None, [Code.LIVENESS_NO_CHALLENGE], {}, {"required": True, "challenge": None})
        try:  # every header first: one oversized or broken frame refuses the burst before any decoding
            for data in frames:
                open_header(data, self.decode_limits)
        except FaceError as error:
            return _Capture(None, [error.code], {}, {"required": liveness_required})
        analyses: list[FaceAnalysis] = []
        for data in frames:
            try:
                analyses.append(self.analyse(data))
            except FaceError as error:
                if error.code in _FATAL_FRAME_CODES:
                    return _Capture(None, [error.code], {}, {"required": liveness_required})
        if not analyses:
            return _Capture(None, [Code.NO_FACE], {}, {"required": liveness_required})
        best = _best_frame(analyses)
        quality = best.quality.as_dict()
        reasons: list[str] = list(best.quality.reasons)
        liveness: dict[str, object] = {"required": False, "frames": len(frames)}
        if liveness_required:
            signals = [a.signal for a in analyses]
            if challenge is not None:
                result = assess_challenge(signals, challenge, limits, frames=len(frames))
            else:
                result = assess_liveness(signals, limits)
            liveness = result.as_dict()
            liveness["frames_without_face"] = len(frames) - len(analyses)
            reasons += result.reasons
            identity_spread = float(matching.distances(best.embedding, [a.embedding for a in analyses]).max())
            liveness["identity_spread"] = round(identity_spread, 4)
            if identity_spread > self.live.threshold:
                reasons.append(Code.LIVENESS_IDENTITY_CHANGED)
        usable = sorted((a for a in analyses if a.quality.ok), key=frame_rank)[:BURST_FUSE_FRAMES] or [best]
        liveness["frames_matched"] = len(usable)
        probe = fuse([a.embedding for a in usable])
        return _Capture(None if reasons else probe, reasons, quality, liveness)


def fuse(embeddings: Sequence[Embedding]) -> Embedding:
    """The burst's decision embedding: the mean of its usable frames' embeddings (measured
    against the best single frame and the smallest distance on the shared photos; see
    docs/benchmarks-facematch.md)."""
    fused: Embedding = np.mean(np.stack([np.asarray(e, dtype=np.float64) for e in embeddings]), axis=0)
    return fused


def frame_rank(analysis: FaceAnalysis) -> tuple[float, float, float]:
    """Sort key of frames, best first: fewest quality failures, then most frontal, then sharpest."""
    return (float(len(analysis.quality.reasons)), abs(analysis.quality.yaw_deg), -analysis.quality.sharpness)


def _best_frame(analyses: Sequence[FaceAnalysis]) -> FaceAnalysis:
    """The frame to match (`frame_rank`)."""
    return min(analyses, key=frame_rank)


def _outcome(
    capture: _Capture,
    threshold: float,
    dist: float | None = None,
    reasons: Sequence[str] = (),
    suspected: str | None = None,
) -> Outcome:
    all_reasons = [str(r) for r in [*capture.reasons, *reasons]]
    return Outcome(
        accepted=not all_reasons,
        reasons=all_reasons,
        distance=dist,
        threshold=threshold,
        quality=capture.quality,
        liveness=capture.liveness,
        embedding=None if capture.probe is None else capture.probe.copy(),
        suspected_student_id=suspected,
        model_version=MODEL_VERSION,
    )


def _upsample(image: RGBImage, below: int) -> tuple[RGBImage, float]:
    """Small images (ID-card photos) are enlarged before detection; returns the image and the
    factor that maps its pixels back to the received image's."""
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest >= below:
        return image, 1.0
    scale = below / longest
    size = (round(width * scale), round(height * scale))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), dtype=np.uint8), 1.0 / scale


def _rescale(face: FaceBox, factor: float) -> FaceBox:
    if factor == 1.0:
        return face
    points = tuple((x * factor, y * factor) for x, y in face.keypoints)
    return FaceBox(
        face.x * factor,
        face.y * factor,
        face.width * factor,
        face.height * factor,
        face.score,
        points,
        face.detector,
    )


class _Clock:
    def __init__(self, sink: dict[str, float] | None) -> None:
        self._sink = sink
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        if self._sink is None:
            return
        now = time.perf_counter()
        self._sink[stage] = self._sink.get(stage, 0.0) + now - self._last
        self._last = now
