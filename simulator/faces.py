"""Bursts of real photographs for simulated terminals (the semester test, the load benchmark and
a person driving ``aid sim`` by hand).

The photos are those of ``../shared/faces`` and ``../shared/faces-extra`` (folders per person;
``AID_FACES_DIR`` and ``AID_FACES_EXTRA_DIR`` point elsewhere). A live burst must show a head
turn or a blink (facematch's liveness check); still photos of one person rarely differ enough in
yaw, so some bursts include a mirrored copy of one photo (``M:`` before its name): a real photo
turned the other way, as the same head turned to the other side. The bursts below passed the
enrolment check (liveness, ID-card match) with the calibrated thresholds; ``id_photo`` is the
photo read from the ID card.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Person:
    folder: str
    burst: tuple[str, str, str]
    id_photo: str
    extra: bool = False  # in faces-extra


#: People whose burst passes liveness and matches their ID-card photo, in a stable order.
PEOPLE: tuple[Person, ...] = (
    Person("obama", ("obama_1.jpg", "obama_4.jpg", "M:obama_4.jpg"), "obama_1.jpg"),
    Person("biden", ("biden_1.jpg", "M:biden_1.jpg", "biden_2.jpg"), "biden_1.jpg"),
    Person("kit_harington", ("kit_harington_1.jpg", "kit_harington_2.jpg", "kit_harington_3.jpg"),
           "kit_harington_1.jpg"),
    Person("alex_lacamoire", ("alex_lacamoire_1.jpg", "alex_lacamoire_2.jpg", "alex_lacamoire_3.png"),
           "alex_lacamoire_1.jpg"),
    Person("person01", ("img1.jpg", "img11.jpg", "img4.jpg"), "img1.jpg", extra=True),
    Person("person02", ("img13.jpg", "img14.jpg", "img15.jpg"), "img13.jpg", extra=True),
    Person("person05", ("img16.jpg", "M:img16.jpg", "img17.jpg"), "img16.jpg", extra=True),
    Person("person06", ("img18.jpg", "M:img18.jpg", "img19.jpg"), "img18.jpg", extra=True),
    Person("person07", ("M:img21.jpg", "img20.jpg", "img21.jpg"), "img20.jpg", extra=True),
    Person("lin_manuel_miranda", ("lin_manuel_miranda_1.png", "lin_manuel_miranda_1.png",
                                  "M:lin_manuel_miranda_1.png"), "lin_manuel_miranda_1.png"),
)


def faces_dir(extra: bool = False) -> Path:
    variable = "AID_FACES_EXTRA_DIR" if extra else "AID_FACES_DIR"
    default = REPO.parent / "shared" / ("faces-extra" if extra else "faces")
    return Path(os.environ.get(variable, default))


@cache
def photo(folder: str, name: str, extra: bool = False) -> bytes:
    """The bytes of a photo; ``M:name`` is the photo mirrored left to right (JPEG)."""
    path = faces_dir(extra) / folder / name.removeprefix("M:")
    data = path.read_bytes()
    if not name.startswith("M:"):
        return data
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image) or image
        mirrored = ImageOps.mirror(upright.convert("RGB"))
    out = io.BytesIO()
    mirrored.save(out, "JPEG", quality=92)
    return out.getvalue()


def burst(person: Person) -> list[bytes]:
    return [photo(person.folder, name, person.extra) for name in person.burst]


def id_photo(person: Person) -> bytes:
    return photo(person.folder, person.id_photo, person.extra)


def still_burst(person: Person) -> list[bytes]:
    """Three copies of one photo: a still picture, refused by liveness (LIVENESS_STATIC)."""
    return [id_photo(person)] * 3
