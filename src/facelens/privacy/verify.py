"""Verified hiding: attack each hidden face with every registered recognizer, escalate on a match.

A face is hidden (:mod:`facelens.privacy.methods`), then attacked exactly as
``facelens eval anonymization`` attacks it (:mod:`facelens.evaluation.anonymization`):
the hidden image, aligned at the **original** detection's landmarks (the
attacker knows where the face is), is embedded by each recognizer of
:data:`RECOGNIZERS` and compared with the original face's template. When any
recognizer's cosine reaches its verification threshold (:func:`verify_threshold`),
the face is redrawn one step further along its :func:`ladder` (a larger blur,
fewer pixelate blocks, a fresh grain; then solid fills) until none does, or
the ladder ends: the face is then ``verified: false`` and says so.

One embedding per model, not per recognizer: a fusion's cosine is the weighted
sum of its parts' cosines (:mod:`facelens.models.fusion`), so SFace's crop is
embedded once and dlib's crop with its mirror image (dlib alone is unflipped,
the fusion's dlib part flipped: the mirror's template is the only extra work).
A face costs one SFace and two dlib runs for its original, and as many per
attempt (about 80 ms of CPU for a face that passes at once; docs/benchmarks.md).

**Thresholds.** Where the image or clip holds enough faces, the threshold is
the footage's own: the cosine that 1 in 100 of its hidden faces reach against
*other* people's originals (:mod:`facelens.privacy.cohort`,
:func:`attack_threshold`); on dark or soft crowds LFW's threshold is matched
by 5-23% of strangers. Elsewhere: the eval's attacker uses, at each face size, the cosine at
FMR 1e-2 among different people's originals of that size, or the calibrated
one (sets too small for their own). The verifier uses, for a face of size
``s`` (the longer side of its face box, px), the lowest of the calibrated
threshold and the size thresholds measured at or around ``s``
(:data:`SIZE_THRESHOLDS`, two samples of 300 LFW people), minus
:data:`MARGIN`: so where it passes a face, neither threshold of the eval is
reached (docs/benchmarks.md#anonymization-verified).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from facelens.io.image import DecodedImage
from facelens.match.calibration import calibration_for, operating_point
from facelens.models import registry
from facelens.models.fusion import FusionEmbedder
from facelens.models.runtime import using_engine
from facelens.pipeline.faces import FacePipeline
from facelens.privacy.cohort import MIN_PAIRS, FootageCohort
from facelens.privacy.methods import NOISE_LEVEL, SHIPPED, Method, Strength, anonymize_regions
from facelens.privacy.regions import grow_box
from facelens.types import Box, Detection, FloatArray, ImageArray

__all__ = [
    "ATTACK_FMR",
    "MARGIN",
    "RECOGNIZERS",
    "SAME_FACE_FMR",
    "SIZE_THRESHOLDS",
    "VERIFY_AGAIN_AFTER_SECONDS",
    "VERIFY_AGAIN_GROWN",
    "VERIFY_EVERY_SECONDS",
    "VIDEO_VERIFY_ENGINE",
    "HidingVerifier",
    "Step",
    "TrackVerifier",
    "Verification",
    "attack_threshold",
    "drawn",
    "ladder",
    "verify_threshold",
]

RECOGNIZERS: tuple[str, ...] = ("sface-2021dec-int8bq", "dlib-resnet-v1", "fusion-sface-dlib-flip")
"""The registered recognizers that attack each hidden face (those of the eval)."""
ATTACK_FMR = 1e-2
"""False-match rate of the attack the verifier defends against (the eval's)."""
SAME_FACE_FMR = 1e-4
"""Two faces of one image whose originals a recognizer matches at this false-match rate are
taken for one person (a duplicate, a reflection) and not counted as strangers by the
footage's threshold (:mod:`facelens.privacy.cohort`)."""
MARGIN = 0.005
"""Cosine subtracted from the lowest threshold the eval may use (see :func:`verify_threshold`):
twice the largest difference between the size thresholds of two disjoint samples of 300 LFW
people (0.0025, SFace at 32 px; dlib 0.0011, the fusion 0.0024)."""
SIZE_THRESHOLDS: dict[str, dict[int, float]] = {
    "sface-2021dec-int8bq": {
        16: 0.3337,
        32: 0.2989,
        48: 0.2965,
        64: 0.2966,
        128: 0.2971,
        256: 0.2968,
    },
    "dlib-resnet-v1": {16: 0.9369, 32: 0.9169, 48: 0.9117, 64: 0.9094, 128: 0.9079, 256: 0.9083},
    "fusion-sface-dlib-flip": {
        16: 0.8376,
        32: 0.8153,
        48: 0.8104,
        64: 0.8083,
        128: 0.8069,
        256: 0.8075,
    },
}
"""The eval's size thresholds: the FMR 1e-2 cosine among different people's originals, per
recognizer and face size (px), the lower of two disjoint samples of 300 LFW people (the 300
after the first 100 of ``eval anonymization``'s seeded order, and the 300 after those);
docs/benchmarks.md#anonymization-verified."""

SOLID_FILLS: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (0, 64, 0), (64, 0, 0), (64, 32, 16))
"""Colours of the ladder's last rungs, in order: black, dark green, dark red, brown. Chosen on
300 other LFW people (the 300 after the 700 first; 16, 32, 64 and 256 px) among 8 dark and
grey fills: grey, white and every colour but black let SFace match 5-15% of faces (flat
light fills are a "hub" for it); black leaves dlib matching 0.3-5%; these 4 in this order
leave 2 faces of 1,200 matched by dlib by all of them (16 and 32 px, where every fill scores
0.91-0.92 against that face)."""


