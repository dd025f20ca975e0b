"""Privacy against utility of the anonymization methods: re-identification curves by face size.

The attack (the strongest we can mount): the attacker holds the **original**
face at the same size and knows exactly where the face is (the original
detection's landmarks align the anonymized face; no detector has to find
it). A face is **re-identified** by a recognizer when the cosine of its
anonymized template with its original template reaches the recognizer's
threshold at a false-match rate of :data:`ATTACK_FMR` (1e-2, far looser than
the 1e-4 default). The re-identification rate is the share of faces
re-identified, for each method, recognizer and face size.

The threshold is the one at FMR 1e-2 **for faces of that size**: the
(1 - 1e-2) quantile of the cosines between *different people's* originals
at that size, when the set gives at least :data:`MIN_SIZE_PAIRS` such pairs,
else the recognizer's calibrated threshold. A recognizer's calibration holds
for faces of the size it was made on; on tiny faces its templates crowd
together (dlib's ResNet at 16 px: 14% of different LFW people pass its
calibrated threshold, and a face replaced by a black box "matches" its
original as often as a stranger's), so the calibrated threshold there is an
attack at FMR 0.14, not 1e-2. The rate at the calibrated threshold is
reported too (``rate_calibrated``), as is ``margin``: the threshold minus the
highest cosine of an anonymized face with its own original.

Face size is the longer side of the detector's face box, in pixels: each
sample image is resized (area interpolation down, cubic up) so that its face
is ``size`` pixels, then the face's region (:mod:`facelens.privacy.regions`)
is hidden with the method at its shipped strength
(:mod:`facelens.privacy.methods`) **and verified** as ``facelens anonymize``
does (:mod:`facelens.privacy.verify`: redrawn up its ladder while a recognizer
still matches it); a method spelled ``blur:raw`` is drawn once, unverified
(the strength alone). Each verified cell counts the faces escalated and
what they ended with. Utility is the share of the image's pixels
the method altered (for video frames at their own size: the share of each
frame altered, what a viewer loses).

Samples: LFW images (the central face, ``count`` people, one image each,
seeded) and frames of the development videos (one frame in ``every``,
largest face). Nothing here is random but the seeded choice of LFW people.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelens.io.image import DecodedImage, load_image
from facelens.match.calibration import calibration_for, operating_point
from facelens.models import registry
from facelens.pipeline.detect import detect_faces
from facelens.pipeline.faces import FacePipeline
from facelens.privacy import verify
from facelens.privacy.methods import METHODS, SHIPPED, Method, Strength, anonymize_regions
from facelens.privacy.regions import grow_box
from facelens.privacy.verify import HidingVerifier, Verification
from facelens.types import Box, Detection, ImageArray

__all__ = [
    "RECOGNIZERS",
    "SIZES",
    "Sample",
    "at_size",
    "lfw_samples",
    "measure",
    "parse_method",
    "size_threshold",
    "video_samples",
]

SIZES: tuple[int, ...] = (16, 24, 32, 48, 64, 96, 128, 192, 256)
"""Face sizes measured, in pixels (the face box's longer side)."""
RECOGNIZERS: tuple[str, ...] = verify.RECOGNIZERS
"""The registered recognizers that attack the anonymized faces (the verifier's)."""
ATTACK_FMR = 1e-2
"""False-match rate of the attacker's "same person" threshold."""
MIN_SIZE_PAIRS = 1000
"""Different-person pairs of originals a set needs for its own threshold at a size (30+ faces)."""


@dataclass(frozen=True)
class Sample:
    """One face to anonymize: an RGB image and the detection of its face."""

    source: str
    pixels: ImageArray
    detection: Detection


@dataclass
class Cell:
    """The results of one (set, method, recognizer, size).

    ``reidentified``: anonymized faces whose cosine with their own original reaches the
    threshold. ``rank1``: of those, the ones whose own original is also their best match
    among every original of the set (the attacker picks the right person). ``chance``
    counts anonymized-face/other-person pairs above the threshold (out of ``pairs``): the
    rate at which the attack "matches" someone it should not, its level of chance.
    """

    threshold: float = 1.0
    cosines: list[float] = field(default_factory=list)
    reidentified: int = 0
    reidentified_calibrated: int = 0
    rank1: int = 0
    chance: int = 0
    pairs: int = 0

    def add(self, scores: np.ndarray, threshold: float, calibrated: float) -> None:
        """``scores[i, j]``: anonymized face i against original j (i == j: its own); faces are
        matched at ``threshold`` (this size's) and counted at ``calibrated`` too."""
        self.threshold = threshold
        own = np.diag(scores)
        self.cosines.extend(float(c) for c in own)
        self.reidentified_calibrated += int((own >= calibrated).sum())
        matched = own >= threshold
        self.reidentified += int(matched.sum())
        self.rank1 += int((matched & (np.argmax(scores, axis=1) == np.arange(len(own)))).sum())
        others = scores[~np.eye(len(own), dtype=bool)]
        self.chance += int((others >= threshold).sum())
        self.pairs += int(others.size)

    def to_dict(self) -> dict[str, Any]:
        n = len(self.cosines)
        return {
            "faces": n,
            "reidentified": self.reidentified,
            "threshold": round(self.threshold, 4),
            "rate": self.reidentified / n if n else None,
            "rate_calibrated": self.reidentified_calibrated / n if n else None,
            "margin": round(self.threshold - float(np.max(self.cosines)), 4) if n else None,
            "rank1_rate": self.rank1 / n if n else None,
            "chance_rate": self.chance / self.pairs if self.pairs else None,
            "cosine_mean": round(float(np.mean(self.cosines)), 4) if n else None,
            "cosine_max": round(float(np.max(self.cosines)), 4) if n else None,
        }


@dataclass
class PrivacyCurves:
    """Re-identification per (set, method, recognizer, size) and utility per (set, method, size)."""

    sizes: tuple[int, ...]
    methods: tuple[str, ...]
    recognizers: tuple[str, ...]
    thresholds: dict[str, float]
    cells: dict[tuple[str, str, str, int], Cell] = field(default_factory=dict)
    altered: dict[tuple[str, str, int], list[float]] = field(default_factory=dict)
    verified: dict[tuple[str, str, int], list[Verification]] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)

    def worst_rate(self, method: str) -> float:
        """The highest re-identification rate of ``method`` over every set, recognizer, size."""
        rates = [
            c.reidentified / len(c.cosines)
            for (_, m, _, _), c in self.cells.items()
            if m == method and c.cosines
        ]
        return max(rates, default=0.0)

    def to_dict(self) -> dict[str, Any]:
        sets = sorted(self.samples)
        return {
            "attack": {
                "fmr": ATTACK_FMR,
                "thresholds": self.thresholds,
                "threshold_by_size": "each cell's threshold is FMR 1e-2 among different "
                f"people's originals at that size (when {MIN_SIZE_PAIRS}+ pairs), else the "
                "calibrated one above",
                "original": "the same face, same size, not anonymized; aligned at its own "
                "landmarks (the attacker knows where the face is)",
            },
            "sizes": list(self.sizes),
            "methods": list(self.methods),
            "recognizers": list(self.recognizers),
            "samples": self.samples,
            "reidentification": {
                s: {
                    m: {
                        r: {
                            str(size): self.cells[(s, m, r, size)].to_dict()
                            for size in self.sizes
                            if (s, m, r, size) in self.cells
                        }
                        for r in self.recognizers
                    }
                    for m in self.methods
                }
                for s in sets
            },
            "utility_share_altered": {
                s: {
                    m: {
                        str(size): float(np.mean(v))
                        for size in self.sizes
                        if (v := self.altered.get((s, m, size)))
                    }
                    for m in self.methods
                }
                for s in sets
            },
            "verification": {
                s: {
                    m: {
                        str(size): _verification_cell(w)
                        for size in self.sizes
                        if (w := self.verified.get((s, m, size)))
                    }
                    for m in self.methods
                    if any((s, m, size) in self.verified for size in self.sizes)
                }
                for s in sets
            },
            "worst_rate": {m: self.worst_rate(m) for m in self.methods if m != "none"},
            "passed": all(self.worst_rate(m) == 0.0 for m in self.methods if m != "none"),
        }


