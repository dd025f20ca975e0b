"""``facelens eval lfw`` runs one worker thread (its models use every core themselves)."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2

from facelens.evaluation.lfw import EVAL_WORKERS, run_lfw
from facelens.pipeline.faces import FacePipeline
from facelens.types import Detection, ImageArray
from tests.fakes import PixelEmbedder, TileDetector, photo


class ThreadRecordingDetector(TileDetector):
    """The tile detector, noting which threads called it."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def detect(self, image: ImageArray) -> list[Detection]:
        self.threads.add(threading.get_ident())
        return super().detect(image)


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


def test_eval_lfw_embeds_in_one_worker_thread(tmp_path: Path) -> None:
    """Two workers ran two inferences at once, each with its own activations (more memory)."""
    detector = ThreadRecordingDetector()
    pipeline = FacePipeline(detector=detector, embedder=PixelEmbedder(), batch_size=2)
    result = run_lfw(pipeline, lfw_folder(tmp_path))
    assert EVAL_WORKERS == 1
    assert len(detector.threads) == 1
    assert result.images == 12 and result.fallbacks == 0
    assert result.accuracies[0] == 1.0
