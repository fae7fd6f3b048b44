"""`evaluate --camera WxH`: photos fitted inside a terminal camera's frame before matching."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from services.facematch.cli import _camera_box
from services.facematch.evaluation import camera_frame


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (120, 90, 60)).save(out, "JPEG", quality=95)
    return out.getvalue()


@pytest.mark.parametrize(("size", "fitted"), [((1280, 720), (640, 360)), ((970, 2204), (211, 480)),
                                              ((1200, 1200), (480, 480))])
def test_a_larger_photo_is_fitted_inside_the_frame(size: tuple[int, int], fitted: tuple[int, int]) -> None:
    out = camera_frame(jpeg(*size), 640, 480)
    with Image.open(io.BytesIO(out)) as image:
        assert image.format == "JPEG" and image.size == fitted


def test_a_photo_that_fits_is_sent_as_it_is() -> None:
    small = jpeg(400, 300)
    assert camera_frame(small, 640, 480) is small


def test_the_camera_size_is_width_x_height() -> None:
    assert _camera_box("640x480") == (640, 480)
    for bad in ("640", "axb", "20x20"):
        with pytest.raises(Exception, match="640x480|camera frame"):
            _camera_box(bad)
