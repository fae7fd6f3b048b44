"""Image bytes -> RGB pixels, defensively.

Only JPEG and PNG are accepted. The dimensions an image declares are read from its header
(Pillow opens lazily: PNG IHDR, JPEG SOF) and compared with the pixel budget
(`DecodeLimits.max_pixels`) before any pixel is decoded, so a small file that claims huge
dimensions is refused with IMAGE_TOO_LARGE in microseconds and without allocating its pixels.
The engine checks the header of every frame of a burst this way before it decodes any of them.
"""

from __future__ import annotations

import io
import warnings
import zlib

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from services.facematch.calibration import DecodeLimits
from services.facematch.reasons import Code, FaceError

RGBImage = NDArray[np.uint8]  # H x W x 3, RGB order

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, zlib.error)
_ORIENTATION = 0x0112  # EXIF tag
_BACKGROUND = 255  # transparent pixels become white, like the background of an ID photo
_STRIP_ROWS = 256


def sniff_format(data: bytes) -> str:
    """'JPEG' or 'PNG' from the magic bytes, else FaceError(UNSUPPORTED_FORMAT)."""
    if data.startswith(_JPEG_MAGIC):
        return "JPEG"
    if data.startswith(_PNG_MAGIC):
        return "PNG"
    raise FaceError(Code.UNSUPPORTED_FORMAT, "only JPEG and PNG images are accepted")


def check_dimensions(width: int, height: int, limits: DecodeLimits) -> None:
    if width * height > limits.max_pixels:
        raise FaceError(
            Code.IMAGE_TOO_LARGE,
            f"image declares {width}x{height} pixels; the budget is {limits.max_pixels} pixels",
        )
    if max(width, height) > limits.max_side:
        raise FaceError(
            Code.IMAGE_TOO_LARGE,
            f"image declares {width}x{height} pixels; no side may exceed {limits.max_side}",
        )
    if min(width, height) < limits.min_side:
        raise FaceError(
            Code.IMAGE_TOO_SMALL,
            f"image is {width}x{height} pixels; each side must be at least {limits.min_side}",
        )


def open_header(data: bytes, limits: DecodeLimits) -> tuple[Image.Image, str]:
    """The image opened lazily (header read, no pixel decoded) and its format ('JPEG' or 'PNG'),
    once the format and the declared dimensions are acceptable. Raises FaceError with
    EMPTY_IMAGE, UNSUPPORTED_FORMAT, CORRUPT_IMAGE (unreadable header), IMAGE_TOO_SMALL or
    IMAGE_TOO_LARGE."""
    if not data:
        raise FaceError(Code.EMPTY_IMAGE, "image is empty")
    fmt = sniff_format(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[fmt])
        except Image.DecompressionBombError:
            raise FaceError(Code.IMAGE_TOO_LARGE, "image declares too many pixels") from None
        except (UnidentifiedImageError, *_DECODE_ERRORS):
            raise FaceError(Code.CORRUPT_IMAGE, f"{fmt} header cannot be read") from None
    width, height = image.size
    check_dimensions(width, height, limits)
    return image, fmt


def decode_image(data: bytes, limits: DecodeLimits | None = None) -> RGBImage:
    """Decode JPEG/PNG bytes into an upright H x W x 3 uint8 RGB array.

    Raises FaceError with EMPTY_IMAGE, UNSUPPORTED_FORMAT, CORRUPT_IMAGE, IMAGE_TOO_SMALL or
    IMAGE_TOO_LARGE. Handles alpha (composited on white), grey and 16-bit images, palettes,
    CMYK JPEGs and the EXIF orientation tag.
    """
    limits = limits or DecodeLimits()
    image, fmt = open_header(data, limits)
    width, height = image.size
    if fmt == "JPEG" and max(width, height) > limits.work_side:
        scale = limits.work_side / max(width, height)
        draft_mode = image.mode if image.mode in ("RGB", "L") else None
        image.draft(draft_mode, (max(1, int(width * scale)), max(1, int(height * scale))))
    try:
        image.load()
    except _DECODE_ERRORS:
        raise FaceError(Code.CORRUPT_IMAGE, f"{fmt} data is corrupt or truncated") from None
    return _to_rgb(_upright(image))


def _upright(image: Image.Image) -> Image.Image:
    try:
        if image.getexif().get(_ORIENTATION, 1) == 1:
            return image  # the common case: no copy
        transposed = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not reject an otherwise good photo
        return image
    return transposed if transposed is not None else image


def _to_rgb(image: Image.Image) -> RGBImage:
    """Upright image -> H x W x 3 uint8 RGB. The float arithmetic of 16-bit and transparent images
    runs a strip of rows at a time, so it needs memory for a strip, not for the image (on the
    whole image at once it took 56 bytes a pixel: 2 GB for a transparent PNG within the budget)."""
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        grey = np.asarray(image)
        scale = 255.0 / (255.0 if grey.max(initial=0) <= 255 else 65535.0)
        out = np.empty((*grey.shape, 3), dtype=np.uint8)
        for rows in _strips(len(grey)):
            strip = grey[rows].astype(np.float64)
            out[rows] = np.clip(strip * scale, 0, 255).astype(np.uint8)[:, :, None]
        return out
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint8)
        if not rgba[:, :, 3].any():  # alpha left empty by some exporters: ignore it
            return np.ascontiguousarray(rgba[:, :, :3])
        out = np.empty((*rgba.shape[:2], 3), dtype=np.uint8)
        for rows in _strips(len(rgba)):
            strip = rgba[rows].astype(np.float32)
            alpha = strip[:, :, 3:4] / 255.0
            rgb = strip[:, :, :3] * alpha + _BACKGROUND * (1.0 - alpha)
            out[rows] = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
        return out
    if mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def _strips(height: int) -> list[slice]:
    return [slice(top, top + _STRIP_ROWS) for top in range(0, height, _STRIP_ROWS)]
