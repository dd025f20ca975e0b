"""``facelens eval lfw``: two workers decode and detect in parallel, and embed one chunk at a time
(the embedders use every core themselves; one set of activations alive at a time)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2

from facelens.evaluation.lfw import EVAL_WORKERS, run_lfw
from facelens.pipeline.faces import FacePipeline
from facelens.types import Detection, FloatArray, ImageArray
from tests.fakes import PixelEmbedder, TileDetector, photo


class ThreadRecordingDetector(TileDetector):
    """The tile detector, noting which threads called it."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def detect(self, image: ImageArray) -> list[Detection]:
        self.threads.add(threading.get_ident())
        return super().detect(image)


class OverlapRecordingEmbedder(PixelEmbedder):
    """The pixel embedder, noting the most calls that were ever inside it at once."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0
        self.most_inside = 0
        self.lock = threading.Lock()

    def embed(self, crops: ImageArray) -> FloatArray:
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0.02)  # long enough for the other worker to arrive, were it let in
        try:
            return super().embed(crops)
        finally:
            with self.lock:
                self.inside -= 1


def lfw_folder(root: Path, people: int = 6, shots: int = 2) -> Path:
    """An LFW-shaped folder of synthetic photos and a one-fold ``pairs.txt``."""
    images = root / "images_deepfunneled"
    for person in range(people):
        name = f"Person_{person}"
        (images / name).mkdir(parents=True)
        for shot in range(shots):
            tile = photo((person, shot))
            cv2.imwrite(str(images / name / f"{name}_{shot + 1:04d}.jpg"), tile[:, :, ::-1])
    same = [f"Person_{p}\t1\t2" for p in range(people)]
    different = [f"Person_{p}\t1\tPerson_{(p + 1) % people}\t2" for p in range(people)]
    (root / "pairs.txt").write_text(f"1\t{people}\n" + "\n".join(same + different) + "\n")
    return root


def test_eval_lfw_detects_in_two_workers_and_embeds_one_chunk_at_a_time(tmp_path: Path) -> None:
    """Two free workers ran two inferences at once, each with its own activations (more memory);
    one worker alone left a core idle while it decoded and detected."""
    detector = ThreadRecordingDetector()
    embedder = OverlapRecordingEmbedder()
    pipeline = FacePipeline(detector=detector, embedder=embedder, batch_size=2)
    result = run_lfw(pipeline, lfw_folder(tmp_path))
    assert EVAL_WORKERS == 2
    assert embedder.calls >= 6 and embedder.most_inside == 1
    assert result.images == 12 and result.fallbacks == 0
    assert result.accuracies[0] == 1.0
