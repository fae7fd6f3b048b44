"""Field types of the request models: every string and list has a limit, text refuses NUL,
control characters and lone surrogates, months and dates are range-checked, images are base64
with a size limit. The same types produce the OpenAPI schemas (``backbone/edge.py``)."""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from contracts.calendar import parse_month

FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)
MAX_IMAGE_BYTES = 6 * 1024 * 1024
MAX_IMAGE_B64 = (MAX_IMAGE_BYTES + 2) // 3 * 4
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
# what _decode_image takes, and what the JSON schema of an Image says
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class Model(BaseModel):
    """Base of every request and response model: unknown fields refused, no type coercion
    (``"false"`` is not a boolean, ``"3"`` is not an integer)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, str_max_length=4096)


# the JSON schema of a text field says what _clean refuses: control characters
TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"


def _clean(text: str) -> str:
    for ch in text:
        code = ord(ch)
        if code < 0x20 and ch not in "\t\n\r" or code == 0x7F:
            raise ValueError("control characters (NUL included) are not allowed")
        if 0xD800 <= code <= 0xDFFF:
            raise ValueError("lone surrogates are not allowed")
    return text


def text(max_length: int, min_length: int = 1) -> Any:
    """A free-text field of at most ``max_length`` characters."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length,
                                json_schema_extra={"pattern": TEXT_PATTERN}), AfterValidator(_clean)]


Id = Annotated[str, Field(pattern=ID_PATTERN, min_length=1, max_length=64)]
"""An identifier: a student number, school code, check, capture or terminal id."""

Name = text(64)
Note = text(500)


def _month(value: str) -> str:
    parse_month(value)
    return value


Month = Annotated[str, Field(pattern=r"^\d{4}-\d{2}$", examples=["2026-10"]), AfterValidator(_month)]


def _day_in_range(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"dates are between {FIRST_DAY} and {LAST_DAY}")
    return value


def _instant_in_range(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("an instant needs a time zone offset, e.g. +08:00")
    _day_in_range(value.date())
    return value


Day = Annotated[date, AfterValidator(_day_in_range)]
Instant = Annotated[datetime, AfterValidator(_instant_in_range)]


def _decode_image(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("an image is a base64 string")
    if len(value) > MAX_IMAGE_B64:
        raise ValueError(f"an image is at most {MAX_IMAGE_BYTES // (1024 * 1024)} MiB")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not valid base64") from exc
    if not data:
        raise ValueError("the image is empty")
    return data


Image = Annotated[
    bytes, BeforeValidator(_decode_image),
    WithJsonSchema({"type": "string", "contentEncoding": "base64", "contentMediaType": "image/jpeg",
                    "minLength": 4, "maxLength": MAX_IMAGE_B64, "pattern": BASE64_PATTERN}),
]
"""A JPEG or PNG photo, base64; decoded into bytes at the edge."""


class Error(Model):
    """Every refusal: a stable machine-readable code, a message for people, and for invalid
    requests the path of each offending field (never its value)."""

    error: str
    message: str
    fields: list[FieldError] | None = None


class FieldError(Model):
    path: str
    code: str
    message: str


Error.model_rebuild()