@dataclass(frozen=True)
class Step:
    """One rung of a ladder: the method and strength a face is drawn with, and its name."""

    method: Method
    strength: Strength
    name: str


def ladder(method: Method, strength: Strength = SHIPPED) -> list[Step]:
    """The drawings tried in order for ``method``: the shipped one, then stronger ones of the
    same method with fresh grains, then solid fills of the whole region."""
    steps = [Step(method, strength, _name(method, strength))]
    noise = max(strength.noise, NOISE_LEVEL)
    if method == "blur":
        for grain, sigma in enumerate((1 / 4, 1 / 3), start=1):
            stronger = replace(
                strength,
                blur=max(strength.blur, sigma),
                grain=grain,
                blur_noise=max(strength.blur_noise, NOISE_LEVEL),
            )
            steps.append(Step(method, stronger, _name(method, stronger)))
    elif method == "pixelate":
        for grain, blocks in enumerate((6, 4), start=1):
            stronger = replace(
                strength, pixelate=min(strength.pixelate, blocks), grain=grain, noise=noise
            )
            steps.append(Step(method, stronger, _name(method, stronger)))
    for colour in SOLID_FILLS:
        solid = replace(strength, fill=colour)
        step = Step("box", solid, _name("box", solid))
        if step not in steps:
            steps.append(step)
    return steps


def drawn(step: Step, region: Box) -> Step:
    """``step`` as drawn on ``region``: a blur or pixelate of a face too small for it is a
    solid fill (:meth:`~facelens.privacy.methods.Strength.solid`)."""
    size = (round(region.width), round(region.height))
    if step.method in ("blur", "pixelate") and step.strength.solid(step.method, size):
        return Step("box", step.strength, _name("box", step.strength))
    return step


def _name(method: Method, strength: Strength) -> str:
    fill = "fill " + "#{:02x}{:02x}{:02x}".format(*strength.fill)
    if method == "box":
        return fill
    if method == "ellipse":
        return f"ellipse@{strength.ellipse:g} {fill}"
    value = f"{strength.blur:.3g}" if method == "blur" else str(strength.pixelate)
    level = strength.blur_noise if method == "blur" else strength.noise
    grain = f"grain {strength.grain}" if level > 0 else "no grain"
    if level > 0 and level != NOISE_LEVEL:
        grain += f" at {level:g}"
    return f"{method}@{value} {grain}"


@functools.cache
def _same_face_threshold(recognizer: str) -> float:
    return operating_point(calibration_for(recognizer), fmr=SAME_FACE_FMR).threshold


@functools.cache
def _calibrated(recognizer: str) -> float:
    return operating_point(calibration_for(recognizer), fmr=ATTACK_FMR).threshold