def _verification_cell(results: list[Verification]) -> dict[str, Any]:
    """Faces escalated, left unverified, and the drawings they ended with."""
    return {
        "faces": len(results),
        "escalated": sum(1 for r in results if r.escalations),
        "escalations": sum(r.escalations for r in results),
        "unverified": sum(1 for r in results if not r.verified),
        "ended_with": {
            name: sum(1 for r in results if r.step.name == name)
            for name in sorted({r.step.name for r in results})
        },
    }


def lfw_samples(
    root: Path, count: int, pipeline: FacePipeline, seed: int = 0, skip: int = 0
) -> list[Sample]:
    """``count`` LFW images of different people (seeded), each with its central face, after
    leaving out the first ``skip`` people the same call with ``count=skip`` would give (faces
    held out from the ones a strength was tuned on)."""
    folder = root / "images_deepfunneled" if (root / "images_deepfunneled").is_dir() else root
    people = sorted(p for p in folder.iterdir() if p.is_dir())
    random.Random(seed).shuffle(people)
    samples: list[Sample] = []
    for person in people:
        if len(samples) >= count + skip:
            break
        image_path = min(person.glob("*.jpg"), default=None)
        if image_path is None:
            continue
        pixels = load_image(image_path).pixels
        detection = _central(detect_faces(pipeline.detector, pixels), pixels)
        if detection is not None:
            samples.append(Sample(person.name, pixels, detection))
    return samples[skip:]


