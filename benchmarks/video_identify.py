"""What `facelens video identify` costs, and what embedding only the best frames saves.

For every clip of the shared videos folder: the identification pipeline as
shipped (detection on every frame, embedding only when the tracker needs
appearance and for each track's best frames), then the same with every
detected face embedded (``embed_all``). The gallery holds the two named
talking-head people, enrolled from the first second of their clips.

    .venv/bin/python benchmarks/video_identify.py [--every 1] [--markdown]

Prints frames per second, the multiple of real time, the faces embedded and
the identities found, with the machine load (``os.getloadavg``): measured on a
busy machine the numbers are low and noisy; rerun on a quiet one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from facelens.api import FaceLens
from facelens.video import open_video

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared" / "data")).resolve()
NAMED = {
    "AlexandriaOcasioCortez": "WDA_AlexandriaOcasioCortez_000.mp4",
    "KatieHill": "WDA_KatieHill_000.mp4",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="process one frame in N")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    clips = sorted((DATA / "videos").rglob("*.mp4"))
    if not clips:
        sys.exit(f"no clips under {DATA / 'videos'}; set FACELENS_DATA")
    header = [
        "clip",
        "frames",
        "mode",
        "frames/s",
        "x real time",
        "faces detected",
        "faces embedded",
        "tracks",
        "identities",
        "load",
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, FaceLens(gallery=Path(tmp) / "g.db") as lens:
        for name, file in NAMED.items():
            clip = next((c for c in clips if c.name == file), None)
            if clip is not None:
                with open_video(clip, end=0.999, every=5) as reader:
                    lens.enroll(name, [f.pixels for f in reader])
        for clip in clips:
            for mode, embed_all in (("best frames", False), ("every face", True)):
                load = os.getloadavg()[0]
                result = lens.identify_video(clip, every=args.every, embed_all=embed_all)
                duration = result.info.duration or result.frames_processed / float(result.info.fps)
                row = [
                    clip.name,
                    str(result.frames_processed),
                    mode,
                    f"{result.frames_per_second:.1f}",
                    f"{duration / result.seconds:.2f}",
                    str(result.faces_detected),
                    str(result.faces_embedded),
                    str(len(result.tracks)),
                    ", ".join(t.identity or "unknown" for t in result.tracks),
                    f"{load:.1f}",
                ]
                rows.append(row)
                print(" | ".join(row), file=sys.stderr, flush=True)
    print(f"{os.cpu_count()} cores, every={args.every}")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |" if args.markdown else "\t".join(row))


if __name__ == "__main__":
    main()