def verify_threshold(recognizer: str, size: float) -> float:
    """The verifier's cosine threshold for ``recognizer`` on a face of ``size`` px."""
    calibrated = _calibrated(recognizer)
    table = SIZE_THRESHOLDS.get(recognizer, {})
    near = [t for s, t in table.items() if s / 2 <= size <= s * 2]
    return min([calibrated, *near]) - MARGIN


@dataclass
class Verification:
    """What verification did to one face: the drawing it ended with, and the last attack.

    ``step``: the drawing (as drawn at this size); ``level``: its rung of :func:`ladder`;
    ``escalations``: redraws before it (0: the first drawing passed);
    ``verified``: no recognizer reached its threshold on the final drawing; ``scores`` and
    ``thresholds``: each recognizer's cosine with the original, and its threshold;
    ``threshold_source``: ``"LFW"`` or ``"footage (N stranger pairs)"`` (:func:`attack_threshold`).
    """

    step: Step
    level: int = 0
    escalations: int = 0
    verified: bool = True
    scores: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    tried: list[str] = field(default_factory=list)
    threshold_source: str = "LFW"

    @property
    def matched(self) -> list[str]:
        return [r for r, s in self.scores.items() if s >= self.thresholds[r]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "escalations": self.escalations,
            "ended_with": self.step.name,
            "tried": self.tried,
            "scores": {r: round(s, 4) for r, s in self.scores.items()},
            "thresholds": {r: round(t, 4) for r, t in self.thresholds.items()},
            "thresholds_from": self.threshold_source,
        }


Templates = dict[tuple[str, bool], FloatArray]
"""Unit templates of one face, per (model id, flipped)."""


