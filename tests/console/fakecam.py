"""A video for Chromium's fake camera (``--use-file-for-fake-video-capture``), made at test time
from photographs: each photo letterboxed to 640x480 and held for a while, in Y4M (YUV 4:2:0), so
a burst taken over two seconds sees the head turn from one pose to the next."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT, FPS = 640, 480, 10


def letterboxed(path: Path) -> Image.Image:
    with Image.open(path) as photo:
        photo = photo.convert("RGB")
        photo.thumbnail((WIDTH, HEIGHT))
        frame = Image.new("RGB", (WIDTH, HEIGHT), (40, 40, 40))
        frame.paste(photo, ((WIDTH - photo.width) // 2, (HEIGHT - photo.height) // 2))
        return frame


def yuv420(frame: Image.Image) -> bytes:
    ycc = np.asarray(frame.convert("YCbCr"), dtype=np.uint8)
    y = ycc[:, :, 0]
    cb = ycc[:, :, 1].reshape(HEIGHT // 2, 2, WIDTH // 2, 2).mean(axis=(1, 3)).round().astype(np.uint8)
    cr = ycc[:, :, 2].reshape(HEIGHT // 2, 2, WIDTH // 2, 2).mean(axis=(1, 3)).round().astype(np.uint8)
    return y.tobytes() + cb.tobytes() + cr.tobytes()


def write_y4m(photos: list[Path], out: Path, hold_frames: int = 5) -> Path:
    """``photos`` in turn, each for ``hold_frames`` frames at 10 fps; Chromium loops the file."""
    with out.open("wb") as f:
        f.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for photo in photos:
            data = yuv420(letterboxed(photo))
            for _ in range(hold_frames):
                f.write(b"FRAME\n" + data)
    return out
