"""What encrypting templates at rest costs: a gallery of N templates, plain vs AES-256-GCM.

Measures, for the same random unit templates (128-D float32, 700-byte crops)
stored in an unencrypted and an encrypted SQLite gallery:

* enrollment: ``add_templates`` of all N in batches of 100 (one transaction each);
* load: ``template_matrix()`` on a freshly opened gallery (what a process pays
  on its first identify, and after any other process writes);
* key rotation: ``rekey`` of the encrypted gallery to a new key (one transaction,
  then VACUUM and WAL truncation);
* the cipher alone: encrypt and decrypt of one 512-byte template.

Each timing is the median of ``--repeats`` runs. The machine's load average is
printed beside the numbers: other work on the machine makes them slower.

    .venv/bin/python benchmarks/protection_cost.py --templates 10000 --markdown
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facelens.gallery import NewTemplate, SQLiteGallery
from facelens.gallery.protection import GalleryCipher, template_associated_data
from facelens.models.registry import DEFAULT_EMBEDDER


def _templates(count: int, seed: int) -> list[NewTemplate]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(count, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        NewTemplate(v, DEFAULT_EMBEDDER, f"p{i}", 0.9, rng.bytes(700))
        for i, v in enumerate(vectors)
    ]


def _median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _fill(path: Path, cipher: GalleryCipher | None, templates: list[NewTemplate]) -> float:
    """Seconds to enroll every template, 100 per transaction, 50 per person."""
    gallery = SQLiteGallery(path, DEFAULT_EMBEDDER, cipher=cipher)
    start = time.perf_counter()
    for first in range(0, len(templates), 100):
        batch = templates[first : first + 100]
        for offset in range(0, len(batch), 50):
            name = f"person {(first + offset) // 50}"
            gallery.add_templates(name, batch[offset : offset + 50], create=True)
    elapsed = time.perf_counter() - start
    gallery.close()
    return elapsed


def _load(path: Path, cipher: GalleryCipher | None) -> None:
    gallery = SQLiteGallery(path, DEFAULT_EMBEDDER, cipher=cipher)
    try:
        gallery.template_matrix()
    finally:
        gallery.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", action="store_true", help="Print a table for docs.")
    args = parser.parse_args()

    load_before = os.getloadavg()
    templates = _templates(args.templates, seed=0)
    cipher = GalleryCipher.generate()
    with tempfile.TemporaryDirectory() as folder:
        plain_path, sealed_path = Path(folder, "plain.db"), Path(folder, "sealed.db")
        fill_plain = _fill(plain_path, None, templates)
        fill_sealed = _fill(sealed_path, cipher, templates)
        load_plain = _median_seconds(lambda: _load(plain_path, None), args.repeats)
        load_sealed = _median_seconds(lambda: _load(sealed_path, cipher), args.repeats)

        current = [cipher]

        def rotate() -> None:
            gallery = SQLiteGallery(sealed_path, DEFAULT_EMBEDDER, cipher=current[0])
            new = GalleryCipher.generate()
            gallery.rekey(new)
            gallery.close()
            current[0] = new

        rotation = _median_seconds(rotate, max(1, args.repeats // 2))
        size_plain, size_sealed = plain_path.stat().st_size, sealed_path.stat().st_size

    vector = templates[0].vector.astype("<f4").tobytes()
    aad = template_associated_data("benchmark", 1, 1, "vector")
    sealed = cipher.encrypt(vector, aad)
    ops = 20_000
    encrypt_us = _median_seconds(lambda: [cipher.encrypt(vector, aad) for _ in range(ops)], 3)
    decrypt_us = _median_seconds(lambda: [cipher.decrypt(sealed, aad) for _ in range(ops)], 3)
    encrypt_us, decrypt_us = encrypt_us / ops * 1e6, decrypt_us / ops * 1e6
    load_after = os.getloadavg()

    n = args.templates
    rows = [
        ("enroll all (100 per transaction)", fill_plain, fill_sealed),
        ("load template matrix (fresh open)", load_plain, load_sealed),
    ]
    load_text = (
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after, "
        f"{os.cpu_count()} cores"
    )
    if args.markdown:
        print(f"{n} templates (128-D float32 + 700-byte crop each); {load_text}.\n")
        print("| operation | unencrypted s | AES-256-GCM s | extra |")
        print("|---|---:|---:|---:|")
        for label, plain, sealed_s in rows:
            print(f"| {label} | {plain:.3f} | {sealed_s:.3f} | {sealed_s / plain - 1:+.0%} |")
        print(f"| rotate key (re-encrypt all, vacuum) | - | {rotation:.3f} | - |")
        print(
            f"\nOne 512-byte template: encrypt {encrypt_us:.1f} µs, decrypt {decrypt_us:.1f} µs. "
            f"File size {size_plain / 1e6:.2f} MB unencrypted, {size_sealed / 1e6:.2f} MB encrypted "
            "(after the rotations' VACUUM)."
        )
    else:
        print(load_text)
        for label, plain, sealed_s in rows:
            print(f"{label}: plain {plain:.3f} s, encrypted {sealed_s:.3f} s")
        print(f"rotate key: {rotation:.3f} s")
        print(f"encrypt {encrypt_us:.1f} µs, decrypt {decrypt_us:.1f} µs per template")
        print(f"file bytes: plain {size_plain}, encrypted {size_sealed}")


if __name__ == "__main__":
    main()