class HidingVerifier:
    """The recognizers of :data:`RECOGNIZERS`, loaded once per process on first use.

    :meth:`hide` draws a face, attacks it, and escalates until no recognizer matches.
    """

    _shared: ClassVar[dict[str | None, HidingVerifier]] = {}
    _lock = threading.Lock()

    def __init__(self, recognizers: Sequence[str] = RECOGNIZERS, engine: str | None = None) -> None:
        """``engine``: the CPU engine its models load on (None: the one in force)."""
        self.recognizers = tuple(recognizers)
        self.engine = engine
        self._parts: dict[str, list[tuple[str, float, bool]]] | None = None
        self._pipelines: dict[str, FacePipeline] = {}

    @classmethod
    def shared(cls, engine: str | None = None) -> HidingVerifier:
        """The process's verifier on ``engine`` (its models are loaded once, when first needed)."""
        with cls._lock:
            if engine not in cls._shared:
                cls._shared[engine] = HidingVerifier(engine=engine)
            return cls._shared[engine]

    def _on_engine(self) -> AbstractContextManager[None]:
        return using_engine(self.engine) if self.engine else contextlib.nullcontext()

    def parts(self) -> dict[str, list[tuple[str, float, bool]]]:
        """Each recognizer as ``(model id, weight, flipped)`` parts (one for a plain one)."""
        with self._on_engine():
            return self._load_parts()

    def _load_parts(self) -> dict[str, list[tuple[str, float, bool]]]:
        if self._parts is None:
            parts = {}
            for name in self.recognizers:
                embedder = registry.load_embedder(name)
                if isinstance(embedder, FusionEmbedder):
                    parts[name] = [
                        (p.model_id, w, f)
                        for p, w, f in zip(
                            embedder.parts, embedder.weights, embedder.flips, strict=True
                        )
                    ]
                else:
                    parts[name] = [(name, 1.0, False)]
            self._parts = parts
        return self._parts

    def load(self) -> None:
        """Load every recognizer's models now (else the first attack loads them)."""
        with self._on_engine():
            for parts in self._load_parts().values():
                for model, _, _ in parts:
                    self._pipeline(model).embedder  # noqa: B018

    def _pipeline(self, model: str) -> FacePipeline:
        """The pipeline that aligns and embeds faces for ``model`` (its models load lazily)."""
        with self._lock:
            return self._pipelines.setdefault(model, FacePipeline(registry.DEFAULT_DETECTOR, model))

    def templates(self, pixels: ImageArray, detection: Detection) -> Templates:
        """The face at ``detection`` (aligned at its landmarks, as the eval does), embedded once
        per model, and once more mirrored where a recognizer flips that model."""
        wanted: dict[str, bool] = {}
        for parts in self.parts().values():
            for model, _, flipped in parts:
                wanted[model] = wanted.get(model, False) or flipped
        image = DecodedImage(pixels, "verify")
        with self._on_engine():
            return self._embedded(image, detection, wanted)

    def _embedded(
        self, image: DecodedImage, detection: Detection, wanted: dict[str, bool]
    ) -> Templates:
        out: Templates = {}
        for model, flip in wanted.items():
            pipeline = self._pipeline(model)
            face = pipeline.faces_at(image, [detection], embed=False)[0]
            crop = face.part_crops[0] if face.part_crops else face.aligned
            assert crop is not None
            batch = np.stack([crop, crop[:, ::-1]] if flip else [crop])
            vectors = pipeline.embedder.embed(batch)
            out[(model, False)] = vectors[0]
            if flip:
                both = vectors[0] + vectors[1]
                out[(model, True)] = both / max(float(np.linalg.norm(both)), 1e-12)
        return out

    def scores(self, hidden: Templates, original: Templates) -> dict[str, float]:
        """Each recognizer's cosine between a hidden face and its original."""
        return {
            name: sum(
                weight * float(np.dot(hidden[(m, f)], original[(m, f)])) for m, weight, f in parts
            )
            for name, parts in self.parts().items()
        }

    def hide(
        self,
        pixels: ImageArray,
        faces: Sequence[tuple[Detection, Box]],
        method: Method,
        strength: Strength = SHIPPED,
        *,
        levels: Sequence[int] | None = None,
        others: Sequence[tuple[Box, Step]] = (),
        originals: Sequence[Templates] | None = None,
        written: Callable[[ImageArray], ImageArray] | None = None,
        cohort: FootageCohort | None = None,
    ) -> tuple[ImageArray, list[Verification]]:
        """``pixels`` (RGB uint8, not changed) with each face's region hidden and verified.

        ``faces``: ``(detection, region)`` of each face to hide; ``levels``: the rung of
        :func:`ladder` each starts at (default 0); ``others``: regions hidden in the same
        image without verification (drawn first); ``originals``: the faces' templates from
        :meth:`templates` of ``pixels``, when already known; ``written``: the image as it
        will be read back from the output (e.g. through JPEG), which is what is attacked;
        ``cohort``: the stranger cosines of the footage so far (a clip's earlier frames),
        which this call adds to (default: this image's own, see :func:`attack_threshold`).
        Every face is attacked on the image as it is returned (overlapping regions included);
        a face that a recognizer matches is redrawn one rung up and the faces whose regions
        overlap it are attacked again, until no face is matched or the matched ones are at
        their ladder's end (``verified: false``): these are then drawn with the rung they were
        least matched at (the lowest highest excess of a cosine over its threshold), and
        attacked once more as drawn.
        """
        cohort = cohort if cohort is not None else FootageCohort()
        ladders = [ladder(method, strength) for _ in faces]
        level = list(levels) if levels is not None else [0] * len(faces)
        level = [min(max(0, lv), len(steps) - 1) for lv, steps in zip(level, ladders, strict=True)]
        if originals is None:
            originals = [self.templates(pixels, detection) for detection, _ in faces]
        sizes = [max(d.box.width, d.box.height) for d, _ in faces]
        strangers = self._strangers(originals)
        regions = [region for _, region in faces]
        tried = [[drawn(ladders[i][level[i]], regions[i]).name] for i in range(len(faces))]
        attempts: list[list[tuple[int, dict[str, float]]]] = [[] for _ in faces]
        results: list[Verification] = []
        stale = set(range(len(faces)))
        settled = False
        hidden = pixels
        while True:
            hidden = pixels.copy()
            for box, step in others:
                anonymize_regions(hidden, [box], step.method, step.strength)
            for (_, region), steps, rung in zip(faces, ladders, level, strict=True):
                anonymize_regions(hidden, [region], steps[rung].method, steps[rung].strength)
            attacked = written(hidden) if written is not None else hidden
            for i in sorted(stale):
                templates = self.templates(attacked, faces[i][0])
                attempts[i].append((level[i], self.scores(templates, originals[i])))
                for j in strangers[i]:
                    for recognizer, cosine in self.scores(templates, originals[j]).items():
                        cohort.add(recognizer, sizes[i], cosine)
            thresholds = [self._thresholds(cohort, size) for size in sizes]
            results = [
                Verification(
                    drawn(ladders[i][level[i]], regions[i]),
                    level[i],
                    len(tried[i]) - 1,
                    True,
                    attempts[i][-1][1],
                    thresholds[i][0],
                    tried[i],
                    thresholds[i][1],
                )
                for i in range(len(faces))
            ]
            if settled:
                break
            raised = []
            for i, result in enumerate(results):
                if not result.matched:
                    continue
                up = _next_rung(ladders[i], level[i], regions[i])
                if up is not None:
                    level[i] = up
                    tried[i].append(drawn(ladders[i][up], regions[i]).name)
                    raised.append(i)
            if not raised:  # the faces still matched take their least matched rung
                for i, result in enumerate(results):
                    if result.matched:
                        least = _least_matched(attempts[i], result.thresholds)
                        if least != level[i]:
                            level[i] = least
                            raised.append(i)
                settled = True
                if not raised:
                    break
            stale = {
                j
                for j in range(len(faces))
                if any(j == i or _overlap(faces[j][1], faces[i][1]) for i in raised)
            }
        for result in results:
            result.verified = not result.matched
        return hidden, results

    def _strangers(self, originals: Sequence[Templates]) -> list[list[int]]:
        """For each face, the other faces of the image that are surely other people: every
        other face whose original no recognizer matches with this one's at FMR
        :data:`SAME_FACE_FMR` (which leaves out a duplicate detection or a reflection)."""
        strangers: list[list[int]] = [[] for _ in originals]
        for i in range(len(originals)):
            for j in range(i + 1, len(originals)):
                scores = self.scores(originals[i], originals[j])
                if all(c < _same_face_threshold(r) for r, c in scores.items()):
                    strangers[i].append(j)
                    strangers[j].append(i)
        return strangers

    def _thresholds(self, cohort: FootageCohort, size: float) -> tuple[dict[str, float], str]:
        """Each recognizer's threshold for a face of ``size`` px, and where they came from."""
        chosen = {r: attack_threshold(r, size, cohort) for r in self.recognizers}
        pairs = min(len(cohort.pairs(r, size)) for r in self.recognizers)
        source = f"footage ({pairs} stranger pairs)" if pairs >= MIN_PAIRS else "LFW"
        return chosen, source


