"""Verified hiding: each hidden face is attacked by SFace, dlib and their fusion, and escalated.

Real models throughout. The faces are real LFW photos (skipped when the data
is absent) and, for the always-on tests, the scikit-image astronaut and a
video made from it. A weak strength (pixelate with 48 blocks, no grain, never
solid) leaves a face matchable, so verification has something to escalate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from facelens.api import FaceLens
from facelens.apps.anonymize import Anonymizer
from facelens.apps.video.anonymize import anonymize_video
from facelens.errors import UnknownModelError
from facelens.evaluation.anonymization import Sample, _templates, measure
from facelens.io.image import load_image
from facelens.models import registry
from facelens.pipeline.faces import FacePipeline
from facelens.privacy.cohort import MAX_PAIRS, MIN_PAIRS, FootageCohort
from facelens.privacy.methods import SHIPPED, anonymize_regions
from facelens.privacy.regions import grow_box
from facelens.privacy.verify import (
    MARGIN,
    RECOGNIZERS,
    VIDEO_VERIFY_ENGINE,
    HidingVerifier,
    TrackVerifier,
    _next_rung,
    drawn,
    ladder,
    verify_threshold,
)
from facelens.types import Box, Detection
from tests.conftest import REPO
from tests.test_anonymize import make_video

WEAK = replace(SHIPPED, pixelate=48, noise=0.0, pixelate_solid_below=0)
"""Fine pixelation, no grain, never solid: a face stays matchable."""


@pytest.fixture()
def lens(tmp_path: Path) -> Iterator[FaceLens]:
    with FaceLens(gallery=tmp_path / "gallery.db") as lens:
        yield lens


def anonymizer(lens: FaceLens, **options: object) -> Anonymizer:
    return Anonymizer(
        lens.pipeline,
        lens.operating_point(),
        lens.calibration,
        check=False,
        **options,  # type: ignore[arg-type]
    )


def lfw_photo(lfw_root: Path, person: str) -> Path:
    folder = lfw_root / "images_deepfunneled" / person
    if not folder.is_dir():
        pytest.skip(f"LFW photo of {person} not found")
    return min(folder.glob("*.jpg"))


def eval_attack(hidden: np.ndarray, original: np.ndarray, detection: Detection) -> dict[str, float]:
    """The eval's attack (evaluation/anonymization.py), independent of the verifier's scoring:
    each recognizer's pipeline embeds both images at the original detection."""
    scores = {}
    for name in RECOGNIZERS:
        pipeline = FacePipeline(registry.DEFAULT_DETECTOR, name)
        both = _templates(pipeline, [(hidden, detection), (original, detection)])
        scores[name] = float(both[0] @ both[1])
    return scores


def test_the_ladder_goes_stronger_then_solid_and_skips_what_draws_the_same() -> None:
    names = [s.name for s in ladder("blur")]
    assert names[0] == "blur@0.167 grain 0 at 60" and names[-1].startswith("fill #")
    assert [s.strength.grain for s in ladder("blur")[:3]] == [0, 1, 2]  # fresh grains
    # the shipped blur's grain is lighter (CenterFace saw faces in 120); stronger rungs use 120
    assert [s.strength.blur_noise for s in ladder("blur")[:3]] == [60, 120, 120]
    assert [s.strength.pixelate for s in ladder("pixelate")[:3]] == [8, 6, 4]
    assert ladder("box")[0].name == "fill #000000"
    # a face too small to blur is a solid fill at every blur rung: the next rung is a new colour
    small, large = Box(0, 0, 40, 40), Box(0, 0, 200, 200)
    steps = ladder("blur")
    assert drawn(steps[0], small).name == "fill #000000" and drawn(steps[0], large) == steps[0]
    assert _next_rung(steps, 0, large) == 1
    up = _next_rung(steps, 0, small)
    assert up is None or drawn(steps[up], small).name != "fill #000000"


