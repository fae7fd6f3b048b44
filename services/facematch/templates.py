"""Enrolled face templates, their storage port (implemented by `repository.py`), and their
sealed byte form."""

from __future__ import annotations

import json
import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from services.facematch.crypto import open_sealed, seal
from services.facematch.reasons import Code, FaceError

_MAGIC = b"FMT1"


@dataclass(frozen=True, eq=False)
class Template:
    student_id: str
    school_id: str
    model_version: str
    vector: NDArray[np.float64]
    created_at: datetime
    source_photo_ref: str | None = None


class TemplateRepository(ABC):
    """Storage port for templates: one current template per student."""

    @abstractmethod
    def get(self, student_id: str) -> Template | None: ...

    @abstractmethod
    def put(self, template: Template) -> None:
        """Insert or replace the template of template.student_id."""

    @abstractmethod
    def list_by_school(self, school_id: str) -> list[Template]: ...


def template_to_bytes(template: Template) -> bytes:
    """`FMT1`, header length (uint32 BE), JSON header, then the vector as little-endian float32
    (dlib computes in float32, so nothing is lost)."""
    vector = np.asarray(template.vector, dtype="<f4").reshape(-1)
    header = json.dumps(
        {
            "student_id": template.student_id,
            "school_id": template.school_id,
            "model_version": template.model_version,
            "created_at": template.created_at.isoformat(),
            "source_photo_ref": template.source_photo_ref,
            "dim": int(vector.shape[0]),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    return _MAGIC + struct.pack(">I", len(header)) + header + vector.tobytes()


def template_from_bytes(data: bytes) -> Template:
    try:
        if not data.startswith(_MAGIC):
            raise ValueError("bad magic")
        (length,) = struct.unpack(">I", data[4:8])
        header = json.loads(data[8 : 8 + length])
        body = data[8 + length :]
        dim = int(header["dim"])
        if len(body) != 4 * dim:
            raise ValueError("vector length")
        vector = np.frombuffer(body, dtype="<f4").astype(np.float64)
        return Template(
            student_id=str(header["student_id"]),
            school_id=str(header["school_id"]),
            model_version=str(header["model_version"]),
            vector=vector,
            created_at=datetime.fromisoformat(header["created_at"]),
            source_photo_ref=header["source_photo_ref"],
        )
    except (ValueError, KeyError, TypeError, struct.error):
        raise FaceError(Code.TEMPLATE_INVALID, "stored template cannot be read") from None


def _aad(student_id: str) -> bytes:
    return b"facematch-template:" + student_id.encode()


def seal_template(key: bytes, template: Template) -> bytes:
    """Template encrypted for storage, bound to its student id (a sealed template copied onto
    another student's row does not open)."""
    return seal(key, template_to_bytes(template), _aad(template.student_id))


def open_template(key: bytes, sealed: bytes, student_id: str) -> Template:
    template = template_from_bytes(open_sealed(key, sealed, _aad(student_id)))
    if template.student_id != student_id:
        raise FaceError(Code.TEMPLATE_INVALID, "template belongs to another student")
    return template