def attack_threshold(recognizer: str, size: float, cohort: FootageCohort) -> float:
    """The verifier's threshold for ``recognizer`` on a face of ``size`` px: the footage's own
    at :data:`ATTACK_FMR` where it has :data:`~facelens.privacy.cohort.MIN_PAIRS` stranger
    cosines of faces about that size (:mod:`facelens.privacy.cohort`), else LFW's
    (:func:`verify_threshold`); both less :data:`MARGIN`."""
    footage = cohort.threshold(recognizer, size, ATTACK_FMR)
    return verify_threshold(recognizer, size) if footage is None else footage - MARGIN


def _least_matched(
    attempts: list[tuple[int, dict[str, float]]], thresholds: dict[str, float]
) -> int:
    """The rung of the attempt whose highest excess of a cosine over its threshold is lowest."""
    excess = [(max(s[r] - thresholds[r] for r in s), rung) for rung, s in attempts]
    return min(excess)[1]


def _next_rung(steps: list[Step], level: int, region: Box) -> int | None:
    """The next rung of ``steps`` after ``level`` that draws ``region`` differently, if any."""
    now = drawn(steps[level], region).name
    for up in range(level + 1, len(steps)):
        if drawn(steps[up], region).name != now:
            return up
    return None


def _overlap(a: Box, b: Box) -> bool:
    return (
        a.x < b.x + b.width
        and b.x < a.x + a.width
        and a.y < b.y + b.height
        and b.y < a.y + a.height
    )


