"""Templates of every LFW development image for one embedder, cached on disk.

Shared by ``calibrate.py`` and ``fusion.py`` so each embedder embeds the 6,165
images once. The cache (``benchmarks/results/cache/<id>.npz``, git-ignored)
is keyed by the embedder id and the facelens source digest, so a change to the
pipeline recomputes it.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facelens.evaluation.lfw import embed_lfw_images, people_images, read_people
from facelens.pipeline.faces import FacePipeline

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "benchmarks/results/cache"


@dataclass(frozen=True)
class LfwTemplates:
    vectors: np.ndarray  # (N, D) float32
    person: np.ndarray  # (N,) person index
    people_set: np.ndarray  # (N,) people set index (0-based) of people.txt
    names: list[str]
    fallbacks: int
    seconds: float


def source_digest() -> str:
    """sha256 of every .py file of the installed facelens source (the pipeline's identity)."""
    hasher = hashlib.sha256()
    for path in sorted((REPO / "src/facelens").rglob("*.py")):
        hasher.update(path.read_bytes())
    return hasher.hexdigest()[:16]


def lfw_templates(data: Path, embedder: str, any_source: bool = False) -> LfwTemplates:
    """Embed (or load from the cache) every image of the people of ``people.txt``.

    With ``any_source``, the newest cached file of ``embedder`` is used even
    if it was made by another facelens source (said on stderr): for analyses
    of templates already measured, when re-embedding would take too long.
    """
    root = data / "lfw"
    people_sets = read_people(root / "people.txt")
    items = [
        (name, set_index, path)
        for set_index, group in enumerate(people_sets)
        for name, path in people_images(root / "images_deepfunneled", group)
    ]
    names = sorted({name for name, _, _ in items})
    person = np.array([names.index(name) for name, _, _ in items])
    people_set = np.array([set_index for _, set_index, _ in items])
    cache = CACHE / f"{embedder}-{source_digest()}.npz"
    older = sorted(CACHE.glob(f"{embedder}-*.npz"), key=lambda p: p.stat().st_mtime)
    if any_source and not cache.exists() and older:
        cache = older[-1]
        print(f"using {cache.name}, made by another facelens source", file=sys.stderr)
    if cache.exists():
        stored = np.load(cache)
        return LfwTemplates(
            stored["vectors"],
            person,
            people_set,
            names,
            int(stored["fallbacks"]),
            float(stored["seconds"]),
        )
    started = time.time()
    templates, fallbacks = embed_lfw_images(
        FacePipeline(embedder=embedder), [path for _, _, path in items]
    )
    seconds = time.time() - started
    print(
        f"{embedder}: embedded {len(items)} images in {seconds:.0f} s, {len(fallbacks)} fallbacks",
        file=sys.stderr,
    )
    vectors = np.stack([templates[str(path)] for _, _, path in items])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cache, vectors=vectors, fallbacks=len(fallbacks), seconds=seconds)
    return LfwTemplates(vectors, person, people_set, names, len(fallbacks), seconds)
