"""Schemathesis hooks for the fuzz test (loaded with ``SCHEMATHESIS_HOOKS=tests.schemathesis_hooks``).

The schema declares image parts as ``image/*``, job uploads as zips or videos: a
valid request carries such a file. These strategies make them, so that the
positive cases reach the models and the job queue rather than the decoder's
refusal: photos of the scikit-image astronaut's face (one face, at a few sizes,
flipped or not, as JPEG or PNG), a zip of such photos, and a short H.264 clip; an
enrollment's ``face`` point is put on that face (:func:`_face_on_the_photo`).
An extra check keeps every error in the service's one shape. Each regex's strategy is
built once per process (:func:`_remember_regex_strategies`), which made the run 3x faster.
"""

from __future__ import annotations

import functools
import io
import json
import re
import zipfile
from functools import cache
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np
import schemathesis
from hypothesis import strategies as st
from PIL import Image
from schemathesis.core.parameters import ParameterLocation
from schemathesis.transport.serialization import Binary


@cache
def _head() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[0:300, 100:400])


@cache
def _photo(side: int, flip: bool, kind: str) -> bytes:
    image = Image.fromarray(_head()).resize((side, side), Image.Resampling.BILINEAR)
    if flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **({"quality": 90} if kind == "JPEG" else {}))
    return buffer.getvalue()


def _photos(kind: str) -> st.SearchStrategy[list[Binary]]:
    """A list of one photo: schemathesis puts a media type's value in place of the whole
    field, so for ``photos`` (an array of files) the value must be the array. A one-item list
    is one part for the single-file fields too."""
    photo = st.builds(_photo, st.sampled_from([160, 224]), st.booleans(), st.just(kind))
    return photo.map(lambda data: [Binary(data)])


@cache
def _zip(count: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(count):
            archive.writestr(f"photo{index}.jpg", _photo(160, index % 2 == 1, "JPEG"))
    return buffer.getvalue()


@cache
def _clip(frames: int) -> bytes:
    import av

    with TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=5, options={"preset": "veryfast"})
            stream.width, stream.height, stream.pix_fmt = 160, 160, "yuv420p"
            head = np.asarray(Image.fromarray(_head()).resize((160, 160)))
            for _ in range(frames):
                for packet in stream.encode(av.VideoFrame.from_ndarray(head, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        return path.read_bytes()


def _remember_regex_strategies() -> None:
    """Build the strategy of each regex once per process instead of once per test case.

    A person's name follows a 13 KB pattern (every printable Unicode character but ``/``,
    from this Python's tables: ``service.schemas.name_pattern``). Hypothesis 6 builds a
    regex's strategy afresh for every strategy object that asks for it, and schemathesis asks
    with a new one for each case and phase: about 90% of the fuzz test's time went to
    rebuilding that one class (py-spy, session 17). Strategies are immutable values, so one
    built strategy serves every draw alike; what is drawn, and every check, is unchanged.
    """
    from hypothesis.strategies._internal import regex as hypothesis_regex

    build = hypothesis_regex.regex_strategy
    # each entry keeps its alphabet alive, so the alphabet's id in the key is never reused
    built: dict[tuple[object, ...], tuple[object, st.SearchStrategy]] = {}

    @functools.wraps(build)
    def remembered(
        regex: Any,
        fullmatch: bool,
        *,
        alphabet: st.SearchStrategy | None,
        _temp_jsonschema_hack_no_end_newline: bool = False,
    ) -> st.SearchStrategy:
        pattern = regex.pattern if isinstance(regex, re.Pattern) else regex
        flags = regex.flags if isinstance(regex, re.Pattern) else 0
        key = (pattern, flags, fullmatch, id(alphabet), _temp_jsonschema_hack_no_end_newline)
        if key not in built:
            built[key] = (
                alphabet,
                build(
                    regex,
                    fullmatch,
                    alphabet=alphabet,
                    _temp_jsonschema_hack_no_end_newline=_temp_jsonschema_hack_no_end_newline,
                ),
            )
        return built[key][1]

    hypothesis_regex.regex_strategy = remembered  # type: ignore[assignment]


_remember_regex_strategies()
schemathesis.openapi.media_type("image/jpeg", _photos("JPEG"))  # type: ignore[arg-type]
schemathesis.openapi.media_type("image/png", _photos("PNG"))  # type: ignore[arg-type]
schemathesis.openapi.media_type("application/zip", st.builds(_zip, st.integers(1, 2)))
schemathesis.openapi.media_type("video/mp4", st.builds(_clip, st.integers(2, 4)))


@schemathesis.check
def error_shape(ctx: object, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx and 5xx is ``{"error": {"code": str, "message": str}}``."""
    if response.status_code < 400:
        return
    body = json.loads(response.content)
    assert set(body) == {"error"}, f"not the error shape: {body}"
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], f"no code: {body}"
    assert isinstance(error.get("message"), str) and error["message"], f"no message: {body}"


@schemathesis.hook
def map_case(context: object, case: schemathesis.Case) -> schemathesis.Case:
    """In a negative case, a photo list keeps random bytes rather than real photos.

    schemathesis already skips media type strategies for binary fields of negative cases, but
    not for an array of binary parts (``photos``); there a real photo would make a refused
    field the only reason left for a refusal, while its negative-data check cannot read the
    sent form back (it fails on file values) to see that e.g. a name mutated to ``[]`` went
    out as the valid text "[]". Random bytes restore what it does for single files.
    """
    meta = case.meta
    body = meta.components.get(ParameterLocation.BODY) if meta is not None else None
    if body is None or not isinstance(case.body, dict):
        return case
    if not body.mode.is_negative:
        _face_on_the_photo(case.body)
        return case
    for name, value in case.body.items():
        if isinstance(value, list) and value and all(isinstance(v, Binary) for v in value):
            case.body[name] = [Binary(b"random bytes, not a photo") for _ in value]
    return case


def _face_on_the_photo(body: dict[str, Any]) -> None:
    """In a positive enrollment, a ``face`` point drawn at random would miss the one face of
    the photo sent, and the refusal (422: no face there) would be right: the point is moved
    onto the astronaut's face (the photo's centre, 0.4 of its height down: inside the face
    box at both sizes, flipped or not), or, with several photos, the choice becomes
    ``largest`` (a point picks a face in one photo only). ``only`` and ``largest`` stay."""
    choice = body.get("face")
    photos = body.get("photos")
    if not isinstance(choice, str) or "," not in choice or not isinstance(photos, list):
        return
    if len(photos) != 1 or not isinstance(photos[0], Binary):
        body["face"] = "largest"
        return
    width, height = Image.open(io.BytesIO(photos[0].data)).size
    body["face"] = f"{width / 2:.1f},{height * 0.4:.1f}"