VERIFY_EVERY_SECONDS = 2.0
"""Video: a hidden track is verified on its first detected frame, then on its first detected
frame at least this long after the last verified one (s)."""
VERIFY_AGAIN_GROWN = 1.25
"""Video: a track is also verified again, sooner, on a frame where its face is at least this
many times as large (the box's longer side) as on its last verified frame: a face coming
closer shows more of itself than the attack that passed it saw."""
VERIFY_AGAIN_AFTER_SECONDS = 0.4
"""Video: the shortest time (s) between two verifications of a track grown as above."""

VIDEO_VERIFY_ENGINE = "onnxruntime"
"""The CPU engine of a video's track attacks. A video process embeds few faces (a track
once, then every 2 s), so OpenVINO's start (its import, about 0.25 s, and its compiled
models) cost more than its bfloat16 saved: a 3 s 1080p clip took 5.16-5.23 s with the
attacks on OpenVINO against 4.62-4.67 s on onnxruntime (docs/benchmarks.md#openvino)."""


@dataclass
class TrackState:
    """A video track's verification: its rung of the ladder and what each check found."""

    level: int = 0
    escalations: int = 0
    last: float | None = None  # time (s) of the last verified frame
    last_size: float = 0.0  # the face box's longer side (px) on that frame
    frames: list[int] = field(default_factory=list)
    unverified_frames: list[int] = field(default_factory=list)
    last_result: Verification | None = None

    def to_dict(self) -> dict[str, Any]:
        result = self.last_result
        return {
            "frames_verified": self.frames,
            "escalations": self.escalations,
            "ended_with": None if result is None else result.step.name,
            "verified": not self.unverified_frames,
            "unverified_frames": self.unverified_frames,
            "scores": {} if result is None else {r: round(s, 4) for r, s in result.scores.items()},
        }


def _due(state: TrackState, time_s: float, box: Box, every: float) -> bool:
    """Whether a track's face at ``time_s`` s with this box is to be attacked now."""
    if state.last is None or time_s - state.last >= every:
        return True
    grown = max(box.width, box.height) >= VERIFY_AGAIN_GROWN * state.last_size
    return grown and time_s - state.last >= VERIFY_AGAIN_AFTER_SECONDS


