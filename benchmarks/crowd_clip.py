"""Anonymization on a crowd it has never seen: a 1080p street clip made from shared data.

Issue 16's street clip (1080p, 4.2 s, 19 tracks, faces of 20-90 px) is not in
the shared data; the development videos hold one large face each. This
benchmark makes a crowd clip instead (in a temporary folder, deleted
afterwards, never committed) and measures what the issue asks of it:

* **The clip** (1920x1080, 25 fps, ``--seconds``, default 6): a slow camera
  move (zoom from 2.4x to 3.2x, a pan and a little shake) over deface's street
  photo (``group_photos/ORB-HD+deface/examples/city.jpg``, 800x564, a
  crossing crowd), so its faces move and grow; and on top of it **walkers**:
  faces from the development videos (real head motion and expressions),
  cut out with a soft elliptical edge, walking towards the camera (face 20
  to 90 px wide) or away (90 to 24 px), entering and leaving at different
  times. A **dark** copy (every frame at ``--dark-gain``, default 0.2, of its
  brightness: a night or stage shot) is made beside it.
* **Where the faces are** (the truth the output is judged on): in the photo,
  the faces that YuNet (score >= 0.5) and CenterFace (>= 0.5) both find on a
  copy 3x its size, moved with the camera each frame; a walker's face is its
  development video's face (YuNet on the source frame) moved with the walker.
  A face is counted where at least half of its box is in the frame and it is
  at least ``--min-face`` px wide.
* **Runs**, each a separate process pinned to the same 2 cores: ``facelens
  anonymize CLIP -o OUT --json`` (defaults, check on: exit status, verdict,
  what failed, the hiding and check passes' seconds), the same with
  ``--no-check`` (x real time), and deface 1.5.0 (``--deface-venv``) on the
  bright clip.
* **Faces left behind**: every face in every frame, the share of its box the
  output changed (by more than 6 of 255 in some channel); counted under 95%,
  80% and 50% covered, by face width.
* **Re-identification**, one frame in ``--attack-every``: each face that YuNet
  finds in the input (the hiding search, matched to the truth) is embedded by
  each registered recognizer (SFace int8, dlib's ResNet, the fusion) in the
  input and in the output at the input's landmarks (the strongest attacker:
  it knows where the face was). Counted, by face width: matches at LFW's FMR
  1e-2 at the face's size (``privacy.verify.SIZE_THRESHOLDS``); *chance*, how
  often the hidden face matches other people's originals in the same frame at
  that threshold; matches at the clip's own FMR 1e-2 (the 99th percentile of
  the cosines between different people's originals); and hidden faces *picked
  out* (own original above LFW's threshold and the closest of the frame's).
* **Faces still found** on one frame in ``--attack-every`` of the input and
  of each output, by CenterFace (>= 0.5) and YuNet (>= 0.6).

    .venv/bin/python benchmarks/crowd_clip.py [--seconds 6] [--deface-venv DIR] \\
        [--json benchmarks/results/crowd_clip.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
sys.path.insert(0, str(BENCHMARKS))
from measured import run_measured  # noqa: E402
from video_throughput import faces_found  # noqa: E402

DATA = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared" / "data"))
PHOTO = "group_photos/ORB-HD+deface/examples/city.jpg"
WIDTH, HEIGHT, FPS = 1920, 1080, 25
CPUS = sorted(os.sched_getaffinity(0))[:2]
SIZE_BINS = ((0, 32), (32, 64), (64, 128), (128, 10_000))

# name of the development video, start and end (fraction of the clip), face width at start and
# end (px), face centre at start and end (x, y in px of the 1080p frame)
WALKERS = (
    ("d3.mp4", 0.0, 1.0, 20, 90, (700, 560), (560, 820)),
    ("d12.mp4", 0.1, 0.9, 90, 24, (1500, 900), (1250, 520)),
    ("d18.mp4", 0.0, 0.7, 24, 70, (1100, 520), (1350, 760)),
    ("d9.mp4", 0.3, 1.0, 30, 80, (300, 600), (520, 860)),
    ("WDA_AlexandriaOcasioCortez_000.mp4", 0.0, 0.6, 80, 30, (1700, 700), (1500, 480)),
    ("d19.mp4", 0.45, 1.0, 22, 50, (950, 500), (800, 640)),
)


@dataclass(frozen=True)
class TrueFace:
    """One face's box in one frame, ``(x, y, width, height)`` in px; ``who``: photo or walker."""

    box: tuple[float, float, float, float]
    who: str