def video_samples(clips: Iterable[Path], pipeline: FacePipeline, every: int = 25) -> list[Sample]:
    """One frame in ``every`` of each clip, with its largest face (frames without one skipped)."""
    from facelens.video import open_video

    samples: list[Sample] = []
    for clip in clips:
        with open_video(clip, every=every) as reader:
            for frame in reader:
                found = detect_faces(pipeline.detector, frame.pixels)
                if found:
                    best = max(found, key=lambda d: d.box.area)
                    samples.append(Sample(f"{clip.name}#{frame.index}", frame.pixels, best))
    return samples


def _central(found: list[Detection], pixels: ImageArray) -> Detection | None:
    if not found:
        return None
    centre = np.array([pixels.shape[1] / 2, pixels.shape[0] / 2])
    return min(found, key=lambda d: float(np.linalg.norm(np.array(d.box.center) - centre)))


def at_size(sample: Sample, size: int) -> tuple[ImageArray, Detection]:
    """The sample's image resized so its face box's longer side is ``size`` pixels."""
    box = sample.detection.box
    scale = size / max(box.width, box.height)
    height, width = sample.pixels.shape[:2]
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    pixels = np.ascontiguousarray(
        cv2.resize(sample.pixels, new, interpolation=interpolation), dtype=np.uint8
    )
    fx, fy = new[0] / width, new[1] / height
    detection = Detection(
        box.scaled(fx, fy),
        (sample.detection.landmarks * np.array([fx, fy], np.float32)).astype(np.float32),
        sample.detection.score,
    )
    return pixels, detection


