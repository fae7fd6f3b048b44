"""The reasons facematch refuses a capture: stable codes (`Code`) and the exception that carries
one (`FaceError`).

The codes are what `CaptureRejected.reasons` holds (events, APIs, statistics); messages are
short human text and never contain image bytes, embeddings or personal data.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    # input images
    EMPTY_IMAGE = "EMPTY_IMAGE"
    CORRUPT_IMAGE = "CORRUPT_IMAGE"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    IMAGE_TOO_SMALL = "IMAGE_TOO_SMALL"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    # detection
    NO_FACE = "NO_FACE"
    MULTIPLE_FACES = "MULTIPLE_FACES"
    # quality gate
    FACE_TOO_SMALL = "FACE_TOO_SMALL"
    BLURRED = "BLURRED"
    TOO_DARK = "TOO_DARK"
    TOO_BRIGHT = "TOO_BRIGHT"
    HEAD_TURNED = "HEAD_TURNED"
    EYES_CLOSED = "EYES_CLOSED"
    # liveness
    LIVENESS_FRAME_COUNT = "LIVENESS_FRAME_COUNT"
    LIVENESS_STATIC = "LIVENESS_STATIC"
    LIVENESS_NO_ACTION = "LIVENESS_NO_ACTION"
    LIVENESS_IDENTITY_CHANGED = "LIVENESS_IDENTITY_CHANGED"
    LIVENESS_NO_CHALLENGE = "LIVENESS_NO_CHALLENGE"  # no server-issued challenge where one is required
    LIVENESS_TIMING = "LIVENESS_TIMING"  # client timestamps missing, not increasing, too far apart
    LIVENESS_DISCONTINUOUS = "LIVENESS_DISCONTINUOUS"  # not one take: face jumps, background changes
    LIVENESS_FLAT = "LIVENESS_FLAT"  # a flat picture (photo, screen) moved in front of the camera
    LIVENESS_WRONG_ACTION = "LIVENESS_WRONG_ACTION"  # another action than the challenge asked
    # matching
    NO_MATCH = "NO_MATCH"
    PROXY_SUSPECT = "PROXY_SUSPECT"
    DUPLICATE_IDENTITY = "DUPLICATE_IDENTITY"
    MODEL_VERSION_MISMATCH = "MODEL_VERSION_MISMATCH"
    ID_PHOTO_UNUSABLE = "ID_PHOTO_UNUSABLE"
    # caller errors and storage
    INVALID_REQUEST = "INVALID_REQUEST"
    FRAMES_MISSING = "FRAMES_MISSING"  # a frame or the ID photo is not in the blob store
    NOT_ENROLLED = "NOT_ENROLLED"  # spot check of a student without a template
    SEAL_INVALID = "SEAL_INVALID"
    TEMPLATE_INVALID = "TEMPLATE_INVALID"


class FaceError(Exception):
    """A face-matching failure with a machine code and a human message."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