@dataclass
class Clip:
    """A made clip and, per frame, the faces in it."""

    path: Path
    frames: int
    truth: list[list[TrueFace]] = field(default_factory=list)


def photo_faces(photo: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Faces of ``photo`` (RGB) that YuNet and CenterFace both find on a copy 3x its size,
    as ``(x, y, w, h)`` in the photo's px (YuNet's box)."""
    from facelens.models.registry import load_detector
    from facelens.privacy.centerface import load_centerface
    from facelens.privacy.recall import find_faces_in_image, hiding_detector

    big = cv2.resize(photo, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    yunet = find_faces_in_image(hiding_detector(load_detector()), big, max(big.shape[:2]))
    centre = load_centerface().detect(big)
    agreed = []
    for face in yunet:
        box = face.box.as_list()
        if any(iou(box, other.box.as_list()) >= 0.3 for other in centre):
            agreed.append(tuple(v / 3 for v in box))
    return agreed  # type: ignore[return-value]


def iou(a: Any, b: Any) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def camera(t: float, photo_width: int, photo_height: int) -> np.ndarray:
    """The 2x3 affine map from the photo's px to the frame's at ``t`` (0..1 of the clip)."""
    window = photo_width * (1.0 - 0.25 * t)  # zoom 2.4x -> 3.2x for an 800 px photo
    scale = WIDTH / window
    window_height = HEIGHT / scale
    cx = window / 2 + (photo_width - window) * (0.5 + 0.5 * math.sin(math.pi * (t - 0.5)))
    cy = window_height / 2 + (photo_height - window_height) * (0.6 - 0.3 * t)
    cx += 2.0 * math.sin(2 * math.pi * 1.7 * t * 6)  # a little shake, in photo px
    cy += 1.5 * math.sin(2 * math.pi * 1.3 * t * 6 + 1)
    return np.array(
        [[scale, 0, WIDTH / 2 - scale * cx], [0, scale, HEIGHT / 2 - scale * cy]], np.float64
    )


def moved(box: tuple[float, float, float, float], m: np.ndarray) -> tuple[float, ...]:
    """``box`` under the affine map ``m`` (scale and shift only)."""
    x, y, w, h = box
    return (m[0, 0] * x + m[0, 2], m[1, 1] * y + m[1, 2], m[0, 0] * w, m[1, 1] * h)


class Walker:
    """A development video's face walking across the frame (see :data:`WALKERS`)."""

    def __init__(self, source: Path, spec: tuple[Any, ...], frames: int) -> None:
        from facelens.pipeline.faces import FacePipeline
        from facelens.video import open_video

        _, start, end, size0, size1, centre0, centre1 = spec
        self.name = source.name
        self.first, self.last = int(start * (frames - 1)), int(end * (frames - 1))
        self.size0, self.size1, self.centre0, self.centre1 = size0, size1, centre0, centre1
        self.pipeline = FacePipeline(max_upscale=1.0)
        self.source = source
        self.reader = open_video(source)
        self.frames = iter(self.reader)
        self.box: tuple[float, float, float, float] | None = None

    def _next_source(self) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        from facelens.video import open_video

        frame = next(self.frames, None)
        if frame is None:  # loop the source
            self.reader.close()
            self.reader = open_video(self.source)
            self.frames = iter(self.reader)
            frame = next(self.frames)
        faces = self.pipeline.detect(frame.pixels, embed=False)
        if faces:
            self.box = max(faces, key=lambda f: f.box.width).box.as_list()  # type: ignore[assignment]
        assert self.box is not None, f"no face in the first frame of {self.name}"
        return frame.pixels, self.box

    def paste(self, canvas: np.ndarray, index: int) -> TrueFace | None:
        """Draw this walker's face for frame ``index`` on ``canvas``; its box, if it is on."""
        if not self.first <= index <= self.last:
            return None
        pixels, (x, y, w, h) = self._next_source()
        u = (index - self.first) / max(1, self.last - self.first)
        size = self.size0 + (self.size1 - self.size0) * u
        cx = self.centre0[0] + (self.centre1[0] - self.centre0[0]) * u
        cy = self.centre0[1] + (self.centre1[1] - self.centre0[1]) * u
        scale = size / w
        side = 2.0 * max(w, h)  # the head and some hair, cut out around the face's centre
        sx, sy = x + w / 2 - side / 2, y + h / 2 - side / 2
        out_side = max(4, round(side * scale))
        m = np.array([[scale, 0, -sx * scale], [0, scale, -sy * scale]], np.float64)
        patch = cv2.warpAffine(
            pixels, m, (out_side, out_side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT
        )
        mask = np.zeros((out_side, out_side), np.float32)
        cv2.ellipse(
            mask,
            (out_side // 2, out_side // 2),
            (out_side * 2 // 5, out_side * 9 // 20),
            0,
            0,
            360,
            1.0,
            -1,
        )
        mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, out_side / 20))[..., None]
        x0, y0 = round(cx - out_side / 2), round(cy - out_side / 2)
        fx0, fy0 = max(0, x0), max(0, y0)
        fx1, fy1 = min(WIDTH, x0 + out_side), min(HEIGHT, y0 + out_side)
        if fx1 <= fx0 or fy1 <= fy0:
            return None
        region = canvas[fy0:fy1, fx0:fx1].astype(np.float32)
        cut = patch[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0].astype(np.float32)
        alpha = mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
        canvas[fy0:fy1, fx0:fx1] = (region * (1 - alpha) + cut * alpha).astype(np.uint8)
        return TrueFace(
            ((x - sx) * scale + x0, (y - sy) * scale + y0, w * scale, h * scale), self.name
        )

    def close(self) -> None:
        self.reader.close()


def make_clips(folder: Path, seconds: float, dark_gain: float) -> tuple[Clip, Clip]:
    """The bright crowd clip and its dark copy, with the faces in each frame."""
    from facelens.video import VideoFrame, VideoWriter

    photo_path = DATA / PHOTO
    photo = cv2.cvtColor(cv2.imread(str(photo_path)), cv2.COLOR_BGR2RGB)
    faces = photo_faces(photo)
    frames = round(seconds * FPS)
    videos = {p.name: p for p in (DATA / "videos").rglob("*.mp4")}
    walkers = [Walker(videos[spec[0]], spec, frames) for spec in WALKERS]
    bright = Clip(folder / "crowd.mp4", frames)
    dark = Clip(folder / "crowd-dark.mp4", frames)
    with (
        VideoWriter(bright.path, width=WIDTH, height=HEIGHT, fps=FPS) as bright_writer,
        VideoWriter(dark.path, width=WIDTH, height=HEIGHT, fps=FPS) as dark_writer,
    ):
        for index in range(frames):
            m = camera(index / max(1, frames - 1), photo.shape[1], photo.shape[0])
            canvas = cv2.warpAffine(photo, m, (WIDTH, HEIGHT), flags=cv2.INTER_CUBIC)
            truth = [
                TrueFace(moved(box, m), f"photo {number}")  # type: ignore[arg-type]
                for number, box in enumerate(faces, 1)
            ]
            for walker in walkers:
                face = walker.paste(canvas, index)
                if face is not None:
                    truth.append(face)
            truth = [face for face in truth if visible(face.box)]
            bright.truth.append(truth)
            dark.truth.append(truth)
            time_s = index / FPS
            bright_writer.write(VideoFrame(canvas, index, time_s))
            darkened = cv2.convertScaleAbs(canvas, alpha=dark_gain)
            dark_writer.write(VideoFrame(darkened, index, time_s))
    for walker in walkers:
        walker.close()
    return bright, dark


def visible(box: tuple[float, ...]) -> bool:
    """At least half of ``box`` inside the frame."""
    x, y, w, h = box
    inside = max(0.0, min(WIDTH, x + w) - max(0.0, x)) * max(0.0, min(HEIGHT, y + h) - max(0.0, y))
    return inside >= 0.5 * w * h


def size_bin(width: float) -> str:
    for low, high in SIZE_BINS:
        if low <= width < high:
            return f"{low}-{high}" if high < 10_000 else f"{low}+"
    return "?"


def coverage(clip: Clip, output: Path, min_face: float) -> dict[str, Any]:
    """The share of each true face box the output changed, over every frame."""
    from facelens.video import open_video

    rows: list[tuple[float, float, str]] = []
    with open_video(clip.path) as before, open_video(output) as after:
        for index, (a, b) in enumerate(zip(before, after, strict=True)):
            for face in clip.truth[index]:
                x, y, w, h = face.box
                if w < min_face:
                    continue
                x0, y0 = max(0, int(x)), max(0, int(y))
                x1, y1 = min(WIDTH, math.ceil(x + w)), min(HEIGHT, math.ceil(y + h))
                change = np.abs(b.pixels[y0:y1, x0:x1].astype(np.int16) - a.pixels[y0:y1, x0:x1])
                rows.append((w, float((change.max(axis=2) > 6).mean()), face.who))
    shares = np.array([r[1] for r in rows])
    by_size: dict[str, dict[str, int]] = {}
    for w, share, _ in rows:
        counts = by_size.setdefault(
            size_bin(w), {"faces": 0, "under_95": 0, "under_80": 0, "under_50": 0}
        )
        counts["faces"] += 1
        counts["under_95"] += int(share < 0.95)
        counts["under_80"] += int(share < 0.8)
        counts["under_50"] += int(share < 0.5)
    return {
        "faces": len(rows),
        "least": round(float(shares.min()), 3) if len(rows) else None,
        "under_95": int((shares < 0.95).sum()),
        "under_80": int((shares < 0.8).sum()),
        "under_50": int((shares < 0.5).sum()),
        "by_width": by_size,
        "left_behind": sorted(
            {who for _, share, who in rows if share < 0.5},
        ),
    }


def size_threshold(recognizer: str, width: float) -> float:
    """The FMR 1e-2 cosine of ``recognizer`` among different LFW people at ``width`` px
    (``privacy.verify.SIZE_THRESHOLDS``, interpolated in log size; the ends held)."""
    from facelens.privacy.verify import SIZE_THRESHOLDS

    table = SIZE_THRESHOLDS[recognizer]
    sizes = sorted(table)
    logs = np.log(sizes)
    return float(np.interp(math.log(max(width, 1.0)), logs, [table[s] for s in sizes]))


def reidentification(clip: Clip, output: Path, every: int) -> dict[str, Any]:
    """Each recognizer's attack on the output: hidden faces against their originals.

    Three thresholds per recognizer, all at FMR 1e-2: LFW's at the face's size (what the
    verifier defended against until session 14); the clip's own (the 99th percentile of the
    cosines between different people's originals in the same frames: dark, soft faces score
    higher with each other than LFW's do); and the hidden faces' (the 99th percentile of the
    cosines between hidden faces and *other* people's originals in the same frames: what the
    verifier measures on the footage, ``privacy/cohort.py``). A hidden face is also *picked
    out* when its own original is the closest of all the frame's originals and above LFW's
    threshold.
    """
    from facelens.models.registry import load_detector
    from facelens.privacy.recall import LARGE_SIDE, find_faces_to_hide, hiding_detector
    from facelens.privacy.verify import RECOGNIZERS, HidingVerifier
    from facelens.video import open_video

    verifier = HidingVerifier()
    detector = hiding_detector(load_detector())
    attacks: list[dict[str, Any]] = []
    impostors: dict[str, list[float]] = {r: [] for r in RECOGNIZERS}
    hidden_impostors: dict[str, list[float]] = {r: [] for r in RECOGNIZERS}
    unmatched = 0
    with open_video(clip.path, every=every) as before, open_video(output, every=every) as after:
        for a, b in zip(before, after, strict=True):
            found = find_faces_to_hide(detector, a.pixels, LARGE_SIDE)
            frame_faces = []
            for face in clip.truth[a.index]:
                best = max(found, key=lambda f: iou(face.box, f.box.as_list()), default=None)
                if best is None or iou(face.box, best.box.as_list()) < 0.3:
                    unmatched += 1
                    continue
                original = verifier.templates(a.pixels, best)
                hidden = verifier.templates(b.pixels, best)
                frame_faces.append((face, original, hidden))
            for i, (face, original, hidden) in enumerate(frame_faces):
                own = verifier.scores(hidden, original)
                others = [
                    verifier.scores(hidden, o) for j, (_, o, _) in enumerate(frame_faces) if j != i
                ]
                for o in others:
                    for name, score in o.items():
                        hidden_impostors[name].append(score)
                for j, (_, other, _) in enumerate(frame_faces):
                    if j > i:
                        for name, score in verifier.scores(original, other).items():
                            impostors[name].append(score)
                limits = {r: size_threshold(r, face.box[2]) for r in RECOGNIZERS}
                attacks.append(
                    {
                        "frame": a.index,
                        "who": face.who,
                        "width": round(face.box[2], 1),
                        "own": own,
                        "best_other": {
                            r: max((o[r] for o in others), default=-1.0) for r in RECOGNIZERS
                        },
                        "others": len(others),
                        "others_over": {
                            r: sum(o[r] >= limits[r] for o in others) for r in RECOGNIZERS
                        },
                    }
                )
    clip_thresholds = {
        r: float(np.quantile(impostors[r], 0.99)) if impostors[r] else math.inf for r in RECOGNIZERS
    }
    hidden_thresholds = {
        r: float(np.quantile(hidden_impostors[r], 0.99)) if hidden_impostors[r] else math.inf
        for r in RECOGNIZERS
    }
    by_size: dict[str, dict[str, Any]] = {}
    matched_by: dict[str, list[str]] = {r: [] for r in RECOGNIZERS}
    for attack in attacks:
        counts = by_size.setdefault(size_bin(attack["width"]), {"attacked": 0})
        counts["attacked"] += 1
        for r in RECOGNIZERS:
            lfw = attack["own"][r] >= size_threshold(r, attack["width"])
            own_clip = attack["own"][r] >= clip_thresholds[r]
            own_hidden = attack["own"][r] >= hidden_thresholds[r]
            picked = lfw and attack["own"][r] > attack["best_other"][r]
            for key, hit in (
                ("lfw_fmr", lfw),
                ("clip_fmr", own_clip),
                ("hidden_fmr", own_hidden),
                ("picked_out", picked),
            ):
                counts.setdefault(key, {}).setdefault(r, 0)
                counts[key][r] += int(hit)
            if own_clip and picked:
                matched_by[r].append(f"{attack['who']} @ frame {attack['frame']}")
    totals = {
        key: {r: sum(c.get(key, {}).get(r, 0) for c in by_size.values()) for r in RECOGNIZERS}
        for key in ("lfw_fmr", "clip_fmr", "hidden_fmr", "picked_out")
    }
    compared = sum(a["others"] for a in attacks)
    chance = {
        r: round(sum(a["others_over"][r] for a in attacks) / max(1, compared), 4)
        for r in RECOGNIZERS
    }
    return {
        "attacked": len(attacks),
        "not_found_in_input": unmatched,
        **totals,
        "lfw_fmr_rate": {
            r: round(totals["lfw_fmr"][r] / max(1, len(attacks)), 4) for r in RECOGNIZERS
        },
        "chance_rate": chance,
        "clip_thresholds_fmr_1e-2": {r: round(t, 4) for r, t in clip_thresholds.items()},
        "hidden_thresholds_fmr_1e-2": {r: round(t, 4) for r, t in hidden_thresholds.items()},
        "impostor_pairs": len(impostors[RECOGNIZERS[0]]),
        "by_width": by_size,
        "matched_at_clip_fmr_and_picked_out": matched_by,
    }


def run_facelens(
    clip: Clip, out: Path, check: bool, method: str = "blur", source: Path | None = None
) -> dict[str, Any]:
    """``facelens anonymize`` on ``clip`` as a user runs it; its report and the process's cost.

    ``source``: run facelens from this source tree (its ``src``) instead of the installed one.
    """
    command = [sys.executable, "-m", "facelens.cli.main", "anonymize", str(clip.path)]
    command += ["-o", str(out), "--json", "--method", method]
    command += [] if check else ["--no-check"]
    log = out.parent / f"{out.name}.json"
    with log.open("w") as stdout:
        env = dict(os.environ, PYTHONPATH=str(source)) if source else os.environ
        measured = run_measured(
            command, CPUS, env, cwd=REPO, stdout=stdout, stderr=subprocess.DEVNULL
        )
    text = log.read_text()
    record = json.loads(text) if text.strip() else {}
    record = record[0] if isinstance(record, list) and record else record
    seconds = clip.frames / FPS
    row: dict[str, Any] = {
        "check": check,
        "exit_status": measured.exit_status,
        "wall_s": round(measured.wall_seconds, 2),
        "cpu_s": round(measured.cpu_seconds, 2),
        "x_real_time": round(seconds / measured.wall_seconds, 2),
        "peak_rss_mb": round(measured.peak_rss_mb),
    }
    row["tracks"] = len(record.get("tracks") or [])
    row["tracks_anonymized"] = record.get("tracks_anonymized")
    row["frames_touched"] = record.get("frames_touched")
    row["timing"] = record.get("timing")
    row["verify"] = record.get("verify")
    if check:
        row["check_passed"] = (record.get("check") or {}).get("passed")
        row["failures"] = record.get("failures")
    return row


def run_deface(clip: Clip, out: Path, venv: Path) -> dict[str, Any]:
    """deface 1.5.0 with its defaults on ``clip``."""
    command = [str(venv / "bin" / "deface"), str(clip.path), "-o", str(out)]
    measured = run_measured(
        command, CPUS, os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return {
        "exit_status": measured.exit_status,
        "wall_s": round(measured.wall_seconds, 2),
        "cpu_s": round(measured.cpu_seconds, 2),
        "x_real_time": round(clip.frames / FPS / measured.wall_seconds, 2),
        "peak_rss_mb": round(measured.peak_rss_mb),
    }


def markdown(result: dict[str, Any]) -> str:
    """The run as tables: speed and verdicts, faces left behind, re-identification."""
    lines = [
        f"Crowd clip, {result['seconds']:g} s at 1920x1080, {FPS} fps ({result['when']}); "
        f"dark copy at {result['dark_gain']:g} of the brightness; facelens's method "
        f"{result.get('method', 'blur')}.",
        "",
        "| clip | run | exit | check | wall s | CPU s | x real time | peak MB | tracks "
        "| escalated / unverified | attack CPU s |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in result["clips"].items():
        for label, run in (
            ("facelens --no-check", row["no_check"]),
            ("facelens", row["facelens"]),
            ("deface 1.5.0", row.get("deface")),
        ):
            if run is None:
                continue
            verdict = {True: "passed", False: "**failed**", None: "-"}[run.get("check_passed")]
            verify = run.get("verify") or {}
            escalated = f"{verify['escalated']} / {verify['unverified']}" if verify else "-"
            lines.append(
                f"| {name} | {label} | {run['exit_status']} | {verdict} | {run['wall_s']} | "
                f"{run['cpu_s']} | {run['x_real_time']}x | {run['peak_rss_mb']} | "
                f"{run.get('tracks', '-')} | {escalated} | {verify.get('cpu_seconds', '-')} |"
            )
    lines += [
        "",
        "| clip | output | true faces | under 95% covered | under 80% | under 50% (left behind) "
        "| CenterFace / YuNet still find (input) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name, row in result["clips"].items():
        for label, cov, found in (
            ("facelens", row["coverage"], row["output_found"]),
            (
                "deface",
                (row.get("deface") or {}).get("coverage"),
                (row.get("deface") or {}).get("output_found"),
            ),
        ):
            if cov is None:
                continue
            inp = row["input_found"]
            lines.append(
                f"| {name} | {label} | {cov['faces']} | {cov['under_95']} | {cov['under_80']} | "
                f"{cov['under_50']} | {found['centerface']} / {found['yunet']} "
                f"({inp['centerface']} / {inp['yunet']}) |"
            )
    lines += [
        "",
        "| clip | recognizer | faces attacked | matched at LFW's FMR 1e-2 | chance (other "
        "people's originals) | matched at the clip's FMR 1e-2 | matched at the hidden faces' "
        "FMR 1e-2 | picked out |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in result["clips"].items():
        reid = row["reidentification"]
        for r in reid["lfw_fmr"]:
            lines.append(
                f"| {name} | {r} | {reid['attacked']} | {reid['lfw_fmr'][r]} "
                f"({reid['lfw_fmr_rate'][r]:.1%}) | {reid['chance_rate'][r]:.1%} | "
                f"{reid['clip_fmr'][r]} | {reid.get('hidden_fmr', {}).get(r, '-')} | "
                f"{reid['picked_out'][r]} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--dark-gain", type=float, default=0.2)
    parser.add_argument("--attack-every", type=int, default=5)
    parser.add_argument("--min-face", type=float, default=16.0)
    parser.add_argument("--method", default="blur", help="facelens's hiding method")
    parser.add_argument("--deface-venv", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="copy the clips and outputs here")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not (DATA / PHOTO).is_file():
        sys.exit(f"{DATA / PHOTO} not found; set FACELENS_DATA")
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": args.seconds,
        "dark_gain": args.dark_gain,
        "method": args.method,
        "clips": {},
    }
    with tempfile.TemporaryDirectory(prefix="facelens-crowd-") as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        clips = make_clips(folder, args.seconds, args.dark_gain)
        for clip in clips:
            name = clip.path.stem
            row: dict[str, Any] = {
                "frames": clip.frames,
                "true_faces": sum(len(t) for t in clip.truth),
                "input_found": faces_found(clip.path, args.attack_every),
            }
            print(name, json.dumps(row), flush=True)
            row["no_check"] = run_facelens(
                clip, folder / f"{name}-nocheck", check=False, method=args.method
            )
            print(name, "no check", json.dumps(row["no_check"]), flush=True)
            out = folder / f"{name}-check"
            row["facelens"] = run_facelens(clip, out, check=True, method=args.method)
            print(name, "check", json.dumps(row["facelens"]), flush=True)
            output = out / clip.path.name
            row["coverage"] = coverage(clip, output, args.min_face)
            print(name, "coverage", json.dumps(row["coverage"]), flush=True)
            row["reidentification"] = reidentification(clip, output, args.attack_every)
            print(name, "re-id", json.dumps(row["reidentification"]), flush=True)
            row["output_found"] = faces_found(output, args.attack_every)
            print(name, "found after", json.dumps(row["output_found"]), flush=True)
            if args.deface_venv and clip is clips[0]:
                deface_out = folder / f"{name}-deface.mp4"
                row["deface"] = run_deface(clip, deface_out, args.deface_venv)
                row["deface"]["coverage"] = coverage(clip, deface_out, args.min_face)
                row["deface"]["output_found"] = faces_found(deface_out, args.attack_every)
                print(name, "deface", json.dumps(row["deface"]), flush=True)
            result["clips"][name] = row
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        args.json.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