class TrackVerifier:
    """Verified hiding of video tracks: a track is attacked on its first detected frame, then
    every :data:`VERIFY_EVERY_SECONDS`, and sooner where its face has grown
    :data:`VERIFY_AGAIN_GROWN` times since its last attack; a match raises the track's rung of
    the ladder for every frame drawn after the attack is settled (:meth:`step` is what the
    writer draws).

    Attacks run in a thread of the verifier's own, one at a time in the order
    :meth:`verify` issued them, while the caller decodes and searches the next frames.
    Their outcome is put in force only by :meth:`settle`, in the caller's thread, so what
    :meth:`step` answers depends on which attacks were settled, never on thread timing.
    Use it as a context manager (or call :meth:`close`): leaving stops the thread.
    """

    def __init__(
        self,
        method: Method,
        strength: Strength = SHIPPED,
        verifier: HidingVerifier | None = None,
        every: float = VERIFY_EVERY_SECONDS,
    ) -> None:
        self.method: Method = method
        self.strength = strength
        self.verifier = verifier or HidingVerifier.shared(VIDEO_VERIFY_ENGINE)
        self.every = every
        self.ladder = ladder(method, strength)
        self.tracks: dict[int, TrackState] = {}
        self.cohort = FootageCohort()
        """The clip's stranger cosines so far (the attacks' own thresholds, once enough)."""
        self.cpu_seconds = 0.0
        """CPU seconds of the attacks, in the verifier's thread (onnxruntime's own threads
        not counted)."""
        self._attack_levels: dict[int, int] = {}  # each track's rung as the attacks left it
        self._attacker: ThreadPoolExecutor | None = None
        self._issued: deque[tuple[int, Future[list[Verification]], list[int]]] = deque()

    def __enter__(self) -> TrackVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the attacks' thread (attacks not started yet are dropped)."""
        if self._attacker is not None:
            self._attacker.shutdown(wait=True, cancel_futures=True)
            self._attacker = None

    def load_in_background(self) -> threading.Thread:
        """Start loading the recognizers in a thread of their own (about 0.6 CPU s), so that
        a video's first attack finds them loaded instead of holding up its frames; the
        thread, started."""
        context = contextvars.copy_context()  # the engine and providers in force
        loading = threading.Thread(
            target=context.run, args=(self._load,), name="facelens-verifier-load", daemon=True
        )
        loading.start()
        return loading

    def _load(self) -> None:
        # A failure here is met again, and reported, by the first attack's own loading.
        with contextlib.suppress(Exception):
            self.verifier.load()

    def step(self, track_id: int | None) -> Step:
        """The drawing of a track's regions now (the attacks settled so far decide it)."""
        state = self.tracks.get(track_id) if track_id is not None else None
        return self.ladder[state.level if state else 0]

    def verify(
        self,
        pixels: ImageArray,
        frame_index: int,
        time_s: float,
        faces: Sequence[tuple[int, Detection]],
    ) -> None:
        """Attack the tracks due for it among ``faces`` (``(track id, detection)`` of one RGB
        frame at ``time_s`` s; ``pixels`` must not change afterwards), the frame's other
        faces hidden as the earlier attacks left them. The attack is queued for the
        verifier's thread; :meth:`settle` waits for it."""
        height, width = pixels.shape[:2]
        due, others = [], []
        for track_id, detection in faces:
            state = self.tracks.setdefault(track_id, TrackState())
            region = grow_box(detection.box, width, height)
            if _due(state, time_s, detection.box, self.every):
                state.last, state.last_size = time_s, max(detection.box.width, detection.box.height)
                state.frames.append(frame_index)
                due.append((track_id, detection, region))
            else:
                others.append((track_id, region))
        if not due:
            return
        if self._attacker is None:
            self._attacker = ThreadPoolExecutor(1, thread_name_prefix="facelens-attacks")
        attack = functools.partial(self._attack, pixels, due, others)
        future = self._attacker.submit(contextvars.copy_context().run, attack)
        self._issued.append((frame_index, future, [track_id for track_id, _, _ in due]))

    def _attack(
        self,
        pixels: ImageArray,
        due: list[tuple[int, Detection, Box]],
        others: list[tuple[int, Box]],
    ) -> list[Verification]:
        """The verifier's thread: one frame's attack, from the rungs the earlier attacks left."""
        started = time.thread_time()
        try:
            levels = self._attack_levels
            _, results = self.verifier.hide(
                pixels,
                [(detection, region) for _, detection, region in due],
                self.method,
                self.strength,
                levels=[levels.get(track_id, 0) for track_id, _, _ in due],
                others=[(region, self.ladder[levels.get(t, 0)]) for t, region in others],
                cohort=self.cohort,
            )
            for (track_id, _, _), result in zip(due, results, strict=True):
                levels[track_id] = result.level
            return results
        finally:
            self.cpu_seconds += time.thread_time() - started

    def settle(self, through_frame: int | None = None) -> None:
        """Wait for the attacks issued on frames up to ``through_frame`` (every one: None),
        in order, and put their outcome in force; an attack's failure is raised here."""
        while self._issued and (through_frame is None or self._issued[0][0] <= through_frame):
            frame_index, future, track_ids = self._issued.popleft()
            for track_id, result in zip(track_ids, future.result(), strict=True):
                state = self.tracks[track_id]
                state.level, state.last_result = result.level, result
                state.escalations += result.escalations
                if not result.verified:
                    state.unverified_frames.append(frame_index)

    def annotate(
        self, tracks: list[dict[str, Any]], review: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Add each hidden track's ``verification`` to its report entry (``track_id``,
        ``anonymized``) and its frames still matched at the ladder's end to ``review``;
        returns the report's ``verify`` block over the hidden tracks."""
        self.settle()
        states = []
        for track in tracks:
            state = self.tracks.get(track["track_id"])
            if track.get("anonymized") and state is not None:
                track["verification"] = state.to_dict()
                states.append(state)
                review.extend(
                    {
                        "frames": [frame, frame],
                        "reason": f"track {track['track_id']} still matched by a recognizer "
                        "at the end of its ladder",
                    }
                    for frame in state.unverified_frames
                )
        return {
            "tracks": len(states),
            "every_seconds": self.every,
            "frames_verified": sum(len(s.frames) for s in states),
            "escalated": sum(1 for s in states if s.escalations),
            "unverified": sum(1 for s in states if s.unverified_frames),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "stranger_pairs": self.cohort.summary(),
        }
