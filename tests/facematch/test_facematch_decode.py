"""Decoding rules: what images are accepted, how they are normalised, and the code of each
rejection. Synthetic images only (no models)."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image, ImageFile

from services.facematch.calibration import DecodeLimits
from services.facematch.decode import decode_image
from services.facematch.reasons import Code, FaceError

from .conftest import REPO_ROOT, encode, jpeg_header_only, png_header_only


def gradient(width: int = 96, height: int = 64) -> np.ndarray:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    y = np.linspace(0, 255, height, dtype=np.uint8)
    return np.stack(
        [np.tile(x, (height, 1)), np.tile(y[:, None], (1, width)), np.full((height, width), 77, np.uint8)],
        axis=2,
    )


def rejected_with(data: bytes) -> Code:
    with pytest.raises(FaceError) as caught:
        decode_image(data)
    assert str(caught.value.code) not in caught.value.message  # message is human text, no payload
    return caught.value.code


def test_jpeg_decodes_to_rgb_uint8() -> None:
    pixels = decode_image(encode(gradient(), "JPEG", quality=95))
    assert pixels.shape == (64, 96, 3) and pixels.dtype == np.uint8


def test_png_round_trips_exactly() -> None:
    assert np.array_equal(decode_image(encode(gradient(), "PNG")), gradient())


def test_empty_bytes_are_empty_image() -> None:
    assert rejected_with(b"") == Code.EMPTY_IMAGE


@pytest.mark.parametrize("data", [b"hello, not an image", b"%PDF-1.7\n", b"GIF89a" + b"\x00" * 64])
def test_other_formats_are_unsupported(data: bytes) -> None:
    assert rejected_with(data) == Code.UNSUPPORTED_FORMAT


def test_real_gif_is_unsupported() -> None:
    assert rejected_with(encode(gradient(), "GIF")) == Code.UNSUPPORTED_FORMAT


def test_jpeg_magic_followed_by_garbage_is_corrupt() -> None:
    rng = np.random.default_rng(1)
    assert rejected_with(b"\xff\xd8\xff\xe0" + rng.bytes(2000)) == Code.CORRUPT_IMAGE


def test_truncated_jpeg_is_corrupt() -> None:
    data = encode(gradient(400, 300), "JPEG", quality=90)
    assert rejected_with(data[: len(data) // 2]) == Code.CORRUPT_IMAGE


def test_truncated_png_is_corrupt() -> None:
    noisy = np.random.default_rng(2).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    data = encode(noisy, "PNG")
    assert rejected_with(data[: len(data) * 2 // 3]) == Code.CORRUPT_IMAGE


def test_png_with_bad_crc_is_corrupt() -> None:
    data = bytearray(encode(gradient(), "PNG"))
    data[-20] ^= 0xFF  # inside the last IDAT payload or its CRC
    assert rejected_with(bytes(data)) == Code.CORRUPT_IMAGE


def test_one_pixel_image_is_too_small() -> None:
    assert rejected_with(encode(np.zeros((1, 1, 3), np.uint8), "PNG")) == Code.IMAGE_TOO_SMALL


BOMBS = {
    "PNG 20000x20000": png_header_only(20_000, 20_000),
    "PNG 8000x6000 (48 Mpx)": png_header_only(8000, 6000),
    "PNG 7000x7000 (49 Mpx)": png_header_only(7000, 7000),
    "JPEG 8000x6000 (48 Mpx)": jpeg_header_only(8000, 6000),
    "JPEG 7000x7000 (49 Mpx)": jpeg_header_only(7000, 7000),
    "JPEG 65535x65535": jpeg_header_only(65_535, 65_535),
}


@pytest.fixture
def no_pixel_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails the test if Pillow is asked to decode (allocate) the pixels of any image."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(Image.Image, "load", refuse)


@pytest.mark.parametrize("data", BOMBS.values(), ids=BOMBS.keys())
@pytest.mark.usefixtures("no_pixel_decoding")
def test_small_file_claiming_huge_dimensions_is_refused_from_its_header(data: bytes) -> None:
    assert len(data) < 200  # tens of megapixels declared in a few bytes
    started = time.perf_counter()
    for _ in range(100):
        assert rejected_with(data) == Code.IMAGE_TOO_LARGE
    assert time.perf_counter() - started < 1.0  # well under 10 ms each: nothing is decoded


def test_the_pixel_budget_counts_pixels_not_sides() -> None:
    assert DecodeLimits().max_side > 7000  # no side is too long: only the budget refuses 7000 x 7000
    with pytest.raises(FaceError) as caught:
        decode_image(png_header_only(7000, 7000))
    assert caught.value.code == Code.IMAGE_TOO_LARGE and "budget" in caught.value.message


def test_the_pixel_budget_is_configurable() -> None:
    small = encode(gradient(), "PNG")  # 96 x 64 = 6144 px
    with pytest.raises(FaceError) as caught:
        decode_image(small, DecodeLimits(max_pixels=6143))
    assert caught.value.code == Code.IMAGE_TOO_LARGE
    assert decode_image(small, DecodeLimits(max_pixels=6144)).shape == (64, 96, 3)


# what decoding costs, measured in a fresh interpreter (its peak resident size before and after)
MEMORY_PROBE = textwrap.dedent(
    """
    import io, resource, sys
    import numpy as np
    from PIL import Image
    from services.facematch.decode import decode_image

    side, mode = 2000, sys.argv[1]
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, len(mode)), dtype=np.uint8)
    pixels[..., -1] |= 1  # some transparency, never none
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format="PNG", compress_level=1)
    data = buffer.getvalue()
    del pixels, buffer
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    decode_image(data)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) * 1024 / side**2)
    """
)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA"])
def test_decoding_takes_at_most_sixteen_bytes_a_pixel(mode: str) -> None:
    """What makes the pixel budget (DecodeLimits.max_pixels) a memory budget: 40 Mpx stay
    under 640 MB whatever the image holds (measured: RGB 3, RGBA 12-13, LA 14 bytes a pixel;
    converting transparency on the whole image at once took 56)."""
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, mode],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert float(done.stdout) <= 16.0, f"{float(done.stdout):.1f} bytes a pixel"


def test_rgba_is_composited_on_white() -> None:
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:32, :, 3] = 255  # top half opaque red, bottom half transparent
    pixels = decode_image(encode(rgba, "PNG"))
    assert tuple(pixels[10, 10]) == (200, 0, 0)
    assert tuple(pixels[50, 10]) == (255, 255, 255)


def test_fully_transparent_alpha_is_ignored() -> None:
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 1] = 123
    assert tuple(decode_image(encode(rgba, "PNG"))[5, 5]) == (0, 123, 0)


def test_greyscale_becomes_three_equal_channels() -> None:
    grey = gradient()[:, :, 0]
    pixels = decode_image(encode(grey, "PNG"))
    assert pixels.shape == (64, 96, 3)
    assert np.array_equal(pixels[:, :, 0], pixels[:, :, 2])


def test_sixteen_bit_greyscale_is_scaled_to_eight_bits() -> None:
    wide = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(wide).save(buffer, format="PNG")
    pixels = decode_image(buffer.getvalue())
    assert pixels.dtype == np.uint8 and pixels.max() > 200


def test_palette_png_decodes() -> None:
    paletted = Image.fromarray(gradient()).convert("P")
    buffer = io.BytesIO()
    paletted.save(buffer, format="PNG")
    assert decode_image(buffer.getvalue()).shape == (64, 96, 3)


def test_exif_orientation_is_applied() -> None:
    upright = gradient(96, 64)
    stored = np.rot90(upright)  # pixels stored turned 90 degrees counter-clockwise ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... and tagged "rotate 90 clockwise to display"
    data = encode(np.ascontiguousarray(stored), "JPEG", quality=95, exif=exif.tobytes())
    pixels = decode_image(data)
    assert pixels.shape == upright.shape
    assert np.abs(pixels.astype(int) - upright.astype(int)).mean() < 4


def test_large_jpeg_is_decoded_at_reduced_scale() -> None:
    big = np.repeat(np.repeat(gradient(400, 300), 10, axis=0), 10, axis=1)  # 4000 x 3000
    pixels = decode_image(encode(big, "JPEG", quality=80))
    assert 1600 <= max(pixels.shape[:2]) < 4000