def measure(
    sets: Mapping[str, Sequence[Sample]],
    *,
    sizes: Sequence[int] = SIZES,
    methods: Sequence[str] = METHODS,
    recognizers: Sequence[str] = RECOGNIZERS,
    pipelines: dict[str, FacePipeline] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> PrivacyCurves:
    """Attack every sample at every size, anonymized by every method, with every recognizer.

    ``methods`` may include ``"none"`` (no anonymization: the attack's ceiling, 100%).
    """
    thresholds = {
        r: operating_point(calibration_for(r), fmr=ATTACK_FMR).threshold for r in recognizers
    }
    curves = PrivacyCurves(tuple(sizes), tuple(methods), tuple(recognizers), thresholds)
    pipelines = pipelines or {}
    verifier = HidingVerifier.shared() if any(_verified(m) for m in methods) else None
    for name in recognizers:
        pipelines.setdefault(name, FacePipeline(registry.DEFAULT_DETECTOR, name))
    for set_name, samples in sets.items():
        curves.samples[set_name] = len(samples)
        for size in sizes:
            if on_step:
                on_step(f"{set_name}: {size} px")
            variants: dict[str, list[tuple[ImageArray, Detection]]] = {m: [] for m in methods}
            originals: list[tuple[ImageArray, Detection]] = []
            for sample in samples:
                pixels, detection = at_size(sample, size)
                originals.append((pixels, detection))
                own = verifier.templates(pixels, detection) if verifier is not None else None
                for method in methods:
                    hidden = pixels.copy()
                    if method != "none":
                        name, strength, grow = parse_method(method)
                        region = grow_box(detection.box, pixels.shape[1], pixels.shape[0], grow)
                        if verifier is not None and own is not None and _verified(method):
                            hidden, results = verifier.hide(
                                pixels, [(detection, region)], name, strength, originals=[own]
                            )
                            curves.verified.setdefault((set_name, method, size), []).extend(results)
                        else:
                            anonymize_regions(hidden, [region], name, strength)
                    changed = float(np.any(hidden != pixels, axis=2).mean())
                    curves.altered.setdefault((set_name, method, size), []).append(changed)
                    variants[method].append((hidden, detection))
            for name in recognizers:
                pipeline = pipelines[name]
                reference = _templates(pipeline, originals)
                people = [sample.source.split("#")[0] for sample in samples]
                threshold = size_threshold(reference, people, thresholds[name])
                for method in methods:
                    cell = curves.cells.setdefault((set_name, method, name, size), Cell())
                    attacked = _templates(pipeline, variants[method])
                    cell.add(attacked @ reference.T, threshold, thresholds[name])
    return curves


def size_threshold(reference: np.ndarray, people: Sequence[str], calibrated: float) -> float:
    """The cosine at FMR :data:`ATTACK_FMR` among different people's originals of one size
    (``reference``: unit templates, ``people[i]`` whose face row i is), or ``calibrated``
    when they give fewer than :data:`MIN_SIZE_PAIRS` pairs."""
    scores = reference @ reference.T
    person = np.array(people)
    impostors = scores[person[:, None] != person[None, :]]
    if impostors.size < MIN_SIZE_PAIRS:
        return calibrated
    return float(np.quantile(impostors, 1.0 - ATTACK_FMR))


def parse_method(spec: str) -> tuple[Method, Strength, float]:
    """``blur``, or a method at another strength: ``blur@0.25`` (sigma as a fraction of the
    region's longer side), ``pixelate@5`` (blocks), ``ellipse@1.2`` (axes scale); ``/N``
    fills faces under N px solid (``blur/0``: never); a suffix ``+1.5`` multiplies the
    region's margins; ``:raw`` (last) draws once, without verification."""
    spec = spec.removesuffix(":raw")
    spec, _, grow = spec.partition("+")
    spec, _, solid = spec.partition("/")
    name, _, value = spec.partition("@")
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    strength = SHIPPED
    if value and name == "blur":
        strength = replace(SHIPPED, blur=float(value))
    elif value and name == "pixelate":
        strength = replace(SHIPPED, pixelate=int(value))
    elif value and name == "ellipse":
        strength = replace(SHIPPED, ellipse=float(value))
    if solid:
        strength = replace(strength, blur_solid_below=int(solid), pixelate_solid_below=int(solid))
    return name, strength, float(grow) if grow else 1.0  # type: ignore[return-value]


def _verified(method: str) -> bool:
    """Whether ``method`` is hidden as the tool does (verified), not ``none`` or ``:raw``."""
    return method != "none" and not method.endswith(":raw")


def _templates(pipeline: FacePipeline, items: list[tuple[ImageArray, Detection]]) -> np.ndarray:
    """Unit templates of the faces at the given detections (aligned at their landmarks)."""
    faces = [
        pipeline.faces_at(DecodedImage(pixels, "sample"), [detection], embed=False)[0]
        for pixels, detection in items
    ]
    embedded = pipeline.embed_faces(faces)
    return np.stack([f.template.vector for f in embedded if f.template is not None])


def box_side(box: Box) -> float:
    """The longer side of a box, in pixels (the face size of these curves)."""
    return max(box.width, box.height)