def test_the_fusion_score_is_the_weighted_sum_of_its_parts(astronaut: np.ndarray) -> None:
    """One embedding per model gives all three scores: the fusion's own pipeline agrees."""
    face = FacePipeline().detect(astronaut, embed=False)[0]
    detection = Detection(face.box, face.landmarks, face.score)
    hidden = astronaut.copy()
    anonymize_regions(hidden, [grow_box(face.box, 512, 512)], "pixelate", WEAK)
    verifier = HidingVerifier()
    scores = verifier.scores(
        verifier.templates(hidden, detection), verifier.templates(astronaut, detection)
    )
    assert scores == pytest.approx(eval_attack(hidden, astronaut, detection), abs=2e-4)
    assert 0.3 < scores["sface-2021dec-int8bq"] < 1.0  # the weak strength leaves it matchable


def test_a_matchable_face_is_escalated_until_no_recognizer_matches(
    lens: FaceLens, lfw_root: Path, tmp_path: Path
) -> None:
    source = lfw_photo(lfw_root, "AJ_Cook")
    raw = anonymizer(lens, method="pixelate", strength=WEAK, verify=False)
    report = raw.anonymize_image(source, tmp_path / "raw.png")
    assert report.ok and report.verify is None
    assert "verification" not in report.to_dict()["faces"][0]
    face = report.faces[0].face
    detection = Detection(face.box, face.landmarks, face.score)
    original = load_image(source).pixels
    size = max(face.box.width, face.box.height)
    raw_scores = eval_attack(load_image(tmp_path / "raw.png").pixels, original, detection)
    assert any(raw_scores[r] >= verify_threshold(r, size) for r in RECOGNIZERS), raw_scores

    verified = anonymizer(lens, method="pixelate", strength=WEAK)
    report = verified.anonymize_image(source, tmp_path / "verified.png")
    data = report.to_dict()
    record = data["faces"][0]["verification"]
    assert record["verified"] and record["escalations"] >= 1, record
    assert record["tried"][0] == "pixelate@48 no grain" and len(record["tried"]) > 1
    assert data["verify"]["escalated"] == 1 and data["verify"]["unverified"] == 0
    # the eval's own attack on the written file: no recognizer reaches the threshold
    after = eval_attack(load_image(tmp_path / "verified.png").pixels, original, detection)
    assert all(after[r] < verify_threshold(r, size) for r in RECOGNIZERS), after


def test_cli_verifies_by_default_and_no_verify_turns_it_off(
    astronaut: np.ndarray, tmp_path: Path
) -> None:
    source = tmp_path / "in" / "astronaut.png"
    source.parent.mkdir()
    Image.fromarray(astronaut).save(source)
    env = dict(os.environ, FACELENS_GALLERY=str(tmp_path / "none.db"))
    records = {}
    for flag in ("--verify", "--no-verify"):
        result = subprocess.run(
            [
                *(sys.executable, "-m", "facelens.cli.main", "anonymize", str(source)),
                *("-o", str(tmp_path / flag), "--no-check", flag, "--json"),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr
        records[flag] = json.loads(result.stdout)[0]
    on, off = records["--verify"], records["--no-verify"]
    assert on["verify"]["faces"] == on["faces_anonymized"] >= 1
    assert all(f["verification"]["verified"] for f in on["faces"] if f["anonymized"])
    assert off["verify"] is None and all("verification" not in f for f in off["faces"])
    on_html, off_html = (Path(r["reports"][1]).read_text() for r in (on, off))
    assert "attacked by SFace, dlib and their fusion" in on_html and "yes (" in on_html
    assert "off (--no-verify)" in off_html


def test_a_video_track_is_escalated_for_the_rest_of_the_track(
    astronaut: np.ndarray, lens: FaceLens, tmp_path: Path
) -> None:
    clip = tmp_path / "moving_face.mp4"
    make_video(clip, np.ascontiguousarray(astronaut))
    outputs, reports = {}, {}
    for verify in (True, False):
        outputs[verify] = tmp_path / f"out-{verify}.mp4"
        hider = anonymizer(lens, method="pixelate", strength=WEAK, verify=verify)
        report = anonymize_video(hider, clip, outputs[verify], detect_every=3, hold=2)
        assert report.ok, report.error
        reports[verify] = report.to_dict()
    track = reports[True]["tracks"][0]
    record = track["verification"]
    assert record["escalations"] >= 1 and record["verified"], record
    assert record["frames_verified"][0] == track["first_frame"]
    assert record["ended_with"] != "pixelate@48 no grain"
    assert reports[True]["verify"]["escalated"] == 1
    assert reports[False]["verify"] is None and "verification" not in reports[False]["tracks"][0]
    # every frame of the track is drawn at the escalated strength: the outputs differ in each
    with av.open(str(outputs[True])) as a, av.open(str(outputs[False])) as b:
        pairs = zip(a.decode(video=0), b.decode(video=0), strict=True)
        differ = [
            bool(
                np.abs(
                    x.to_ndarray(format="rgb24").astype(int) - y.to_ndarray(format="rgb24")
                ).max()
                > 40
            )
            for x, y in pairs
        ]
    first, last = track["first_frame"], track["last_frame"]
    assert all(differ[first : last + 1]), differ


def test_eval_measures_verified_and_raw_strengths_side_by_side(lfw_root: Path) -> None:
    people = ["AJ_Cook", "Aaron_Sorkin", "Aaron_Patterson"]
    finder = FacePipeline()
    samples = []
    for person in people:
        pixels = load_image(lfw_photo(lfw_root, person)).pixels
        found = finder.detect(pixels, embed=False)
        face = max(found, key=lambda f: f.box.area)
        samples.append(Sample(person, pixels, Detection(face.box, face.landmarks, face.score)))
    curves = measure(
        {"lfw": samples}, sizes=[128], methods=["pixelate@48/0:raw", "pixelate@48/0"]
    ).to_dict()
    verification = curves["verification"]["lfw"]
    assert set(verification) == {"pixelate@48/0"}  # the raw strength is not verified
    cell = verification["pixelate@48/0"]["128"]
    assert cell["faces"] == 3 and cell["unverified"] == 0
    rates = curves["reidentification"]["lfw"]["pixelate@48/0"]
    assert all(rates[r]["128"]["reidentified"] == 0 for r in RECOGNIZERS), rates
    raw = curves["reidentification"]["lfw"]["pixelate@48/0:raw"]
    assert cell["escalated"] >= 1 or all(raw[r]["128"]["reidentified"] == 0 for r in RECOGNIZERS)


def test_a_face_matched_at_every_rung_ends_with_its_least_matched_drawing(
    astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a threshold no drawing can pass (margin 1.0), the face is reported unverified and
    drawn with the rung whose worst excess over the threshold was lowest, not the last one."""
    import facelens.privacy.verify as verify

    monkeypatch.setattr(verify, "MARGIN", 1.0)
    face = FacePipeline().detect(astronaut, embed=False)[0]
    detection = Detection(face.box, face.landmarks, face.score)
    region = grow_box(face.box, 512, 512)
    verifier = HidingVerifier()
    original = verifier.templates(astronaut, detection)
    size = max(face.box.width, face.box.height)
    excess = {}
    for step in ladder("blur"):
        hidden = astronaut.copy()
        anonymize_regions(hidden, [region], step.method, step.strength)
        scores = verifier.scores(verifier.templates(hidden, detection), original)
        excess[step.name] = max(s - verify_threshold(r, size) for r, s in scores.items())
    out, (result,) = verifier.hide(astronaut, [(detection, region)], "blur", originals=[original])
    assert not result.verified and result.tried == [s.name for s in ladder("blur")]
    assert result.step.name == min(excess, key=excess.__getitem__) != ladder("blur")[-1].name
    assert result.escalations == len(ladder("blur")) - 1
    expected = astronaut.copy()  # the image returned is the one drawn with that rung
    anonymize_regions(expected, [region], result.step.method, result.step.strength)
    assert np.array_equal(out, expected)


def test_a_videos_recognizers_load_in_the_background_on_its_engine() -> None:
    """A new verifier's models are loaded by its background thread (on the video engine, in
    the engine's context), so that the first attack does not wait for them."""
    hiding = HidingVerifier(engine=VIDEO_VERIFY_ENGINE)
    track = TrackVerifier("blur", verifier=hiding)
    assert hiding._parts is None and not hiding._pipelines
    track.load_in_background().join(timeout=300)
    assert hiding._parts is not None and set(hiding._parts) == set(RECOGNIZERS)
    loaded = {model: pipeline._embedder for model, pipeline in hiding._pipelines.items()}
    assert set(loaded) == {m for parts in hiding._parts.values() for m, _, _ in parts}
    for model, embedder in loaded.items():
        assert not isinstance(embedder, str), f"{model} was not loaded"
        assert getattr(embedder, "engine", VIDEO_VERIFY_ENGINE) == VIDEO_VERIFY_ENGINE


def test_a_tracks_attacks_run_in_their_own_thread_and_count_once_settled(
    astronaut: np.ndarray,
) -> None:
    """verify() queues the attack; step() changes only when settle() puts an attack's
    outcome in force, in order, whatever the thread has finished meanwhile."""
    detection = registry.load_detector().detect(astronaut)[0]
    with TrackVerifier("pixelate", WEAK, verifier=HidingVerifier.shared(VIDEO_VERIFY_ENGINE)) as v:
        first = v.step(7).name
        v.verify(astronaut, 0, 0.0, [(7, detection)])
        v.verify(astronaut, 10, 0.4, [(7, detection)])  # not due: 0.4 s after the last
        v.verify(astronaut, 60, 2.4, [(7, detection)])
        assert v.tracks[7].frames == [0, 60]
        v._issued[0][1].result(timeout=300)  # the first attack is done in its thread ...
        assert v.step(7).name == first and v.tracks[7].escalations == 0  # ... not yet in force
        v.settle(59)
        raised = v.step(7).name
        assert raised != first and v.tracks[7].escalations >= 1
        assert [frame for frame, _, _ in v._issued] == [60]  # later attacks are not waited for
        v.settle()
        assert not v._issued and v.tracks[7].last_result is not None
        assert v.cpu_seconds > 0


def test_a_failed_attack_is_raised_when_settled(astronaut: np.ndarray) -> None:
    detection = registry.load_detector().detect(astronaut)[0]
    broken = HidingVerifier(["no-such-recognizer"], engine=VIDEO_VERIFY_ENGINE)
    with TrackVerifier("blur", verifier=broken) as v:
        v.verify(astronaut, 0, 0.0, [(1, detection)])
        with pytest.raises(UnknownModelError, match="no-such-recognizer"):
            v.settle()


def test_a_track_is_attacked_again_sooner_when_its_face_has_grown(astronaut: np.ndarray) -> None:
    """Every 2 s, and on a frame where the face is 1.25x as large as at the last attack (at
    least 0.4 s later): a face coming closer is attacked at its most recognizable."""
    detection = registry.load_detector().detect(astronaut)[0]

    def scaled(factor: float) -> Detection:
        box = detection.box
        grown = Box(box.x, box.y, box.width * factor, box.height * factor)
        return Detection(grown, detection.landmarks, detection.score)

    with TrackVerifier("blur", verifier=HidingVerifier.shared(VIDEO_VERIFY_ENGINE)) as v:
        for frame, time_s, factor in [
            (0, 0.0, 0.5),
            (5, 0.2, 0.7),  # grown 1.4x, but only 0.2 s after the last attack
            (12, 0.48, 0.6),  # 1.2x: not enough
            (15, 0.6, 0.66),  # 1.32x, 0.6 s after: attacked again
            (20, 0.8, 0.8),  # 1.21x the last attacked size: not again
            (40, 1.6, 0.9),  # 1.36x: attacked
            (90, 3.6, 0.9),  # 2 s since the last attack
        ]:
            v.verify(astronaut, frame, time_s, [(3, scaled(factor))])
        v.settle()
        assert v.tracks[3].frames == [0, 15, 40, 90]


# -- the footage's own threshold (privacy/cohort.py) ------------------------------------------


def test_the_footage_threshold_needs_enough_strangers_of_about_the_faces_size() -> None:
    cohort = FootageCohort()
    rng = np.random.default_rng(0)
    cosines = rng.uniform(0.0, 0.5, MIN_PAIRS - 1)
    for cosine in cosines:
        cohort.add("sface", 40.0, float(cosine))
    assert cohort.threshold("sface", 40.0, 1e-2) is None  # one pair short
    cohort.add("sface", 75.0, 0.9)  # within twice the size: counted for 40 px faces
    threshold = cohort.threshold("sface", 40.0, 1e-2)
    assert threshold == pytest.approx(np.quantile([*cosines, 0.9], 0.99))
    assert cohort.threshold("sface", 19.0, 1e-2) is None  # 40 px faces are over twice 19
    assert cohort.threshold("dlib", 40.0, 1e-2) is None  # another recognizer's cosines
    assert cohort.summary() == {"sface": MIN_PAIRS}


def test_the_footage_keeps_its_latest_stranger_cosines() -> None:
    cohort = FootageCohort()
    for k in range(MAX_PAIRS + 10):
        cohort.add("sface", 40.0, 0.9 if k < 10 else 0.1)  # the 10 oldest are dropped
    assert cohort.summary() == {"sface": MAX_PAIRS}
    assert cohort.threshold("sface", 40.0, 1e-2) == pytest.approx(0.1)


def _prefilled(size: float, cosine: float) -> FootageCohort:
    cohort = FootageCohort()
    for recognizer in RECOGNIZERS:
        for _ in range(MIN_PAIRS):
            cohort.add(recognizer, size, cosine)
    return cohort


def test_the_footage_threshold_decides_where_the_footage_has_one(astronaut: np.ndarray) -> None:
    """A weak drawing that LFW's threshold escalates passes where the footage's strangers
    reach high cosines, and a face the footage's strangers never reach is escalated to the
    end of its ladder: the threshold in force is the footage's (less the margin)."""
    face = FacePipeline().detect(astronaut, embed=False)[0]
    detection = Detection(face.box, face.landmarks, face.score)
    region = grow_box(face.box, 512, 512)
    size = max(face.box.width, face.box.height)
    verifier = HidingVerifier()
    original = [verifier.templates(astronaut, detection)]

    _, (by_lfw,) = verifier.hide(
        astronaut, [(detection, region)], "pixelate", WEAK, originals=original
    )
    assert by_lfw.escalations >= 1 and by_lfw.threshold_source == "LFW"

    lenient = _prefilled(size, 0.999)
    _, (lenient_result,) = verifier.hide(
        astronaut, [(detection, region)], "pixelate", WEAK, originals=original, cohort=lenient
    )
    assert lenient_result.escalations == 0 and lenient_result.verified
    assert lenient_result.threshold_source == f"footage ({MIN_PAIRS} stranger pairs)"
    assert lenient_result.thresholds == {r: pytest.approx(0.999 - MARGIN) for r in RECOGNIZERS}
    assert lenient.summary() == {r: MIN_PAIRS for r in RECOGNIZERS}  # no stranger in this image

    strict = _prefilled(size, -1.0)
    _, (strict_result,) = verifier.hide(
        astronaut, [(detection, region)], "blur", originals=original, cohort=strict
    )
    assert not strict_result.verified
    assert strict_result.tried == [s.name for s in ladder("blur")]


def test_two_detections_of_one_face_are_not_strangers(astronaut: np.ndarray) -> None:
    """The same face twice in one image (a reflection, a duplicate) adds no stranger pair."""
    twice = np.ascontiguousarray(np.concatenate([astronaut, astronaut], axis=1))
    faces = FacePipeline().detect(twice, embed=False)
    assert len(faces) == 2
    cohort = FootageCohort()
    HidingVerifier().hide(
        twice,
        [(Detection(f.box, f.landmarks, f.score), grow_box(f.box, 1024, 512)) for f in faces],
        "blur",
        cohort=cohort,
    )
    assert cohort.summary() == {}


def test_faces_of_one_photo_are_each_others_strangers(group_photos: Path) -> None:
    """Every attack of a face adds its cosine with each other face's original, per recognizer;
    in a photo of 6 people, 6 x 5 pairs a round."""
    photo = group_photos / "deepinsight+insightface/python-package/insightface/data/images/t1.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} not found")
    image = load_image(photo)
    faces = FacePipeline().detect(image.pixels, embed=False)
    assert len(faces) == 6
    cohort = FootageCohort()
    pairs = [
        (Detection(f.box, f.landmarks, f.score), grow_box(f.box, image.width, image.height))
        for f in faces
    ]
    _, results = HidingVerifier().hide(image.pixels, pairs, "blur", cohort=cohort)
    attacks = sum(1 + r.escalations for r in results)  # at least; overlapping faces add more
    counts = cohort.summary()
    assert set(counts) == set(RECOGNIZERS)
    assert all(n >= 5 * attacks and n % 5 == 0 for n in counts.values()), (counts, attacks)
    assert all(r.threshold_source == "LFW" for r in results)  # 30 pairs: too few
